/* lib/net.c - a net as a graph: building it node by node, finishing it (the fusion pass, the
 * gradient flow, the buffer plan), the forward and backward passes on the event chain,
 * parameters and buffers, initialisation, profiling and the memory estimate. It names no kind
 * of node: each is an entry of the op table (lib/graph.h). */
#include <ctype.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

struct clcnn_net {
  clcnn_ctx *ctx;  /* borrowed */
  int max_batch;
  tensor **tensors; /* tensors[0] is the input; then one per node, in order */
  int nt, capt;
  struct node **nodes; /* the layer nodes, in order (a topological order: inputs come first) */
  int nn, capn;
  struct node **losses;
  int nloss, caploss;
  int implicit_loss; /* losses[0] was made by finishing a net without a loss */
  int finished;
  clcnn_status build_st; /* of the last graph_add() */
  cbuf tstats;       /* (3): running sums of the losses, right predictions, samples */
  cbuf *pool;        /* the tensors' values and gradients (liveness shares them) */
  int npool;
  cbuf shared[PLAN_SHARED]; /* scratch every node uses within its own pass */
  cbuf *acc;         /* backward: gradients of inputs read a second time, before they are summed */
  int nacc;
  int n;             /* batch of the last forward */
  int have_forward, have_backward, have_loss;
  int training;      /* mode for the next forward */
  int input_grad;    /* compute the gradient of the input (clcnn_net_read_input_grad) */
  uint64_t seed, counter; /* random numbers (dropout masks) */
  int64_t batch_offset;   /* the global index of the batch's first sample (clcnn_net_set_batch_offset) */
  struct clcnn_replicas *group; /* the data-parallel group it is replica group_index of, or NULL */
  int group_index;
  evlist loss_prof;
  char *warnings;    /* the model file's, one per line */
};

#define NET_CHECK(net)                         \
  do {                                         \
    if (!(net)) return CLCNN_ERR_NULL_POINTER; \
    clcnn__clear_error((net)->ctx);            \
  } while (0)

static tensor *input_of(const clcnn_net *net) { return net->tensors[0]; }
static tensor *last_of(const clcnn_net *net) { return net->nn ? net->nodes[net->nn - 1]->out : net->tensors[0]; }
clcnn_ctx *graph_ctx(clcnn_net *net) { return net->ctx; }
clcnn_ctx *clcnn__net_ctx(clcnn_net *net) { return net->ctx; }

/* Fill COUNT reals of b with V; blocking. */
static clcnn_status fill_real(clcnn_ctx *ctx, cbuf *b, size_t count, double v) {
  if (v == 0) return clcnn__zero(ctx, b, count * ctx->esz, "fill");
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

CLCNN_API clcnn_status clcnn_net_create(clcnn_ctx *ctx, int max_batch, int c, int h, int w, clcnn_net **out) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(ctx);
  if (!out) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_create: out is NULL");
  *out = NULL;
  if (max_batch <= 0 || c <= 0 || h <= 0 || w <= 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "clcnn_net_create: batch %d, input (%d,%d,%d): every size must be positive", max_batch, c, h, w);
  if ((size_t)max_batch * c * h * w > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "clcnn_net_create: input %d x (%d,%d,%d) is too large", max_batch, c, h, w);
  clcnn_net *net = calloc(1, sizeof *net);
  tensor *x = calloc(1, sizeof *x);
  tensor **ts = malloc(8 * sizeof *ts);
  if (!net || !x || !ts) {
    free(net), free(x), free(ts);
    return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_net_create: out of host memory");
  }
  net->ctx = ctx;
  net->max_batch = max_batch;
  net->training = 1;
  net->input_grad = 1;
  snprintf(x->name, sizeof x->name, "input");
  x->c = c, x->h = h, x->w = w;
  ts[0] = x;
  net->tensors = ts, net->nt = 1, net->capt = 8;
  clcnn_status st;
  /* the input lives as long as the net: made now, as every buffer a caller writes */
  if ((st = cbuf_alloc(ctx, &x->val, (size_t)max_batch * c * h * w * ctx->esz, "net input")) ||
      (st = cbuf_alloc(ctx, &net->tstats, 3 * ctx->esz, "training sums")) ||
      (st = clcnn__zero(ctx, &net->tstats, 3 * ctx->esz, "training sums"))) {
    clcnn_net_destroy(net);
    return st;
  }
  x->v = x->vbuf = &x->val;
  *out = net;
  return CLCNN_SUCCESS;
}

static void node_free(struct node *nd) {
  if (!nd) return;
  if (nd->op->release && nd->priv) nd->op->release(nd);
  for (int i = 0; i < nd->npar; i++) cbuf_free(&nd->par[i].v), cbuf_free(&nd->par[i].g);
  for (int i = 0; i < nd->nbuf; i++) cbuf_free(&nd->buf[i].v);
  evlist_free(&nd->prof[0]);
  evlist_free(&nd->prof[1]);
  free(nd->priv);
  free(nd->in);
  free(nd->dx);
  free(nd);
}

static void tensor_free(tensor *t) {
  if (!t) return;
  cbuf_free(&t->val);
  free(t);
}

/* The buffers the plan made: tensors' storage, the kinds' buffers, the sums of second gradients. */
static void unplan(clcnn_net *net) {
  for (int i = 0; i < net->nn; i++)
    if (net->nodes[i]->op->release && net->nodes[i]->priv) net->nodes[i]->op->release(net->nodes[i]);
  for (int i = 0; i < net->nloss; i++)
    if (net->losses[i]->op->release && net->losses[i]->priv) net->losses[i]->op->release(net->losses[i]);
  for (int i = 0; i < net->npool; i++) cbuf_free(&net->pool[i]);
  free(net->pool);
  net->pool = NULL, net->npool = 0;
  for (int i = 0; i < net->nt; i++) {
    tensor *t = net->tensors[i];
    t->gbuf = t->g = NULL;
    if (i) t->vbuf = t->v = NULL;
  }
  for (int i = 0; i < net->nacc; i++) cbuf_free(&net->acc[i]);
  for (int i = 0; i < PLAN_SHARED; i++) cbuf_free(&net->shared[i]);
  free(net->acc);
  net->acc = NULL, net->nacc = 0;
}

CLCNN_API void clcnn_net_destroy(clcnn_net *net) {
  if (!net) return;
  if (net->ctx->queue) clFinish(net->ctx->queue);
  if (net->group) clcnn__replicas_detach(net->group, net->group_index);
  unplan(net);
  for (int i = 0; i < net->nn; i++) node_free(net->nodes[i]);
  for (int i = 0; i < net->nloss; i++) node_free(net->losses[i]);
  for (int i = 0; i < net->nt; i++) tensor_free(net->tensors[i]);
  free(net->nodes);
  free(net->losses);
  free(net->tensors);
  cbuf_free(&net->tstats);
  evlist_free(&net->loss_prof);
  free(net->warnings);
  free(net);
}

void graph_set_warnings(clcnn_net *net, char *text) {
  free(net->warnings);
  net->warnings = text;
}
CLCNN_API const char *clcnn_net_warnings(const clcnn_net *net) { return net && net->warnings ? net->warnings : ""; }

/* ---- building ---- */

/* Names a torch.nn.Module refuses for a submodule (its attributes and methods), so that a
 * checkpoint always loads strictly into the module built from the same file. */
static const char *const reserved_names[] = {
    "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda",
    "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "input", "ipu", "load_state_dict", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
    "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_module", "register_parameter", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad", NULL};

static clcnn_status check_name(clcnn_net *net, const char *name, const char *auto_name) {
  clcnn_ctx *ctx = net->ctx;
  size_t len = strlen(name);
  if (!len || len >= NAME_LEN)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "name '%.70s%s' must have 1 to %d characters", name,
                len > 70 ? "..." : "", NAME_LEN - 1);
  int digits = 1;
  for (size_t i = 0; i < len; i++) digits &= isdigit((unsigned char)name[i]) != 0;
  if (digits && strcmp(name, auto_name))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "name '%s': a name of digits only is the index a node without a name gets", name);
  if (!digits) {
    int ok = isalpha((unsigned char)name[0]) || name[0] == '_';
    for (size_t i = 1; i < len && ok; i++) ok = isalnum((unsigned char)name[i]) || name[i] == '_';
    if (!ok)
      return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                  "name '%s': a name is a letter or '_' followed by letters, digits or '_'", name);
    for (int i = 0; reserved_names[i]; i++)
      if (!strcmp(name, reserved_names[i]))
        return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                    "name '%s' is reserved: torch.nn.Module would refuse it for a submodule", name);
  }
  for (int i = 0; i < net->nt; i++)
    if (!strcmp(net->tensors[i]->name, name))
      return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "name '%s' is used twice (first by %s)", name,
                  net->tensors[i]->src ? WHERE(net->tensors[i]->src) : "the net's input");
  return CLCNN_SUCCESS;
}

