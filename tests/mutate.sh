#!/bin/sh
# tests/mutate.sh - put realistic bugs into the kernels, one at a time, and check that the tests
# catch each: a mutant is a sed expression on one file of a scratch copy of cl/, which the tests
# load through $CLCNN_KERNEL_PATH (no rebuild; the program cache is keyed by the source's hash,
# so a mutated file is compiled afresh). Prints one line per mutant, "caught" or "SURVIVED", and
# exits non-zero when any survived or did not apply.
#
#   tests/mutate.sh [-k] [BUILDDIR] [NAME...]
#
# BUILDDIR holds the built tests (default: the current directory); NAMEs pick mutants by name.
# -k keeps the scratch directory. Run from anywhere; the sources are found beside this script.
# The tests it runs must be built first: make check TESTS= (or make tests/test_layers ...).
set -u
keep=0
[ "${1:-}" = -k ] && keep=1 && shift
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "${1:-.}" && pwd) || exit 2
[ $# -gt 0 ] && shift
for t in test_layers test_net test_bn_dropout; do
  [ -x "$builddir/tests/$t" ] || { echo "mutate.sh: $builddir/tests/$t is not built" >&2; exit 2; }
done
scratch=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-mutate.XXXXXX") || exit 2
[ $keep = 1 ] || trap 'rm -rf "$scratch"' EXIT
# one program cache for the whole run: the unmutated programs are built once
CLCNN_CACHE_DIR=$scratch/cache
export CLCNN_CACHE_DIR
caught=0 survived=0 failed=0

# mutant NAME FILE SED TESTS DESCRIPTION
# TESTS: test programs to run; clblast:PROG runs PROG with CLCNN_GEMM=clblast. The mutant is
# caught when any of them fails.
mutant() {
  name=$1 file=$2 expr=$3 tests=$4 what=$5
  if [ -n "$want" ]; then
    case " $want " in *" $name "*) ;; *) return ;; esac
  fi
  rm -rf "$scratch/cl" && cp -R "$srcdir/cl" "$scratch/cl" || exit 2
  sed -i -e "$expr" "$scratch/cl/$file"
  if cmp -s "$srcdir/cl/$file" "$scratch/cl/$file"; then
    echo "NOT APPLIED  $name ($file): the expression matched nothing"
    failed=$((failed + 1))
    return
  fi
  verdict=SURVIVED
  for t in $tests; do
    gemm=clcnn
    case $t in clblast:*) gemm=clblast t=${t#clblast:} ;; esac
    if ! CLCNN_KERNEL_PATH=$scratch/cl CLCNN_GEMM=$gemm timeout 300 "$builddir/tests/$t" >"$scratch/$name.log" 2>&1; then
      verdict="caught by $t"
      [ $gemm = clblast ] && verdict="caught by $t (CLBlast)"
      break
    fi
  done
  case $verdict in
    caught*) caught=$((caught + 1)) ;;
    *) survived=$((survived + 1)) ;;
  esac
  printf '%-40s %s: %s\n' "$verdict" "$name" "$what"
}
want="$*"

L=test_layers N=test_net B=test_bn_dropout
# ---- pool2d.cl ----
mutant pool2x2-tie pool2d.cl 's/t = (b > best) | (b != b)/t = (b >= best) | (b != b)/' "$L" \
  "2x2 max pooling: a tie goes to the later element"
mutant pool2x2-oddw pool2d.cl 's/if (w \& 1) d0\[w - 1\] = d1\[w - 1\] = 0;/if (w \& 2) d0[w - 1] = d1[w - 1] = 0;/' "$L" \
  "2x2 backward: the column past the last window not zeroed for odd W"
mutant pool2x2-oddh pool2d.cl 's/if ((h \& 1) \&\& oy == oh - 1)/if ((h \& 1) \&\& oy == oh)/' "$L" \
  "2x2 backward: off by one, the row past the last window not zeroed for odd H"
mutant pool2x2-row pool2d.cl '/maxpool2x2_forward/,/^}/s/\*r1 = r0 + w;/*r1 = r0 + w - 1;/' "$L" \
  "2x2 forward: the window's second row read one element early"
mutant pool-general-tie pool2d.cl 's/if (where < 0 || v > best || isnan(v))/if (where < 0 || v >= best || isnan(v))/' "$L" \
  "general max pooling: a tie goes to the later element"
