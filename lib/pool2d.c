/* lib/pool2d.c - max, average and global average pooling (torch.nn.MaxPool2d, AvgPool2d,
 * AdaptiveAvgPool2d(1)). Kernels in cl/pool2d.cl. */
#include <limits.h>
#include <stdio.h>

#include "pool2d.h"

static clcnn_status pool2d_setup(clcnn_ctx *ctx, struct node *nd) {
  struct pool_state *s = nd->priv;
  const tensor *x = nd->in[0];
  tensor *y = nd->out;
  y->c = x->c;
  if (nd->op->type == CLCNN_LAYER_GLOBAL_AVGPOOL) {
    y->h = y->w = 1;
    return CLCNN_SUCCESS;
  }
  clcnn_pool2d_params *p = &s->p;
  if (p->kh <= 0 || p->kw <= 0 || p->stride_h < 0 || p->stride_w < 0 || p->pad_h < 0 || p->pad_w < 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: kernel %dx%d, stride %dx%d, pad %dx%d: kernel must be positive, stride and pad non-negative",
                WHERE(nd), p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w);
  if (!p->stride_h) p->stride_h = p->kh;
  if (!p->stride_w) p->stride_w = p->kw;
  if (2 * p->pad_h > p->kh || 2 * p->pad_w > p->kw)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: pad %dx%d must be at most half the kernel %dx%d (as in PyTorch)", WHERE(nd),
                p->pad_h, p->pad_w, p->kh, p->kw);
  if (p->kh > x->h + 2 * p->pad_h || p->kw > x->w + 2 * p->pad_w)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: kernel %dx%d is larger than the padded input %dx%d (input %dx%d, pad %dx%d)",
                WHERE(nd), p->kh, p->kw, x->h + 2 * p->pad_h, x->w + 2 * p->pad_w, x->h, x->w, p->pad_h, p->pad_w);
  y->h = (x->h + 2 * p->pad_h - p->kh) / p->stride_h + 1;
  y->w = (x->w + 2 * p->pad_w - p->kw) / p->stride_w + 1;
  return CLCNN_SUCCESS;
}

static clcnn_status pool2d_alloc(struct plan *pl, struct node *nd, int max_batch) {
  struct pool_state *s = nd->priv;
  if (nd->op->type != CLCNN_LAYER_MAXPOOL2D) return CLCNN_SUCCESS;
  return plan_buf(pl, PLAN_SCRATCH(pl), &s->idx, (size_t)max_batch * tensor_size(nd->out) * sizeof(cl_int),
                  "maxpool2d indices");
}

static void pool2d_release(struct node *nd) { cbuf_free(&((struct pool_state *)nd->priv)->idx); }

#define POOL_ARGS(nd, s, n)                                                                                   \
  INT_ARG(n), INT_ARG((nd)->in[0]->c), INT_ARG((nd)->in[0]->h), INT_ARG((nd)->in[0]->w), INT_ARG((s)->p.kh),   \
      INT_ARG((s)->p.kw), INT_ARG((s)->p.stride_h), INT_ARG((s)->p.stride_w), INT_ARG((s)->p.pad_h),           \
      INT_ARG((s)->p.pad_w), INT_ARG((nd)->out->h), INT_ARG((nd)->out->w)

/* The 2x2 kernels': rows of output, the input and output plane sizes. */
#define POOL2X2_ARGS(nd, n)                                                                                  \
  INT_ARG((size_t)(n) * (nd)->out->c * (nd)->out->h), INT_ARG((nd)->in[0]->h), INT_ARG((nd)->in[0]->w),      \
      INT_ARG((nd)->out->h), INT_ARG((nd)->out->w)

