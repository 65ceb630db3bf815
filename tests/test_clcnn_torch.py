#!/usr/bin/env python3
"""tests/test_clcnn_torch.py - self-test of tests/clcnn_torch.py, tests/torch_graph.py and
tests/torch_interop.py, with torch and safetensors only (no clcnn build, no OpenCL).

    python3 tests/test_clcnn_torch.py

Prints "PASS what" or "FAIL what" per check, then "N passed, N failed"; exits 1 on any failure.
Every expected value is computed here at test time: shapes by the convolution/pooling formulas,
tensors by hand-written functional forwards of the example graphs, losses by their formulas, the
final weights by Adam's update written out, the Sequential layout by the model builder that
tests/torch_interop.py used before GraphNet (kept below as old_build)."""
import gzip
import math
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import clcnn_torch as ct  # noqa: E402

GRAPHS = {n: os.path.join(HERE, "graphs", n + ".txt") for n in ("resnet-tiny", "unet-tiny", "fanout")}
EXAMPLES = {n[:-4]: os.path.join(ROOT, "examples", n)
            for n in sorted(os.listdir(os.path.join(ROOT, "examples"))) if n.endswith(".txt")}
# the examples that are chains (no names, no explicit inputs): torch.nn.Sequential's layout
CHAINS = {n: p for n, p in EXAMPLES.items()
          if not any(ln.named or ln.explicit for ln in ct.parse(p).layers)}
passed = failed = 0


def check(ok, what):
    global passed, failed
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if ok:
        passed += 1
    else:
        failed += 1
    return ok


def close(a, b, rtol=1e-10, atol=1e-12):
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    return torch.allclose(a, b, rtol=rtol, atol=atol)


# ---- the builder tests/torch_interop.py had before GraphNet, unchanged ---------------------
def old_pair(v):
    if "x" in v:
        a, b = v.split("x")
        return int(a), int(b)
    return int(v), int(v)


def old_build(path):
    pair = old_pair
    layers, shape = [], None
    for raw in open(path):
        words = raw.split("#")[0].split()
        if not words:
            continue
        word, args = words[0], words[1:]
        pos = [a for a in args if "=" not in a]
        kv = dict(a.split("=", 1) for a in args if "=" in a)
        if word == "input":
            shape = tuple(int(a) for a in pos)
            continue
        c = shape[0]
        if word == "conv":
            k = pair(kv["kernel"])
            s, p = pair(kv.get("stride", "1")), pair(kv.get("pad", "0"))
            d, g = pair(kv.get("dilation", "1")), int(kv.get("groups", "1"))
            m = nn.Conv2d(c, int(pos[0]), k, s, p, d, g, bias=kv.get("bias", "1") != "0")
        elif word == "linear":
            m = nn.Linear(c, int(pos[0]), bias=kv.get("bias", "1") != "0")
        elif word in ("maxpool", "avgpool"):
            k = pair(pos[0])
            s = pair(kv["stride"]) if "stride" in kv else k
            p = pair(kv.get("pad", "0"))
            m = nn.MaxPool2d(k, s, p) if word == "maxpool" else nn.AvgPool2d(k, s, p)
        elif word == "batchnorm":
            eps, mom = float(kv.get("eps", "1e-5")), float(kv.get("momentum", "0.1"))
            m = nn.BatchNorm2d(c, eps, mom) if len(shape) == 3 else nn.BatchNorm1d(c, eps, mom)
        else:
            m = {"relu": lambda: nn.ReLU(), "sigmoid": lambda: nn.Sigmoid(), "tanh": lambda: nn.Tanh(),
                 "leakyrelu": lambda: nn.LeakyReLU(float(kv.get("slope", "0.01"))),
                 "flatten": lambda: nn.Flatten(), "globalavgpool": lambda: nn.AdaptiveAvgPool2d(1),
                 "dropout": lambda: nn.Dropout(float(kv.get("p", "0.5")))}[word]()
        layers.append(m)
        with torch.no_grad():  # follow the shape through the layer
            out = m.eval()(torch.zeros(2, *shape))
        shape = tuple(out.shape[1:])
    return nn.Sequential(*layers)


# ---- shapes by formula ----------------------------------------------------------------------
def hw(v):
    h, _, w = v.partition("x")
    return (int(h), int(w or h))


