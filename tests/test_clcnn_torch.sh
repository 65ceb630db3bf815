#!/bin/sh
# tests/test_clcnn_torch.sh - the PyTorch side of the graph tests checks itself
# (tests/test_clcnn_torch.py: the model-file parser of tests/clcnn_torch.py against the examples
# and tests/graphs, its shapes and forward against functional PyTorch, gradcheck, the layout of the
# old torch.nn.Sequential build, torch_graph.py's files). Needs python3 with torch and safetensors.
. "$abs_top_srcdir/tests/lib.sh"
need_torch_python
tap_tmpdir torchself
out="$tmp/out"
"$py" "$abs_top_srcdir/tests/test_clcnn_torch.py" > "$out" 2>&1
rc=$?
while IFS= read -r line; do
  case $line in
    "PASS "*) ok "${line#PASS }" ;;
    "FAIL "*) notok "${line#FAIL }" ;;
    *) echo "# $line" ;;
  esac
done < "$out"
if [ $rc -ne 0 ] && [ $fail -eq 0 ]; then notok "test_clcnn_torch.py exited with $rc"; fi
echo "1..$n"
exit $fail
