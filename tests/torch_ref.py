#!/usr/bin/env python3
"""tests/torch_ref.py - PyTorch's side of tests/test_torch_ref.sh.

  torch_ref.py check DIR        recompute with torch what tests/torch_ref wrote to DIR and compare
  torch_ref.py mkeval DIR       write a test set of tied logits, a model and its weights to DIR
  torch_ref.py checkeval DIR W F  compare clcnn-train --eval's output F for weights W with
                                  torch.argmax's on DIR

Prints one line per check, "PASS what" or "FAIL what", and "# ..." diagnostics; the shell script
turns them into TAP. Every expected value is computed here by torch at test time."""
import math
import os
import re
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

failed = 0


def result(ok, what):
    global failed
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        failed += 1


def diag(what):
    print("# " + what)


def load(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}


def same(a, b):
    """Bit-for-bit equal values, NaN equal to NaN."""
    return a.shape == b.shape and bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())


# ---- optimizers -----------------------------------------------------------------------------
KINDS = {0: "SGD", 1: "Adam", 2: "AdamW", 3: "RMSprop"}


def make_optim(kind, hp, params):
    lr, mom, damp, nest, wd, b1, b2, eps, alpha = hp
    if kind == 0:
        return torch.optim.SGD(params, lr=lr, momentum=mom, dampening=damp, nesterov=bool(nest),
                               weight_decay=wd, foreach=False)
    if kind in (1, 2):
        cls = torch.optim.Adam if kind == 1 else torch.optim.AdamW
        return cls(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, weight_decay=wd, momentum=mom,
                               centered=False, foreach=False)


def describe(kind, hp):
    lr, mom, damp, nest, wd, b1, b2, eps, alpha = hp
    if kind == 0:
        s = f"SGD(lr={lr:g}, momentum={mom:g}, dampening={damp:g}, nesterov={bool(nest)}, weight_decay={wd:g})"
    elif kind in (1, 2):
        s = f"{KINDS[kind]}(lr={lr:g}, betas=({b1:g}, {b2:g}), eps={eps:g}, weight_decay={wd:g})"
    else:
        s = f"RMSprop(lr={lr:g}, alpha={alpha:g}, eps={eps:g}, momentum={mom:g}, weight_decay={wd:g})"
    return s


def check_optim(path, rtol):
    t, meta = load(path)
    prec = "double" if next(iter(t.values())).dtype == torch.float64 else "float"
    steps = int(meta["steps"])
    for c in range(int(meta["cases"])):
        words = meta[f"c{c}"].split()
        kind, hp = int(words[0]), [float(w) for w in words[1:]]
        hp[3] = int(hp[3])
        slots = [s for s in meta[f"c{c}.slots"].split(",") if s]
        names = sorted({k.split(".", 2)[2] for k in t if k.startswith(f"c{c}.s0.")})
        params = [t[f"c{c}.s0.{n}"].clone().requires_grad_(True) for n in names]
        opt = make_optim(kind, hp, params)
        worst, ok = 0.0, True
        for s in range(1, steps + 1):
            for n, p in zip(names, params):
                p.grad = t[f"c{c}.s{s}.{n}.grad"].clone()
            opt.step()
            for n, p in zip(names, params):
                pairs = [(t[f"c{c}.s{s}.{n}"], p.detach())]
                for sl in slots:
                    if sl not in opt.state[p]:
                        ok = False
                        diag(f"torch keeps no '{sl}' for {describe(kind, hp)}")
                        continue
                    pairs.append((t[f"c{c}.s{s}.{n}.{sl}"], opt.state[p][sl]))
                for got, want in pairs:
                    # relative to each value and to the tensor's largest: a value that is a
                    # difference of larger terms (a momentum buffer) carries their rounding
                    margin = rtol * (want.abs() + want.abs().max())
                    err = (got - want).abs()
                    worst = max(worst, float((err / margin).max()))
                    ok = ok and bool((err <= margin).all())
        # the state torch keeps is the state clcnn keeps: same names, nothing missing
        torch_slots = sorted(k for k, v in opt.state[params[0]].items() if k != "step" and v is not None)
        if sorted(slots) != torch_slots:
            ok = False
            diag(f"state slots: clcnn {slots}, torch {torch_slots}")
        result(ok, f"{prec}: {describe(kind, hp)}: parameters and {'/'.join(slots) or 'no state'} "
                   f"after each of {steps} steps as torch.optim's (worst |diff| / (rtol (|torch| + max |torch|)) "
                   f"= {worst:.2g}, rtol {rtol:g})")