def formula_shapes(g):
    """{name: per-sample shape} by the output-size formulas, independent of running the modules."""
    sh = {"input": g.input_shape}
    for ln in g.layers:
        i = sh[ln.inputs[0]]
        o, n = ln.options, ln.numbers
        if ln.op in ("conv", "convtranspose"):
            k, s, p, d = hw(o["kernel"]), hw(o.get("stride", "1")), hw(o.get("pad", "0")), hw(o.get("dilation", "1"))
            if ln.op == "conv":
                size = [(i[1 + j] + 2 * p[j] - d[j] * (k[j] - 1) - 1) // s[j] + 1 for j in (0, 1)]
            else:
                q = hw(o.get("outpad", "0"))
                size = [(i[1 + j] - 1) * s[j] - 2 * p[j] + d[j] * (k[j] - 1) + q[j] + 1 for j in (0, 1)]
            sh[ln.name] = (int(n[0]), *size)
        elif ln.op in ("maxpool", "avgpool"):
            k = hw(n[0])
            s, p = hw(o.get("stride", n[0])), hw(o.get("pad", "0"))
            sh[ln.name] = (i[0], *[(i[1 + j] + 2 * p[j] - k[j]) // s[j] + 1 for j in (0, 1)])
        elif ln.op == "globalavgpool":
            sh[ln.name] = (i[0], 1, 1)
        elif ln.op == "flatten":
            t = 1
            for v in i:
                t *= v
            sh[ln.name] = (t,)
        elif ln.op == "linear":
            sh[ln.name] = (int(n[0]),)
        elif ln.op == "upsample":
            sh[ln.name] = (i[0], i[1] * int(n[0]), i[2] * int(n[0]))
        elif ln.op == "reshape":
            sh[ln.name] = tuple(int(v) for v in n)
        elif ln.op == "concat":
            sh[ln.name] = (sum(sh[x][0] for x in ln.inputs), *i[1:])
        else:
            sh[ln.name] = i
    return sh


# ---- hand-written forwards of the example graphs (float64, eval mode for batch norm) --------
def ref_fanout(x, w):
    r = {"input": x}
    r["a"] = F.conv2d(x, w["a.weight"], w["a.bias"], padding=1)
    r["b"] = F.conv2d(r["a"], w["b.weight"], w["b.bias"])
    r["s"] = r["a"] + r["b"]
    r["c"] = torch.cat([r["a"], r["s"], r["b"]], 1)
    r["4"] = torch.where(r["c"] > 0, r["c"], 0.1 * r["c"])
    r["u"] = F.conv_transpose2d(r["4"], w["u.weight"], w["u.bias"], stride=(2, 1), padding=(1, 0),
                                output_padding=(1, 0))
    r["r"] = r["u"].reshape(x.shape[0], 4, 4, 5)
    r["v"] = r["s"].repeat_interleave(2, 2).repeat_interleave(2, 3)
    r["8"] = F.conv2d(r["v"], w["8.weight"], w["8.bias"], padding=1)
    r["out"] = torch.tanh(r["8"])
    return r


def ref_unet(x, w):
    r = {"input": x}
    conv = lambda t, n, **kw: F.conv2d(t, w[n + ".weight"], w[n + ".bias"], **kw)  # noqa: E731
    r["e1"] = conv(x, "e1", padding=1)
    r["e1r"] = r["e1"].clamp(min=0)
    r["down"] = F.max_pool2d(r["e1r"], 2)
    r["e2"] = conv(r["down"], "e2", padding=1)
    r["e2r"] = r["e2"].clamp(min=0)
    r["up_t"] = F.conv_transpose2d(r["e2r"], w["up_t.weight"], w["up_t.bias"], stride=2, padding=1,
                                   output_padding=1)
    r["up_b"] = F.interpolate(r["e2r"], size=tuple(2 * n for n in r["e2r"].shape[2:]), mode="bilinear",
                              align_corners=False)
    r["up_bc"] = conv(r["up_b"], "up_bc")
    r["cat"] = torch.cat([r["up_t"], r["up_bc"], r["e1r"]], 1)
    r["d"] = conv(r["cat"], "d", padding=1)
    r["dr"] = r["d"].clamp(min=0)
    r["recon"] = conv(r["dr"], "recon")
    r["logits"] = conv(r["dr"], "logits")
    return r


def ref_resnet(x, w):
    r = {"input": x}
    bn = lambda t, n: F.batch_norm(t, w[n + ".running_mean"], w[n + ".running_var"], w[n + ".weight"],  # noqa: E731
                                   w[n + ".bias"], training=False, eps=1e-5)
    conv = lambda t, n, **kw: F.conv2d(t, w[n + ".weight"], None, **kw)  # noqa: E731
    r["stem"] = conv(x, "stem", padding=1)
    r["stem_bn"] = bn(r["stem"], "stem_bn")
    r["stem_relu"] = r["stem_bn"].clamp(min=0)
    r["b1c1"] = conv(r["stem_relu"], "b1c1", padding=1)
    r["b1n1"] = bn(r["b1c1"], "b1n1")
    r["b1r1"] = r["b1n1"].clamp(min=0)
    r["b1c2"] = conv(r["b1r1"], "b1c2", padding=1)
    r["b1n2"] = bn(r["b1c2"], "b1n2")
    r["b1"] = r["b1n2"] + r["stem_relu"]
    r["b1r"] = r["b1"].clamp(min=0)
    r["b2c1"] = conv(r["b1r"], "b2c1", stride=2, padding=1)
    r["b2n1"] = bn(r["b2c1"], "b2n1")
    r["b2r1"] = r["b2n1"].clamp(min=0)
    r["b2c2"] = conv(r["b2r1"], "b2c2", padding=1)
    r["b2n2"] = bn(r["b2c2"], "b2n2")
    r["proj"] = conv(r["b1r"], "proj", stride=2)
    r["projn"] = bn(r["proj"], "projn")
    r["b2"] = r["b2n2"] + r["projn"]
    r["b2r"] = r["b2"].clamp(min=0)
    r["pool"] = r["b2r"].mean(dim=(2, 3), keepdim=True)
    r["flat"] = r["pool"].reshape(x.shape[0], -1)
    r["fc"] = r["flat"] @ w["fc.weight"].t() + w["fc.bias"]
    return r


REFS = {"fanout": ref_fanout, "unet-tiny": ref_unet, "resnet-tiny": ref_resnet}


# ---- losses by formula ----------------------------------------------------------------------
def ref_loss(line, x, t):
    o = line.options
    if line.op == "xent":
        ign = int(o.get("ignore", "-100"))
        keep = t != ign
        logp = x.log_softmax(1)
        picked = logp.gather(1, torch.where(keep, t, torch.zeros_like(t)).unsqueeze(1)).squeeze(1)
        return -(picked * keep).sum() / keep.sum()
    if line.op == "mse":
        return ((x - t) ** 2).mean()
    if line.op == "bce":
        return (x.clamp(min=0) - x * t + torch.log1p(torch.exp(-x.abs()))).mean()
    beta = float(o.get("beta", "1"))
    d = (x - t).abs()
    return torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta).mean()


def make_targets(net, shapes, n, gen):
    """Random targets for every loss of net; xent labels include the ignore label where set."""
    out = {}
    for ln in net.graph.losses:
        s = shapes[ln.inputs[0]]
        if ln.op == "xent":
            t = torch.randint(0, s[0], (n, *s[1:]), generator=gen)
            if "ignore" in ln.options:
                t[torch.rand(t.shape, generator=gen) < 0.25] = int(ln.options["ignore"])
            out[ln.name] = t
        elif ln.op == "bce":
            out[ln.name] = torch.rand((n, *s), generator=gen, dtype=torch.float64)
        else:
            out[ln.name] = torch.randn((n, *s), generator=gen, dtype=torch.float64)
    return out


def randomise_bn(net, gen):
    """Non-trivial running statistics and affine parameters, so eval-mode batch norm is tested."""
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if k.endswith("running_mean") or k.endswith(".bias"):
                v.copy_(torch.randn(v.shape, generator=gen, dtype=v.dtype) * 0.3)
            elif k.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=gen, dtype=v.dtype) + 0.5)