static clcnn_status pool2d_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct pool_state *s = nd->priv;
  size_t ny = (size_t)n * tensor_size(nd->out);
  cbuf *x = nd->in[0]->v, *y = nd->out->v, *idx = &s->idx;
  cl_kernel k;
  clcnn_status st;
  switch (nd->op->type) {
    case CLCNN_LAYER_MAXPOOL2D:
      if (pool_is_2x2(&s->p)) {
        if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2x2_forward", &k)) ||
            (st = clcnn__args(ctx, k, "maxpool2x2_forward", MEM_ARG(y), MEM_ARG(idx), MEM_ARG(x), POOL2X2_ARGS(nd, n),
                              (size_t)0)))
          return st;
        return clcnn__run(ctx, k, "maxpool2x2_forward", (size_t)n * nd->out->c * nd->out->h, &x, 1,
                          (cbuf *[]){y, idx}, 2);
      }
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2d_forward", &k)) ||
          (st = clcnn__args(ctx, k, "maxpool2d_forward", MEM_ARG(y), MEM_ARG(idx), MEM_ARG(x), POOL_ARGS(nd, s, n),
                            (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "maxpool2d_forward", (size_t)n * nd->in[0]->c * nd->out->h, &x, 1,
                        (cbuf *[]){y, idx}, 2);
    case CLCNN_LAYER_AVGPOOL2D:
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "avgpool2d_forward", &k)) ||
          (st = clcnn__args(ctx, k, "avgpool2d_forward", MEM_ARG(y), MEM_ARG(x), POOL_ARGS(nd, s, n), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "avgpool2d_forward", ny, &x, 1, &y, 1);
    default: /* global */
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "global_avgpool_forward", &k)) ||
          (st = clcnn__args(ctx, k, "global_avgpool_forward", MEM_ARG(y), MEM_ARG(x), INT_ARG(ny),
                            INT_ARG(nd->in[0]->h * nd->in[0]->w), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "global_avgpool_forward", ny, &x, 1, &y, 1);
  }
}

static clcnn_status pool2d_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct pool_state *s = nd->priv;
  size_t nx = (size_t)n * node_in_size(nd);
  cbuf *dy = nd->out->g, *dx = nd->dx[0], *idx = &s->idx;
  cl_kernel k;
  clcnn_status st;
  if (!dx) return CLCNN_SUCCESS;
  switch (nd->op->type) {
    case CLCNN_LAYER_MAXPOOL2D:
      if (pool_is_2x2(&s->p)) {
        if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2x2_backward", &k)) ||
            (st = clcnn__args(ctx, k, "maxpool2x2_backward", MEM_ARG(dx), MEM_ARG(dy), MEM_ARG(idx),
                              POOL2X2_ARGS(nd, n), (size_t)0)))
          return st;
        return clcnn__run(ctx, k, "maxpool2x2_backward", (size_t)n * nd->out->c * nd->out->h, (cbuf *[]){dy, idx}, 2,
                          &dx, 1);
      }
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "maxpool2d_backward", &k)) ||
          (st = clcnn__args(ctx, k, "maxpool2d_backward", MEM_ARG(dx), MEM_ARG(dy), MEM_ARG(idx), POOL_ARGS(nd, s, n),
                            (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "maxpool2d_backward", (size_t)n * nd->in[0]->c * nd->in[0]->h, (cbuf *[]){dy, idx}, 2,
                        &dx, 1);
    case CLCNN_LAYER_AVGPOOL2D:
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "avgpool2d_backward", &k)) ||
          (st = clcnn__args(ctx, k, "avgpool2d_backward", MEM_ARG(dx), MEM_ARG(dy), POOL_ARGS(nd, s, n), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "avgpool2d_backward", nx, &dy, 1, &dx, 1);
    default:
      if ((st = clcnn__kernel(ctx, KP_POOL2D, "global_avgpool_backward", &k)) ||
          (st = clcnn__args(ctx, k, "global_avgpool_backward", MEM_ARG(dx), MEM_ARG(dy),
                            INT_ARG((size_t)n * nd->in[0]->c), INT_ARG(nd->in[0]->h * nd->in[0]->w), (size_t)0)))
        return st;
      return clcnn__run(ctx, k, "global_avgpool_backward", nx, &dy, 1, &dx, 1);
  }
}

static void pool2d_describe(const struct node *nd, char *buf, size_t size) {
  const clcnn_pool2d_params *p = &((const struct pool_state *)nd->priv)->p;
  if (nd->op->type == CLCNN_LAYER_GLOBAL_AVGPOOL) {
    snprintf(buf, size, "global_avgpool");
    return;
  }
  snprintf(buf, size, "%s(kernel %dx%d, stride %dx%d, pad %dx%d)%s", nd->op->kind, p->kh, p->kw, p->stride_h,
           p->stride_w, p->pad_h, p->pad_w, nd->fused ? " (in the conv)" : "");
}