const char *node_where(const struct node *nd, char *buf, size_t size) {
  const char *kind = nd->op->kind;
  char idx[16];
  if (nd->op->flags & OP_LOSS) {
    snprintf(buf, size, "loss '%s' (%s)", nd->name, kind);
    return buf;
  }
  snprintf(idx, sizeof idx, "%d", nd->index);
  if (!strcmp(idx, nd->name)) snprintf(buf, size, "layer %d %s", nd->index, kind);
  else snprintf(buf, size, "layer %d %s '%s'", nd->index, kind, nd->name);
  return buf;
}

void node_param(struct node *nd, const char *name, int ndim, const int *dims, int init, double fan_in,
                double fan_out) {
  struct param *p = &nd->par[nd->npar++];
  p->name = name, p->ndim = ndim, p->init = init, p->fan_in = fan_in, p->fan_out = fan_out;
  p->count = 1;
  for (int d = 0; d < ndim; d++) p->dims[d] = dims[d], p->count *= (size_t)dims[d];
}

void node_buffer(struct node *nd, const char *name, int ndim, const int *dims, int init) {
  struct param *p = &nd->buf[nd->nbuf++];
  p->name = name, p->ndim = ndim, p->init = init;
  p->count = 1;
  for (int d = 0; d < ndim; d++) p->dims[d] = dims[d], p->count *= (size_t)dims[d];
}

static int grow(void **arr, int *cap, int n, size_t elem) {
  if (n < *cap) return 0;
  int c = *cap ? *cap * 2 : 8;
  void *a = realloc(*arr, (size_t)c * elem);
  if (!a) return -1;
  *arr = a, *cap = c;
  return 0;
}

/* A parameter's or buffer's starting value: zero (the init rules set weights), one for PINIT_ONE. */
static clcnn_status param_reset(clcnn_ctx *ctx, struct param *p) {
  return fill_real(ctx, &p->v, p->count, p->init == PINIT_ONE ? 1 : 0);
}

static tensor *node_make(clcnn_net *net, const struct op *op, tensor *const *in, int nin, const char *name,
                         const void *priv, size_t priv_size, double weight);

tensor *graph_add(clcnn_net *net, const struct op *op, tensor *const *in, int nin, const char *name,
                  const void *priv, size_t priv_size) {
  if (!net) return NULL;
  clcnn_ctx *ctx = net->ctx;
  for (int i = 0; i < nin; i++)
    if (!in[i]) { /* an earlier builder failed: its reason stands */
      if (!net->build_st) net->build_st = FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: input %d is NULL", op->word, i);
      return NULL;
    }
  clcnn__clear_error(ctx);
  net->build_st = CLCNN_SUCCESS;
  return node_make(net, op, in, nin, name, priv, priv_size, 1);
}

tensor *graph_add_loss(clcnn_net *net, const struct op *op, tensor *x, double weight, const char *name,
                       const void *priv, size_t priv_size) {
  if (!net) return NULL;
  if (!x) return graph_add(net, op, &x, 1, name, priv, priv_size); /* the earlier failure stands */
  clcnn__clear_error(net->ctx);
  net->build_st = CLCNN_SUCCESS;
  return node_make(net, op, &x, 1, name, priv, priv_size, weight);
}

tensor *graph_fail(clcnn_net *net, clcnn_status st, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  net->build_st = FAIL(net->ctx, st, "%s", msg);
  return NULL;
}

clcnn_status graph_read_loss(clcnn_ctx *ctx, cbuf *loss, double *v) {
  unsigned char h[8];
  clcnn_status st = clcnn__read(ctx, loss, 0, ctx->esz, h, "loss");
  if (!st) *v = ctx->prec == CLCNN_DOUBLE ? *(double *)h : *(float *)h;
  return st;
}

clcnn_status graph_copy(clcnn_ctx *ctx, cbuf *y, cbuf *x, size_t n, int accumulate) {
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_UTIL, "copy_add", &k)) ||
      (st = clcnn__args(ctx, k, "copy_add", MEM_ARG(y), MEM_ARG(x), INT_ARG(n), INT_ARG(accumulate), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, accumulate ? "gradient sum" : "copy", n, (cbuf *[]){x, y}, accumulate ? 2 : 1, &y, 1);
}

clcnn_status graph_status(const clcnn_net *net) { return net ? net->build_st : CLCNN_ERR_NULL_POINTER; }
CLCNN_API clcnn_status clcnn_net_build_status(const clcnn_net *net) { return graph_status(net); }

#define BFAIL(...) (net->build_st = FAIL(ctx, __VA_ARGS__), (tensor *)NULL)

