#!/bin/sh
# tests/test_gan_tool.sh - clcnn-gan with examples/dcgan-gen.txt and dcgan-disc.txt on 40 training and
# 200 test images of Fashion-MNIST: epochs write their 64-sample pictures; a run saved, resumed and
# finished equals the run without a stop, byte for byte; --sample draws the same images twice, and
# PyTorch - the generator built from its model file, loaded strictly, fed the noise Python draws
# from the documented formula - draws them too (within one grey level); PyTorch loads the
# discriminator strictly; --judge reports its figures; every bad flag, model and checkpoint is
# refused with the reason; examples/gan.c trains the pair through the public API.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
gan="$abs_top_builddir/tools/clcnn-gan"
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
G="$ex/dcgan-gen.txt"
D="$ex/dcgan-disc.txt"
need_torch_python
tap_tmpdir gan
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" /usr/share/datasets/fashion-mnist "$tmp/data" 40 200 ||
  { echo "Bail out! mkdata.py"; exit 1; }
cd "$tmp" || exit 1

# 1. Two epochs of 5 batches: the epoch lines, the pictures (8 x 8 samples of 56 x 56 pixels with
#    2-pixel gaps: 466 x 466), the checkpoints.
"$gan" "$G" "$D" --data data --batch 8 --epochs 2 --out pics --save two --log two.jsonl --plot two.svg > out 2>&1
check $? "clcnn-gan trains the example pair 2 epochs of 5 batches"
grep -q "^epoch 2: D loss [0-9.]*  G loss [0-9.]*  D(x) [0-9.]*  D(G(z)) [0-9.]*  [0-9]* img/s  pics/epoch-002.png$" out
check $? "each epoch prints both losses, D(x), D(G(z)) and its picture"
"$py" -c "
import json, sys, xml.etree.ElementTree as ET
ep = [json.loads(l) for l in open('two.jsonl')]
assert [e['epoch'] for e in ep] == [1, 2] and all(e['step'] == 5 * e['epoch'] and e['d_loss'] > 0 and e['g_loss'] > 0
    and 0 < e['d_x'] < 1 and 0 < e['d_g_z'] < 1 and e['lr'] == 0.0002 for e in ep), ep
polys = ET.parse('two.svg').getroot().findall('.//{http://www.w3.org/2000/svg}polyline')
assert len(polys) == 4 and all(len(p.get('points').split()) == 2 for p in polys), len(polys)
" > out 2>&1
check $? "--log: a JSON line per epoch (losses, D(x), D(G(z)), lr); --plot: 4 curves of 2 points"
"$py" -c "import sys; sys.path.insert(0, sys.argv[1]); from pngread import png; t, w, h, px, _ = png(sys.argv[2]); sys.exit(not (t == 0 and w == 466 and h == 466))" "$abs_top_srcdir/tests" pics/epoch-001.png > out 2>&1 &&
  [ -f pics/epoch-002.png ] && [ -f two-generator.safetensors ] && [ -f two-discriminator.safetensors ]
check $? "pics/epoch-001.png and epoch-002.png (466 x 466), two-generator.safetensors, two-discriminator.safetensors"

# 2. Exact resume: 7 steps at once, or 4, then 3 more from the checkpoint (mid-epoch).
"$gan" "$G" "$D" --data data --batch 8 --steps 7 --out p1 --save a > out 2>&1
check $? "7 steps in one run"
"$gan" "$G" "$D" --data data --batch 8 --steps 4 --out p2 --save b > out 2>&1 &&
  "$gan" "$G" "$D" --data data --batch 8 --steps 3 --out p2 --resume b --save b > out 2>&1
check $? "4 steps, then --resume for 3 more"
cmp a-generator.safetensors b-generator.safetensors > out 2>&1 && cmp a-discriminator.safetensors b-discriminator.safetensors >> out 2>&1
check $? "the resumed run's checkpoints are byte for byte those of the run without a stop"

