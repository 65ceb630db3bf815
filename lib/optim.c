/* lib/optim.c - torch.optim's SGD, Adam, AdamW and RMSprop over every parameter of a net,
 * run on the device: one kernel per parameter (cl/optim.cl), chained after the backward pass
 * by the buffers' events, so a step makes no host wait. Each parameter has the state tensors
 * PyTorch keeps for it (its "slots"), zero at creation; the step count is shared, like the
 * 'step' entries PyTorch keeps per parameter, which all move together. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_SLOTS 2

struct clcnn_optim {
  clcnn_net *net; /* borrowed: the net outlives the optimizer */
  clcnn_ctx *ctx; /* the net's */
  clcnn_optim_params p;
  int64_t steps;                    /* steps taken: PyTorch's state['step'] */
  int nparams, nslots;
  const char *slot_name[MAX_SLOTS]; /* static strings */
  size_t *count;                    /* nparams element counts, owned */
  cbuf *state;                      /* nparams * nslots: state[i * nslots + s], owned */
};

static const char *kind_name(clcnn_optim_kind k) {
  switch (k) {
  case CLCNN_OPTIM_SGD: return "SGD";
  case CLCNN_OPTIM_ADAM: return "Adam";
  case CLCNN_OPTIM_ADAMW: return "AdamW";
  case CLCNN_OPTIM_RMSPROP: return "RMSprop";
  }
  return "unknown";
}

CLCNN_API void clcnn_optim_defaults(clcnn_optim_kind kind, clcnn_optim_params *p) {
  if (!p) return;
  memset(p, 0, sizeof *p);
  p->kind = kind;
  switch (kind) {
  case CLCNN_OPTIM_SGD: /* PyTorch requires lr; momentum, dampening, weight decay 0 */
    p->lr = 0.01;
    break;
  case CLCNN_OPTIM_ADAM:
  case CLCNN_OPTIM_ADAMW:
    p->lr = 1e-3;
    p->beta1 = 0.9;
    p->beta2 = 0.999;
    p->eps = 1e-8;
    p->weight_decay = kind == CLCNN_OPTIM_ADAMW ? 1e-2 : 0;
    break;
  case CLCNN_OPTIM_RMSPROP:
    p->lr = 1e-2;
    p->alpha = 0.99;
    p->eps = 1e-8;
    break;
  }
}

/* ---- checks, worded as torch.optim's ValueErrors; NaN and infinities are refused too ---- */
static clcnn_status check_nonneg(clcnn_ctx *ctx, const char *fn, const char *what, double v) {
  if (v >= 0 && isfinite(v)) return CLCNN_SUCCESS;
  return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: invalid %s %g: it must be a finite number >= 0",
              fn, what, v);
}

static clcnn_status check_beta(clcnn_ctx *ctx, const char *fn, const char *what, double v) {
  if (v >= 0 && v < 1) return CLCNN_SUCCESS;
  return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: invalid %s %g: it must be in [0, 1)", fn,
              what, v);
}

