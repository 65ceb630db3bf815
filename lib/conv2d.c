/* lib/conv2d.c - 2-d convolution (torch.nn.Conv2d): im2col over the whole batch, one GEMM per
 * group, unpack with the bias fused; the fusion of a relu and a 2x2 max pooling after it.
 * Kernels in cl/conv2d.cl. */
#include <limits.h>
#include <stdio.h>

#include "conv2d.h"
#include "pool2d.h"

extern const struct op op_relu; /* a relu after the conv: done by the conv */

static int out_dim(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

static clcnn_status conv2d_setup(clcnn_ctx *ctx, struct node *nd) {
  struct conv_state *s = nd->priv;
  clcnn_conv2d_params *p = &s->p;
  const tensor *x = nd->in[0];
  if (p->out_channels <= 0 || p->kh <= 0 || p->kw <= 0 || p->stride_h < 0 || p->stride_w < 0 || p->pad_h < 0 ||
      p->pad_w < 0 || p->dilation_h < 0 || p->dilation_w < 0 || p->groups < 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: out_channels %d, kernel %dx%d, stride %dx%d, pad %dx%d, "
                "dilation %dx%d, groups %d: sizes must be positive, pads non-negative",
                WHERE(nd), p->out_channels, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w,
                p->dilation_h, p->dilation_w, p->groups);
  if (!p->stride_h) p->stride_h = 1;
  if (!p->stride_w) p->stride_w = 1;
  if (!p->dilation_h) p->dilation_h = 1;
  if (!p->dilation_w) p->dilation_w = 1;
  if (!p->groups) p->groups = 1;
  if (x->c % p->groups || p->out_channels % p->groups)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: groups %d must divide the input channels %d and the output channels %d",
                WHERE(nd), p->groups, x->c, p->out_channels);
  int ekh = p->dilation_h * (p->kh - 1) + 1, ekw = p->dilation_w * (p->kw - 1) + 1;
  if (ekh > x->h + 2 * p->pad_h || ekw > x->w + 2 * p->pad_w) {
    char dil[64] = "";
    if (p->dilation_h > 1 || p->dilation_w > 1) snprintf(dil, sizeof dil, " (%dx%d with dilation)", ekh, ekw);
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "%s: kernel %dx%d%s is larger than the padded input %dx%d (input %dx%d, pad %dx%d)", WHERE(nd), p->kh,
                p->kw, dil, x->h + 2 * p->pad_h, x->w + 2 * p->pad_w, x->h, x->w, p->pad_h, p->pad_w);
  }
  nd->out->c = p->out_channels;
  nd->out->h = out_dim(x->h, p->kh, p->stride_h, p->pad_h, p->dilation_h);
  nd->out->w = out_dim(x->w, p->kw, p->stride_w, p->pad_w, p->dilation_w);
  size_t ckk = (size_t)x->c * p->kh * p->kw;
  if (ckk * nd->out->h * nd->out->w > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: %zu x %lld im2col buffer is too large", WHERE(nd), ckk,
                (long long)nd->out->h * nd->out->w);
  double rf = (double)p->kh * p->kw;
  int wd[4] = {p->out_channels, x->c / p->groups, p->kh, p->kw};
  node_param(nd, "weight", 4, wd, PINIT_WEIGHT, wd[1] * rf, p->out_channels * rf);
  if (p->bias) node_param(nd, "bias", 1, wd, PINIT_BIAS, wd[1] * rf, p->out_channels * rf);
  return CLCNN_SUCCESS;
}

/* ---- the direct convolution (CPU devices) ----
 * For a stride-1 conv without dilation or groups, with a kernel larger than 1x1, the forward
 * product and the input gradient run as direct convolutions of a zero-padded image (cl/conv2d.cl)
 * instead of an im2col matrix KH*KW times the image's size and a GEMM over it, when the rows they
 * write are at least DIRECT_MIN long (the kernel's tiles are 8 channels x 32 columns). The
 * weight gradient still reads the im2col panels (written in the backward pass then). */
#define DIRECT_MIN 32