static tensor *node_make(clcnn_net *net, const struct op *op, tensor *const *in, int nin, const char *name,
                         const void *priv, size_t priv_size, double weight) {
  clcnn_ctx *ctx = net->ctx;
  int is_loss = (op->flags & OP_LOSS) != 0;
  if (net->finished) {
    return BFAIL(CLCNN_ERR_STATE, "%s: the net is finished (by clcnn_net_finalize or its first forward): no more "
                 "nodes can be added", op->word);
  }
  if (nin < op->min_in || (op->max_in && nin > op->max_in)) {
    if (op->min_in == op->max_in)
      return BFAIL(CLCNN_ERR_INVALID_ARGUMENT, "%s takes %d input%s, got %d", op->word, op->min_in,
                   op->min_in > 1 ? "s" : "", nin);
    return BFAIL(CLCNN_ERR_INVALID_ARGUMENT, "%s takes at least %d inputs, got %d", op->word, op->min_in, nin);
  }
  for (int i = 0; i < nin; i++) {
    int mine = 0;
    for (int j = 0; j < net->nt && !mine; j++) mine = net->tensors[j] == in[i];
    if (!mine) return BFAIL(CLCNN_ERR_INVALID_ARGUMENT, "%s: input %d is a tensor of another net", op->word, i);
  }
  char auto_name[NAME_LEN];
  if (is_loss) snprintf(auto_name, sizeof auto_name, "loss%d", net->nloss);
  else snprintf(auto_name, sizeof auto_name, "%d", net->nn);
  if (!name) name = auto_name;
  if ((net->build_st = check_name(net, name, auto_name))) return NULL;
  struct node *nd = calloc(1, sizeof *nd);
  tensor *t = calloc(1, sizeof *t);
  if (nd) {
    nd->op = op;
    nd->in = calloc(nin ? nin : 1, sizeof *nd->in);
    nd->dx = calloc(nin ? nin : 1, sizeof *nd->dx);
    nd->priv = calloc(1, priv_size ? priv_size : 1);
  }
  if (!nd || !t || !nd->in || !nd->dx || !nd->priv || grow((void **)&net->tensors, &net->capt, net->nt, sizeof(tensor *)) ||
      grow(is_loss ? (void **)&net->losses : (void **)&net->nodes, is_loss ? &net->caploss : &net->capn,
           is_loss ? net->nloss : net->nn, sizeof(struct node *))) {
    if (nd && nd->priv) memset(nd->priv, 0, priv_size ? priv_size : 1), nd->op = op;
    node_free(nd), free(t);
    return BFAIL(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", op->word);
  }
  if (priv_size) memcpy(nd->priv, priv, priv_size);
  snprintf(nd->name, sizeof nd->name, "%s", name);
  snprintf(t->name, sizeof t->name, "%s", name);
  nd->index = is_loss ? net->nloss : net->nn;
  nd->nin = nin;
  memcpy(nd->in, in, nin * sizeof *in);
  nd->out = t;
  nd->weight = weight;
  nd->net = net;
  t->src = nd;
  t->id = net->nt;
  t->c = t->h = t->w = 1;
  clcnn_status st = op->setup(ctx, nd);
  if (!st && (tensor_size(t) == 0 || (size_t)net->max_batch * tensor_size(t) > INT_MAX))
    st = FAIL(ctx, CLCNN_ERR_SHAPE, "%s: output %d x (%d,%d,%d) is too large", WHERE(nd), net->max_batch, t->c, t->h,
              t->w);
  for (int i = 0; i < nd->npar && !st; i++) {
    struct param *p = &nd->par[i];
    char what[96];
    snprintf(what, sizeof what, "%s.%s", nd->name, p->name);
    if (!(st = cbuf_alloc(ctx, &p->v, p->count * ctx->esz, what)) &&
        !(st = cbuf_alloc(ctx, &p->g, p->count * ctx->esz, what)) && !(st = param_reset(ctx, p)))
      st = clcnn__zero(ctx, &p->g, p->count * ctx->esz, what); /* gradients accumulate */
  }
  for (int i = 0; i < nd->nbuf && !st; i++) {
    struct param *p = &nd->buf[i];
    if (!(st = cbuf_alloc(ctx, &p->v, p->count * ctx->esz, p->name))) st = param_reset(ctx, p);
  }
  if (st) {
    node_free(nd), free(t);
    net->build_st = st;
    return NULL;
  }
  for (int i = 0; i < nin; i++) in[i]->uses++;
  net->tensors[net->nt++] = t;
  if (is_loss) net->losses[net->nloss++] = nd;
  else net->nodes[net->nn++] = nd;
  net->have_forward = net->have_backward = net->have_loss = 0;
  return t;
}

/* ---- tensors ---- */
CLCNN_API clcnn_tensor *clcnn_net_input(clcnn_net *net) { return net ? input_of(net) : NULL; }
CLCNN_API clcnn_tensor *clcnn_net_output(clcnn_net *net) { return net ? last_of(net) : NULL; }
CLCNN_API clcnn_tensor *clcnn_net_tensor(clcnn_net *net, const char *name) {
  if (!net || !name) return NULL;
  for (int i = 0; i < net->nt; i++)
    if (!strcmp(net->tensors[i]->name, name)) return net->tensors[i];
  return NULL;
}
CLCNN_API clcnn_status clcnn_net_keep_tensor(clcnn_net *net, clcnn_tensor *t) {
  NET_CHECK(net);
  int mine = 0;
  for (int i = 0; t && i < net->nt; i++) mine |= net->tensors[i] == t;
  if (!mine) return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_keep_tensor: not a tensor of this net");
  if (net->finished && !t->kept)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_keep_tensor: the net is finished: keep tensors before");
  t->kept = 1;
  return CLCNN_SUCCESS;
}

CLCNN_API const char *clcnn_tensor_name(const clcnn_tensor *t) { return t ? t->name : NULL; }
CLCNN_API clcnn_status clcnn_tensor_shape(const clcnn_tensor *t, int dims[4]) {
  if (!t || !dims) return CLCNN_ERR_NULL_POINTER;
  dims[0] = 1, dims[1] = t->c, dims[2] = t->h, dims[3] = t->w;
  return CLCNN_SUCCESS;
}

struct node *graph_sole_reader(clcnn_net *net, const tensor *t) {
  if (t->uses != 1 || graph_is_output(net, t)) return NULL;
  for (int i = 0; i < net->nn; i++)
    for (int j = 0; j < net->nodes[i]->nin; j++)
      if (net->nodes[i]->in[j] == t) return net->nodes[i];
  return NULL;
}

int graph_is_output(clcnn_net *net, const tensor *t) {
  if (t == last_of(net)) return 1;
  for (int i = 0; i < net->nloss; i++)
    if (net->losses[i]->in[0] == t) return 1;
  return 0;
}

/* The loss a net without one gets: the op table's entry that says so. */
static const struct op *default_loss(void) {
  for (int i = 0; clcnn__ops[i]; i++)
    if (clcnn__ops[i]->flags & OP_DEFAULT_LOSS) return clcnn__ops[i];
  return NULL;
}

/* ---- finishing: fusion, the gradient flow, the buffer plan ---- */

clcnn_status plan_buf(struct plan *p, size_t *part, cbuf *b, size_t bytes, const char *what) {
  if (!bytes) bytes = p->ctx->esz; /* as cbuf_alloc */
  if (p->count_only) {
    *part += bytes;
    if (bytes > p->m->largest) p->m->largest = bytes;
    return CLCNN_SUCCESS;
  }
  return cbuf_alloc(p->ctx, b, bytes, what);
}

void plan_shared(struct plan *p, int slot, size_t bytes) {
  if (bytes > p->shared[slot]) p->shared[slot] = bytes;
}

cbuf *graph_shared(clcnn_net *net, int slot) { return &net->shared[slot]; }

static tensor *root_v(tensor *t) {
  while (t->valias) t = t->valias;
  return t;
}
static tensor *root_g(tensor *t) {
  while (t->galias) t = t->galias;
  return t;
}

/* Decide, without making anything: fusion, aliases, which tensors need a gradient. */
static void decide(clcnn_net *net) {
  for (int i = 0; i < net->nt; i++) {
    tensor *t = net->tensors[i];
    t->valias = t->galias = NULL;
    t->no_value = 0;
  }
  for (int i = 0; i < net->nn; i++) net->nodes[i]->fused = 0;
  for (int i = 0; i < net->nn; i++) {
    struct node *nd = net->nodes[i];
    if (nd->op->flags & OP_VIEW) { /* the same memory; the gradient too when nothing else reads the input */
      nd->out->valias = nd->in[0];
      if (nd->in[0]->uses == 1 && !graph_is_output(net, nd->in[0])) nd->out->galias = nd->in[0];
    }
  }
  for (int i = 0; i < net->nn; i++)
    if (net->nodes[i]->op->fuse) net->nodes[i]->op->fuse(net, net->nodes[i]);
  input_of(net)->needs_grad = net->input_grad;
  for (int i = 0; i < net->nn; i++) {
    struct node *nd = net->nodes[i];
    int need = nd->npar > 0;
    for (int j = 0; j < nd->nin; j++) need |= nd->in[j]->needs_grad;
    nd->out->needs_grad = need;
  }
  for (int i = 0; i < net->nloss; i++) net->losses[i]->out->needs_grad = 0;
}

/* Make (or count) every buffer a step of batches up to B needs beyond the parameters. */
/* ---- liveness: every tensor's value and gradient lives from its first write to its last read
 * on the step's timeline (forward of node i at i, the losses at nn, backward of node i at 2nn - i);
 * buffers whose lives do not overlap share memory. ---- */
struct slot {
  tensor *t;
  int grad;          /* 0: the value, 1: the gradient */
  int birth, death;
  size_t bytes;
  int buf;           /* the pool buffer it goes to */
};

static int bwd_step(const clcnn_net *net, const struct node *nd) { return 2 * net->nn - nd->index; }

/* Whether node c runs its own backward (a fused node and a view that shares its input's
 * gradient do not). */
static int runs_backward(const struct node *c) {
  return !c->fused && !((c->op->flags & OP_VIEW) && c->out->galias);
}

static void slot_value(clcnn_net *net, tensor *r, struct slot *s) {
  int end = 2 * net->nn + 1, birth = r->src->index, death = birth;
  int pinned = 0;
  for (int i = 1; i < net->nt; i++) {
    tensor *g = net->tensors[i];
    if (root_v(g) != r) continue;
    if (g->kept || g == last_of(net)) death = end;
    if (g->src->fused || g->no_value) pinned = 1;
    if (!(g->src->op->flags & OP_NO_BWD_Y) && runs_backward(g->src) && bwd_step(net, g->src) > death)
      death = bwd_step(net, g->src);
    for (int j = 0; j < net->nn; j++) {
      struct node *c = net->nodes[j];
      for (int k = 0; k < c->nin; k++) {
        if (c->in[k] != g) continue;
        if (c->fused) pinned = 1;
        if (c->index > death) death = c->index;
        if (!(c->op->flags & OP_NO_BWD_X) && runs_backward(c) && bwd_step(net, c) > death) death = bwd_step(net, c);
      }
    }
    for (int j = 0; j < net->nloss; j++)
      if (net->losses[j]->in[0] == g && net->nn > death) death = net->nn;
  }
  if (pinned) birth = 0, death = end; /* a fusion writes and reads it out of the nodes' order */
  s->birth = birth, s->death = death;
}

static void slot_grad(clcnn_net *net, tensor *r, struct slot *s) {
  int end = 2 * net->nn + 1, birth = end, death = net->nn;
  for (int i = 0; i < net->nt; i++) {
    tensor *g = net->tensors[i];
    if (root_g(g) != r) continue;
    if (g == last_of(net)) birth = net->nn; /* clcnn_net_backward_from writes it */
    if (!g->src) death = end;               /* the input's: read after the pass */
    else if (runs_backward(g->src) && bwd_step(net, g->src) > death) death = bwd_step(net, g->src);
    for (int j = 0; j < net->nn; j++) {
      struct node *c = net->nodes[j];
      for (int k = 0; k < c->nin; k++)
        if (c->in[k] == g && runs_backward(c) && bwd_step(net, c) < birth) birth = bwd_step(net, c);
    }
    for (int j = 0; j < net->nloss; j++)
      if (net->losses[j]->in[0] == g && net->nn < birth) birth = net->nn;
    if (g == input_of(net) && birth == end) birth = death; /* no path: zeroed at the end */
  }
  if (birth > death) birth = death;
  s->birth = birth, s->death = death;
}

static int slot_cmp(const void *a, const void *b) {
  const struct slot *x = a, *y = b;
  if (x->birth != y->birth) return x->birth < y->birth ? -1 : 1;
  return x->bytes > y->bytes ? -1 : x->bytes < y->bytes;
}

/* Make (or count) every buffer a step of batches up to B needs beyond the parameters. */
static clcnn_status plan_buffers(clcnn_net *net, struct plan *p, int B) {
  clcnn_ctx *ctx = net->ctx;
  size_t e = ctx->esz;
  clcnn_status st;
  tensor *last = last_of(net);
  size_t acc_size = 0;
  int acc_slots = 0;
  struct slot *slots = calloc(2 * (size_t)net->nt, sizeof *slots);
  size_t *size = calloc(2 * (size_t)net->nt, sizeof *size);
  int *free_after = calloc(2 * (size_t)net->nt, sizeof *free_after);
  if (!slots || !size || !free_after) {
    free(slots), free(size), free(free_after);
    return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (buffer plan)");
  }
  int ns = 0, nb = 0;
  for (int i = 1; i < net->nt; i++) {
    tensor *t = net->tensors[i];
    if (t->valias || t->no_value || (t->src->op->flags & OP_LOSS)) continue;
    slots[ns] = (struct slot){.t = t, .bytes = (size_t)B * tensor_size(t) * e};
    slot_value(net, t, &slots[ns++]);
  }
  for (int i = 0; i < net->nt; i++) {
    tensor *t = net->tensors[i];
    if (t->galias || !(t->needs_grad || t == last || graph_is_output(net, t))) continue;
    slots[ns] = (struct slot){.t = t, .grad = 1, .bytes = (size_t)B * tensor_size(t) * e};
    slot_grad(net, t, &slots[ns++]);
  }
  /* first fit by birth: the smallest free buffer that holds it, else the largest free one (grown) */
  qsort(slots, ns, sizeof *slots, slot_cmp);
  for (int i = 0; i < ns; i++) {
    struct slot *sl = &slots[i];
    int best = -1, big = -1;
    for (int b = 0; b < nb; b++) {
      if (free_after[b] >= sl->birth) continue;
      if (size[b] >= sl->bytes && (best < 0 || size[b] < size[best])) best = b;
      if (big < 0 || size[b] > size[big]) big = b;
    }
    if (best < 0) best = big;
    if (best < 0) best = nb++;
    if (sl->bytes > size[best]) size[best] = sl->bytes;
    free_after[best] = sl->death;
    sl->buf = best;
  }
  st = CLCNN_SUCCESS;
  if (!p->count_only) {
    net->pool = calloc(nb ? nb : 1, sizeof *net->pool);
    if (!net->pool) st = FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (buffer plan)");
    else net->npool = nb;
  }
  for (int b = 0; b < nb && !st; b++)
    st = plan_buf(p, PLAN_ACT(p), p->count_only ? NULL : &net->pool[b], size[b], "activations");
  for (int i = 0; i < ns && !st && !p->count_only; i++) {
    if (slots[i].grad) slots[i].t->gbuf = &net->pool[slots[i].buf];
    else slots[i].t->vbuf = &net->pool[slots[i].buf];
  }
  free(slots), free(size), free(free_after);
  if (st) return st;
  /* a second gradient of a tensor read several times goes to a scratch buffer, then is added;
   * losses too (two losses on one tensor that no other node reads) */
  for (int i = 0; i < net->nn + net->nloss; i++) {
    struct node *nd = i < net->nn ? net->nodes[i] : net->losses[i - net->nn];
    int slots = 0;
    for (int j = 0; j < nd->nin; j++)
      if (nd->in[j]->uses > 1 && nd->in[j]->needs_grad) {
        slots++;
        if (tensor_size(nd->in[j]) > acc_size) acc_size = tensor_size(nd->in[j]);
      }
    if (slots > acc_slots) acc_slots = slots;
  }
  if (acc_slots && !p->count_only) {
    net->acc = calloc(acc_slots, sizeof *net->acc);
    if (!net->acc) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (gradient sums)");
    net->nacc = acc_slots;
  }
  for (int j = 0; j < acc_slots; j++)
    if ((st = plan_buf(p, PLAN_ACT(p), p->count_only ? NULL : &net->acc[j], (size_t)B * acc_size * e,
                       "gradient sum")))
      return st;
  for (int i = 0; i < net->nn; i++) {
    struct node *nd = net->nodes[i];
    if (nd->op->alloc && (st = nd->op->alloc(p, nd, B))) return st;
  }
  for (int i = 0; i < net->nloss; i++) {
    struct node *nd = net->losses[i];
    if (nd->op->alloc && (st = nd->op->alloc(p, nd, B))) return st;
  }
  static const char *const shared_what[PLAN_SHARED] = {"conv GEMM output (shared)", "conv im2col grad (shared)"};
  for (int i = 0; i < PLAN_SHARED; i++)
    if (p->shared[i] &&
        (st = plan_buf(p, PLAN_SCRATCH(p), p->count_only ? NULL : &net->shared[i], p->shared[i], shared_what[i])))
      return st;
  return CLCNN_SUCCESS;
}

static void resolve(clcnn_net *net) {
  input_of(net)->vbuf = &input_of(net)->val;
  for (int i = 0; i < net->nt; i++) {
    tensor *t = net->tensors[i];
    t->v = root_v(t)->vbuf;
    t->g = root_g(t)->gbuf;
  }
}

/* The loss a net without one trains with: cross-entropy on its output against class labels. */
static clcnn_status add_implicit_loss(clcnn_net *net) {
  const struct op *xent = default_loss();
  tensor *last = last_of(net);
  if (!graph_add(net, xent, &last, 1, NULL, xent->defaults, xent->priv_size)) return net->build_st;
  net->implicit_loss = 1;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_finalize(clcnn_net *net) {
  NET_CHECK(net);
  if (net->finished) return CLCNN_SUCCESS;
  clcnn_ctx *ctx = net->ctx;
  if (!net->nn) return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_finalize: the net has no layers");
  clcnn_status st;
  if (!net->nloss && (st = add_implicit_loss(net))) return st;
  decide(net);
  clcnn_memory_estimate m = {0};
  struct plan p = {.ctx = ctx, .m = &m};
  if ((st = plan_buffers(net, &p, net->max_batch))) {
    unplan(net);
    return st;
  }
  resolve(net);
  net->finished = 1;
  return CLCNN_SUCCESS;
}

/* ---- passes ---- */
static void prof_begin(clcnn_net *net, evlist *l) {
  if (net->ctx->profiling) net->ctx->sink = l;
}
static void prof_end(clcnn_net *net) { net->ctx->sink = NULL; }

/* splitmix64: a small seeded generator, the same on every machine. */
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int runs_commands(const struct node *nd) { return !nd->fused && !(nd->op->flags & OP_VIEW); }

/* What every forward checks before its input is written: the batch, the layers, the plan. */
static clcnn_status forward_begin(clcnn_net *net, const char *fn, int n) {
  clcnn_ctx *ctx = net->ctx;
  if (n <= 0 || n > net->max_batch)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: batch %d is outside 1..%d (the net's max_batch)", fn, n,
                net->max_batch);
  if (!net->nn) return FAIL(ctx, CLCNN_ERR_STATE, "%s: the net has no layers", fn);
  clcnn_status st;
  if (!net->finished && (st = clcnn_net_finalize(net))) return st;
  net->have_forward = net->have_backward = net->have_loss = 0;
  ctx->commands = ctx->host_waits = 0;
  return CLCNN_SUCCESS;
}

/* The forward pass over n samples whose input is on the device (or on its way there). */
static clcnn_status forward_nodes(clcnn_net *net, int n) {
  clcnn_ctx *ctx = net->ctx;
  clcnn_status st;
  evlist_clear(&net->loss_prof);
  for (int i = 0; i < net->nloss; i++) net->losses[i]->have_targets = 0;
  if (net->training) net->counter++;
  for (int i = 0; i < net->nn; i++) {
    struct node *nd = net->nodes[i];
    nd->training = net->training;
    if (nd->op->flags & OP_RANDOM) { /* this node's random numbers for this step */
      uint64_t k = net->seed ^ (net->counter * 0xd1b54a32d192ed03ull) ^ ((uint64_t)i << 48);
      nd->key = splitmix64(&k);
    }
    evlist_clear(&nd->prof[0]);
    evlist_clear(&nd->prof[1]);
    if (!runs_commands(nd)) continue;
    prof_begin(net, &nd->prof[0]);
    st = nd->op->forward(ctx, nd, n);
    prof_end(net);
    if (st) return st;
  }
  net->n = n;
  net->have_forward = 1;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_forward(clcnn_net *net, const void *x, int n) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!x) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_forward: x is NULL");
  clcnn_status st = forward_begin(net, "clcnn_net_forward", n);
  if (st) return st;
  tensor *in = input_of(net);
  if ((st = clcnn__write(ctx, in->v, 0, (size_t)n * tensor_size(in) * ctx->esz, x, "net input"))) return st;
  return forward_nodes(net, n);
}

/* Whether a and b hold tensors of one shape; else says so for fn. */
static clcnn_status same_shape(clcnn_net *net, const char *fn, const tensor *a, const char *an, const tensor *b,
                               const char *bn) {
  if (a->c == b->c && a->h == b->h && a->w == b->w) return CLCNN_SUCCESS;
  return FAIL(net->ctx, CLCNN_ERR_SHAPE, "%s: %s is %dx%dx%d, %s %dx%dx%d", fn, an, a->c, a->h, a->w, bn, b->c, b->h,
              b->w);
}

CLCNN_API clcnn_status clcnn_net_forward_net(clcnn_net *net, clcnn_net *src) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  const char *fn = "clcnn_net_forward_net";
  if (!src) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: src is NULL", fn);
  if (src == net) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: a net cannot read its own output", fn);
  if (src->ctx != ctx) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: the two nets have different contexts", fn);
  if (!src->have_forward) return FAIL(ctx, CLCNN_ERR_STATE, "%s: src has no forward pass to read", fn);
  if (!net->nn) return FAIL(ctx, CLCNN_ERR_STATE, "%s: the net has no layers", fn);
  clcnn_status st = same_shape(net, fn, last_of(src), "src's output", input_of(net), "this net's input");
  if (st || (st = forward_begin(net, fn, src->n))) return st;
  tensor *in = input_of(net);
  if ((st = graph_copy(ctx, in->v, last_of(src)->v, (size_t)src->n * tensor_size(in), 0))) return st;
  return forward_nodes(net, src->n);
}

