/* lib/batchnorm.c - batch normalisation (torch.nn.BatchNorm1d/2d). Kernels in cl/batchnorm.cl. */
#include <math.h>
#include <stdio.h>

#include "graph.h"

struct bn_state {
  double eps, momentum;
  cbuf mean, invstd; /* the batch's statistics */
  cbuf t;            /* the sums of the backward pass (2C) */
};

static clcnn_status batchnorm_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct bn_state *s = nd->priv;
  if (!(s->eps > 0) || !isfinite(s->eps) || !(s->momentum > 0 && s->momentum <= 1))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: eps %g must be positive and momentum %g in (0, 1]", WHERE(nd),
                s->eps, s->momentum);
  nd->out->c = nd->in[0]->c, nd->out->h = nd->in[0]->h, nd->out->w = nd->in[0]->w;
  int c[1] = {nd->in[0]->c};
  node_param(nd, "weight", 1, c, PINIT_ONE, 0, 0);
  node_param(nd, "bias", 1, c, PINIT_ZERO, 0, 0);
  node_buffer(nd, "running_mean", 1, c, PINIT_ZERO);
  node_buffer(nd, "running_var", 1, c, PINIT_ONE);
  nd->has_nbt = 1;
  return CLCNN_SUCCESS;
}

static clcnn_status batchnorm_alloc(struct plan *pl, struct node *nd, int max_batch) {
  struct bn_state *s = nd->priv;
  size_t c = nd->in[0]->c, e = pl->ctx->esz;
  clcnn_status st;
  if ((st = plan_buf(pl, PLAN_SCRATCH(pl), &s->mean, c * e, "batchnorm mean")) ||
      (st = plan_buf(pl, PLAN_SCRATCH(pl), &s->invstd, c * e, "batchnorm invstd")) ||
      (st = plan_buf(pl, PLAN_SCRATCH(pl), &s->t, 2 * c * e, "batchnorm sums")))
    return st;
  return CLCNN_SUCCESS;
}

static void batchnorm_release(struct node *nd) {
  struct bn_state *s = nd->priv;
  cbuf_free(&s->mean), cbuf_free(&s->invstd), cbuf_free(&s->t);
}

/* Samples per work-item of the partial sums: enough work-items over the channels (about 256)
 * for every core or compute unit, each summing whole planes. */
static int bn_chunk(int n, int c) {
  int parts = 256 / c;
  if (parts < 1) parts = 1;
  if (parts > n) parts = n;
  return (n + parts - 1) / parts;
}

