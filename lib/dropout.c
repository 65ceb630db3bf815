/* lib/dropout.c - inverted dropout (torch.nn.Dropout). Kernels in cl/dropout.cl. */
#include <math.h>

#include "layer.h"

clcnn_status dropout_setup(clcnn_ctx *ctx, struct layer *l, int max_batch) {
  if (!(l->p >= 0 && l->p < 1))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "layer %d dropout: p %g must be in [0, 1)",
                l->index, l->p);
  l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
  return cbuf_alloc(ctx, &l->t, (size_t)max_batch * layer_in_size(l) * ctx->esz, "dropout mask");
}

clcnn_status dropout_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n) {
  size_t cnt = (size_t)n * layer_in_size(l);
  cl_kernel k;
  clcnn_status st;
  if (!l->training) {
    if ((st = clcnn__kernel(ctx, KP_DROPOUT, "dropout_copy", &k)) ||
        (st = clcnn__args(ctx, k, "dropout_copy", MEM_ARG(&l->y), MEM_ARG(x), INT_ARG(cnt), (size_t)0)))
      return st;
    return clcnn__run(ctx, k, "dropout_copy", cnt, &x, 1, (cbuf *[]){&l->y}, 1);
  }
  cl_ulong key = l->key;
  if ((st = clcnn__kernel(ctx, KP_DROPOUT, "dropout_forward", &k)) ||
      (st = clcnn__args(ctx, k, "dropout_forward", MEM_ARG(&l->y), MEM_ARG(&l->t), MEM_ARG(x),
                        INT_ARG(cnt), REAL_ARG(ctx, l->p), REAL_ARG(ctx, 1.0 / (1.0 - l->p)),
                        sizeof key, (void *)&key, (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "dropout_forward", cnt, &x, 1, (cbuf *[]){&l->y, &l->t}, 2);
}

clcnn_status dropout_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n) {
  size_t cnt = (size_t)n * layer_in_size(l);
  cl_kernel k;
  clcnn_status st;
  (void)x;
  if (!l->training) {
    if ((st = clcnn__kernel(ctx, KP_DROPOUT, "dropout_copy", &k)) ||
        (st = clcnn__args(ctx, k, "dropout_copy", MEM_ARG(&l->dx), MEM_ARG(dy), INT_ARG(cnt), (size_t)0)))
      return st;
    return clcnn__run(ctx, k, "dropout_copy", cnt, &dy, 1, (cbuf *[]){&l->dx}, 1);
  }
  if ((st = clcnn__kernel(ctx, KP_DROPOUT, "dropout_backward", &k)) ||
      (st = clcnn__args(ctx, k, "dropout_backward", MEM_ARG(&l->dx), MEM_ARG(dy), MEM_ARG(&l->t),
                        INT_ARG(cnt), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "dropout_backward", cnt, (cbuf *[]){dy, &l->t}, 2, (cbuf *[]){&l->dx}, 1);
}
