/* cl/gemm.cl - clcnn's own GEMM, shaped for CPU devices (PoCL): C = alpha op(A) op(B) + beta C,
 * row-major. op(A) is M x K, op(B) is K x N.
 *
 * Both operands are first packed into contiguous panels (zero-padded at the edges):
 *   Ap: M/4 panels, each K rows of 4 values   (Ap[p][k][r] = op(A)[4p + r][k])
 *   Bp: N/64 panels, each K rows of 64 values (Bp[p][k][c] = op(B)[k][64p + c])
 * so that each work-item of gemm_tile streams two contiguous panels and keeps a 4 x 64 tile
 * of C in sixteen 16-wide vector registers, with no barriers and no local memory: the shape
 * that PoCL turns into straight-line vector code. */

#define GEMM_TM 4
#define GEMM_TN 64
typedef real real16_t __attribute__((ext_vector_type(16)));

/* One work-item per (panel, k): the panel's 4 values of row k. Global size mp/4 * k. */
__kernel void gemm_pack_a(__global real *ap, __global const real *a, int m, int k, int lda, int aoff,
                          int ta, int mp) {
  int i = get_global_id(0);
  if (i >= mp / GEMM_TM * k) return;
  int p = i / k, kk = i % k;
  __global real *dst = ap + (size_t)i * GEMM_TM;
  for (int r = 0; r < GEMM_TM; r++) {
    int row = p * GEMM_TM + r;
    dst[r] = row >= m ? 0 : ta ? a[aoff + (size_t)kk * lda + row] : a[aoff + (size_t)row * lda + kk];
  }
}

/* Not transposed: one work-item per (panel, k), the panel's 64 values of row k (contiguous).
 * Transposed (op(B)[k][j] = B[j][k]): one work-item per (panel, 16 rows of k), reading 16
 * contiguous values of each of the 64 rows of B: a blocked transpose. Global size
 * np/64 * k, or np/64 * ceil(k/16). */
__kernel void gemm_pack_b(__global real *bp, __global const real *b, int n, int k, int ldb, int boff,
                          int tb, int np) {
  int i = get_global_id(0);
  if (!tb) {
    if (i >= np / GEMM_TN * k) return;
    int p = i / k, kk = i % k, col0 = p * GEMM_TN;
    __global real *dst = bp + (size_t)i * GEMM_TN;
    __global const real *src = b + boff + (size_t)kk * ldb + col0;
    if (col0 + GEMM_TN <= n) {
      for (int c = 0; c < GEMM_TN; c += 16) vstore16(vload16(0, src + c), 0, dst + c);
    } else {
      for (int c = 0; c < GEMM_TN; c++) dst[c] = col0 + c < n ? src[c] : 0;
    }
    return;
  }
  int kb = (k + 15) / 16;
  if (i >= np / GEMM_TN * kb) return;
  int p = i / kb, k0 = (i % kb) * 16, kn = min(16, k - k0), col0 = p * GEMM_TN;
  __global real *dst = bp + ((size_t)p * k + k0) * GEMM_TN;
  for (int c = 0; c < GEMM_TN; c++) {
    int col = col0 + c;
    __global const real *src = b + boff + (size_t)col * ldb + k0;
    for (int t = 0; t < kn; t++) dst[t * GEMM_TN + c] = col < n ? src[t] : 0;
  }
}

/* Write one 16-wide row segment of the tile: C = alpha acc + beta C, inside the matrix only. */
static void gemm_store(__global real *c, int ldc, int row, int col, int m, int n, real16_t acc,
                       real alpha, real beta) {
  if (row >= m || col >= n) return;
  __global real *dst = c + (size_t)row * ldc + col;
  if (col + 16 <= n) {
    real16_t v = alpha * acc;
    if (beta != 0) v += beta * vload16(0, dst);
    vstore16(v, 0, dst);
    return;
  }
  real t[16];
  vstore16(acc, 0, t);
  for (int l = 0; l < 16 && col + l < n; l++) dst[l] = alpha * t[l] + (beta != 0 ? beta * dst[l] : 0);
}

