/* lib/gemm.c - matrix products on the event chain: clcnn's own kernels (cl/gemm.cl, shaped for
 * CPU devices) or CLBlast.
 *
 * CLBlast's routines take a queue and return an event but take no wait list, so the
 * dependencies of a GEMM are honoured by the in-order queue the context uses; its event then
 * joins the chain like any other command's, and the commands after it wait on it. */
#include <clblast_c.h>
#include <limits.h>

#include "internal.h"

/* Make sure a scratch buffer holds BYTES; it only ever grows, so once the largest GEMM of a
 * training step has run, no step allocates again. */
clcnn_status clcnn__reserve(clcnn_ctx *ctx, cbuf *b, size_t bytes, const char *what) {
  if (b->mem && b->bytes >= bytes) return CLCNN_SUCCESS;
  /* OpenCL keeps a released buffer alive until the commands that use it are done, and the new
   * one shares no memory with them: no wait is needed. */
  cbuf_free(b);
  return cbuf_alloc(ctx, b, bytes, what);
}

/* A split-K product of depth k asked for in `splits` chunks runs in chunks of ceil(k/splits)
 * rows: this many of them. */
static size_t splitk_parts(size_t k, size_t splits) {
  size_t kc = (k + splits - 1) / splits;
  return (k + kc - 1) / kc;
}

/* clcnn's GEMM on mp x np padded tiles of depth k: the chunks of K it splits into (1: none).
 * Few tiles and a long K: split K so that both cores (or every compute unit) have work. */
static size_t own_splits(size_t mp, size_t np, size_t k) {
  size_t tiles = np / 64 * (mp / 4);
  if (tiles >= 32 || k < 2048) return 1;
  size_t splits = 64 / tiles;
  if (splits > k / 512) splits = k / 512;
  return splits < 2 ? 1 : splitk_parts(k, splits);
}

/* The weight gradient from im2col panels (clcnn__gemm_wgrad_colp): its chunks of K. */
static size_t colp_splits(size_t mp, size_t np, size_t k) {
  size_t tiles = np / 64 * (mp / 4), splits = k >= 2048 ? 64 / tiles : 1;
  if (splits > k / 512) splits = k / 512;
  if (splits < 1) splits = 1;
  return splitk_parts(k, splits);
}

/* CLBlast's split-K (clblast_splitk): the parts it sums, 0 when the product is not split. */
static size_t clblast_parts(size_t m, size_t n, size_t k) {
  if (m * n > 16384 || k < 8192) return 0;
  size_t S = k / 2048 < 64 ? k / 2048 : 64, kc = k / S;
  return S + (k - S * kc > 0);
}

clcnn_status clcnn__reduce(clcnn_ctx *ctx, cbuf *c, size_t coff, size_t ldc, cbuf *part, size_t m, size_t n,
                           size_t splits, size_t mp, size_t np, double alpha, double beta, int ct) {
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_GEMM, "gemm_reduce", &k)) ||
      (st = clcnn__args(ctx, k, "gemm_reduce", MEM_ARG(c), MEM_ARG(part), INT_ARG(m), INT_ARG(n), INT_ARG(ldc),
                        INT_ARG(coff), INT_ARG(splits), INT_ARG(mp), INT_ARG(np), REAL_ARG(ctx, alpha),
                        REAL_ARG(ctx, beta), INT_ARG(ct), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "gemm_reduce", m, &part, 1, &c, 1);
}

/* C = alpha * op(A) op(B) + beta * C from packed panels (ctx->pack_a, bp) in `splits` chunks of K:
 * gemm_tile_splitk writes each chunk's sums to ctx->part and gemm_reduce adds them in a fixed
 * order (the result does not depend on timing). ct: C is stored transposed. */
