#!/usr/bin/env python3
"""bench/bench_torch.py [--threads 1,2] [--batches 16,64,256] [--steps N] MODEL... - the same
training steps as clcnn-bench (Adam, synthetic data, softmax cross-entropy), in PyTorch on the
CPU: for each model and batch, images/s at each thread count and at the best one, as JSON lines.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_interop import build  # noqa: E402  the clcnn model file -> torch.nn.Sequential

ap = argparse.ArgumentParser()
ap.add_argument("models", nargs="+")
ap.add_argument("--threads", default=",".join(str(t) for t in sorted({1, os.cpu_count() or 1})))
ap.add_argument("--batches", default="16,64,256")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--device", default="cpu", help="cpu or cuda")
args = ap.parse_args()

for path in args.models:
    for batch in (int(b) for b in args.batches.split(",")):
        best = None
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = build(path).to(args.device).train()
            shape = None
            for raw in open(path):
                w = raw.split("#")[0].split()
                if w and w[0] == "input":
                    shape = tuple(int(v) for v in w[1:4])
            x = torch.rand(batch, *shape, device=args.device)
            with torch.no_grad():
                k = model.eval()(x[:2]).shape[1]
            model.train()
            y = torch.arange(batch, device=args.device) % k
            opt = torch.optim.Adam(model.parameters())
            loss_fn = torch.nn.CrossEntropyLoss()
            times = []
            for step in range(args.warmup + args.steps):
                t0 = time.perf_counter()
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                loss.item()
                times.append(time.perf_counter() - t0)
            med = sorted(times[args.warmup:])[args.steps // 2]
            rec = {"model": os.path.basename(path), "batch": batch, "threads": threads, "step_s": med,
                   "images_per_s": batch / med, "torch": torch.__version__, "device": args.device}
            print(json.dumps(rec), flush=True)
            if best is None or rec["images_per_s"] > best["images_per_s"]:
                best = rec
        print(json.dumps(dict(best, best=True)), flush=True)
