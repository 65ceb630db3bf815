#!/usr/bin/env python3
"""tests/mkdata.py SRC DST NTRAIN NTEST - write the first NTRAIN training and NTEST test
images of the IDX data set in SRC (.gz) to DST as plain IDX files, for short test runs."""
import gzip
import os
import struct
import sys

src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dst, exist_ok=True)
for split, n in (("train", ntrain), ("t10k", ntest)):
    with gzip.open(os.path.join(src, f"{split}-images-idx3-ubyte.gz")) as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        pixels = f.read(n * rows * cols)
    with open(os.path.join(dst, f"{split}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + pixels)
    with gzip.open(os.path.join(src, f"{split}-labels-idx1-ubyte.gz")) as f:
        magic, count = struct.unpack(">II", f.read(8))
        labels = f.read(n)
    with open(os.path.join(dst, f"{split}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", magic, n) + labels)