static int direct_shape(const struct node *nd) {
  const clcnn_conv2d_params *p = &((const struct conv_state *)nd->priv)->p;
  return p->stride_h == 1 && p->stride_w == 1 && p->dilation_h == 1 && p->dilation_w == 1 && p->groups == 1 &&
         p->kh * p->kw > 1;
}
/* The forward product: its output rows are OW long. */
static int direct_fwd(const struct node *nd) { return direct_shape(nd) && nd->out->w >= DIRECT_MIN; }
/* The input gradient: rows W long; dy is padded by K-1-P (cropped where P > K-1). */
static int direct_dgrad(const struct node *nd) { return direct_shape(nd) && nd->in[0]->w >= DIRECT_MIN; }
/* The padded image's height and row length for OH x OW outputs: the kernels read whole tiles of 32
 * columns, and KW - 1 columns past them. */
static void direct_geom(const struct conv_state *s, int oh, int ow, int *hp, int *wp) {
  *hp = oh + s->p.kh - 1;
  *wp = (ow + 31) / 32 * 32 + s->p.kw - 1;
}
/* Elements of the padded image and of the blocked weights for a direct convolution with IC input
 * channels, OC output channels and output rows OH x OW. */
static size_t direct_padded(const struct conv_state *s, size_t n, size_t ic, int oh, int ow) {
  int hp, wp;
  direct_geom(s, oh, ow, &hp, &wp);
  return n * ic * hp * wp;
}
static size_t direct_wsize(const struct conv_state *s, size_t ic, size_t oc) {
  return (oc + 7) / 8 * 8 * ic * s->p.kh * s->p.kw;
}

/* xp = x (ic x h x w, strides xbs, xcs) padded by ph, pw to hp x wp (conv2d_pad). */
static clcnn_status direct_pad(clcnn_ctx *ctx, cbuf *xp, int n, cbuf *x, size_t xbs, size_t xcs, int ic, int h,
                               int w, int ph, int pw, int hp, int wp) {
  size_t rows = (size_t)n * ic * hp;
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_pad", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_pad", MEM_ARG(xp), MEM_ARG(x), INT_ARG(rows), INT_ARG(ic), INT_ARG(h),
                        INT_ARG(w), INT_ARG(ph), INT_ARG(pw), INT_ARG(hp), INT_ARG(wp), INT_ARG(xbs), INT_ARG(xcs),
                        (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "conv2d_pad", rows, &x, 1, &xp, 1);
}

/* y (strides ybs, ycs) = the direct convolution of x (ic x h x w, strides xbs, xcs) padded by
 * ph, pw (into xp) into oc x oh x ow outputs, with the conv's weight as it is (flip 0: the
 * forward) or swapped and turned (flip 1: the input gradient). */
