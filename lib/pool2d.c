/* lib/pool2d.c - max, average and global average pooling. Kernels in cl/pool2d.cl. */
#include <limits.h>

#include "layer.h"

clcnn_status pool2d_setup(clcnn_ctx *ctx, struct layer *l, int max_batch) {
  l->out_c = l->in_c;
  if (l->type == CLCNN_LAYER_GLOBAL_AVGPOOL) {
    l->out_h = l->out_w = 1;
    return CLCNN_SUCCESS;
  }
  clcnn_pool2d_params *p = &l->pool;
  const char *what = l->type == CLCNN_LAYER_MAXPOOL2D ? "maxpool2d" : "avgpool2d";
  if (p->kh <= 0 || p->kw <= 0 || p->stride_h < 0 || p->stride_w < 0 || p->pad_h < 0 ||
      p->pad_w < 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "layer %d %s: kernel %dx%d, stride %dx%d, pad %dx%d: kernel must be positive, "
                "stride and pad non-negative",
                l->index, what, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w);
  if (!p->stride_h) p->stride_h = p->kh;
  if (!p->stride_w) p->stride_w = p->kw;
  if (2 * p->pad_h > p->kh || 2 * p->pad_w > p->kw)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "layer %d %s: pad %dx%d must be at most half the kernel %dx%d (as in PyTorch)",
                l->index, what, p->pad_h, p->pad_w, p->kh, p->kw);
  if (p->kh > l->in_h + 2 * p->pad_h || p->kw > l->in_w + 2 * p->pad_w)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "layer %d %s: kernel %dx%d is larger than the padded input %dx%d (input %dx%d, "
                "pad %dx%d)",
                l->index, what, p->kh, p->kw, l->in_h + 2 * p->pad_h, l->in_w + 2 * p->pad_w,
                l->in_h, l->in_w, p->pad_h, p->pad_w);
  l->out_h = (l->in_h + 2 * p->pad_h - p->kh) / p->stride_h + 1;
  l->out_w = (l->in_w + 2 * p->pad_w - p->kw) / p->stride_w + 1;
  if (l->type == CLCNN_LAYER_MAXPOOL2D)
    return cbuf_alloc(ctx, &l->idx, (size_t)max_batch * layer_out_size(l) * sizeof(cl_int),
                      "maxpool2d indices");
  return CLCNN_SUCCESS;
}

#define POOL_ARGS(l, n)                                                                       \
  INT_ARG(n), INT_ARG((l)->in_c), INT_ARG((l)->in_h), INT_ARG((l)->in_w), INT_ARG((l)->pool.kh), \
      INT_ARG((l)->pool.kw), INT_ARG((l)->pool.stride_h), INT_ARG((l)->pool.stride_w),        \
      INT_ARG((l)->pool.pad_h), INT_ARG((l)->pool.pad_w), INT_ARG((l)->out_h),                \
      INT_ARG((l)->out_w)

/* The 2x2 kernels': rows of output, the input and output plane sizes. */
#define POOL2X2_ARGS(l, n)                                                                          \
  INT_ARG((size_t)(n) * (l)->out_c * (l)->out_h), INT_ARG((l)->in_h), INT_ARG((l)->in_w), INT_ARG((l)->out_h), \
      INT_ARG((l)->out_w)

clcnn_status pool2d_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n) {
  size_t ny = (size_t)n * layer_out_size(l);
  cl_kernel k;
  clcnn_status st;
  switch (l->type) {
    case CLCNN_LAYER_MAXPOOL2D:
      if (pool_is_2x2(&l->pool)) {
        if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2x2_forward", &k)) ||
            (st = clcnn__args(ctx, k, "maxpool2x2_forward", MEM_ARG(&l->y), MEM_ARG(&l->idx), MEM_ARG(x),
                              POOL2X2_ARGS(l, n), (size_t)0)))
          return st;
        return clcnn__run(ctx, k, "maxpool2x2_forward", (size_t)n * l->out_c * l->out_h, &x, 1,
                          (cbuf *[]){&l->y, &l->idx}, 2);
      }
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2d_forward", &k)) ||
          (st = clcnn__args(ctx, k, "maxpool2d_forward", MEM_ARG(&l->y), MEM_ARG(&l->idx),
                            MEM_ARG(x), POOL_ARGS(l, n), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "maxpool2d_forward", (size_t)n * l->in_c * l->out_h, &x, 1,
                        (cbuf *[]){&l->y, &l->idx}, 2);
    case CLCNN_LAYER_AVGPOOL2D:
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "avgpool2d_forward", &k)) ||
          (st = clcnn__args(ctx, k, "avgpool2d_forward", MEM_ARG(&l->y), MEM_ARG(x),
                            POOL_ARGS(l, n), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "avgpool2d_forward", ny, &x, 1, (cbuf *[]){&l->y}, 1);
    default: /* global */
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "global_avgpool_forward", &k)) ||
          (st = clcnn__args(ctx, k, "global_avgpool_forward", MEM_ARG(&l->y), MEM_ARG(x),
                            INT_ARG(ny), INT_ARG(l->in_h * l->in_w), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "global_avgpool_forward", ny, &x, 1, (cbuf *[]){&l->y}, 1);
  }
}

clcnn_status pool2d_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n) {
  size_t nx = (size_t)n * layer_in_size(l);
  cl_kernel k;
  clcnn_status st;
  (void)x;
  switch (l->type) {
    case CLCNN_LAYER_MAXPOOL2D:
      if (pool_is_2x2(&l->pool)) {
        if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2x2_backward", &k)) ||
            (st = clcnn__args(ctx, k, "maxpool2x2_backward", MEM_ARG(&l->dx), MEM_ARG(dy), MEM_ARG(&l->idx),
                              POOL2X2_ARGS(l, n), (size_t)0)))
          return st;
        return clcnn__run(ctx, k, "maxpool2x2_backward", (size_t)n * l->out_c * l->out_h, (cbuf *[]){dy, &l->idx}, 2,
                          (cbuf *[]){&l->dx}, 1);
      }
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2d_backward", &k)) ||
          (st = clcnn__args(ctx, k, "maxpool2d_backward", MEM_ARG(&l->dx), MEM_ARG(dy),
                            MEM_ARG(&l->idx), POOL_ARGS(l, n), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "maxpool2d_backward", (size_t)n * l->in_c * l->in_h, (cbuf *[]){dy, &l->idx}, 2,
                        (cbuf *[]){&l->dx}, 1);
    case CLCNN_LAYER_AVGPOOL2D:
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "avgpool2d_backward", &k)) ||
          (st = clcnn__args(ctx, k, "avgpool2d_backward", MEM_ARG(&l->dx), MEM_ARG(dy),
                            POOL_ARGS(l, n), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "avgpool2d_backward", nx, &dy, 1, (cbuf *[]){&l->dx}, 1);
    default:
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "global_avgpool_backward", &k)) ||
          (st = clcnn__args(ctx, k, "global_avgpool_backward", MEM_ARG(&l->dx), MEM_ARG(dy),
                            INT_ARG((size_t)n * l->in_c), INT_ARG(l->in_h * l->in_w), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "global_avgpool_backward", nx, &dy, 1, (cbuf *[]){&l->dx}, 1);
  }
}
