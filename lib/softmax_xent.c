/* lib/softmax_xent.c - the cross-entropy loss node (torch.nn.CrossEntropyLoss, mean reduction):
 * over class labels per sample on (N,K) logits, or per position on (N,C,H,W) logits with labels
 * (N,H,W); labels equal to the ignore index count for nothing. Kernels in cl/softmax_xent.cl. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"

struct xent_state {
  int ignore; /* ignore_index */
  int flat;   /* every element of a sample is a class (a net's default loss, as before graphs) */
  int k, p;   /* classes, positions per sample */
  int count;  /* labels not ignored in this batch */
  cbuf labels, losses, hits, loss;
};

static const struct xent_state defaults = {.ignore = -100, .flat = 1};

static clcnn_status xent_setup(clcnn_ctx *ctx, struct node *nd) {
  struct xent_state *s = nd->priv;
  const tensor *x = nd->in[0];
  if (s->flat || (x->h == 1 && x->w == 1)) s->k = (int)tensor_size(x), s->p = 1;
  else s->k = x->c, s->p = x->h * x->w;
  if (!(nd->weight >= 0) || nd->weight > 1e300)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: weight %g must be finite and non-negative", WHERE(nd), nd->weight);
  return CLCNN_SUCCESS;
}

static clcnn_status xent_alloc(struct plan *pl, struct node *nd, int B) {
  struct xent_state *s = nd->priv;
  size_t e = pl->ctx->esz, m = (size_t)B * s->p;
  clcnn_status st;
  if ((st = plan_buf(pl, PLAN_ACT(pl), &s->labels, m * sizeof(cl_int), "labels")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->losses, m * e, "losses")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->loss, e, "loss")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->hits, m * e, "hits")))
    return st;
  return CLCNN_SUCCESS;
}

static void xent_release(struct node *nd) {
  struct xent_state *s = nd->priv;
  cbuf_free(&s->labels), cbuf_free(&s->losses), cbuf_free(&s->loss), cbuf_free(&s->hits);
}

static clcnn_status xent_targets(clcnn_ctx *ctx, struct node *nd, const void *targets, int n) {
  struct xent_state *s = nd->priv;
  const int32_t *labels = targets;
  size_t m = (size_t)n * s->p;
  int count = 0;
  for (size_t i = 0; i < m; i++) {
    if (labels[i] == s->ignore) continue;
    if (labels[i] < 0 || labels[i] >= s->k) {
      if (s->p == 1)
        return FAIL(ctx, CLCNN_ERR_LABEL, "label %d of sample %zu is outside 0..%d (the net has %d outputs)",
                    (int)labels[i], i, s->k - 1, s->k);
      return FAIL(ctx, CLCNN_ERR_LABEL, "%s: label %d of sample %zu at position %zu is outside 0..%d and not the "
                  "ignore index %d", WHERE(nd), (int)labels[i], i / s->p, i % s->p, s->k - 1, s->ignore);
    }
    count++;
  }
  clcnn_status st = clcnn__write(ctx, &s->labels, 0, m * sizeof(cl_int), labels, "labels");
  if (st) return st;
  s->count = count;
  nd->have_targets = 1;
  return CLCNN_SUCCESS;
}