static clcnn_status conv_direct(clcnn_ctx *ctx, struct node *nd, int n, cbuf *x, size_t xbs, size_t xcs, int ic,
                                int h, int w, int ph, int pw, int oc, int oh, int ow, int flip, cbuf *xp, cbuf *y,
                                size_t ybs, size_t ycs) {
  struct conv_state *s = nd->priv;
  cbuf *wv = &nd->par[0].v;
  int kh = s->p.kh, kw = s->p.kw, nseg = (ow + 31) / 32, hp, wp;
  direct_geom(s, oh, ow, &hp, &wp);
  size_t nw = direct_wsize(s, ic, oc), items = (size_t)n * ((oc + 7) / 8) * oh * nseg;
  cl_kernel k;
  clcnn_status st;
  if ((st = direct_pad(ctx, xp, n, x, xbs, xcs, ic, h, w, ph, pw, hp, wp)) ||
      (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_direct_weights", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_direct_weights", MEM_ARG(&s->wt), MEM_ARG(wv), INT_ARG(oc), INT_ARG(ic),
                        INT_ARG(kh * kw), INT_ARG(flip), INT_ARG(nw), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_direct_weights", nw, &wv, 1, (cbuf *[]){&s->wt}, 1)) ||
      (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_direct", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_direct", MEM_ARG(y), MEM_ARG(xp), MEM_ARG(&s->wt), INT_ARG(n), INT_ARG(ic),
                        INT_ARG(hp), INT_ARG(wp), INT_ARG(kh), INT_ARG(kw), INT_ARG(oc), INT_ARG(oh), INT_ARG(ow),
                        INT_ARG(ybs), INT_ARG(ycs), INT_ARG(nseg), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "conv2d_direct", items, (cbuf *[]){xp, &s->wt}, 2, &y, 1);
}

/* The direct weight gradient's chunks of output rows: 64, fewer until there are enough work-items
 * (ITEMS per chunk). */
static size_t direct_rchunk(size_t rows, size_t items) {
  size_t rc = 64;
  while (rc > 1 && (rows + rc - 1) / rc * items < 256) rc /= 2;
  return rc;
}

/* dW += dY . the padded input's windows, for a conv whose forward was direct: the forward's padded
 * input, kept in s->col (the input itself may hold another tensor by now), products over chunks
 * of output rows, then a fixed-order sum of the chunks. */
static clcnn_status direct_wgrad(clcnn_ctx *ctx, struct node *nd, int n) {
  struct conv_state *s = nd->priv;
  cbuf *t = graph_shared(nd->net, SHARED_CONV_GEMM), *xp = &s->col, *part = clcnn__scratch(ctx);
  const tensor *xt = nd->in[0], *y = nd->out;
  int kh = s->p.kh, kw = s->p.kw, hp, wp;
  direct_geom(s, y->h, y->w, &hp, &wp);
  size_t kk = (size_t)kh * kw, cgkk = xt->c * kk, rows = (size_t)n * y->h, items = (y->c + 7) / 8 * cgkk;
  size_t rc = direct_rchunk(rows, items), chunks = (rows + rc - 1) / rc;
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__reserve(ctx, part, chunks * y->c * cgkk * ctx->esz, "conv2d weight grad parts")) ||
      (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_direct_wgrad", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_direct_wgrad", MEM_ARG(part), MEM_ARG(xp), MEM_ARG(t), INT_ARG(xt->c),
                        INT_ARG(hp), INT_ARG(wp), INT_ARG(kh), INT_ARG(kw), INT_ARG(y->c), INT_ARG(y->h),
                        INT_ARG(y->w), INT_ARG(rows * y->w), INT_ARG(rows), INT_ARG(rc), INT_ARG(chunks), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_direct_wgrad", items * chunks, (cbuf *[]){xp, t}, 2, &part, 1)))
    return st;
  return clcnn__reduce(ctx, &nd->par[0].g, 0, cgkk, part, y->c, cgkk, chunks, y->c, cgkk, 1.0, 1.0, 0);
}

static clcnn_status conv2d_alloc(struct plan *pl, struct node *nd, int max_batch) {
  struct conv_state *s = nd->priv;
  const clcnn_conv2d_params *p = &s->p;
  size_t ckk = (size_t)nd->in[0]->c * p->kh * p->kw, np = (size_t)max_batch * nd->out->h * nd->out->w;
  size_t e = pl->ctx->esz;
  if (ckk * np > INT_MAX || (size_t)nd->out->c * np > INT_MAX)
    return FAIL(pl->ctx, CLCNN_ERR_SHAPE, "batch %d: %s: %zu x %zu im2col buffer is too large", max_batch, WHERE(nd),
                ckk, np);
  clcnn_status st;
  /* the im2col panels, or a direct forward's padded input (which the weight gradient reads) */
  size_t col = ckk * ((np + 63) / 64 * 64), padded = direct_fwd(nd) ? direct_padded(s, max_batch, nd->in[0]->c,
                                                                                     nd->out->h, nd->out->w) : 0;
  if ((st = plan_buf(pl, PLAN_SCRATCH(pl), &s->col, (col > padded ? col : padded) * e, "conv2d im2col"))) return st;
  /* the GEMM's output and the im2col's gradient live within one pass: shared by all convs */
  plan_shared(pl, SHARED_CONV_GEMM, nd->out->c * np * e);
  plan_shared(pl, SHARED_CONV_COLGRAD, ckk * np * e);
  /* the input gradient's padded dy shares the im2col gradient's buffer */
  const tensor *x = nd->in[0], *y = nd->out;
  if (direct_dgrad(nd) && x->needs_grad)
    plan_shared(pl, SHARED_CONV_COLGRAD, direct_padded(s, max_batch, y->c, x->h, x->w) * e);
  if (direct_fwd(nd) || direct_dgrad(nd)) {
    size_t nw = direct_wsize(s, x->c, y->c), nw2 = direct_wsize(s, y->c, x->c);
    if ((st = plan_buf(pl, PLAN_SCRATCH(pl), &s->wt, (nw > nw2 ? nw : nw2) * e, "conv2d direct weights"))) return st;
  }
  return CLCNN_SUCCESS;
}

static void conv2d_release(struct node *nd) {
  struct conv_state *s = nd->priv;
  cbuf_free(&s->col);
  cbuf_free(&s->wt);
}


/* The geometry arguments shared by im2col and col2im. */
#define GEOM_ARGS(nd, n)                                                                   \
  INT_ARG(n), INT_ARG((nd)->in[0]->c), INT_ARG((nd)->in[0]->h), INT_ARG((nd)->in[0]->w),                 \
      INT_ARG(((struct conv_state *)(nd)->priv)->p.kh), INT_ARG(((struct conv_state *)(nd)->priv)->p.kw), INT_ARG(((struct conv_state *)(nd)->priv)->p.stride_h),          \
      INT_ARG(((struct conv_state *)(nd)->priv)->p.stride_w), INT_ARG(((struct conv_state *)(nd)->priv)->p.pad_h), INT_ARG(((struct conv_state *)(nd)->priv)->p.pad_w),    \
      INT_ARG(((struct conv_state *)(nd)->priv)->p.dilation_h), INT_ARG(((struct conv_state *)(nd)->priv)->p.dilation_w), INT_ARG((nd)->out->h),  \
      INT_ARG((nd)->out->w)

/* The im2col into the GEMM's own panels (s->col), which the weight gradient reads too. */
static clcnn_status im2col_packed(clcnn_ctx *ctx, struct node *nd, int n) {
  struct conv_state *s = nd->priv;
  cbuf *x = nd->in[0]->v;
  size_t npanels = ((size_t)n * nd->out->h * nd->out->w + 63) / 64;
  size_t rows = npanels * (size_t)nd->in[0]->c * s->p.kh * s->p.kw;
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_im2col_packed", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_im2col_packed", MEM_ARG(&s->col), MEM_ARG(x), GEOM_ARGS(nd, n),
                        INT_ARG(npanels), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "conv2d_im2col_packed", rows, &x, 1, (cbuf *[]){&s->col}, 1);
}

static clcnn_status conv2d_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct conv_state *s = nd->priv;
  cbuf *t = graph_shared(nd->net, SHARED_CONV_GEMM);
  cbuf *x = nd->in[0]->v;
  const clcnn_conv2d_params *p = &s->p;
  size_t P = (size_t)nd->out->h * nd->out->w, NP = n * P;
  size_t G = p->groups, cgkk = (size_t)nd->in[0]->c / G * p->kh * p->kw, ocg = nd->out->c / G;
  cl_kernel k;
  clcnn_status st;
  if (!s->packed) { /* the layout follows the GEMM chosen for the forward product */
    int own;
    if ((st = clcnn__gemm_pick(ctx, 0, 0, ocg, NP, cgkk, &own))) return st;
    s->packed = own ? 1 : 2;
  }
  if (s->packed == 1 && direct_fwd(nd)) { /* t = the direct convolution, in the GEMM's (OC, N*P) layout; the
                                             padded input stays in s->col for the weight gradient */
    const tensor *xt = nd->in[0];
    if ((st = conv_direct(ctx, nd, n, x, (size_t)xt->c * xt->h * xt->w, (size_t)xt->h * xt->w, xt->c, xt->h, xt->w,
                          p->pad_h, p->pad_w, nd->out->c, nd->out->h, nd->out->w, 0, &s->col, t, P, NP)))
      return st;
  } else if (s->packed == 1) { /* im2col into the GEMM's own panels: no separate packing pass */
    if ((st = im2col_packed(ctx, nd, n))) return st;
    for (size_t g = 0; g < G; g++)
      if ((st = clcnn__gemm_packed_b(ctx, "conv2d forward", 0, ocg, NP, cgkk, 1.0, &nd->par[0].v, g * ocg * cgkk, cgkk,
                                     &s->col, cgkk * G, g * cgkk, 0.0, t, g * ocg * NP, NP)))
        return st;
  } else {
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_im2col", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_im2col", MEM_ARG(&s->col), MEM_ARG(x), GEOM_ARGS(nd, n), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_im2col", cgkk * G * n * nd->out->h, &x, 1, (cbuf *[]){&s->col}, 1)))
      return st;
    for (size_t g = 0; g < G; g++)
      if ((st = clcnn__gemm(ctx, "conv2d forward", 0, 0, ocg, NP, cgkk, 1.0, &nd->par[0].v, g * ocg * cgkk, cgkk, &s->col,
                            g * cgkk * NP, NP, 0.0, t, g * ocg * NP, NP)))
        return st;
  }
  cbuf *bias = (nd->npar > 1) ? &nd->par[1].v : t;
  if (s->fpool) { /* relu and 2x2 max pooling fused: the pooling layer's output and indices */
    struct node *q = s->fpool;
    cbuf *qidx = &((struct pool_state *)q->priv)->idx;
    size_t rows = (size_t)n * q->out->c * q->out->h;
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_unpack_pool", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_unpack_pool", MEM_ARG(q->out->v), MEM_ARG(qidx), MEM_ARG(t),
                          MEM_ARG(bias), INT_ARG(rows), INT_ARG(nd->out->c), INT_ARG(NP), INT_ARG(nd->out->h),
                          INT_ARG(nd->out->w), INT_ARG(q->out->h), INT_ARG(q->out->w), INT_ARG((nd->npar > 1)), (size_t)0)))
      return st;
    return clcnn__run(ctx, k, "conv2d_unpack_pool", rows, (cbuf *[]){t, bias}, (nd->npar > 1) ? 2 : 1,
                      (cbuf *[]){q->out->v, qidx}, 2);
  }
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_unpack", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_unpack", MEM_ARG(nd->out->v), MEM_ARG(t), MEM_ARG(bias),
                        INT_ARG(n), INT_ARG(nd->out->c), INT_ARG(P), INT_ARG((nd->npar > 1)), INT_ARG(s->fuse_relu),
                        (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_unpack", (size_t)nd->out->c * n, (cbuf *[]){t, bias},
                       (nd->npar > 1) ? 2 : 1, (cbuf *[]){nd->out->v}, 1)))
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
static clcnn_status wgrad_narrow(clcnn_ctx *ctx, struct node *nd, size_t g, size_t NP, size_t cgkk, size_t ocg) {
  struct conv_state *s = nd->priv;
  cbuf *t = graph_shared(nd->net, SHARED_CONV_GEMM);
  size_t chunk = narrow_chunk(NP, cgkk), chunks = (NP + chunk - 1) / chunk, G = s->p.groups;
  cl_kernel k;
  clcnn_status st;
  cbuf *part = clcnn__scratch(ctx);
  if ((st = clcnn__reserve(ctx, part, chunks * ocg * cgkk * ctx->esz, "conv2d weight grad parts")) ||
      (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_wgrad_narrow", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_wgrad_narrow", MEM_ARG(part), MEM_ARG(&s->col), MEM_ARG(t), INT_ARG(ocg),
                        INT_ARG(cgkk), INT_ARG(cgkk * G), INT_ARG(g * cgkk), INT_ARG(NP), INT_ARG(g * ocg * NP),
                        INT_ARG(chunk), INT_ARG(chunks), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_wgrad_narrow", cgkk * chunks, (cbuf *[]){&s->col, t}, 2, &part, 1)))
    return st;
  return clcnn__reduce(ctx, &nd->par[0].g, g * ocg * cgkk, cgkk, part, ocg, cgkk, chunks, ocg, cgkk, 1.0, 1.0, 0);
}

static clcnn_status conv2d_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct conv_state *s = nd->priv;
  cbuf *t = graph_shared(nd->net, SHARED_CONV_GEMM);
  cbuf *dcol = graph_shared(nd->net, SHARED_CONV_COLGRAD);
  cbuf *dy = nd->out->g;
  const clcnn_conv2d_params *p = &s->p;
  size_t P = (size_t)nd->out->h * nd->out->w, NP = n * P;
  size_t G = p->groups, cgkk = (size_t)nd->in[0]->c / G * p->kh * p->kw, ocg = nd->out->c / G;
  cl_kernel k;
  clcnn_status st;
  /* dy (n,OC,P) -> t (OC, n*P), through the fused relu's mask (its output is the conv's), or from the
   * fused pooling's output gradient */
  if (s->fpool) {
    struct node *q = s->fpool;
    cbuf *qidx = &((struct pool_state *)q->priv)->idx;
    size_t rows = (size_t)n * q->out->c * q->out->h;
    if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_pack_pool", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_pack_pool", MEM_ARG(t), MEM_ARG(dy), MEM_ARG(q->out->v), MEM_ARG(qidx),
                          INT_ARG(rows), INT_ARG(nd->out->c), INT_ARG(NP), INT_ARG(nd->out->h), INT_ARG(nd->out->w),
                          INT_ARG(q->out->h), INT_ARG(q->out->w), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_pack_pool", rows, (cbuf *[]){dy, q->out->v, qidx}, 3, (cbuf *[]){t}, 1)))
      return st;
  } else if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_pack", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_pack", MEM_ARG(t), MEM_ARG(dy), MEM_ARG(nd->out->v), INT_ARG(n),
                        INT_ARG(nd->out->c), INT_ARG(P), INT_ARG(s->fuse_relu), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_pack", (size_t)nd->out->c * n, (cbuf *[]){dy, nd->out->v}, 2, (cbuf *[]){t}, 1)))
    return st;
  /* db += the sum of each row of t, in chunks of N*P so that every core has work */
  if ((nd->npar > 1)) {
    size_t oc = nd->out->c, chunk = bias_chunk(NP, oc), chunks = (NP + chunk - 1) / chunk;
    cbuf *part = clcnn__scratch(ctx);
    if ((st = clcnn__reserve(ctx, part, chunks * oc * ctx->esz, "conv2d bias grad parts")) ||
        (st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_bias_grad", &k)) ||
        (st = clcnn__args(ctx, k, "conv2d_bias_grad", MEM_ARG(part), MEM_ARG(t), INT_ARG(oc), INT_ARG(NP),
                          INT_ARG(chunk), INT_ARG(chunks), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "conv2d_bias_grad", oc * chunks, (cbuf *[]){t}, 1, &part, 1)) ||
        (st = clcnn__reduce(ctx, &nd->par[1].g, 0, 1, part, oc, 1, chunks, oc, 1, 1.0, 1.0, 0)))
      return st;
  }
  /* dW[g] (OCg, CgKK) += dY[g] (OCg, NP) x col[g]^T (NP, CgKK); directly where the forward was */
  if (s->packed == 1 && direct_fwd(nd)) {
    if ((st = direct_wgrad(ctx, nd, n))) return st;
  } else for (size_t g = 0; g < G; g++) {
    /* many output channels and many weights each: col is in panels, dW^T = col . dY^T reads them
     * in order (with few weights per channel, that product's rows are mostly padding) */
    if (s->packed == 1 && ocg >= 32 && cgkk >= 64) {
      if ((st = clcnn__gemm_wgrad_colp(ctx, &s->col, cgkk * G, g * cgkk, cgkk, NP, t, g * ocg * NP, ocg, &nd->par[0].g,
                                       g * ocg * cgkk)))
        return st;
    } else if (s->packed == 1) { /* few output channels: dot products over chunks of N*P */
      if ((st = wgrad_narrow(ctx, nd, g, NP, cgkk, ocg)))
        return st;
    } else if ((st = clcnn__gemm(ctx, "conv2d weight grad", 0, 1, ocg, cgkk, NP, 1.0, t, g * ocg * NP, NP,
                                 &s->col, g * cgkk * NP, NP, 1.0, &nd->par[0].g, g * ocg * cgkk, cgkk))) {
      return st;
    }
  }
  if (!nd->dx[0]) return CLCNN_SUCCESS;
  if (s->packed == 1 && direct_dgrad(nd)) { /* dx = dy (t's rows) padded by K-1-P, convolved with W turned */
    const tensor *xt = nd->in[0];
    return conv_direct(ctx, nd, n, t, P, NP, nd->out->c, nd->out->h, nd->out->w, p->kh - 1 - p->pad_h,
                       p->kw - 1 - p->pad_w, xt->c, xt->h, xt->w, 1, graph_shared(nd->net, SHARED_CONV_COLGRAD),
                       nd->dx[0], (size_t)xt->c * xt->h * xt->w,
                       (size_t)xt->h * xt->w);
  }
  /* dcol[g] (CgKK, NP) = W[g]^T (CgKK, OCg) x dY[g] (OCg, NP) */
  for (size_t g = 0; g < G; g++)
    if ((st = clcnn__gemm(ctx, "conv2d input grad", 1, 0, cgkk, NP, ocg, 1.0, &nd->par[0].v,
                          g * ocg * cgkk, cgkk, t, g * ocg * NP, NP, 0.0, dcol,
                          g * cgkk * NP, NP)))
      return st;
  size_t nx = (size_t)n * (size_t)node_in_size(nd);
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_col2im", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_col2im", MEM_ARG(nd->dx[0]), MEM_ARG(dcol),
                        GEOM_ARGS(nd, n), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_col2im", nx / nd->in[0]->w, (cbuf *[]){dcol}, 1,
                       (cbuf *[]){nd->dx[0]}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

static void conv2d_need(clcnn_ctx *ctx, const struct node *nd, int n, struct scratch_need *need) {
  struct conv_state *s = nd->priv;
  int no_dx = !nd->in[0]->needs_grad;
  const clcnn_conv2d_params *p = &s->p;
  size_t NP = (size_t)n * nd->out->h * nd->out->w, e = ctx->esz;
  size_t cgkk = (size_t)nd->in[0]->c / p->groups * p->kh * p->kw, ocg = nd->out->c / p->groups;
  int packed = s->packed; /* 0: decided by the first forward, which may take either */
  if (!packed) {
    int own = clcnn__gemm_known(ctx, 0, 0, ocg, NP, cgkk);
    packed = own < 0 ? 0 : own ? 1 : 2;
  }
  if (packed != 2 && direct_fwd(nd)) { /* the direct weight gradient's parts */
    size_t rows = (size_t)n * nd->out->h, items = (nd->out->c + 7) / 8 * cgkk, rc = direct_rchunk(rows, items);
    clcnn__need(&need->part, (rows + rc - 1) / rc * nd->out->c * cgkk * e);
  } else if (packed != 2) { /* im2col in panels, as in conv2d_forward and conv2d_backward */
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
  if ((nd->npar > 1)) {
    size_t chunk = bias_chunk(NP, nd->out->c);
    clcnn__need(&need->part, (NP + chunk - 1) / chunk * nd->out->c * e);
  }
  if (!no_dx && !(packed == 1 && direct_dgrad(nd))) clcnn__gemm_need(ctx, 1, 0, cgkk, NP, ocg, need);
}

static void conv2d_describe(const struct node *nd, char *buf, size_t size) {
  const struct conv_state *s = nd->priv;
  const clcnn_conv2d_params *c = &s->p;
  snprintf(buf, size, "conv2d(%d->%d, kernel %dx%d, stride %dx%d, pad %dx%d%s)", nd->in[0]->c, nd->out->c, c->kh, c->kw,
           c->stride_h, c->stride_w, c->pad_h, c->pad_w, nd->npar > 1 ? "" : ", no bias");
}

/* relu(conv(x)) in the conv's own passes: the relu is applied as the conv writes its output and
 * its mask as the conv reads its gradient; and maxpool2x2(relu(conv(x))) as the conv writes its
 * output, the pooling's output and indices then the conv's. Only where the intermediate tensors
 * have one reader and are not outputs of the net. */
static void conv2d_fuse(clcnn_net *net, struct node *nd) {
  struct conv_state *s = nd->priv;
  s->fuse_relu = 0;
  s->fpool = NULL;
  struct node *r = graph_sole_reader(net, nd->out);
  if (!r || r->op != &op_relu) return;
  s->fuse_relu = 1;
  r->fused = 1;
  r->out->valias = nd->out;
  r->out->galias = nd->out;
  struct node *q = graph_sole_reader(net, r->out);
  if (!q || q->op != &op_maxpool2d || !pool_is_2x2(&((struct pool_state *)q->priv)->p)) return;
  s->fpool = q;
  q->fused = 1;
  nd->out->no_value = 1; /* the conv writes the pooling's output directly */
  nd->out->galias = q->out;
}

static tensor *conv2d_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  clcnn_conv2d_params p = {.bias = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 1};
  if (margs_int(A, 0, NULL, 1, &p.out_channels) < 0) return NULL;
  int r = margs_pair(A, -1, "kernel", 1, &p.kh, &p.kw);
  if (r < 0) return NULL;
  if (!r) return margs_missing(A, "conv needs kernel=K (or kernel=KHxKW)");
  if (margs_pair(A, -1, "stride", 1, &p.stride_h, &p.stride_w) < 0 || margs_pair(A, -1, "pad", 0, &p.pad_h, &p.pad_w) < 0 ||
      margs_pair(A, -1, "dilation", 1, &p.dilation_h, &p.dilation_w) < 0 || margs_int(A, -1, "groups", 1, &p.groups) < 0 ||
      margs_bool(A, "bias", &p.bias) < 0)
    return NULL;
  return clcnn_conv2d(net, in[0], &p, name);
}

const struct op op_conv2d = {
    .word = "conv", .kind = "conv2d", .type = CLCNN_LAYER_CONV2D, .flags = OP_NO_BWD_X | OP_NO_BWD_Y, .priv_size = sizeof(struct conv_state),
    .min_in = 1, .max_in = 1, .npos = 1, .pos = "OUT", .pos_what = {"output channels"},
    .opts = {"kernel", "stride", "pad", "dilation", "groups", "bias"},
    .usage = "conv OUT kernel=K|KHxKW [stride=S] [pad=P] [dilation=D] [groups=G] [bias=0|1]",
    .parse = conv2d_parse, .setup = conv2d_setup, .alloc = conv2d_alloc, .need = conv2d_need,
    .release = conv2d_release, .forward = conv2d_forward, .backward = conv2d_backward,
    .describe = conv2d_describe, .fuse = conv2d_fuse,
};

CLCNN_API clcnn_tensor *clcnn_conv2d(clcnn_net *net, clcnn_tensor *x, const clcnn_conv2d_params *p, const char *name) {
  if (net && !p) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "conv2d: params is NULL");
  struct conv_state s = {.p = p ? *p : (clcnn_conv2d_params){0}};
  return graph_add(net, &op_conv2d, &x, 1, name, &s, sizeof s);
}

CLCNN_API clcnn_status clcnn_net_add_conv2d(clcnn_net *net, const clcnn_conv2d_params *p) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  if (!p) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "clcnn_net_add_conv2d: params is NULL"), graph_status(net);
  return clcnn_conv2d(net, clcnn_net_output(net), p, NULL) ? CLCNN_SUCCESS : graph_status(net);
}