CLCNN_API clcnn_status clcnn_net_forward_noise(clcnn_net *net, int n, uint64_t key) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  clcnn_status st = forward_begin(net, "clcnn_net_forward_noise", n);
  if (st) return st;
  tensor *in = input_of(net);
  size_t cnt = (size_t)n * tensor_size(in);
  cl_ulong k = key;
  cl_kernel kn;
  if ((st = clcnn__kernel(ctx, KP_DROPOUT, "normal_fill", &kn)) ||
      (st = clcnn__args(ctx, kn, "normal_fill", MEM_ARG(in->v), INT_ARG(cnt), sizeof k, (void *)&k, (size_t)0)) ||
      (st = clcnn__run(ctx, kn, "normal_fill", (cnt + 1) / 2, NULL, 0, &in->v, 1)))
    return st;
  return forward_nodes(net, n);
}

/* Where node nd's backward writes input j's gradient: the tensor's own buffer when it is the
 * first gradient of that tensor in this pass, else a scratch buffer added to it after. */
static void route_grads(clcnn_net *net, struct node *nd, int *second) {
  int slot = 0;
  for (int j = 0; j < nd->nin; j++) {
    tensor *t = nd->in[j];
    second[j] = -1;
    if (!t->needs_grad) {
      nd->dx[j] = NULL;
    } else if (!t->gseen) {
      nd->dx[j] = t->g;
      t->gseen = 1;
    } else {
      second[j] = slot;
      nd->dx[j] = &net->acc[slot++];
    }
  }
}