static clcnn_status xent_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct xent_state *s = nd->priv;
  cbuf *logits = nd->in[0]->v, *d = nd->dx[0];
  cl_kernel k;
  clcnn_status st;
  if (s->p == 1 && nd->weight == 1 && s->count == n) { /* every sample counts: the loss with the training sums */
    cbuf *stats = graph_train_stats(nd->net);
    if ((st = clcnn__kernel(ctx, KP_SOFTMAX_XENT, "softmax_xent_forward_backward", &k)) ||
        (st = clcnn__args(ctx, k, "softmax_xent_forward_backward", MEM_ARG(&s->losses), MEM_ARG(&s->hits), MEM_ARG(d),
                          MEM_ARG(logits), MEM_ARG(&s->labels), INT_ARG(n), INT_ARG(s->k), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "softmax_xent_forward_backward", n, (cbuf *[]){logits, &s->labels}, 2,
                         (cbuf *[]){&s->losses, &s->hits, d}, 3)) ||
        (st = clcnn__kernel(ctx, KP_SOFTMAX_XENT, "softmax_xent_mean", &k)) ||
        (st = clcnn__args(ctx, k, "softmax_xent_mean", MEM_ARG(&s->loss), MEM_ARG(stats), MEM_ARG(&s->losses),
                          MEM_ARG(&s->hits), INT_ARG(n), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "softmax_xent_mean", 1, (cbuf *[]){&s->losses, &s->hits, stats}, 3,
                         (cbuf *[]){&s->loss, stats}, 2)))
      return st;
    return CLCNN_SUCCESS;
  }
  /* PyTorch's mean over no labels at all is NaN: so is this (0/0) */
  double inv = s->count ? 1.0 / s->count : 0.0 / 0.0;
  size_t np = (size_t)n * s->p;
  /* one label per sample: the training sums count the samples not ignored, unweighted */
  cbuf *stats = graph_train_stats(nd->net);
  int samples = s->p == 1 ? s->count : -1;
  if ((st = clcnn__kernel(ctx, KP_SOFTMAX_XENT, "xent_pixels", &k)) ||
      (st = clcnn__args(ctx, k, "xent_pixels", MEM_ARG(&s->losses), MEM_ARG(&s->hits), MEM_ARG(d), MEM_ARG(logits),
                        MEM_ARG(&s->labels), INT_ARG(np), INT_ARG(s->k), INT_ARG(s->p), INT_ARG(s->ignore),
                        REAL_ARG(ctx, nd->weight * inv), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "xent_pixels", np, (cbuf *[]){logits, &s->labels}, 2,
                       (cbuf *[]){&s->losses, &s->hits, d}, 3)) ||
      (st = clcnn__kernel(ctx, KP_SOFTMAX_XENT, "xent_pixels_mean", &k)) ||
      (st = clcnn__args(ctx, k, "xent_pixels_mean", MEM_ARG(&s->loss), MEM_ARG(stats), MEM_ARG(&s->losses),
                        MEM_ARG(&s->hits), INT_ARG(np), REAL_ARG(ctx, inv), INT_ARG(samples), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "xent_pixels_mean", 1, (cbuf *[]){&s->losses, &s->hits, stats}, 3,
                       (cbuf *[]){&s->loss, stats}, 2)))
    return st;
  return CLCNN_SUCCESS;
}

static clcnn_status xent_value(clcnn_ctx *ctx, struct node *nd, double *v) {
  return graph_read_loss(ctx, &((struct xent_state *)nd->priv)->loss, v);
}

static cbuf *xent_target_buf(struct node *nd) { return &((struct xent_state *)nd->priv)->labels; }

static void xent_target_shape(const struct node *nd, int *classes, int *per_sample) {
  const struct xent_state *s = nd->priv;
  *classes = s->k, *per_sample = s->p;
}

static void xent_describe(const struct node *nd, char *buf, size_t size) {
  const struct xent_state *s = nd->priv;
  snprintf(buf, size, "cross_entropy(%s, %d classes%s, ignore %d, weight %g)", nd->in[0]->name, s->k,
           s->p > 1 ? " per position" : "", s->ignore, nd->weight);
}

static tensor *xent_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  int ignore = -100;
  double weight = 1;
  if (margs_int(A, -1, "ignore", INT_MIN, &ignore) < 0 || margs_real(A, -1, "weight", &weight) < 0) return NULL;
  return clcnn_xent_loss(net, in[0], ignore, weight, name);
}

const struct op op_xent = {
    .word = "xent", .kind = "cross_entropy", .type = CLCNN_LAYER_XENT_LOSS, .flags = OP_LOSS | OP_DEFAULT_LOSS,
    .priv_size = sizeof(struct xent_state), .defaults = &defaults, .min_in = 1, .max_in = 1,
    .opts = {"ignore", "weight"}, .usage = "xent(X) [ignore=I] [weight=W]", .parse = xent_parse,
    .setup = xent_setup, .alloc = xent_alloc, .release = xent_release, .backward = xent_backward,
    .describe = xent_describe, .targets = xent_targets, .value = xent_value, .target_buf = xent_target_buf,
    .target_shape = xent_target_shape,
};

CLCNN_API clcnn_tensor *clcnn_xent_loss(clcnn_net *net, clcnn_tensor *logits, int ignore_index, double weight,
                                        const char *name) {
  struct xent_state s = {.ignore = ignore_index};
  return graph_add_loss(net, &op_xent, logits, weight, name, &s, sizeof s);
}
