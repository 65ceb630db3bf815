/* lib/net.c - sequential networks: building them, the forward and backward passes over all
 * layers on the event chain, parameters, and profiling. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

struct clcnn_net {
  clcnn_ctx *ctx;   /* borrowed */
  int max_batch;
  int c, h, w;      /* input shape of one sample */
  struct layer **layers;
  int nl, cap;
  cbuf x;           /* input (max_batch, c, h, w) */
  cbuf labels;      /* int32 (max_batch) */
  cbuf losses;      /* (max_batch) */
  cbuf loss;        /* (1) */
  cbuf hits;        /* (max_batch): 1 where the prediction was right */
  cbuf tstats;      /* (3): running sums of the losses, right predictions, samples */
  cbuf dout;        /* gradient of the output: the loss's, or the caller's */
  int n;            /* batch of the last forward */
  int have_forward, have_backward, have_loss;
  int training;     /* mode for the next forward */
  int input_grad;   /* compute the gradient of the input (clcnn_net_read_input_grad) */
  uint64_t seed, counter; /* dropout masks */
  evlist loss_prof;
};

#define NET_CHECK(net)                         \
  do {                                         \
    if (!(net)) return CLCNN_ERR_NULL_POINTER; \
    clcnn__clear_error((net)->ctx);            \
  } while (0)

CLCNN_API clcnn_status clcnn_net_create(clcnn_ctx *ctx, int max_batch, int c, int h, int w,
                                        clcnn_net **out) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(ctx);
  if (!out) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_create: out is NULL");
  *out = NULL;
  if (max_batch <= 0 || c <= 0 || h <= 0 || w <= 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "clcnn_net_create: batch %d, input (%d,%d,%d): every size must be positive",
                max_batch, c, h, w);
  if ((size_t)max_batch * c * h * w > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "clcnn_net_create: input %d x (%d,%d,%d) is too large",
                max_batch, c, h, w);
  clcnn_net *net = calloc(1, sizeof *net);
  if (!net) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_net_create: out of host memory");
  net->ctx = ctx;
  net->max_batch = max_batch;
  net->c = c;
  net->h = h;
  net->w = w;
  net->training = 1;
  net->input_grad = 1;
  clcnn_status st;
  if ((st = cbuf_alloc(ctx, &net->x, (size_t)max_batch * c * h * w * ctx->esz, "net input")) ||
      (st = cbuf_alloc(ctx, &net->labels, (size_t)max_batch * sizeof(cl_int), "labels")) ||
      (st = cbuf_alloc(ctx, &net->losses, (size_t)max_batch * ctx->esz, "losses")) ||
      (st = cbuf_alloc(ctx, &net->loss, ctx->esz, "loss")) ||
      (st = cbuf_alloc(ctx, &net->hits, (size_t)max_batch * ctx->esz, "hits")) ||
      (st = cbuf_alloc(ctx, &net->tstats, 3 * ctx->esz, "training sums")) ||
      (st = clcnn__zero(ctx, &net->tstats, 3 * ctx->esz, "training sums"))) {
    clcnn_net_destroy(net);
    return st;
  }
  *out = net;
  return CLCNN_SUCCESS;
}

static void layer_free(struct layer *l) {
  cbuf *bufs[] = {&l->w,     &l->b,    &l->dw,    &l->db,   &l->y,    &l->dx,     &l->col,
                  &l->dcol,  &l->t,    &l->idx,   &l->rmean, &l->rvar, &l->mean, &l->invstd};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cbuf_free(bufs[i]);
  evlist_free(&l->prof[0]);
  evlist_free(&l->prof[1]);
  free(l);
}

CLCNN_API void clcnn_net_destroy(clcnn_net *net) {
  if (!net) return;
  if (net->ctx->queue) clFinish(net->ctx->queue);
  for (int i = 0; i < net->nl; i++) layer_free(net->layers[i]);
  free(net->layers);
  cbuf_free(&net->x);
  cbuf_free(&net->labels);
  cbuf_free(&net->losses);
  cbuf_free(&net->loss);
  cbuf_free(&net->hits);
  cbuf_free(&net->tstats);
  cbuf_free(&net->dout);
  evlist_free(&net->loss_prof);
  free(net);
}

/* The output buffer and shape that the next layer reads. */
static cbuf *cur_out(clcnn_net *net) { return net->nl ? net->layers[net->nl - 1]->yp : &net->x; }
static void cur_shape(const clcnn_net *net, int *c, int *h, int *w) {
  if (!net->nl) {
    *c = net->c, *h = net->h, *w = net->w;
  } else {
    const struct layer *l = net->layers[net->nl - 1];
    *c = l->out_c, *h = l->out_h, *w = l->out_w;
  }
}

/* Fill a buffer of COUNT reals with V; blocking. */
static clcnn_status fill_real(clcnn_ctx *ctx, cbuf *b, size_t count, double v) {
  void *h = malloc(count * ctx->esz);
  if (!h) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
  for (size_t i = 0; i < count; i++)
    if (ctx->prec == CLCNN_DOUBLE) ((double *)h)[i] = v;
    else ((float *)h)[i] = (float)v;
  clcnn_status st = clcnn__write(ctx, b, 0, count * ctx->esz, h, "fill");
  if (!st) st = clcnn__wait(ctx, b);
  free(h);
  return st;
}

/* A batchnorm layer as PyTorch makes it: weight 1, bias 0, running_mean 0, running_var 1. */
static clcnn_status bn_reset(clcnn_ctx *ctx, struct layer *l) {
  clcnn_status st;
  l->nbt = 0;
  if ((st = fill_real(ctx, &l->w, l->in_c, 1)) || (st = fill_real(ctx, &l->b, l->in_c, 0)) ||
      (st = fill_real(ctx, &l->rmean, l->in_c, 0)) || (st = fill_real(ctx, &l->rvar, l->in_c, 1)))
    return st;
  return CLCNN_SUCCESS;
}

