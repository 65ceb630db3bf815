#!/bin/sh
# tests/test_readme.sh - README's C example, built against the installed library with
# pkg-config exactly as the README says, and run. The library is installed into a temporary
# DESTDIR; the example is taken from README.md, so the README cannot drift from what works.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, MAKE, CC.
. "$abs_top_srcdir/tests/lib.sh"

tap_tmpdir readme

sed -n '/<!-- example:begin -->/,/<!-- example:end -->/p' "$abs_top_srcdir/README.md" |
  grep -v '^<!--' | grep -v '^```' > "$tmp/example.c"
if grep -q 'clcnn_net_backward' "$tmp/example.c"; then ok "README holds the example program"; else notok "README holds the example program"; fi

if ${MAKE:-make} -C "$abs_top_builddir" install DESTDIR="$tmp/root" > "$tmp/install.log" 2>&1; then
  ok "make install DESTDIR=..."
else
  notok "make install DESTDIR=..."; sed 's/^/# /' "$tmp/install.log" | tail -20
fi
pc=$(find "$tmp/root" -name clcnn.pc | head -n 1)
if [ -n "$pc" ]; then ok "clcnn.pc is installed"; else notok "clcnn.pc is installed"; fi
pcdir=$(dirname "$pc")
flags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root" pkg-config --cflags --libs clcnn)
case $flags in *-lclcnn*) ok "pkg-config --cflags --libs clcnn: $flags" ;; *) notok "pkg-config gives -lclcnn ($flags)" ;; esac
hdr=$(find "$tmp/root" -name clcnn.h | head -n 1)
if [ -n "$hdr" ]; then ok "clcnn.h is installed"; else notok "clcnn.h is installed"; fi
ncl=$(find "$tmp/root" -path '*share/clcnn/*.cl' | wc -l)
if [ "$ncl" -ge 5 ]; then ok "the .cl sources are installed ($ncl files)"; else notok "the .cl sources are installed ($ncl)"; fi

# CLCNN_TEST_CFLAGS: the sanitizer flags in a --enable-sanitizers build (the library needs them).
# shellcheck disable=SC2086
if ${CC:-cc} -Werror -Wall $CLCNN_TEST_CFLAGS "$tmp/example.c" $flags -o "$tmp/example" 2> "$tmp/cc.log"; then
  ok "the example compiles with the installed header and library"
else
  notok "the example compiles"; sed 's/^/# /' "$tmp/cc.log"
fi
libdir=$(dirname "$(find "$tmp/root" -name 'libclcnn.so' | head -n 1)")
# The kernels are not where the library was configured to find them (that is under DESTDIR):
# the run must use the embedded copy.
if out=$(env -u CLCNN_KERNEL_PATH LD_LIBRARY_PATH="$libdir" "$tmp/example" 2>&1); then
  loss=$(echo "$out" | sed -n 's/^loss: //p')
  if [ -n "$loss" ] && awk -v l="$loss" 'BEGIN { exit !(l > 0 && l < 100) }'; then
    ok "the example runs and prints a loss ($loss)"
  else
    notok "the example prints a finite loss"; echo "$out" | sed 's/^/# /'
  fi
else
  notok "the example runs"; echo "$out" | sed 's/^/# /'
fi

# the graph example: builders wiring a residual block, two losses with their targets
sed -n '/<!-- graph-example:begin -->/,/<!-- graph-example:end -->/p' "$abs_top_srcdir/README.md" |
  grep -v '^<!--' | grep -v '^```' > "$tmp/graph.c"
# shellcheck disable=SC2086
if grep -q 'clcnn_net_backward_losses' "$tmp/graph.c" &&
  ${CC:-cc} -Werror -Wall $CLCNN_TEST_CFLAGS "$tmp/graph.c" $flags -o "$tmp/graph" 2> "$tmp/cc.log"; then
  ok "the graph example compiles with the installed header and library"
else
  notok "the graph example compiles"; sed 's/^/# /' "$tmp/cc.log"
fi
if out=$(env -u CLCNN_KERNEL_PATH LD_LIBRARY_PATH="$libdir" "$tmp/graph" 2>&1); then
  l1=$(echo "$out" | sed -n 's/^xent \([0-9.]*\) + 0.1 \* mse \([0-9.]*\)$/\1 \2/p')
  loss=$(echo "$out" | sed -n 's/^loss: //p')
  if [ -n "$l1" ] && [ -n "$loss" ] && awk -v a="${l1% *}" -v b="${l1#* }" -v t="$loss" \
    'BEGIN { d = a + 0.1 * b - t; if (d < 0) d = -d; exit !(a > 0 && b > 0 && d < 1e-5 * t) }'; then
    ok "the graph example runs: the total is the weighted sum of its losses ($out)"
  else
    notok "the graph example's total loss"; echo "$out" | sed 's/^/# /'
  fi
else
  notok "the graph example runs"; echo "$out" | sed 's/^/# /'
fi
# the installed GAN example builds as its comment says (cc gan.c $(pkg-config --cflags --libs clcnn))
gan_c=$(find "$tmp/root" -path '*share/clcnn/examples/gan.c' | head -n 1)
# shellcheck disable=SC2086
if [ -n "$gan_c" ] && ${CC:-cc} -Werror -Wall $CLCNN_TEST_CFLAGS "$gan_c" $flags -o "$tmp/gan" -lm 2> "$tmp/cc.log"; then
  ok "the installed examples/gan.c compiles with the installed header and library"
else
  notok "the installed examples/gan.c compiles ($gan_c)"; sed 's/^/# /' "$tmp/cc.log"
fi

echo "1..$n"
exit $fail
