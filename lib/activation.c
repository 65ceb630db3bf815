/* lib/activation.c - relu, leaky relu, sigmoid, tanh (torch.nn.ReLU, LeakyReLU, Sigmoid, Tanh):
 * elementwise, one op each. Kernels in cl/activation.cl. */
#include <math.h>
#include <stdio.h>

#include "graph.h"

struct act_state {
  double slope; /* leaky relu */
};

static const char *const fwd_name[] = {
    [CLCNN_LAYER_RELU] = "relu_forward",
    [CLCNN_LAYER_LEAKY_RELU] = "leaky_relu_forward",
    [CLCNN_LAYER_SIGMOID] = "sigmoid_forward",
    [CLCNN_LAYER_TANH] = "tanh_forward",
};
static const char *const bwd_name[] = {
    [CLCNN_LAYER_RELU] = "relu_backward",
    [CLCNN_LAYER_LEAKY_RELU] = "leaky_relu_backward",
    [CLCNN_LAYER_SIGMOID] = "sigmoid_backward",
    [CLCNN_LAYER_TANH] = "tanh_backward",
};

static clcnn_status act_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct act_state *s = nd->priv;
  if (!isfinite(s->slope)) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "leaky_relu: slope %g is not finite", s->slope);
  nd->out->c = nd->in[0]->c, nd->out->h = nd->in[0]->h, nd->out->w = nd->in[0]->w;
  return CLCNN_SUCCESS;
}

static clcnn_status act_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  const struct act_state *s = nd->priv;
  const char *name = fwd_name[nd->op->type];
  size_t cnt = (size_t)n * tensor_size(nd->out);
  cbuf *x = nd->in[0]->v, *y = nd->out->v;
  cl_kernel k;
  clcnn_status st = clcnn__kernel(ctx, KP_ACTIVATION, name, &k);
  if (st) return st;
  if (nd->op->type == CLCNN_LAYER_LEAKY_RELU)
    st = clcnn__args(ctx, k, name, MEM_ARG(y), MEM_ARG(x), INT_ARG(cnt), REAL_ARG(ctx, s->slope), (size_t)0);
  else
    st = clcnn__args(ctx, k, name, MEM_ARG(y), MEM_ARG(x), INT_ARG(cnt), (size_t)0);
  if (st) return st;
  return clcnn__run(ctx, k, name, cnt, &x, 1, &y, 1);
}

static clcnn_status act_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  const struct act_state *s = nd->priv;
  const char *name = bwd_name[nd->op->type];
  size_t cnt = (size_t)n * tensor_size(nd->out);
  cbuf *dy = nd->out->g, *dx = nd->dx[0];
  if (!dx) return CLCNN_SUCCESS;
  /* leaky relu differentiates through its input, the others through their output */
  cbuf *via = nd->op->type == CLCNN_LAYER_LEAKY_RELU ? nd->in[0]->v : nd->out->v;
  cl_kernel k;
  clcnn_status st = clcnn__kernel(ctx, KP_ACTIVATION, name, &k);
  if (st) return st;
  if (nd->op->type == CLCNN_LAYER_LEAKY_RELU)
    st = clcnn__args(ctx, k, name, MEM_ARG(dx), MEM_ARG(dy), MEM_ARG(via), INT_ARG(cnt), REAL_ARG(ctx, s->slope),
                     (size_t)0);
  else
    st = clcnn__args(ctx, k, name, MEM_ARG(dx), MEM_ARG(dy), MEM_ARG(via), INT_ARG(cnt), (size_t)0);
  if (st) return st;
  return clcnn__run(ctx, k, name, cnt, (cbuf *[]){dy, via}, 2, &dx, 1);
}

static void act_describe(const struct node *nd, char *buf, size_t size) {
  const struct act_state *s = nd->priv;
  switch (nd->op->type) {
    case CLCNN_LAYER_LEAKY_RELU: snprintf(buf, size, "leaky_relu(%g)", s->slope); break;
    case CLCNN_LAYER_RELU: snprintf(buf, size, nd->fused ? "relu (in the conv)" : "relu"); break;
    default: snprintf(buf, size, "%s", nd->op->kind); break;
  }
}

static tensor *act_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name);

#define ACT_OP(var, w, k, t, f, o, u)                                                                          \
  const struct op var = {.word = w, .kind = k, .type = t, .flags = f, .priv_size = sizeof(struct act_state), .min_in = 1, \
                         .max_in = 1, .opts = o, .usage = u, .parse = act_parse, .setup = act_setup,          \
                         .forward = act_forward, .backward = act_backward, .describe = act_describe}
ACT_OP(op_relu, "relu", "relu", CLCNN_LAYER_RELU, OP_NO_BWD_X, {NULL}, "relu");
ACT_OP(op_leaky_relu, "leakyrelu", "leaky_relu", CLCNN_LAYER_LEAKY_RELU, OP_NO_BWD_Y, {"slope"}, "leakyrelu [slope=A]");
ACT_OP(op_sigmoid, "sigmoid", "sigmoid", CLCNN_LAYER_SIGMOID, OP_NO_BWD_X, {NULL}, "sigmoid");
ACT_OP(op_tanh, "tanh", "tanh", CLCNN_LAYER_TANH, OP_NO_BWD_X, {NULL}, "tanh");

static tensor *act(clcnn_net *net, const struct op *op, clcnn_tensor *x, double slope, const char *name) {
  struct act_state s = {.slope = slope};
  return graph_add(net, op, &x, 1, name, &s, sizeof s);
}

static tensor *act_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  double slope = 0.01; /* torch.nn.LeakyReLU's */
  const struct op *op = margs_op(A);
  if (op == &op_leaky_relu && margs_real(A, -1, "slope", &slope) < 0) return NULL;
  return act(net, op, in[0], slope, name);
}

CLCNN_API clcnn_tensor *clcnn_relu(clcnn_net *net, clcnn_tensor *x, const char *name) {
  return act(net, &op_relu, x, 0, name);
}
CLCNN_API clcnn_tensor *clcnn_leaky_relu(clcnn_net *net, clcnn_tensor *x, double slope, const char *name) {
  return act(net, &op_leaky_relu, x, slope, name);
}
CLCNN_API clcnn_tensor *clcnn_sigmoid(clcnn_net *net, clcnn_tensor *x, const char *name) {
  return act(net, &op_sigmoid, x, 0, name);
}
CLCNN_API clcnn_tensor *clcnn_tanh(clcnn_net *net, clcnn_tensor *x, const char *name) {
  return act(net, &op_tanh, x, 0, name);
}

static clcnn_status chain(clcnn_net *net, const struct op *op, double slope) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  return act(net, op, clcnn_net_output(net), slope, NULL) ? CLCNN_SUCCESS : graph_status(net);
}
CLCNN_API clcnn_status clcnn_net_add_relu(clcnn_net *net) { return chain(net, &op_relu, 0); }
CLCNN_API clcnn_status clcnn_net_add_leaky_relu(clcnn_net *net, double slope) {
  return chain(net, &op_leaky_relu, slope);
}
CLCNN_API clcnn_status clcnn_net_add_sigmoid(clcnn_net *net) { return chain(net, &op_sigmoid, 0); }
CLCNN_API clcnn_status clcnn_net_add_tanh(clcnn_net *net) { return chain(net, &op_tanh, 0); }
