#!/bin/sh
# tests/test_multidev.sh - clcnn-train on several devices (--device LIST: one replica of the net
# on each, every batch split among them, the gradients combined before each step), on two PoCL
# CPU devices (POCL_DEVICES="pthread pthread", unless the environment chose its devices):
#   - nets without batch norm (LeNet-5; a segmentation net; a detector; dropout in each) trained
#     with SGD on 2 devices end with the weights of the same run on 1 device, to float rounding,
#     also with a last batch of one sample that leaves the second replica idle;
#   - with batch norm (per-replica statistics) two identical runs write identical checkpoints, and
#     13 steps = 6 steps + a resume for 7 on 2 devices, byte for byte;
#   - a checkpoint resumed on another number of devices, and every bad device list, refused.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"

POCL_DEVICES=${POCL_DEVICES:-pthread pthread}
export POCL_DEVICES
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
real=/usr/share/datasets/fashion-mnist
tap_tmpdir multidev
need_torch_python
if [ ! -f "$real/train-images-idx3-ubyte.gz" ]; then
  echo "Bail out! $real is missing: apt-get install dataset-fashion-mnist"
  exit 1
fi
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/small" 640 200 || { echo "Bail out! mkdata.py"; exit 1; }
small="--data $tmp/small"
two="--device cpu:all"
"$train" "$ex/lenet5.txt" $small $two --steps 1 -q > "$tmp/out" 2>&1
grep -q "on 2 devices" "$tmp/out" || { echo "Bail out! two OpenCL CPU devices are needed (PoCL: POCL_DEVICES=\"pthread pthread\")"; sed 's/^/# /' "$tmp/out"; exit 1; }

# The largest difference between two checkpoints' tensors, and whether they hold the same names.
same() { # same A B TOL WHAT
  if d=$("$py" "$abs_top_srcdir/tests/cmp_weights.py" "$1" "$2" "$3" 2>&1); then ok "$4: $d"; else notok "$4: $d"; fi
}
sgd="--optimizer sgd --lr 0.05 --momentum 0.9 -q"

# 1. LeNet-5 with a dropout line: 2 devices = 1 device (SGD, 8 steps of 64: 32 + 32).
sed 's/^flatten$/flatten\ndropout p=0.25/' "$ex/lenet5.txt" > "$tmp/lenet-drop.txt"
"$train" "$tmp/lenet-drop.txt" $small --batch 64 --steps 8 $sgd --save "$tmp/l1" > "$tmp/out" 2>&1
check $? "LeNet-5 with dropout, 8 steps on 1 device"
"$train" "$tmp/lenet-drop.txt" $small --batch 64 --steps 8 $sgd $two --save "$tmp/l2" > "$tmp/out" 2>&1
check $? "the same on 2 devices"
grep -q "gradients combined over 2 replicas in 8 steps" "$tmp/out" && ok "it says how long combining the gradients took" ||
  notok "it says how long combining the gradients took"
same "$tmp/l1" "$tmp/l2" 1e-5 "LeNet-5 with dropout: the weights after 8 steps on 2 devices are those on 1"
# a batch of 71: 9 batches and a last one of 1 sample, which the second replica sits out
"$train" "$tmp/lenet-drop.txt" $small --batch 71 --epochs 1 $sgd --save "$tmp/l3" > "$tmp/out" 2>&1
"$train" "$tmp/lenet-drop.txt" $small --batch 71 --epochs 1 $sgd $two --save "$tmp/l4" > "$tmp/out" 2>&1
check $? "an epoch of 640 in batches of 71 (the last of 1) on 2 devices"
same "$tmp/l3" "$tmp/l4" 1e-5 "the last batch of 1 sample, replica 1 idle: the same weights as on 1 device"

