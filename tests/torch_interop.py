#!/usr/bin/env python3
"""tests/torch_interop.py MODEL DATA CHECKPOINT OUT - PyTorch's side of the interop test.

Builds the torch.nn.Sequential that MODEL (a clcnn model file) describes, loads CHECKPOINT
(written by clcnn-train) strictly, evaluates it on DATA's test set and prints
"torch-eval LOSS ACC"; then writes a freshly initialised state_dict of the same model to OUT
with safetensors.torch.save_file and prints "torch-fresh LOSS ACC" for those weights."""
import gzip
import math
import os
import struct
import sys

import torch
import torch.nn as nn


def pair(v):
    if "x" in v:
        a, b = v.split("x")
        return int(a), int(b)
    return int(v), int(v)


def build(path):
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


def idx(path):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = struct.unpack(">" + "I" * (magic & 255), data[4:4 + 4 * (magic & 255)])
    return torch.frombuffer(bytearray(data[4 + 4 * len(dims):]), dtype=torch.uint8).reshape(dims)


def evaluate(model, data):
    name = lambda s: os.path.join(data, s) if os.path.exists(os.path.join(data, s)) else os.path.join(data, s + ".gz")
    x = idx(name("t10k-images-idx3-ubyte")).float().div(255).unsqueeze(1)
    y = idx(name("t10k-labels-idx1-ubyte")).long()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 500]) for i in range(0, len(x), 500)])
        loss = nn.functional.cross_entropy(logits.double(), y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    return loss, acc


if __name__ == "__main__":
    from safetensors.torch import load_file, save_file

    model_file, data, ckpt, out = sys.argv[1:5]
    torch.manual_seed(0)
    model = build(model_file)
    model.load_state_dict(load_file(ckpt))  # strict: exactly the model's keys, shapes must match
    loss, acc = evaluate(model, data)
    print(f"torch-eval {loss:.6f} {100 * acc:.2f}")
    fresh = build(model_file)
    save_file(fresh.state_dict(), out)
    loss, acc = evaluate(fresh, data)
    print(f"torch-fresh {loss:.6f} {100 * acc:.2f}")
