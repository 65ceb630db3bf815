#!/bin/sh
# bench/run.sh [MODEL...] - clcnn-bench and PyTorch on the same models in one run, on this
# machine, and the ratios. Run from a build tree (or with clcnn-bench on PATH); PyTorch is
# taken from $TORCH_PYTHON, else /usr/bin/python3. Quote medians: these machines are noisy.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bench=${CLCNN_BENCH:-$top/tools/clcnn-bench}
py=${TORCH_PYTHON:-/usr/bin/python3}
batches=${BATCHES:-16,64,256}
steps=${STEPS:-20}
[ $# -gt 0 ] || set -- "$top/examples/lenet5.txt" "$top/examples/cifar10.txt"
out=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-bench.XXXXXX")
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== clcnn: $bench --batches $batches --steps $steps $*"
"$bench" --batches "$batches" --steps "$steps" --json "$@" > "$out/clcnn.json" || exit 1
echo "== PyTorch: $py bench/bench_torch.py --batches $batches --steps $steps $*"
"$py" "$here/bench_torch.py" --batches "$batches" --steps "$steps" "$@" > "$out/torch.json" || exit 1
"$py" - "$out/clcnn.json" "$out/torch.json" <<'PY'
import json, sys
cl = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tr = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
print(f"{'model':<16}{'batch':>6}{'clcnn img/s':>13}{'torch img/s':>13}{'threads':>9}{'ratio':>8}{'clcnn MiB':>11}")
for c in cl:
    if "images_per_s" not in c:
        continue
    t = next(r for r in tr if r.get("best") and r["model"] == c["model"] and r["batch"] == c["batch"])
    print(f"{c['model']:<16}{c['batch']:>6}{c['images_per_s']:>13.0f}{t['images_per_s']:>13.0f}{t['threads']:>9}"
          f"{c['images_per_s'] / t['images_per_s']:>8.2f}{c['peak_bytes'] / 2**20:>11.1f}")
print(f"(PyTorch {tr[0]['torch']} at its best thread count; ratio = clcnn / PyTorch, medians of the timed steps)")
PY
rm -rf "$out"
