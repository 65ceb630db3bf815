/* lib/reshape.c - views: flatten (torch.nn.Flatten) and reshape (a sample seen as C x H x W, as
 * Tensor.view(N, C, H, W)). No commands forward; backward passes the gradient through, by a copy
 * only when the input's gradient cannot be the view's own (another node reads the input). */
#include <stdio.h>

#include "graph.h"

struct reshape_state {
  int c, h, w; /* reshape's shape; flatten: 0 */
};

static clcnn_status reshape_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct reshape_state *s = nd->priv;
  const tensor *x = nd->in[0];
  if (nd->op->type == CLCNN_LAYER_FLATTEN) {
    nd->out->c = (int)tensor_size(x), nd->out->h = nd->out->w = 1;
    return CLCNN_SUCCESS;
  }
  if (s->c <= 0 || s->h <= 0 || s->w <= 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: shape (%d,%d,%d): every size must be positive", WHERE(nd), s->c,
                s->h, s->w);
  if ((size_t)s->c * s->h * s->w != tensor_size(x))
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: (%d,%d,%d) has %zu elements, its input (%d,%d,%d) %zu", WHERE(nd), s->c,
                s->h, s->w, (size_t)s->c * s->h * s->w, x->c, x->h, x->w, tensor_size(x));
  nd->out->c = s->c, nd->out->h = s->h, nd->out->w = s->w;
  return CLCNN_SUCCESS;
}

static clcnn_status reshape_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  if (!nd->dx[0]) return CLCNN_SUCCESS;
  return graph_copy(ctx, nd->dx[0], nd->out->g, (size_t)n * tensor_size(nd->out), 0);
}

static void reshape_describe(const struct node *nd, char *buf, size_t size) {
  if (nd->op->type == CLCNN_LAYER_FLATTEN) snprintf(buf, size, "flatten");
  else snprintf(buf, size, "reshape(%d,%d,%d)", nd->out->c, nd->out->h, nd->out->w);
}

static tensor *reshape_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  const struct op *op = margs_op(A);
  struct reshape_state s = {0};
  if (op->npos && (margs_int(A, 0, NULL, 1, &s.c) < 0 || margs_int(A, 1, NULL, 1, &s.h) < 0 ||
                   margs_int(A, 2, NULL, 1, &s.w) < 0))
    return NULL;
  return graph_add(net, op, in, 1, name, &s, sizeof s);
}

#define VIEW_OP(w, k, t)                                                                                         \
  .word = w, .kind = k, .type = t, .flags = OP_VIEW | OP_NO_BWD_X | OP_NO_BWD_Y, .priv_size = sizeof(struct reshape_state), .min_in = 1,     \
  .max_in = 1, .parse = reshape_parse, .setup = reshape_setup, .backward = reshape_backward,                    \
  .describe = reshape_describe
const struct op op_flatten = {VIEW_OP("flatten", "flatten", CLCNN_LAYER_FLATTEN), .usage = "flatten"};
const struct op op_reshape = {VIEW_OP("reshape", "reshape", CLCNN_LAYER_RESHAPE), .npos = 3, .pos = "C H W", .pos_what = {"C", "H", "W"},
                              .usage = "reshape C H W"};

CLCNN_API clcnn_tensor *clcnn_flatten(clcnn_net *net, clcnn_tensor *x, const char *name) {
  struct reshape_state s = {0};
  return graph_add(net, &op_flatten, &x, 1, name, &s, sizeof s);
}
CLCNN_API clcnn_tensor *clcnn_reshape(clcnn_net *net, clcnn_tensor *x, int c, int h, int w, const char *name) {
  struct reshape_state s = {c, h, w};
  return graph_add(net, &op_reshape, &x, 1, name, &s, sizeof s);
}
CLCNN_API clcnn_status clcnn_net_add_flatten(clcnn_net *net) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  return clcnn_flatten(net, clcnn_net_output(net), NULL) ? CLCNN_SUCCESS : graph_status(net);
}
