#!/bin/sh
# tests/test_mpi.sh - clcnn-train as the ranks of an MPI job ($MPIRUN -np 2, one replica a rank,
# each on its own PoCL CPU device): run only when configure found MPI (CI installs Open MPI).
#   - 2 ranks write the same checkpoint, byte for byte, as 2 devices in one process (the same
#     split, the same sums in the same order), and LeNet-5 with dropout the weights of 1 device
#     to float rounding;
#   - with batch norm: two identical jobs, identical checkpoints; 13 steps = 6 + a resume for 7,
#     the resume in one process on 2 devices (a checkpoint records 2 replicas either way);
#   - a rank that fails (the host's third rank finds no device in a list of two) stops every rank
#     with its message, and SIGTERM to one rank stops both after the same step, rank 0 saving;
#     neither hangs (each job runs under a timeout).
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, MPIRUN.
. "$abs_top_srcdir/tests/lib.sh"

POCL_DEVICES=${POCL_DEVICES:-pthread pthread}
# Open MPI refuses to start as root without these (CI runs as root)
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export POCL_DEVICES OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
# sanitizer builds: Open MPI's components stay loaded until the leak check and stacks are unwound in
# full, so that Open MPI's own leaks are symbolised and tests/lsan.supp can name them
OMPI_MCA_mca_base_component_disable_dlclose=1
export OMPI_MCA_mca_base_component_disable_dlclose
if [ -n "${ASAN_OPTIONS:-}" ]; then ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"; export ASAN_OPTIONS; fi
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
real=/usr/share/datasets/fashion-mnist
tap_tmpdir mpi
need_torch_python
[ -n "${MPIRUN:-}" ] || { echo "Bail out! MPIRUN is not set (configure found MPI but no mpirun?)"; exit 1; }
mpib=$MPIRUN
# Open MPI: more ranks than cores is fine here (each rank's PoCL shares the cores)
if "$MPIRUN" --version 2>&1 | grep -q "Open MPI"; then mpib="$MPIRUN --oversubscribe"; fi
mpirun="$mpib -np 2"
if [ ! -f "$real/train-images-idx3-ubyte.gz" ]; then
  echo "Bail out! $real is missing: apt-get install dataset-fashion-mnist"
  exit 1
fi
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" "$real" "$tmp/small" 640 200 || { echo "Bail out! mkdata.py"; exit 1; }
small="--data $tmp/small"
# (mpirun forwards its stdin to rank 0: it gets none, or it would eat a caller's input)
job() { timeout 300 $mpirun "$train" "$@" < /dev/null > "$tmp/out" 2>&1; }


# 1. LeNet-5 with dropout, SGD: 2 ranks = 2 devices in one process, byte for byte; = 1 device to rounding.
sed 's/^flatten$/flatten\ndropout p=0.25/' "$ex/lenet5.txt" > "$tmp/lenet-drop.txt"
sgd="$tmp/lenet-drop.txt $small --batch 64 --steps 8 --optimizer sgd --lr 0.05 --momentum 0.9 -q"
job $sgd --save "$tmp/m2"
check $? "LeNet-5 with dropout, 8 steps, 2 MPI ranks"
if grep -q "on 2 MPI ranks" "$tmp/out" && grep -q "gradients combined over 2 replicas in 8 steps" "$tmp/out"; then
  ok "rank 0 says it trains on 2 ranks and how long combining the gradients took"
else notok "rank 0 says it trains on 2 ranks"; sed 's/^/# /' "$tmp/out" | head -n 20; fi
if [ "$(grep -c '^model ' "$tmp/out")" = 1 ]; then ok "only rank 0 prints"; else notok "only rank 0 prints"; fi
"$train" $sgd --device 0:0,0:1 --save "$tmp/i2" > "$tmp/out" 2>&1
check $? "the same on 2 devices in one process"
if cmp -s "$tmp/m2" "$tmp/i2"; then ok "2 MPI ranks and 2 devices in one process write the same checkpoint, byte for byte"
else notok "2 MPI ranks and 2 devices in one process write the same checkpoint"; fi
"$train" $sgd --save "$tmp/s1" > "$tmp/out" 2>&1
if d=$("$py" "$abs_top_srcdir/tests/cmp_weights.py" "$tmp/s1" "$tmp/m2" 1e-5 2>&1); then ok "2 MPI ranks: the weights of 1 device ($d)"
else notok "2 MPI ranks: the weights of 1 device ($d)"; fi

