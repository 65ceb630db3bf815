#!/bin/sh
# tests/test_torch_graph.sh - graphs against PyTorch: for a ResNet-style, a U-Net-style and a
# fan-out graph (tests/graphs/), clcnn (tests/graph_ref, double) and a torch.nn.Module built from
# the same model file (tests/torch_graph.py, float64) start from the same parameters and batch and
# must give the same loss, each loss, every parameter's gradient and, after 3 Adam steps, every
# parameter and buffer; and a state_dict PyTorch saves loads strictly into clcnn. Needs python3
# with torch and safetensors; without them it fails.
. "$abs_top_srcdir/tests/lib.sh"
tap_tmpdir torchgraph
need_torch_python
ref="$abs_top_builddir/tests/graph_ref"
for m in resnet-tiny unet-tiny unet-wide fanout; do
  model="$abs_top_srcdir/tests/graphs/$m.txt"
  d="$tmp/$m"
  mkdir -p "$d"
  if ! "$ref" run "$model" "$d" > "$d/c.out" 2>&1; then
    notok "$m: clcnn trains 3 Adam steps"; sed 's/^/# /' "$d/c.out"; continue
  fi
  if ! "$py" "$abs_top_srcdir/tests/torch_graph.py" run "$model" "$d" > "$d/t.out" 2>&1; then
    notok "$m: PyTorch loads clcnn's initial state strictly and trains 3 Adam steps"; sed 's/^/# /' "$d/t.out" | tail -n 15; continue
  fi
  ok "$m: PyTorch loads clcnn's initial state strictly and trains 3 Adam steps"
  # every value PyTorch reports, against clcnn's: the loss, each loss, every gradient, every final
  # parameter and buffer; both in double, so only the order of sums differs: 1e-9 of the tensor's
  # largest magnitude (the Adam steps divide by sqrt of the second moment, which keeps that scale)
  "$py" - "$d/torch.safetensors" "$d/c.safetensors" > "$d/cmp" 2>&1 <<'PY'
import sys
from safetensors.torch import load_file
t, c = load_file(sys.argv[1]), load_file(sys.argv[2])
bad = 0
if set(t) != set(c):
    print(f"FAIL keys differ: only torch {sorted(set(t) - set(c))}, only clcnn {sorted(set(c) - set(t))}")
    bad = 1
worst = {}
for k in sorted(set(t) & set(c)):
    a, b = t[k].double().reshape(-1), c[k].double().reshape(-1)
    if a.shape != b.shape:
        print(f"FAIL {k}: shapes {tuple(t[k].shape)} and {tuple(c[k].shape)}")
        bad = 1
        continue
    scale = max(1.0, a.abs().max().item()) if a.numel() else 1.0
    err = (a - b).abs().max().item() / scale if a.numel() else 0.0
    kind = k.split(".")[0]
    worst[kind] = max(worst.get(kind, 0.0), err)
    if not err <= 1e-9:
        print(f"FAIL {k}: max difference {err:.3g} of its scale {scale:.3g}")
        bad = 1
print("worst " + ", ".join(f"{k} {v:.2g}" for k, v in sorted(worst.items())))
sys.exit(bad)
PY
  if [ $? -eq 0 ]; then
    ok "$m: same loss, losses, gradients and state after 3 Adam steps ($(sed -n 's/^worst //p' "$d/cmp"))"
  else
    notok "$m: same results as PyTorch"; sed 's/^/# /' "$d/cmp" | head -n 20
  fi
  if "$py" "$abs_top_srcdir/tests/torch_graph.py" fresh "$model" "$d/fresh.safetensors" > "$d/f.out" 2>&1 &&
    "$ref" load "$model" "$d/fresh.safetensors" > "$d/l.out" 2>&1; then
    ok "$m: PyTorch's fresh state_dict loads strictly into clcnn"
  else
    notok "$m: PyTorch's state_dict loads strictly into clcnn"; sed 's/^/# /' "$d/f.out" "$d/l.out" | tail -n 10
  fi
done
# a state_dict with one key too many or one missing is refused
m=resnet-tiny
model="$abs_top_srcdir/tests/graphs/$m.txt"
if [ -f "$tmp/$m/fresh.safetensors" ]; then
  "$py" - "$tmp/$m/fresh.safetensors" "$tmp/extra.safetensors" "$tmp/missing.safetensors" <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
s = load_file(sys.argv[1])
e = dict(s); e["extra.weight"] = torch.zeros(2)
save_file(e, sys.argv[2])
k = sorted(s)[0]; del s[k]
save_file(s, sys.argv[3])
PY
  if ! "$ref" load "$model" "$tmp/extra.safetensors" > "$tmp/e.out" 2>&1 && ! "$ref" load "$model" "$tmp/missing.safetensors" > "$tmp/m.out" 2>&1; then
    ok "a state_dict with a key too many or one missing is refused: $(head -n 1 "$tmp/e.out"); $(head -n 1 "$tmp/m.out")"
  else notok "a state_dict with a key too many or one missing is refused"; fi
else notok "resnet-tiny's fresh state_dict exists"; fi
echo "1..$n"
exit $fail