static clcnn_status add_seconds(clcnn_net *net, struct node *nd, const int *second, int n) {
  clcnn_status st;
  for (int j = 0; j < nd->nin; j++)
    if (second[j] >= 0 &&
        (st = graph_copy(net->ctx, nd->in[j]->g, &net->acc[second[j]], (size_t)n * tensor_size(nd->in[j]), 1)))
      return st;
  return CLCNN_SUCCESS;
}

/* Backward over every node, from the gradients the losses (or the caller) wrote. */
static clcnn_status backward_nodes(clcnn_net *net) {
  clcnn_ctx *ctx = net->ctx;
  clcnn_status st = CLCNN_SUCCESS;
  int second[64], *sec = second;
  int maxin = 0;
  for (int i = 0; i < net->nn; i++)
    if (net->nodes[i]->nin > maxin) maxin = net->nodes[i]->nin;
  if (maxin > 64 && !(sec = malloc(maxin * sizeof *sec)))
    return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (backward)");
  int pfirst = clcnn_net_num_params(net); /* the index of node i's first parameter */
  for (int i = net->nn - 1; i >= 0 && !st; i--) {
    struct node *nd = net->nodes[i];
    pfirst -= nd->npar;
    evlist_clear(&nd->prof[1]);
    if (!nd->out->gseen) continue; /* no gradient reaches it */
    if (nd->fused || ((nd->op->flags & OP_VIEW) && nd->out->galias)) { /* its input's gradient is its own */
      for (int j = 0; j < nd->nin; j++) nd->in[j]->gseen |= nd->in[j]->needs_grad;
      continue;
    }
    int want = nd->npar > 0;
    for (int j = 0; j < nd->nin; j++) want |= nd->in[j]->needs_grad;
    if (!want) continue;
    route_grads(net, nd, sec);
    prof_begin(net, &nd->prof[1]);
    st = nd->op->backward(ctx, nd, net->n);
    if (!st) st = add_seconds(net, nd, sec, net->n);
    prof_end(net);
    /* a replica: its group reads these gradients now, while the backward goes on */
    if (!st && net->group && nd->npar) st = clcnn__replicas_grads_ready(net->group, net->group_index, pfirst, nd->npar);
  }
  if (sec != second) free(sec);
  if (st) return st;
  tensor *in = input_of(net);
  if (in->needs_grad && !in->gseen) /* no path from the input to the output */
    if ((st = clcnn__zero(ctx, in->g, (size_t)net->n * tensor_size(in) * ctx->esz, "input grad"))) return st;
  net->have_backward = 1;
  if (net->group) clcnn__replicas_backward_done(net->group, net->group_index, net->n);
  return CLCNN_SUCCESS;
}

static void clear_seen(clcnn_net *net) {
  for (int i = 0; i < net->nt; i++) net->tensors[i]->gseen = 0;
}

/* Every loss on the last forward's outputs, each writing its weighted gradient; then backward. */
static clcnn_status run_losses(clcnn_net *net) {
  clcnn_ctx *ctx = net->ctx;
  clcnn_status st = CLCNN_SUCCESS;
  clear_seen(net);
  evlist_clear(&net->loss_prof);
  prof_begin(net, &net->loss_prof);
  int second[1];
  for (int i = 0; i < net->nloss && !st; i++) {
    struct node *nd = net->losses[i];
    route_grads(net, nd, second);
    if (!nd->dx[0]) nd->dx[0] = nd->in[0]->g; /* nothing takes it further: written for nothing */
    st = nd->op->backward(ctx, nd, net->n);
    if (!st) st = add_seconds(net, nd, second, net->n);
  }
  prof_end(net);
  if (st) return st;
  net->have_loss = 1;
  return backward_nodes(net);
}

static struct node *loss_of(clcnn_net *net, const clcnn_tensor *t) {
  for (int i = 0; t && i < net->nloss; i++)
    if (net->losses[i]->out == t) return net->losses[i];
  return NULL;
}

CLCNN_API int clcnn_net_num_losses(const clcnn_net *net) { return net ? net->nloss : 0; }

CLCNN_API clcnn_status clcnn_net_loss_info(const clcnn_net *net, int i, clcnn_loss_info *info) {
  if (!net || !info) return CLCNN_ERR_NULL_POINTER;
  if (i < 0 || i >= net->nloss)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "loss %d does not exist (the net has %d)", i, net->nloss);
  const struct node *nd = net->losses[i];
  info->loss = nd->out;
  info->input = nd->in[0];
  info->type = (clcnn_layer_type)nd->op->type;
  info->weight = nd->weight;
  info->classes = 0;
  info->targets = (int)tensor_size(nd->in[0]);
  if (nd->op->target_shape) nd->op->target_shape(nd, &info->classes, &info->targets);
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_set_target(clcnn_net *net, clcnn_tensor *loss, const void *targets) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!targets) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_set_target: targets is NULL");
  struct node *nd = loss_of(net, loss);
  if (!nd) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_set_target: %s is not a loss of this net",
                       loss ? loss->name : "NULL");
  if (!net->have_forward)
    return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_set_target: no forward pass yet (targets follow its batch)");
  return nd->op->targets(ctx, nd, targets, net->n);
}

