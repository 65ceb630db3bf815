/* lib/linear.c - fully connected layer (torch.nn.Linear): y = x W^T + b, through the GEMMs. */
#include <limits.h>
#include <stdio.h>

#include "graph.h"

struct linear_state {
  int out, bias;
};

static clcnn_status linear_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct linear_state *s = nd->priv;
  const tensor *x = nd->in[0];
  if (s->out <= 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: out_features %d must be positive", WHERE(nd), s->out);
  if (x->h != 1 || x->w != 1)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "%s: its input must be flat (features,1,1), got (%d,%d,%d): add a flatten layer before it", WHERE(nd),
                x->c, x->h, x->w);
  if ((size_t)s->out * x->c > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: %d x %d is too large", WHERE(nd), s->out, x->c);
  nd->out->c = s->out, nd->out->h = nd->out->w = 1;
  int wd[2] = {s->out, x->c};
  node_param(nd, "weight", 2, wd, PINIT_WEIGHT, x->c, s->out);
  if (s->bias) node_param(nd, "bias", 1, wd, PINIT_BIAS, x->c, s->out);
  return CLCNN_SUCCESS;
}

static clcnn_status linear_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  size_t in = nd->in[0]->c, out = nd->out->c;
  cbuf *x = nd->in[0]->v, *y = nd->out->v, *w = &nd->par[0].v;
  clcnn_status st;
  /* y (n,OUT) = x (n,IN) W^T (IN,OUT) */
  if ((st = clcnn__gemm(ctx, "linear forward", 0, 1, n, out, in, 1.0, x, 0, in, w, 0, in, 0.0, y, 0, out))) return st;
  if (nd->npar < 2) return CLCNN_SUCCESS;
  cbuf *b = &nd->par[1].v;
  cl_kernel k;
  if ((st = clcnn__kernel(ctx, KP_UTIL, "bias_add", &k)) ||
      (st = clcnn__args(ctx, k, "bias_add", MEM_ARG(y), MEM_ARG(b), INT_ARG(n), INT_ARG(out), INT_ARG(1), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "bias_add", n * out, &b, 1, &y, 1)))
    return st;
  return CLCNN_SUCCESS;
}

static clcnn_status linear_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  size_t in = nd->in[0]->c, out = nd->out->c;
  cbuf *x = nd->in[0]->v, *dy = nd->out->g, *dx = nd->dx[0];
  clcnn_status st;
  cl_kernel k;
  /* db (OUT) += sum over n of dy */
  if (nd->npar > 1) {
    cbuf *db = &nd->par[1].g;
    if ((st = clcnn__kernel(ctx, KP_UTIL, "bias_grad", &k)) ||
        (st = clcnn__args(ctx, k, "bias_grad", MEM_ARG(db), MEM_ARG(dy), INT_ARG(n), INT_ARG(out), INT_ARG(1),
                          (size_t)0)) ||
        (st = clcnn__run(ctx, k, "bias_grad", out, &dy, 1, &db, 1)))
      return st;
  }
  /* dW (OUT,IN) += dy^T (OUT,n) x (n,IN) */
  if ((st = clcnn__gemm(ctx, "linear weight grad", 1, 0, out, in, n, 1.0, dy, 0, out, x, 0, in, 1.0, &nd->par[0].g, 0,
                        in)))
    return st;
  if (!dx) return CLCNN_SUCCESS;
  /* dx (n,IN) = dy (n,OUT) W (OUT,IN) */
  return clcnn__gemm(ctx, "linear input grad", 0, 0, n, in, out, 1.0, dy, 0, out, &nd->par[0].v, 0, in, 0.0, dx, 0, in);
}

static void linear_need(clcnn_ctx *ctx, const struct node *nd, int n, struct scratch_need *need) {
  size_t in = nd->in[0]->c, o = nd->out->c, B = n;
  clcnn__gemm_need(ctx, 0, 1, B, o, in, need);
  clcnn__gemm_need(ctx, 1, 0, o, in, B, need);
  if (nd->in[0]->needs_grad) clcnn__gemm_need(ctx, 0, 0, B, in, o, need);
}

static void linear_describe(const struct node *nd, char *buf, size_t size) {
  snprintf(buf, size, "linear(%d->%d%s)", nd->in[0]->c, nd->out->c, nd->npar > 1 ? "" : ", no bias");
}

static tensor *linear_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  int out, bias = 1;
  if (margs_int(A, 0, NULL, 1, &out) < 0 || margs_bool(A, "bias", &bias) < 0) return NULL;
  return clcnn_linear(net, in[0], out, bias, name);
}

const struct op op_linear = {
    .word = "linear", .kind = "linear", .type = CLCNN_LAYER_LINEAR, .flags = OP_NO_BWD_Y, .priv_size = sizeof(struct linear_state),
    .min_in = 1, .max_in = 1, .npos = 1, .pos = "OUT", .pos_what = {"output features"}, .opts = {"bias"}, .usage = "linear OUT [bias=0|1]",
    .parse = linear_parse, .setup = linear_setup, .need = linear_need, .forward = linear_forward,
    .backward = linear_backward, .describe = linear_describe,
};

CLCNN_API clcnn_tensor *clcnn_linear(clcnn_net *net, clcnn_tensor *x, int out_features, int bias, const char *name) {
  struct linear_state s = {.out = out_features, .bias = bias != 0};
  return graph_add(net, &op_linear, &x, 1, name, &s, sizeof s);
}

CLCNN_API clcnn_status clcnn_net_add_linear(clcnn_net *net, int out_features, int bias) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  return clcnn_linear(net, clcnn_net_output(net), out_features, bias, NULL) ? CLCNN_SUCCESS : graph_status(net);
}
