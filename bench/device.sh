#!/bin/sh
# bench/device.sh - run on a GPU machine (bench/make-devkit.sh first, here): point the ICD
# loader at the vendor's OpenCL library, then clcnn-devices --check, clcnn-bench, a training
# run, and PyTorch on the same GPU when it is installed there. Prints everything it sees.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export LD_LIBRARY_PATH="$top/devkit/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CLCNN_KERNEL_PATH="$top/cl"
mkdir -p "$top/devkit/icd"
lib=$(ls /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 /usr/lib64/libnvidia-opencl.so.1 /usr/lib/libnvidia-opencl.so.1 \
  /usr/local/nvidia/lib64/libnvidia-opencl.so.1 2>/dev/null | head -n 1)
echo "== NVIDIA OpenCL library: ${lib:-none found}"
[ -n "$lib" ] && echo "$lib" > "$top/devkit/icd/nvidia.icd"
export OCL_ICD_VENDORS="$top/devkit/icd"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
bin="$top/devkit/bin"
echo "== clcnn-devices -l"; "$bin/clcnn-devices" -l
echo "== clcnn-devices --check"; "$bin/clcnn-devices" --check
echo "== first step, cold and warm"
"$bin/clcnn-bench" --first-step --batches 64 --device gpu examples/lenet5.txt
"$bin/clcnn-bench" --first-step --batches 64 --device gpu examples/lenet5.txt
echo "== clcnn-bench"
"$bin/clcnn-bench" --device gpu --batches 16,64,256 --steps 20 examples/lenet5.txt examples/cifar10.txt examples/fashion-bn.txt
echo "== clcnn-train LeNet-5, 1 epoch"
"$bin/clcnn-train" examples/lenet5.txt --data "$top/devkit/data" --epochs 1 --device gpu -q
echo "== PyTorch"
for p in python3 /usr/bin/python3 /opt/conda/bin/python; do
  if command -v "$p" > /dev/null 2>&1 && "$p" -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
    "$p" bench/bench_torch.py --device cuda --threads 1 --batches 16,64,256 examples/lenet5.txt examples/cifar10.txt examples/fashion-bn.txt
    exit 0
  fi
done
echo "no python with torch (CUDA) on this machine: no PyTorch figures"
for p in python3 /usr/bin/python3; do command -v "$p" > /dev/null 2>&1 && "$p" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1; done