static clcnn_status check_params(clcnn_ctx *ctx, const char *fn, const clcnn_optim_params *p) {
  clcnn_status st;
  if ((st = check_nonneg(ctx, fn, "learning rate", p->lr))) return st;
  switch (p->kind) {
  case CLCNN_OPTIM_SGD:
    if ((st = check_nonneg(ctx, fn, "SGD momentum", p->momentum)) ||
        (st = check_nonneg(ctx, fn, "SGD weight_decay", p->weight_decay)))
      return st;
    if (!isfinite(p->dampening))
      return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: invalid SGD dampening %g: not finite", fn,
                  p->dampening);
    if (p->nesterov && (p->momentum <= 0 || p->dampening != 0))
      return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: SGD nesterov momentum requires a momentum > 0 and zero dampening (got "
                  "momentum %g, dampening %g)",
                  fn, p->momentum, p->dampening);
    return CLCNN_SUCCESS;
  case CLCNN_OPTIM_ADAM:
  case CLCNN_OPTIM_ADAMW:
    if ((st = check_nonneg(ctx, fn, "epsilon", p->eps)) ||
        (st = check_beta(ctx, fn, "beta1 (betas[0])", p->beta1)) ||
        (st = check_beta(ctx, fn, "beta2 (betas[1])", p->beta2)) ||
        (st = check_nonneg(ctx, fn, "weight_decay", p->weight_decay)))
      return st;
    return CLCNN_SUCCESS;
  case CLCNN_OPTIM_RMSPROP:
    if ((st = check_nonneg(ctx, fn, "epsilon", p->eps)) ||
        (st = check_nonneg(ctx, fn, "RMSprop momentum", p->momentum)) ||
        (st = check_nonneg(ctx, fn, "weight_decay", p->weight_decay)) ||
        (st = check_nonneg(ctx, fn, "RMSprop alpha", p->alpha)))
      return st;
    return CLCNN_SUCCESS;
  }
  return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
              "%s: unknown optimizer kind %d (SGD %d, Adam %d, AdamW %d, RMSprop %d)", fn,
              (int)p->kind, CLCNN_OPTIM_SGD, CLCNN_OPTIM_ADAM, CLCNN_OPTIM_ADAMW,
              CLCNN_OPTIM_RMSPROP);
}

/* ---- life ---- */
CLCNN_API void clcnn_optim_destroy(clcnn_optim *opt) {
  if (!opt) return;
  if (opt->state)
    for (int i = 0; i < opt->nparams * opt->nslots; i++) cbuf_free(&opt->state[i]);
  free(opt->state);
  free(opt->count);
  free(opt);
}

CLCNN_API clcnn_status clcnn_optim_create(clcnn_net *net, const clcnn_optim_params *p,
                                          clcnn_optim **out) {
  static const char fn[] = "clcnn_optim_create";
  if (out) *out = NULL;
  if (!net) return CLCNN_ERR_NULL_POINTER;
  clcnn_ctx *ctx = clcnn__net_ctx(net);
  clcnn__clear_error(ctx);
  if (!out) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: out is NULL", fn);
  if (!p) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: params is NULL", fn);
  clcnn_status st = check_params(ctx, fn, p);
  if (st) return st;

  clcnn_optim *opt = calloc(1, sizeof *opt);
  if (!opt) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
  opt->net = net;
  opt->ctx = ctx;
  opt->p = *p;
  switch (p->kind) {
  case CLCNN_OPTIM_SGD:
    if (p->momentum != 0) opt->slot_name[opt->nslots++] = "momentum_buffer";
    break;
  case CLCNN_OPTIM_ADAM:
  case CLCNN_OPTIM_ADAMW:
    opt->slot_name[opt->nslots++] = "exp_avg";
    opt->slot_name[opt->nslots++] = "exp_avg_sq";
    break;
  case CLCNN_OPTIM_RMSPROP:
    opt->slot_name[opt->nslots++] = "square_avg";
    if (p->momentum > 0) opt->slot_name[opt->nslots++] = "momentum_buffer";
    break;
  }

  int np = clcnn_net_num_params(net);
  opt->count = calloc(np > 0 ? np : 1, sizeof *opt->count);
  opt->state = calloc(np * opt->nslots > 0 ? np * opt->nslots : 1, sizeof *opt->state);
  if (!opt->count || !opt->state) {
    clcnn_optim_destroy(opt);
    return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
  }
  opt->nparams = np; /* every state cbuf is zeroed, so destroy may free them all from here */
  for (int i = 0; i < np; i++) {
    cbuf *value, *grad;
    size_t count;
    if ((st = clcnn__net_param(net, i, &value, &grad, &count))) break;
    if (count > INT_MAX) {
      st = FAIL(ctx, CLCNN_ERR_SHAPE, "%s: parameter %d has %zu elements, more than %d", fn, i,
                count, INT_MAX);
      break;
    }
    opt->count[i] = count;
    for (int s = 0; s < opt->nslots && !st; s++) {
      cbuf *b = &opt->state[i * opt->nslots + s];
      if (!(st = cbuf_alloc(ctx, b, count * ctx->esz, opt->slot_name[s])))
        st = clcnn__zero(ctx, b, count * ctx->esz, opt->slot_name[s]);
    }
    if (st) break;
  }
  if (st) {
    clcnn_optim_destroy(opt);
    return st;
  }
  *out = opt;
  return CLCNN_SUCCESS;
}

