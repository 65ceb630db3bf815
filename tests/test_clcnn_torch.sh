#!/bin/sh
# tests/test_clcnn_torch.sh - the PyTorch side of the graph tests checks itself
# (tests/test_clcnn_torch.py: the model-file parser of tests/clcnn_torch.py against the examples
# and tests/graphs, its shapes and forward against functional PyTorch, gradcheck, the layout of the
# old torch.nn.Sequential build, torch_graph.py's files). Needs python3 with torch and safetensors.
py=
for p in "$TORCH_PYTHON" /usr/bin/python3 "$PYTHON3" python3; do
  if [ -n "$p" ] && "$p" -c "import torch, safetensors.torch" 2> /dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "Bail out! no python3 with torch and safetensors: apt-get install python3-torch python3-pip && pip install --break-system-packages safetensors"
  exit 1
fi
n=0
fail=0
out=$(mktemp "${TMPDIR:-/tmp}/clcnn-torchself.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -f "$out"' EXIT
"$py" "$abs_top_srcdir/tests/test_clcnn_torch.py" > "$out" 2>&1
rc=$?
while IFS= read -r line; do
  case $line in
    "PASS "*) n=$((n + 1)); echo "ok $n - ${line#PASS }" ;;
    "FAIL "*) n=$((n + 1)); fail=1; echo "not ok $n - ${line#FAIL }" ;;
    *) echo "# $line" ;;
  esac
done < "$out"
if [ $rc -ne 0 ] && [ $fail -eq 0 ]; then n=$((n + 1)); fail=1; echo "not ok $n - test_clcnn_torch.py exited with $rc"; fi
echo "1..$n"
exit $fail
