/* lib/dropout.c - inverted dropout (torch.nn.Dropout). Kernels in cl/dropout.cl. */
#include <math.h>
#include <stdio.h>

#include "graph.h"

struct dropout_state {
  double p;
  cbuf mask;
};

static clcnn_status dropout_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct dropout_state *s = nd->priv;
  if (!(s->p >= 0 && s->p < 1))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: p %g must be in [0, 1)", WHERE(nd), s->p);
  nd->out->c = nd->in[0]->c, nd->out->h = nd->in[0]->h, nd->out->w = nd->in[0]->w;
  return CLCNN_SUCCESS;
}

static clcnn_status dropout_alloc(struct plan *pl, struct node *nd, int max_batch) {
  struct dropout_state *s = nd->priv;
  return plan_buf(pl, PLAN_SCRATCH(pl), &s->mask, (size_t)max_batch * node_in_size(nd) * pl->ctx->esz, "dropout mask");
}

static void dropout_release(struct node *nd) { cbuf_free(&((struct dropout_state *)nd->priv)->mask); }

static clcnn_status dropout_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct dropout_state *s = nd->priv;
  size_t cnt = (size_t)n * node_in_size(nd);
  cbuf *x = nd->in[0]->v, *y = nd->out->v;
  cl_kernel k;
  clcnn_status st;
  if (!nd->training) return graph_copy(ctx, y, x, cnt, 0);
  /* element i of the batch is element first * size + i of the global batch: the mask's formula
   * (key + golden * (i + 1), cl/dropout.cl) takes the offset into the key */
  cl_ulong key = nd->key + 0x9e3779b97f4a7c15ull * ((uint64_t)graph_batch_offset(nd->net) * (uint64_t)node_in_size(nd));
  if ((st = clcnn__kernel(ctx, KP_DROPOUT, "dropout_forward", &k)) ||
      (st = clcnn__args(ctx, k, "dropout_forward", MEM_ARG(y), MEM_ARG(&s->mask), MEM_ARG(x), INT_ARG(cnt),
                        REAL_ARG(ctx, s->p), REAL_ARG(ctx, 1.0 / (1.0 - s->p)), sizeof key, (void *)&key, (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "dropout_forward", cnt, &x, 1, (cbuf *[]){y, &s->mask}, 2);
}

static clcnn_status dropout_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct dropout_state *s = nd->priv;
  size_t cnt = (size_t)n * node_in_size(nd);
  cbuf *dy = nd->out->g, *dx = nd->dx[0];
  cl_kernel k;
  clcnn_status st;
  if (!dx) return CLCNN_SUCCESS;
  if (!nd->training) return graph_copy(ctx, dx, dy, cnt, 0);
  if ((st = clcnn__kernel(ctx, KP_DROPOUT, "dropout_backward", &k)) ||
      (st = clcnn__args(ctx, k, "dropout_backward", MEM_ARG(dx), MEM_ARG(dy), MEM_ARG(&s->mask), INT_ARG(cnt),
                        (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "dropout_backward", cnt, (cbuf *[]){dy, &s->mask}, 2, &dx, 1);
}

static void dropout_describe(const struct node *nd, char *buf, size_t size) {
  snprintf(buf, size, "dropout(p %g)", ((const struct dropout_state *)nd->priv)->p);
}

static tensor *dropout_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  double p = 0.5;
  int r = margs_real(A, -1, "p", &p);
  if (r < 0) return NULL;
  if (r && !(p >= 0 && p < 1)) return margs_error(A, "p", "expected dropout's p in [0, 1)");
  return clcnn_dropout(net, in[0], p, name);
}

const struct op op_dropout = {
    .word = "dropout", .kind = "dropout", .type = CLCNN_LAYER_DROPOUT, .flags = OP_RANDOM | OP_NO_BWD_X | OP_NO_BWD_Y,
    .priv_size = sizeof(struct dropout_state), .min_in = 1, .max_in = 1, .opts = {"p"}, .usage = "dropout [p=P]",
    .parse = dropout_parse, .setup = dropout_setup, .alloc = dropout_alloc, .release = dropout_release,
    .forward = dropout_forward, .backward = dropout_backward, .describe = dropout_describe,
};

CLCNN_API clcnn_tensor *clcnn_dropout(clcnn_net *net, clcnn_tensor *x, double p, const char *name) {
  struct dropout_state s = {.p = p};
  return graph_add(net, &op_dropout, &x, 1, name, &s, sizeof s);
}

CLCNN_API clcnn_status clcnn_net_add_dropout(clcnn_net *net, double p) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  return clcnn_dropout(net, clcnn_net_output(net), p, NULL) ? CLCNN_SUCCESS : graph_status(net);
}
