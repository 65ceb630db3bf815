#!/usr/bin/env python3
"""bench/gan_torch.py GENERATOR DISCRIMINATOR [--batch 64] [--steps 100] [--threads N] - the DCGAN
training step clcnn-gan takes (z ~ N(0, 1); D: BCE(D(x), 1) + BCE(D(G(z)), 0), Adam; G: BCE(D(G(z)),
1) through the updated D, Adam), in PyTorch on the CPU on synthetic images, both nets built from
their model files: images/s over the steps after a warm-up, as one JSON line."""
import argparse, json, os, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from clcnn_torch import GraphNet  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("gen")
ap.add_argument("disc")
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--steps", type=int, default=100)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
g, d = GraphNet(a.gen).train(), GraphNet(a.disc).train()
og = torch.optim.Adam(g.parameters(), lr=0.0002, betas=(0.5, 0.999))
od = torch.optim.Adam(d.parameters(), lr=0.0002, betas=(0.5, 0.999))
bce = torch.nn.BCEWithLogitsLoss()
zshape = g.graph.input_shape
real = torch.rand(a.batch, *d.graph.input_shape) * 2 - 1
ones, zeros = torch.ones(a.batch, 1), torch.zeros(a.batch, 1)
for step in range(a.warmup + a.steps):
    if step == a.warmup:
        t0 = time.perf_counter()
    fake = g(torch.randn(a.batch, *zshape))
    od.zero_grad()
    ld = bce(d(real), ones) + bce(d(fake.detach()), zeros)
    ld.backward()
    od.step()
    og.zero_grad()
    lg = bce(d(fake), ones)
    lg.backward()
    og.step()
    ld.item(), lg.item()
dt = time.perf_counter() - t0
print(json.dumps({"model": os.path.basename(a.gen), "batch": a.batch, "threads": a.threads, "steps": a.steps,
                  "images_per_s": a.batch * a.steps / dt, "torch": torch.__version__}), flush=True)