# ---- learning-rate schedules ----------------------------------------------------------------
def check_sched(path):
    t, meta = load(path)
    for c in range(int(meta["cases"])):
        kind, base, step_size, gamma, t_max, eta_min = meta[f"s{c}"].split()
        base, gamma, eta_min = float(base), float(gamma), float(eta_min)
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        if kind == "step":
            sch = torch.optim.lr_scheduler.StepLR(opt, step_size=int(step_size), gamma=gamma)
            what = f"StepLR(step_size={step_size}, gamma={gamma:g})"
        else:
            sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(t_max), eta_min=eta_min)
            what = f"CosineAnnealingLR(T_max={t_max}, eta_min={eta_min:g})"
        got = t[f"s{c}"]
        want = []
        for _ in range(len(got)):
            want.append(opt.param_groups[0]["lr"])
            opt.step()
            sch.step()
        want = torch.tensor(want, dtype=torch.float64)
        # rounding only: the closed form against torch's recursion, 1e-12 of the largest rate
        tol = 1e-12 * max(base, abs(eta_min))
        err = float((got - want).abs().max())
        result(err <= tol, f"{what} from lr {base:g}: the rate of each of {len(got)} epochs as torch's "
                           f"(max |diff| {err:.2g}, margin {tol:.2g})")


# ---- initialisation -------------------------------------------------------------------------
def moments(x):
    x = x.double().flatten()
    m = float(x.mean())
    d = x - m
    var = float((d * d).mean())
    kurt = float((d ** 4).mean()) / var ** 2
    return m, math.sqrt(var), kurt, float(x.abs().max())


def check_init(path):
    t, _ = load(path)
    torch.manual_seed(0)
    conv = nn.Conv2d(256, 128, 5, groups=4, dtype=torch.float64)
    lin = nn.Linear(128 * 2 * 2, 2048, dtype=torch.float64)
    mods = {"0": conv, "2": lin}
    for rule in ("default", "he", "xavier"):
        for layer, mod in mods.items():
            kind = "conv (groups 4)" if layer == "0" else "linear"
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(mod.weight)
            # torch's own tensors of the same shapes, by torch's own rule
            tw, tb = mod.weight.detach().clone(), mod.bias.detach().clone()
            if rule == "default":
                mod.reset_parameters()
                tw, tb = mod.weight.detach().clone(), mod.bias.detach().clone()
                wdist = ("uniform", nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / fan_in))
                bdist = ("uniform", 1 / math.sqrt(fan_in))
            elif rule == "he":
                nn.init.kaiming_normal_(tw, mode="fan_in", nonlinearity="relu")
                wdist = ("normal", nn.init.calculate_gain("relu") / math.sqrt(fan_in))
                bdist = None
            else:
                nn.init.xavier_uniform_(tw)
                wdist = ("uniform", math.sqrt(6 / (fan_in + fan_out)))
                bdist = None
            for what, got, ref, dist in (("weight", t[f"{rule}.{layer}.weight"], tw, wdist),
                                         ("bias", t[f"{rule}.{layer}.bias"], tb, bdist)):
                name = f"{rule} init, {kind} {what} {tuple(got.shape)}"
                if got.shape != ref.shape:
                    result(False, f"{name}: the shape of torch's {tuple(ref.shape)}")
                    continue
                if dist is None:  # clcnn's documented bias for He and Xavier; torch has no rule
                    result(bool((got == 0).all()), f"{name}: zero, as clcnn.h says")
                    continue
                check_dist(name, got, ref, *dist)