/* ---- the update ---- */
CLCNN_API clcnn_status clcnn_optim_step(clcnn_optim *opt) {
  static const char fn[] = "clcnn_optim_step";
  if (!opt) return CLCNN_ERR_NULL_POINTER;
  clcnn_ctx *ctx = opt->ctx;
  clcnn__clear_error(ctx);
  int np = clcnn_net_num_params(opt->net);
  if (np != opt->nparams)
    return FAIL(ctx, CLCNN_ERR_STATE,
                "%s: the net has %d parameter tensors, the optimizer was made for %d", fn, np,
                opt->nparams);
  if (opt->steps == INT64_MAX) return FAIL(ctx, CLCNN_ERR_STATE, "%s: step count overflows", fn);

  const clcnn_optim_params *p = &opt->p;
  const int64_t t = opt->steps + 1; /* PyTorch increments state['step'] before the update */
  const char *name = NULL;
  switch (p->kind) {
  case CLCNN_OPTIM_SGD: name = p->momentum != 0 ? "optim_sgd_momentum" : "optim_sgd"; break;
  case CLCNN_OPTIM_ADAM:
  case CLCNN_OPTIM_ADAMW: name = "optim_adam"; break;
  case CLCNN_OPTIM_RMSPROP:
    name = p->momentum > 0 ? "optim_rmsprop_momentum" : "optim_rmsprop";
    break;
  }
  cl_kernel k;
  clcnn_status st = clcnn__kernel(ctx, KP_OPTIM, name, &k);
  if (st) return st;

  /* Adam's scalars, in double as PyTorch's Python does them. */
  double step_size = 0, bc2_sqrt = 1, decay = 1, l2 = p->weight_decay;
  if (p->kind == CLCNN_OPTIM_ADAM || p->kind == CLCNN_OPTIM_ADAMW) {
    double bc1 = 1 - pow(p->beta1, (double)t), bc2 = 1 - pow(p->beta2, (double)t);
    step_size = p->lr / bc1;
    bc2_sqrt = sqrt(bc2);
    if (p->kind == CLCNN_OPTIM_ADAMW) {
      decay = 1 - p->lr * p->weight_decay;
      l2 = 0;
    }
  }

  for (int i = 0; i < np; i++) {
    cbuf *value, *grad;
    size_t count;
    if ((st = clcnn__net_param(opt->net, i, &value, &grad, &count))) return st;
    if (count != opt->count[i])
      return FAIL(ctx, CLCNN_ERR_STATE,
                  "%s: parameter %d has %zu elements, the optimizer was made for %zu", fn, i,
                  count, opt->count[i]);
    cbuf *s0 = opt->nslots > 0 ? &opt->state[i * opt->nslots] : NULL;
    cbuf *s1 = opt->nslots > 1 ? &opt->state[i * opt->nslots + 1] : NULL;
    int n = (int)count;
    switch (p->kind) {
    case CLCNN_OPTIM_SGD:
      if (p->momentum == 0)
        st = clcnn__args(ctx, k, name, MEM_ARG(value), MEM_ARG(grad), INT_ARG(n),
                         REAL_ARG(ctx, p->lr), REAL_ARG(ctx, p->weight_decay), (size_t)0);
      else
        st = clcnn__args(ctx, k, name, MEM_ARG(value), MEM_ARG(grad), MEM_ARG(s0), INT_ARG(n),
                         REAL_ARG(ctx, p->lr), REAL_ARG(ctx, p->weight_decay),
                         REAL_ARG(ctx, p->momentum), REAL_ARG(ctx, 1 - p->dampening),
                         INT_ARG(p->nesterov != 0), INT_ARG(opt->steps == 0), (size_t)0);
      break;
    case CLCNN_OPTIM_ADAM:
    case CLCNN_OPTIM_ADAMW:
      st = clcnn__args(ctx, k, name, MEM_ARG(value), MEM_ARG(grad), MEM_ARG(s0), MEM_ARG(s1),
                       INT_ARG(n), REAL_ARG(ctx, decay), REAL_ARG(ctx, l2),
                       REAL_ARG(ctx, p->beta1), REAL_ARG(ctx, 1 - p->beta1),
                       REAL_ARG(ctx, p->beta2), REAL_ARG(ctx, 1 - p->beta2),
                       REAL_ARG(ctx, step_size), REAL_ARG(ctx, bc2_sqrt), REAL_ARG(ctx, p->eps),
                       (size_t)0);
      break;
    case CLCNN_OPTIM_RMSPROP:
      if (p->momentum > 0)
        st = clcnn__args(ctx, k, name, MEM_ARG(value), MEM_ARG(grad), MEM_ARG(s0), MEM_ARG(s1),
                         INT_ARG(n), REAL_ARG(ctx, p->lr), REAL_ARG(ctx, p->weight_decay),
                         REAL_ARG(ctx, p->alpha), REAL_ARG(ctx, 1 - p->alpha),
                         REAL_ARG(ctx, p->eps), REAL_ARG(ctx, p->momentum), (size_t)0);
      else
        st = clcnn__args(ctx, k, name, MEM_ARG(value), MEM_ARG(grad), MEM_ARG(s0), INT_ARG(n),
                         REAL_ARG(ctx, p->lr), REAL_ARG(ctx, p->weight_decay),
                         REAL_ARG(ctx, p->alpha), REAL_ARG(ctx, 1 - p->alpha),
                         REAL_ARG(ctx, p->eps), (size_t)0);
      break;
    }
    if (st) return st;
    /* reads the gradient and the state; writes the parameter (in place) and the state */
    cbuf *reads[1 + MAX_SLOTS] = {grad, s0, s1}, *writes[1 + MAX_SLOTS] = {value, s0, s1};
    if ((st = clcnn__run(ctx, k, name, count, reads, 1 + opt->nslots, writes, 1 + opt->nslots)))
      return st;
  }
  opt->steps = t;
  return CLCNN_SUCCESS;
}