/* Append a layer of TYPE; FILL sets its parameters before setup checks and allocates. */
static clcnn_status add_layer(clcnn_net *net, struct layer *proto) {
  clcnn_ctx *ctx = net->ctx;
  struct layer *l = calloc(1, sizeof *l);
  if (!l) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (layer)");
  *l = *proto;
  l->index = net->nl;
  cur_shape(net, &l->in_c, &l->in_h, &l->in_w);
  clcnn_status st = CLCNN_SUCCESS;
  switch (l->type) {
    case CLCNN_LAYER_CONV2D: st = conv2d_setup(ctx, l, net->max_batch); break;
    case CLCNN_LAYER_LINEAR: st = linear_setup(ctx, l, net->max_batch); break;
    case CLCNN_LAYER_MAXPOOL2D:
    case CLCNN_LAYER_AVGPOOL2D:
    case CLCNN_LAYER_GLOBAL_AVGPOOL: st = pool2d_setup(ctx, l, net->max_batch); break;
    case CLCNN_LAYER_FLATTEN:
      l->out_c = l->in_c * l->in_h * l->in_w;
      l->out_h = l->out_w = 1;
      break;
    case CLCNN_LAYER_BATCHNORM: st = batchnorm_setup(ctx, l, net->max_batch); break;
    case CLCNN_LAYER_DROPOUT: st = dropout_setup(ctx, l, net->max_batch); break;
    default: /* activations */
      l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
      break;
  }
  if (!st && net->nl == net->cap) {
    int cap = net->cap ? net->cap * 2 : 8;
    struct layer **nls = realloc(net->layers, cap * sizeof *nls);
    if (!nls) st = FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (layers)");
    else net->layers = nls, net->cap = cap;
  }
  struct layer *prev = net->nl ? net->layers[net->nl - 1] : NULL;
  /* a conv whose relu (the previous layer) it runs: a 2x2 max pooling here can join them */
  struct layer *conv = net->nl > 1 && prev->type == CLCNN_LAYER_RELU && prev->fused &&
                               net->layers[net->nl - 2]->type == CLCNN_LAYER_CONV2D
                           ? net->layers[net->nl - 2]
                           : NULL;
  if (!st && l->type == CLCNN_LAYER_RELU && prev && prev->type == CLCNN_LAYER_CONV2D && !prev->fuse_relu) {
    l->fused = 1; /* relu(conv(x)) in the conv's own passes (the conv learns it below, on success) */
    l->yp = prev->yp;
  } else if (!st && l->type == CLCNN_LAYER_MAXPOOL2D && conv && !conv->fpool && pool_is_2x2(&l->pool)) {
    /* maxpool2x2(relu(conv(x))) as the conv writes its output: the output and indices are this
     * layer's, its input gradient passes through to the conv */
    l->fused = 1;
    st = cbuf_alloc(ctx, &l->y, (size_t)net->max_batch * layer_out_size(l) * ctx->esz, "layer output");
    l->yp = &l->y;
  } else if (!st && l->type == CLCNN_LAYER_FLATTEN) {
    l->yp = cur_out(net); /* same memory, new shape */
  } else if (!st) {
    size_t e = ctx->esz;
    st = cbuf_alloc(ctx, &l->y, (size_t)net->max_batch * layer_out_size(l) * e, "layer output");
    if (!st) st = cbuf_alloc(ctx, &l->dx, (size_t)net->max_batch * layer_in_size(l) * e, "layer input grad");
    l->yp = &l->y;
    l->dxp = &l->dx;
  }
  if (st) {
    layer_free(l);
    return st;
  }
  /* parameters start at zero (clcnn_net_init_params() gives PyTorch's initialisation), and
   * so do their gradients, which accumulate */
  cbuf *zero[] = {&l->w, &l->b, &l->dw, &l->db, &l->rmean};
  for (int i = 0; i < 5 && !st; i++)
    if (zero[i]->mem) st = clcnn__zero(ctx, zero[i], zero[i]->bytes, "new parameter");
  if (!st && l->type == CLCNN_LAYER_BATCHNORM) /* PyTorch's: weight 1, running_var 1 */
    st = bn_reset(ctx, l);
  if (st) {
    layer_free(l);
    return st;
  }
  net->layers[net->nl++] = l;
  /* the output gradient buffer follows the last layer's size */
  cbuf_free(&net->dout);
  if ((st = cbuf_alloc(ctx, &net->dout, (size_t)net->max_batch * layer_out_size(l) * ctx->esz,
                       "output grad"))) {
    net->layers[--net->nl] = NULL;
    layer_free(l);
    return st;
  }
  if (l->fused && l->type == CLCNN_LAYER_RELU) prev->fuse_relu = 1;
  if (l->fused && l->type == CLCNN_LAYER_MAXPOOL2D) conv->fpool = l;
  net->have_forward = net->have_backward = net->have_loss = 0;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_add_conv2d(clcnn_net *net, const clcnn_conv2d_params *p) {
  NET_CHECK(net);
  if (!p) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_add_conv2d: params is NULL");
  struct layer l = {.type = CLCNN_LAYER_CONV2D, .conv = *p};
  return add_layer(net, &l);
}

CLCNN_API clcnn_status clcnn_net_add_linear(clcnn_net *net, int out_features, int bias) {
  NET_CHECK(net);
  struct layer l = {.type = CLCNN_LAYER_LINEAR, .out_c = out_features, .has_b = bias != 0};
  return add_layer(net, &l);
}

static clcnn_status add_simple(clcnn_net *net, clcnn_layer_type t, double slope) {
  NET_CHECK(net);
  struct layer l = {.type = t, .slope = slope};
  return add_layer(net, &l);
}
CLCNN_API clcnn_status clcnn_net_add_relu(clcnn_net *net) { return add_simple(net, CLCNN_LAYER_RELU, 0); }
CLCNN_API clcnn_status clcnn_net_add_leaky_relu(clcnn_net *net, double slope) {
  if (net && !isfinite(slope))
    return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "leaky_relu: slope %g is not finite", slope);
  return add_simple(net, CLCNN_LAYER_LEAKY_RELU, slope);
}
CLCNN_API clcnn_status clcnn_net_add_sigmoid(clcnn_net *net) { return add_simple(net, CLCNN_LAYER_SIGMOID, 0); }
CLCNN_API clcnn_status clcnn_net_add_tanh(clcnn_net *net) { return add_simple(net, CLCNN_LAYER_TANH, 0); }
CLCNN_API clcnn_status clcnn_net_add_global_avgpool(clcnn_net *net) {
  return add_simple(net, CLCNN_LAYER_GLOBAL_AVGPOOL, 0);
}
CLCNN_API clcnn_status clcnn_net_add_flatten(clcnn_net *net) { return add_simple(net, CLCNN_LAYER_FLATTEN, 0); }