# ---- the checks -----------------------------------------------------------------------------
def test_parse_examples():
    check(len(CHAINS) >= 3 and "resnet-fashion" not in CHAINS, f"the chains among the examples: {sorted(CHAINS)}")
    for name, path in EXAMPLES.items():
        g = ct.parse(path)
        seq_ok = all(ln.name == str(i) and not ln.named and not ln.explicit
                     and ln.inputs == [g.layers[i - 1].name if i else "input"] for i, ln in enumerate(g.layers))
        if name in CHAINS:
            check(seq_ok, f"examples/{name}.txt: layers named 0..{len(g.layers) - 1}, each reading the one before")
        if any(ln.lineno is not None for ln in g.losses):  # the segmentation nets, the detector, the GAN's D name theirs
            want = "yolo" if name.startswith("detect") else "bce" if name == "dcgan-disc" else "xent"
            check(len(g.losses) == 1 and g.losses[0].op == want and g.losses[0].inputs == [g.output],
                  f"examples/{name}.txt: one explicit {want} '{g.losses[0].name}' on the output")
        else:
            check(len(g.losses) == 1 and g.losses[0].name == "loss0" and g.losses[0].op == "xent"
                  and g.losses[0].inputs == [g.output] and g.losses[0].lineno is None,
                  f"examples/{name}.txt: the implicit xent 'loss0' on the output")