static tensor *pool(clcnn_net *net, const struct op *op, clcnn_tensor *x, const clcnn_pool2d_params *p,
                    const char *name) {
  struct pool_state s = {.p = p ? *p : (clcnn_pool2d_params){0}};
  return graph_add(net, op, &x, 1, name, &s, sizeof s);
}

static tensor *pool2d_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  const struct op *op = margs_op(A);
  clcnn_pool2d_params p = {0};
  if (op->npos) {
    if (margs_pair(A, 0, NULL, 1, &p.kh, &p.kw) < 0) return NULL;
    p.stride_h = p.kh, p.stride_w = p.kw; /* as in PyTorch */
    if (margs_pair(A, -1, "stride", 1, &p.stride_h, &p.stride_w) < 0 || margs_pair(A, -1, "pad", 0, &p.pad_h, &p.pad_w) < 0)
      return NULL;
  }
  return pool(net, op, in[0], &p, name);
}

#define POOL_OP(w, k, t)                                                                                        \
  .word = w, .kind = k, .type = t, .flags = OP_NO_BWD_X | OP_NO_BWD_Y, .priv_size = sizeof(struct pool_state), .min_in = 1, .max_in = 1,           \
  .parse = pool2d_parse, .setup = pool2d_setup, .alloc = pool2d_alloc, .release = pool2d_release,              \
  .forward = pool2d_forward, .backward = pool2d_backward, .describe = pool2d_describe
const struct op op_maxpool2d = {POOL_OP("maxpool", "maxpool2d", CLCNN_LAYER_MAXPOOL2D), .npos = 1, .pos = "K", .pos_what = {"kernel"},
                                .opts = {"stride", "pad"}, .usage = "maxpool K|KHxKW [stride=S] [pad=P]"};
const struct op op_avgpool2d = {POOL_OP("avgpool", "avgpool2d", CLCNN_LAYER_AVGPOOL2D), .npos = 1, .pos = "K", .pos_what = {"kernel"},
                                .opts = {"stride", "pad"}, .usage = "avgpool K|KHxKW [stride=S] [pad=P]"};
const struct op op_global_avgpool = {POOL_OP("globalavgpool", "global_avgpool", CLCNN_LAYER_GLOBAL_AVGPOOL),
                                     .usage = "globalavgpool"};

CLCNN_API clcnn_tensor *clcnn_maxpool2d(clcnn_net *net, clcnn_tensor *x, const clcnn_pool2d_params *p, const char *name) {
  if (net && !p) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "maxpool2d: params is NULL");
  return pool(net, &op_maxpool2d, x, p, name);
}
CLCNN_API clcnn_tensor *clcnn_avgpool2d(clcnn_net *net, clcnn_tensor *x, const clcnn_pool2d_params *p, const char *name) {
  if (net && !p) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "avgpool2d: params is NULL");
  return pool(net, &op_avgpool2d, x, p, name);
}
CLCNN_API clcnn_tensor *clcnn_global_avgpool(clcnn_net *net, clcnn_tensor *x, const char *name) {
  return pool(net, &op_global_avgpool, x, NULL, name);
}

static clcnn_status chain(clcnn_net *net, const struct op *op, const clcnn_pool2d_params *p, int need_p) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  if (need_p && !p) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "add pooling layer: params is NULL"), graph_status(net);
  return pool(net, op, clcnn_net_output(net), p, NULL) ? CLCNN_SUCCESS : graph_status(net);
}
CLCNN_API clcnn_status clcnn_net_add_maxpool2d(clcnn_net *net, const clcnn_pool2d_params *p) {
  return chain(net, &op_maxpool2d, p, 1);
}
CLCNN_API clcnn_status clcnn_net_add_avgpool2d(clcnn_net *net, const clcnn_pool2d_params *p) {
  return chain(net, &op_avgpool2d, p, 1);
}
CLCNN_API clcnn_status clcnn_net_add_global_avgpool(clcnn_net *net) { return chain(net, &op_global_avgpool, NULL, 0); }
