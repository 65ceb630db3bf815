"""tests/cmp_weights.py A B TOL - whether two safetensors checkpoints hold the same tensors, each
element within TOL; prints the largest difference (exit 0 when within, 1 otherwise)."""
import sys
from safetensors.numpy import load_file
a, b, tol = load_file(sys.argv[1]), load_file(sys.argv[2]), float(sys.argv[3])
if set(a) != set(b):
    print("different tensors"); sys.exit(1)
worst = max(float(abs(a[k].astype("float64") - b[k].astype("float64")).max()) for k in a)
scale = max(float(abs(a[k].astype("float64")).max()) for k in a)
print("largest difference %.3g (largest weight %.3g)" % (worst, scale))
sys.exit(0 if worst <= tol else 1)