static clcnn_status splitk_reduce(clcnn_ctx *ctx, cbuf *bp, size_t m, size_t n, size_t mp, size_t np,
                                  size_t k, size_t kbs, size_t koff, size_t splits, cbuf *c, size_t coff,
                                  size_t ldc, double alpha, double beta, int ct) {
  size_t kc = (k + splits - 1) / splits;
  splits = splitk_parts(k, splits);
  cl_kernel kp;
  clcnn_status st;
  cbuf *r[2] = {&ctx->pack_a, bp};
  size_t gws[3] = {np / 64, mp / 4, splits};
  if ((st = clcnn__reserve(ctx, &ctx->part, splits * mp * np * ctx->esz, "gemm split-K parts")) ||
      (st = clcnn__kernel(ctx, KP_GEMM, "gemm_tile_splitk", &kp)) ||
      (st = clcnn__args(ctx, kp, "gemm_tile_splitk", MEM_ARG(&ctx->part), MEM_ARG(&ctx->pack_a), MEM_ARG(bp),
                        INT_ARG(mp), INT_ARG(np), INT_ARG(k), INT_ARG(kc), INT_ARG(kbs), INT_ARG(koff), (size_t)0)) ||
      (st = clcnn__run3(ctx, kp, "gemm_tile_splitk", gws, r, 2, (cbuf *[]){&ctx->part}, 1)))
    return st;
  return clcnn__reduce(ctx, c, coff, ldc, &ctx->part, m, n, splits, mp, np, alpha, beta, ct);
}

/* With bp NULL, B is packed here from b; else bp holds B's panels already, kbs rows each, this
 * product's K rows starting at koff. */
static clcnn_status gemm_own(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n,
                             size_t k, double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b,
                             size_t boff, size_t ldb, double beta, cbuf *c, size_t coff, size_t ldc,
                             cbuf *bp, size_t kbs, size_t koff) {
  size_t mp = (m + 3) / 4 * 4, np = (n + 63) / 64 * 64;
  if (mp * k > INT_MAX || np * k > INT_MAX || aoff > INT_MAX || boff > INT_MAX || coff > INT_MAX ||
      lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "gemm(%s): %zu x %zu x %zu is too large", what, m, n, k);
  clcnn_status st;
  cl_kernel kp;
  if ((st = clcnn__reserve(ctx, &ctx->pack_a, mp * k * ctx->esz, "gemm packed A")) ||
      (!bp && (st = clcnn__reserve(ctx, &ctx->pack_b, np * k * ctx->esz, "gemm packed B"))))
    return st;
  if ((st = clcnn__kernel(ctx, KP_GEMM, "gemm_pack_a", &kp)) ||
      (st = clcnn__args(ctx, kp, "gemm_pack_a", MEM_ARG(&ctx->pack_a), MEM_ARG(a), INT_ARG(m), INT_ARG(k),
                        INT_ARG(lda), INT_ARG(aoff), INT_ARG(ta), INT_ARG(mp), (size_t)0)) ||
      (st = clcnn__run(ctx, kp, "gemm_pack_a", mp / 4 * k, &a, 1, (cbuf *[]){&ctx->pack_a}, 1)))
    return st;
  if (!bp) {
    bp = &ctx->pack_b, kbs = k, koff = 0;
    if ((st = clcnn__kernel(ctx, KP_GEMM, "gemm_pack_b", &kp)) ||
        (st = clcnn__args(ctx, kp, "gemm_pack_b", MEM_ARG(bp), MEM_ARG(b), INT_ARG(n), INT_ARG(k), INT_ARG(ldb),
                          INT_ARG(boff), INT_ARG(tb), INT_ARG(np), (size_t)0)) ||
        (st = clcnn__run(ctx, kp, "gemm_pack_b", np / 64 * (tb ? (k + 15) / 16 : k), &b, 1, &bp, 1)))
      return st;
  }
  if ((st = clcnn__kernel(ctx, KP_GEMM, "gemm_tile", &kp)) ||
      (st = clcnn__args(ctx, kp, "gemm_tile", MEM_ARG(c), MEM_ARG(&ctx->pack_a), MEM_ARG(bp), INT_ARG(m),
                        INT_ARG(n), INT_ARG(k), INT_ARG(ldc), INT_ARG(coff), REAL_ARG(ctx, alpha),
                        REAL_ARG(ctx, beta), INT_ARG(kbs), INT_ARG(koff), (size_t)0)))
    return st;
  cbuf *r[2] = {&ctx->pack_a, bp};
  size_t splits = own_splits(mp, np, k);
  if (splits < 2) return clcnn__run2(ctx, kp, "gemm_tile", np / 64, mp / 4, r, 2, &c, 1);
  /* the parts are added in a fixed order (the result does not depend on timing) */
  return splitk_reduce(ctx, bp, m, n, mp, np, k, kbs, koff, splits, c, coff, ldc, alpha, beta, 0);
}

