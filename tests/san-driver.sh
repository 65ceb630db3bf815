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
rm -f "$log".san.*
"$@"
rc=$?
reports=$(ls "$log".san.* 2> /dev/null)
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
