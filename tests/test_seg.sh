#!/bin/sh
# tests/test_seg.sh - clcnn-train on a segmentation set (clcnn-mkdata's): examples/unet-fashion.txt
# trains with per-pixel cross-entropy, its loss falls, --eval of the checkpoint prints what the
# run ended with, and PyTorch - the same graph built from the model file, the checkpoint loaded
# strictly, the test PNGs decoded by Python's zlib - computes the same test loss, pixel accuracy
# and IoU; every model that cannot train on the set is refused with the reason.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
train="$abs_top_builddir/tools/clcnn-train"
mk="$abs_top_builddir/tools/clcnn-mkdata"
ex="$abs_top_srcdir/examples"
need_torch_python
tap_tmpdir seg

"$mk" "$tmp/set" --train 256 --test 48 -q > "$tmp/out" 2>&1
check $? "clcnn-mkdata writes a small set (256 training, 48 test canvases)"

# 1. Training: 40 steps of the U-Net; the loss falls; the summary and the IoU table.
"$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --steps 40 --log-every 8 --save "$tmp/unet.safetensors" > "$tmp/out" 2>&1
check $? "examples/unet-fashion.txt trains 40 steps on the segmentation set"
first=$(sed -n 's/^epoch 1 batch 8\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
last=$(sed -n 's/^epoch 3 batch 8\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
tloss=$(sed -n 's/^final test mean IoU .* loss \([0-9.]*\)$/\1/p' "$tmp/out")
# ln 11 = 2.398 is the loss of a uniform guess over the 11 classes
if [ -n "$first" ] && [ -n "$last" ] && [ -n "$tloss" ] && awk -v a="$first" -v b="$last" -v t="$tloss" 'BEGIN { exit !(b < a && t < 0.75 * log(11)) }'; then
  ok "the per-pixel loss falls ($first at step 8, $last at step 40) and the test loss $tloss is below 3/4 of a uniform guess's"
else notok "the per-pixel loss falls ($first -> $last; test $tloss)"; sed 's/^/# /' "$tmp/out" | tail -n 20; fi
final=$(sed -n 's/^final test mean IoU \([0-9.]*\) (11 classes), \([0-9.]*\) without background, pixel accuracy \([0-9.]*\)%, loss \([0-9.]*\)$/\1 \2 \3 \4/p' "$tmp/out")
[ -n "$final" ] && grep -q "IoU of each class on the test set" "$tmp/out" && [ "$(grep -c '^  *[0-9]*  [0-9.-]' "$tmp/out")" -ge 11 ]
check $? "it reports mean IoU over 11 classes and without background, pixel accuracy, loss, and each class's IoU ($final)"

# 2. --eval of the checkpoint: the same figures.
"$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --eval --init "$tmp/unet.safetensors" > "$tmp/out" 2>&1
check $? "--eval --init the checkpoint exits 0"
ev=$(sed -n 's/^test loss \([0-9.]*\)  pixel accuracy \([0-9.]*\)%  mean IoU \([0-9.]*\) (11 classes), \([0-9.]*\) without background.*/\3 \4 \2 \1/p' "$tmp/out")
if [ -n "$ev" ] && [ "$ev" = "$final" ]; then ok "--eval prints what the run ended with ($ev)"
else notok "--eval prints what the run ended with ('$ev' vs '$final')"; fi

# 3. PyTorch computes the same metrics from the checkpoint.
cat > "$tmp/torch_seg.py" <<'PY'
import os, sys
import torch
sys.path.insert(0, sys.argv[1])
from clcnn_torch import GraphNet
from safetensors.torch import load_file

from pngread import png as png_bytes


def png(path):
    _, w, h, px, _ = png_bytes(path)
    return torch.tensor(list(px), dtype=torch.float64).reshape(h, w)

def load(model, weights, train):
    net = GraphNet(model).double().train(train)
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in load_file(weights).items()}, strict=True)
    return net

def split(root, name, count=None):
    names = sorted(os.listdir(os.path.join(root, name, "images")))[:count]
    x = torch.stack([png(os.path.join(root, name, "images", n)) for n in names]).unsqueeze(1) / 255.0
    t = torch.stack([png(os.path.join(root, name, "masks", n)) for n in names]).long()
    return x, t

cmd, model, weights, root = sys.argv[2:6]
if cmd == "first":  # the first training batch's loss, train mode (batch statistics)
    x, t = split(root, "train", 16)
    loss = torch.nn.functional.cross_entropy(load(model, weights, True)(x), t, ignore_index=255).item()
    print("clcnn", float(sys.argv[6]), "torch", loss)
    assert abs(float(sys.argv[6]) - loss) < 1e-4
    sys.exit(0)
