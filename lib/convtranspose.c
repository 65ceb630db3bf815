/* lib/convtranspose.c - transposed 2-d convolution (torch.nn.ConvTranspose2d): the adjoint of
 * a conv2d whose input has this node's output shape and whose output has this node's input
 * shape, with the same kernel, stride, padding and dilation. Each of its passes is one of that
 * conv's, on conv2d.cl's kernels:
 *   forward  (a conv's input gradient): xt = x as (C, N*P); col[g] = W[g]^T xt[g]; y = col2im(col)
 *            (+ bias: util.cl's bias_add, as a linear layer's);
 *   backward (a conv's forward and weight gradient): col = im2col(dy); dW[g] += xt[g] col[g]^T;
 *            dxt[g] = W[g] col[g]; dx = dxt as (N, C, P); db += the sums of dy (util.cl's bias_grad).
 * Weight (C, OC/G, KH, KW); group g's rows of W are C/G input channels, its rows of col the
 * OC/G * KH * KW of its output channels. Plain GEMMs (clcnn__gemm), no panel layout. */
#include <limits.h>
#include <stdio.h>

#include "graph.h"

struct convt_state {
  clcnn_conv_transpose2d_params p; /* normalised: no zero strides, dilations or groups */
  cbuf xt;  /* x as (C, N*P), P = H*W: the forward GEMM's B, kept for the weight gradient */
  cbuf col; /* (OC*KH*KW, N*P): the forward GEMM's output, then im2col of dy */
  cbuf dxt; /* (C, N*P): the input gradient before it is unpacked (only when it is wanted) */
};

extern const struct op op_conv_transpose2d;

/* (in - 1) * stride - 2 * pad + dilation * (k - 1) + outpad + 1, in 64 bits */
static long long out_dim(int in, int k, int s, int p, int op, int d) {
  return (long long)(in - 1) * s - 2LL * p + (long long)d * (k - 1) + op + 1;
}

static clcnn_status convt_setup(clcnn_ctx *ctx, struct node *nd) {
  struct convt_state *s = nd->priv;
  clcnn_conv_transpose2d_params *p = &s->p;
  const tensor *x = nd->in[0];
  if (p->out_channels <= 0 || p->kh <= 0 || p->kw <= 0 || p->stride_h < 0 || p->stride_w < 0 || p->pad_h < 0 ||
      p->pad_w < 0 || p->outpad_h < 0 || p->outpad_w < 0 || p->dilation_h < 0 || p->dilation_w < 0 || p->groups < 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: out_channels %d, kernel %dx%d, stride %dx%d, pad %dx%d, output padding %dx%d, dilation %dx%d, "
                "groups %d: sizes must be positive, pads non-negative",
                WHERE(nd), p->out_channels, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->outpad_h,
                p->outpad_w, p->dilation_h, p->dilation_w, p->groups);
  if (!p->stride_h) p->stride_h = 1;
  if (!p->stride_w) p->stride_w = 1;
  if (!p->dilation_h) p->dilation_h = 1;
  if (!p->dilation_w) p->dilation_w = 1;
  if (!p->groups) p->groups = 1;
  if ((p->outpad_h >= p->stride_h && p->outpad_h >= p->dilation_h) ||
      (p->outpad_w >= p->stride_w && p->outpad_w >= p->dilation_w))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: output padding %dx%d must be smaller than either stride %dx%d or dilation %dx%d (in H and in W)",
                WHERE(nd), p->outpad_h, p->outpad_w, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w);
  if (x->c % p->groups || p->out_channels % p->groups)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: groups %d must divide the input channels %d and the output channels %d",
                WHERE(nd), p->groups, x->c, p->out_channels);
  long long oh = out_dim(x->h, p->kh, p->stride_h, p->pad_h, p->outpad_h, p->dilation_h);
  long long ow = out_dim(x->w, p->kw, p->stride_w, p->pad_w, p->outpad_w, p->dilation_w);
  if (oh <= 0 || ow <= 0)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "%s: output size %lldx%lld is not positive (input %dx%d, kernel %dx%d, stride %dx%d, pad %dx%d, "
                "output padding %dx%d, dilation %dx%d)",
                WHERE(nd), oh, ow, x->h, x->w, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w,
                p->outpad_h, p->outpad_w, p->dilation_h, p->dilation_w);
  /* doubles are exact below 2^53, so these compare exactly wherever it matters */
  double out = (double)p->out_channels * (double)oh * (double)ow;
  double col = (double)p->out_channels * p->kh * p->kw * x->h * x->w;
  if (oh > INT_MAX || ow > INT_MAX || out > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: output (%d,%lld,%lld) is too large (past int indices)", WHERE(nd),
                p->out_channels, oh, ow);
  if (col > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: %d*%d*%d x %d column buffer is too large (past int indices)", WHERE(nd),
                p->out_channels, p->kh, p->kw, x->h * x->w);
  nd->out->c = p->out_channels;
  nd->out->h = (int)oh;
  nd->out->w = (int)ow;
  /* torch.nn.init._calculate_fan_in_and_fan_out on the weight (C, OC/G, KH, KW): fan_in is
   * size(1) * KH * KW, fan_out size(0) * KH * KW; the bias's bound is 1/sqrt(that fan_in) */
  double rf = (double)p->kh * p->kw;
  int wd[4] = {x->c, p->out_channels / p->groups, p->kh, p->kw};
  node_param(nd, "weight", 4, wd, PINIT_WEIGHT, wd[1] * rf, wd[0] * rf);
  if (p->bias) node_param(nd, "bias", 1, &p->out_channels, PINIT_BIAS, wd[1] * rf, wd[0] * rf);
  return CLCNN_SUCCESS;
}

