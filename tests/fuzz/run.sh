#!/bin/sh
# tests/fuzz/run.sh SRCDIR HARNESS... - run each libFuzzer harness tests/fuzz/fuzz_HARNESS for
# $FUZZ_TIME seconds over a copy of its seed corpus SRCDIR/tests/fuzz/HARNESS (new inputs go
# to fuzz-work/HARNESS/corpus in the build directory, never into the source tree). Fails when
# any harness finds a crash, a leak, a timeout (10 s) or runs out of memory; the input that
# did it is kept as fuzz-work/HARNESS/crash-* (or leak-*, timeout-*, oom-*). FUZZ_RESUME=1
# keeps the corpus an earlier run grew there and starts from it (plus the seeds).
srcdir=$1
shift
time=${FUZZ_TIME:-30}
rss=${FUZZ_RSS_MB:-2048}
work=$(pwd)/fuzz-work
mkdir -p "$work/cache"
failed=0
for h in "$@"; do
  d=$work/$h
  if [ -n "${FUZZ_RESUME:-}" ] && [ -d "$d/corpus" ]; then
    rm -f "$d/log" "$d"/crash-* "$d"/leak-* "$d"/timeout-* "$d"/oom-* "$d"/slow-unit-*
  else
    rm -rf "$d"
  fi
  mkdir -p "$d/corpus"
  cp "$srcdir/tests/fuzz/$h"/* "$d/corpus/"
  start=$(date +%s)
  CLCNN_KERNEL_PATH=$srcdir/cl CLCNN_CACHE_DIR=$work/cache \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  LSAN_OPTIONS=suppressions=$srcdir/tests/fuzz/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "./tests/fuzz/fuzz_$h" -max_total_time="$time" -timeout=10 -rss_limit_mb="$rss" \
      -malloc_limit_mb="$rss" -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$d/" \
      "$d/corpus" > "$d/log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log")
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$d/log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz_$h: ok: ${runs:-?} inputs in ${secs} s, $cov, corpus $(ls "$d/corpus" | wc -l) files"
  else
    failed=1
    echo "fuzz_$h: FAILED (rc $rc) after ${secs} s: $(ls "$d" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|$d/|" | tr '\n' ' ')"
    grep -E 'ERROR|SUMMARY|check failed|runtime error' "$d/log" | head -n 20
    tail -n 40 "$d/log"
  fi
done
exit $failed