CLCNN_API clcnn_status clcnn_net_backward_losses(clcnn_net *net) {
  NET_CHECK(net);
  if (!net->have_forward)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_backward_losses: no forward pass to go back through");
  for (int i = 0; i < net->nloss; i++)
    if (!net->losses[i]->have_targets)
      return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_backward_losses: %s has no targets for this batch "
                  "(clcnn_net_set_target)", WHERE(net->losses[i]));
  return run_losses(net);
}

CLCNN_API clcnn_status clcnn_net_backward(clcnn_net *net, const int32_t *labels) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!labels) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_backward: labels is NULL");
  if (!net->have_forward)
    return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_backward: no forward pass to go back through");
  if (net->nloss != 1 || !(net->losses[0]->op->flags & OP_DEFAULT_LOSS))
    return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_backward: the net has %d loss%s, not one cross-entropy: give each "
                "its targets (clcnn_net_set_target) and call clcnn_net_backward_losses", net->nloss,
                net->nloss == 1 ? "" : "es");
  clcnn_status st = net->losses[0]->op->targets(ctx, net->losses[0], labels, net->n);
  if (st) return st;
  return run_losses(net);
}

/* Backward from the gradient just written into the output's gradient buffer (no loss ran). */
static clcnn_status backward_from_output(clcnn_net *net) {
  net->have_loss = 0;
  clear_seen(net);
  last_of(net)->gseen = 1;
  return backward_nodes(net);
}

CLCNN_API clcnn_status clcnn_net_backward_from(clcnn_net *net, const void *dout) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  if (!dout) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_backward_from: dout is NULL");
  if (!net->have_forward)
    return FAIL(ctx, CLCNN_ERR_STATE, "clcnn_net_backward_from: no forward pass to go back through");
  tensor *out = last_of(net);
  clcnn_status st = clcnn__write(ctx, out->g, 0, (size_t)net->n * tensor_size(out) * ctx->esz, dout, "output grad");
  if (st) return st;
  return backward_from_output(net);
}

CLCNN_API clcnn_status clcnn_net_backward_net(clcnn_net *net, clcnn_net *next) {
  NET_CHECK(net);
  clcnn_ctx *ctx = net->ctx;
  const char *fn = "clcnn_net_backward_net";
  if (!next) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: next is NULL", fn);
  if (next == net) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: a net cannot follow itself", fn);
  if (next->ctx != ctx) return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: the two nets have different contexts", fn);
  if (!net->have_forward) return FAIL(ctx, CLCNN_ERR_STATE, "%s: no forward pass to go back through", fn);
  if (!next->have_backward)
    return FAIL(ctx, CLCNN_ERR_STATE, "%s: next has no backward pass since its last forward", fn);
  if (!next->input_grad)
    return FAIL(ctx, CLCNN_ERR_STATE, "%s: next's input gradient is off (clcnn_net_set_input_grad)", fn);
  if (next->n != net->n)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: next's last batch has %d samples, this net's %d", fn, next->n,
                net->n);
  tensor *out = last_of(net);
  clcnn_status st = same_shape(net, fn, input_of(next), "next's input", out, "this net's output");
  if (st || (st = graph_copy(ctx, out->g, input_of(next)->g, (size_t)net->n * tensor_size(out), 0))) return st;
  return backward_from_output(net);
}

static double to_double(clcnn_ctx *ctx, const void *p) {
  return ctx->prec == CLCNN_DOUBLE ? *(const double *)p : *(const float *)p;
}

CLCNN_API clcnn_status clcnn_net_loss(clcnn_net *net, double *loss) {
  NET_CHECK(net);
  if (!loss) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_loss: loss is NULL");
  if (!net->have_loss)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_loss: no clcnn_net_backward() with labels since the last forward");
  double total = 0;
  for (int i = 0; i < net->nloss; i++) {
    double v[1];
    clcnn_status st = net->losses[i]->op->value(net->ctx, net->losses[i], v);
    if (st) return st;
    total += net->losses[i]->weight * v[0];
  }
  *loss = total;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_loss_value(clcnn_net *net, clcnn_tensor *loss, double *value) {
  NET_CHECK(net);
  struct node *nd = loss_of(net, loss);
  if (!value) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_loss_value: value is NULL");
  if (!nd) return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_loss_value: %s is not a loss of this net",
                       loss ? loss->name : "NULL");
  if (!net->have_loss)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_loss_value: no backward with targets since the last forward");
  return nd->op->value(net->ctx, nd, value);
}

cbuf *graph_train_stats(clcnn_net *net) { return &net->tstats; }

CLCNN_API clcnn_status clcnn_net_train_stats(clcnn_net *net, double *loss_sum, double *correct, double *seen) {
  NET_CHECK(net);
  double v[3];
  unsigned char h[3 * sizeof(double)];
  clcnn_status st = clcnn__read(net->ctx, &net->tstats, 0, 3 * net->ctx->esz, h, "training sums");
  if (st) return st;
  for (int i = 0; i < 3; i++) v[i] = to_double(net->ctx, h + i * net->ctx->esz);
  if (loss_sum) *loss_sum = v[0];
  if (correct) *correct = v[1];
  if (seen) *seen = v[2];
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_wait_inputs(clcnn_net *net) {
  NET_CHECK(net);
  cl_event ev[64];
  cl_uint n = 0;
  cbuf *in = input_of(net)->v;
  if (in->wev) ev[n++] = in->wev;
  for (int i = 0; i < net->nloss && n < 63; i++) {
    cbuf *t = net->losses[i]->op->target_buf(net->losses[i]);
    if (t && t->wev) ev[n++] = t->wev;
  }
  tensor *out = last_of(net);
  if (out->g && out->g->wev && n < 64) ev[n++] = out->g->wev;
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
  return clcnn_net_read_tensor(net, last_of(net), out);
}

CLCNN_API clcnn_status clcnn_net_read_tensor(clcnn_net *net, clcnn_tensor *t, void *out) {
  NET_CHECK(net);
  if (!out || !t) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_read_tensor: tensor or out is NULL");
  if (!net->have_forward) return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_tensor: no forward pass yet");
  if (t->src && (t->src->op->flags & OP_LOSS)) {
    double v;
    clcnn_status st = clcnn_net_loss_value(net, t, &v);
    if (!st && net->ctx->prec == CLCNN_DOUBLE) *(double *)out = v;
    else if (!st) *(float *)out = (float)v;
    return st;
  }
  if (root_v(t)->no_value)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_tensor: %s is not kept (a fused node writes past it)",
                t->name);
  if (t != last_of(net) && t != input_of(net) && !t->kept)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_tensor: %s was not kept (clcnn_net_keep_tensor before the "
                "graph is finished): its memory is reused", t->name);
  return clcnn__read(net->ctx, t->v, 0, (size_t)net->n * tensor_size(t) * net->ctx->esz, out, t->name);
}

CLCNN_API clcnn_status clcnn_net_read_input_grad(clcnn_net *net, void *dx) {
  NET_CHECK(net);
  if (!dx) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_read_input_grad: dx is NULL");
  if (!net->have_backward)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_read_input_grad: no backward pass since the last forward");
  if (!net->input_grad)
    return FAIL(net->ctx, CLCNN_ERR_STATE,
                "clcnn_net_read_input_grad: the input gradient is off (clcnn_net_set_input_grad)");
  tensor *in = input_of(net);
  return clcnn__read(net->ctx, in->g, 0, (size_t)net->n * tensor_size(in) * net->ctx->esz, dx, "input grad");
}

