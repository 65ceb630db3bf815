/* lib/add.c - the elementwise sum of two tensors of the same shape (a + b, as a residual
 * connection is written in PyTorch). Kernel in cl/add.cl; backward hands dy to both inputs. */
#include <stdio.h>

#include "graph.h"

static clcnn_status add_setup(clcnn_ctx *ctx, struct node *nd) {
  const tensor *a = nd->in[0], *b = nd->in[1];
  if (a->c != b->c || a->h != b->h || a->w != b->w)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: shapes (%d,%d,%d) and (%d,%d,%d) differ", WHERE(nd), a->c, a->h, a->w,
                b->c, b->h, b->w);
  nd->out->c = a->c, nd->out->h = a->h, nd->out->w = a->w;
  return CLCNN_SUCCESS;
}

static clcnn_status add_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  size_t cnt = (size_t)n * tensor_size(nd->out);
  cbuf *a = nd->in[0]->v, *b = nd->in[1]->v, *y = nd->out->v;
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_ADD, "add_forward", &k)) ||
      (st = clcnn__args(ctx, k, "add_forward", MEM_ARG(y), MEM_ARG(a), MEM_ARG(b), INT_ARG(cnt), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "add_forward", cnt, (cbuf *[]){a, b}, 2, &y, 1);
}

/* d(a + b)/da = d(a + b)/db = 1: each wanted input gradient is a copy of dy (add(x, x) gets two
 * copies, which the graph sums). */
static clcnn_status add_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  size_t cnt = (size_t)n * tensor_size(nd->out);
  clcnn_status st;
  for (int i = 0; i < 2; i++)
    if (nd->dx[i] && (st = graph_copy(ctx, nd->dx[i], nd->out->g, cnt, 0))) return st;
  return CLCNN_SUCCESS;
}

static void add_describe(const struct node *nd, char *buf, size_t size) {
  (void)nd;
  snprintf(buf, size, "add");
}

static tensor *add_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  (void)A, (void)nin;
  return clcnn_add(net, in[0], in[1], name);
}

const struct op op_add = {
    .word = "add", .kind = "add", .type = CLCNN_LAYER_ADD, .flags = OP_NO_BWD_X | OP_NO_BWD_Y, .min_in = 2, .max_in = 2, .usage = "add(A, B)",
    .parse = add_parse, .setup = add_setup, .forward = add_forward, .backward = add_backward,
    .describe = add_describe,
};

CLCNN_API clcnn_tensor *clcnn_add(clcnn_net *net, clcnn_tensor *a, clcnn_tensor *b, const char *name) {
  return graph_add(net, &op_add, (tensor *[]){a, b}, 2, name, NULL, 0);
}