/* ---- hyperparameters and state ---- */
CLCNN_API clcnn_status clcnn_optim_set_lr(clcnn_optim *opt, double lr) {
  if (!opt) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(opt->ctx);
  clcnn_status st = check_nonneg(opt->ctx, "clcnn_optim_set_lr", "learning rate", lr);
  if (st) return st;
  opt->p.lr = lr;
  return CLCNN_SUCCESS;
}

CLCNN_API double clcnn_optim_lr(const clcnn_optim *opt) { return opt ? opt->p.lr : NAN; }

CLCNN_API int64_t clcnn_optim_steps(const clcnn_optim *opt) { return opt ? opt->steps : -1; }

CLCNN_API clcnn_status clcnn_optim_set_steps(clcnn_optim *opt, int64_t steps) {
  if (!opt) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(opt->ctx);
  if (steps < 0)
    return FAIL(opt->ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "clcnn_optim_set_steps: step count %lld is negative", (long long)steps);
  opt->steps = steps;
  return CLCNN_SUCCESS;
}

CLCNN_API int clcnn_optim_num_slots(const clcnn_optim *opt) { return opt ? opt->nslots : 0; }

CLCNN_API const char *clcnn_optim_slot_name(const clcnn_optim *opt, int slot) {
  if (!opt || slot < 0 || slot >= opt->nslots) return NULL;
  return opt->slot_name[slot];
}