/* A small C and a long K (a weight gradient summed over a whole batch) leave most of a GPU
 * idle in one GEMM: CLBlast computes the sums of S chunks of K as one strided batch into
 * ctx->part, and gemm_reduce adds them in a fixed order. */
static clcnn_status clblast_splitk(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m,
                                   size_t n, size_t k, double alpha, cbuf *a, size_t aoff,
                                   size_t lda, cbuf *b, size_t boff, size_t ldb, double beta,
                                   cbuf *c, size_t coff, size_t ldc) {
  size_t S = k / 2048 < 64 ? k / 2048 : 64, kc = k / S, rem = k - S * kc, parts = clblast_parts(m, n, k);
  size_t as = ta ? kc * lda : kc, bs = tb ? kc : kc * ldb;
  CLBlastTranspose tA = ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tB = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  clcnn_status st = clcnn__reserve(ctx, &ctx->part, parts * m * n * ctx->esz, "gemm split-K parts");
  if (st) return st;
  cbuf *r[2] = {a, b};
  for (int piece = 0; piece < 2; piece++) {
    if (piece && !rem) break;
    cl_event ev = NULL;
    CLBlastStatusCode s;
    size_t batch = piece ? 1 : S, kk = piece ? rem : kc;
    size_t ao = aoff + (piece ? S * as : 0), bo = boff + (piece ? S * bs : 0), co = piece ? S * m * n : 0;
    if (ctx->prec == CLCNN_DOUBLE)
      s = CLBlastDgemmStridedBatched(CLBlastLayoutRowMajor, tA, tB, m, n, kk, 1.0, a->mem, ao, lda, as, b->mem, bo,
                                     ldb, bs, 0.0, ctx->part.mem, co, n, m * n, batch, &ctx->queue, &ev);
    else
      s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, tA, tB, m, n, kk, 1.0f, a->mem, ao, lda, as, b->mem, bo,
                                     ldb, bs, 0.0f, ctx->part.mem, co, n, m * n, batch, &ctx->queue, &ev);
    if (s != CLBlastSuccess)
      return FAIL(ctx, s > -1000 ? s : CLCNN_ERR_BLAS, "CLBlast%cgemmStridedBatched(%s, m=%zu n=%zu k=%zu x %zu): %s (%d)",
                  ctx->prec == CLCNN_DOUBLE ? 'D' : 'S', what, m, n, kk, batch, clcnn_status_name(s), (int)s);
    clcnn__commit(ctx, ev, what, r, 2, (cbuf *[]){&ctx->part}, 1);
  }
  return clcnn__reduce(ctx, c, coff, ldc, &ctx->part, m, n, parts, m, n, alpha, beta, 0);
}

clcnn_status clcnn__gemm_own(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n, size_t k,
                             double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b, size_t boff, size_t ldb,
                             double beta, cbuf *c, size_t coff, size_t ldc) {
  return gemm_own(ctx, what, ta, tb, m, n, k, alpha, a, aoff, lda, b, boff, ldb, beta, c, coff, ldc, NULL, 0, 0);
}