CLCNN_API clcnn_status clcnn_net_zero_grad(clcnn_net *net) {
  NET_CHECK(net);
  clcnn_status st;
  for (int i = 0; i < net->nn; i++)
    for (int j = 0; j < net->nodes[i]->npar; j++) {
      struct param *p = &net->nodes[i]->par[j];
      if ((st = clcnn__zero(net->ctx, &p->g, p->g.bytes, p->name))) return st;
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

/* ---- modes ---- */
CLCNN_API clcnn_status clcnn_net_set_training(clcnn_net *net, int training) {
  NET_CHECK(net);
  net->training = training != 0;
  return CLCNN_SUCCESS;
}
CLCNN_API int clcnn_net_training(const clcnn_net *net) { return net ? net->training : 0; }

CLCNN_API clcnn_status clcnn_net_set_input_grad(clcnn_net *net, int on) {
  NET_CHECK(net);
  if (net->finished && (on != 0) != net->input_grad) { /* the plan follows it: plan again */
    unplan(net);
    net->finished = 0;
    net->input_grad = on != 0;
    if (net->implicit_loss) { /* made again by finishing */
      node_free(net->losses[--net->nloss]);
      tensor_free(net->tensors[--net->nt]);
      last_of(net)->uses--;
      net->implicit_loss = 0;
    }
    net->have_forward = net->have_backward = net->have_loss = 0;
    return clcnn_net_finalize(net);
  }
  net->input_grad = on != 0;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_set_seed(clcnn_net *net, uint64_t seed, uint64_t counter) {
  NET_CHECK(net);
  net->seed = seed;
  net->counter = counter;
  return CLCNN_SUCCESS;
}
CLCNN_API clcnn_status clcnn_net_set_batch_offset(clcnn_net *net, int64_t first) {
  NET_CHECK(net);
  if (first < 0 || first > ((int64_t)1 << 48))
    return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_set_batch_offset: %lld is outside 0..2^48",
                (long long)first);
  net->batch_offset = first;
  return CLCNN_SUCCESS;
}
int64_t graph_batch_offset(const clcnn_net *net) { return net->batch_offset; }
void clcnn__net_set_group(clcnn_net *net, struct clcnn_replicas *g, int index) { net->group = g, net->group_index = index; }
int clcnn__net_in_group(const clcnn_net *net) { return net->group != NULL; }

CLCNN_API clcnn_status clcnn_net_get_seed(const clcnn_net *net, uint64_t *seed, uint64_t *counter) {
  if (!net || !seed || !counter) return CLCNN_ERR_NULL_POINTER;
  *seed = net->seed;
  *counter = net->counter;
  return CLCNN_SUCCESS;
}

/* ---- queries ---- */
CLCNN_API int clcnn_net_num_layers(const clcnn_net *net) { return net ? net->nn : 0; }

CLCNN_API clcnn_layer_type clcnn_net_layer_type(const clcnn_net *net, int i) {
  return net && i >= 0 && i < net->nn ? (clcnn_layer_type)net->nodes[i]->op->type : (clcnn_layer_type)-1;
}

CLCNN_API int clcnn_net_layer_fused(const clcnn_net *net, int i) {
  return net && i >= 0 && i < net->nn ? net->finished && net->nodes[i]->fused : -1;
}

CLCNN_API const char *clcnn_net_layer_name(const clcnn_net *net, int i) {
  return net && i >= 0 && i < net->nn ? net->nodes[i]->name : NULL;
}

CLCNN_API int clcnn_net_layer_inputs(const clcnn_net *net, int i, clcnn_tensor **in, int max) {
  if (!net || i < 0 || i >= net->nn || (max > 0 && !in)) return -1;
  const struct node *nd = net->nodes[i];
  for (int j = 0; j < nd->nin && j < max; j++) in[j] = nd->in[j];
  return nd->nin;
}

CLCNN_API clcnn_status clcnn_net_layer_shape(const clcnn_net *net, int i, int dims[4]) {
  if (!net || !dims) return CLCNN_ERR_NULL_POINTER;
  if (i < -1 || i >= net->nn) return FAIL(net->ctx, CLCNN_ERR_RANGE, "layer %d does not exist (0..%d)", i, net->nn - 1);
  return clcnn_tensor_shape(i < 0 ? input_of(net) : net->nodes[i]->out, dims);
}

CLCNN_API size_t clcnn_net_output_size(const clcnn_net *net) { return net ? tensor_size(last_of(net)) : 0; }
CLCNN_API size_t clcnn_net_input_size(const clcnn_net *net) { return net ? tensor_size(input_of(net)) : 0; }

CLCNN_API const char *clcnn_net_layer_describe(const clcnn_net *net, int i, char *buf, size_t size) {
  if (!buf || !size) return buf;
  if (!net || i < 0 || i >= net->nn) {
    snprintf(buf, size, "(no layer %d)", i);
    return buf;
  }
  const struct node *nd = net->nodes[i];
  nd->op->describe(nd, buf, size);
  return buf;
}

/* ---- parameters and buffers, in node order ---- */
static struct param *param_at(const clcnn_net *net, int i, struct node **owner) {
  for (int j = 0; i >= 0 && j < net->nn; j++) {
    struct node *nd = net->nodes[j];
    if (i < nd->npar) return *owner = nd, &nd->par[i];
    i -= nd->npar;
  }
  return NULL;
}

CLCNN_API int clcnn_net_num_params(const clcnn_net *net) {
  int n = 0;
  for (int j = 0; net && j < net->nn; j++) n += net->nodes[j]->npar;
  return n;
}

static void info_of(const struct node *nd, const struct param *p, int is_nbt, clcnn_param_info *info) {
  memset(info, 0, sizeof *info);
  info->layer = nd->index;
  snprintf(info->name, sizeof info->name, "%s.%s", nd->name, is_nbt ? "num_batches_tracked" : p->name);
  if (is_nbt) {
    info->ndim = 0, info->dims[0] = 1, info->count = 1, info->dtype = CLCNN_DTYPE_INT64;
    return;
  }
  info->ndim = p->ndim;
  for (int d = 0; d < p->ndim; d++) info->dims[d] = p->dims[d];
  info->count = p->count;
  info->dtype = CLCNN_DTYPE_REAL;
}

CLCNN_API clcnn_status clcnn_net_param_info(const clcnn_net *net, int i, clcnn_param_info *info) {
  if (!net || !info) return CLCNN_ERR_NULL_POINTER;
  struct node *nd;
  struct param *p = param_at(net, i, &nd);
  if (!p)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "parameter %d does not exist (the net has %d)", i, clcnn_net_num_params(net));
  info_of(nd, p, 0, info);
  return CLCNN_SUCCESS;
}

static clcnn_status param_io(clcnn_net *net, int i, void *host, int grad, int write) {
  NET_CHECK(net);
  if (!host) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "parameter %d: host array is NULL", i);
  clcnn_param_info info;
  clcnn_status st = clcnn_net_param_info(net, i, &info);
  if (st) return st;
  struct node *nd;
  struct param *p = param_at(net, i, &nd);
  cbuf *b = grad ? &p->g : &p->v;
  size_t bytes = p->count * net->ctx->esz;
  if (!write) return clcnn__read(net->ctx, b, 0, bytes, host, info.name);
  if ((st = clcnn__write(net->ctx, b, 0, bytes, host, info.name))) return st;
  return clcnn__wait(net->ctx, b);
}

CLCNN_API clcnn_status clcnn_net_param_write(clcnn_net *net, int i, const void *host) {
  return param_io(net, i, (void *)host, 0, 1);
}
CLCNN_API clcnn_status clcnn_net_param_read(clcnn_net *net, int i, void *host) { return param_io(net, i, host, 0, 0); }
CLCNN_API clcnn_status clcnn_net_grad_read(clcnn_net *net, int i, void *host) { return param_io(net, i, host, 1, 0); }

clcnn_status clcnn__net_param(clcnn_net *net, int i, cbuf **value, cbuf **grad, size_t *count) {
  struct node *nd;
  struct param *p = param_at(net, i, &nd);
  if (!p)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "parameter %d does not exist (the net has %d)", i, clcnn_net_num_params(net));
  *value = &p->v, *grad = &p->g, *count = p->count;
  return CLCNN_SUCCESS;
}

/* Buffer i: a real buffer of a node (*p), or its num_batches_tracked (*p NULL). */
static struct node *buffer_at(const clcnn_net *net, int i, struct param **p) {
  for (int j = 0; i >= 0 && j < net->nn; j++) {
    struct node *nd = net->nodes[j];
    if (i < nd->nbuf) return *p = &nd->buf[i], nd;
    i -= nd->nbuf;
    if (nd->has_nbt && i-- == 0) return *p = NULL, nd;
  }
  return NULL;
}

CLCNN_API int clcnn_net_num_buffers(const clcnn_net *net) {
  int n = 0;
  for (int j = 0; net && j < net->nn; j++) n += net->nodes[j]->nbuf + net->nodes[j]->has_nbt;
  return n;
}

CLCNN_API clcnn_status clcnn_net_buffer_info(const clcnn_net *net, int i, clcnn_param_info *info) {
  if (!net || !info) return CLCNN_ERR_NULL_POINTER;
  struct param *p;
  struct node *nd = buffer_at(net, i, &p);
  if (!nd)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "buffer %d does not exist (the net has %d)", i, clcnn_net_num_buffers(net));
  info_of(nd, p, p == NULL, info);
  return CLCNN_SUCCESS;
}

