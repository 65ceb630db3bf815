#!/bin/sh
# tests/test_devices.sh - TAP checks of tools/clcnn-devices, run by 'make check'.
# Needs an OpenCL platform with at least one device: without one it fails, it never skips.
# Environment (from Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_builddir, PYTHON3.

here=$(cd "$(dirname "$0")" && pwd)
: "${abs_top_builddir:=$here/..}"
tool="$abs_top_builddir/tools/clcnn-devices"
py=${PYTHON3:-python3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-test-devices.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT INT TERM

n=0
failed=0
ok() { # ok COND-STATUS DESCRIPTION
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2"
    failed=$((failed + 1))
  fi
}
diag() { sed 's/^/# /' "$@"; }

# run NAME ARGS...: the tool's stdout, stderr and status in $tmp/NAME.{out,err,rc}
run() {
  name=$1
  shift
  "$tool" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
}
rc() { cat "$tmp/$1.rc"; }
# show what a failed check saw
show() { echo "# status $(rc "$1"); stdout:"; diag "$tmp/$1.out"; echo "# stderr:"; diag "$tmp/$1.err"; }

if [ ! -x "$tool" ]; then
  echo "Bail out! $tool was not built"
  exit 1
fi
if ! "$py" -c 'import json' 2>/dev/null; then
  echo "Bail out! no python3 to parse JSON (PYTHON3='$PYTHON3')"
  exit 1
fi

# 1-2: the default listing has device 0:0
run text
[ "$(rc text)" -eq 0 ]
r=$?
ok $r "default listing exits 0"
[ $r -eq 0 ] || show text
grep -q 'Device 0:0' "$tmp/text.out" && grep -q '^Platform #0: ' "$tmp/text.out"
r=$?
ok $r "default listing shows platform #0 and device 0:0 (no device: install pocl-opencl-icd)"
[ $r -eq 0 ] || show text

# 3: -l, one line per platform and device
run list -l
[ "$(rc list)" -eq 0 ] && grep -q '^Platform #0: ' "$tmp/list.out" &&
  grep -q '^ [`+]-- Device 0:0: .* \[[A-Z|]*\]$' "$tmp/list.out"
r=$?
ok $r "-l lists platform #0 and device 0:0 with its type"
[ $r -eq 0 ] || show list

# 4: --json is valid JSON with at least one device, each with the expected keys
run json --json
cat >"$tmp/check_json.py" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
devs = []
for pi, p in enumerate(d["platforms"]):
    assert p["index"] == pi, p["index"]
    for k in ("name", "vendor", "version"):
        assert isinstance(p[k], str), k
    for di, dev in enumerate(p["devices"]):
        assert dev["index"] == "%d:%d" % (pi, di), dev["index"]
        assert isinstance(dev["name"], str) and dev["name"], dev
        assert isinstance(dev["type"], str) and dev["type"], dev
        assert isinstance(dev["global_mem_bytes"], int) and dev["global_mem_bytes"] > 0, dev
        assert isinstance(dev["compute_units"], int) and dev["compute_units"] > 0, dev
        assert isinstance(dev["fp64"], bool) and isinstance(dev["fp16"], bool), dev
        devs.append(dev)
assert devs, "no device in the JSON"
# argv[2]: the name of device 0:0 as seen by another program
if len(sys.argv) > 2:
    name0 = d["platforms"][0]["devices"][0]["name"]
    assert name0.strip() == sys.argv[2].strip(), (name0, sys.argv[2])
# PoCL is a CPU platform: it must list a CPU device
for p in d["platforms"]:
    if "Portable Computing Language" in p["name"] or "pocl" in p["vendor"].lower():
        assert any("CPU" in dev["type"].split("|") for dev in p["devices"]), p
print("# %d device(s): %s" % (len(devs), ", ".join(x["index"] + " " + x["name"] for x in devs)))
EOF
[ "$(rc json)" -eq 0 ] && "$py" "$tmp/check_json.py" "$tmp/json.out" >"$tmp/py.out" 2>&1
r=$?
sed 's/^\([^#]\)/# \1/' "$tmp/py.out"
ok $r "--json is valid JSON listing at least one device"
[ $r -eq 0 ] || show json

# 5: the JSON's device 0:0 is the one clinfo (or else our own -l) calls 0:0
if command -v clinfo >/dev/null 2>&1; then
  name0=$(clinfo -l 2>/dev/null | sed -n 's/^ [`+]-- Device #0: //p' | head -n 1)
  from="clinfo -l"
else
  name0=$(sed -n 's/^ [`+]-- Device 0:0: \(.*\) \[[A-Z|]*\]$/\1/p' "$tmp/list.out")
  from="clcnn-devices -l (clinfo is not installed)"
fi
[ -n "$name0" ] && "$py" "$tmp/check_json.py" "$tmp/json.out" "$name0" >"$tmp/py.out" 2>&1
r=$?
ok $r "--json names device 0:0 as $from does: '$name0'"
[ $r -eq 0 ] || diag "$tmp/py.out"

# 6-7: -d 0:0, also with --json
run d00 -d 0:0
[ "$(rc d00)" -eq 0 ] && grep -q 'Device 0:0' "$tmp/d00.out" && ! grep -q 'Device 0:1' "$tmp/d00.out"
r=$?
ok $r "-d 0:0 shows device 0:0 only"
[ $r -eq 0 ] || show d00
run d00json -d 0:0 --json
[ "$(rc d00json)" -eq 0 ] && "$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["platforms"]) == 1 and [x["index"] for x in d["platforms"][0]["devices"]] == ["0:0"], d
' "$tmp/d00json.out"
r=$?
ok $r "-d 0:0 --json holds device 0:0 only"
[ $r -eq 0 ] || show d00json

# 8-10: bad device indices and an unknown flag: exit 2 with a message on stderr
run d99 -d 9:9
[ "$(rc d99)" -eq 2 ] && grep -q '9:9' "$tmp/d99.err"
r=$?
ok $r "-d 9:9 exits 2 with a message"
[ $r -eq 0 ] || show d99
run dgarbage -d garbage
[ "$(rc dgarbage)" -eq 2 ] && grep -q 'garbage' "$tmp/dgarbage.err"
r=$?
ok $r "-d garbage exits 2 with a message"
[ $r -eq 0 ] || show dgarbage
run bogus --no-such-flag
[ "$(rc bogus)" -eq 2 ] && grep -q 'no-such-flag' "$tmp/bogus.err" && grep -qi 'usage' "$tmp/bogus.err"
r=$?
ok $r "an unknown flag exits 2 with a message and the usage"
[ $r -eq 0 ] || show bogus

# 11-12: --help and --version
run help --help
[ "$(rc help)" -eq 0 ] && grep -q -- '--check' "$tmp/help.out"
r=$?
ok $r "--help prints the usage and exits 0"
[ $r -eq 0 ] || show help
run version --version
[ "$(rc version)" -eq 0 ] && grep -q '[0-9][0-9]*\.[0-9][0-9]*\.[0-9]' "$tmp/version.out"
r=$?
ok $r "--version prints a version and exits 0"
[ $r -eq 0 ] || show version

# 13-15: no OpenCL platform at all: "0 platforms", exit 1, no crash
OCL_ICD_VENDORS=/nonexistent-dir-clcnn
export OCL_ICD_VENDORS
run none
[ "$(rc none)" -eq 1 ] && grep -q '^0 platforms' "$tmp/none.out" && grep -q 'pocl-opencl-icd' "$tmp/none.err"
r=$?
ok $r "no platform: prints '0 platforms' and a hint, exits 1"
[ $r -eq 0 ] || show none
run nonejson --json
[ "$(rc nonejson)" -eq 1 ] && "$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d == {"platforms": []}, d
' "$tmp/nonejson.out" && grep -q '0 platforms' "$tmp/nonejson.err"
r=$?
ok $r "no platform, --json: valid JSON with no platform, exits 1"
[ $r -eq 0 ] || show nonejson
run nonecheck --check
[ "$(rc nonecheck)" -eq 1 ] && grep -q '0 platforms' "$tmp/nonecheck.err"
r=$?
ok $r "no platform, --check: exits 1 with a message"
[ $r -eq 0 ] || show nonecheck
unset OCL_ICD_VENDORS

# 16: the library builds its kernels and computes correct gradients on device 0:0
run check --check -d 0:0
diag "$tmp/check.out"
[ "$(rc check)" -eq 0 ] && grep -q '^0:0 .* PASS (' "$tmp/check.out"
r=$?
ok $r "--check -d 0:0 passes"
[ $r -eq 0 ] || { echo "# status $(rc check); stderr:"; diag "$tmp/check.err"; }

# --tune: bad values exit 2 naming the flag; a real tune of one set records or keeps, says which
for bad in "tsets0:--tune --tune-sets 0:--tune-sets" "tsetsx:--tune --tune-sets 3x:--tune-sets" \
  "tsetsbig:--tune --tune-sets 1001:--tune-sets" "tshape2:--tune --tune-shape 64x64:--tune-shape" \
  "tshape0:--tune --tune-shape 0x64x64:--tune-shape" "tshapebig:--tune --tune-shape 64x64x1000000:--tune-shape" \
  "tshapejunk:--tune --tune-shape 64x64x64x:--tune-shape" "tnotune:--tune-sets 2:go with --tune" \
  "tmodes:--tune --check:choose one"; do
  name=${bad%%:*}
  rest=${bad#*:}
  args=${rest%%:*}
  want=${rest#*:}
  # shellcheck disable=SC2086 # the arguments are meant to split
  run "$name" $args
  [ "$(rc "$name")" -eq 2 ] && grep -q -- "$want" "$tmp/$name.err"
  r=$?
  ok $r "clcnn-devices $args exits 2 with a message naming '$want'"
  [ $r -eq 0 ] || show "$name"
done
CLCNN_CACHE_DIR="$tmp/tune-cache" run tune -d 0:0 --tune --tune-sets 1 --tune-shape 512x512x512
[ "$(rc tune)" -eq 0 ] && grep -Eq '^0:0 .*512 x 512 x 512: CLBlast [0-9.]+ GFLOP/s before, [0-9.]+ after' "$tmp/tune.out"
r=$?
ok $r "--tune -d 0:0 --tune-sets 1: one line with the figures before and after"
[ $r -eq 0 ] || show tune
if grep -q 'recorded' "$tmp/tune.out"; then
  grep -q '^xgemm S ' "$tmp"/tune-cache/gemm-*.txt
else
  ! grep -q '^xgemm ' "$tmp"/tune-cache/gemm-*.txt 2>/dev/null
fi
r=$?
ok $r "--tune: the GEMM file holds the parameters exactly when the line says recorded"
[ $r -eq 0 ] || show tune

# no run crashed (a signal makes a status of 128 or more)
crashed=""
for f in "$tmp"/*.rc; do
  [ "$(cat "$f")" -lt 128 ] || crashed="$crashed $(basename "$f" .rc)"
done
[ -z "$crashed" ]
ok $? "no run crashed${crashed:+ (crashed:$crashed)}"

echo "1..$n"
[ "$failed" -eq 0 ]
