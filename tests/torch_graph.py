#!/usr/bin/env python3
"""tests/torch_graph.py - PyTorch's side of the graph parity test (model syntax: tests/clcnn_torch.py).

  torch_graph.py run MODEL DIR          train MODEL 3 Adam steps from DIR's files, write DIR/torch.safetensors
  torch_graph.py keys MODEL             print MODEL's state_dict keys with their shapes, one per line
  torch_graph.py fresh MODEL OUT [SEED] write a freshly initialised state_dict (float32; each
                                        num_batches_tracked int64 0) to OUT; SEED (default 0)
                                        seeds torch.manual_seed

run reads (safetensors files; names are the model's, see the naming rules in clcnn_torch.py):
  DIR/init.safetensors  the initial state_dict: every parameter and buffer of the model, exactly
                        its keys (loaded strictly), float64 (any float or int dtype is copied in;
                        num_batches_tracked may be shape [] or [1])
  DIR/data.safetensors  "x": the input batch, N x C x H x W, float64
                        "target.NAME" for every loss NAME: int64 class indices for xent (N, or
                        N x H x W for N x C x H x W logits), float64 shaped as the loss's input
                        for bce, mse and smoothl1
                        Adam's learning rate: a tensor "lr" of one element, else the metadata
                        entry "lr" (a decimal string)
It builds the model in float64 and train mode, loads init.safetensors strictly, and runs 3 steps
of torch.optim.Adam(params, lr) (betas 0.9, 0.999, eps 1e-8, no weight decay); each step is
zero_grad, forward on all of x, total loss (sum of weight * loss over the loss lines), backward,
step. Only the first step's loss and gradients are reported.

run writes DIR/torch.safetensors, every tensor float64 unless said otherwise:
  "loss"          shape [1]: the first step's total loss (sum of weight * loss)
  "loss.NAME"     shape [1], one per loss line: that loss's unweighted mean value, first step
  "grad.KEY"      one per parameter KEY (named_parameters, e.g. "conv1.weight"): d total loss /
                  d KEY at the first step, the parameter's shape (zeros if the loss does not
                  depend on it)
  "final.KEY"     one per state_dict KEY: its value after the 3 steps, running_mean and
                  running_var included (updated by the 3 train-mode forwards); num_batches_tracked
                  stays int64, shape []
No other tensors; the metadata holds {"steps": "3", "format": "clcnn-torch-graph-1"}.
Dropout with p > 0 draws torch's random masks (seeded with 0 before the steps); a parity model
should leave it out.

keys prints "KEY D0 D1 ..." per state_dict key in state_dict order (a scalar such as
num_batches_tracked prints just "KEY").
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clcnn_torch import GraphNet, ModelError  # noqa: E402

STEPS = 3


def read_lr(tensors, meta):
    if "lr" in tensors:
        if tensors["lr"].numel() != 1:
            raise SystemExit("data.safetensors: tensor 'lr' must hold one element")
        return float(tensors["lr"].reshape(-1)[0])
    if meta and "lr" in meta:
        return float(meta["lr"])
    raise SystemExit("data.safetensors: no learning rate (tensor 'lr' or metadata 'lr')")


def run(model, d):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    net = GraphNet(model).double().train()
    net.load_state_dict(load_file(os.path.join(d, "init.safetensors")), strict=True)
    with safe_open(os.path.join(d, "data.safetensors"), framework="pt") as f:
        data = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    lr = read_lr(data, meta)
    if "x" not in data:
        raise SystemExit("data.safetensors: no tensor 'x'")
    x = data["x"].double()
    targets = {}
    for line in net.graph.losses:
        key = "target." + line.name
        if key not in data:
            raise SystemExit(f"data.safetensors: no tensor '{key}' for loss '{line.name}' ({line.op})")
        targets[line.name] = data[key].long() if line.op == "xent" else data[key].double()
    params = dict(net.named_parameters())
    opt = torch.optim.Adam(params.values(), lr=lr, foreach=False)
    torch.manual_seed(0)
    out = {}
    for step in range(STEPS):
        opt.zero_grad()
        total, parts = net.loss(net.forward_all(x), targets)
        total.backward()
        if step == 0:
            out["loss"] = total.detach().reshape(1).clone()
            for name, v in parts.items():
                out["loss." + name] = v.detach().double().reshape(1).clone()
            for k, p in params.items():
                out["grad." + k] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p.detach())
        opt.step()
    for k, v in net.state_dict().items():
        out["final." + k] = v.detach().clone().contiguous()
    save_file(out, os.path.join(d, "torch.safetensors"), metadata={"steps": str(STEPS), "format": "clcnn-torch-graph-1"})


def keys(model):
    for k, v in GraphNet(model).state_dict().items():
        print(" ".join([k] + [str(n) for n in v.shape]))


def fresh(model, out, seed=0):
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = GraphNet(model)
    save_file({k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}, out)


USAGE = "usage: torch_graph.py run MODEL DIR | keys MODEL | fresh MODEL OUT [SEED]"

if __name__ == "__main__":
    torch.set_num_threads(1)
    a = sys.argv[1:]
    try:
        if len(a) == 3 and a[0] == "run":
            run(a[1], a[2])
        elif len(a) == 2 and a[0] == "keys":
            keys(a[1])
        elif len(a) in (3, 4) and a[0] == "fresh":
            fresh(a[1], a[2], int(a[3]) if len(a) == 4 else 0)
        else:
            raise SystemExit(USAGE)
    except ModelError as e:
        raise SystemExit(f"{a[1]}: {e}")