static clcnn_status convt_alloc(struct plan *pl, struct node *nd, int max_batch) {
  struct convt_state *s = nd->priv;
  const clcnn_conv_transpose2d_params *p = &s->p;
  size_t np = (size_t)max_batch * nd->in[0]->h * nd->in[0]->w, e = pl->ctx->esz;
  size_t okk = (size_t)nd->out->c * p->kh * p->kw, c = nd->in[0]->c;
  if (okk * np > INT_MAX || c * np > INT_MAX)
    return FAIL(pl->ctx, CLCNN_ERR_SHAPE, "batch %d: %s: %zu x %zu column buffer is too large (past int indices)",
                max_batch, WHERE(nd), okk, np);
  clcnn_status st;
  if ((st = plan_buf(pl, PLAN_SCRATCH(pl), &s->xt, c * np * e, "conv_transpose2d input columns")) ||
      (st = plan_buf(pl, PLAN_SCRATCH(pl), &s->col, okk * np * e, "conv_transpose2d columns")) ||
      (nd->in[0]->needs_grad &&
       (st = plan_buf(pl, PLAN_SCRATCH(pl), &s->dxt, c * np * e, "conv_transpose2d input grad columns"))))
    return st;
  return CLCNN_SUCCESS;
}

static void convt_release(struct node *nd) {
  struct convt_state *s = nd->priv;
  cbuf_free(&s->xt), cbuf_free(&s->col), cbuf_free(&s->dxt);
}

/* conv2d_im2col's and conv2d_col2im's geometry: the conv whose input is this node's output
 * (OC, OH, OW) and whose output is this node's input (H, W) */
#define GEOM_ARGS(nd, p, n)                                                                                         \
  INT_ARG(n), INT_ARG((nd)->out->c), INT_ARG((nd)->out->h), INT_ARG((nd)->out->w), INT_ARG((p)->kh),               \
      INT_ARG((p)->kw), INT_ARG((p)->stride_h), INT_ARG((p)->stride_w), INT_ARG((p)->pad_h), INT_ARG((p)->pad_w), \
      INT_ARG((p)->dilation_h), INT_ARG((p)->dilation_w), INT_ARG((nd)->in[0]->h), INT_ARG((nd)->in[0]->w)

/* The GEMMs' sizes: per group, Cg input channels, OKg = OC/G * KH * KW rows of col, N*P columns. */
struct dims {
  size_t G, cg, okg, np;
};
static struct dims dims_of(const struct node *nd, int n) {
  const clcnn_conv_transpose2d_params *p = &((const struct convt_state *)nd->priv)->p;
  struct dims d = {(size_t)p->groups, (size_t)nd->in[0]->c / p->groups,
                   (size_t)(nd->out->c / p->groups) * p->kh * p->kw, (size_t)n * nd->in[0]->h * nd->in[0]->w};
  return d;
}