/* One k of the 4 x 64 tile: rows a0..a3 of A times the 64 values of B at b. */
#define GEMM_FMA_STEP(a0, a1, a2, a3, b)                                                     \
  {                                                                                         \
    real16_t b0 = vload16(0, b), b1 = vload16(1, b), b2 = vload16(2, b), b3 = vload16(3, b); \
    c00 = fma((real16_t)(a0), b0, c00), c01 = fma((real16_t)(a0), b1, c01);                 \
    c02 = fma((real16_t)(a0), b2, c02), c03 = fma((real16_t)(a0), b3, c03);                 \
    c10 = fma((real16_t)(a1), b0, c10), c11 = fma((real16_t)(a1), b1, c11);                 \
    c12 = fma((real16_t)(a1), b2, c12), c13 = fma((real16_t)(a1), b3, c13);                 \
    c20 = fma((real16_t)(a2), b0, c20), c21 = fma((real16_t)(a2), b1, c21);                 \
    c22 = fma((real16_t)(a2), b2, c22), c23 = fma((real16_t)(a2), b3, c23);                 \
    c30 = fma((real16_t)(a3), b0, c30), c31 = fma((real16_t)(a3), b1, c31);                 \
    c32 = fma((real16_t)(a3), b2, c32), c33 = fma((real16_t)(a3), b3, c33);                 \
  }
#define GEMM_TILE_ZERO                                                                      \
  real16_t c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;          \
  real16_t c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;

/* The 4 x 64 tile at panels (i, j) over k in [k0, k1): the inner loop of the packed variants. */
#define GEMM_TILE_BODY(i, j, k, k0, k1)                                                     \
  __global const real *a = ap + ((size_t)(i) * (k) + (k0)) * GEMM_TM;                       \
  __global const real *b = bp + ((size_t)(j) * kbs + koff + (k0)) * GEMM_TN;                \
  GEMM_TILE_ZERO                                                                            \
  for (int kk = (k0); kk < (k1); kk++) {                                                    \
    GEMM_FMA_STEP(a[0], a[1], a[2], a[3], b)                                                \
    a += GEMM_TM;                                                                           \
    b += GEMM_TN;                                                                           \
  }

/* The split-K variants' ending: tile (i, j) into part s, a padded mp x np matrix. */
#define GEMM_STORE_PART(part, s, i, j, mp, np)                                              \
  {                                                                                         \
    __global real *p = (part) + (size_t)(s) * (mp) * (np) + (size_t)((i) * GEMM_TM) * (np) + (j) * GEMM_TN; \
    vstore16(c00, 0, p), vstore16(c01, 1, p), vstore16(c02, 2, p), vstore16(c03, 3, p);     \
    p += (np);                                                                              \
    vstore16(c10, 0, p), vstore16(c11, 1, p), vstore16(c12, 2, p), vstore16(c13, 3, p);     \
    p += (np);                                                                              \
    vstore16(c20, 0, p), vstore16(c21, 1, p), vstore16(c22, 2, p), vstore16(c23, 3, p);     \
    p += (np);                                                                              \
    vstore16(c30, 0, p), vstore16(c31, 1, p), vstore16(c32, 2, p), vstore16(c33, 3, p);     \
  }

/* One work-item: rows 4i..4i+3, columns 64j..64j+63 of C. Global size (N/64, M/4). B's panels
 * hold kbs rows each, of which this product uses k from row koff (kbs = k, koff = 0 when B was
 * packed for it; a conv's im2col packs all groups' rows once). */
__kernel void gemm_tile(__global real *c, __global const real *ap, __global const real *bp, int m,
                        int n, int k, int ldc, int coff, real alpha, real beta, int kbs, int koff) {
  int j = get_global_id(0), i = get_global_id(1);
  if (j * GEMM_TN >= n || i * GEMM_TM >= m) return;
  GEMM_TILE_BODY(i, j, k, 0, k)
  __global real *cc = c + coff;
  int r = i * GEMM_TM, col = j * GEMM_TN;
  gemm_store(cc, ldc, r + 0, col, m, n, c00, alpha, beta), gemm_store(cc, ldc, r + 0, col + 16, m, n, c01, alpha, beta);
  gemm_store(cc, ldc, r + 0, col + 32, m, n, c02, alpha, beta), gemm_store(cc, ldc, r + 0, col + 48, m, n, c03, alpha, beta);
  gemm_store(cc, ldc, r + 1, col, m, n, c10, alpha, beta), gemm_store(cc, ldc, r + 1, col + 16, m, n, c11, alpha, beta);
  gemm_store(cc, ldc, r + 1, col + 32, m, n, c12, alpha, beta), gemm_store(cc, ldc, r + 1, col + 48, m, n, c13, alpha, beta);
  gemm_store(cc, ldc, r + 2, col, m, n, c20, alpha, beta), gemm_store(cc, ldc, r + 2, col + 16, m, n, c21, alpha, beta);
  gemm_store(cc, ldc, r + 2, col + 32, m, n, c22, alpha, beta), gemm_store(cc, ldc, r + 2, col + 48, m, n, c23, alpha, beta);
  gemm_store(cc, ldc, r + 3, col, m, n, c30, alpha, beta), gemm_store(cc, ldc, r + 3, col + 16, m, n, c31, alpha, beta);
  gemm_store(cc, ldc, r + 3, col + 32, m, n, c32, alpha, beta), gemm_store(cc, ldc, r + 3, col + 48, m, n, c33, alpha, beta);
}