# 2. Segmentation and detection nets without batch norm: 2 devices = 1 device.
small_set
cat > "$tmp/seg.txt" <<'EOF'
input 1 64 64
conv 8 kernel=3 pad=1
relu
dropout p=0.2
conv 11 kernel=1
xent(3) ignore=255
EOF
cat > "$tmp/det.txt" <<'EOF'
input 1 64 64
conv 8 kernel=3 stride=2 pad=1
relu
maxpool 2
conv 16 kernel=3 stride=2 pad=1
relu
dropout p=0.2
grid = conv 15 kernel=1
det = yolo(grid)
EOF
for t in seg det; do
  "$train" "$tmp/$t.txt" --data "$tmp/set" --batch 10 --steps 6 $sgd --lr 0.01 --save "$tmp/$t-1" > "$tmp/out" 2>&1
  check $? "$t: 6 steps on 1 device"
  "$train" "$tmp/$t.txt" --data "$tmp/set" --batch 10 --steps 6 $sgd --lr 0.01 $two --save "$tmp/$t-2" > "$tmp/out" 2>&1
  check $? "$t: 6 steps on 2 devices"
  same "$tmp/$t-1" "$tmp/$t-2" 1e-5 "$t: the weights after 6 steps on 2 devices are those on 1"
done

# 3. Batch norm: the same run twice, the same bytes; exact resume on 2 devices.
bn="$ex/fashion-bn.txt $small --batch 64 -q $two"
"$train" $bn --steps 13 --save "$tmp/b-a" > "$tmp/out" 2>&1
check $? "fashion-bn (batch norm, dropout), 13 steps on 2 devices"
"$train" $bn --steps 13 --save "$tmp/b-b" > "$tmp/out" 2>&1
if cmp -s "$tmp/b-a" "$tmp/b-b"; then ok "two identical runs on 2 devices write the same bytes"
else notok "two identical runs on 2 devices write the same bytes"; fi
"$train" $bn --steps 6 --save "$tmp/b-c" > "$tmp/out" 2>&1
"$train" $bn --steps 7 --resume "$tmp/b-c" --save "$tmp/b-c" > "$tmp/out" 2>&1
check $? "resumed on 2 devices from batch 6 of 10"
if cmp -s "$tmp/b-a" "$tmp/b-c"; then ok "13 steps = 6 steps + resume for 7 on 2 devices, byte for byte"
else notok "13 steps = 6 steps + resume for 7 on 2 devices"; fi
"$train" "$ex/fashion-bn.txt" $small --batch 64 -q --steps 2 --save "$tmp/b-one" > "$tmp/out" 2>&1

# 4. Refusals.
bad 1 "was trained on 2 devices; resume it on as many" "a 2-device checkpoint resumed on 1 device" -- \
  "$train" "$ex/fashion-bn.txt" $small --batch 64 --steps 1 --resume "$tmp/b-c"
bad 1 "was trained on 1 device; resume it on as many" "a 1-device checkpoint resumed on 2 devices" -- \
  "$train" $bn --steps 1 --resume "$tmp/b-one"
bad 1 "named twice" "--device 0:0,0:0" -- "$train" "$ex/lenet5.txt" $small --steps 1 --device 0:0,0:0
bad 1 "does not exist" "--device 0:0,0:9" -- "$train" "$ex/lenet5.txt" $small --steps 1 --device 0:0,0:9
bad 1 "empty item" "--device 0:0," -- "$train" "$ex/lenet5.txt" $small --steps 1 --device 0:0,
bad 1 "no device is a" "--device accelerator:all" -- "$train" "$ex/lenet5.txt" $small --steps 1 --device accelerator:all
bad 1 "smaller than the 2 replicas" "--batch 1 on 2 devices" -- "$train" "$ex/lenet5.txt" $small --steps 1 --batch 1 $two
bad 1 "--profile times one device" "--profile on 2 devices" -- \
  "$train" "$ex/lenet5.txt" $small --steps 1 $two --profile "$tmp/p.json"
# evaluation takes the first device of a list
"$train" "$tmp/lenet-drop.txt" $small --batch 64 --eval --init "$tmp/l2" $two > "$tmp/out" 2>&1
check $? "--eval with a device list runs on its first device"
echo "1..$n"
exit $fail
