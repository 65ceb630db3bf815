#!/bin/sh
# tests/test_memfit.sh - will it fit, from the tools: clcnn-train refuses a batch whose estimated
# memory passes the device's limits (lowered with --mem-limit / --alloc-limit, since PoCL's are
# the host's) before allocating it, naming the estimate and the limit; the largest batch it
# names is the one clcnn-devices --check --model prints, trains, and one more is refused; bad
# sizes are usage errors. That the estimate is the memory a step allocates is test_memest's.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out" | tail -n 15; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else notok "$2"; fi; }

train="$abs_top_builddir/tools/clcnn-train"
devices="$abs_top_builddir/tools/clcnn-devices"
ex="$abs_top_srcdir/examples"
real=/usr/share/datasets/fashion-mnist
tap_tmpdir memfit
if [ ! -f "$real/train-images-idx3-ubyte.gz" ]; then
  echo "Bail out! $real is missing: apt-get install dataset-fashion-mnist"
  exit 1
fi
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/small" 256 64 || { echo "Bail out! mkdata.py"; exit 1; }

# 1. Past --mem-limit: status 1, before the data is read (none is given), with the estimate, the
#    limit in bytes and the largest batch that fits.
"$train" "$ex/lenet5.txt" --batch 64 --mem-limit 8M --data "$tmp/none" > "$tmp/out" 2>&1
rc=$?
est=$(sed -n 's/.*needs an estimated [0-9.]* MiB (\([0-9]*\) bytes) of device memory, more than --mem-limit of 8.0 MiB (8388608 bytes); the largest batch that fits is \([0-9]*\)$/\1/p' "$tmp/out")
fits=$(sed -n 's/.*(8388608 bytes); the largest batch that fits is \([0-9]*\)$/\1/p' "$tmp/out")
if [ $rc -eq 1 ] && [ -n "$est" ] && [ "$est" -gt 8388608 ] && [ -n "$fits" ] && [ "$fits" -ge 1 ] && [ "$fits" -lt 64 ] &&
   ! grep -q "data" "$tmp/out"; then
  ok "lenet5 --batch 64 under --mem-limit 8M is refused first: needs $est bytes, $fits fits"
else notok "lenet5 --batch 64 under --mem-limit 8M is refused with the estimate and the limit (status $rc)"; fi

# 2. That batch trains under the same limit; one more is refused.
"$train" "$ex/lenet5.txt" --batch "$fits" --mem-limit 8M --data "$tmp/small" --steps 1 -q > "$tmp/out" 2>&1
check $? "lenet5 --batch $fits under --mem-limit 8M trains a step"
"$train" "$ex/lenet5.txt" --batch $((fits + 1)) --mem-limit 8M --data "$tmp/small" --steps 1 -q > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "^clcnn-train: --batch $((fits + 1)) does not fit.*the largest batch that fits is $fits\$" "$tmp/out"; then
  ok "--batch $((fits + 1)) is refused"
else notok "--batch $((fits + 1)) is refused (status $rc)"; fi

# 3. clcnn-devices --check --model names the same batch under the same limit (Adam is
#    clcnn-train's default optimizer and keeps the most state).
"$devices" --check --model "$ex/lenet5.txt" --mem-limit 8M > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "^  .*lenet5.txt: largest batch $fits (.* of 8 MiB, largest buffer .* of " "$tmp/out"; then
  ok "clcnn-devices --check --model lenet5.txt --mem-limit 8M: largest batch $fits"
else notok "clcnn-devices --check --model prints largest batch $fits (status $rc)"; fi

