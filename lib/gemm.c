/* lib/gemm.c - matrix products through CLBlast, on the event chain.
 *
 * CLBlast's routines take a queue and return an event but take no wait list, so the
 * dependencies of a GEMM are honoured by the in-order queue the context uses; its event then
 * joins the chain like any other command's, and the commands after it wait on it. */
#include <clblast_c.h>

#include "internal.h"

clcnn_status clcnn__gemm(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n,
                         size_t k, double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b,
                         size_t boff, size_t ldb, double beta, cbuf *c, size_t coff, size_t ldc) {
  if (!m || !n) return CLCNN_SUCCESS;
  cl_event ev = NULL;
  CLBlastStatusCode s;
  CLBlastTranspose tA = ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tB = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  if (!k) {
    /* An empty sum: C = beta * C. CLBlast refuses k = 0; nothing in clcnn asks for it. */
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "gemm(%s): k = 0", what);
  }
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
  clcnn__commit(ctx, ev, r, 2, &c, 1);
  return CLCNN_SUCCESS;
}
