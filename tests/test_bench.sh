#!/bin/sh
# tests/test_bench.sh - clcnn-bench runs and reports (it asserts nothing about speed: the test
# suite times nothing), and refuses bad flags with a message and exit 2.
. "$abs_top_srcdir/tests/lib.sh"
bench="$abs_top_builddir/tools/clcnn-bench"
ex="$abs_top_srcdir/examples/lenet5.txt"
out=$("$bench" --batches 2 --steps 1 --warmup 0 "$ex" 2>&1)
if [ $? -eq 0 ] && echo "$out" | grep -q "images/s" && echo "$out" | grep -q "0 buffers created after the first step" &&
  echo "$out" | grep -q "conv2d(1->6"; then
  ok "a tiny run reports images/s, buffers after the first step and the per-layer table"
else
  notok "a tiny run reports"; echo "$out" | sed 's/^/# /' | tail -n 10
fi
out=$("$bench" --batches 2 --steps 1 --warmup 0 --json "$ex" 2>&1)
if echo "$out" | "${PYTHON3:-python3}" -c "import json, sys; r = [json.loads(l) for l in sys.stdin]; assert r and r[0]['batch'] == 2 and r[0]['images_per_s'] > 0"; then
  ok "--json lines parse"
else
  notok "--json lines parse"; echo "$out" | sed 's/^/# /' | tail -n 5
fi
bad() { # bad "words" description -- command...
  words=$1 what=$2; shift 3
  "$@" > /dev/null 2> "${TMPDIR:-/tmp}/clcnn-bench-err.$$"
  rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$words" "${TMPDIR:-/tmp}/clcnn-bench-err.$$"; then ok "$what: exit 2, says '$words'"
  else notok "$what: exit $rc (want 2)"; sed 's/^/# /' "${TMPDIR:-/tmp}/clcnn-bench-err.$$"; fi
  rm -f "${TMPDIR:-/tmp}/clcnn-bench-err.$$"
}
bad "--steps" "--steps 0" -- "$bench" --steps 0 "$ex"
bad "--steps" "--steps 5x" -- "$bench" --steps 5x "$ex"
bad "--batches" "--batches 16,abc" -- "$bench" --batches 16,abc "$ex"
bad "--warmup" "--warmup -1" -- "$bench" --warmup -1 "$ex"
bad "model files" "no model file" -- "$bench"
# bench/run.sh refuses a bad ROUNDS before it runs anything
for r in 0 x 3x -1; do
  bad "ROUNDS must be a positive number" "bench/run.sh with ROUNDS=$r" -- env ROUNDS="$r" CLCNN_BENCH=/nonexistent \
    sh "$abs_top_srcdir/bench/run.sh" "$ex"
done
"$bench" --batches 2 --steps 1 "$abs_top_srcdir/no-such-model.txt" > /dev/null 2>&1
rc=$?
if [ $rc -eq 1 ]; then ok "a missing model file: exit 1"; else notok "a missing model file: exit $rc"; fi
echo "1..$n"
exit $fail