CLCNN_API clcnn_status clcnn_net_add_batchnorm(clcnn_net *net, double eps, double momentum) {
  NET_CHECK(net);
  struct layer l = {.type = CLCNN_LAYER_BATCHNORM, .eps = eps, .momentum = momentum};
  return add_layer(net, &l);
}

CLCNN_API clcnn_status clcnn_net_add_dropout(clcnn_net *net, double p) {
  NET_CHECK(net);
  struct layer l = {.type = CLCNN_LAYER_DROPOUT, .p = p};
  return add_layer(net, &l);
}

CLCNN_API clcnn_status clcnn_net_set_training(clcnn_net *net, int training) {
  NET_CHECK(net);
  net->training = training != 0;
  return CLCNN_SUCCESS;
}
CLCNN_API int clcnn_net_training(const clcnn_net *net) { return net ? net->training : 0; }

CLCNN_API clcnn_status clcnn_net_set_input_grad(clcnn_net *net, int on) {
  NET_CHECK(net);
  net->input_grad = on != 0;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_set_seed(clcnn_net *net, uint64_t seed, uint64_t counter) {
  NET_CHECK(net);
  net->seed = seed;
  net->counter = counter;
  return CLCNN_SUCCESS;
}
CLCNN_API clcnn_status clcnn_net_get_seed(const clcnn_net *net, uint64_t *seed, uint64_t *counter) {
  if (!net || !seed || !counter) return CLCNN_ERR_NULL_POINTER;
  *seed = net->seed;
  *counter = net->counter;
  return CLCNN_SUCCESS;
}

static clcnn_status add_pool(clcnn_net *net, clcnn_layer_type t, const clcnn_pool2d_params *p) {
  NET_CHECK(net);
  if (!p) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "add pooling layer: params is NULL");
  struct layer l = {.type = t, .pool = *p};
  return add_layer(net, &l);
}
CLCNN_API clcnn_status clcnn_net_add_maxpool2d(clcnn_net *net, const clcnn_pool2d_params *p) {
  return add_pool(net, CLCNN_LAYER_MAXPOOL2D, p);
}
CLCNN_API clcnn_status clcnn_net_add_avgpool2d(clcnn_net *net, const clcnn_pool2d_params *p) {
  return add_pool(net, CLCNN_LAYER_AVGPOOL2D, p);
}

/* ---- queries ---- */
CLCNN_API int clcnn_net_num_layers(const clcnn_net *net) { return net ? net->nl : 0; }

CLCNN_API clcnn_layer_type clcnn_net_layer_type(const clcnn_net *net, int i) {
  return net && i >= 0 && i < net->nl ? net->layers[i]->type : (clcnn_layer_type)-1;
}

CLCNN_API int clcnn_net_layer_fused(const clcnn_net *net, int i) {
  return net && i >= 0 && i < net->nl ? net->layers[i]->fused : -1;
}

CLCNN_API clcnn_status clcnn_net_layer_shape(const clcnn_net *net, int i, int dims[4]) {
  if (!net || !dims) return CLCNN_ERR_NULL_POINTER;
  if (i < -1 || i >= net->nl)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "layer %d does not exist (0..%d)", i, net->nl - 1);
  dims[0] = 1;
  if (i < 0) {
    dims[1] = net->c, dims[2] = net->h, dims[3] = net->w;
  } else {
    const struct layer *l = net->layers[i];
    dims[1] = l->out_c, dims[2] = l->out_h, dims[3] = l->out_w;
  }
  return CLCNN_SUCCESS;
}

CLCNN_API size_t clcnn_net_output_size(const clcnn_net *net) {
  if (!net) return 0;
  int c, h, w;
  cur_shape(net, &c, &h, &w);
  return (size_t)c * h * w;
}
CLCNN_API size_t clcnn_net_input_size(const clcnn_net *net) {
  return net ? (size_t)net->c * net->h * net->w : 0;
}

CLCNN_API const char *clcnn_net_layer_describe(const clcnn_net *net, int i, char *buf, size_t size) {
  if (!buf || !size) return buf;
  if (!net || i < 0 || i >= net->nl) {
    snprintf(buf, size, "(no layer %d)", i);
    return buf;
  }
  const struct layer *l = net->layers[i];
  const clcnn_conv2d_params *c = &l->conv;
  const clcnn_pool2d_params *p = &l->pool;
  switch (l->type) {
    case CLCNN_LAYER_CONV2D:
      snprintf(buf, size, "conv2d(%d->%d, kernel %dx%d, stride %dx%d, pad %dx%d%s)", l->in_c,
               l->out_c, c->kh, c->kw, c->stride_h, c->stride_w, c->pad_h, c->pad_w,
               l->has_b ? "" : ", no bias");
      break;
    case CLCNN_LAYER_LINEAR:
      snprintf(buf, size, "linear(%d->%d%s)", l->in_c, l->out_c, l->has_b ? "" : ", no bias");
      break;
    case CLCNN_LAYER_MAXPOOL2D:
    case CLCNN_LAYER_AVGPOOL2D:
      snprintf(buf, size, "%s(kernel %dx%d, stride %dx%d, pad %dx%d)%s",
               l->type == CLCNN_LAYER_MAXPOOL2D ? "maxpool2d" : "avgpool2d", p->kh, p->kw,
               p->stride_h, p->stride_w, p->pad_h, p->pad_w, l->fused ? " (in the conv)" : "");
      break;
    case CLCNN_LAYER_LEAKY_RELU: snprintf(buf, size, "leaky_relu(%g)", l->slope); break;
    case CLCNN_LAYER_RELU: snprintf(buf, size, l->fused ? "relu (in the conv)" : "relu"); break;
    case CLCNN_LAYER_SIGMOID: snprintf(buf, size, "sigmoid"); break;
    case CLCNN_LAYER_TANH: snprintf(buf, size, "tanh"); break;
    case CLCNN_LAYER_GLOBAL_AVGPOOL: snprintf(buf, size, "global_avgpool"); break;
    case CLCNN_LAYER_FLATTEN: snprintf(buf, size, "flatten"); break;
    case CLCNN_LAYER_BATCHNORM:
      snprintf(buf, size, "batchnorm%s(%d, eps %g, momentum %g)", l->in_h * l->in_w > 1 ? "2d" : "1d",
               l->in_c, l->eps, l->momentum);
      break;
    case CLCNN_LAYER_DROPOUT: snprintf(buf, size, "dropout(p %g)", l->p); break;
  }
  return buf;
}