def test_parse_graphs():
    g = ct.parse(GRAPHS["fanout"])
    readers = {ln.op for ln in g.layers if "a" in ln.inputs}
    check(readers == {"conv", "add", "concat"}, f"fanout: 'a' is read by a conv, an add and a concat ({sorted(readers)})")
    by = {ln.name: ln for ln in g.layers}
    check("4" in by and by["4"].op == "leakyrelu" and by["u"].inputs == ["4"] and "8" in by
          and by["8"].inputs == ["v"] and by["out"].inputs == ["8"],
          "fanout: unnamed lines are named by their index and read implicitly by the next line")
    check(by["c"].inputs == ["a", "s", "b"] and by["v"].inputs == ["s"] and by["v"].explicit,
          "fanout: concat's three inputs and upsample's explicit input")
    check([(l.name, l.op, l.inputs, l.options) for l in g.losses]
          == [("mask", "bce", ["r"], {"weight": "0.5"}), ("loss1", "smoothl1", ["out"], {"beta": "0.5"})],
          "fanout: losses 'mask' (bce, weight 0.5) and the unnamed smoothl1 named 'loss1'")
    g = ct.parse(GRAPHS["unet-tiny"])
    check(g.output == "logits" and [(l.name, l.op, l.inputs, l.options) for l in g.losses]
          == [("seg", "xent", ["logits"], {"ignore": "255"}), ("rec", "mse", ["recon"], {"weight": "0.5"})],
          "unet-tiny: output logits, losses seg (xent ignore=255) and rec (mse weight=0.5)")
    ops = {ln.op for ln in g.layers}
    check({"convtranspose", "upsample", "concat", "maxpool"} <= ops and g.input_shape[1] != g.input_shape[2],
          "unet-tiny: convtranspose, upsample, concat and maxpool on a non-square input")
    g = ct.parse(GRAPHS["resnet-tiny"])
    by = {ln.name: ln for ln in g.layers}
    check(by["b1"].inputs == ["b1n2", "stem_relu"] and by["proj"].inputs == ["b1r"]
          and by["proj"].options.get("stride") == "2" and by["b2"].inputs == ["b2n2", "projn"]
          and [l.name for l in g.losses] == ["loss0"],
          "resnet-tiny: identity skip, strided 1x1 projection skip, implicit loss0")


def test_syntax_variants():
    base = "input 3 4 4\n"
    forms = ["b1n2 = conv 3 kernel=1\na = relu(input)\nb1 = add(b1n2, a)\nc = concat(b1, a) # note\n",
             "b1n2=conv 3 kernel = 1\na=relu ( input )\nb1 = add( b1n2 ,a )\nc=concat(b1,a)\n",
             "  b1n2 =  conv   3  kernel=1\n\n# comment\n a   =relu(input)\nb1= add (b1n2,  a)\nc =concat(b1 , a )\n"]
    recs = [[(l.name, l.op, l.inputs, l.numbers, l.options) for l in ct.parse(base + f).layers] for f in forms]
    check(recs[0] == recs[1] == recs[2], "whitespace around '=', ',', '(' and ')' does not change the parse")
    g = ct.parse(base + "conv 3 kernel=1\nrelu\nadd(0, 1)\n")
    check(g.layers[2].inputs == ["0", "1"], "an unnamed line's index can be named as an input")
    g = ct.parse(base + "x = conv 2 kernel=1\nmse(x)\nxent(x)\nn = bce(x) weight=2\nsmoothl1(x)\n")
    check([l.name for l in g.losses] == ["loss0", "loss1", "n", "loss3"],
          "loss names: NAME, else 'loss' + index among all loss lines")
    net = ct.GraphNet(base + "loss = conv 2 kernel=1\nforward_all = relu\nshapes = conv 1 kernel=1\n")
    keys = list(net.state_dict().keys())
    x = torch.randn(2, 3, 4, 4)
    y = net(x)
    check(keys == ["loss.weight", "loss.bias", "shapes.weight", "shapes.bias"] and y.shape == (2, 1, 4, 4)
          and callable(net.loss) and isinstance(net.shapes, dict),
          "layers may be named like GraphNet's own attributes (loss, forward_all, shapes)")
    ok = True
    try:
        ct.parse(base + "n" * 63 + " = relu\n")
    except ct.ModelError:
        ok = False
    check(ok, "a 63-character name is accepted")


