/* lib/loss.c - elementwise losses with mean reduction over every element of the batch:
 * torch.nn.BCEWithLogitsLoss, MSELoss and SmoothL1Loss(beta). The targets are reals of the
 * context's precision, one per element of the input, checked on the host (finite; in [0, 1]
 * for BCE). backward computes the loss and writes weight * dL/dx to dx[0]. Kernels in
 * cl/loss.cl. */
#include <math.h>
#include <stdio.h>

#include "graph.h"

/* Work-items of a loss kernel at most: each takes every LOSS_PARTS-th element and sums its
 * losses into a part; one work-item then adds the parts. The split depends on the element count
 * only, so the loss is the same on every run. */
#define LOSS_PARTS 1024

struct loss_state {
  double beta; /* smooth L1 */
  cbuf targets, part, loss;
};

static const char *kernel_of(const struct node *nd) {
  switch (nd->op->type) {
  case CLCNN_LAYER_BCE_LOSS: return "bce_loss";
  case CLCNN_LAYER_MSE_LOSS: return "mse_loss";
  default: return "smoothl1_loss";
  }
}

static size_t parts_of(size_t m) { return m < LOSS_PARTS ? m : LOSS_PARTS; }

static clcnn_status loss_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct loss_state *s = nd->priv;
  if (!(nd->weight >= 0) || !isfinite(nd->weight))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: weight %g must be finite and non-negative", WHERE(nd), nd->weight);
  if (nd->op->type == CLCNN_LAYER_SMOOTHL1_LOSS && (!(s->beta >= 0) || !isfinite(s->beta)))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: beta %g must be finite and non-negative (0: L1)", WHERE(nd),
                s->beta);
  return CLCNN_SUCCESS;
}

static clcnn_status loss_alloc(struct plan *pl, struct node *nd, int B) {
  struct loss_state *s = nd->priv;
  size_t e = pl->ctx->esz, m = (size_t)B * node_in_size(nd);
  clcnn_status st;
  if ((st = plan_buf(pl, PLAN_ACT(pl), &s->targets, m * e, "targets")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->part, parts_of(m) * e, "loss parts")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->loss, e, "loss")))
    return st;
  return CLCNN_SUCCESS;
}

static void loss_release(struct node *nd) {
  struct loss_state *s = nd->priv;
  cbuf_free(&s->targets), cbuf_free(&s->part), cbuf_free(&s->loss);
}

static clcnn_status loss_targets(clcnn_ctx *ctx, struct node *nd, const void *targets, int n) {
  struct loss_state *s = nd->priv;
  size_t size = (size_t)node_in_size(nd), m = (size_t)n * size;
  int dbl = ctx->prec == CLCNN_DOUBLE, bce = nd->op->type == CLCNN_LAYER_BCE_LOSS;
  for (size_t i = 0; i < m; i++) {
    double t = dbl ? ((const double *)targets)[i] : ((const float *)targets)[i];
    if (!isfinite(t))
      return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: target %g of sample %zu at element %zu is not finite",
                  WHERE(nd), t, i / size, i % size);
    if (bce && !(t >= 0 && t <= 1))
      return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: target %g of sample %zu at element %zu is outside [0, 1] "
                  "(BCE's targets are probabilities)", WHERE(nd), t, i / size, i % size);
  }
  clcnn_status st = clcnn__write(ctx, &s->targets, 0, m * ctx->esz, targets, "targets");
  if (st) return st;
  nd->have_targets = 1;
  return CLCNN_SUCCESS;
}

