#!/bin/sh
# bench/gan.sh [GENERATOR DISCRIMINATOR] - clcnn-gan against PyTorch (bench/gan_torch.py, the same
# step on the same nets) in one run on this machine: ROUNDS rounds (default 3), each clcnn-gan
# --steps STEPS (default 100) on Fashion-MNIST then PyTorch at 1 and at all threads; prints each
# round and the median images/s and ratio. Run from a build tree; PyTorch from $TORCH_PYTHON, else
# /usr/bin/python3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
gen=${1:-$top/examples/dcgan-gen.txt}
disc=${2:-$top/examples/dcgan-disc.txt}
py=${TORCH_PYTHON:-/usr/bin/python3}
rounds=${ROUNDS:-3}
steps=${STEPS:-100}
batch=${BATCH:-64}
out=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-gan-bench.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT INT TERM
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
r=1
while [ "$r" -le "$rounds" ]; do
  c=$("$top/tools/clcnn-gan" "$gen" "$disc" --steps "$steps" --batch "$batch" --out "$out/pics" -q |
    sed -n 's/^trained [0-9]* steps in [0-9.]* s (\([0-9.]*\) img\/s).*/\1/p')
  t1=$("$py" "$here/gan_torch.py" "$gen" "$disc" --steps "$steps" --batch "$batch" --threads 1 |
    sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p')
  tn=$("$py" "$here/gan_torch.py" "$gen" "$disc" --steps "$steps" --batch "$batch" --threads "$(nproc)" |
    sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p')
  [ -n "$c" ] && [ -n "$t1" ] && [ -n "$tn" ] || { echo "round $r: a run failed" >&2; exit 1; }
  echo "round $r: clcnn-gan $c img/s, PyTorch $t1 (1 thread) $tn ($(nproc) threads)"
  echo "$c $t1 $tn" >> "$out/rounds"
  r=$((r + 1))
done
"$py" - "$out/rounds" "$("$py" -c 'import torch; print(torch.__version__)')" "$batch" <<'PY'
import statistics, sys
rows = [[float(v) for v in l.split()] for l in open(sys.argv[1])]
c = statistics.median(r[0] for r in rows)
t = statistics.median(max(r[1], r[2]) for r in rows)
print(f"median: clcnn-gan {c:.0f} img/s, PyTorch {sys.argv[2]} at its best thread count {t:.0f} img/s, "
      f"ratio {c / t:.2f} (batch {sys.argv[3]}, {len(rows)} rounds)")
PY
