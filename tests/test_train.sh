#!/bin/sh
# tests/test_train.sh - clcnn-train end to end on Fashion-MNIST (Debian's dataset-fashion-mnist):
# a short run whose loss falls and whose accuracy clears a floor, checkpoints that round-trip,
# a resumed run equal bit for bit to an uninterrupted one, profiling, and every bad input.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else notok "$2"; sed 's/^/# /' "$tmp/out" | tail -n 25; fi; }

train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
real=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-train.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$real/train-images-idx3-ubyte.gz" ]; then
  echo "Bail out! $real is missing: apt-get install dataset-fashion-mnist"
  exit 1
fi
# A small copy for the runs that must be quick: 640 training images (10 batches), 200 test.
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/small" 640 200 || { echo "Bail out! mkdata.py"; exit 1; }
small="--data $tmp/small"

# 1. The real data: 150 steps of LeNet-5 with the defaults; the loss falls, the accuracy clears 70%.
"$train" "$ex/lenet5.txt" --batch 64 --steps 150 --log-every 25 --save "$tmp/lenet.safetensors" > "$tmp/out" 2>&1
check $? "LeNet-5, 150 steps on Fashion-MNIST, exits 0"
first=$(sed -n 's/^epoch 1 batch 25\/[0-9]* loss \([0-9.]*\).*/\1/p' "$tmp/out")
last=$(sed -n 's/^epoch 1 batch 150\/[0-9]* loss \([0-9.]*\).*/\1/p' "$tmp/out")
acc=$(sed -n 's/^final test accuracy \([0-9.]*\)%.*/\1/p' "$tmp/out")
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.8) }'; then
  ok "the running loss falls: $first after 25 batches, $last after 150"
else notok "the running loss falls ($first -> $last)"; fi
if [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a >= 70) }'; then ok "test accuracy $acc% >= 70% after 150 steps"
else notok "test accuracy >= 70% (got '$acc')"; sed 's/^/# /' "$tmp/out" | tail -n 20; fi
if grep -q "confusion matrix" "$tmp/out"; then ok "prints the confusion matrix"; else notok "prints the confusion matrix"; fi

# 2. The checkpoint evaluates to the same accuracy.
"$train" "$ex/lenet5.txt" --batch 64 --init "$tmp/lenet.safetensors" --eval > "$tmp/out" 2>&1
check $? "--eval --init the checkpoint exits 0"
acc2=$(sed -n 's/^test loss [0-9.]*  accuracy \([0-9.]*\)%.*/\1/p' "$tmp/out")
if [ "$acc2" = "$acc" ]; then ok "the checkpoint gives the same test accuracy ($acc2%)"; else notok "the checkpoint gives the same accuracy ($acc2 vs $acc)"; fi

# 3. Exact resume: 2 epochs = 1 epoch, save, resume for 1; also from the middle of an epoch.
for m in lenet5 fashion-bn; do
  "$train" "$ex/$m.txt" $small --batch 64 --epochs 2 -q --save "$tmp/$m-a" > "$tmp/out" 2>&1
  check $? "$m: 2 epochs straight"
  "$train" "$ex/$m.txt" $small --batch 64 --epochs 1 -q --save "$tmp/$m-b" > "$tmp/out" 2>&1
  check $? "$m: 1 epoch, saved"
  "$train" "$ex/$m.txt" $small --batch 64 --epochs 2 -q --resume "$tmp/$m-b" --save "$tmp/$m-c" > "$tmp/out" 2>&1
  check $? "$m: resumed for the second epoch"
  if cmp -s "$tmp/$m-a" "$tmp/$m-c"; then ok "$m: the resumed checkpoint equals the uninterrupted one, byte for byte"
  else notok "$m: the resumed checkpoint equals the uninterrupted one"; fi