ERRORS = [  # (text after the input line, line number named in the error, what)
    ("relu(nowhere)\n", 2, "an undefined input"),
    ("a = relu(b)\nb = relu\n", 2, "an input defined below (no cycles)"),
    ("a = relu\na = tanh\n", 3, "a duplicate name"),
    ("train = relu\n", 2, "the name 'train' (nn.Module attribute)"),
    ("forward = relu\n", 2, "the name 'forward'"),
    ("state_dict = relu\n", 2, "the name 'state_dict'"),
    ("training = relu\n", 2, "the name 'training'"),
    ("_modules = relu\n", 2, "the name '_modules'"),
    ("cuda = relu\n", 2, "the name 'cuda'"),
    ("input = relu\n", 2, "the name 'input'"),
    ("n" * 64 + " = relu\n", 2, "a 64-character name"),
    ("9a = relu\n", 2, "a name starting with a digit"),
    ("relu\nmse(0)\ntanh\n", 4, "a layer line after a loss line"),
    ("relu\nadd\n", 3, "add without its inputs"),
    ("relu\nadd(0, 0, 0)\n", 3, "add with three inputs"),
    ("relu\nconcat(0)\n", 3, "concat with one input"),
    ("a = conv 2 kernel=1\nadd(a, input)\n", 3, "add of different shapes"),
    ("a = maxpool 2\nconcat(a, input)\n", 3, "concat of different spatial sizes"),
    ("reshape 2 2 2\n", 2, "reshape to another element count"),
    ("frobnicate\n", 2, "an unknown op"),
    ("conv 4 kernel=3 colour=red\n", 2, "an unknown option"),
    ("conv 4\n", 2, "conv without kernel="),
    ("conv 4 kernel=0\n", 2, "kernel 0"),
    ("conv 4 kernel=3x\n", 2, "kernel 3x"),
    ("conv 4 kernel=3 bias=2\n", 2, "bias=2"),
    ("conv four kernel=3\n", 2, "a non-numeric size"),
    ("a = relu\nrelu(0)\n", 3, "an index that names no unnamed line"),
    ("relu\nm = mse(0)\nrelu(m)\n", 4, "a loss as an input (after losses)"),
    ("relu\nm = mse(0)\nxent(m)\n", 4, "a loss as a loss's input"),
    ("linear 4\n", 2, "linear on a C x H x W input"),
    ("flatten\nupsample 2\n", 3, "upsample on a flat input"),
    ("upsample 2 mode=bicubic\n", 2, "upsample mode bicubic"),
    ("loss1 = relu\nmse(loss1)\nmse(loss1)\n", 4, "a default loss name that is taken"),
    ("relu(\n", 2, "an unclosed parenthesis"),
    ("relu() \n", 2, "empty parentheses"),
    ("xent(input) ignore=x\n", 2, "a non-integer ignore"),
    ("relu 3\n", 2, "a number where the op takes none"),
    ("input 1 2 3\n", 2, "a second input line"),
]


def test_errors():
    for body, lineno, what in ERRORS:
        text = "input 3 4 4\n" + body
        try:
            ct.GraphNet(text)
            check(False, f"refused: {what} (it was accepted)")
        except ct.ModelError as e:
            check(str(e).startswith(f"line {lineno}: "), f"refused at line {lineno}: {what} ({e})")
    for text, what in (("relu\n", "no input line"), ("input 3 4 4\n", "no layer line"),
                       ("input 3 4\nrelu\n", "input with two numbers")):
        try:
            ct.parse(text)
            check(False, f"refused: {what} (it was accepted)")
        except ct.ModelError as e:
            check(True, f"refused: {what} ({e})")


