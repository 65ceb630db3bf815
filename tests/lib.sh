# tests/lib.sh - what clcnn's shell tests share; POSIX sh, sourced (not run) by a test as
#   . "$abs_top_srcdir/tests/lib.sh"
# It gives:
#   n, fail      the TAP counters (checks so far; 1 once any failed), both 0;
#   ok WHAT      prints "ok N - WHAT";
#   notok WHAT   prints "not ok N - WHAT" and sets fail (a test may define its own after sourcing);
#   tap_tmpdir NAME
#                sets tmp to a new folder ${TMPDIR:-/tmp}/clcnn-NAME.XXXXXX, removed when the
#                shell exits (an EXIT trap: a test that needs more in its trap sets its own);
#                bails out when it cannot be made;
#   check RC WHAT
#                ok WHAT when RC is 0, else notok WHAT and the last 25 lines of $tmp/out as
#                diagnostics (the commands a test checks write their output there);
#   bad RC "words" WHAT -- COMMAND...
#                runs COMMAND into $tmp/out: ok when it exits with RC and says "words" (a
#                refusal's message), else notok with the last 8 lines;
#   need_torch_python
#                sets py to the first of $TORCH_PYTHON, /usr/bin/python3, $PYTHON3, python3 that
#                imports torch and safetensors.torch; bails out when none does (such tests fail
#                without PyTorch, they never skip).
# The test ends with: echo "1..$n"; exit $fail.
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }

check() { if [ "$1" -eq 0 ]; then ok "$2"; else notok "$2"; sed 's/^/# /' "$tmp/out" | tail -n 25; fi; }

bad() {
  _want=$1 _words=$2 _what=$3
  shift 4
  "$@" > "$tmp/out" 2>&1
  _rc=$?
  if [ $_rc -eq "$_want" ] && grep -q -- "$_words" "$tmp/out"; then ok "$_what: exit $_rc, says '$_words'"
  else notok "$_what: exit $_rc (want $_want), says '$_words'?"; sed 's/^/# /' "$tmp/out" | tail -n 8; fi
}

# The segmentation and detection tests' data: a clcnn-mkdata set of 256 training and 48 test
# canvases in $tmp/set (masks and labels both), checked as a test of its own.
small_set() {
  "$abs_top_builddir/tools/clcnn-mkdata" "$tmp/set" --train 256 --test 48 -q > "$tmp/out" 2>&1
  check $? "clcnn-mkdata writes a small set (256 training, 48 test canvases)"
}

tap_tmpdir() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-$1.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
  trap 'rm -rf "$tmp"' EXIT
}

need_torch_python() {
  py=
  for p in "$TORCH_PYTHON" /usr/bin/python3 "$PYTHON3" python3; do
    if [ -n "$p" ] && "$p" -c "import torch, safetensors.torch" 2> /dev/null; then py=$p; break; fi
  done
  if [ -z "$py" ]; then
    echo "Bail out! no python3 with torch and safetensors: apt-get install python3-torch python3-pip && pip install --break-system-packages safetensors"
    exit 1
  fi
}
