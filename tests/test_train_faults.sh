#!/bin/sh
# tests/test_train_faults.sh - clcnn-train when things go wrong around it: a full disk during
# --save keeps the previous checkpoint (and says so, and leaves no temporary file), a process
# killed during --save leaves a loadable checkpoint, Ctrl-C stops after the current step with a
# checkpoint that equals an uninterrupted run's, and a second Ctrl-C quits at once.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
show() { sed 's/^/# /' "$1" | tail -n "${2:-15}"; }

train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
real=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-faults.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
pid=
trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
if [ ! -f "$real/train-images-idx3-ubyte.gz" ]; then
  echo "Bail out! $real is missing: apt-get install dataset-fashion-mnist"
  exit 1
fi
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/small" 640 64 &&
  "${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/one" 64 16 || { echo "Bail out! mkdata.py"; exit 1; }
small="--data $tmp/small"

# Wait (at most 120 s) until file $1 matches the pattern $2, or process $pid is gone.
wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || return 1
    i=$((i + 1))
    [ $i -gt 6000 ] && return 1
    sleep 0.02
  done
}
# No temporary file of a checkpoint is left in $tmp.
no_temps() { [ -z "$(ls "$tmp" | grep '\.tmp\.')" ]; }

# 1. A full disk: the file size limit (ulimit -f, in blocks of 512 or 1024 bytes) is far below
#    a checkpoint's size; the write fails, the old checkpoint stays, the message says so.
"$train" "$ex/lenet5.txt" $small --steps 2 -q --save "$tmp/ck" > "$tmp/out" 2>&1
if [ $? -eq 0 ] && [ -s "$tmp/ck" ]; then ok "a first checkpoint"; else notok "a first checkpoint"; show "$tmp/out"; fi
cp "$tmp/ck" "$tmp/ck.before"
(ulimit -f 64 && exec "$train" "$ex/lenet5.txt" $small --steps 3 --seed 9 -q --save "$tmp/ck") > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot save the checkpoint: .*File too large.*the previous checkpoint there is kept unchanged" "$tmp/out"; then
  ok "a save over the file size limit fails with exit 1, naming the error and keeping the old checkpoint"
else notok "a save over the file size limit: exit $rc"; show "$tmp/out"; fi
if cmp -s "$tmp/ck" "$tmp/ck.before"; then ok "the previous checkpoint is unchanged"; else notok "the previous checkpoint is unchanged"; fi
if no_temps; then ok "no temporary file is left"; else notok "no temporary file is left: $(ls "$tmp")"; fi
rm -f "$tmp/ck" "$tmp/ck.before"
(ulimit -f 64 && exec "$train" "$ex/lenet5.txt" $small --steps 1 -q --save "$tmp/ck") > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot save the checkpoint: .*no checkpoint was written" "$tmp/out" && [ ! -e "$tmp/ck" ] && no_temps; then
  ok "with no previous checkpoint it says none was written, and leaves no file"
else notok "a failed first save: exit $rc"; show "$tmp/out"; fi

# 2. Ctrl-C: the run stops after the step in flight, saves it, exits 130; the checkpoint equals
#    that of a run told to take exactly that many steps, and resumes.
"$train" "$ex/lenet5.txt" $small --batch 8 --epochs 50 --log-every 1 --save "$tmp/int" > "$tmp/out" 2> "$tmp/err" &
pid=$!
if wait_for "$tmp/out" "batch 5/"; then kill -INT "$pid"; fi
wait "$pid"
rc=$?
pid=
steps=$(sed -n 's/.*interrupted after step \([0-9]*\) (epoch .*: saving .*/\1/p' "$tmp/err")
if [ $rc -eq 130 ] && [ -n "$steps" ] && [ -s "$tmp/int" ] && grep -q "saved $tmp/int: --resume" "$tmp/err"; then
  ok "SIGINT: stops after step $steps, saves the checkpoint, exits 130"
else notok "SIGINT: exit $rc, steps '$steps'"; show "$tmp/err"; show "$tmp/out" 5; fi
if [ -n "$steps" ]; then
  "$train" "$ex/lenet5.txt" $small --batch 8 --steps "$steps" -q --save "$tmp/straight" > "$tmp/out" 2>&1
  if cmp -s "$tmp/int" "$tmp/straight"; then ok "it equals the checkpoint of a run of exactly $steps steps, byte for byte"
  else notok "it equals the checkpoint of a run of exactly $steps steps"; fi