done
"$train" "$ex/fashion-bn.txt" $small --batch 64 --steps 13 -q --optimizer sgd --momentum 0.9 --nesterov --schedule cosine --save "$tmp/m-a" > "$tmp/out" 2>&1
"$train" "$ex/fashion-bn.txt" $small --batch 64 --steps 6 -q --optimizer sgd --momentum 0.9 --nesterov --schedule cosine --save "$tmp/m-b" > "$tmp/out" 2>&1
"$train" "$ex/fashion-bn.txt" $small --batch 64 --steps 7 -q --optimizer sgd --momentum 0.9 --nesterov --schedule cosine --resume "$tmp/m-b" --save "$tmp/m-c" > "$tmp/out" 2>&1
check $? "sgd nesterov: resumed from batch 6 of 10"
if cmp -s "$tmp/m-a" "$tmp/m-c"; then ok "13 steps = 6 steps + resume for 7, byte for byte (mid-epoch, dropout, batch norm)"
else notok "13 steps = 6 steps + resume for 7"; fi
"$train" "$ex/lenet5.txt" $small --epochs 1 -q --seed 5 --save "$tmp/s1" > /dev/null 2>&1
"$train" "$ex/lenet5.txt" $small --epochs 1 -q --seed 5 --save "$tmp/s2" > /dev/null 2>&1
"$train" "$ex/lenet5.txt" $small --epochs 1 -q --seed 6 --save "$tmp/s3" > /dev/null 2>&1
if cmp -s "$tmp/s1" "$tmp/s2" && ! cmp -s "$tmp/s1" "$tmp/s3"; then ok "the same seed gives the same run, another seed another"
else notok "the same seed gives the same run"; fi
for o in sgd adamw rmsprop; do
  "$train" "$ex/lenet5.txt" $small --epochs 1 -q --optimizer $o --weight-decay 0.001 --schedule step > "$tmp/out" 2>&1
  check $? "--optimizer $o --weight-decay --schedule step trains"
done

# 4. Profiling: a Chrome trace that parses, and the table.
"$train" "$ex/lenet5.txt" $small --steps 3 -q --profile "$tmp/trace.json" > "$tmp/out" 2>&1
check $? "--profile exits 0"
if "${PYTHON3:-python3}" -c "
import json, sys
t = json.load(open(sys.argv[1]))
ev = t['traceEvents']
assert len(ev) > 0 and all(e['ph'] == 'X' and e['dur'] >= 0 for e in ev)
assert {e['cat'] for e in ev} == {'forward', 'backward'} and all(e['ts'] >= 0 for e in ev)
" "$tmp/trace.json" && grep -q "backward us" "$tmp/out"; then ok "the trace is valid Chrome-trace JSON and the table is printed"
else notok "the trace is valid JSON with forward and backward events"; fi