# 3. --sample: N PNGs and a grid, the same bytes twice.
"$gan" "$G" "$D" --init a --sample 5 --out s1 > out 2>&1 && "$gan" "$G" "$D" --init a --sample 5 --out s2 >> out 2>&1 &&
  [ -f s1/sample-00005.png ] && [ ! -f s1/sample-00006.png ] && [ -f s1/grid.png ] && cmp s1/sample-00003.png s2/sample-00003.png >> out 2>&1
check $? "--sample 5 writes sample-00001..5.png and grid.png, the same bytes each time"

# 4. PyTorch: both nets load strictly; the generator (evaluation mode) on Python's noise draws the
#    samples, within one grey level.
cat > torch_gan.py <<'PY'
import sys, math, torch
sys.path.insert(0, sys.argv[1])
from clcnn_torch import GraphNet
from safetensors.torch import load_file
from pngread import png

from clcnn_rng import M, splitmix, normal_fill
def key(seed, chunk):  # tools/clcnn-gan.c sample_key
    s = ((seed ^ 0x5a5a5a5a) * 0x9e3779b97f4a7c15 & M) ^ (chunk * 4 + 2)
    s, _ = splitmix(s)
    _, z = splitmix(s)
    return z
def load(model, weights):
    net = GraphNet(model).double()
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in load_file(weights).items()}, strict=True)
    return net.eval()
g = load(sys.argv[2], "a-generator.safetensors")
d = load(sys.argv[3], "a-discriminator.safetensors")
z = torch.tensor(normal_fill(key(1, 0), 5 * 100), dtype=torch.float64).reshape(5, 100, 1, 1)
with torch.no_grad():
    x = g(z)
    logit = d(x)
worst = 0
for i in range(5):
    _, w, h, px, _ = png(f"s1/sample-{i + 1:05d}.png")
    want = torch.clamp(torch.round((x[i, 0] + 1) * 127.5), 0, 255).flatten()
    got = torch.tensor(list(px), dtype=torch.float64)
    worst = max(worst, (want - got).abs().max().item())
print(f"largest difference {worst} grey levels; D's logits {logit.flatten().tolist()}")
sys.exit(0 if worst <= 1 and logit.shape == (5, 1) else 1)
PY
"$py" torch_gan.py "$abs_top_srcdir/tests" "$G" "$D" > out 2>&1
check $? "PyTorch loads both nets strictly and its generator draws --sample's images ($(tail -n 1 out | cut -c1-40))"

# 5. PyTorch trains 3 steps from the same weights, on the same batches (clcnn_shuffle's order) and
#    noise (step_key), with torch.optim.Adam: the same mean D and G losses (4 decimals printed).
"$gan" "$G" "$D" --data data --batch 8 --steps 3 --init a --out p3 > out 2>&1
check $? "3 steps from the weights of the 7-step run"
losses=$(sed -n 's/^step 3 (part of an epoch): D loss \([0-9.]*\)  G loss \([0-9.]*\) .*/\1 \2/p' out)
cat > torch_steps.py <<'PY'
import sys, struct, torch
sys.path.insert(0, sys.argv[1])
from clcnn_rng import M, GOLDEN as G, splitmix, shuffle, normal_fill
from clcnn_torch import GraphNet
from safetensors.torch import load_file
def step_key(seed, step):  # tools/clcnn-gan.c
    s = ((seed * G) & M) ^ (step * 4)
    s, _ = splitmix(s)
    _, z = splitmix(s)
    return z
raw = open("data/train-images-idx3-ubyte", "rb").read()
n = struct.unpack(">I", raw[4:8])[0]
x = torch.tensor(list(raw[16:]), dtype=torch.float64).reshape(n, 1, 28, 28) / 255 * 2 - 1
def load(model, weights):
    net = GraphNet(model).double()
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in load_file(weights).items()}, strict=True)
    return net.train()
