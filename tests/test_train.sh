#!/bin/sh
# tests/test_train.sh - clcnn-train end to end on Fashion-MNIST (Debian's dataset-fashion-mnist):
# a short run whose loss falls and whose accuracy clears a floor, checkpoints that round-trip,
# a resumed run equal bit for bit to an uninterrupted one, profiling, every bad input, and
# checkpoints written before the training state was read with jansson.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"

train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
real=/usr/share/datasets/fashion-mnist
tap_tmpdir train
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

# 6. The training state is JSON read with jansson, whose integers are int64; the dropout
#    generator's state is u64. tests/checkpoint-v0 was written by clcnn-train before it used
#    jansson (dropout_seed 11400714819323198486 as a bare integer); v0-step12 is what that code
#    wrote when it resumed v0-step3 for 9 steps. Today's code must resume it exactly.
v0="$abs_top_srcdir/tests/checkpoint-v0"
tiny="$v0/tiny.txt $small --batch 64 -q --optimizer sgd --momentum 0.9"
cat > "$tmp/st.py" <<'PY'
import json, struct, sys
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    meta = h.pop("__metadata__")
    data = {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
    return meta, data, raw, n
def save(path, meta, raw, n):
    h = json.loads(raw[8:8 + n])
    h["__metadata__"] = meta
    b = json.dumps(h, separators=(",", ":")).encode()
    b += b" " * (-(8 + len(b)) % 8)
    open(path, "wb").write(struct.pack("<Q", len(b)) + b + raw[8 + n:])
U64 = ("dropout_seed", "dropout_counter")
cmd = sys.argv[1]
if cmd == "same":  # same OLD NEW: equal tensors, optimizer state and training state (u64s as numbers)
    ma, da, _, _ = load(sys.argv[2])
    mb, db, _, _ = load(sys.argv[3])
    ta, tb = json.loads(ma.pop("clcnn.train")), json.loads(mb.pop("clcnn.train"))
    assert da == db, "the tensors differ"
    assert ma == mb, "the metadata differ: %s" % sorted(k for k in ma if ma[k] != mb.get(k))
    for k in U64:
        ta[k], tb[k] = int(ta[k]), int(tb[k])
    assert ta == tb, "the training states differ: %s / %s" % (ta, tb)
elif cmd == "old":  # old FILE: the training state is the old format, a bare integer above 2^63
    t = json.loads(load(sys.argv[2])[0]["clcnn.train"])
    assert type(t["dropout_seed"]) is int and t["dropout_seed"] > 2**63, t
elif cmd == "set":  # set IN OUT SEED COUNTER str|int: the u64s written as strings or bare integers
    meta, _, raw, n = load(sys.argv[2])
    t = json.loads(meta["clcnn.train"])
    for k, v in zip(U64, sys.argv[4:6]):
        t[k] = v if sys.argv[6] == "str" else int(v)
    meta["clcnn.train"] = json.dumps(t, separators=(",", ":"))
    save(sys.argv[3], meta, raw, n)
elif cmd == "aug":  # aug IN OUT JSON: the training state's 'augment' set to a JSON value
    meta, _, raw, n = load(sys.argv[2])
    t = json.loads(meta["clcnn.train"])
    t["augment"] = json.loads(sys.argv[4])
    meta["clcnn.train"] = json.dumps(t, separators=(",", ":"))
    save(sys.argv[3], meta, raw, n)
elif cmd == "augment":  # augment FILE: the training state's 'augment', or - without one
    print(json.loads(load(sys.argv[2])[0]["clcnn.train"]).get("augment", "-"))
elif cmd == "get":  # get FILE: the u64s as they are written
    t = json.loads(load(sys.argv[2])[0]["clcnn.train"])
    print(*(repr(t[k]) for k in U64))
PY
st() { "${PYTHON3:-python3}" "$tmp/st.py" "$@"; }
"$train" $tiny --steps 9 --resume "$v0/v0-step3.safetensors" --save "$tmp/v0-12" > "$tmp/out" 2>&1
check $? "a checkpoint written before jansson resumes"
st old "$v0/v0-step3.safetensors" && st same "$v0/v0-step12.safetensors" "$tmp/v0-12" > "$tmp/out" 2>&1
check $? "it gives exactly what the old code gave (tensors, optimizer state, training state)"
[ "$(st get "$tmp/v0-12")" = "'11400714819323198486' '12'" ]
check $? "the new checkpoint writes the u64s as decimal strings"
# every u64: 2^64-1 and 2^63 as bare integers (an old file) and as strings (a new one); two
# steps later the counter is what it was plus two, and the seed is unchanged
m=18446744073709551615 m2=18446744073709551613 h=9223372036854775808 h2=9223372036854775810
for form in int str; do
  st set "$tmp/v0-12" "$tmp/u-$form" $m $m2 $form && "$train" $tiny --steps 2 --resume "$tmp/u-$form" --save "$tmp/u-$form-2" > "$tmp/out" 2>&1 &&
    [ "$(st get "$tmp/u-$form-2")" = "'$m' '$m'" ]
  check $? "dropout seed and counter 2^64-1 (as a JSON $form) round-trip through --resume and --save"
  st set "$tmp/v0-12" "$tmp/h-$form" $h $h $form && "$train" $tiny --steps 2 --resume "$tmp/h-$form" --save "$tmp/h-$form-2" > "$tmp/out" 2>&1 &&
    [ "$(st get "$tmp/h-$form-2")" = "'$h' '$h2'" ]
  check $? "dropout seed and counter 2^63 (as a JSON $form) round-trip through --resume and --save"
done
if ! cmp -s "$tmp/u-str-2" "$tmp/h-str-2" && cmp -s "$tmp/u-int-2" "$tmp/u-str-2"; then
  ok "the seed drives the dropout masks: another seed, other weights; the same seed as integer or string, the same file"
else notok "the seed drives the dropout masks (another seed, other weights; int = str)"; fi
st set "$tmp/v0-12" "$tmp/bad-u64" 18446744073709551616 0 str
bad 1 "'dropout_seed' is not a count from 0 to 2^64-1" "a dropout seed of 2^64" -- "$train" $tiny --steps 1 --resume "$tmp/bad-u64"
st set "$tmp/v0-12" "$tmp/bad-u64" -1 0 int
bad 1 "'dropout_seed' is not a count from 0 to 2^64-1 (-1)" "a negative dropout seed" -- "$train" $tiny --steps 1 --resume "$tmp/bad-u64"
st set "$tmp/v0-12" "$tmp/bad-u64" -99999999999999999999 0 int
bad 1 "the training state is not valid JSON: too big negative integer" "a bare integer below -2^63" -- "$train" $tiny --steps 1 --resume "$tmp/bad-u64"

# 7. --augment: random crops and flips drawn from (seed, epoch, sample), so that a resumed run
#    draws what the uninterrupted one drew; crop=0 is no augmentation; the setting is kept in
#    the training state and a resume must repeat it.
aug="$ex/fashion-bn.txt $small --batch 64 -q --augment hflip,crop=2"
"$train" $aug --epochs 2 --save "$tmp/aug-a" > "$tmp/out" 2>&1
check $? "--augment hflip,crop=2 trains"
grep -q "augment hflip,crop=2" "$tmp/out" && [ "$(st augment "$tmp/aug-a")" = "hflip,crop=2" ]
check $? "the run names its augmentation and the checkpoint's training state keeps it"
"$train" $aug --epochs 1 --save "$tmp/aug-b" > "$tmp/out" 2>&1 &&
  "$train" $aug --epochs 2 --resume "$tmp/aug-b" --save "$tmp/aug-c" > "$tmp/out" 2>&1
check $? "an augmented run resumes"
if cmp -s "$tmp/aug-a" "$tmp/aug-c"; then ok "augmented: 2 epochs = 1 epoch + resume for 1, byte for byte"
else notok "augmented: 2 epochs = 1 epoch + resume for 1"; fi
"$train" $aug --steps 3 --save "$tmp/aug-d" > "$tmp/out" 2>&1 &&
  "$train" $aug --steps 7 --resume "$tmp/aug-d" --save "$tmp/aug-e" > "$tmp/out" 2>&1 &&
  "$train" $aug --steps 10 --save "$tmp/aug-f" > "$tmp/out" 2>&1 && cmp -s "$tmp/aug-e" "$tmp/aug-f"
check $? "augmented: 10 steps = 3 steps + resume for 7 (mid-epoch), byte for byte"
"$train" "$ex/fashion-bn.txt" $small --batch 64 -q --epochs 2 --save "$tmp/plain" > "$tmp/out" 2>&1 &&
  "$train" "$ex/fashion-bn.txt" $small --batch 64 -q --epochs 2 --augment crop=0 --save "$tmp/crop0" > "$tmp/out" 2>&1 &&
  cmp -s "$tmp/plain" "$tmp/crop0" && ! cmp -s "$tmp/plain" "$tmp/aug-a" && [ "$(st augment "$tmp/plain")" = "-" ]
check $? "--augment crop=0 is the plain run, byte for byte (no 'augment' in its state); hflip,crop=2 is another"
"$train" "$ex/fashion-bn.txt" $small --batch 64 -q --epochs 2 --augment hflip --save "$tmp/flip" > "$tmp/out" 2>&1 &&
  "$train" "$ex/fashion-bn.txt" $small --batch 64 -q --epochs 2 --augment crop=2 --save "$tmp/crop2" > "$tmp/out" 2>&1 &&
  ! cmp -s "$tmp/flip" "$tmp/plain" && ! cmp -s "$tmp/crop2" "$tmp/plain" && ! cmp -s "$tmp/flip" "$tmp/crop2"
check $? "hflip alone and crop=2 alone each change the run"
"$train" "$ex/fashion-bn.txt" $small --batch 64 -q --epochs 1 --normalize --augment crop=3 --save "$tmp/norm-aug" > "$tmp/out" 2>&1
check $? "--augment with --normalize trains (the crop fills with normalised black)"
# with --lr 0 and no shuffle the weights and the order stay: each epoch's training loss differs
# only because its crops and flips are drawn anew (a plain run repeats its loss exactly)
"$train" "$ex/lenet5.txt" $small --batch 64 -q --epochs 3 --lr 0 --no-shuffle --init-rule he --augment hflip,crop=2 > "$tmp/out" 2>&1
losses=$(sed -n 's/^epoch [0-9]*: train loss \([0-9.]*\).*/\1/p' "$tmp/out" | sort -u | wc -l)
"$train" "$ex/lenet5.txt" $small --batch 64 -q --epochs 3 --lr 0 --no-shuffle --init-rule he > "$tmp/out" 2>&1
plain=$(sed -n 's/^epoch [0-9]*: train loss \([0-9.]*\).*/\1/p' "$tmp/out" | sort -u | wc -l)
if [ "$losses" -eq 3 ] && [ "$plain" -eq 1 ]; then ok "every epoch draws new crops and flips (3 epochs at lr 0: 3 losses, 1 without --augment)"
else notok "every epoch draws new crops and flips ($losses losses; $plain without --augment)"; fi
bad 1 "was trained with --augment hflip,crop=2; resume it with the same augmentation (not none)" "resuming an augmented run without --augment" -- "$train" "$ex/fashion-bn.txt" $small --batch 64 --epochs 2 --resume "$tmp/aug-b"
bad 1 "was trained with --augment none; resume it with the same augmentation (not hflip)" "resuming a plain run with --augment" -- "$train" "$ex/fashion-bn.txt" $small --batch 64 --epochs 3 --augment hflip --resume "$tmp/plain"
for v in '5' '"flip"' '"crop=99"'; do
  st aug "$tmp/aug-b" "$tmp/aug-bad" "$v"
  bad 1 "the training state's 'augment' is not an augmentation as --augment takes it" "a training state whose 'augment' is $v" -- "$train" $aug --epochs 2 --resume "$tmp/aug-bad"
done
bad 2 "--augment flip: 'flip' is not an augmentation" "--augment flip" -- "$train" "$ex/lenet5.txt" --augment flip
bad 2 "--augment crop=65: crop's padding must be a whole number from 0 to 64, not '65'" "--augment crop=65" -- "$train" "$ex/lenet5.txt" --augment crop=65
bad 2 "'hflip' is given twice" "--augment hflip,hflip" -- "$train" "$ex/lenet5.txt" --augment hflip,hflip
bad 2 "crop= needs a padding" "--augment crop=" -- "$train" "$ex/lenet5.txt" --augment crop=
bad 2 "is not an augmentation" "--augment ''" -- "$train" "$ex/lenet5.txt" --augment ''
bad 2 "--augment is for training" "--eval with --augment" -- "$train" "$ex/lenet5.txt" --eval --init "$tmp/lenet.safetensors" --augment hflip
echo "1..$n"
exit $fail
