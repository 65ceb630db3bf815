/* lib/batchnorm.c - batch normalisation (torch.nn.BatchNorm1d/2d). Kernels in cl/batchnorm.cl. */
#include <math.h>

#include "layer.h"

clcnn_status batchnorm_setup(clcnn_ctx *ctx, struct layer *l, int max_batch) {
  if (!(l->eps > 0) || !isfinite(l->eps) || !(l->momentum > 0 && l->momentum <= 1))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "layer %d batchnorm: eps %g must be positive and momentum %g in (0, 1]", l->index,
                l->eps, l->momentum);
  l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
  l->has_w = l->has_b = 1;
  size_t c = l->in_c, e = ctx->esz;
  clcnn_status st;
  if ((st = cbuf_alloc(ctx, &l->w, c * e, "batchnorm weight")) ||
      (st = cbuf_alloc(ctx, &l->b, c * e, "batchnorm bias")) ||
      (st = cbuf_alloc(ctx, &l->dw, c * e, "batchnorm weight grad")) ||
      (st = cbuf_alloc(ctx, &l->db, c * e, "batchnorm bias grad")) ||
      (st = cbuf_alloc(ctx, &l->rmean, c * e, "batchnorm running_mean")) ||
      (st = cbuf_alloc(ctx, &l->rvar, c * e, "batchnorm running_var")) ||
      (st = cbuf_alloc(ctx, &l->mean, c * e, "batchnorm mean")) ||
      (st = cbuf_alloc(ctx, &l->invstd, c * e, "batchnorm invstd")) ||
      (st = cbuf_alloc(ctx, &l->t, 2 * c * e, "batchnorm sums")))
    return st;
  (void)max_batch;
  return CLCNN_SUCCESS;
}

/* Samples per work-item of the partial sums: enough work-items over the channels (about 256)
 * for every core or compute unit, each summing whole planes. */
static int bn_chunk(int n, int c) {
  int parts = 256 / c;
  if (parts < 1) parts = 1;
  if (parts > n) parts = n;
  return (n + parts - 1) / parts;
}

clcnn_status batchnorm_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n) {
  int c = l->in_c, p = l->in_h * l->in_w;
  cl_kernel k;
  clcnn_status st;
  if (l->training) {
    int chunk = bn_chunk(n, c), items = (n + chunk - 1) / chunk * c;
    cbuf *part = clcnn__scratch(ctx);
    if ((st = clcnn__reserve(ctx, part, 2 * (size_t)items * ctx->esz, "batchnorm partial sums")) ||
        (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_part_sum", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_part_sum", MEM_ARG(part), MEM_ARG(x), INT_ARG(n), INT_ARG(c), INT_ARG(p),
                          INT_ARG(chunk), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_part_sum", items, &x, 1, &part, 1)) ||
        (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_part_var", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_part_var", MEM_ARG(part), MEM_ARG(x), INT_ARG(n), INT_ARG(c), INT_ARG(p),
                          INT_ARG(chunk), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_part_var", items, (cbuf *[]){x, part}, 2, &part, 1)) ||
        (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_stats", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_stats", MEM_ARG(&l->mean), MEM_ARG(&l->invstd),
                          MEM_ARG(&l->rmean), MEM_ARG(&l->rvar), MEM_ARG(part), INT_ARG(n), INT_ARG(c),
                          INT_ARG(p), INT_ARG(chunk), REAL_ARG(ctx, l->eps), REAL_ARG(ctx, l->momentum), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_stats", c, &part, 1,
                         (cbuf *[]){&l->mean, &l->invstd, &l->rmean, &l->rvar}, 4)))
      return st;
    l->nbt++;
  } else {
    if ((st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_eval_invstd", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_eval_invstd", MEM_ARG(&l->invstd), MEM_ARG(&l->rvar),
                          INT_ARG(c), REAL_ARG(ctx, l->eps), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_eval_invstd", c, (cbuf *[]){&l->rvar}, 1,
                         (cbuf *[]){&l->invstd}, 1)))
      return st;
  }
  cbuf *mean = l->training ? &l->mean : &l->rmean;
  if ((st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_forward", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_forward", MEM_ARG(&l->y), MEM_ARG(x), MEM_ARG(mean),
                        MEM_ARG(&l->invstd), MEM_ARG(&l->w), MEM_ARG(&l->b), INT_ARG(n), INT_ARG(c),
                        INT_ARG(p), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_forward", (size_t)n * c,
                       (cbuf *[]){x, mean, &l->invstd, &l->w, &l->b}, 5, (cbuf *[]){&l->y}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

clcnn_status batchnorm_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n) {
  int c = l->in_c, p = l->in_h * l->in_w;
  cbuf *mean = l->training ? &l->mean : &l->rmean;
  cl_kernel k;
  clcnn_status st;
  int chunk = bn_chunk(n, c), items = (n + chunk - 1) / chunk * c;
  cbuf *part = clcnn__scratch(ctx);
  if ((st = clcnn__reserve(ctx, part, 2 * (size_t)items * ctx->esz, "batchnorm partial sums")) ||
      (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_part_grad", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_part_grad", MEM_ARG(part), MEM_ARG(dy), MEM_ARG(x), MEM_ARG(mean),
                        MEM_ARG(&l->invstd), INT_ARG(n), INT_ARG(c), INT_ARG(p), INT_ARG(chunk), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_part_grad", items, (cbuf *[]){dy, x, mean, &l->invstd}, 4, &part, 1)) ||
      (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_param_grad", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_param_grad", MEM_ARG(&l->dw), MEM_ARG(&l->db), MEM_ARG(&l->t),
                        MEM_ARG(part), INT_ARG(n), INT_ARG(c), INT_ARG(chunk), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_param_grad", c, &part, 1, (cbuf *[]){&l->dw, &l->db, &l->t}, 3)))
    return st;
  if (l->no_dx) return CLCNN_SUCCESS;
  if ((st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_backward", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_backward", MEM_ARG(&l->dx), MEM_ARG(dy), MEM_ARG(x),
                        MEM_ARG(mean), MEM_ARG(&l->invstd), MEM_ARG(&l->w), MEM_ARG(&l->t),
                        INT_ARG(n), INT_ARG(c), INT_ARG(p), INT_ARG(l->training), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_backward", (size_t)n * c,
                       (cbuf *[]){dy, x, mean, &l->invstd, &l->w, &l->t}, 6, (cbuf *[]){&l->dx}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

void batchnorm_need(clcnn_ctx *ctx, const struct layer *l, int n, struct scratch_need *need) {
  int chunk = bn_chunk(n, l->in_c);
  clcnn__need(&need->part, 2 * ((size_t)(n + chunk - 1) / chunk * l->in_c) * ctx->esz);
}