# 5. Bad input: a clear message and a non-zero exit, never a crash, never a broken file.
bad() { # bad EXPECTED-EXIT "words" description -- command...
  want=$1 words=$2 what=$3; shift 4
  "$@" > "$tmp/out" 2>&1
  rc=$?
  if [ $rc -eq "$want" ] && grep -q -- "$words" "$tmp/out"; then ok "$what: exit $rc, says '$words'"
  else notok "$what: exit $rc (want $want), says '$words'?"; sed 's/^/# /' "$tmp/out" | tail -n 8; fi
}
printf 'input 1 28 28\nconv 6 kernal=5\n' > "$tmp/typo.txt"
bad 1 "typo.txt:2:8" "a model file with a typo" -- "$train" "$tmp/typo.txt" $small
printf 'input 1 28 28\nconv 6 kernel=5\nrelu\nlinear 10\n' > "$tmp/noflat.txt"
bad 1 "flatten" "a layer that does not fit" -- "$train" "$tmp/noflat.txt" $small
printf 'input 3 32 32\nflatten\nlinear 10\n' > "$tmp/cifar.txt"
bad 1 "is 1x28x28 but" "a model whose input is not the data's" -- "$train" "$tmp/cifar.txt" $small
bad 1 "does not exist" "a data directory that is missing" -- "$train" "$ex/lenet5.txt" --data "$tmp/nowhere"
mkdir "$tmp/trunc" && cp "$tmp/small"/* "$tmp/trunc/" && head -c 20000 "$tmp/small/train-images-idx3-ubyte" > "$tmp/trunc/train-images-idx3-ubyte"
bad 1 "train-images-idx3-ubyte" "truncated images" -- "$train" "$ex/lenet5.txt" --data "$tmp/trunc"
mkdir "$tmp/mism" && cp "$tmp/small"/* "$tmp/mism/" && "${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/m2" 600 200 && cp "$tmp/m2/train-labels-idx1-ubyte" "$tmp/mism/"
bad 1 "640" "labels and images that disagree in count" -- "$train" "$ex/lenet5.txt" --data "$tmp/mism"
head -c 5000 "$tmp/lenet.safetensors" > "$tmp/trunc.safetensors"
bad 1 "trunc.safetensors" "a truncated checkpoint" -- "$train" "$ex/lenet5.txt" $small --init "$tmp/trunc.safetensors"
bad 1 "safetensors" "a file that is not safetensors" -- "$train" "$ex/lenet5.txt" $small --init "$ex/lenet5.txt"
bad 1 "does not fit the model" "a checkpoint from another model" -- "$train" "$ex/fashion-bn.txt" $small --init "$tmp/lenet.safetensors"
grep -q "missing: 1.running_mean" "$tmp/out" && grep -q "0.weight: shape \[6,1,5,5\] in the file, \[32,1,3,3\] in the model" "$tmp/out"
check $? "the mismatch lists the names and shapes that differ"
bad 1 "does not exist" "a device that does not exist" -- "$train" "$ex/lenet5.txt" $small --device 9:9
bad 1 "no OpenCL device matches" "a device name that matches nothing" -- "$train" "$ex/lenet5.txt" $small --device nosuchgpu
bad 1 "does not fit this data set" "--resume at a position past this data set's end" -- "$train" "$ex/lenet5.txt" $small --batch 64 --resume "$tmp/lenet.safetensors"
"${PYTHON3:-python3}" - "$tmp/lenet.safetensors" "$tmp/weights-only.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
del header["__metadata__"]
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-(8 + len(h)) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PY
bad 1 "holds weights but no training state" "--resume of a weights-only file" -- "$train" "$ex/lenet5.txt" $small --resume "$tmp/weights-only.safetensors"
"$train" "$ex/lenet5.txt" $small --init "$tmp/weights-only.safetensors" --steps 2 -q > "$tmp/out" 2>&1
check $? "--init takes a weights-only file (as PyTorch writes them)"
cp "$tmp/lenet.safetensors" "$tmp/keep.safetensors"
cp "$tmp/lenet.safetensors" "$tmp/good.safetensors"
bad 1 "became" "a loss that becomes NaN or infinite" -- "$train" "$ex/lenet5.txt" $small --init "$tmp/good.safetensors" --optimizer sgd --lr 1000000 --epochs 1 --save "$tmp/good.safetensors"
grep -q "by step [0-9]" "$tmp/out" && cmp -s "$tmp/good.safetensors" "$tmp/keep.safetensors" && [ -z "$(ls "$tmp" | grep '\.tmp')" ]
check $? "the message names the step and the last good checkpoint is kept unchanged, no temp file left"
bad 2 "unknown option" "an unknown flag" -- "$train" "$ex/lenet5.txt" --frobnicate
bad 2 "--epochs" "--epochs 0" -- "$train" "$ex/lenet5.txt" --epochs 0
bad 2 "--lr" "--lr abc" -- "$train" "$ex/lenet5.txt" --lr abc
bad 2 "--batch" "--batch -3" -- "$train" "$ex/lenet5.txt" --batch -3
bad 2 "exclude each other" "--init with --resume" -- "$train" "$ex/lenet5.txt" --init a --resume b
bad 2 "needs weights" "--eval without weights" -- "$train" "$ex/lenet5.txt" --eval
bad 2 "no model file" "no model file" -- "$train"
bad 2 "needs a value" "a flag without its value" -- "$train" "$ex/lenet5.txt" --lr
bad 2 "nesterov" "--nesterov without momentum" -- "$train" "$ex/lenet5.txt" --optimizer sgd --nesterov
bad 1 "No such file" "a model file that does not exist" -- "$train" "$tmp/nosuch.txt"
CLCNN_DEVICE=7:7 "$train" "$ex/lenet5.txt" $small --steps 1 > "$tmp/out" 2>&1
rc=$?; if [ $rc -eq 1 ] && grep -q "7:7" "$tmp/out"; then ok "CLCNN_DEVICE=7:7: exit 1 naming it"; else notok "CLCNN_DEVICE=7:7 (exit $rc)"; fi
echo "1..$n"
exit $fail