static clcnn_status buffer_io(clcnn_net *net, int i, void *host, int write) {
  NET_CHECK(net);
  clcnn_param_info info;
  clcnn_status st = clcnn_net_buffer_info(net, i, &info);
  if (st) return st;
  if (!host) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "buffer %s: host array is NULL", info.name);
  struct param *p;
  struct node *nd = buffer_at(net, i, &p);
  if (!p) {
    if (write) {
      int64_t v;
      memcpy(&v, host, sizeof v);
      if (v < 0) return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: %lld is negative", info.name, (long long)v);
      nd->nbt = v;
    } else {
      memcpy(host, &nd->nbt, sizeof nd->nbt);
    }
    return CLCNN_SUCCESS;
  }
  size_t bytes = p->count * net->ctx->esz;
  if (!write) return clcnn__read(net->ctx, &p->v, 0, bytes, host, info.name);
  if ((st = clcnn__write(net->ctx, &p->v, 0, bytes, host, info.name))) return st;
  return clcnn__wait(net->ctx, &p->v);
}

CLCNN_API clcnn_status clcnn_net_buffer_read(clcnn_net *net, int i, void *host) { return buffer_io(net, i, host, 0); }
CLCNN_API clcnn_status clcnn_net_buffer_write(clcnn_net *net, int i, const void *host) {
  return buffer_io(net, i, (void *)host, 1);
}

/* ---- initialisation ---- */
/* A standard normal from two uniforms (Box-Muller). */
static double normal(uint64_t *s) {
  double u1 = ((splitmix64(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  double u2 = (splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
  return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

CLCNN_API clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init rule, uint64_t seed) {
  NET_CHECK(net);
  if (rule != CLCNN_INIT_DEFAULT && rule != CLCNN_INIT_HE && rule != CLCNN_INIT_XAVIER && rule != CLCNN_INIT_DCGAN)
    return FAIL(net->ctx, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_net_init: unknown rule %d", (int)rule);
  clcnn_ctx *ctx = net->ctx;
  uint64_t s = seed;
  clcnn_status st;
  for (int j = 0; j < net->nn; j++) {
    struct node *nd = net->nodes[j];
    for (int i = 0; i < nd->npar; i++) {
      struct param *p = &nd->par[i];
      if (p->init != PINIT_WEIGHT && p->init != PINIT_BIAS) {
        if ((st = param_reset(ctx, p))) return st;
        continue;
      }
      int is_bias = p->init == PINIT_BIAS;
      void *host = malloc(p->count * ctx->esz);
      if (!host) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (init)");
      for (size_t k = 0; k < p->count; k++) {
        double v;
        if (rule == CLCNN_INIT_DEFAULT) { /* kaiming_uniform_(a=sqrt(5)) and the bias rule: 1/sqrt(fan_in) */
          double u = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
          v = (2 * u - 1) / sqrt(p->fan_in);
        } else if (is_bias) {
          v = 0;
        } else if (rule == CLCNN_INIT_HE) {
          v = normal(&s) * sqrt(2.0 / p->fan_in);
        } else if (rule == CLCNN_INIT_DCGAN) {
          v = normal(&s) * 0.02;
        } else {
          double u = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
          v = (2 * u - 1) * sqrt(6.0 / (p->fan_in + p->fan_out));
        }
        if (ctx->prec == CLCNN_DOUBLE) ((double *)host)[k] = v;
        else ((float *)host)[k] = (float)v;
      }
      st = clcnn__write(ctx, &p->v, 0, p->count * ctx->esz, host, p->name);
      if (!st) st = clcnn__wait(ctx, &p->v);
      free(host);
      if (st) return st;
    }
    for (int i = 0; i < nd->nbuf; i++)
      if ((st = param_reset(ctx, &nd->buf[i]))) return st;
    nd->nbt = 0;
  }
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_init_params(clcnn_net *net, uint64_t seed) {
  return clcnn_net_init(net, CLCNN_INIT_DEFAULT, seed);
}

/* ---- profiling ---- */
static evlist *prof_list(clcnn_net *net, int layer, int dir) {
  return layer == net->nn ? &net->loss_prof : &net->nodes[layer]->prof[dir];
}

CLCNN_API clcnn_status clcnn_net_profile(clcnn_net *net, int layer, int dir, uint64_t *ns) {
  NET_CHECK(net);
  if (!ns) return FAIL(net->ctx, CLCNN_ERR_NULL_POINTER, "clcnn_net_profile: ns is NULL");
  if (!net->ctx->profiling)
    return FAIL(net->ctx, CLCNN_ERR_STATE, "clcnn_net_profile: the context was made without profiling");
  if (layer < 0 || layer > net->nn || dir < 0 || dir > 1)
    return FAIL(net->ctx, CLCNN_ERR_RANGE, "clcnn_net_profile: layer %d (0..%d) or direction %d (0, 1) out of range",
                layer, net->nn, dir);
  if (layer == net->nn && dir == 0) {
    *ns = 0;
    return CLCNN_SUCCESS;
  }
  evlist *l = prof_list(net, layer, dir);
  if (l->n) {
    net->ctx->host_waits++;
    cl_int e = clWaitForEvents((cl_uint)l->n, l->ev);
    if (e != CL_SUCCESS) return CLFAIL(net->ctx, e, "clWaitForEvents", "profile");
  }
  *ns = evlist_ns(l);
  return CLCNN_SUCCESS;
}

CLCNN_API int clcnn_net_profile_cmds(clcnn_net *net, int layer, int dir, clcnn_profile_cmd *out, int max) {
  uint64_t ns;
  if (!net || (max > 0 && !out) || clcnn_net_profile(net, layer, dir, &ns)) return -1;
  if (layer == net->nn && dir == 0) return 0;
  evlist *l = prof_list(net, layer, dir);
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

/* ---- memory estimate: the plan counted for a batch, the parameters, the optimizer's state and
 * the context's scratch the kinds reserve ---- */
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
  int slots = 0; /* optimizer state tensors per parameter, as clcnn_optim_create makes them */
  if (optim && optim->kind == CLCNN_OPTIM_SGD) slots = optim->momentum != 0;
  else if (optim && optim->kind == CLCNN_OPTIM_RMSPROP) slots = 1 + (optim->momentum > 0);
  else if (optim) slots = 2;
  clcnn_memory_estimate *m = out;
  est_add(m, &m->activations, B * clcnn_net_input_size(net) * e, e); /* the input */
  est_add(m, &m->activations, 3 * e, e);                             /* training sums */
  for (int j = 0; j < net->nn; j++) {
    struct node *nd = net->nodes[j];
    for (int i = 0; i < nd->npar; i++) {
      est_add(m, &m->parameters, nd->par[i].count * e, e);
      est_add(m, &m->gradients, nd->par[i].count * e, e);
      for (int s = 0; s < slots; s++) est_add(m, &m->optimizer, nd->par[i].count * e, e);
    }
    for (int i = 0; i < nd->nbuf; i++) est_add(m, &m->parameters, nd->buf[i].count * e, e);
  }
  struct plan p = {.ctx = ctx, .count_only = 1, .m = m};
  clcnn_status st;
  /* a net without a loss gets one when it is finished: count it on a node made for the count */
  struct node tmp = {0};
  tensor tout = {0}, *tin = last_of(net);
  const struct op *xent = default_loss();
  int implicit = !net->finished && !net->nloss && net->nn;
  if (!net->finished) decide(net);
  if (implicit) {
    void *priv = malloc(xent->priv_size);
    if (!priv) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    memcpy(priv, xent->defaults, xent->priv_size);
    tmp.op = xent, tmp.in = &tin, tmp.nin = 1, tmp.out = &tout, tmp.priv = priv, tmp.weight = 1;
    tin->uses++;
    st = xent->setup(ctx, &tmp);
    if (!st) st = xent->alloc(&p, &tmp, batch);
    tin->uses--;
    free(priv);
    if (st) return st;
  }
  if ((st = plan_buffers(net, &p, batch))) return st;
  for (int i = 0; i < net->nt; i++) { /* past the kernels' int indices (the kinds check their own buffers) */
    tensor *t = net->tensors[i];
    if (B * tensor_size(t) > INT_MAX)
      return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: batch %d: %s (%d,%d,%d) is too large", fn, batch, t->name, t->c, t->h,
                  t->w);
  }
  for (int j = 0; j < net->nn; j++) {
    struct node *nd = net->nodes[j];
    if (runs_commands(nd) && nd->op->need) nd->op->need(ctx, nd, batch, &p.need);
  }
  size_t ctxbufs[] = {p.need.pack_a, p.need.pack_b, p.need.part, p.need.transient};
  for (int j = 0; j < 4; j++)
    if (ctxbufs[j]) est_add(m, &m->scratch, ctxbufs[j], e);
  m->total = m->parameters + m->gradients + m->optimizer + m->activations + m->scratch;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_net_largest_batch(clcnn_net *net, const clcnn_optim_params *optim, uint64_t global_bytes,
                                               uint64_t max_alloc_bytes, int max_batch, int *batch) {
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
