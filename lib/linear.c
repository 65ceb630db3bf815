/* lib/linear.c - fully connected layer: y = x W^T + b, GEMMs through CLBlast. */
#include <limits.h>

#include "layer.h"

clcnn_status linear_setup(clcnn_ctx *ctx, struct layer *l, int max_batch) {
  if (l->out_c <= 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "layer %d linear: out_features %d must be positive",
                l->index, l->out_c);
  if (l->in_h != 1 || l->in_w != 1)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "layer %d linear: its input must be flat (features,1,1), got (%d,%d,%d): add a "
                "flatten layer before it",
                l->index, l->in_c, l->in_h, l->in_w);
  if ((size_t)l->out_c * l->in_c > INT_MAX || (size_t)l->out_c * max_batch > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "layer %d linear: %d x %d is too large", l->index, l->out_c,
                l->in_c);
  l->out_h = l->out_w = 1;
  l->has_w = 1;
  size_t wn = (size_t)l->out_c * l->in_c, e = ctx->esz;
  clcnn_status st;
  if ((st = cbuf_alloc(ctx, &l->w, wn * e, "linear weight")) ||
      (st = cbuf_alloc(ctx, &l->dw, wn * e, "linear weight grad")) ||
      (l->has_b && (st = cbuf_alloc(ctx, &l->b, l->out_c * e, "linear bias"))) ||
      (l->has_b && (st = cbuf_alloc(ctx, &l->db, l->out_c * e, "linear bias grad"))))
    return st;
  return CLCNN_SUCCESS;
}

clcnn_status linear_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n) {
  size_t in = l->in_c, out = l->out_c;
  clcnn_status st;
  /* y (n,OUT) = x (n,IN) W^T (IN,OUT) */
  if ((st = clcnn__gemm(ctx, "linear forward", 0, 1, n, out, in, 1.0, x, 0, in, &l->w, 0, in, 0.0,
                        &l->y, 0, out)))
    return st;
  if (!l->has_b) return CLCNN_SUCCESS;
  cl_kernel k;
  if ((st = clcnn__kernel(ctx, KP_UTIL, "bias_add", &k)) ||
      (st = clcnn__args(ctx, k, "bias_add", MEM_ARG(&l->y), MEM_ARG(&l->b), INT_ARG(n),
                        INT_ARG(out), INT_ARG(1), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "bias_add", n * out, (cbuf *[]){&l->b}, 1, (cbuf *[]){&l->y}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

clcnn_status linear_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n) {
  size_t in = l->in_c, out = l->out_c;
  clcnn_status st;
  cl_kernel k;
  /* db (OUT) += sum over n of dy */
  if (l->has_b &&
      ((st = clcnn__kernel(ctx, KP_UTIL, "bias_grad", &k)) ||
       (st = clcnn__args(ctx, k, "bias_grad", MEM_ARG(&l->db), MEM_ARG(dy), INT_ARG(n),
                         INT_ARG(out), INT_ARG(1), (size_t)0)) ||
       (st = clcnn__run(ctx, k, "bias_grad", out, &dy, 1, (cbuf *[]){&l->db}, 1))))
    return st;
  /* dW (OUT,IN) += dy^T (OUT,n) x (n,IN) */
  if ((st = clcnn__gemm(ctx, "linear weight grad", 1, 0, out, in, n, 1.0, dy, 0, out, x, 0, in,
                        1.0, &l->dw, 0, in)))
    return st;
  if (l->no_dx) return CLCNN_SUCCESS;
  /* dx (n,IN) = dy (n,OUT) W (OUT,IN) */
  return clcnn__gemm(ctx, "linear input grad", 0, 0, n, in, out, 1.0, dy, 0, out, &l->w, 0, in,
                     0.0, &l->dx, 0, in);
}
