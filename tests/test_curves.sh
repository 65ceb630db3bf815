#!/bin/sh
# tests/test_curves.sh - clcnn-train --log (JSON lines) and --plot (SVG) for each task:
# classification (LeNet-5 on 640 Fashion-MNIST images), segmentation (the U-Net) and detection
# on a small clcnn-mkdata set. Python reads every log line as JSON and checks its keys and values
# against the run's printed epoch lines; the SVG parses as XML and holds one polyline per curve
# with one point per epoch; a resumed run appends to the log; bad paths and flags are refused.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
py=${PYTHON3:-python3}
tap_tmpdir curves
"$py" "$abs_top_srcdir/tests/mkdata.py" /usr/share/datasets/fashion-mnist "$tmp/small" 640 200 ||
  { echo "Bail out! mkdata.py"; exit 1; }
small_set
cd "$tmp" || exit 1

# The checker: LOG SVG TASK EPOCHS OUT - the log's lines, the epoch lines printed in OUT, the plot.
cat > curves.py <<'PY'
import json, re, sys
import xml.etree.ElementTree as ET
log, svg, task, epochs, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
lines = [json.loads(l) for l in open(log)]
ep = [l for l in lines if l["kind"] == "epoch"]
st = [l for l in lines if l["kind"] == "step"]
assert [l["epoch"] for l in ep] == list(range(1, epochs + 1)), [l["epoch"] for l in ep]
assert st and all(l["step"] > 0 and l["loss"] > 0 and l["lr"] > 0 and l["images_per_s"] > 0 for l in st), st[:2]
assert all(a["step"] < b["step"] for a, b in zip(st, st[1:])), "steps in order"
key = {"classification": "test_accuracy", "segmentation": "test_miou", "detection": "test_map50"}[task]
printed = re.findall(r"^epoch [0-9]+: .*" + {"classification": r"test loss [0-9.]+ acc ([0-9.]+)%",
                     "segmentation": r"mIoU ([0-9.]+)", "detection": r"test mAP@0.5 ([0-9.]+)"}[task],
                     open(out).read(), re.M)
assert len(printed) == epochs, printed
for l, p in zip(ep, printed):
    v = l[key] * (100 if task == "classification" else 1)
    assert abs(v - float(p)) < 1e-3, (key, v, p)
    assert l["train_loss"] > 0 and l["lr"] > 0 and l["seconds"] > 0 and l["partial"] is False, l
root = ET.parse(svg).getroot()
ns = "{http://www.w3.org/2000/svg}"
polys = root.findall(f".//{ns}polyline")
want = {"classification": 4, "segmentation": 3, "detection": 2}[task]
assert len(polys) == want, (len(polys), want)
for p in polys:
    assert len(p.get("points").split()) == epochs, p.get("points")
print(f"{len(lines)} log lines ({len(st)} steps, {len(ep)} epochs), {len(polys)} curves of {epochs} points")
PY

# 1. Classification: 3 epochs of 10 batches, a progress line every 5.
"$train" "$ex/lenet5.txt" --data small --batch 64 --epochs 3 --log-every 5 --log c.jsonl --plot c.svg > out 2>&1
check $? "classification: 3 epochs with --log and --plot"
"$py" curves.py c.jsonl c.svg classification 3 out > check.out 2>&1
r=$?; cp check.out out; check $r "classification: the log's lines and the plot's curves ($(tail -n 1 check.out))"

# 2. A resumed run appends its epochs to the same log.
"$train" "$ex/lenet5.txt" --data small --batch 64 --epochs 1 -q --save r.safetensors --log r.jsonl > out 2>&1 &&
  "$train" "$ex/lenet5.txt" --data small --batch 64 --epochs 2 -q --resume r.safetensors --log r.jsonl >> out 2>&1 &&
  [ "$(grep -c '"kind": "epoch"' r.jsonl)" -eq 2 ] && grep -q '"kind": "epoch", "epoch": 2,' r.jsonl
check $? "a resumed run appends to the log (epochs 1 and 2)"

# 3. Segmentation and detection on the small set.
"$train" "$ex/unet-fashion.txt" --data set --batch 16 --epochs 2 --log s.jsonl --plot s.svg > out 2>&1
check $? "segmentation: 2 epochs with --log and --plot"
"$py" curves.py s.jsonl s.svg segmentation 2 out > check.out 2>&1
r=$?; cp check.out out; check $r "segmentation: the log's lines and the plot's curves ($(tail -n 1 check.out))"
"$train" "$ex/detect-fashion.txt" --data set --batch 16 --epochs 2 --log d.jsonl --plot d.svg > out 2>&1
check $? "detection: 2 epochs with --log and --plot"
"$py" curves.py d.jsonl d.svg detection 2 out > check.out 2>&1
r=$?; cp check.out out; check $r "detection: the log's lines and the plot's curves ($(tail -n 1 check.out))"

# 4. Bad paths and flags.
bad 1 "--log /nonexistent/x.jsonl" "--log in a missing directory" -- "$train" "$ex/lenet5.txt" --data small --steps 1 --log /nonexistent/x.jsonl
bad 1 "--plot /nonexistent/x.svg" "--plot in a missing directory" -- "$train" "$ex/lenet5.txt" --data small --steps 1 --plot /nonexistent/x.svg
bad 2 "follow a training run" "--log with --eval" -- "$train" "$ex/lenet5.txt" --data small --eval --init r.safetensors --log x.jsonl
bad 2 "need a file name" "--plot ''" -- "$train" "$ex/lenet5.txt" --data small --plot ""

echo "1..$n"
exit $fail
