#!/bin/sh
# tests/test_det.sh - clcnn-train on a detection set (clcnn-mkdata's YOLO labels):
# examples/detect-fashion.txt trains on its yolo loss, the loss falls, --eval of the checkpoint
# prints what the run ended with; PyTorch - the graph built from the model file, the targets
# assigned to cells by Python from the label files - gets the same first-step loss, and Python's
# own decoding, NMS and VOC AP over PyTorch's outputs give the same mAP; every model or set that
# cannot train is refused with the reason.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
need_torch_python
tap_tmpdir det

small_set

# 1. Training: 240 steps (15 epochs of 16 batches); the loss falls; the net finds objects (mAP
#    well above a guess's, about 0.13 here); each class's AP.
"$train" "$ex/detect-fashion.txt" --data "$tmp/set" --batch 16 --steps 240 --log-every 8 --save "$tmp/det.safetensors" > "$tmp/out" 2>&1
check $? "examples/detect-fashion.txt trains 240 steps on the detection set"
first=$(sed -n 's/^epoch 1 batch 8\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
last=$(sed -n 's/^epoch 15 batch 16\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.5 * a) }'; then
  ok "the yolo loss falls by half at least ($first at step 8, $last at step 240)"
else notok "the yolo loss falls ($first -> $last)"; sed 's/^/# /' "$tmp/out" | tail -n 20; fi
final=$(sed -n 's/^final test mAP@0.5 \([0-9.]*\) (10 classes)$/\1/p' "$tmp/out")
[ -n "$final" ] && grep -q "AP at IoU 0.5 of each class on the test set" "$tmp/out" && [ "$(grep -c '^  *[0-9]*  [0-9.-]' "$tmp/out")" -ge 10 ] &&
  awk -v m="$final" 'BEGIN { exit !(m > 0.05) }'
check $? "it reports mAP@0.5 over 10 classes (above 0.05: it found objects) and each class's AP ($final)"

# 2. --eval of the checkpoint: the same mAP.
"$train" "$ex/detect-fashion.txt" --data "$tmp/set" --batch 16 --eval --init "$tmp/det.safetensors" > "$tmp/out" 2>&1
ev=$(sed -n 's/^test mAP@0.5 \([0-9.]*\) (10 classes, 48 images.*/\1/p' "$tmp/out")
if [ -n "$ev" ] && [ "$ev" = "$final" ]; then ok "--eval prints what the run ended with ($ev)"
else notok "--eval prints what the run ended with ('$ev' vs '$final')"; sed 's/^/# /' "$tmp/out" | tail -n 5; fi

# 3. PyTorch and Python, from the label files and the checkpoint.
cat > "$tmp/torch_det.py" <<'PY'
import math, os, sys
import torch
sys.path.insert(0, sys.argv[1])
from clcnn_torch import GraphNet, yolo_loss
from pngread import png
from safetensors.torch import load_file

def images(root, split, count=None):
    names = sorted(os.listdir(os.path.join(root, split, "images")))[:count]
    x = []
    for n in names:
        _, w, h, px, _ = png(os.path.join(root, split, "images", n))
        x.append(torch.tensor(list(px), dtype=torch.float64).reshape(1, h, w) / 255.0)
    boxes = []
    for n in names:
        p = os.path.join(root, split, "labels", n[:-4] + ".txt")
        rows = [l.split() for l in open(p).read().splitlines() if l.strip()] if os.path.exists(p) else []
        boxes.append([(int(r[0]), *map(float, r[1:])) for r in rows])
    return torch.stack(x), boxes

def targets(boxes, gh, gw):
    """each box to the cell holding its centre, the larger kept (the first of equals)"""
    t = torch.zeros(len(boxes), 6, gh, gw, dtype=torch.float64)
    for b, bs in enumerate(boxes):
        for c, cx, cy, w, h in bs:
            col, row = min(int(cx * gw), gw - 1), min(int(cy * gh), gh - 1)
            if t[b, 0, row, col] == 1 and t[b, 3, row, col] * t[b, 4, row, col] >= w * h:
                continue
            t[b, :, row, col] = torch.tensor([1, cx * gw - col, cy * gh - row, w, h, c], dtype=torch.float64)
    return t

def load(model, weights, train):
    net = GraphNet(model).double().train(train)
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in load_file(weights).items()}, strict=True)
    return net

