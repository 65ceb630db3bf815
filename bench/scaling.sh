#!/bin/sh
# bench/scaling.sh [MODEL:DATA...] - data parallel scaling on this machine's CPU through PoCL:
# clcnn-train's images/s on one device with 1 thread and with 2 threads; two replicas in one
# process (POCL_DEVICES="pthread pthread": PoCL's CPU devices share one pool of threads, so they
# get the 2 threads between them); and two MPI ranks of 1 thread each (mpirun -np 2, when found),
# taking turns ROUNDS times (default 3; medians), with the time spent combining the replicas'
# gradients per step. Each run
# trains STEPS steps (default 40) of BATCH (default 64) from a warm kernel cache. MODEL:DATA pairs
# default to LeNet-5 and the batch-norm net on Fashion-MNIST, and the U-Net on $SEG (a
# clcnn-mkdata set, default /tmp/fashion-seg, made when missing).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
train=${CLCNN_TRAIN:-$top/tools/clcnn-train}
rounds=${ROUNDS:-3}
steps=${STEPS:-40}
batch=${BATCH:-64}
fm=/usr/share/datasets/fashion-mnist
seg=${SEG:-/tmp/fashion-seg}
case $rounds in '' | *[!0-9]* | 0) echo "ROUNDS must be a positive number, not '$rounds'" >&2; exit 2 ;; esac
if [ $# -eq 0 ]; then
  [ -d "$seg/train" ] || "$top/tools/clcnn-mkdata" "$seg" -q || exit 1
  set -- "$top/examples/lenet5.txt:$fm" "$top/examples/fashion-bn.txt:$fm" "$top/examples/unet-fashion.txt:$seg"
fi
configs="1dev-1thr 1dev-2thr 2dev-2thr"
command -v mpirun > /dev/null && configs="$configs 2rank-1thr"
out=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-scaling.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT INT TERM
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== $train MODEL --data DATA --steps $steps --batch $batch -q, $rounds rounds"
# one run: CONFIG MODEL DATA -> a line "CONFIG MODEL IMG/S REDUCE_MS WAIT_MS"
run() {
  case $1 in
    1dev-1thr) env POCL_DEVICES=pthread POCL_MAX_PTHREAD_COUNT=1 "$train" "$2" --data "$3" --steps "$steps" --batch "$batch" -q ;;
    1dev-2thr) env POCL_DEVICES=pthread "$train" "$2" --data "$3" --steps "$steps" --batch "$batch" -q ;;
    2dev-2thr) env POCL_DEVICES="pthread pthread" "$train" "$2" --data "$3" --steps "$steps" --batch "$batch" -q \
                 --device 0:0,0:1 ;;
    2rank-1thr) env POCL_DEVICES=pthread POCL_MAX_PTHREAD_COUNT=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
                  mpirun --oversubscribe --bind-to core -np 2 "$train" "$2" --data "$3" --steps "$steps" --batch "$batch" -q < /dev/null ;;
  esac > "$out/run" 2>&1 || { cat "$out/run" >&2; exit 1; }
  ips=$(sed -n 's/^done: .*(\([0-9]*\) img\/s).*/\1/p' "$out/run")
  red=$(sed -n 's/^gradients combined .*: \([0-9.]*\) ms a step summing.*, \([0-9.]*\) ms waiting.*/\1 \2/p' "$out/run")
  echo "$1 $(basename "$2" .txt) $ips ${red:-- -}" >> "$out/all"
}
# warm the kernel caches first (2 steps each)
full=$steps
steps=2
for md in "$@"; do run 2dev-2thr "${md%%:*}" "${md#*:}"; done
steps=$full
: > "$out/all"
r=1
while [ "$r" -le "$rounds" ]; do
  for md in "$@"; do
    for c in $configs; do run "$c" "${md%%:*}" "${md#*:}"; done
  done
  r=$((r + 1))
done
python3 - "$out/all" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    c, m, ips, red, wait = line.split()
    rows.setdefault(m, {}).setdefault(c, []).append((float(ips), red, wait))
cols = ["1dev-1thr", "1dev-2thr", "2dev-2thr", "2rank-1thr"]
print("%-14s" % "model" + "".join("%12s" % c for c in cols) + "%14s%14s" % ("2 ranks/1 dev", "combine ms"))
for m, cs in rows.items():
    med = {c: statistics.median(v[0] for v in cs[c]) for c in cs}
    line = "%-14s" % m + "".join("%12.0f" % med[c] if c in med else "%12s" % "-" for c in cols)
    ratio = med["2rank-1thr"] / med["1dev-1thr"] if "2rank-1thr" in med else float("nan")
    comb = statistics.median(float(v[1]) for v in cs.get("2rank-1thr", cs["2dev-2thr"]))
    print(line + "%14.2f%14.2f" % (ratio, comb))
print("(images/s, medians of the rounds; 2 ranks/1 dev: two ranks of one thread each over one device of one")
print(" thread; combine: rank 0's host time per step summing the gradients and enqueueing their write-back)")
PY