/* ---- parameters ---- */
static struct layer *param_at(const clcnn_net *net, int i, int *is_bias) {
  for (int j = 0; j < net->nl; j++) {
    struct layer *l = net->layers[j];
    if (l->has_w && i-- == 0) return *is_bias = 0, l;
    if (l->has_b && i-- == 0) return *is_bias = 1, l;
  }
  return NULL;
}

CLCNN_API int clcnn_net_num_params(const clcnn_net *net) {
  int n = 0;
  for (int j = 0; net && j < net->nl; j++) n += net->layers[j]->has_w + net->layers[j]->has_b;
  return n;
}

static clcnn_status get_param(clcnn_net *net, int i, struct layer **l, int *is_bias) {
  if (!(*l = param_at(net, i, is_bias)))
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "parameter %d does not exist (the net has %d)", i,
                clcnn_net_num_params(net));
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_param_info(const clcnn_net *net, int i, clcnn_param_info *info) {
  if (!net || !info) return CLCNN_ERR_NULL_POINTER;
  int is_bias;
  struct layer *l;
  clcnn_status st = get_param((clcnn_net *)net, i, &l, &is_bias);
  if (st) return st;
  memset(info, 0, sizeof *info);
  info->layer = l->index;
  snprintf(info->name, sizeof info->name, "%d.%s", l->index, is_bias ? "bias" : "weight");
  if (is_bias) {
    info->ndim = 1;
    info->dims[0] = l->out_c;
  } else if (l->type == CLCNN_LAYER_BATCHNORM) {
    info->ndim = 1;
    info->dims[0] = l->out_c;
  } else if (l->type == CLCNN_LAYER_CONV2D) {
    info->ndim = 4;
    info->dims[0] = l->out_c;
    info->dims[1] = l->in_c / l->conv.groups;
    info->dims[2] = l->conv.kh;
    info->dims[3] = l->conv.kw;
  } else {
    info->ndim = 2;
    info->dims[0] = l->out_c;
    info->dims[1] = l->in_c;
  }
  info->count = 1;
  for (int d = 0; d < info->ndim; d++) info->count *= info->dims[d];
  return CLCNN_SUCCESS;
}

static clcnn_status param_io(clcnn_net *net, int i, void *host, int grad, int write) {
  NET_CHECK(net);
  if (!host) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "parameter %d: host array is NULL", i);
  clcnn_param_info info;
  int is_bias;
  struct layer *l;
  clcnn_status st;
  if ((st = get_param(net, i, &l, &is_bias)) || (st = clcnn_net_param_info(net, i, &info))) return st;
  cbuf *b = grad ? (is_bias ? &l->db : &l->dw) : (is_bias ? &l->b : &l->w);
  size_t bytes = info.count * net->ctx->esz;
  if (!write) return clcnn__read(net->ctx, b, 0, bytes, host, info.name);
  if ((st = clcnn__write(net->ctx, b, 0, bytes, host, info.name))) return st;
  return clcnn__wait(net->ctx, b);
}

CLCNN_API clcnn_status clcnn_net_param_write(clcnn_net *net, int i, const void *host) {
  return param_io(net, i, (void *)host, 0, 1);
}
CLCNN_API clcnn_status clcnn_net_param_read(clcnn_net *net, int i, void *host) {
  return param_io(net, i, host, 0, 0);
}
CLCNN_API clcnn_status clcnn_net_grad_read(clcnn_net *net, int i, void *host) {
  return param_io(net, i, host, 1, 0);
}

clcnn_ctx *clcnn__net_ctx(clcnn_net *net) { return net->ctx; }

clcnn_status clcnn__net_param(clcnn_net *net, int i, cbuf **value, cbuf **grad, size_t *count) {
  int is_bias;
  struct layer *l;
  clcnn_param_info info;
  clcnn_status st;
  if ((st = get_param(net, i, &l, &is_bias)) || (st = clcnn_net_param_info(net, i, &info))) return st;
  *value = is_bias ? &l->b : &l->w;
  *grad = is_bias ? &l->db : &l->dw;
  *count = info.count;
  return CLCNN_SUCCESS;
}