# 4. The largest buffer: --alloc-limit, in clcnn-train and clcnn-devices alike.
"$train" "$ex/cifar10.txt" --batch 64 --alloc-limit 8M --data "$tmp/none" > "$tmp/out" 2>&1
rc=$?
afits=$(sed -n 's/.*its largest buffer is an estimated [0-9.]* MiB ([0-9]* bytes), more than --alloc-limit, 8.0 MiB (8388608 bytes); the largest batch that fits is \([0-9]*\)$/\1/p' "$tmp/out")
if [ $rc -eq 1 ] && [ -n "$afits" ]; then ok "cifar10 --batch 64 under --alloc-limit 8M is refused; $afits fits"
else notok "cifar10 --batch 64 under --alloc-limit 8M is refused with the estimate and the limit (status $rc)"; fi
"$devices" --check --model "$ex/cifar10.txt" --alloc-limit 8M > "$tmp/out" 2>&1
if grep -q "cifar10.txt: largest batch $afits (.*largest buffer .* of 8 MiB)" "$tmp/out"; then
  ok "clcnn-devices agrees: largest batch $afits under --alloc-limit 8M"
else notok "clcnn-devices agrees on --alloc-limit 8M ($afits)"; fi

# 5. Nothing fits: said so, status 1.
"$train" "$ex/lenet5.txt" --mem-limit 100K --data "$tmp/none" > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "more than --mem-limit of 100.0 KiB (102400 bytes); not even a batch of 1 fits" "$tmp/out"; then
  ok "clcnn-train under 100K: not even a batch of 1 fits"
else notok "clcnn-train under 100K: not even a batch of 1 fits (status $rc)"; fi
"$devices" --check --model "$ex/lenet5.txt" --mem-limit 100K > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "lenet5.txt: does not fit: a batch of 1 needs" "$tmp/out"; then
  ok "clcnn-devices under 100K: does not fit, status 1"
else notok "clcnn-devices under 100K: does not fit, status 1 (status $rc)"; fi

# 6. A batch too large to build at all is refused before anything is allocated, under the
#    device's own limits.
"$train" "$ex/cifar10.txt" --batch 65536 --data "$tmp/none" > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "^clcnn-train: --batch 65536: .*im2col buffer is too large" "$tmp/out"; then
  ok "cifar10 --batch 65536 cannot be built: refused"
else notok "cifar10 --batch 65536 cannot be built: refused (status $rc)"; fi

# 7. Sizes: K, M, G, T are binary; anything else is a usage error (status 2) naming the flag.
"$train" "$ex/lenet5.txt" --batch 64 --mem-limit 8192k --data "$tmp/none" > "$tmp/out" 2>&1
if grep -q "more than --mem-limit of 8.0 MiB (8388608 bytes)" "$tmp/out"; then ok "8192k is 8 MiB"
else notok "8192k is 8 MiB"; fi
for v in 0 -1 abc 12Q 1.5G 1KB "" " 5" 5x 18446744073709551616 16777216T; do
  for flag in --mem-limit --alloc-limit; do
    "$train" "$ex/lenet5.txt" "$flag" "$v" > "$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q "^clcnn-train: $flag: '$v' is not a size" "$tmp/out"; then ok "clcnn-train $flag '$v' refused"
    else notok "clcnn-train $flag '$v' refused (status $rc)"; fi
    "$devices" --check --model "$ex/lenet5.txt" "$flag" "$v" > "$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q "^clcnn-devices: $flag: '$v' is not a size" "$tmp/out"; then ok "clcnn-devices $flag '$v' refused"
    else notok "clcnn-devices $flag '$v' refused (status $rc)"; fi
  done
done
"$devices" --model "$ex/lenet5.txt" > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "model goes with --check" "$tmp/out"; then ok "--model without --check refused"
else notok "--model without --check refused (status $rc)"; fi
"$devices" --check --mem-limit 8M > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "go with --check --model" "$tmp/out"; then ok "--mem-limit without --model refused"
else notok "--mem-limit without --model refused (status $rc)"; fi
"$devices" --check --model "$tmp/missing.txt" > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "missing.txt: No such file" "$tmp/out"; then ok "a missing --model file refused"
else notok "a missing --model file refused (status $rc)"; fi
printf 'input 1 28 28\nconv 6 kernel=99\n' > "$tmp/bad.txt"
"$devices" --check --model "$tmp/bad.txt" > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "bad.txt: FAIL: .*kernel" "$tmp/out"; then ok "a model that does not build: FAIL, status 1"
else notok "a model that does not build: FAIL, status 1 (status $rc)"; fi

echo "1..$n"
exit $fail
