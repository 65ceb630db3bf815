#!/bin/sh
# tests/mutate.sh - mutation testing: put one realistic bug at a time into a scratch copy of
# the sources and check that the tests named for it fail.
#
#   sh tests/mutate.sh [-l LIST] [-k] [ID...]        (or: make mutate [MUTANTS='ID ...'])
#
# LIST (default tests/mutants.txt) has one mutant a line, fields separated by TABs:
#   ID  FILE  FIND  REPLACE  TESTS
# FIND must occur exactly once in FILE (so an edit of the code that moves it makes the mutant
# fail loudly instead of silently mutating something else); \t and \n in FIND/REPLACE stand for
# a tab and a newline. TESTS are the `make check` tests that must catch it (a subset of the
# suite, for speed: a mutant they catch fails `make check` too). Kernel mutants need no
# recompilation of their own (the tests read cl/ through CLCNN_KERNEL_PATH), host mutants are
# rebuilt incrementally. The scratch tree is built once, under $TMPDIR, and removed unless -k.
# Exit status: 0 when every mutant was caught, 1 when one survived, 2 on a broken list or build.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
list=$here/tests/mutants.txt
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    -l) list=$2; shift 2 ;;
    -k) keep=1; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "mutate.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ -r "$list" ] || { echo "mutate.sh: cannot read the mutant list $list" >&2; exit 2; }
python3 -c 'import sys' 2>/dev/null || { echo "mutate.sh: python3 is needed" >&2; exit 2; }

# Check the whole list before building anything: fields, files, FIND occurring once.
python3 - "$list" "$here" "$@" <<'EOF' || exit 2
import sys, os
lst, root, only = sys.argv[1], sys.argv[2], set(sys.argv[3:])
seen, bad = set(), 0
for no, line in enumerate(open(lst, encoding="utf-8"), 1):
    if not line.strip() or line.startswith("#"):
        continue
    f = line.rstrip("\n").split("\t")
    if len(f) != 5 or not all(x.strip() for x in (f[0], f[1], f[2], f[4])):
        print(f"{lst}:{no}: expected 5 TAB-separated fields (ID FILE FIND REPLACE TESTS)"); bad = 1; continue
    mid, path, find = f[0], f[1], f[2].replace("\\t", "\t").replace("\\n", "\n")
    if mid in seen:
        print(f"{lst}:{no}: mutant {mid} listed twice"); bad = 1
    seen.add(mid)
    if not os.path.isfile(os.path.join(root, path)):
        print(f"{lst}:{no}: {mid}: no file {path}"); bad = 1; continue
    n = open(os.path.join(root, path), encoding="utf-8").read().count(find)
    if n != 1:
        print(f"{lst}:{no}: {mid}: '{f[2]}' occurs {n} times in {path}, not once"); bad = 1
for mid in only - seen:
    print(f"{lst}: no mutant {mid}"); bad = 1
sys.exit(bad)
EOF

scratch=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-mutate.XXXXXX") || exit 2
cleanup() { [ "$keep" = 1 ] && echo "scratch tree kept: $scratch" || rm -rf "$scratch"; }
trap cleanup EXIT
trap 'exit 2' INT TERM

echo "== building a scratch copy in $scratch"
if git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z | xargs -0 tar cf -) | (cd "$scratch" && tar xf -) || exit 2
  (cd "$scratch" && autoreconf -fi >/dev/null 2>&1) || { echo "mutate.sh: autoreconf failed" >&2; exit 2; }
else # a release tarball: configure is there already
  (cd "$here" && tar cf - --exclude='*.o' --exclude='*.lo' --exclude=.libs --exclude=.deps .) |
    (cd "$scratch" && tar xf -) || exit 2
  (cd "$scratch" && { [ ! -f Makefile ] || make distclean >/dev/null 2>&1; }) || true
fi
jobs=$(nproc 2>/dev/null || echo 2)
(cd "$scratch" && ./configure -q >configure.out 2>&1 && make -s -j"$jobs" >build.out 2>&1 &&
  make -s -j"$jobs" check TESTS= >build.out 2>&1) ||
  { echo "mutate.sh: the unmutated scratch tree does not build (see $scratch)" >&2; keep=1; exit 2; }
# a private program cache, so mutated kernels never meet the user's cache
CLCNN_CACHE_DIR=$scratch/.cache; export CLCNN_CACHE_DIR

# The list, parsed once by Python (a shell `read` would merge the empty fields of a mutant that
# deletes its FIND): one "ID<TAB>TESTS" line per mutant to run.
plan=$scratch/plan.txt
python3 - "$list" "$@" >"$plan" <<'EOF2' || exit 2
import sys
lst, only = sys.argv[1], set(sys.argv[2:])
for line in open(lst, encoding="utf-8"):
    if not line.strip() or line.startswith("#"):
        continue
    f = line.rstrip("\n").split("\t")
    if not only or f[0] in only:
        print(f[0] + "\t" + f[4])
EOF2

# Unmutated, every test the plan names must pass: a test that fails anyway catches nothing.
base=$(cut -f2 "$plan" | tr ' ' '\n' | sort -u | tr '\n' ' ')
echo "== the unmutated tree: $base"
(cd "$scratch" && make -s -j"$jobs" check TESTS="$base" >baseline.log 2>&1) ||
  { echo "mutate.sh: the unmutated tree fails its tests (see $scratch/baseline.log)" >&2; keep=1; exit 2; }

caught=0 survived=0 survivors=""
while IFS="$(printf '\t')" read -r id tests; do
  file=$(python3 - "$list" "$id" "$scratch" <<'EOF2'
import sys
lst, mid, root = sys.argv[1:4]
for line in open(lst, encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    if f[0] == mid and not line.startswith("#"):
        find, rep = (a.replace("\\t", "\t").replace("\\n", "\n") for a in f[2:4])
        p = root + "/" + f[1]
        s = open(p, encoding="utf-8").read()
        open(p + ".orig", "w", encoding="utf-8").write(s)
        open(p, "w", encoding="utf-8").write(s.replace(find, rep, 1))
        print(f[1])
        break
EOF2
  ) || exit 2
  [ -n "$file" ] || { echo "mutate.sh: mutant $id vanished from the list" >&2; exit 2; }
  start=$(date +%s)
  if (cd "$scratch" && timeout 600 make -s -j"$jobs" check TESTS="$tests" >"mutant-$id.log" 2>&1); then
    verdict=SURVIVED; survived=$((survived + 1)); survivors="$survivors $id"
  else
    verdict=caught; caught=$((caught + 1))
  fi
  printf '%-36s %-9s %4ss  %s: %s\n' "$id" "$verdict" $(($(date +%s) - start)) "$file" "$tests"
  # restore the original with a fresh time stamp, so that make rebuilds what the mutant touched
  mv "$scratch/$file.orig" "$scratch/$file" && touch "$scratch/$file"
done <"$plan"
echo "mutants: $caught caught, $survived survived${survivors:+ (}${survivors# }${survivors:+)}"
[ "$survived" -eq 0 ]
