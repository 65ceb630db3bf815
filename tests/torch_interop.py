#!/usr/bin/env python3
"""tests/torch_interop.py MODEL DATA CHECKPOINT OUT - PyTorch's side of the interop test.

Builds the torch module that MODEL (a clcnn model file) describes (tests/clcnn_torch.py's
GraphNet; for a file without names, the torch.nn.Sequential's modules under the same keys),
loads CHECKPOINT (written by clcnn-train) strictly, evaluates it on DATA's test set and prints
"torch-eval LOSS ACC"; then writes a freshly initialised state_dict of the same model to OUT
with safetensors.torch.save_file and prints "torch-fresh LOSS ACC" for those weights."""
import gzip
import math
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clcnn_torch import GraphNet  # noqa: E402


def build(path):
    """The model MODEL describes, as tests/clcnn_torch.py reads it (for a file without names
    and graph ops: the torch.nn.Sequential's modules and state_dict keys)."""
    return GraphNet(path)


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