g, d = load(sys.argv[2], "a-generator.safetensors"), load(sys.argv[3], "a-discriminator.safetensors")
og = torch.optim.Adam(g.parameters(), lr=0.0002, betas=(0.5, 0.999))
od = torch.optim.Adam(d.parameters(), lr=0.0002, betas=(0.5, 0.999))
bce = torch.nn.BCEWithLogitsLoss()
order = shuffle(n, (1 * G) & M ^ 0)
sd = sg = 0
for step in range(3):
    real = x[order[step * 8:step * 8 + 8]]
    z = torch.tensor(normal_fill(step_key(1, step), 8 * 100), dtype=torch.float64).reshape(8, 100, 1, 1)
    fake = g(z)
    od.zero_grad()
    lr_ = bce(d(real), torch.ones(8, 1, dtype=torch.float64))
    lf = bce(d(fake.detach()), torch.zeros(8, 1, dtype=torch.float64))
    (lr_ + lf).backward()
    od.step()
    og.zero_grad()
    lg = bce(d(fake), torch.ones(8, 1, dtype=torch.float64))
    lg.backward()
    og.step()
    sd += (lr_ + lf).item(); sg += lg.item()
want = (sd / 3, sg / 3)
got = tuple(float(v) for v in sys.argv[4].split())
print(f"PyTorch {want[0]:.4f} {want[1]:.4f}, clcnn-gan {got[0]:.4f} {got[1]:.4f}")
sys.exit(0 if all(abs(a - b) <= 2e-4 for a, b in zip(want, got)) else 1)
PY
"$py" torch_steps.py "$abs_top_srcdir/tests" "$G" "$D" "${losses:-nan nan}" > out 2>&1
check $? "PyTorch's 3 DCGAN steps give clcnn-gan's mean losses ($(tail -n 1 out))"

# 6. --judge: a LeNet-5 classifier briefly trained by clcnn-train, 200 samples.
"$train" "$ex/lenet5.txt" --data data --steps 10 --save judge.safetensors > out 2>&1
check $? "a LeNet-5 judge (clcnn-train, 10 steps)"
"$gan" "$G" "$D" --data data --init a --epochs 0 --judge judge.safetensors --judge-samples 200 > out 2>&1 &&
  grep -q "^judge: 200 samples: [0-9.]*% classified with probability >= 0.9, [0-9]* of 10 classes present, the largest class [0-9.]*%$" out &&
  grep -q "^judge: Frechet distance of the classifier's 84 penultimate features to the 200 test images: [0-9]*\.[0-9]*$" out
check $? "--judge reports confidence, classes and the Frechet distance"
"$train" "$ex/lenet5.txt" --data data --steps 1 --normalize --save jn.safetensors > out 2>&1
bad 1 "was trained with --normalize" "--judge with a classifier trained on normalised pixels" -- "$gan" "$G" "$D" --data data --epochs 0 --judge jn.safetensors
printf 'input 1 28 14\nflatten\nlinear 10\n' > m14.txt
"$py" -c "
import sys; sys.path.insert(0, sys.argv[1])
from clcnn_torch import GraphNet
from safetensors.torch import save_file
save_file(GraphNet('m14.txt').state_dict(), 'j14.safetensors', metadata={'format': 'pt', 'clcnn.model': open('m14.txt').read()})" "$abs_top_srcdir/tests" > out 2>&1
bad 1 "reads 1x28x14 images, the generator writes 1x28x28" "--judge with a classifier of other images" -- "$gan" "$G" "$D" --data data --epochs 0 --judge j14.safetensors

# 7. examples/gan.c: the same pair through the public API, 3 steps.
"$abs_top_builddir/examples/gan" "$G" "$D" data 3 > out 2>&1 && [ "$(grep -c '^step [1-3]: D loss [0-9.]* (real [0-9.]*, fake [0-9.]*)  G loss [0-9.]*$' out)" -eq 3 ]
check $? "examples/gan trains the pair 3 steps through the public API"
bad 2 "usage: " "examples/gan without its model files" -- "$abs_top_builddir/examples/gan"