def iou(a, b):
    ax0, ax1, ay0, ay1 = a[0] - a[2] / 2, a[0] + a[2] / 2, a[1] - a[3] / 2, a[1] + a[3] / 2
    bx0, bx1, by0, by1 = b[0] - b[2] / 2, b[0] + b[2] / 2, b[1] - b[3] / 2, b[1] + b[3] / 2
    iw, ih = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0: return 0.0
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)

cmd, model, weights, root = sys.argv[2:6]
if cmd == "first":
    x, boxes = images(root, "train", 16)
    net = load(model, weights, True)
    z = net(x)
    loss = yolo_loss(z, targets(boxes, z.shape[2], z.shape[3])).item()
    print("clcnn", float(sys.argv[6]), "torch", loss)
    assert abs(float(sys.argv[6]) - loss) <= 1e-4 * max(1, loss)
    sys.exit(0)
x, boxes = images(root, "test")
with torch.no_grad():
    z = load(model, weights, False)(x)
N, C, GH, GW = z.shape
K = C - 5
dets = []  # (score, image, class, box), per cell, score >= 0.005, then NMS 0.45 per image and class
for b in range(N):
    cand = []
    for i in range(GH):
        for j in range(GW):
            s = z[b, 5:, i, j]
            k = int(torch.argmax(s))
            score = float(torch.sigmoid(z[b, 0, i, j]) * torch.softmax(s, 0)[k])
            if score < 0.005: continue
            box = (min(max((j + float(z[b, 1, i, j])) / GW, 0), 1), min(max((i + float(z[b, 2, i, j])) / GH, 0), 1),
                   min(float(z[b, 3, i, j]) ** 2, 1), min(float(z[b, 4, i, j]) ** 2, 1))
            cand.append((score, i * GW + j, k, box))
    cand.sort(key=lambda d: (-d[0], d[1]))
    kept = []
    for d in cand:
        if all(not (e[2] == d[2] and iou(e[3], d[3]) > 0.45) for e in kept): kept.append(d)
    dets += [(d[0], b, d[2], d[3]) for d in kept]
if cmd == "labels":  # --predict's label files instead of PyTorch's boxes
    dets = []
    names = sorted(os.listdir(os.path.join(root, "test", "images")))
    for b, n in enumerate(names):
        for l in open(os.path.join(sys.argv[7], n[:-4] + ".txt")).read().splitlines():
            c, cx, cy, w, h, sc = l.split()
            dets.append((float(sc), b, int(c), (float(cx), float(cy), float(w), float(h))))
aps = []
for k in range(K):
    gts = [(b, bx[1:]) for b in range(N) for bx in boxes[b] if bx[0] == k]
    if not gts: continue
    used = [False] * len(gts)
    mine = sorted([d for d in dets if d[2] == k], key=lambda d: -d[0])
    tp = fp = 0
    prec, rec = [], []
    for d in mine:
        best, at = -1.0, -1
        for g, (b, bx) in enumerate(gts):
            if b == d[1]:
                o = iou(bx, d[3])
                if o > best: best, at = o, g
        if at >= 0 and best > 0.5 and not used[at]: used[at] = True; tp += 1
        else: fp += 1
        prec.append(tp / (tp + fp)); rec.append(tp / len(gts))
    for i in range(len(prec) - 2, -1, -1): prec[i] = max(prec[i], prec[i + 1])
    ap, r0 = 0.0, 0.0
    for p, r in zip(prec, rec): ap += (r - r0) * p; r0 = r
    aps.append(ap)
m = sum(aps) / len(aps)
print("clcnn", float(sys.argv[6]), "python", m)
assert abs(float(sys.argv[6]) - m) < 2e-4, (sys.argv[6], m)
PY
"$py" "$tmp/torch_det.py" "$abs_top_srcdir/tests" map "$ex/detect-fashion.txt" "$tmp/det.safetensors" "$tmp/set" "${final:-nan}" > "$tmp/out" 2>&1
check $? "Python's own decoding, NMS and VOC AP over PyTorch's outputs from the checkpoint give the same mAP ($(tail -n 1 "$tmp/out"))"
"$py" "$abs_top_srcdir/tests/torch_graph.py" fresh "$ex/detect-fashion.txt" "$tmp/fresh.safetensors" 3 &&
  "$train" "$ex/detect-fashion.txt" --data "$tmp/set" --init "$tmp/fresh.safetensors" --no-shuffle --steps 1 --log-every 1 --batch 16 > "$tmp/out" 2>&1
