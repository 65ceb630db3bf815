#!/bin/sh
# tests/test_seg.sh - clcnn-train on a segmentation set (clcnn-mkdata's): examples/unet-fashion.txt
# trains with per-pixel cross-entropy, its loss falls, --eval of the checkpoint prints what the
# run ended with, and PyTorch - the same graph built from the model file, the checkpoint loaded
# strictly, the test PNGs decoded by Python's zlib - computes the same test loss, pixel accuracy
# and IoU; every model that cannot train on the set is refused with the reason.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
need_torch_python
tap_tmpdir seg

small_set

# 1. Training: 80 steps of the U-Net (5 epochs of 16 batches); the loss falls; the summary and
#    the IoU table.
# (at the learning rate of the recipe in examples/unet-fashion.txt, 0.002)
"$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --steps 80 --log-every 8 --lr 0.002 --save "$tmp/unet.safetensors" > "$tmp/out" 2>&1
check $? "examples/unet-fashion.txt trains 80 steps on the segmentation set"
first=$(sed -n 's/^epoch 1 batch 8\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
last=$(sed -n 's/^epoch 5 batch 16\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
tloss=$(sed -n 's/^final test mean IoU .* loss \([0-9.]*\)$/\1/p' "$tmp/out")
# ln 11 = 2.398 is the loss of a uniform guess over the 11 classes
if [ -n "$first" ] && [ -n "$last" ] && [ -n "$tloss" ] && awk -v a="$first" -v b="$last" -v t="$tloss" 'BEGIN { exit !(b < a && t < 0.75 * log(11)) }'; then
  ok "the per-pixel loss falls ($first at step 8, $last at step 80) and the test loss $tloss is below 3/4 of a uniform guess's"
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

from clcnn_rng import M, splitmix

def augment(x, t, seed, epoch, index, pad, hflip):
    """clcnn-train's --augment of sample INDEX: its key from (seed, epoch, index), then RandomCrop
    (image padded with 0, mask with 255) and RandomHorizontalFlip with the key's draws"""
    st, r = splitmix(seed ^ 0x243f6a8885a308d3)
    st, r = splitmix(r ^ epoch)
    st = r ^ index
    st, r = splitmix(st); oy = ((r * (2 * pad + 1)) >> 64) - pad
    st, r = splitmix(st); ox = ((r * (2 * pad + 1)) >> 64) - pad
    st, r = splitmix(st); flip = hflip and (r >> 63)
    H, W = t.shape
    xp = torch.nn.functional.pad(x, (pad,) * 4, value=0.0)
    tp = torch.nn.functional.pad(t, (pad,) * 4, value=255)
    x = xp[:, pad + oy:pad + oy + H, pad + ox:pad + ox + W]
    t = tp[pad + oy:pad + oy + H, pad + ox:pad + ox + W]
    return (x.flip(-1), t.flip(-1)) if flip else (x, t)

cmd, model, weights, root = sys.argv[2:6]
if cmd == "first":  # the first training batch's loss, train mode (batch statistics)
    x, t = split(root, "train", 16)
    if len(sys.argv) > 7:  # crop=P[,hflip]: as --augment draws them at seed 1, epoch 0
        pad, hflip = int(sys.argv[7].split(",")[0]), "hflip" in sys.argv[7]
        pairs = [augment(x[i], t[i], 1, 0, i, pad, hflip) for i in range(16)]
        x, t = torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
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
#    and with --augment: PyTorch draws the same crops and flips from (seed, epoch, sample), pads
#    images with 0 and masks with 255: the masks moved with their images
"$train" "$ex/unet-fashion.txt" --data "$tmp/set" --init "$tmp/fresh.safetensors" --no-shuffle --steps 1 --log-every 1 --batch 16 --augment crop=6,hflip > "$tmp/out" 2>&1
l1=$(sed -n 's/^epoch 1 batch 1\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
"$py" "$tmp/torch_seg.py" "$abs_top_srcdir/tests" first "$ex/unet-fashion.txt" "$tmp/fresh.safetensors" "$tmp/set" "${l1:-nan}" 6,hflip > "$tmp/out" 2>&1
check $? "--augment crop=6,hflip: the first step's loss equals PyTorch's on the same crops and flips of images and masks ($(tail -n 1 "$tmp/out"))"

# 5. What cannot train on a segmentation set.
bad 1 "is 1x64x64 but" "a classifier for 28x28 images" -- "$train" "$ex/lenet5.txt" --data "$tmp/set" --steps 1
sed '/^seg = xent/d' "$ex/unet-fashion.txt" > "$tmp/noloss.txt"
bad 1 "needs one loss line, a per-pixel cross-entropy of its output with masks' ignore value, e.g. 'xent(logits) ignore=255'" \
  "a U-Net without its loss line" -- "$train" "$tmp/noloss.txt" --data "$tmp/set" --steps 1
sed 's/^logits = conv 11 kernel=1 .*/logits = conv 11 kernel=1\nsmall = maxpool 2/; s/^seg = xent(logits)/seg = xent(small)/' "$ex/unet-fashion.txt" > "$tmp/small.txt"
bad 1 "a segmentation net ends in a score map of the image's size" "a net whose scores are 32x32 for 64x64 images" -- "$train" "$tmp/small.txt" --data "$tmp/set" --steps 1
sed 's/^logits = conv 11 kernel=1/logits = conv 8 kernel=1/' "$ex/unet-fashion.txt" > "$tmp/eight.txt"
bad 1 "the data has 11 classes but" "8 score maps for 11 classes" -- "$train" "$tmp/eight.txt" --data "$tmp/set" --steps 1

# 6. --predict: the checkpoint's masks for the test images, as palette PNGs in VOC's colours, and
#    overlays; scored against the true masks in Python they give exactly --eval's figures, also
#    with --normalize (the training split's statistics on both paths).
cat > "$tmp/check_pred.py" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from pngread import png

root, out, want = sys.argv[2], sys.argv[3], [float(v) for v in sys.argv[4].split()]
C = int(sys.argv[5]) if len(sys.argv) > 5 else 11
voc = []
for c in range(256):  # VOC's colour map, from its definition
    r = g = b = 0
    for j in range(8):
        r |= ((c >> (3 * j)) & 1) << (7 - j)
        g |= ((c >> (3 * j + 1)) & 1) << (7 - j)
        b |= ((c >> (3 * j + 2)) & 1) << (7 - j)
    voc.append((r, g, b))
names = sorted(os.listdir(os.path.join(root, "test", "images")))
assert sorted(os.listdir(os.path.join(out, "masks"))) == names, "one mask per image"
assert sorted(os.listdir(os.path.join(out, "overlays"))) == names, "one overlay per image"
conf = [[0] * C for _ in range(C)]
for n in names:
    ct, w, h, img, _ = png(os.path.join(root, "test", "images", n))
    ct, w, h, truth, _ = png(os.path.join(root, "test", "masks", n))
    ct, w, h, pred, pal = png(os.path.join(out, "masks", n))
    assert ct == 3 and pal == voc, (n, "a palette PNG in VOC's colours")
    ct, w, h, over, _ = png(os.path.join(out, "overlays", n))
    assert ct == 2 and len(over) == 3 * w * h, (n, "an RGB overlay")
    for p in range(w * h):
        c = pred[p]
        assert c < C, (n, p, c)
        for k in range(3):
            v = img[3 * p + k] if len(img) == 3 * w * h else img[p]
            want_v = v if c == 0 else (v + voc[c][k] + 1) // 2
            assert over[3 * p + k] == want_v, (n, p, k, over[3 * p + k], want_v)
        if truth[p] != 255: conf[truth[p]][c] += 1
tp = [conf[c][c] for c in range(C)]
union = [sum(conf[c]) + sum(conf[r][c] for r in range(C)) - tp[c] for c in range(C)]
iou = [tp[c] / union[c] for c in range(C) if union[c]]
fg = [tp[c] / union[c] for c in range(1, C) if union[c]]
got = [sum(iou) / len(iou), sum(fg) / len(fg), 100 * sum(tp) / sum(map(sum, conf))]
print("masks give", got, "--eval said", want)
if want:
  assert abs(got[0] - want[0]) < 1e-4 and abs(got[1] - want[1]) < 1e-4 and abs(got[2] - want[2]) < 0.006, (got, want)
PY
for norm in "" --normalize; do
  "$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --eval --init "$tmp/unet.safetensors" $norm > "$tmp/out" 2>&1
  ev=$(sed -n 's/^test loss \([0-9.]*\)  pixel accuracy \([0-9.]*\)%  mean IoU \([0-9.]*\) (11 classes), \([0-9.]*\) without background.*/\3 \4 \2/p' "$tmp/out")
  [ -n "$norm" ] || ev_plain=$ev
  rm -rf "$tmp/pred"
  "$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --init "$tmp/unet.safetensors" $norm --predict "$tmp/set/test" --out "$tmp/pred" > "$tmp/out" 2>&1 &&
    grep -q "^--predict: 48 images from $tmp/set/test/images: masks in $tmp/pred/masks, overlays in $tmp/pred/overlays" "$tmp/out" &&
    "$py" "$tmp/check_pred.py" "$abs_top_srcdir/tests" "$tmp/set" "$tmp/pred" "${ev:-nan nan nan}" > "$tmp/out" 2>&1
  check $? "--predict${norm:+ $norm} writes 48 palette masks in VOC's colours and their overlays; scored in Python they give --eval's figures ($(tail -n 1 "$tmp/out"))"
done
# a directory of images itself (no images/ below it), and a second run over the same OUTDIR
"$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --init "$tmp/unet.safetensors" --predict "$tmp/set/test/images" --out "$tmp/pred" > "$tmp/out" 2>&1 &&
  "$py" "$tmp/check_pred.py" "$abs_top_srcdir/tests" "$tmp/set" "$tmp/pred" "${ev_plain:-nan nan nan}" > "$tmp/out" 2>&1
check $? "--predict DIR/images and an existing OUTDIR: the same masks"

# an RGB set and --normalize: three channels, each with its own mean and std, on both paths
"$py" - "$tmp/set" "$tmp/rgb" <<'PY'
import os, struct, sys, zlib
sys.path.insert(0, os.environ["abs_top_srcdir"] + "/tests")
from pngread import png
def chunk(k, b): return struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b))
src, dst = sys.argv[1], sys.argv[2]
for split in ("train", "test"):
    for d in ("images", "masks"): os.makedirs(os.path.join(dst, split, d))
    for n in sorted(os.listdir(os.path.join(src, split, "images"))):
        _, w, h, px, _ = png(os.path.join(src, split, "images", n))
        rgb = bytes(b for v in px for b in (v, 255 - v, (v * 3) % 256))
        raw = b"".join(b"\0" + rgb[y * 3 * w:(y + 1) * 3 * w] for y in range(h))
        open(os.path.join(dst, split, "images", n), "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        os.link(os.path.join(src, split, "masks", n), os.path.join(dst, split, "masks", n))
PY
sed 's/^input 1 64 64/input 3 64 64/' "$ex/unet-fashion.txt" > "$tmp/unet-rgb.txt"
"$train" "$tmp/unet-rgb.txt" --data "$tmp/rgb" --batch 16 --steps 3 --normalize -q --save "$tmp/rgb.safetensors" > "$tmp/out" 2>&1 &&
  "$train" "$tmp/unet-rgb.txt" --data "$tmp/rgb" --batch 16 --eval --normalize --init "$tmp/rgb.safetensors" > "$tmp/out" 2>&1
ev=$(sed -n 's/^test loss \([0-9.]*\)  pixel accuracy \([0-9.]*\)%  mean IoU \([0-9.]*\) (11 classes), \([0-9.]*\) without background.*/\3 \4 \2/p' "$tmp/out")
"$train" "$tmp/unet-rgb.txt" --data "$tmp/rgb" --batch 16 --normalize --init "$tmp/rgb.safetensors" --predict "$tmp/rgb/test" --out "$tmp/pred-rgb" > "$tmp/out" 2>&1 &&
  "$py" "$tmp/check_pred.py" "$abs_top_srcdir/tests" "$tmp/rgb" "$tmp/pred-rgb" "${ev:-nan nan nan}" > "$tmp/out" 2>&1
check $? "--predict --normalize on RGB images gives --eval --normalize's figures, and RGB overlays ($(tail -n 1 "$tmp/out"))"

# all scores tied (the last conv's weights and bias zero): every pixel is class 0, as torch.argmax
# takes the first largest; the overlays are the images
"$py" - "$tmp/unet.safetensors" "$tmp/tied.safetensors" <<'PY'
import sys
from safetensors.torch import load_file, save_file
t = load_file(sys.argv[1])
save_file({k: v * 0 if k.startswith("logits.") else v for k, v in t.items()}, sys.argv[2])
PY
"$train" "$ex/unet-fashion.txt" --batch 16 --init "$tmp/tied.safetensors" --predict "$tmp/set/test" --out "$tmp/tied" > "$tmp/out" 2>&1 &&
  "$py" - "$abs_top_srcdir/tests" "$tmp/set/test/images" "$tmp/tied" > "$tmp/out" 2>&1 <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from pngread import png
for n in sorted(os.listdir(sys.argv[2])):
    _, w, h, img, _ = png(os.path.join(sys.argv[2], n))
    assert set(png(os.path.join(sys.argv[3], "masks", n))[3]) == {0}, n
    assert png(os.path.join(sys.argv[3], "overlays", n))[3] == bytes(v for v in img for _ in range(3)), n
PY
check $? "tied scores: every pixel class 0 (the first largest), every overlay its image"

# --predict's bad cases
u="$ex/unet-fashion.txt"
w="$tmp/unet.safetensors"
bad 2 "--predict needs --out OUTDIR" "--predict without --out" -- "$train" "$u" --init "$w" --predict "$tmp/set/test"
bad 2 "--out is where --predict writes" "--out without --predict" -- "$train" "$u" --init "$w" --out "$tmp/o"
bad 2 "--predict needs weights" "--predict without weights" -- "$train" "$u" --predict "$tmp/set/test" --out "$tmp/o"
bad 2 "--predict only predicts" "--predict with --epochs" -- "$train" "$u" --init "$w" --predict "$tmp/set/test" --out "$tmp/o" --epochs 2
bad 2 "--predict only predicts" "--predict with --eval" -- "$train" "$u" --init "$w" --predict "$tmp/set/test" --out "$tmp/o" --eval
bad 1 "$tmp/nothing: No such file or directory" "--predict on a missing directory" -- "$train" "$u" --init "$w" --predict "$tmp/nothing" --out "$tmp/o"
mkdir "$tmp/empty"
bad 1 "holds no .png image" "--predict on a directory without PNGs" -- "$train" "$u" --init "$w" --predict "$tmp/empty" --out "$tmp/o"
: > "$tmp/afile"
bad 1 "$tmp/afile: exists and is not a directory" "--out naming a file" -- "$train" "$u" --init "$w" --predict "$tmp/set/test" --out "$tmp/afile"
mkdir "$tmp/odd"
cp "$abs_top_srcdir/tests/fuzz/png/"*.png "$tmp/odd/" 2> /dev/null
first_png=$(ls "$tmp/set/test/images" | head -n 1)
head -c 300 "$tmp/set/test/images/$first_png" > "$tmp/empty/cut.png"
bad 1 "cut.png" "--predict on a PNG cut short names it" -- "$train" "$u" --init "$w" --predict "$tmp/empty" --out "$tmp/o"
rm -f "$tmp/empty/cut.png"
"$py" - "$tmp/empty/small.png" <<'PY'
import struct, sys, zlib
def chunk(k, b): return struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b))
w = h = 28
raw = b"".join(b"\0" + bytes(w) for _ in range(h))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
bad 1 "small.png is 1x28x28 but" "--predict on an image of the wrong size" -- "$train" "$u" --init "$w" --predict "$tmp/empty" --out "$tmp/o"
bad 1 "--predict draws segmentation masks: " "--predict with a classifier" -- "$train" "$ex/lenet5.txt" --init "$w" --predict "$tmp/empty" --out "$tmp/o"

# 7. --augment on a segmentation set: the masks move with their images (lib: test_data); the
#    run trains and its loss falls.
"$train" "$ex/unet-fashion.txt" --data "$tmp/set" --batch 16 --steps 32 --log-every 8 --augment hflip,crop=4 > "$tmp/out" 2>&1
first=$(sed -n 's/^epoch 1 batch 8\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
last=$(sed -n 's/^epoch 2 batch 16\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' && grep -q "augment hflip,crop=4" "$tmp/out"; then
  ok "--augment hflip,crop=4 trains the U-Net on the segmentation set (loss $first at step 8, $last at step 32)"
else notok "--augment hflip,crop=4 on the segmentation set ($first -> $last)"; sed 's/^/# /' "$tmp/out" | tail -n 20; fi
echo "1..$n"
exit $fail
