#!/bin/sh
# bench/make-devkit.sh - gather what a bare GPU machine needs to run clcnn from this build tree
# into devkit/ (ignored by git): the library and tools, the OpenCL ICD loader, CLBlast, and
# Fashion-MNIST. clcnn-bench is rebuilt without OpenBLAS (a CPU reference, 40 MB).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
rm -rf devkit
mkdir -p devkit/lib devkit/bin devkit/data
cp -L .libs/libclcnn.so.0 devkit/lib/
cp -L /usr/lib/x86_64-linux-gnu/libOpenCL.so.1 /usr/lib/x86_64-linux-gnu/libclblast.so.1 devkit/lib/
cp tools/.libs/clcnn-devices tools/.libs/clcnn-train devkit/bin/
${CC:-cc} -O2 -std=gnu11 -Iinclude tools/clcnn-bench.c -L.libs -lclcnn -lm -o devkit/bin/clcnn-bench
cp /usr/share/datasets/fashion-mnist/*.gz devkit/data/
du -sh devkit