/* The state buffer of (param, slot), or a status saying why there is none. */
static clcnn_status state_buf(clcnn_optim *opt, const char *fn, int param, int slot,
                              const void *host, cbuf **out) {
  clcnn_ctx *ctx = opt->ctx;
  if (!host) return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: host is NULL", fn);
  if (param < 0 || param >= opt->nparams)
    return FAIL(ctx, CLCNN_ERR_RANGE, "%s: parameter %d is out of range: the net has %d (0..%d)",
                fn, param, opt->nparams, opt->nparams - 1);
  if (slot < 0 || slot >= opt->nslots) {
    if (!opt->nslots)
      return FAIL(ctx, CLCNN_ERR_RANGE, "%s: slot %d is out of range: this %s keeps no state", fn,
                  slot, kind_name(opt->p.kind));
    return FAIL(ctx, CLCNN_ERR_RANGE, "%s: slot %d is out of range: this %s has %d (%s%s%s)", fn,
                slot, kind_name(opt->p.kind), opt->nslots, opt->slot_name[0],
                opt->nslots > 1 ? ", " : "", opt->nslots > 1 ? opt->slot_name[1] : "");
  }
  *out = &opt->state[param * opt->nslots + slot];
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_optim_state_read(clcnn_optim *opt, int param, int slot, void *host) {
  static const char fn[] = "clcnn_optim_state_read";
  if (!opt) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(opt->ctx);
  cbuf *b;
  clcnn_status st = state_buf(opt, fn, param, slot, host, &b);
  if (st) return st;
  return clcnn__read(opt->ctx, b, 0, opt->count[param] * opt->ctx->esz, host,
                     opt->slot_name[slot]);
}

CLCNN_API clcnn_status clcnn_optim_state_write(clcnn_optim *opt, int param, int slot,
                                               const void *host) {
  static const char fn[] = "clcnn_optim_state_write";
  if (!opt) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(opt->ctx);
  cbuf *b;
  clcnn_status st = state_buf(opt, fn, param, slot, host, &b);
  if (st) return st;
  if ((st = clcnn__write(opt->ctx, b, 0, opt->count[param] * opt->ctx->esz, host,
                         opt->slot_name[slot])))
    return st;
  return clcnn__wait(opt->ctx, b);
}

/* ---- learning-rate schedules ----
 * Closed forms of torch.optim.lr_scheduler's recursive updates: StepLR multiplies by gamma
 * every step_size epochs; CosineAnnealingLR's recursion follows the cosine, also past t_max. */
CLCNN_API clcnn_status clcnn_lr_schedule(const clcnn_lr_schedule_params *s, double base_lr,
                                         int64_t epoch, double *lr) {
  if (!s || !lr) return CLCNN_ERR_NULL_POINTER;
  if (epoch < 0 || !(base_lr >= 0) || !isfinite(base_lr)) return CLCNN_ERR_INVALID_ARGUMENT;
  switch (s->kind) {
  case CLCNN_LR_CONSTANT:
    *lr = base_lr;
    return CLCNN_SUCCESS;
  case CLCNN_LR_STEP:
    if (s->step_size < 1 || !(s->gamma >= 0) || !isfinite(s->gamma))
      return CLCNN_ERR_INVALID_ARGUMENT;
    *lr = base_lr * pow(s->gamma, (double)(epoch / s->step_size));
    return CLCNN_SUCCESS;
  case CLCNN_LR_COSINE: {
    if (s->t_max < 1 || !isfinite(s->eta_min)) return CLCNN_ERR_INVALID_ARGUMENT;
    /* the phase reduced to one period, 2 t_max, so that a long run keeps its precision */
    int64_t e = s->t_max <= INT64_MAX / 2 ? epoch % (2 * s->t_max) : epoch;
    const double pi = 3.14159265358979323846;
    *lr = s->eta_min + (base_lr - s->eta_min) * (1 + cos(pi * (double)e / (double)s->t_max)) / 2;
    return CLCNN_SUCCESS;
  }
  }
  return CLCNN_ERR_INVALID_ARGUMENT;
}