/* splitmix64: a small seeded generator, the same on every machine. */
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A standard normal from two uniforms (Box-Muller). */
static double normal(uint64_t *s) {
  double u1 = ((splitmix64(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  double u2 = (splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
  return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

CLCNN_API clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init rule, uint64_t seed) {
  NET_CHECK(net);
  if (rule != CLCNN_INIT_DEFAULT && rule != CLCNN_INIT_HE && rule != CLCNN_INIT_XAVIER)
    return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_init: unknown rule %d", (int)rule);
  uint64_t s = seed;
  clcnn_status st;
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info info;
    if ((st = clcnn_net_param_info(net, i, &info))) return st;
    const struct layer *l = net->layers[info.layer];
    if (l->type == CLCNN_LAYER_BATCHNORM) continue;
    int is_bias = info.ndim == 1;
    /* fan_in and fan_out as torch.nn.init computes them: (in/groups)*kh*kw and out*kh*kw/... */
    double rf = l->type == CLCNN_LAYER_CONV2D ? (double)l->conv.kh * l->conv.kw : 1.0;
    double fan_in = (l->type == CLCNN_LAYER_CONV2D ? (double)(l->in_c / l->conv.groups) : (double)l->in_c) * rf;
    double fan_out = (double)l->out_c * rf;
    void *host = malloc(info.count * net->ctx->esz);
    if (!host) return FAIL(net->ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (init)");
    for (size_t j = 0; j < info.count; j++) {
      double v;
      if (rule == CLCNN_INIT_DEFAULT) { /* kaiming_uniform_(a=sqrt(5)) and the bias rule: 1/sqrt(fan_in) */
        double u = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
        v = (2 * u - 1) / sqrt(fan_in);
      } else if (is_bias) {
        v = 0;
      } else if (rule == CLCNN_INIT_HE) {
        v = normal(&s) * sqrt(2.0 / fan_in);
      } else {
        double u = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
        v = (2 * u - 1) * sqrt(6.0 / (fan_in + fan_out));
      }
      if (net->ctx->prec == CLCNN_DOUBLE) ((double *)host)[j] = v;
      else ((float *)host)[j] = (float)v;
    }
    st = clcnn_net_param_write(net, i, host);
    free(host);
    if (st) return st;
  }
  for (int i = 0; i < net->nl; i++)
    if (net->layers[i]->type == CLCNN_LAYER_BATCHNORM && (st = bn_reset(net->ctx, net->layers[i])))
      return st;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_init_params(clcnn_net *net, uint64_t seed) {
  return clcnn_net_init(net, CLCNN_INIT_DEFAULT, seed);
}

/* ---- buffers: batchnorm's running statistics ---- */
static struct layer *buffer_at(const clcnn_net *net, int i, int *which) {
  if (i < 0) return NULL;
  for (int j = 0; j < net->nl; j++)
    if (net->layers[j]->type == CLCNN_LAYER_BATCHNORM) {
      if (i < 3) return *which = i, net->layers[j];
      i -= 3;
    }
  return NULL;
}

CLCNN_API int clcnn_net_num_buffers(const clcnn_net *net) {
  int n = 0;
  for (int j = 0; net && j < net->nl; j++) n += net->layers[j]->type == CLCNN_LAYER_BATCHNORM ? 3 : 0;
  return n;
}

static const char *const buffer_names[3] = {"running_mean", "running_var", "num_batches_tracked"};

CLCNN_API clcnn_status clcnn_net_buffer_info(const clcnn_net *net, int i, clcnn_param_info *info) {
  if (!net || !info) return CLCNN_ERR_NULL_POINTER;
  int which;
  struct layer *l = buffer_at(net, i, &which);
  if (!l)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "buffer %d does not exist (the net has %d)", i,
                clcnn_net_num_buffers(net));
  memset(info, 0, sizeof *info);
  info->layer = l->index;
  snprintf(info->name, sizeof info->name, "%d.%s", l->index, buffer_names[which]);
  info->ndim = which == 2 ? 0 : 1;
  info->dims[0] = which == 2 ? 1 : l->in_c;
  info->count = which == 2 ? 1 : (size_t)l->in_c;
  info->dtype = which == 2 ? CLCNN_DTYPE_INT64 : CLCNN_DTYPE_REAL;
  return CLCNN_SUCCESS;
}

static clcnn_status buffer_io(clcnn_net *net, int i, void *host, int write) {
  NET_CHECK(net);
  clcnn_param_info info;
  clcnn_status st = clcnn_net_buffer_info(net, i, &info);
  if (st) return st;
  if (!host) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "buffer %s: host array is NULL", info.name);
  int which = 0;
  struct layer *l = buffer_at(net, i, &which);
  if (which == 2) {
    if (write) {
      int64_t v;
      memcpy(&v, host, sizeof v);
      if (v < 0) return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: %lld is negative", info.name, (long long)v);
      l->nbt = v;
    } else {
      memcpy(host, &l->nbt, sizeof l->nbt);
    }
    return CLCNN_SUCCESS;
  }
  cbuf *b = which == 0 ? &l->rmean : &l->rvar;
  size_t bytes = info.count * net->ctx->esz;
  if (!write) return clcnn__read(net->ctx, b, 0, bytes, host, info.name);
  if ((st = clcnn__write(net->ctx, b, 0, bytes, host, info.name))) return st;
  return clcnn__wait(net->ctx, b);
}

CLCNN_API clcnn_status clcnn_net_buffer_read(clcnn_net *net, int i, void *host) {
  return buffer_io(net, i, host, 0);
}
CLCNN_API clcnn_status clcnn_net_buffer_write(clcnn_net *net, int i, const void *host) {
  return buffer_io(net, i, (void *)host, 1);
}

/* ---- passes ---- */
static void prof_begin(clcnn_net *net, evlist *l) {
  if (net->ctx->profiling) net->ctx->sink = l;
}
static void prof_end(clcnn_net *net) { net->ctx->sink = NULL; }

CLCNN_API clcnn_status clcnn_net_forward(clcnn_net *net, const void *x, int n) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!x) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_forward: x is NULL");
  if (n <= 0 || n > net->max_batch)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "clcnn_net_forward: batch %d is outside 1..%d (the net's max_batch)", n,
                net->max_batch);
  if (!net->nl) return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_forward: the net has no layers");
  net->have_forward = net->have_backward = net->have_loss = 0;
  ctx->commands = ctx->host_waits = 0;
  clcnn_status st = clcnn__write(ctx, &net->x, 0, (size_t)n * clcnn_net_input_size(net) * ctx->esz,
                                 x, "net input");
  if (st) return st;
  evlist_clear(&net->loss_prof);
  cbuf *in = &net->x;
  if (net->training) net->counter++;
  for (int i = 0; i < net->nl; i++) {
    struct layer *l = net->layers[i];
    l->training = net->training;
    if (l->type == CLCNN_LAYER_DROPOUT) { /* this layer's masks for this step */
      uint64_t k = net->seed ^ (net->counter * 0xd1b54a32d192ed03ull) ^ ((uint64_t)i << 48);
      l->key = splitmix64(&k);
    }
    evlist_clear(&l->prof[0]);
    evlist_clear(&l->prof[1]);
    prof_begin(net, &l->prof[0]);
    switch (l->type) {
      case CLCNN_LAYER_CONV2D: st = conv2d_forward(ctx, l, in, n); break;
      case CLCNN_LAYER_LINEAR: st = linear_forward(ctx, l, in, n); break;
      case CLCNN_LAYER_MAXPOOL2D:
      case CLCNN_LAYER_AVGPOOL2D:
      case CLCNN_LAYER_GLOBAL_AVGPOOL:
        if (!l->fused) st = pool2d_forward(ctx, l, in, n);
        break;
      case CLCNN_LAYER_FLATTEN: break;
      case CLCNN_LAYER_RELU:
        if (!l->fused) st = activation_forward(ctx, l, in, n);
        break;
      case CLCNN_LAYER_BATCHNORM: st = batchnorm_forward(ctx, l, in, n); break;
      case CLCNN_LAYER_DROPOUT: st = dropout_forward(ctx, l, in, n); break;
      default: st = activation_forward(ctx, l, in, n); break;
    }
    prof_end(net);
    if (st) return st;
    in = l->yp;
  }
  net->n = n;
  net->have_forward = 1;
  return CLCNN_SUCCESS;
}