static clcnn_status convt_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct convt_state *s = nd->priv;
  const clcnn_conv_transpose2d_params *p = &s->p;
  cbuf *x = nd->in[0]->v, *y = nd->out->v, *w = &nd->par[0].v;
  struct dims d = dims_of(nd, n);
  size_t C = nd->in[0]->c, P = (size_t)nd->in[0]->h * nd->in[0]->w;
  cl_kernel k;
  clcnn_status st;
  /* xt (C, N*P) = x (N, C, P) */
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_pack", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_pack", MEM_ARG(&s->xt), MEM_ARG(x), MEM_ARG(x), INT_ARG(n), INT_ARG(C),
                        INT_ARG(P), INT_ARG(0), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_pack", C * n, &x, 1, (cbuf *[]){&s->xt}, 1)))
    return st;
  /* col[g] (OKg, N*P) = W[g]^T (OKg, Cg) . xt[g] (Cg, N*P) */
  for (size_t g = 0; g < d.G; g++)
    if ((st = clcnn__gemm(ctx, "conv_transpose2d forward", 1, 0, d.okg, d.np, d.cg, 1.0, w, g * d.cg * d.okg, d.okg,
                          &s->xt, g * d.cg * d.np, d.np, 0.0, &s->col, g * d.okg * d.np, d.np)))
      return st;
  /* y = col2im(col), '=' */
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_col2im", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_col2im", MEM_ARG(y), MEM_ARG(&s->col), GEOM_ARGS(nd, p, n), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_col2im", (size_t)n * nd->out->c * nd->out->h, (cbuf *[]){&s->col}, 1, &y, 1)))
    return st;
  if (nd->npar > 1) {
    cbuf *b = &nd->par[1].v;
    size_t P = (size_t)nd->out->h * nd->out->w;
    if ((st = clcnn__kernel(ctx, KP_UTIL, "bias_add", &k)) ||
        (st = clcnn__args(ctx, k, "bias_add", MEM_ARG(y), MEM_ARG(b), INT_ARG(n), INT_ARG(nd->out->c), INT_ARG(P),
                          (size_t)0)) ||
        (st = clcnn__run(ctx, k, "bias_add", (size_t)n * nd->out->c * P, &b, 1, &y, 1)))
      return st;
  }
  return CLCNN_SUCCESS;
}

static clcnn_status convt_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct convt_state *s = nd->priv;
  const clcnn_conv_transpose2d_params *p = &s->p;
  cbuf *dy = nd->out->g, *w = &nd->par[0].v;
  struct dims d = dims_of(nd, n);
  size_t C = nd->in[0]->c, P = (size_t)nd->in[0]->h * nd->in[0]->w;
  cl_kernel k;
  clcnn_status st;
  /* col (OC*KH*KW, N*P) = im2col(dy) */
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_im2col", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_im2col", MEM_ARG(&s->col), MEM_ARG(dy), GEOM_ARGS(nd, p, n), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_im2col", d.okg * d.G * n * nd->in[0]->h, &dy, 1, (cbuf *[]){&s->col}, 1)))
    return st;
  if (nd->npar > 1) {
    cbuf *db = &nd->par[1].g;
    if ((st = clcnn__kernel(ctx, KP_UTIL, "bias_grad", &k)) ||
        (st = clcnn__args(ctx, k, "bias_grad", MEM_ARG(db), MEM_ARG(dy), INT_ARG(n), INT_ARG(nd->out->c),
                          INT_ARG((size_t)nd->out->h * nd->out->w), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "bias_grad", nd->out->c, &dy, 1, &db, 1)))
      return st;
  }
  /* dW[g] (Cg, OKg) += xt[g] (Cg, N*P) . col[g]^T (N*P, OKg) */
  for (size_t g = 0; g < d.G; g++)
    if ((st = clcnn__gemm(ctx, "conv_transpose2d weight grad", 0, 1, d.cg, d.okg, d.np, 1.0, &s->xt, g * d.cg * d.np,
                          d.np, &s->col, g * d.okg * d.np, d.np, 1.0, &nd->par[0].g, g * d.cg * d.okg, d.okg)))
      return st;
  if (!nd->dx[0]) return CLCNN_SUCCESS;
  /* dxt[g] (Cg, N*P) = W[g] (Cg, OKg) . col[g] (OKg, N*P); dx (N, C, P) = dxt */
  for (size_t g = 0; g < d.G; g++)
    if ((st = clcnn__gemm(ctx, "conv_transpose2d input grad", 0, 0, d.cg, d.np, d.okg, 1.0, w, g * d.cg * d.okg,
                          d.okg, &s->col, g * d.okg * d.np, d.np, 0.0, &s->dxt, g * d.cg * d.np, d.np)))
      return st;
  cbuf *dx = nd->dx[0];
  if ((st = clcnn__kernel(ctx, KP_CONV2D, "conv2d_unpack", &k)) ||
      (st = clcnn__args(ctx, k, "conv2d_unpack", MEM_ARG(dx), MEM_ARG(&s->dxt), MEM_ARG(&s->dxt), INT_ARG(n),
                        INT_ARG(C), INT_ARG(P), INT_ARG(0), INT_ARG(0), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "conv2d_unpack", C * n, (cbuf *[]){&s->dxt}, 1, &dx, 1)))
    return st;
  return CLCNN_SUCCESS;
}

