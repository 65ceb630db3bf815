#!/bin/sh
# tests/test_torch_ref.sh - clcnn against PyTorch's own numbers, computed by torch now: every
# optimizer setting over several steps, StepLR and CosineAnnealingLR over a run, the default, He
# and Xavier initialisations' statistics, max pooling's and argmax's tie rules (tests/torch_ref.c
# runs clcnn, tests/torch_ref.py runs torch and compares), and clcnn-train --eval's argmax. Needs
# python3 with torch (Debian's python3-torch) and safetensors; without them it fails.
. "$abs_top_srcdir/tests/lib.sh"
tap_tmpdir torchref
need_torch_python
# "PASS what" / "FAIL what" / "# diag" from torch_ref.py -> TAP; its exit status must agree
relay() {
  while IFS= read -r line; do
    case $line in
      "PASS "*) ok "${line#PASS }" ;;
      "FAIL "*) notok "${line#FAIL }" ;;
      "#"*) echo "$line" ;;
      *) echo "# $line" ;;
    esac
  done < "$1"
}

if ! "$abs_top_builddir/tests/torch_ref" "$tmp" > "$tmp/c.out" 2>&1; then
  sed 's/^/# /' "$tmp/c.out"
  echo "Bail out! tests/torch_ref failed"
  exit 1
fi
"$py" "$abs_top_srcdir/tests/torch_ref.py" check "$tmp" > "$tmp/py.out" 2>&1
rc=$?
relay "$tmp/py.out"
[ $rc -eq 0 ] || [ $fail -ne 0 ] || notok "torch_ref.py check exited with $rc"

"$py" "$abs_top_srcdir/tests/torch_ref.py" mkeval "$tmp" > "$tmp/py.out" 2>&1 || { sed 's/^/# /' "$tmp/py.out"; echo "Bail out! mkeval"; exit 1; }
for w in weights.safetensors weights-nan.safetensors; do
  "$abs_top_builddir/tools/clcnn-train" "$tmp/model.txt" --data "$tmp" --eval --init "$tmp/$w" > "$tmp/eval" 2>&1 || sed 's/^/# /' "$tmp/eval"
  "$py" "$abs_top_srcdir/tests/torch_ref.py" checkeval "$tmp" "$w" "$tmp/eval" > "$tmp/py.out" 2>&1
  rc=$?
  relay "$tmp/py.out"
  [ $rc -eq 0 ] || [ $fail -ne 0 ] || notok "torch_ref.py checkeval $w exited with $rc"
done
echo "1..$n"
exit $fail