def test_sequential_layout():
    for name, path in CHAINS.items():
        torch.manual_seed(1)
        old = old_build(path)
        torch.manual_seed(1)
        new = ct.GraphNet(path)
        a, b = old.state_dict(), new.state_dict()
        check(list(a.keys()) == list(b.keys()), f"examples/{name}.txt: state_dict keys equal the Sequential's, in order")
        check(all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a),
              f"examples/{name}.txt: same seed, same initial values as the Sequential build")
        gen = torch.Generator().manual_seed(2)
        old = old.double()
        randomise_bn(old, gen)
        new = new.double()
        new.load_state_dict(old.state_dict(), strict=True)
        old.eval()
        new.eval()
        x = torch.randn(3, *new.graph.input_shape, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            check(torch.equal(old(x), new(x)), f"examples/{name}.txt: eval forward equals the Sequential's")


def test_shapes():
    for name, path in {**EXAMPLES, **GRAPHS}.items():
        net = ct.GraphNet(path)
        want = formula_shapes(net.graph)
        with torch.no_grad():
            outs = net.eval().forward_all(torch.randn(3, *net.graph.input_shape))
        got = {k: tuple(v.shape[1:]) for k, v in outs.items()}
        bad = [k for k in want if got.get(k) != want[k] or net.shapes.get(k) != want[k] or outs[k].shape[0] != 3]
        check(not bad and set(got) == set(want), f"{name}: every line's shape as the formulas give"
              + (f" (differs: {bad[:3]})" if bad else ""))


def test_forward_and_loss():
    for name, path in GRAPHS.items():
        gen = torch.Generator().manual_seed(3)
        torch.manual_seed(3)
        net = ct.GraphNet(path).double()
        randomise_bn(net, gen)
        net.eval()
        x = torch.randn(2, *net.graph.input_shape, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            outs = net.forward_all(x)
            ref = REFS[name](x, net.state_dict())
            y = net(x)
        bad = [k for k in ref if not close(outs[k], ref[k])]
        check(set(outs) == set(ref) and not bad, f"{name}: every line's tensor equals the hand-written forward"
              + (f" (differs: {bad[:3]})" if bad else ""))
        check(torch.equal(y, outs[net.output]), f"{name}: forward(x) is the last layer line's output")
        targets = make_targets(net, net.shapes, 2, gen)
        with torch.no_grad():
            total, parts = net.loss(outs, targets)
        want = {l.name: ref_loss(l, outs[l.inputs[0]], targets[l.name]) for l in net.graph.losses}
        want_total = sum(float(l.options.get("weight", "1")) * want[l.name] for l in net.graph.losses)
        check(set(parts) == set(want) and all(close(parts[k], want[k]) for k in want) and close(total, want_total),
              f"{name}: losses {sorted(want)} and their weighted total as the formulas give")


class TotalLoss(nn.Module):
    def __init__(self, net, targets):
        super().__init__()
        self.net, self.targets = net, targets

    def forward(self, x):
        return self.net.loss(self.net.forward_all(x), self.targets)[0]


def test_gradcheck():
    from torch.nn.utils.stateless import functional_call

    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    net = ct.GraphNet(GRAPHS["fanout"]).double()
    targets = make_targets(net, net.shapes, 2, gen)
    wrap = TotalLoss(net, targets)
    names = [k for k, _ in wrap.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in wrap.named_parameters()]
    x = torch.randn(2, *net.graph.input_shape, generator=gen, dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        return functional_call(wrap, dict(zip(names, ps)), (x,))

    try:
        ok = torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)
    except RuntimeError as e:
        print(f"# {str(e)[:2000]}")
        ok = False
    check(ok, f"fanout: autograd's gradients of the total loss for x and all {len(params)} parameters "
              "agree with finite differences (gradcheck, float64)")


def save(path, tensors, metadata=None):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=metadata)


def adam_by_hand(net, x, targets, lr, steps=3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam written out (Kingma and Ba, with bias correction) on net in place; returns the first
    step's (total, parts, grads)."""
    params = dict(net.named_parameters())
    m = {k: torch.zeros_like(p) for k, p in params.items()}
    v = {k: torch.zeros_like(p) for k, p in params.items()}
    first = None
    for t in range(1, steps + 1):
        total, parts = net.loss(net.forward_all(x), targets)
        grads = torch.autograd.grad(total, list(params.values()), allow_unused=True)
        grads = {k: g if g is not None else torch.zeros_like(params[k]) for k, g in zip(params, grads)}
        if first is None:
            first = (total.detach(), {k: p.detach() for k, p in parts.items()}, grads)
        with torch.no_grad():
            for k, p in params.items():
                m[k] = b1 * m[k] + (1 - b1) * grads[k]
                v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
                mh, vh = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
                p -= lr * mh / (vh.sqrt() + eps)
    return first


def test_torch_graph_run(tmp):
    script = os.path.join(HERE, "torch_graph.py")
    from safetensors import safe_open
    for i, (name, path) in enumerate(GRAPHS.items()):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        gen = torch.Generator().manual_seed(10 + i)
        torch.manual_seed(10 + i)
        net = ct.GraphNet(path).double()
        randomise_bn(net, gen)
        init = {k: v.clone() for k, v in net.state_dict().items()}
        save(os.path.join(d, "init.safetensors"), init)
        n = 3
        x = torch.randn(n, *net.graph.input_shape, generator=gen, dtype=torch.float64)
        targets = make_targets(net, net.shapes, n, gen)
        lr = 0.01 * (i + 1)
        data = {"x": x, **{"target." + k: t for k, t in targets.items()}}
        meta = None
        if i % 2:
            data["lr"] = torch.tensor([lr], dtype=torch.float64)
        else:
            meta = {"lr": repr(lr)}
        save(os.path.join(d, "data.safetensors"), data, meta)
        r = subprocess.run([sys.executable, script, "run", path, d], capture_output=True, text=True)
        if not check(r.returncode == 0, f"torch_graph.py run {name}: exit status 0"):
            print("# " + r.stderr[-2000:].replace("\n", "\n# "))
            continue
        with safe_open(os.path.join(d, "torch.safetensors"), framework="pt") as f:
            got = {k: f.get_tensor(k) for k in f.keys()}
            got_meta = f.metadata()
        net.train()
        total, parts, grads = adam_by_hand(net, x, targets, lr)
        want_keys = ({"loss"} | {"loss." + l.name for l in net.graph.losses}
                     | {"grad." + k for k, _ in net.named_parameters()} | {"final." + k for k in net.state_dict()})
        check(set(got) == want_keys, f"torch_graph.py run {name}: keys loss, loss.NAME, grad.KEY, final.KEY and no others"
              + (f" (extra {sorted(set(got) - want_keys)[:3]}, missing {sorted(want_keys - set(got))[:3]})"
                 if set(got) != want_keys else ""))
        check(got_meta == {"steps": "3", "format": "clcnn-torch-graph-1"}, f"torch_graph.py run {name}: metadata")
        if set(got) != want_keys:
            continue
        check(close(got["loss"], total.reshape(1))
              and all(close(got["loss." + k], v.reshape(1)) for k, v in parts.items()),
              f"torch_graph.py run {name}: first-step total and per-loss values (shape [1], float64)")
        check(all(close(got["grad." + k], g) for k, g in grads.items()),
              f"torch_graph.py run {name}: first-step gradient of every parameter")
        final = net.state_dict()
        bad = [k for k in final if not close(got["final." + k], final[k], rtol=1e-9, atol=1e-12)]
        check(not bad, f"torch_graph.py run {name}: state after 3 Adam steps (lr from "
                       f"{'tensor' if i % 2 else 'metadata'}) equals Adam written out, running stats included"
                       + (f" (differs: {bad[:3]})" if bad else ""))
        moved = [k for k in final if k.endswith("running_mean") and not torch.equal(final[k], init[k])]
        if any(k.endswith("running_mean") for k in final):
            check(len(moved) == sum(k.endswith("running_mean") for k in final),
                  f"torch_graph.py run {name}: every running_mean moved in the 3 train-mode steps")


def test_torch_graph_keys_fresh(tmp):
    script = os.path.join(HERE, "torch_graph.py")
    from safetensors.torch import load_file
    for name, path in {**GRAPHS, "fashion-bn": EXAMPLES["fashion-bn"]}.items():
        r = subprocess.run([sys.executable, script, "keys", path], capture_output=True, text=True)
        sd = ct.GraphNet(path).state_dict()
        want = [" ".join([k] + [str(n) for n in v.shape]) for k, v in sd.items()]
        check(r.returncode == 0 and r.stdout.splitlines() == want, f"torch_graph.py keys {name}: 'KEY D0 D1 ...' per state_dict key")
        out = os.path.join(tmp, name + "-fresh.safetensors")
        r = subprocess.run([sys.executable, script, "fresh", path, out], capture_output=True, text=True)
        if not check(r.returncode == 0, f"torch_graph.py fresh {name}: exit status 0"):
            print("# " + r.stderr[-2000:].replace("\n", "\n# "))
            continue
        got = load_file(out)
        torch.manual_seed(0)
        sd = ct.GraphNet(path).state_dict()
        net = ct.GraphNet(path)
        net.load_state_dict(got, strict=True)
        check(all(torch.equal(got[k], sd[k]) and got[k].dtype == (torch.float32 if sd[k].is_floating_point() else torch.int64)
                  for k in sd) and set(got) == set(sd),
              f"torch_graph.py fresh {name}: loads strictly; float32 values of GraphNet seeded with 0")
    r = subprocess.run([sys.executable, script, "keys", os.path.join(tmp, "nonexistent.txt")], capture_output=True, text=True)
    check(r.returncode != 0 and "no such file" in r.stderr, "torch_graph.py keys on a missing file fails with a message")


def idx_file(path, tensor, magic):
    dims = tensor.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic | len(dims)) + struct.pack(">" + "I" * len(dims), *dims))
        f.write(bytes(tensor.reshape(-1).tolist()))