fi
"$train" "$ex/lenet5.txt" $small --batch 8 --steps 3 -q --resume "$tmp/int" > "$tmp/out" 2>&1
if [ $? -eq 0 ] && grep -q "^done: $((steps + 3)) steps" "$tmp/out"; then ok "the interrupted run resumes for 3 more steps"
else notok "the interrupted run resumes"; show "$tmp/out"; fi
if no_temps; then ok "no temporary file is left"; else notok "no temporary file is left: $(ls "$tmp")"; fi

# 3. A second Ctrl-C quits at once: steps of a wide convolution take long enough that the
#    second arrives while the first step after the first Ctrl-C is still running.
printf 'input 1 28 28\nconv 64 kernel=5 pad=2\nrelu\nconv 64 kernel=5 pad=2\nrelu\nmaxpool 2\nflatten\nlinear 10\n' > "$tmp/wide.txt"
"$train" "$tmp/wide.txt" $small --batch 64 --epochs 5 --log-every 1 --save "$tmp/twice" > "$tmp/out" 2> "$tmp/err" &
pid=$!
if wait_for "$tmp/out" "batch 1/"; then
  kill -INT "$pid"
  wait_for "$tmp/err" "stopping after this step" && kill -INT "$pid"
fi
wait "$pid"
rc=$?
pid=
if [ $rc -eq 130 ] && grep -q "interrupted again: quitting now" "$tmp/err" && ! grep -q "saving" "$tmp/err" &&
   [ ! -e "$tmp/twice" ]; then
  ok "a second SIGINT during the step quits at once with 130, saving nothing"
else notok "a second SIGINT: exit $rc"; show "$tmp/err"; fi

# 4. SIGKILL inside a save: a run that saves a 20 MB checkpoint after every one-step epoch is
#    killed once its temporary file has grown past a given size (0 to 12 MB: early, mid-write,
#    late); the checkpoint on disk loads after each. A kill that the save outran by finishing
#    first still counts for loading, but at least 3 of 5 must be caught inside the save (their
#    temporary file is left behind), or the test proves nothing.
printf 'input 1 28 28\nflatten\nlinear 2048\nrelu\nlinear 10\n' > "$tmp/big.txt"
# Wait until the process $pid writes a checkpoint's temporary file of at least $1 bytes while
# $tmp/kill exists, and SIGKILL it then; 1 if the run ended or 60 s passed first.
kill_in_save() {
  end=$(($(date +%s) + 60))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do
    f=$(ls "$tmp" | grep '^kill\.tmp\.' | head -n 1)
    if [ -n "$f" ] && [ -e "$tmp/kill" ] && [ "$(stat -c %s "$tmp/$f" 2>/dev/null || echo 0)" -ge "$1" ]; then
      kill -9 "$pid"
      return 0
    fi
  done
  return 1
}
loaded=0 caught=0
for size in 0 1000000 4000000 8000000 12000000; do
  "$train" "$tmp/big.txt" --data "$tmp/one" --batch 64 --epochs 1000 -q --optimizer adam --save "$tmp/kill" > "$tmp/out" 2>&1 &
  pid=$!
  kill_in_save $size
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
  if ! no_temps; then caught=$((caught + 1)); fi
  rm -f "$tmp"/*.tmp.*
  if "$train" "$tmp/big.txt" --data "$tmp/one" --batch 64 --init "$tmp/kill" --eval > "$tmp/out" 2>&1; then
    loaded=$((loaded + 1))
  else
    echo "# killed with a temporary file of $size bytes or more: the checkpoint does not load"
    show "$tmp/out" 5
  fi
done
if [ $caught -ge 3 ]; then ok "$caught of 5 SIGKILLs landed inside a save (a temporary file of 0 to 12 MB was left)"
else notok "only $caught of 5 SIGKILLs landed inside a save"; fi
if [ $loaded -eq 5 ]; then ok "after each the checkpoint loads: the previous one, whole"
else notok "after $((5 - loaded)) of 5 SIGKILLs the checkpoint does not load"; fi

echo "1..$n"
exit $fail