def check_dist(name, got, ref, law, scale):
    """scale: the bound of U(-b, b), or the std of N(0, s). Margins of 5 standard errors of each
    statistic for n values (a correct generator fails one with probability < 1e-6), and for the
    largest |value| of a uniform 20/n of the bound (P(max < (1 - 20/n) b) = (1 - 20/n)^n < e^-20)."""
    n = got.numel()
    std = scale / math.sqrt(3) if law == "uniform" else scale
    kurt = 1.8 if law == "uniform" else 3.0
    se_mean = std / math.sqrt(n)
    se_std = std * math.sqrt((kurt - 1) / (4 * n))
    se_kurt = math.sqrt(24 / n)  # the normal's; the uniform's is smaller
    m, s, k, mx = moments(got)
    tm, ts, tk, tmx = moments(ref)
    ok = abs(m) <= 5 * se_mean and abs(m - tm) <= 5 * math.sqrt(2) * se_mean
    ok = ok and abs(s - std) <= 5 * se_std and abs(s - ts) <= 5 * math.sqrt(2) * se_std
    if n >= 10000:  # a uniform and a normal of one std differ in their kurtosis: 1.8 and 3
        ok = ok and abs(k - tk) <= 5 * math.sqrt(2) * se_kurt
    if law == "uniform":
        ok = ok and mx <= scale * (1 + 1e-12) and mx >= scale * (1 - 20 / n)
        ok = ok and tmx <= scale * (1 + 1e-12)  # the formula is torch's: its tensor keeps the bound
        bound = f", max |w| {mx:.6g} <= bound {scale:.6g} (torch {tmx:.6g})"
    else:
        ok = ok and mx >= 4 * std  # not clipped: (P(max |w| < 4 std) < e^-12 for n > 2e5)
        bound = f", max |w| {mx / std:.3g} std (torch {tmx / std:.3g})"
    result(ok, f"{name}: {law}, mean {m:.3g} (torch {tm:.3g}, margin {5 * se_mean:.2g}), std {s:.6g} "
               f"(formula {std:.6g}, torch {ts:.6g}, margin {5 * se_std:.2g})"
               + (f", kurtosis {k:.3f} (torch {tk:.3f})" if n >= 10000 else "") + bound)


# ---- max pooling's ties ---------------------------------------------------------------------
def check_pool(path):
    t, meta = load(path)
    prec = "double" if t["p0.x"].dtype == torch.float64 else "float"
    for k in range(int(meta["cases"])):
        kh, kw, sh, sw, ph, pw, fused, was_fused = (int(v) for v in meta[f"p{k}"].split())
        x = t[f"p{k}.x"].clone().requires_grad_(True)
        c = x.shape[1]
        h = x
        if fused:
            w = torch.eye(c, dtype=x.dtype).reshape(c, c, 1, 1)
            h = F.relu(F.conv2d(x, w, torch.zeros(c, dtype=x.dtype)))
        y, idx = F.max_pool2d(h, (kh, kw), (sh, sw), (ph, pw), return_indices=True)
        y.backward(t[f"p{k}.dy"])
        what = (f"{prec}: {'conv -> relu -> ' if fused else ''}max_pool2d {kh}x{kw} stride {sh}x{sw} "
                f"pad {ph}x{pw} on {tuple(x.shape)}")
        win = F.pad(h.detach(), (pw, pw, ph, ph), value=-math.inf).unfold(2, kh, sh).unfold(3, kw, sw)
        ties = int((win.flatten(4) == y.detach()[..., None]).sum(-1).gt(1).sum())
        nan2 = int(torch.isnan(win.flatten(4)).sum(-1).gt(1).sum())
        nan = int(torch.isnan(x).sum())
        ok_y = same(t[f"p{k}.y"], y.detach())
        ok_dx = same(t[f"p{k}.dx"], x.grad)
        # where torch's indices send each window's gradient, summed: clcnn's dx must be that
        if not fused:
            routed = torch.zeros_like(x).flatten(2)
            routed.scatter_add_(2, idx.flatten(2), t[f"p{k}.dy"].flatten(2))
            ok_dx = ok_dx and same(t[f"p{k}.dx"], routed.view_as(x))
        if fused:
            ok_y = ok_y and was_fused == 1
        if fused:
            result(ok_y, f"{what}: outputs equal torch's, computed by the conv (fused): {ties} windows with "
                         f"a tie for the largest, relu's zeros among them")
        else:
            result(ok_y, f"{what}: outputs equal torch's: {nan} NaN, {nan2} windows with two or more, "
                         f"{ties} windows with a tie for the largest, planes of -inf only and of one value")
        result(ok_dx, f"{what}: each window's gradient reaches the input torch's indices name")


# ---- argmax's ties --------------------------------------------------------------------------
def check_argmax(path):
    t, _ = load(path)
    z, hits = t["logits"], t["hits"]
    prec = "double" if z.dtype == torch.float64 else "float"
    want = F.one_hot(z.argmax(1), z.shape[1]).double()
    ties = int((z == z.max(1, keepdim=True).values).sum(1).gt(1).sum())
    nan = int(torch.isnan(z).any(1).sum())
    result(ties >= 10 and nan >= 2 and torch.equal(hits, want),
           f"{prec}: the loss kernel counts a sample correct exactly when its label is torch.argmax "
           f"(the first NaN, else the first largest logit): {z.shape[0]} samples, {ties} with tied largest "
           f"logits, {nan} with NaN, every label")