/* Backward over every layer, from the gradient in net->dout. */
static clcnn_status backward_layers(clcnn_net *net) {
  clcnn_ctx *ctx = net->ctx;
  cbuf *dy = &net->dout;
  clcnn_status st = CLCNN_SUCCESS;
  for (int i = net->nl - 1; i >= 0; i--) {
    struct layer *l = net->layers[i];
    cbuf *x = i ? net->layers[i - 1]->yp : &net->x;
    evlist_clear(&l->prof[1]);
    l->no_dx = i == 0 && !net->input_grad;
    if (l->no_dx && !l->has_w && !l->has_b) break; /* nothing below it wants a gradient */
    prof_begin(net, &l->prof[1]);
    switch (l->type) {
      case CLCNN_LAYER_CONV2D: st = conv2d_backward(ctx, l, x, dy, net->n); break;
      case CLCNN_LAYER_LINEAR: st = linear_backward(ctx, l, x, dy, net->n); break;
      case CLCNN_LAYER_MAXPOOL2D:
      case CLCNN_LAYER_AVGPOOL2D:
      case CLCNN_LAYER_GLOBAL_AVGPOOL:
        if (l->fused) l->dxp = dy; /* the conv below routes it */
        else st = pool2d_backward(ctx, l, x, dy, net->n);
        break;
      case CLCNN_LAYER_FLATTEN: l->dxp = dy; break; /* same memory, the input's shape */
      case CLCNN_LAYER_RELU:
        if (l->fused) l->dxp = dy; /* the conv below masks it */
        else st = activation_backward(ctx, l, x, dy, net->n);
        break;
      case CLCNN_LAYER_BATCHNORM: st = batchnorm_backward(ctx, l, x, dy, net->n); break;
      case CLCNN_LAYER_DROPOUT: st = dropout_backward(ctx, l, x, dy, net->n); break;
      default: st = activation_backward(ctx, l, x, dy, net->n); break;
    }
    prof_end(net);
    if (st) return st;
    dy = l->dxp;
  }
  net->have_backward = 1;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_backward(clcnn_net *net, const int32_t *labels) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!labels) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_backward: labels is NULL");
  if (!net->have_forward)
    return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_backward: no forward pass to go back through");
  int k = (int)clcnn_net_output_size(net);
  for (int i = 0; i < net->n; i++)
    if (labels[i] < 0 || labels[i] >= k)
      return FAIL(ctx, CLCNN_ERR_LABEL, "label %d of sample %d is outside 0..%d (the net has %d outputs)",
                  (int)labels[i], i, k - 1, k);
  clcnn_status st = clcnn__write(ctx, &net->labels, 0, (size_t)net->n * sizeof(cl_int), labels, "labels");
  if (st) return st;
  evlist_clear(&net->loss_prof);
  prof_begin(net, &net->loss_prof);
  st = softmax_xent(ctx, cur_out(net), &net->labels, &net->losses, &net->hits, &net->loss, &net->tstats, &net->dout,
                    net->n, k);
  prof_end(net);
  if (st) return st;
  net->have_loss = 1;
  return backward_layers(net);
}

CLCNN_API clcnn_status clcnn_net_backward_from(clcnn_net *net, const void *dout) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!dout) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_backward_from: dout is NULL");
  if (!net->have_forward)
    return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_backward_from: no forward pass to go back through");
  clcnn_status st = clcnn__write(ctx, &net->dout, 0,
                                 (size_t)net->n * clcnn_net_output_size(net) * ctx->esz, dout,
                                 "output grad");
  if (st) return st;
  net->have_loss = 0;
  return backward_layers(net);
}

static clcnn_status read_real(clcnn_net *net, cbuf *b, size_t count, double *out, const char *what) {
  if (net->ctx->prec == CLCNN_DOUBLE) return clcnn__read(net->ctx, b, 0, count * 8, out, what);
  float f;
  clcnn_status st = clcnn__read(net->ctx, b, 0, sizeof f, &f, what);
  *out = f;
  return st;
}

CLCNN_API clcnn_status clcnn_net_loss(clcnn_net *net, double *loss) {
  NET_CHECK(net);
  if (!loss) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_loss: loss is NULL");
  if (!net->have_loss)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_loss: no clcnn_net_backward() with labels since the last forward");
  return read_real(net, &net->loss, 1, loss, "loss");
}

