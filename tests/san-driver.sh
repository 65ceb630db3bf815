#!/bin/sh
# tests/san-driver.sh - wraps the TAP driver in a --enable-sanitizers build (Makefile.am puts it
# in front of LOG_DRIVER). Every process a test starts writes its AddressSanitizer,
# LeakSanitizer and UBSan reports to LOG.san.PID (ASAN_OPTIONS/UBSAN_OPTIONS log_path, set in
# AM_TESTS_ENVIRONMENT), whether or not the test shows the tool's stderr. After the test, any such
# file is copied into the test's log and the test becomes an ERROR: a report from clcnn's code
# fails its test. PoCL's, LLVM's and the ICD loader's own leaks are suppressed by tests/lsan.supp
# and leave no file.
# Usage: san-driver.sh DRIVER-COMMAND... --log-file LOG --trs-file TRS ... -- TEST
log= trs= name= prev=
for a in "$@"; do
  case $prev in
    --log-file) log=$a ;;
    --trs-file) trs=$a ;;
    --test-name) name=$a ;;
  esac
  [ "$a" = -- ] && break
  prev=$a
done
if [ -z "$log" ] || [ -z "$trs" ]; then
  echo "san-driver.sh: no --log-file/--trs-file in: $*" >&2
  exit 99
fi
# LeakSanitizer's own stop-the-world tracer sometimes dies at exit ("Tracer caught signal 11",
# then "LeakSanitizer has encountered a fatal error"), with no leak found and clcnn's code
# long finished: a known fault of the runtime with threaded programs (google/sanitizers#1353;
# PoCL keeps worker threads). No leak check ran, so the test is run again, at most twice; a
# report of any other kind, or the crash three times over, still fails it.
tracer_crash_only() {
  [ -n "$1" ] || return 1
  for f in $1; do
    grep -q 'LeakSanitizer has encountered a fatal error' "$f" || return 1
    grep -v -e '^Tracer caught signal' -e 'LeakSanitizer has encountered a fatal error' -e '==HINT: ' "$f" |
      grep -q . && return 1
  done
  return 0
}
try=1
while :; do
  rm -f "$log".san.*
  "$@"
  rc=$?
  reports=$(ls "$log".san.* 2> /dev/null)
  tracer_crash_only "$reports" && [ $try -lt 3 ] || break
  echo "# san-driver.sh: try $try: LeakSanitizer's tracer crashed at exit (no leak check ran); running the test again:" >&2
  cat $reports >&2
  try=$((try + 1))
done
[ $try -gt 1 ] && echo "# san-driver.sh: LeakSanitizer's tracer crashed at exit on $((try - 1)) earlier run(s); this log is of run $try" >> "$log"
# gcc's UBSan, linked beside libasan, ignores log_path and writes to stderr: look in the log too
# (configure with CC=clang to have those files as well, for processes whose stderr a script hides).
if grep -q -e '^==[0-9]*==ERROR: [A-Za-z]*Sanitizer' -e ': runtime error: ' "$log" 2> /dev/null; then
  reports="$reports $log"
fi
if [ -n "$reports" ]; then
  {
    echo "#"
    echo "# ==== sanitizer reports: the test fails ===="
    for f in $reports; do
      [ "$f" = "$log" ] && { echo "# (the report is above in this log)"; continue; }
      echo "# ---- $f"
      cat "$f"
    done
  } >> "$log"
  sed -e 's/^:global-test-result: .*/:global-test-result: ERROR/' -e 's/^:recheck: .*/:recheck: yes/' "$trs" > "$trs.tmp" &&
    echo ":test-result: ERROR" >> "$trs.tmp" && mv "$trs.tmp" "$trs"
  echo "ERROR: ${name:-$log} - sanitizer report, see $log"
fi
exit $rc