# ---- clcnn-train --eval's argmax ------------------------------------------------------------
EVAL_K, EVAL_N = 5, 300


def idx_write(path, magic, dims, data):
    with open(path, "wb") as f:
        f.write(struct.pack(">I" + "I" * len(dims), magic, *dims))
        f.write(bytes(data))


def mkeval(d):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 3, (EVAL_N, 1, EVAL_K), generator=g) * 51  # logits 0, 0.2, 0.4
    labels = torch.randint(0, EVAL_K, (EVAL_N,), generator=g)
    labels[0] = EVAL_K - 1
    idx_write(os.path.join(d, "t10k-images-idx3-ubyte"), 0x803, [EVAL_N, 1, EVAL_K], pixels.flatten().tolist())
    idx_write(os.path.join(d, "t10k-labels-idx1-ubyte"), 0x801, [EVAL_N], labels.tolist())
    with open(os.path.join(d, "model.txt"), "w") as f:
        f.write(f"input 1 1 {EVAL_K}\nflatten\nlinear {EVAL_K} bias=0\n")
    save_file({"1.weight": torch.eye(EVAL_K)}, os.path.join(d, "weights.safetensors"))
    nan = torch.eye(EVAL_K)
    nan[2, 1] = math.nan  # logit 2 is NaN in every sample (0 * NaN is NaN): argmax 2
    save_file({"1.weight": nan}, os.path.join(d, "weights-nan.safetensors"))


def checkeval(d, weights, out):
    from safetensors.torch import load_file

    model = nn.Sequential(nn.Flatten(), nn.Linear(EVAL_K, EVAL_K, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(load_file(os.path.join(d, weights))["1.weight"])
        raw = open(os.path.join(d, "t10k-images-idx3-ubyte"), "rb").read()[16:]
        x = torch.tensor(list(raw), dtype=torch.float32).div(255).reshape(EVAL_N, 1, 1, EVAL_K)
        labels = torch.tensor(list(open(os.path.join(d, "t10k-labels-idx1-ubyte"), "rb").read()[8:]))
        logits = model(x)
    pred = logits.argmax(1)
    want = torch.zeros(EVAL_K, EVAL_K, dtype=torch.long)
    for y, p in zip(labels.tolist(), pred.tolist()):
        want[y, p] += 1
    text = open(out).read()
    # after the header line of column numbers, one line per true class: the class, then K counts
    rows = [[int(v) for v in line.split()] for line in text.split("confusion matrix")[-1].splitlines()[2:]]
    rows = [r[1:] for r in rows if len(r) == EVAL_K + 1]
    got = torch.tensor(rows) if len(rows) == EVAL_K else None
    ties = int((logits == logits.max(1, keepdim=True).values).sum(1).gt(1).sum())
    nan = int(torch.isnan(logits).any(1).sum())
    result(got is not None and torch.equal(got, want),
           f"clcnn-train --eval {weights}: the confusion matrix is torch.argmax's on {EVAL_N} samples, "
           f"{ties} with tied largest logits, {nan} with NaN")
    if got is not None and not torch.equal(got, want):
        diag(f"clcnn {got.tolist()}, torch {want.tolist()}")
    acc = re.search(r"accuracy ([0-9.]+)%", text)
    want_acc = 100 * float((pred == labels).double().mean())
    result(acc is not None and abs(float(acc.group(1)) - want_acc) <= 0.005 + 1e-9,
           f"clcnn-train --eval {weights}: accuracy {acc.group(1) if acc else '?'}% as torch.argmax's {want_acc:.2f}%")


if __name__ == "__main__":
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "check":
        diag(f"torch {torch.__version__}")
        check_optim(os.path.join(d, "optim-double.safetensors"), 1e-12)
        check_optim(os.path.join(d, "optim-float.safetensors"), 1e-5)
        check_sched(os.path.join(d, "sched.safetensors"))
        check_init(os.path.join(d, "init.safetensors"))
        for p in ("double", "float"):
            check_pool(os.path.join(d, f"pool-{p}.safetensors"))
            check_argmax(os.path.join(d, f"argmax-{p}.safetensors"))
    elif mode == "mkeval":
        mkeval(d)
    elif mode == "checkeval":
        checkeval(d, sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown mode {mode}")
    sys.exit(1 if failed else 0)