l1=$(sed -n 's/^epoch 1 batch 1\/16 loss \([0-9.]*\).*/\1/p' "$tmp/out")
"$py" "$tmp/torch_det.py" "$abs_top_srcdir/tests" first "$ex/detect-fashion.txt" "$tmp/fresh.safetensors" "$tmp/set" "${l1:-nan}" > "$tmp/out" 2>&1
check $? "the first step's yolo loss equals PyTorch's on the same weights, canvases and label files ($(tail -n 1 "$tmp/out"))"

# 4. --predict: label files of the boxes the evaluation keeps (scored in Python: --eval's mAP)
#    and pictures four times as large with the confident ones drawn.
"$train" "$ex/detect-fashion.txt" --batch 16 --init "$tmp/det.safetensors" --predict "$tmp/set/test" --out "$tmp/pred" > "$tmp/out" 2>&1 &&
  grep -q "^--predict: 48 images from $tmp/set/test/images: boxes in $tmp/pred/labels, pictures in $tmp/pred/boxes" "$tmp/out" &&
  [ "$(ls "$tmp/pred/labels" | wc -l)" -eq 48 ] && [ "$(ls "$tmp/pred/boxes" | wc -l)" -eq 48 ] &&
  "$py" "$tmp/torch_det.py" "$abs_top_srcdir/tests" labels "$ex/detect-fashion.txt" "$tmp/det.safetensors" "$tmp/set" "${final:-nan}" "$tmp/pred/labels" > "$tmp/out" 2>&1
check $? "--predict writes 48 label files and 48 pictures; the label files score --eval's mAP in Python ($(tail -n 1 "$tmp/out"))"
"$py" - "$abs_top_srcdir/tests" "$tmp/pred/boxes" > "$tmp/out" 2>&1 <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from pngread import png
colours = set()
for n in sorted(os.listdir(sys.argv[2])):
    ct, w, h, px, _ = png(os.path.join(sys.argv[2], n))
    assert ct == 2 and w == 256 and h == 256, (n, ct, w, h)
    colours |= {px[i:i + 3] for i in range(0, len(px), 3) if not (px[i] == px[i + 1] == px[i + 2])}
print(len(colours), "colours")
assert colours, "no box drawn"
PY
check $? "the pictures are 256x256 RGB (the 64x64 canvases x4) with coloured boxes drawn ($(tail -n 1 "$tmp/out"))"

# 5. What cannot train.
mkdir -p "$tmp/segonly/train" "$tmp/segonly/test"
for s in train test; do ln -s "$tmp/set/$s/images" "$tmp/segonly/$s/images"; ln -s "$tmp/set/$s/masks" "$tmp/segonly/$s/masks"; done
bad 1 "has no labels" "a detector on a set without labels" -- "$train" "$ex/detect-fashion.txt" --data "$tmp/segonly" --steps 1
mkdir -p "$tmp/half/train" "$tmp/half/test"
ln -s "$tmp/set/train/images" "$tmp/half/train/images"; ln -s "$tmp/set/train/labels" "$tmp/half/train/labels"
ln -s "$tmp/set/test/images" "$tmp/half/test/images"; ln -s "$tmp/set/test/masks" "$tmp/half/test/masks"
bad 1 "has no labels for its test split" "a detector on a set whose test split has masks only" -- "$train" "$ex/detect-fashion.txt" --data "$tmp/half" --steps 1
mkdir -p "$tmp/detonly/train" "$tmp/detonly/test"
for s in train test; do ln -s "$tmp/set/$s/images" "$tmp/detonly/$s/images"; ln -s "$tmp/set/$s/labels" "$tmp/detonly/$s/labels"; done
bad 1 "is a detection set: " "a U-Net on a set with labels only" -- "$train" "$ex/unet-fashion.txt" --data "$tmp/detonly" --steps 1
sed 's/^grid = conv 15 kernel=1/grid = conv 12 kernel=1/' "$ex/detect-fashion.txt" > "$tmp/seven.txt"
bad 1 "have 10 classes but" "a grid of 7 class scores for 10 classes" -- "$train" "$tmp/seven.txt" --data "$tmp/set" --steps 1
bad 1 "--augment: not for detection yet" "--augment on a detector" -- "$train" "$ex/detect-fashion.txt" --data "$tmp/set" --steps 1 --augment hflip
sed 's/^det = yolo(grid)/det = yolo(grid)\nd2 = yolo(grid)/' "$ex/detect-fashion.txt" > "$tmp/two.txt"
bad 1 "has two yolo losses" "two yolo loss lines" -- "$train" "$tmp/two.txt" --data "$tmp/set" --steps 1
echo "1..$n"
exit $fail