# 8. Bad flags: exit 2 with the reason.
bad 2 "expected two model files" "one model file" -- "$gan" "$G"
bad 2 "exclude each other" "--epochs with --steps" -- "$gan" "$G" "$D" --epochs 1 --steps 2
bad 2 "needs a generator" "--sample without weights" -- "$gan" "$G" "$D" --sample 3
bad 2 "two numbers in \[0, 1)" "--betas with one number" -- "$gan" "$G" "$D" --betas 0.5
bad 2 "two numbers in \[0, 1)" "--d-betas 1,0.9" -- "$gan" "$G" "$D" --d-betas 1,0.9
bad 2 "not a number" "--d-lr x" -- "$gan" "$G" "$D" --d-lr x
bad 2 "not an integer in 1..65536" "--batch 0" -- "$gan" "$G" "$D" --batch 0
bad 2 "unknown option --foo" "an unknown option" -- "$gan" "$G" "$D" --foo
bad 2 "exclude each other" "--init with --resume" -- "$gan" "$G" "$D" --init a --resume a
bad 2 "only draws images" "--sample with --save" -- "$gan" "$G" "$D" --init a --sample 2 --save x
bad 2 "need a file name" "--log ''" -- "$gan" "$G" "$D" --log ""
bad 1 "--plot /nonexistent/p.svg" "--plot in a missing directory" -- "$gan" "$G" "$D" --data data --steps 1 --plot /nonexistent/p.svg

# 9. Bad models and checkpoints: exit 1 with the reason.
printf 'input 100 1 1\nfc = linear 784\nimg = reshape 1 28 28\nl = mse(img)\n' > gloss.txt
bad 1 "a generator has no loss line" "a generator with a loss line" -- "$gan" gloss.txt "$D" --data data --steps 1
printf 'input 1 28 28\nflatten\nlinear 2\n' > d2.txt
bad 1 "one logit, not 2 outputs" "a discriminator with two outputs" -- "$gan" "$G" d2.txt --data data --steps 1
printf 'input 1 28 28\nflatten\nlogit = linear 1\nl = mse(logit)\n' > dmse.txt
bad 1 "one 'bce(...)' line" "a discriminator with an MSE loss" -- "$gan" "$G" dmse.txt --data data --steps 1
printf 'input 1 14 14\nflatten\nlinear 1\n' > d14.txt
bad 1 "writes 1x28x28 images but d14.txt reads 1x14x14" "a discriminator of other images" -- "$gan" "$G" d14.txt --data data --steps 1
bad 1 "nope-generator.safetensors" "--resume of a missing checkpoint" -- "$gan" "$G" "$D" --data data --steps 1 --resume nope
bad 1 "resume it with the same batch size" "--resume with another batch" -- "$gan" "$G" "$D" --data data --steps 1 --batch 4 --resume a
bad 1 "does not fit the model" "--init with the discriminator's weights as the generator's" -- sh -c 'cp a-discriminator.safetensors w-generator.safetensors && "$0" "$@"' "$gan" "$G" "$D" --init w --sample 1
"$py" -c "
from safetensors import safe_open
from safetensors.torch import save_file
with safe_open('a-generator.safetensors', 'pt') as f:
    meta = f.metadata(); t = {k: f.get_tensor(k) for k in f.keys()}
meta['clcnn.train'] = '{\"epoch\":0,\"batch\":7,\"step\":7}'
save_file(t, 'x-generator.safetensors', metadata=meta)" > out 2>&1 && cp a-discriminator.safetensors x-discriminator.safetensors
bad 1 "not a GAN's" "--resume of a checkpoint whose state is not a GAN's" -- "$gan" "$G" "$D" --data data --steps 1 --batch 8 --resume x
bad 1 "train-images-idx3-ubyte" "--data without images" -- "$gan" "$G" "$D" --data . --steps 1

echo "1..$n"
exit $fail