static clcnn_status loss_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct loss_state *s = nd->priv;
  cbuf *x = nd->in[0]->v, *d = nd->dx[0];
  size_t m = (size_t)n * node_in_size(nd), parts = parts_of(m);
  const char *name = kernel_of(nd);
  double scale = nd->weight / (double)m;
  cl_kernel k;
  clcnn_status st = clcnn__kernel(ctx, KP_LOSS, name, &k);
  if (st) return st;
  if (nd->op->type == CLCNN_LAYER_SMOOTHL1_LOSS)
    st = clcnn__args(ctx, k, name, MEM_ARG(&s->part), MEM_ARG(d), MEM_ARG(x), MEM_ARG(&s->targets), INT_ARG(m),
                     INT_ARG(parts), REAL_ARG(ctx, scale), REAL_ARG(ctx, s->beta), (size_t)0);
  else
    st = clcnn__args(ctx, k, name, MEM_ARG(&s->part), MEM_ARG(d), MEM_ARG(x), MEM_ARG(&s->targets), INT_ARG(m),
                     INT_ARG(parts), REAL_ARG(ctx, scale), (size_t)0);
  if (st || (st = clcnn__run(ctx, k, name, parts, (cbuf *[]){x, &s->targets}, 2, (cbuf *[]){&s->part, d}, 2)) ||
      (st = clcnn__kernel(ctx, KP_LOSS, "loss_mean", &k)) ||
      (st = clcnn__args(ctx, k, "loss_mean", MEM_ARG(&s->loss), MEM_ARG(&s->part), INT_ARG(parts), INT_ARG(m),
                        (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "loss_mean", 1, (cbuf *[]){&s->part}, 1, (cbuf *[]){&s->loss}, 1);
}

static clcnn_status loss_value(clcnn_ctx *ctx, struct node *nd, double *v) {
  return graph_read_loss(ctx, &((struct loss_state *)nd->priv)->loss, v);
}

static cbuf *loss_target_buf(struct node *nd) { return &((struct loss_state *)nd->priv)->targets; }

static void loss_describe(const struct node *nd, char *buf, size_t size) {
  const struct loss_state *s = nd->priv;
  if (nd->op->type == CLCNN_LAYER_SMOOTHL1_LOSS)
    snprintf(buf, size, "%s(%s, beta %g, weight %g)", nd->op->kind, nd->in[0]->name, s->beta, nd->weight);
  else
    snprintf(buf, size, "%s(%s, weight %g)", nd->op->kind, nd->in[0]->name, nd->weight);
}

static tensor *loss_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  (void)nin;
  const struct op *op = margs_op(A);
  double weight = 1, beta = 1;
  if (margs_real(A, -1, "weight", &weight) < 0) return NULL;
  switch (op->type) {
  case CLCNN_LAYER_BCE_LOSS: return clcnn_bce_loss(net, in[0], weight, name);
  case CLCNN_LAYER_MSE_LOSS: return clcnn_mse_loss(net, in[0], weight, name);
  default:
    if (margs_real(A, -1, "beta", &beta) < 0) return NULL;
    return clcnn_smoothl1_loss(net, in[0], beta, weight, name);
  }
}

#define LOSS_OP(WORD, KIND, TYPE)                                                                                   \
  .word = WORD, .kind = KIND, .type = TYPE, .flags = OP_LOSS, .priv_size = sizeof(struct loss_state), .min_in = 1, \
  .max_in = 1, .parse = loss_parse, .setup = loss_setup, .alloc = loss_alloc, .release = loss_release,             \
  .backward = loss_backward, .describe = loss_describe, .targets = loss_targets, .value = loss_value,             \
  .target_buf = loss_target_buf
const struct op op_bce = {LOSS_OP("bce", "bce_with_logits", CLCNN_LAYER_BCE_LOSS), .opts = {"weight"},
                          .usage = "bce(X) [weight=W]"};
const struct op op_mse = {LOSS_OP("mse", "mse", CLCNN_LAYER_MSE_LOSS), .opts = {"weight"},
                          .usage = "mse(X) [weight=W]"};
const struct op op_smoothl1 = {LOSS_OP("smoothl1", "smooth_l1", CLCNN_LAYER_SMOOTHL1_LOSS),
                               .opts = {"beta", "weight"}, .usage = "smoothl1(X) [beta=B] [weight=W]"};

CLCNN_API clcnn_tensor *clcnn_bce_loss(clcnn_net *net, clcnn_tensor *x, double weight, const char *name) {
  struct loss_state s = {0};
  return graph_add_loss(net, &op_bce, x, weight, name, &s, sizeof s);
}
CLCNN_API clcnn_tensor *clcnn_mse_loss(clcnn_net *net, clcnn_tensor *x, double weight, const char *name) {
  struct loss_state s = {0};
  return graph_add_loss(net, &op_mse, x, weight, name, &s, sizeof s);
}
CLCNN_API clcnn_tensor *clcnn_smoothl1_loss(clcnn_net *net, clcnn_tensor *x, double beta, double weight,
                                            const char *name) {
  struct loss_state s = {.beta = beta};
  return graph_add_loss(net, &op_smoothl1, x, weight, name, &s, sizeof s);
}