static clcnn_status batchnorm_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct bn_state *s = nd->priv;
  cbuf *x = nd->in[0]->v;
  int c = nd->in[0]->c, p = nd->in[0]->h * nd->in[0]->w;
  cl_kernel k;
  clcnn_status st;
  if (nd->training) {
    int chunk = bn_chunk(n, c), items = (n + chunk - 1) / chunk * c;
    cbuf *part = clcnn__scratch(ctx);
    if ((st = clcnn__reserve(ctx, part, 2 * (size_t)items * ctx->esz, "batchnorm partial sums")) ||
        (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_part_sum", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_part_sum", MEM_ARG(part), MEM_ARG(x), INT_ARG(n), INT_ARG(c), INT_ARG(p),
                          INT_ARG(chunk), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_part_sum", items, &x, 1, &part, 1)) ||
        (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_part_var", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_part_var", MEM_ARG(part), MEM_ARG(x), INT_ARG(n), INT_ARG(c), INT_ARG(p),
                          INT_ARG(chunk), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_part_var", items, (cbuf *[]){x, part}, 2, &part, 1)) ||
        (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_stats", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_stats", MEM_ARG(&s->mean), MEM_ARG(&s->invstd),
                          MEM_ARG(&nd->buf[0].v), MEM_ARG(&nd->buf[1].v), MEM_ARG(part), INT_ARG(n), INT_ARG(c),
                          INT_ARG(p), INT_ARG(chunk), REAL_ARG(ctx, s->eps), REAL_ARG(ctx, s->momentum), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_stats", c, &part, 1,
                         (cbuf *[]){&s->mean, &s->invstd, &nd->buf[0].v, &nd->buf[1].v}, 4)))
      return st;
    nd->nbt++;
  } else {
    if ((st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_eval_invstd", &k)) ||
        (st = clcnn__args(ctx, k, "batchnorm_eval_invstd", MEM_ARG(&s->invstd), MEM_ARG(&nd->buf[1].v),
                          INT_ARG(c), REAL_ARG(ctx, s->eps), (size_t)0)) ||
        (st = clcnn__run(ctx, k, "batchnorm_eval_invstd", c, (cbuf *[]){&nd->buf[1].v}, 1,
                         (cbuf *[]){&s->invstd}, 1)))
      return st;
  }
  cbuf *mean = nd->training ? &s->mean : &nd->buf[0].v;
  if ((st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_forward", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_forward", MEM_ARG(nd->out->v), MEM_ARG(x), MEM_ARG(mean),
                        MEM_ARG(&s->invstd), MEM_ARG(&nd->par[0].v), MEM_ARG(&nd->par[1].v), INT_ARG(n), INT_ARG(c),
                        INT_ARG(p), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_forward", (size_t)n * c,
                       (cbuf *[]){x, mean, &s->invstd, &nd->par[0].v, &nd->par[1].v}, 5, (cbuf *[]){nd->out->v}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

static clcnn_status batchnorm_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct bn_state *s = nd->priv;
  cbuf *x = nd->in[0]->v, *dy = nd->out->g;
  int c = nd->in[0]->c, p = nd->in[0]->h * nd->in[0]->w;
  cbuf *mean = nd->training ? &s->mean : &nd->buf[0].v;
  cl_kernel k;
  clcnn_status st;
  int chunk = bn_chunk(n, c), items = (n + chunk - 1) / chunk * c;
  cbuf *part = clcnn__scratch(ctx);
  if ((st = clcnn__reserve(ctx, part, 2 * (size_t)items * ctx->esz, "batchnorm partial sums")) ||
      (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_part_grad", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_part_grad", MEM_ARG(part), MEM_ARG(dy), MEM_ARG(x), MEM_ARG(mean),
                        MEM_ARG(&s->invstd), INT_ARG(n), INT_ARG(c), INT_ARG(p), INT_ARG(chunk), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_part_grad", items, (cbuf *[]){dy, x, mean, &s->invstd}, 4, &part, 1)) ||
      (st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_param_grad", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_param_grad", MEM_ARG(&nd->par[0].g), MEM_ARG(&nd->par[1].g), MEM_ARG(&s->t),
                        MEM_ARG(part), INT_ARG(n), INT_ARG(c), INT_ARG(chunk), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_param_grad", c, &part, 1, (cbuf *[]){&nd->par[0].g, &nd->par[1].g, &s->t}, 3)))
    return st;
  if (!nd->dx[0]) return CLCNN_SUCCESS;
  if ((st = clcnn__kernel(ctx, KP_BATCHNORM, "batchnorm_backward", &k)) ||
      (st = clcnn__args(ctx, k, "batchnorm_backward", MEM_ARG(nd->dx[0]), MEM_ARG(dy), MEM_ARG(x),
                        MEM_ARG(mean), MEM_ARG(&s->invstd), MEM_ARG(&nd->par[0].v), MEM_ARG(&s->t),
                        INT_ARG(n), INT_ARG(c), INT_ARG(p), INT_ARG(nd->training), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "batchnorm_backward", (size_t)n * c,
                       (cbuf *[]){dy, x, mean, &s->invstd, &nd->par[0].v, &s->t}, 6, (cbuf *[]){nd->dx[0]}, 1)))
    return st;
  return CLCNN_SUCCESS;
}

static void batchnorm_need(clcnn_ctx *ctx, const struct node *nd, int n, struct scratch_need *need) {
  int chunk = bn_chunk(n, nd->in[0]->c);
  clcnn__need(&need->part, 2 * ((size_t)(n + chunk - 1) / chunk * nd->in[0]->c) * ctx->esz);
}

static void batchnorm_describe(const struct node *nd, char *buf, size_t size) {
  const struct bn_state *s = nd->priv;
  snprintf(buf, size, "batchnorm%s(%d, eps %g, momentum %g)", nd->in[0]->h * nd->in[0]->w > 1 ? "2d" : "1d",
           nd->in[0]->c, s->eps, s->momentum);
}

static tensor *batchnorm_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  double eps = 1e-5, momentum = 0.1; /* torch.nn.BatchNorm2d's */
  int r = margs_real(A, -1, "eps", &eps);
  if (r < 0) return NULL;
  if (r && !(eps > 0)) return margs_error(A, "eps", "expected a positive number for batchnorm's eps");
  if ((r = margs_real(A, -1, "momentum", &momentum)) < 0) return NULL;
  if (r && !(momentum > 0 && momentum <= 1)) return margs_error(A, "momentum", "expected batchnorm's momentum in (0, 1]");
  return clcnn_batchnorm(net, in[0], eps, momentum, name);
}

const struct op op_batchnorm = {
    .word = "batchnorm", .kind = "batchnorm", .type = CLCNN_LAYER_BATCHNORM, .flags = OP_NO_BWD_Y, .priv_size = sizeof(struct bn_state),
    .min_in = 1, .max_in = 1, .opts = {"eps", "momentum"}, .usage = "batchnorm [eps=E] [momentum=M]",
    .parse = batchnorm_parse, .setup = batchnorm_setup, .alloc = batchnorm_alloc, .need = batchnorm_need,
    .release = batchnorm_release, .forward = batchnorm_forward, .backward = batchnorm_backward,
    .describe = batchnorm_describe,
};

CLCNN_API clcnn_tensor *clcnn_batchnorm(clcnn_net *net, clcnn_tensor *x, double eps, double momentum, const char *name) {
  struct bn_state s = {.eps = eps, .momentum = momentum};
  return graph_add(net, &op_batchnorm, &x, 1, name, &s, sizeof s);
}

CLCNN_API clcnn_status clcnn_net_add_batchnorm(clcnn_net *net, double eps, double momentum) {
  if (!net) return CLCNN_ERR_NULL_POINTER;
  return clcnn_batchnorm(net, clcnn_net_output(net), eps, momentum, NULL) ? CLCNN_SUCCESS : graph_status(net);
}