clcnn_status clcnn__gemm_clblast(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n, size_t k,
                                 double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b, size_t boff, size_t ldb,
                                 double beta, cbuf *c, size_t coff, size_t ldc) {
  cl_event ev = NULL;
  CLBlastStatusCode s;
  CLBlastTranspose tA = ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tB = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  if (clblast_parts(m, n, k))
    return clblast_splitk(ctx, what, ta, tb, m, n, k, alpha, a, aoff, lda, b, boff, ldb, beta, c, coff, ldc);
  if (ctx->prec == CLCNN_DOUBLE)
    s = CLBlastDgemm(CLBlastLayoutRowMajor, tA, tB, m, n, k, alpha, a->mem, aoff, lda, b->mem,
                     boff, ldb, beta, c->mem, coff, ldc, &ctx->queue, &ev);
  else
    s = CLBlastSgemm(CLBlastLayoutRowMajor, tA, tB, m, n, k, (float)alpha, a->mem, aoff, lda,
                     b->mem, boff, ldb, (float)beta, c->mem, coff, ldc, &ctx->queue, &ev);
  if (s != CLBlastSuccess)
    return FAIL(ctx, s > -1000 ? s : CLCNN_ERR_BLAS,
                "CLBlast%cgemm(%s, m=%zu n=%zu k=%zu): %s (%d)", ctx->prec == CLCNN_DOUBLE ? 'D' : 'S',
                what, m, n, k, clcnn_status_name(s), (int)s);
  /* Record it on the chain: reads a and b, writes c. */
  cbuf *r[2] = {a, b};
  clcnn__commit(ctx, ev, what, r, 2, &c, 1);
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__gemm(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n,
                         size_t k, double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b,
                         size_t boff, size_t ldb, double beta, cbuf *c, size_t coff, size_t ldc) {
  if (!m || !n) return CLCNN_SUCCESS;
  /* An empty sum would be C = beta * C; CLBlast refuses k = 0 and nothing in clcnn asks for it. */
  if (!k) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "gemm(%s): k = 0", what);
  int own;
  clcnn_status st = clcnn__gemm_pick(ctx, ta, tb, m, n, k, &own);
  if (st) return st;
  return (own ? clcnn__gemm_own : clcnn__gemm_clblast)(ctx, what, ta, tb, m, n, k, alpha, a, aoff, lda, b, boff,
                                                       ldb, beta, c, coff, ldc);
}

clcnn_status clcnn__gemm_packed_b(clcnn_ctx *ctx, const char *what, int ta, size_t m, size_t n, size_t k,
                                  double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *bp, size_t kbs,
                                  size_t koff, double beta, cbuf *c, size_t coff, size_t ldc) {
  if (!m || !n || !k) return CLCNN_SUCCESS;
  return gemm_own(ctx, what, ta, 0, m, n, k, alpha, a, aoff, lda, NULL, 0, 0, beta, c, coff, ldc, bp, kbs, koff);
}