static void convt_need(clcnn_ctx *ctx, const struct node *nd, int n, struct scratch_need *need) {
  struct dims d = dims_of(nd, n);
  clcnn__gemm_need(ctx, 1, 0, d.okg, d.np, d.cg, need);
  clcnn__gemm_need(ctx, 0, 1, d.cg, d.okg, d.np, need);
  if (nd->in[0]->needs_grad) clcnn__gemm_need(ctx, 0, 0, d.cg, d.np, d.okg, need);
}

static void convt_describe(const struct node *nd, char *buf, size_t size) {
  const clcnn_conv_transpose2d_params *c = &((const struct convt_state *)nd->priv)->p;
  char extra[96] = "";
  int len = 0;
  if (c->outpad_h || c->outpad_w)
    len += snprintf(extra + len, sizeof extra - len, ", output padding %dx%d", c->outpad_h, c->outpad_w);
  if (c->dilation_h > 1 || c->dilation_w > 1)
    len += snprintf(extra + len, sizeof extra - len, ", dilation %dx%d", c->dilation_h, c->dilation_w);
  if (c->groups > 1) len += snprintf(extra + len, sizeof extra - len, ", groups %d", c->groups);
  snprintf(buf, size, "conv_transpose2d(%d->%d, kernel %dx%d, stride %dx%d, pad %dx%d%s%s)", nd->in[0]->c,
           nd->out->c, c->kh, c->kw, c->stride_h, c->stride_w, c->pad_h, c->pad_w, extra,
           nd->npar > 1 ? "" : ", no bias");
}

static tensor *convt_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  (void)nin;
  clcnn_conv_transpose2d_params p = {.bias = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                                     .groups = 1};
  if (margs_int(A, 0, NULL, 1, &p.out_channels) < 0) return NULL;
  int r = margs_pair(A, -1, "kernel", 1, &p.kh, &p.kw);
  if (r < 0) return NULL;
  if (!r) return margs_missing(A, "convtranspose needs kernel=K (or kernel=KHxKW)");
  if (margs_pair(A, -1, "stride", 1, &p.stride_h, &p.stride_w) < 0 ||
      margs_pair(A, -1, "pad", 0, &p.pad_h, &p.pad_w) < 0 ||
      margs_pair(A, -1, "outpad", 0, &p.outpad_h, &p.outpad_w) < 0 ||
      margs_pair(A, -1, "dilation", 1, &p.dilation_h, &p.dilation_w) < 0 ||
      margs_int(A, -1, "groups", 1, &p.groups) < 0 || margs_bool(A, "bias", &p.bias) < 0)
    return NULL;
  return clcnn_conv_transpose2d(net, in[0], &p, name);
}

const struct op op_conv_transpose2d = {
    .word = "convtranspose", .flags = OP_NO_BWD_Y, .kind = "conv_transpose2d", .type = CLCNN_LAYER_CONV_TRANSPOSE2D,
    .priv_size = sizeof(struct convt_state), .min_in = 1, .max_in = 1, .npos = 1, .pos = "OUT",
    .pos_what = {"output channels"},
    .opts = {"kernel", "stride", "pad", "outpad", "dilation", "groups", "bias"},
    .usage = "convtranspose OUT kernel=K|KHxKW [stride=S] [pad=P] [outpad=Q] [dilation=D] [groups=G] [bias=0|1]",
    .parse = convt_parse, .setup = convt_setup, .alloc = convt_alloc, .need = convt_need,
    .release = convt_release, .forward = convt_forward, .backward = convt_backward, .describe = convt_describe,
};

CLCNN_API clcnn_tensor *clcnn_conv_transpose2d(clcnn_net *net, clcnn_tensor *x, const clcnn_conv_transpose2d_params *p,
                                               const char *name) {
  if (net && !p) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "conv_transpose2d: params is NULL");
  struct convt_state s = {.p = p ? *p : (clcnn_conv_transpose2d_params){0}};
  return graph_add(net, &op_conv_transpose2d, &x, 1, name, &s, sizeof s);
}