mutant pool-nonoverlap-stride pool2d.cl 's/int ox = ix \/ kw;/int ox = ix \/ kh;/' "$L" \
  "non-overlapping backward: the window column found with the kernel's height"
mutant avgpool-divisor pool2d.cl 's/int y1 = min(y0 + kh, h + ph)/int y1 = min(y0 + kh, h)/' "$L" \
  "average pooling: padding not counted in the divisor"
# ---- conv2d.cl ----
mutant fused-pool-bias conv2d.cl '/conv2d_unpack_pool/,/^}/s/real add = has_bias ? bias\[o\] : 0;/real add = 0;/' "$L" \
  "fused conv-relu-pool: the bias forgotten"
mutant fused-pool-nobias conv2d.cl '/conv2d_unpack_pool/,/^}/s/real add = has_bias ? bias\[o\] : 0;/real add = bias[o];/' "$L" \
  "fused conv-relu-pool: the bias read when there is none"
mutant fused-pool-row conv2d.cl 's/c = src\[ow + 2 \* px\] + add/c = src[ow + 2 * px - 1] + add/' "$L" \
  "fused conv-relu-pool: the window's second row read one element early"
mutant fused-pool-tie conv2d.cl '/conv2d_unpack_pool/,/^}/s/t = bb > best,/t = bb >= best,/' "$L" \
  "fused conv-relu-pool: a tie goes to the later element"
mutant fused-pool-mask conv2d.cl 's/real g = y_in\[px\] > 0 ? g_in\[px\] : 0;/real g = g_in[px];/' "$L" \
  "fused conv-relu-pool backward: the relu's mask forgotten"
mutant fused-pool-oddw conv2d.cl 's/if (ow \& 1) d0\[ow - 1\] = d1\[ow - 1\] = 0;/if (ow \& 2) d0[ow - 1] = d1[ow - 1] = 0;/' "$L" \
  "fused conv-relu-pool backward: the column past the last window not zeroed for odd W"
mutant fused-pool-oddh conv2d.cl 's/if ((oh \& 1) \&\& py == ph - 1)/if ((oh \& 1) \&\& py == ph)/' "$L" \
  "fused conv-relu-pool backward: off by one, the row past the last window not zeroed"
mutant fused-relu-bias conv2d.cl 's/real v = src\[q\] + add;/real v = src[q];/' "$L" \
  "fused conv-relu: the bias forgotten"
mutant fused-relu-mask conv2d.cl 's/for (int q = 0; q < p; q++) dst\[q\] = yr\[q\] > 0 ? src\[q\] : 0;/for (int q = 0; q < p; q++) dst[q] = yr[q] >= 0 ? src[q] : 0;/' "$L" \
  "fused conv-relu backward: the gradient passes where the relu output is 0"
mutant im2col-packed-pad conv2d.cl 's/int off = kx \* dw - pw;/int off = kx * dw - ph;/' "$L" \
  "packed im2col: the column offset uses the height's padding"
mutant im2col-packed-edge conv2d.cl 's/xhi = min(ow, floor_div(w - 1 - off, sw) + 1)/xhi = min(ow, floor_div(w - off, sw) + 1)/' "$L" \
  "packed im2col: off by one, the column past the right edge copied instead of zero"
mutant im2col-packed-stride conv2d.cl 's/for (int q = a0; q < a1; q++) dst\[t++\] = src\[q \* sw\];/for (int q = a0; q < a1; q++) dst[t++] = src[q * sw - 1];/' "$L" \
  "packed im2col, stride > 1: the strided copy one element early"
mutant im2col-plain-pad conv2d.cl '/conv2d_im2col(/,/^}/s/int ix = kx \* dw - pw;/int ix = kx * dw - ph;/' "clblast:$L" \
  "plain im2col (CLBlast's layout): the column offset uses the height's padding"
mutant col2im-stride conv2d.cl 's/if (ty < 0 || ty % sh) continue;/if (ty < 0) continue;/' "$L" \
  "col2im: rows between strides receive gradient"
mutant wgrad-narrow-tail conv2d.cl 's/for (int jj = 0; jj < j1 - jb; jj++)/for (int jj = 0; jj < j1 - jb - 1; jj++)/' "$L" \
  "narrow weight gradient: the last column of a partial 64-block dropped"