CLCNN_API clcnn_status clcnn_net_train_stats(clcnn_net *net, double *loss_sum, double *correct, double *seen) {
  NET_CHECK(net);
  double v[3];
  clcnn_status st;
  if (net->ctx->prec == CLCNN_DOUBLE) {
    st = clcnn__read(net->ctx, &net->tstats, 0, sizeof v, v, "training sums");
  } else {
    float f[3];
    st = clcnn__read(net->ctx, &net->tstats, 0, sizeof f, f, "training sums");
    for (int i = 0; i < 3; i++) v[i] = f[i];
  }
  if (st) return st;
  if (loss_sum) *loss_sum = v[0];
  if (correct) *correct = v[1];
  if (seen) *seen = v[2];
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_wait_inputs(clcnn_net *net) {
  NET_CHECK(net);
  cl_event ev[3];
  cl_uint n = 0;
  cbuf *in[3] = {&net->x, &net->labels, &net->dout};
  for (int i = 0; i < 3; i++)
    if (in[i]->wev) ev[n++] = in[i]->wev;
  if (!n) return CLCNN_SUCCESS;
  net->ctx->host_waits++;
  cl_int e = clWaitForEvents(n, ev);
  return e == CL_SUCCESS ? CLCNN_SUCCESS : CLFAIL(net->ctx, e, "clWaitForEvents", "the net's inputs");
}

CLCNN_API clcnn_status clcnn_net_train_stats_reset(clcnn_net *net) {
  NET_CHECK(net);
  return clcnn__zero(net->ctx, &net->tstats, 3 * net->ctx->esz, "training sums");
}

CLCNN_API clcnn_status clcnn_net_read_output(clcnn_net *net, void *out) {
  NET_CHECK(net);
  if (!out) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_read_output: out is NULL");
  if (!net->have_forward) return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_output: no forward pass yet");
  return clcnn__read(net->ctx, cur_out(net), 0,
                     (size_t)net->n * clcnn_net_output_size(net) * net->ctx->esz, out, "output");
}

CLCNN_API clcnn_status clcnn_net_read_input_grad(clcnn_net *net, void *dx) {
  NET_CHECK(net);
  if (!dx) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_read_input_grad: dx is NULL");
  if (!net->have_backward)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_input_grad: no backward pass since the last forward");
  if (!net->input_grad)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_input_grad: the input gradient is off (clcnn_net_set_input_grad)");
  return clcnn__read(net->ctx, net->layers[0]->dxp, 0,
                     (size_t)net->n * clcnn_net_input_size(net) * net->ctx->esz, dx, "input grad");
}

CLCNN_API clcnn_status clcnn_net_zero_grad(clcnn_net *net) {
  NET_CHECK(net);
  clcnn_status st;
  for (int i = 0; i < net->nl; i++) {
    struct layer *l = net->layers[i];
    if (l->has_w && (st = clcnn__zero(net->ctx, &l->dw, l->dw.bytes, "weight grad"))) return st;
    if (l->has_b && (st = clcnn__zero(net->ctx, &l->db, l->db.bytes, "bias grad"))) return st;
  }
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_finish(clcnn_net *net) {
  NET_CHECK(net);
  net->ctx->host_waits++;
  cl_int e = clFinish(net->ctx->queue);
  if (e != CL_SUCCESS) return CLFAIL(net->ctx, e, "clFinish", "net");
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_profile(clcnn_net *net, int layer, int dir, uint64_t *ns) {
  NET_CHECK(net);
  if (!ns) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_profile: ns is NULL");
  if (!net->ctx->profiling)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_profile: the context was made without profiling");
  if (layer < 0 || layer > net->nl || dir < 0 || dir > 1)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "clcnn_net_profile: layer %d (0..%d) or direction %d (0, 1) out of range",
                layer, net->nl, dir);
  evlist *l = layer == net->nl ? &net->loss_prof : &net->layers[layer]->prof[dir];
  if (layer == net->nl && dir == 0) {
    *ns = 0;
    return CLCNN_SUCCESS;
  }
  if (l->n) {
    net->ctx->host_waits++;
    cl_int e = clWaitForEvents((cl_uint)l->n, l->ev);
    if (e != CL_SUCCESS) return CLFAIL(net->ctx, e, "clWaitForEvents", "profile");
  }
  *ns = evlist_ns(l);
  return CLCNN_SUCCESS;
}

CLCNN_API int clcnn_net_profile_cmds(clcnn_net *net, int layer, int dir, clcnn_profile_cmd *out,
                                     int max) {
  uint64_t ns;
  if (!net || (max > 0 && !out) || clcnn_net_profile(net, layer, dir, &ns)) return -1;
  if (layer == net->nl && dir == 0) return 0;
  evlist *l = layer == net->nl ? &net->loss_prof : &net->layers[layer]->prof[dir];
  for (int i = 0; i < l->n && i < max; i++) {
    cl_ulong a = 0, b = 0;
    clGetEventProfilingInfo(l->ev[i], CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
    clGetEventProfilingInfo(l->ev[i], CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
    out[i].name = l->what[i];
    out[i].start_ns = a;
    out[i].end_ns = b;
  }
  return l->n;
}

CLCNN_API clcnn_status clcnn_net_step_stats(const clcnn_net *net, int *commands, int *host_waits) {
  if (!net || !commands || !host_waits) return CLCNN_ERR_NULL_POINTER;
  *commands = net->ctx->commands;
  *host_waits = net->ctx->host_waits;
  return CLCNN_SUCCESS;
}

/* ---- memory estimate: the buffers add_layer() and the layers' setups make for a batch, and
 * the scratch the first training step reserves (the layers' *_need functions) ---- */
static void est_add(clcnn_memory_estimate *m, size_t *part, size_t bytes, size_t esz) {
  if (!bytes) bytes = esz; /* as cbuf_alloc */
  *part += bytes;
  if (bytes > m->largest) m->largest = bytes;
}

CLCNN_API clcnn_status clcnn_net_memory_estimate(clcnn_net *net, int batch, const clcnn_optim_params *optim,
                                                 clcnn_memory_estimate *out) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  static const char fn[] = "clcnn_net_memory_estimate";
  if (!out) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: out is NULL", fn);
  memset(out, 0, sizeof *out);
  if (batch <= 0) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: batch %d must be positive", fn, batch);
  if (optim && (optim->kind < CLCNN_OPTIM_SGD || optim->kind > CLCNN_OPTIM_RMSPROP))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: optimizer kind %d is not one of clcnn_optim_kind", fn,
                (int)optim->kind);
  size_t B = (size_t)batch, e = ctx->esz;
  if (B * clcnn_net_input_size(net) > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: input %d x (%d,%d,%d) is too large", fn, batch, net->c, net->h, net->w);
  int slots = 0; /* optimizer state tensors per parameter, as clcnn_optim_create makes them */
  if (optim && optim->kind == CLCNN_OPTIM_SGD) slots = optim->momentum != 0;
  else if (optim && optim->kind == CLCNN_OPTIM_RMSPROP) slots = 1 + (optim->momentum > 0);
  else if (optim) slots = 2;
  clcnn_memory_estimate *m = out;
  est_add(m, &m->activations, B * clcnn_net_input_size(net) * e, e);
  est_add(m, &m->activations, B * sizeof(cl_int), e); /* labels */
  est_add(m, &m->activations, B * e, e);              /* losses */
  est_add(m, &m->activations, e, e);                  /* loss */
  est_add(m, &m->activations, B * e, e);              /* hits */
  est_add(m, &m->activations, 3 * e, e);              /* training sums */
  /* add_layer() replaces the output gradient buffer with one of each new layer's output size, so
   * building passes through peaks of its own: the layers so far and the last one's buffer */
  size_t so_far = m->activations, dout = 0, build_peak = so_far;
  struct scratch_need need = {0};
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = net->layers[i];
    size_t before = m->parameters + m->gradients + m->activations + m->scratch;
    size_t y = B * layer_out_size(l) * e, dx = B * layer_in_size(l) * e;
    int no_dx = i == 0 && !net->input_grad;
    const cbuf *par[] = {&l->w, &l->b};
    const cbuf *grad[] = {&l->dw, &l->db};
    for (int j = 0; j < 2; j++) {
      if (!par[j]->mem) continue;
      est_add(m, &m->parameters, par[j]->bytes, e);
      est_add(m, &m->gradients, grad[j]->bytes, e);
      for (int s = 0; s < slots; s++) est_add(m, &m->optimizer, par[j]->bytes, e);
    }
    int outputs = 1; /* the layer's own output and input gradient */
    switch (l->type) {
      case CLCNN_LAYER_CONV2D: {
        const clcnn_conv2d_params *p = &l->conv;
        size_t ckk = (size_t)l->in_c * p->kh * p->kw, np = B * l->out_h * l->out_w;
        if (ckk * np > INT_MAX || (size_t)l->out_c * np > INT_MAX)
          return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: batch %d: layer %d conv2d: %zu x %zu im2col buffer is too large",
                      fn, batch, i, ckk, np);
        est_add(m, &m->scratch, ckk * ((np + 63) / 64 * 64) * e, e); /* im2col */
        est_add(m, &m->scratch, ckk * np * e, e);                    /* its gradient */
        est_add(m, &m->scratch, l->out_c * np * e, e);               /* GEMM output */
        conv2d_need(ctx, l, batch, no_dx, &need);
        break;
      }
      case CLCNN_LAYER_LINEAR: {
        size_t in = l->in_c, o = l->out_c;
        if (o * B > INT_MAX)
          return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: batch %d: layer %d linear: %d x %d is too large", fn, batch, i,
                      l->out_c, batch);
        clcnn__gemm_need(ctx, 0, 1, B, o, in, &need);
        clcnn__gemm_need(ctx, 1, 0, o, in, B, &need);
        if (!no_dx) clcnn__gemm_need(ctx, 0, 0, B, in, o, &need);
        break;
      }
      case CLCNN_LAYER_MAXPOOL2D:
        est_add(m, &m->scratch, B * layer_out_size(l) * sizeof(cl_int), e); /* indices */
        if (l->fused) est_add(m, &m->activations, y, e), outputs = 0;       /* no input gradient */
        break;
      case CLCNN_LAYER_FLATTEN: outputs = 0; break;
      case CLCNN_LAYER_RELU: outputs = !l->fused; break;
      case CLCNN_LAYER_BATCHNORM:
        est_add(m, &m->scratch, l->mean.bytes, e);
        est_add(m, &m->scratch, l->invstd.bytes, e);
        est_add(m, &m->scratch, l->t.bytes, e);
        est_add(m, &m->parameters, l->rmean.bytes, e);
        est_add(m, &m->parameters, l->rvar.bytes, e);
        batchnorm_need(ctx, l, batch, &need);
        break;
      case CLCNN_LAYER_DROPOUT: est_add(m, &m->scratch, dx, e); break; /* the mask */
      default: break;
    }
    if (outputs) {
      est_add(m, &m->activations, y, e);
      est_add(m, &m->activations, dx, e);
    }
    size_t layer = m->parameters + m->gradients + m->activations + m->scratch - before;
    if (so_far + dout + layer > build_peak) build_peak = so_far + dout + layer;
    so_far += layer;
    dout = y ? y : e;
    if (dout > m->largest) m->largest = dout;
    if (so_far + dout > build_peak) build_peak = so_far + dout;
  }
  if (net->nl) est_add(m, &m->activations, dout, e); /* the output gradient */
  size_t ctxbufs[] = {need.pack_a, need.pack_b, need.part, need.transient};
  for (int j = 0; j < 4; j++)
    if (ctxbufs[j]) est_add(m, &m->scratch, ctxbufs[j], e);
  m->total = m->parameters + m->gradients + m->optimizer + m->activations + m->scratch;
  if (build_peak > m->total) m->total = build_peak;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_largest_batch(clcnn_net *net, const clcnn_optim_params *optim,
                                               uint64_t global_bytes, uint64_t max_alloc_bytes, int max_batch,
                                               int *batch) {
  NET_CHECK(net);
  if (!batch) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_largest_batch: batch is NULL");
  *batch = 0;
  if (max_batch <= 0)
    return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_largest_batch: max_batch %d must be positive",
                max_batch);
  /* every buffer grows with the batch: search for the last batch that fits */
  int lo = 0, hi = max_batch; /* lo fits (0: none yet), the answer is in lo..hi */
  while (lo < hi) {
    int mid = lo + (hi - lo + 1) / 2;
    clcnn_memory_estimate e;
    clcnn_status st = clcnn_net_memory_estimate(net, mid, optim, &e);
    if (st && st != CLCNN_ERR_SHAPE) return st;
    if (!st && e.total <= global_bytes && e.largest <= max_alloc_bytes) lo = mid;
    else hi = mid - 1;
  }
  clcnn__clear_error(net->ctx); /* a batch too large to build is an answer, not a failure */
  *batch = lo;
  return CLCNN_SUCCESS;
}
