/* lib/conv2d.c - 2-d convolution: im2col over the whole batch, one GEMM per group, unpack
 * with the bias fused. Kernels in cl/conv2d.cl. */
#include <limits.h>
#include <stdio.h>

#include "layer.h"

static int out_dim(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

clcnn_status conv2d_setup(clcnn_ctx *ctx, struct layer *l, int max_batch) {
  clcnn_conv2d_params *p = &l->conv;
  if (p->out_channels <= 0 || p->kh <= 0 || p->kw <= 0 || p->stride_h < 0 || p->stride_w < 0 ||
      p->pad_h < 0 || p->pad_w < 0 || p->dilation_h < 0 || p->dilation_w < 0 || p->groups < 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "layer %d conv2d: out_channels %d, kernel %dx%d, stride %dx%d, pad %dx%d, "
                "dilation %dx%d, groups %d: sizes must be positive, pads non-negative",
                l->index, p->out_channels, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h,
                p->pad_w, p->dilation_h, p->dilation_w, p->groups);
  if (!p->stride_h) p->stride_h = 1;
  if (!p->stride_w) p->stride_w = 1;
  if (!p->dilation_h) p->dilation_h = 1;
  if (!p->dilation_w) p->dilation_w = 1;
  if (!p->groups) p->groups = 1;
  if (l->in_c % p->groups || p->out_channels % p->groups)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "layer %d conv2d: groups %d must divide the input channels %d and the output "
                "channels %d",
                l->index, p->groups, l->in_c, p->out_channels);
  int ekh = p->dilation_h * (p->kh - 1) + 1, ekw = p->dilation_w * (p->kw - 1) + 1;
  if (ekh > l->in_h + 2 * p->pad_h || ekw > l->in_w + 2 * p->pad_w)
  {
    char dil[64] = "";
    if (p->dilation_h > 1 || p->dilation_w > 1) snprintf(dil, sizeof dil, " (%dx%d with dilation)", ekh, ekw);
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "layer %d conv2d: kernel %dx%d%s is larger than the padded input %dx%d (input %dx%d, "
                "pad %dx%d)",
                l->index, p->kh, p->kw, dil, l->in_h + 2 * p->pad_h, l->in_w + 2 * p->pad_w, l->in_h,
                l->in_w, p->pad_h, p->pad_w);
  }
  l->out_c = p->out_channels;
  l->out_h = out_dim(l->in_h, p->kh, p->stride_h, p->pad_h, p->dilation_h);
  l->out_w = out_dim(l->in_w, p->kw, p->stride_w, p->pad_w, p->dilation_w);
  size_t ckk = (size_t)l->in_c * p->kh * p->kw;
  size_t np = (size_t)max_batch * l->out_h * l->out_w;
  if (ckk * np > INT_MAX || (size_t)l->out_c * np > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "layer %d conv2d: %zu x %zu im2col buffer is too large",
                l->index, ckk, np);
  l->has_w = 1;
  l->has_b = p->bias != 0;
  size_t wn = (size_t)l->out_c * (l->in_c / p->groups) * p->kh * p->kw, e = ctx->esz;
  clcnn_status st;
  if ((st = cbuf_alloc(ctx, &l->w, wn * e, "conv2d weight")) ||
      (st = cbuf_alloc(ctx, &l->dw, wn * e, "conv2d weight grad")) ||
      (l->has_b && (st = cbuf_alloc(ctx, &l->b, l->out_c * e, "conv2d bias"))) ||
      (l->has_b && (st = cbuf_alloc(ctx, &l->db, l->out_c * e, "conv2d bias grad"))) ||
      (st = cbuf_alloc(ctx, &l->col, ckk * ((np + 63) / 64 * 64) * e, "conv2d im2col")) ||
      (st = cbuf_alloc(ctx, &l->dcol, ckk * np * e, "conv2d im2col grad")) ||
      (st = cbuf_alloc(ctx, &l->t, l->out_c * np * e, "conv2d gemm output")))
    return st;
  return CLCNN_SUCCESS;
}