x, t = split(root, "test")
with torch.no_grad():
    z = load(model, weights, False)(x)
loss = torch.nn.functional.cross_entropy(z, t, ignore_index=255).item()
pred, keep = z.argmax(1), t != 255
C = z.shape[1]
conf = torch.zeros(C, C, dtype=torch.long)
conf.index_put_((t[keep], pred[keep]), torch.ones(int(keep.sum()), dtype=torch.long), accumulate=True)
tp = conf.diag().double()
union = conf.sum(0).double() + conf.sum(1).double() - tp
iou = tp / union  # NaN where a class is in neither
miou, fg = iou[~iou.isnan()].mean().item(), iou[1:][~iou[1:].isnan()].mean().item()
acc = (tp.sum() / conf.sum()).item()
got = [float(v) for v in sys.argv[6].split()]  # mIoU, without background, pixel acc %, loss
want = [miou, fg, 100 * acc, loss]
print("clcnn", got, "torch", want)
assert abs(got[0] - want[0]) < 2e-3 and abs(got[1] - want[1]) < 2e-3 and abs(got[2] - want[2]) < 0.05, (got, want)
assert abs(got[3] - want[3]) < 1e-3 * max(1, want[3]), (got, want)
PY
"$py" "$tmp/torch_seg.py" "$abs_top_srcdir/tests" eval "$ex/unet-fashion.txt" "$tmp/unet.safetensors" "$tmp/set" "$final" > "$tmp/out" 2>&1
check $? "PyTorch, from the checkpoint and the PNGs, gets the same test loss, pixel accuracy and mean IoUs ($(tail -n 1 "$tmp/out"))"

# 4. The first step's loss: from the same initial weights (PyTorch's fresh state_dict) and the
#    first 16 training canvases in name order (--no-shuffle), PyTorch's train-mode forward gives
#    the same per-pixel cross-entropy: images and masks reach the loss pixel for pixel.
"$py" "$abs_top_srcdir/tests/torch_graph.py" fresh "$ex/unet-fashion.txt" "$tmp/fresh.safetensors" 3 &&
  "$train" "$ex/unet-fashion.txt" --data "$tmp/set" --init "$tmp/fresh.safetensors" --no-shuffle --steps 1 --log-every 1 --batch 16 > "$tmp/out" 2>&1
l1=$(sed -n 's/^epoch 1 batch 1\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
"$py" "$tmp/torch_seg.py" "$abs_top_srcdir/tests" first "$ex/unet-fashion.txt" "$tmp/fresh.safetensors" "$tmp/set" "${l1:-nan}" > "$tmp/out" 2>&1
check $? "the first step's per-pixel loss equals PyTorch's on the same weights and canvases ($(tail -n 1 "$tmp/out"))"

# 5. What cannot train on a segmentation set.
bad 1 "is 1x64x64 but" "a classifier for 28x28 images" -- "$train" "$ex/lenet5.txt" --data "$tmp/set" --steps 1
sed '/^seg = xent/d' "$ex/unet-fashion.txt" > "$tmp/noloss.txt"
bad 1 "needs one loss line, a per-pixel cross-entropy of its output with masks' ignore value, e.g. 'xent(logits) ignore=255'" \
  "a U-Net without its loss line" -- "$train" "$tmp/noloss.txt" --data "$tmp/set" --steps 1
sed 's/^logits = conv 11 kernel=1 .*/logits = conv 11 kernel=1\nsmall = maxpool 2/; s/^seg = xent(logits)/seg = xent(small)/' "$ex/unet-fashion.txt" > "$tmp/small.txt"
bad 1 "a segmentation net ends in a score map of the image's size" "a net whose scores are 32x32 for 64x64 images" -- "$train" "$tmp/small.txt" --data "$tmp/set" --steps 1
sed 's/^logits = conv 11 kernel=1/logits = conv 8 kernel=1/' "$ex/unet-fashion.txt" > "$tmp/eight.txt"
bad 1 "the data has 11 classes but" "8 score maps for 11 classes" -- "$train" "$tmp/eight.txt" --data "$tmp/set" --steps 1
bad 1 "--augment: not for segmentation sets yet" "--augment on a segmentation set" -- "$train" "$ex/unet-fashion.txt" --data "$tmp/set" --steps 1 --augment hflip
echo "1..$n"
exit $fail
