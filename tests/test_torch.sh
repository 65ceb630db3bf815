#!/bin/sh
# tests/test_torch.sh - checkpoints cross the border to PyTorch and back: a clcnn-train
# checkpoint loads strictly into the equivalent torch.nn.Sequential (for the ResNet example, a graph,
# the torch.nn.Module tests/clcnn_torch.py builds) and evaluates there to the
# same loss and accuracy; a state_dict that PyTorch saved evaluates in clcnn-train to what
# PyTorch computes, and trains on. Needs python3 with torch (Debian's python3-torch) and
# safetensors (pip); without them it fails, it does not skip.
. "$abs_top_srcdir/tests/lib.sh"
train="$abs_top_builddir/tools/clcnn-train"
ex="$abs_top_srcdir/examples"
tap_tmpdir torch
need_torch_python
ok "PyTorch found: $py ($("$py" -c 'import torch; print(torch.__version__)'))"
"${PYTHON3:-python3}" "$abs_top_srcdir/tests/mkdata.py" /usr/share/datasets/fashion-mnist "$tmp/data" 640 1000 || { echo "Bail out! mkdata.py"; exit 1; }

near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
for m in lenet5 fashion-bn resnet-fashion; do
  "$train" "$ex/$m.txt" --data "$tmp/data" --epochs 2 -q --save "$tmp/$m.safetensors" > "$tmp/out" 2>&1 || { notok "$m: clcnn-train"; continue; }
  "$train" "$ex/$m.txt" --data "$tmp/data" --eval --init "$tmp/$m.safetensors" > "$tmp/eval" 2>&1
  cl=$(sed -n 's/^test loss \([0-9.]*\)  accuracy \([0-9.]*\)%.*/\1 \2/p' "$tmp/eval")
  if "$py" "$abs_top_srcdir/tests/torch_interop.py" "$ex/$m.txt" "$tmp/data" "$tmp/$m.safetensors" "$tmp/$m-torch.safetensors" > "$tmp/py" 2>&1; then
    ok "$m: the clcnn-train checkpoint loads strictly into the torch.nn module of the same file (load_state_dict(load_file(...)))"
  else
    notok "$m: strict load into PyTorch"; sed 's/^/# /' "$tmp/py" | tail -n 15; continue
  fi
  te=$(sed -n 's/^torch-eval //p' "$tmp/py")
  if near "${cl% *}" "${te% *}" 2e-4 && near "${cl#* }" "${te#* }" 0.15; then
    ok "$m: PyTorch evaluates it as clcnn does: loss/accuracy clcnn $cl, torch $te"
  else notok "$m: same evaluation (clcnn '$cl', torch '$te')"; fi
  "$train" "$ex/$m.txt" --data "$tmp/data" --eval --init "$tmp/$m-torch.safetensors" > "$tmp/eval" 2>&1
  cf=$(sed -n 's/^test loss \([0-9.]*\)  accuracy \([0-9.]*\)%.*/\1 \2/p' "$tmp/eval")
  tf=$(sed -n 's/^torch-fresh //p' "$tmp/py")
  if [ -n "$cf" ] && near "${cf% *}" "${tf% *}" 2e-4 && near "${cf#* }" "${tf#* }" 0.15; then
    ok "$m: weights saved by PyTorch evaluate in clcnn-train as in PyTorch: clcnn $cf, torch $tf"
  else notok "$m: PyTorch's weights evaluate alike (clcnn '$cf', torch '$tf')"; sed 's/^/# /' "$tmp/eval" | tail -5; fi
  if "$train" "$ex/$m.txt" --data "$tmp/data" --init "$tmp/$m-torch.safetensors" --epochs 1 -q --save "$tmp/$m-on.safetensors" > "$tmp/out" 2>&1 &&
    "$py" -c "
import sys, torch
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
" "$tmp/$m-torch.safetensors" "$tmp/$m-on.safetensors"; then
    ok "$m: PyTorch's state_dict trains on in clcnn-train"
  else notok "$m: PyTorch's state_dict trains on"; sed 's/^/# /' "$tmp/out" | tail -5; fi
done
echo "1..$n"
exit $fail