/* The geometry arguments shared by im2col and col2im. */
#define GEOM_ARGS(l, n)                                                                   \
  INT_ARG(n), INT_ARG((l)->in_c), INT_ARG((l)->in_h), INT_ARG((l)->in_w),                 \
      INT_ARG((l)->conv.kh), INT_ARG((l)->conv.kw), INT_ARG((l)->conv.stride_h),          \
      INT_ARG((l)->conv.stride_w), INT_ARG((l)->conv.pad_h), INT_ARG((l)->conv.pad_w),    \
      INT_ARG((l)->conv.dilation_h), INT_ARG((l)->conv.dilation_w), INT_ARG((l)->out_h),  \
      INT_ARG((l)->out_w)

clcnn_status conv2d_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n) {
  const clcnn_conv2d_params *p = &l->conv;
  size_t P = (size_t)l->out_h * l->out_w, NP = n * P;
  size_t G = p->groups, cgkk = (size_t)l->in_c / G * p->kh * p->kw, ocg = l->out_c / G;
  cl_kernel k;
  clcnn_status st;
  if (!l->packed) { /* the layout follows the GEMM chosen for the forward product */
    int own;
    if ((st = clcnn__gemm_pick(ctx, 0, 0, ocg, NP, cgkk, &own))) return st;
    l->packed = own ? 1 : 2;
  }
  if (l->packed == 1) { /* im2col into the GEMM's own panels: no separate packing pass */
    size_t npanels = (NP + 63) / 64;
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_im2col_packed", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_im2col_packed", MEM_ARG(&l->col), MEM_ARG(x), GEOM_ARGS(l, n),
                          INT_ARG(npanels), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_im2col_packed", npanels * cgkk * G, &x, 1, (cbuf *[]){&l->col}, 1)))
      return st;
    for (size_t g = 0; g < G; g++)
      if ((st = clcnn__gemm_packed_b(ctx, "conv2d forward", 0, ocg, NP, cgkk, 1.0, &l->w, g * ocg * cgkk, cgkk,
                                     &l->col, cgkk * G, g * cgkk, 0.0, &l->t, g * ocg * NP, NP)))
        return st;
  } else {
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_im2col", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_im2col", MEM_ARG(&l->col), MEM_ARG(x), GEOM_ARGS(l, n), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_im2col", cgkk * G * n * l->out_h, &x, 1, (cbuf *[]){&l->col}, 1)))
      return st;
    for (size_t g = 0; g < G; g++)
      if ((st = clcnn__gemm(ctx, "conv2d forward", 0, 0, ocg, NP, cgkk, 1.0, &l->w, g * ocg * cgkk, cgkk, &l->col,
                            g * cgkk * NP, NP, 0.0, &l->t, g * ocg * NP, NP)))
        return st;
  }
  cbuf *bias = l->has_b ? &l->b : &l->t;
  if (l->fpool) { /* relu and 2x2 max pooling fused: the pooling layer's output and indices */
    struct layer *q = l->fpool;
    size_t rows = (size_t)n * q->out_c * q->out_h;
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_unpack_pool", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_unpack_pool", MEM_ARG(&q->y), MEM_ARG(&q->idx), MEM_ARG(&l->t),
                          MEM_ARG(bias), INT_ARG(rows), INT_ARG(l->out_c), INT_ARG(NP), INT_ARG(l->out_h),
                          INT_ARG(l->out_w), INT_ARG(q->out_h), INT_ARG(q->out_w), INT_ARG(l->has_b), (size_t)0)))
      return st;
    return clcnn__run(ctx, k, "conv2d_unpack_pool", rows, (cbuf *[]){&l->t, bias}, l->has_b ? 2 : 1,
                      (cbuf *[]){&q->y, &q->idx}, 2);
  }
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_unpack", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_unpack", MEM_ARG(&l->y), MEM_ARG(&l->t), MEM_ARG(bias),
                        INT_ARG(n), INT_ARG(l->out_c), INT_ARG(P), INT_ARG(l->has_b), INT_ARG(l->fuse_relu),
                        (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_unpack", (size_t)l->out_c * n, (cbuf *[]){&l->t, bias},
                       l->has_b ? 2 : 1, (cbuf *[]){&l->y}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

/* wgrad_narrow's chunks of N*P: 1024 wide, narrower until there are enough work-items. */
static size_t narrow_chunk(size_t NP, size_t cgkk) {
  size_t chunk = 1024, chunks = (NP + chunk - 1) / chunk;
  while (chunks * cgkk < 256 && chunk > 64) chunk /= 2, chunks = (NP + chunk - 1) / chunk;
  return chunk;
}

/* The bias gradient's chunks of N*P, so that every core has work. */
static size_t bias_chunk(size_t NP, size_t oc) {
  size_t chunk = 2048;
  while ((NP + chunk - 1) / chunk * oc < 64 && chunk > 256) chunk /= 2;
  return chunk;
}

/* dW[g] += dY[g] . col[g]^T for a conv with few output channels per group (CPU devices): dot
 * products of im2col rows with output-gradient rows over chunks of N*P, then a fixed-order sum
 * of the chunks (gemm_reduce). */
static clcnn_status wgrad_narrow(clcnn_ctx *ctx, struct layer *l, size_t g, size_t NP, size_t cgkk, size_t ocg) {
  size_t chunk = narrow_chunk(NP, cgkk), chunks = (NP + chunk - 1) / chunk, G = l->conv.groups;
  cl_kernel k;
  clcnn_status st;
  cbuf *part = clcnn__scratch(ctx);
  if ((st = clcnn__reserve(ctx, part, chunks * ocg * cgkk * ctx->esz, "conv2d weight grad parts")) ||
      (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_wgrad_narrow", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_wgrad_narrow", MEM_ARG(part), MEM_ARG(&l->col), MEM_ARG(&l->t), INT_ARG(ocg),
                        INT_ARG(cgkk), INT_ARG(cgkk * G), INT_ARG(g * cgkk), INT_ARG(NP), INT_ARG(g * ocg * NP),
                        INT_ARG(chunk), INT_ARG(chunks), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_wgrad_narrow", cgkk * chunks, (cbuf *[]){&l->col, &l->t}, 2, &part, 1)))
    return st;
  return clcnn__reduce(ctx, &l->dw, g * ocg * cgkk, cgkk, part, ocg, cgkk, chunks, ocg, cgkk, 1.0, 1.0, 0);
}

clcnn_status conv2d_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n) {
  const clcnn_conv2d_params *p = &l->conv;
  size_t P = (size_t)l->out_h * l->out_w, NP = n * P;
  size_t G = p->groups, cgkk = (size_t)l->in_c / G * p->kh * p->kw, ocg = l->out_c / G;
  cl_kernel k;
  clcnn_status st;
  /* dy (n,OC,P) -> t (OC, n*P), through the fused relu's mask (its output is l->y), or from the
   * fused pooling's output gradient */
  if (l->fpool) {
    struct layer *q = l->fpool;
    size_t rows = (size_t)n * q->out_c * q->out_h;
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_pack_pool", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_pack_pool", MEM_ARG(&l->t), MEM_ARG(dy), MEM_ARG(&q->y), MEM_ARG(&q->idx),
                          INT_ARG(rows), INT_ARG(l->out_c), INT_ARG(NP), INT_ARG(l->out_h), INT_ARG(l->out_w),
                          INT_ARG(q->out_h), INT_ARG(q->out_w), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_pack_pool", rows, (cbuf *[]){dy, &q->y, &q->idx}, 3, (cbuf *[]){&l->t}, 1)))
      return st;
  } else if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_pack", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_pack", MEM_ARG(&l->t), MEM_ARG(dy), MEM_ARG(&l->y), INT_ARG(n),
                        INT_ARG(l->out_c), INT_ARG(P), INT_ARG(l->fuse_relu), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_pack", (size_t)l->out_c * n, (cbuf *[]){dy, &l->y}, 2, (cbuf *[]){&l->t}, 1)))
    return st;
  /* db += the sum of each row of t, in chunks of N*P so that every core has work */
  if (l->has_b) {
    size_t oc = l->out_c, chunk = bias_chunk(NP, oc), chunks = (NP + chunk - 1) / chunk;
    cbuf *part = clcnn__scratch(ctx);
    if ((st = clcnn__reserve(ctx, part, chunks * oc * ctx->esz, "conv2d bias grad parts")) ||
        (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_bias_grad", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_bias_grad", MEM_ARG(part), MEM_ARG(&l->t), INT_ARG(oc), INT_ARG(NP),
                          INT_ARG(chunk), INT_ARG(chunks), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_bias_grad", oc * chunks, (cbuf *[]){&l->t}, 1, &part, 1)) ||
        (st = clcnn__reduce(ctx, &l->db, 0, 1, part, oc, 1, chunks, oc, 1, 1.0, 1.0, 0)))
      return st;
  }
  /* dW[g] (OCg, CgKK) += dY[g] (OCg, NP) x col[g]^T (NP, CgKK) */
  for (size_t g = 0; g < G; g++) {
    /* many output channels and many weights each: col is in panels, dW^T = col . dY^T reads them
     * in order (with few weights per channel, that product's rows are mostly padding) */
    if (l->packed == 1 && ocg >= 32 && cgkk >= 64) {
      if ((st = clcnn__gemm_wgrad_colp(ctx, &l->col, cgkk * G, g * cgkk, cgkk, NP, &l->t, g * ocg * NP, ocg, &l->dw,
                                       g * ocg * cgkk)))
        return st;
    } else if (l->packed == 1) { /* few output channels: dot products over chunks of N*P */
      if ((st = wgrad_narrow(ctx, l, g, NP, cgkk, ocg)))
        return st;
    } else if ((st = clcnn__gemm(ctx, "conv2d weight grad", 0, 1, ocg, cgkk, NP, 1.0, &l->t, g * ocg * NP, NP,
                                 &l->col, g * cgkk * NP, NP, 1.0, &l->dw, g * ocg * cgkk, cgkk))) {
      return st;
    }
  }
  if (l->no_dx) return CLCNN_SUCCESS;
  /* dcol[g] (CgKK, NP) = W[g]^T (CgKK, OCg) x dY[g] (OCg, NP) */
  for (size_t g = 0; g < G; g++)
    if ((st = clcnn__gemm(ctx, "conv2d input grad", 1, 0, cgkk, NP, ocg, 1.0, &l->w,
                          g * ocg * cgkk, cgkk, &l->t, g * ocg * NP, NP, 0.0, &l->dcol,
                          g * cgkk * NP, NP)))
      return st;
  size_t nx = (size_t)n * layer_in_size(l);
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_col2im", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_col2im", MEM_ARG(&l->dx), MEM_ARG(&l->dcol),
                        GEOM_ARGS(l, n), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_col2im", nx / l->in_w, (cbuf *[]){&l->dcol}, 1,
                       (cbuf *[]){&l->dx}, 1)))
    return st;
  (void)x;
  return CLCNN_SUCCESS;
}