def test_torch_interop(tmp):
    from safetensors.torch import load_file, save_file
    d = os.path.join(tmp, "interop")
    os.makedirs(d)
    gen = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (40, 28, 28), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (40,), generator=gen, dtype=torch.uint8)
    idx_file(os.path.join(d, "t10k-images-idx3-ubyte.gz"), images, 0x0800)
    idx_file(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), labels, 0x0800)
    path = EXAMPLES["fashion-bn"]
    torch.manual_seed(6)
    old = old_build(path)
    randomise_bn(old, gen)
    save_file({k: v.contiguous() for k, v in old.state_dict().items()}, os.path.join(d, "ckpt.safetensors"))
    out = os.path.join(d, "fresh.safetensors")
    r = subprocess.run([sys.executable, os.path.join(HERE, "torch_interop.py"), path, d,
                        os.path.join(d, "ckpt.safetensors"), out], capture_output=True, text=True)
    if not check(r.returncode == 0, "torch_interop.py: exit status 0"):
        print("# " + r.stderr[-2000:].replace("\n", "\n# "))
        return

    def evaluate(model):
        x = images.float().div(255).unsqueeze(1)
        y = labels.long()
        model.eval()
        with torch.no_grad():
            logits = model(x)
        loss = F.cross_entropy(logits.double(), y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
        return f"{loss:.6f} {100 * acc:.2f}"

    fresh = old_build(path)
    fresh.load_state_dict(load_file(out), strict=True)
    want = [f"torch-eval {evaluate(old)}", f"torch-fresh {evaluate(fresh)}"]
    check(r.stdout.splitlines() == want, f"torch_interop.py: prints what the old Sequential build gives ({want})")


def test_yolo():
    """clcnn_torch.yolo_loss (torch's BCE and cross-entropy) against the formula written out cell by
    cell, with junk in the empty cells' targets; and a model file's yolo line reaching it."""
    gen = torch.Generator().manual_seed(5)
    n, k, gh, gw, coord, noobj = 3, 4, 3, 5, 2.0, 0.25
    x = torch.randn(n, 5 + k, gh, gw, generator=gen, dtype=torch.float64) * 2
    t = torch.rand(n, 6, gh, gw, generator=gen, dtype=torch.float64) * 100 - 50
    for b in range(n):
        for i in range(gh):
            for j in range(gw):
                has = (b + i * gw + j) % 3 == 0
                t[b, 0, i, j] = float(has)
                if has:
                    t[b, 1:5, i, j] = torch.rand(4, generator=gen, dtype=torch.float64)
                    t[b, 5, i, j] = float((b + i + j) % k)
    want = 0.0
    for b in range(n):
        for i in range(gh):
            for j in range(gw):
                o = float(x[b, 0, i, j])
                sp = lambda z: max(z, 0) + math.log1p(math.exp(-abs(z)))  # softplus
                if t[b, 0, i, j] == 0:
                    want += noobj * sp(o)
                    continue
                want += sp(-o)
                tw = [float(t[b, 1, i, j]), float(t[b, 2, i, j]), math.sqrt(float(t[b, 3, i, j])), math.sqrt(float(t[b, 4, i, j]))]
                want += coord * sum((float(x[b, 1 + q, i, j]) - tw[q]) ** 2 for q in range(4))
                z = [float(x[b, 5 + q, i, j]) for q in range(k)]
                m = max(z)
                want += m + math.log(sum(math.exp(v - m) for v in z)) - z[int(t[b, 5, i, j])]
    want /= n
    got = float(ct.yolo_loss(x, t, coord, noobj))
    check(abs(got - want) <= 1e-12 * abs(want), f"yolo_loss: {got:.12g}, the formula cell by cell {want:.12g}")
    net = ct.GraphNet("input 9 3 5\nr = reshape 9 3 5\nd = yolo(r) coord=2 noobj=0.25 weight=3\n").double()
    xs = x.reshape(n, 9, 3, 5)
    total, parts = net.loss(net.forward_all(xs), {"d": t})
    check(abs(float(parts["d"]) - want) <= 1e-12 * abs(want) and abs(float(total) - 3 * want) <= 1e-12 * abs(want),
          "a model file's 'd = yolo(r) coord=2 noobj=0.25 weight=3' gives that loss, weighted 3 in the total")
    for bad in ("yolo(r) coord=-1", "yolo(r) noobj=x", "yolo(r) classes=4"):
        try:
            ct.parse("input 9 3 5\nr = reshape 9 3 5\n" + bad + "\n")
            check(False, f"'{bad}' refused")
        except ct.ModelError as e:
            check("line 3" in str(e), f"'{bad}' refused: {e}")


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="clcnn-torch-test.") as tmp:
        for t in (test_parse_examples, test_parse_graphs, test_syntax_variants, test_errors,
                  test_sequential_layout, test_shapes, test_forward_and_loss, test_gradcheck, test_yolo):
            t()
        for t in (test_torch_graph_run, test_torch_graph_keys_fresh, test_torch_interop):
            t(tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