clcnn_status clcnn__gemm_wgrad_colp(clcnn_ctx *ctx, cbuf *colp, size_t ckk, size_t roff, size_t cgkk, size_t k,
                                    cbuf *dy, size_t dyoff, size_t ocg, cbuf *dw, size_t dwoff) {
  size_t mp = (cgkk + 3) / 4 * 4, np = (ocg + 63) / 64 * 64, splits = colp_splits(mp, np, k);
  if (mp * k > INT_MAX || np * k > INT_MAX || dyoff > INT_MAX || dwoff > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "conv2d weight grad: %zu x %zu x %zu is too large", cgkk, ocg, k);
  cl_kernel kp;
  clcnn_status st;
  size_t kc = (k + splits - 1) / splits;
  if ((st = clcnn__reserve(ctx, &ctx->pack_b, np * k * ctx->esz, "gemm packed B")) ||
      (st = clcnn__reserve(ctx, &ctx->part, splits * mp * np * ctx->esz, "gemm split-K parts")))
    return st;
  /* dW^T (CgKK, OCg) = col (CgKK, K) . dY^T (K, OCg): the long operand streams as A, read in
   * place from the im2col panels; dY^T is packed as B */
  if ((st = clcnn__kernel(ctx, KP_GEMM, "gemm_pack_b", &kp)) ||
      (st = clcnn__args(ctx, kp, "gemm_pack_b", MEM_ARG(&ctx->pack_b), MEM_ARG(dy), INT_ARG(ocg), INT_ARG(k),
                        INT_ARG(k), INT_ARG(dyoff), INT_ARG(1), INT_ARG(np), (size_t)0)) ||
      (st = clcnn__run(ctx, kp, "gemm_pack_b", np / 64 * ((k + 15) / 16), &dy, 1, (cbuf *[]){&ctx->pack_b}, 1)))
    return st;
  size_t gws[3] = {np / 64, mp / 4, splits};
  if ((st = clcnn__kernel(ctx, KP_GEMM, "gemm_tile_splitk_colp", &kp)) ||
      (st = clcnn__args(ctx, kp, "gemm_tile_splitk_colp", MEM_ARG(&ctx->part), MEM_ARG(colp), MEM_ARG(&ctx->pack_b),
                        INT_ARG(cgkk), INT_ARG(mp), INT_ARG(np), INT_ARG(k), INT_ARG(kc), INT_ARG(ckk), INT_ARG(roff),
                        (size_t)0)) ||
      (st = clcnn__run3(ctx, kp, "gemm_tile_splitk_colp", gws, (cbuf *[]){colp, &ctx->pack_b}, 2,
                        (cbuf *[]){&ctx->part}, 1)))
    return st;
  return clcnn__reduce(ctx, dw, dwoff, cgkk, &ctx->part, cgkk, ocg, splits, mp, np, 1.0, 1.0, 1);
}

cbuf *clcnn__scratch(clcnn_ctx *ctx) { return &ctx->part; }

/* ---- what the products above reserve, for clcnn_net_memory_estimate ---- */
static void own_need(clcnn_ctx *ctx, size_t m, size_t n, size_t k, int b_packed, struct scratch_need *need) {
  size_t mp = (m + 3) / 4 * 4, np = (n + 63) / 64 * 64, splits = own_splits(mp, np, k);
  clcnn__need(&need->pack_a, mp * k * ctx->esz);
  if (!b_packed) clcnn__need(&need->pack_b, np * k * ctx->esz);
  if (splits >= 2) clcnn__need(&need->part, splits * mp * np * ctx->esz);
}

void clcnn__gemm_need(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, struct scratch_need *need) {
  if (!m || !n || !k) return;
  int own = clcnn__gemm_known(ctx, ta, tb, m, n, k);
  if (own != 0) own_need(ctx, m, n, k, 0, need);
  if (own != 1) clcnn__need(&need->part, clblast_parts(m, n, k) * m * n * ctx->esz);
  if (own < 0) clcnn__need(&need->transient, (m * k + k * n + m * n) * ctx->esz); /* measured first */
}

void clcnn__gemm_packed_b_need(clcnn_ctx *ctx, size_t m, size_t n, size_t k, struct scratch_need *need) {
  if (m && n && k) own_need(ctx, m, n, k, 1, need);
}

void clcnn__gemm_wgrad_colp_need(clcnn_ctx *ctx, size_t cgkk, size_t k, size_t ocg, struct scratch_need *need) {
  size_t mp = (cgkk + 3) / 4 * 4, np = (ocg + 63) / 64 * 64;
  clcnn__need(&need->pack_b, np * k * ctx->esz);
  clcnn__need(&need->part, colp_splits(mp, np, k) * mp * np * ctx->esz);
}