mutant wgrad-narrow-rows conv2d.cl 's/part\[((size_t)s \* ocg + o0 + q) \* cgkk + r\] = sum;/part[((size_t)s * ocg + q) * cgkk + r] = sum;/' "$L" \
  "narrow weight gradient: outputs past the first 4 stored over the first"
mutant bias-grad-tail conv2d.cl 's/for (; j < j1; j++) acc += row\[j\];/for (; j <= j1; j++) acc += row[j];/' "$L" \
  "conv bias gradient: off by one, the next chunk's first column added"
# ---- gemm.cl ----
mutant splitk-range gemm.cl '/__kernel void gemm_tile_splitk(/,/^}/s/k1 = min(k, k0 + kc)/k1 = min(k, k0 + kc - 1)/' "$L" \
  "split-K GEMM: each chunk's last k dropped"
mutant splitk-colp-offset gemm.cl 's/off = kb % 64;/off = 0;/' "$L" \
  "split-K weight gradient from im2col panels: a chunk starting inside a panel reads from its start"
mutant splitk-reduce-stride gemm.cl 's/s += part\[(size_t)t \* mp \* np + (size_t)r \* np + col\];/s += part[(size_t)t * mp * np + (size_t)r * n + col];/' "$L" \
  "split-K reduction: rows of the parts strided by n instead of the padded np"
mutant gemm-store-tail gemm.cl 's/for (int l = 0; l < 16 \&\& col + l < n; l++)/for (int l = 0; l < 16; l++)/' "$L" \
  "GEMM tile: a partial 16-column segment written past the matrix's last column"
mutant gemm-pack-bt-k gemm.cl 's/kn = min(16, k - k0)/kn = 16/' "$L" \
  "transposed B packing: a block past K written over the next panel"
mutant gemm-tile-copy gemm.cl 's/gemm_store(cc, ldc, r + 3, col + 48, m, n, c33, alpha, beta)/gemm_store(cc, ldc, r + 3, col + 48, m, n, c23, alpha, beta)/' "$L" \
  "GEMM tile: the last row's last 16 columns stored from the row above (a copy-paste slip)"
mutant gemm-reduce-beta gemm.cl 's/\*dst = alpha \* s + (beta != 0 ? beta \* \*dst : 0);/*dst = alpha * s;/' "$L" \
  "reduction: beta ignored (a weight gradient does not accumulate)"
# ---- batchnorm.cl ----
mutant bn-sum-stride batchnorm.cl '/batchnorm_part_sum/,/^}/s/j += 16) acc += vload16/j += 8) acc += vload16/' "$B" \
  "batchnorm mean: the 16-lane loop steps 8"
mutant bn-var-center batchnorm.cl 's/real16_b d = vload16(0, xp + j) - mu;/real16_b d = vload16(0, xp + j);/' "$B" \
  "batchnorm variance: the 16-lane loop forgets to subtract the mean"
mutant bn-grad-invstd batchnorm.cl 's/a2 = fma(d, (vload16(0, xp + j) - mu) \* is, a2);/a2 = fma(d, vload16(0, xp + j) - mu, a2);/' "$B" \
  "batchnorm gradient: the 16-lane loop forgets invstd"
mutant bn-grad-chunk batchnorm.cl '/batchnorm_part_grad/,/^}/s/for (int b = s \* chunk; b < i1; b++)/for (int b = s; b < i1; b++)/' "$B" \
  "batchnorm gradient: a chunk of samples starts at sample s, not s*chunk"
mutant bn-eval-backward batchnorm.cl 's/real s1 = training ? sums\[ch\] \/ m : 0/real s1 = sums[ch] \/ m/' "$B" \
  "batchnorm backward in evaluation: the batch's mean gradient subtracted"
# ---- util.cl, activation.cl ----
mutant bias-grad-accumulate util.cl 's/db\[ch\] += s;/db[ch] = s;/' "$L" \
  "linear bias gradient overwritten instead of accumulated"
mutant leaky-backward activation.cl 's/dx\[i\] = x\[i\] > 0 ? dy\[i\] : dy\[i\] \* slope;/dx[i] = x[i] > 0 ? dy[i] : slope;/' "$L" \
  "leaky relu backward: the slope without the gradient"

echo "mutants: $caught caught, $survived survived, $failed not applied"
[ $survived = 0 ] && [ $failed = 0 ]