void conv2d_need(clcnn_ctx *ctx, const struct layer *l, int n, int no_dx, struct scratch_need *need) {
  const clcnn_conv2d_params *p = &l->conv;
  size_t NP = (size_t)n * l->out_h * l->out_w, e = ctx->esz;
  size_t cgkk = (size_t)l->in_c / p->groups * p->kh * p->kw, ocg = l->out_c / p->groups;
  int packed = l->packed; /* 0: decided by the first forward, which may take either */
  if (!packed) {
    int own = clcnn__gemm_known(ctx, 0, 0, ocg, NP, cgkk);
    packed = own < 0 ? 0 : own ? 1 : 2;
  }
  if (packed != 2) { /* im2col in panels, as in conv2d_forward and conv2d_backward */
    clcnn__gemm_packed_b_need(ctx, ocg, NP, cgkk, need);
    if (ocg >= 32 && cgkk >= 64) {
      clcnn__gemm_wgrad_colp_need(ctx, cgkk, NP, ocg, need);
    } else {
      size_t chunk = narrow_chunk(NP, cgkk);
      clcnn__need(&need->part, (NP + chunk - 1) / chunk * ocg * cgkk * e);
    }
  }
  if (packed != 1) {
    clcnn__gemm_need(ctx, 0, 0, ocg, NP, cgkk, need);
    clcnn__gemm_need(ctx, 0, 1, ocg, cgkk, NP, need);
  }
  if (l->has_b) {
    size_t chunk = bias_chunk(NP, l->out_c);
    clcnn__need(&need->part, (NP + chunk - 1) / chunk * l->out_c * e);
  }
  if (!no_dx) clcnn__gemm_need(ctx, 1, 0, cgkk, NP, ocg, need);
}
