#!/bin/sh
# bench/run.sh [MODEL...] - clcnn-bench and PyTorch on the same models in one run, on this
# machine, and the ratios. Run from a build tree (or with clcnn-bench on PATH); PyTorch is
# taken from $TORCH_PYTHON, else /usr/bin/python3. These machines are shared and noisy: the two
# run in turn, ROUNDS times (default 3), and each figure is the median over the rounds of the
# per-round medians, so that a slow minute hurts both sides alike.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bench=${CLCNN_BENCH:-$top/tools/clcnn-bench}
py=${TORCH_PYTHON:-/usr/bin/python3}
batches=${BATCHES:-16,64,256}
steps=${STEPS:-20}
rounds=${ROUNDS:-3}
case $rounds in '' | *[!0-9]* | 0) echo "ROUNDS must be a positive number, not '$rounds'" >&2; exit 2 ;; esac
[ $# -gt 0 ] || set -- "$top/examples/lenet5.txt" "$top/examples/cifar10.txt" "$top/examples/resnet-fashion.txt"
out=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-bench.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT INT TERM
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== clcnn: $bench --batches $batches --steps $steps --json $*"
echo "== PyTorch: $py bench/bench_torch.py --batches $batches --steps $steps $*"
echo "== $rounds rounds, each clcnn then PyTorch"
r=1
while [ "$r" -le "$rounds" ]; do
  "$bench" --batches "$batches" --steps "$steps" --json "$@" >> "$out/clcnn.json" || exit 1
  "$py" "$here/bench_torch.py" --batches "$batches" --steps "$steps" "$@" >> "$out/torch.json" || exit 1
  r=$((r + 1))
done
"$py" - "$out/clcnn.json" "$out/torch.json" <<'PY'
import json, statistics, sys
cl = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tr = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
keys = []
for c in cl:
    if "images_per_s" in c and (c["model"], c["batch"]) not in keys:
        keys.append((c["model"], c["batch"]))
print(f"{'model':<16}{'batch':>6}{'clcnn img/s':>13}{'torch img/s':>13}{'threads':>9}{'ratio':>8}{'clcnn MiB':>11}"
      f"  rounds (clcnn / torch)")
for m, b in keys:
    cs = [c for c in cl if c.get("model") == m and c.get("batch") == b and "images_per_s" in c]
    ts = [t for t in tr if t.get("best") and t["model"] == m and t["batch"] == b]
    ci = statistics.median(c["images_per_s"] for c in cs)
    ti = statistics.median(t["images_per_s"] for t in ts)
    threads = statistics.mode(t["threads"] for t in ts)
    each = " ".join(f"{c['images_per_s']:.0f}/{t['images_per_s']:.0f}" for c, t in zip(cs, ts))
    print(f"{m:<16}{b:>6}{ci:>13.0f}{ti:>13.0f}{threads:>9}{ci / ti:>8.2f}{cs[0]['peak_bytes'] / 2**20:>11.1f}  {each}")
print(f"(PyTorch {tr[0]['torch']} at its best thread count; ratio = clcnn / PyTorch, medians over the rounds)")
PY