/* Split K, for products with few tiles and a long K (a weight gradient sums over the whole
 * batch): work-item (j, i, s) sums k in [s*kc, (s+1)*kc) into part[s], a padded mp x np
 * matrix; gemm_reduce then adds the parts in a fixed order. Global size (N/64, M/4, splits). */
__kernel void gemm_tile_splitk(__global real *part, __global const real *ap, __global const real *bp,
                               int mp, int np, int k, int kc, int kbs, int koff) {
  int j = get_global_id(0), i = get_global_id(1), s = get_global_id(2);
  int k0 = s * kc, k1 = min(k, k0 + kc);
  GEMM_TILE_BODY(i, j, k, k0, k1)
  GEMM_STORE_PART(part, s, i, j, mp, np)
}

/* C = alpha * sum of the parts + beta * C, one work-item per row of C. */
__kernel void gemm_reduce(__global real *c, __global const real *part, int m, int n, int ldc, int coff,
                          int splits, int mp, int np, real alpha, real beta, int ct) {
  int r = get_global_id(0);
  if (r >= m) return;
  for (int col = 0; col < n; col++) {
    real s = 0;
    for (int t = 0; t < splits; t++) s += part[(size_t)t * mp * np + (size_t)r * np + col];
    /* ct: C is stored transposed (a weight gradient computed as its transpose) */
    __global real *dst = c + coff + (ct ? (size_t)col * ldc + r : (size_t)r * ldc + col);
    *dst = alpha * s + (beta != 0 ? beta * *dst : 0);
  }
}

/* Split K with A read in place from a conv's packed im2col: op(A) = rows roff..roff+m-1 of colp
 * (colp[(j/64)*ckk + r][j%64]), K = N*P columns; B packed as for gemm_tile. For a weight
 * gradient computed as dW^T = col . dY^T, without copying col into A's panels. Rows past m
 * repeat row m-1 and are never stored (gemm_reduce reads m rows). Global size (N/64, M/4,
 * splits). */
__kernel void gemm_tile_splitk_colp(__global real *part, __global const real *colp, __global const real *bp,
                                    int m, int mp, int np, int k, int kc, int ckk, int roff) {
  int j = get_global_id(0), i = get_global_id(1), s = get_global_id(2);
  int k0 = s * kc, k1 = min(k, k0 + kc);
  int r0 = min(i * GEMM_TM + 0, m - 1), r1 = min(i * GEMM_TM + 1, m - 1);
  int r2 = min(i * GEMM_TM + 2, m - 1), r3 = min(i * GEMM_TM + 3, m - 1);
  __global const real *b = bp + ((size_t)j * k + k0) * GEMM_TN;
  GEMM_TILE_ZERO
  for (int kb = k0; kb < k1;) {
    /* the 64-column panel of colp holding column kb: four row pointers into it */
    int kend = min(k1, (kb / 64 + 1) * 64), off = kb % 64;
    __global const real *panel = colp + (size_t)(kb / 64) * ckk * 64 + off;
    __global const real *a0p = panel + (size_t)(roff + r0) * 64, *a1p = panel + (size_t)(roff + r1) * 64;
    __global const real *a2p = panel + (size_t)(roff + r2) * 64, *a3p = panel + (size_t)(roff + r3) * 64;
    for (int kk = 0; kk < kend - kb; kk++) {
      GEMM_FMA_STEP(a0p[kk], a1p[kk], a2p[kk], a3p[kk], b)
      b += GEMM_TN;
    }
    kb = kend;
  }
  GEMM_STORE_PART(part, s, i, j, mp, np)
}