# 2. Batch norm: identical jobs, identical bytes; exact resume, across the two ways of running.
bn="$ex/fashion-bn.txt $small --batch 64 -q"
job $bn --steps 13 --save "$tmp/b-a"
check $? "fashion-bn (batch norm, dropout), 13 steps on 2 ranks"
job $bn --steps 13 --save "$tmp/b-b"
if cmp -s "$tmp/b-a" "$tmp/b-b"; then ok "two identical MPI jobs write the same bytes"
else notok "two identical MPI jobs write the same bytes"; fi
job $bn --steps 6 --save "$tmp/b-c"
check $? "6 steps on 2 ranks, saved"
"$train" $bn --device 0:0,0:1 --steps 7 --resume "$tmp/b-c" --save "$tmp/b-c" > "$tmp/out" 2>&1
check $? "resumed for 7 steps on 2 devices in one process"
if cmp -s "$tmp/b-a" "$tmp/b-c"; then ok "13 steps on 2 ranks = 6 on 2 ranks + 7 on 2 devices, byte for byte"
else notok "13 steps on 2 ranks = 6 on 2 ranks + 7 on 2 devices"; fi
bad 1 "was trained on 2 devices; resume it on as many" "a 2-rank checkpoint resumed on 1 device" -- \
  "$train" $bn --steps 1 --resume "$tmp/b-c"

# 3. Faults: a rank that fails stops the job with its message; SIGINT stops both ranks at one step.
timeout 300 $mpib -np 3 "$train" $sgd --device 0:0,0:1 < /dev/null > "$tmp/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 2 of 3.*lists 2 devices but this host runs 3 ranks" "$tmp/out"; then
  ok "a rank without a device stops the job (exit $rc) with its message"
else notok "a rank without a device stops the job (exit $rc)"; sed 's/^/# /' "$tmp/out" | tail -n 12; fi
timeout 300 $mpirun "$train" $bn --epochs 5 --save "$tmp/int" < /dev/null > "$tmp/out" 2>&1 &
job_pid=$!
i=0
while [ $i -lt 1200 ] && ! grep -q "^epoch 1:" "$tmp/out" 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
# SIGTERM to one rank alone (as a scheduler or a failing node might): the others learn it at the
# next step; mpirun's own Ctrl-C handling is Open MPI's (README)
mpirun_pid=$(pgrep -P $job_pid | head -n 1)
one=$(pgrep -P "$mpirun_pid" | tail -n 1)
[ -n "$one" ] && kill -TERM "$one"
wait $job_pid
rc=$?
s0=$(sed -n 's/.*rank 0 of 2): terminated after step \([0-9]*\).*/\1/p' "$tmp/out")
s1=$(sed -n 's/.*rank 1 of 2): terminated after step \([0-9]*\).*/\1/p' "$tmp/out")
if [ $rc -ne 124 ] && [ -n "$s0" ] && [ "$s0" = "$s1" ] && grep -q "rank 0 of 2).*saved" "$tmp/out" && [ -f "$tmp/int" ]; then
  ok "SIGTERM to one rank: both ranks stop after step $s0, rank 0 saves"
else notok "SIGTERM to one rank: both ranks stop after one step (exit $rc, steps '$s0' '$s1')"; sed 's/^/# /' "$tmp/out" | tail -n 12; fi
"$train" $bn --device 0:0,0:1 --epochs 5 --resume "$tmp/int" > "$tmp/out" 2>&1
check $? "the job's checkpoint resumes on 2 devices in one process"
echo "1..$n"
exit $fail
