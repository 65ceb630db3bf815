/* tests/test_optim.c - the optimizers against a plain C reference of torch.optim's update rules
 * (single-tensor, foreach=False), in double precision: SGD (plain, momentum with dampening,
 * nesterov with weight decay), Adam, AdamW, RMSprop (with and without momentum and weight
 * decay), on an MLP and on a net with a conv layer (a 4-d parameter). Also the step counter and
 * the state round trip, SGD's first-step rule, torch.optim's defaults, refused arguments, a
 * float run against the double one, and that a step adds no host wait. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "ref.h"
#include "tap.h"

#define N 2     /* batch */
#define MAXP 8  /* parameter tensors per net */
#define NSTEPS 3
#define RTOL 1e-13
#define ATOL 1e-15

/* ---- the reference, written from torch.optim's formulas ---------------------------------
 * One update at step t (the count after increment) of n elements: p the parameters, g their
 * gradients, s0/s1 the state slots in clcnn's order (SGD momentum_buffer; Adam exp_avg,
 * exp_avg_sq; RMSprop square_avg, momentum_buffer). */
static void ref_update(const clcnn_optim_params *o, int64_t t, size_t n, double *p,
                       const double *grad, double *s0, double *s1) {
  for (size_t i = 0; i < n; i++) {
    double g = grad[i];
    switch (o->kind) {
    case CLCNN_OPTIM_SGD:
      g = g + o->weight_decay * p[i];
      if (o->momentum != 0) {
        s0[i] = t == 1 ? g : o->momentum * s0[i] + (1 - o->dampening) * g;
        g = o->nesterov ? g + o->momentum * s0[i] : s0[i];
      }
      p[i] = p[i] - o->lr * g;
      break;
    case CLCNN_OPTIM_ADAM:
    case CLCNN_OPTIM_ADAMW: {
      if (o->kind == CLCNN_OPTIM_ADAMW) p[i] = p[i] * (1 - o->lr * o->weight_decay);
      else g = g + o->weight_decay * p[i];
      s0[i] = o->beta1 * s0[i] + (1 - o->beta1) * g;
      s1[i] = o->beta2 * s1[i] + (1 - o->beta2) * g * g;
      double bc1 = 1 - pow(o->beta1, (double)t), bc2 = 1 - pow(o->beta2, (double)t);
      p[i] = p[i] - (o->lr / bc1) * s0[i] / (sqrt(s1[i]) / sqrt(bc2) + o->eps);
      break;
    }
    case CLCNN_OPTIM_RMSPROP: {
      g = g + o->weight_decay * p[i];
      s0[i] = o->alpha * s0[i] + (1 - o->alpha) * g * g;
      double avg = sqrt(s0[i]) + o->eps;
      if (o->momentum > 0) {
        s1[i] = o->momentum * s1[i] + g / avg;
        p[i] = p[i] - o->lr * s1[i];
      } else {
        p[i] = p[i] - o->lr * g / avg;
      }
      break;
    }
    }
  }
}

/* ---- fixtures: a net, its initial parameters, an input and an output gradient ----------- */
typedef struct {
  clcnn_ctx *ctx;
  clcnn_net *net;
  const char *name;
  int np;
  size_t count[MAXP], off[MAXP], total; /* parameters, flattened in order */
  double *p0;                           /* total initial values */
  double *x, *dout;
  size_t nx, nout;
} fixture;

/* The parameters and state slots, flattened over all parameters. */
typedef struct {
  double *p, *s[2];
} snap;

static snap snap_new(size_t n) {
  snap s = {calloc(n, sizeof(double)), {calloc(n, sizeof(double)), calloc(n, sizeof(double))}};
  if (!s.p || !s.s[0] || !s.s[1]) tap_bail("out of memory");
  return s;
}
static void snap_free(snap *s) { free(s->p), free(s->s[0]), free(s->s[1]); }

static void *host_of(clcnn_ctx *ctx, const double *v, size_t n) { /* v in ctx's precision */
  void *h = malloc(n * clcnn_ctx_elem_size(ctx) + 1);
  if (!h) tap_bail("out of memory");
  for (size_t i = 0; v && i < n; i++)
    if (clcnn_ctx_precision(ctx) == CLCNN_DOUBLE) ((double *)h)[i] = v[i];
    else ((float *)h)[i] = (float)v[i];
  return h;
}
static void double_of(clcnn_ctx *ctx, const void *h, double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    v[i] = clcnn_ctx_precision(ctx) == CLCNN_DOUBLE ? ((const double *)h)[i]
                                                    : ((const float *)h)[i];
}

static clcnn_ctx *make_ctx(clcnn_precision prec) {
  clcnn_ctx *ctx = NULL;
  char err[512];
  clcnn_ctx_options o = {.precision = prec};
  clcnn_status st = clcnn_ctx_create(&ctx, &o, err, sizeof err);
  if (st) {
    printf("Bail out! no OpenCL device for the test: %s: %s\n", clcnn_status_name(st), err);
    exit(1);
  }
  return ctx;
}

/* mlp: (3,1,1) -> linear 4 -> tanh -> linear 2; cnn: (2,4,4) -> conv 3x3x3 pad 1 -> tanh ->
 * flatten -> linear 3. tanh makes the gradients change as the parameters move. */
static void fixture_make(fixture *f, clcnn_ctx *ctx, int cnn, uint64_t seed) {
  memset(f, 0, sizeof *f);
  f->ctx = ctx;
  f->name = cnn ? "conv net" : "mlp";
  clcnn_status st;
  if (cnn) {
    clcnn_conv2d_params cp = {.out_channels = 3, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1,
                              .bias = 1};
    st = clcnn_net_create(ctx, N, 2, 4, 4, &f->net);
    st = st ? st : clcnn_net_add_conv2d(f->net, &cp);
    st = st ? st : clcnn_net_add_tanh(f->net);
    st = st ? st : clcnn_net_add_flatten(f->net);
    st = st ? st : clcnn_net_add_linear(f->net, 3, 1);
  } else {
    st = clcnn_net_create(ctx, N, 3, 1, 1, &f->net);
    st = st ? st : clcnn_net_add_linear(f->net, 4, 1);
    st = st ? st : clcnn_net_add_tanh(f->net);
    st = st ? st : clcnn_net_add_linear(f->net, 2, 1);
  }
  if (st) {
    tap_diag("building the %s: %s", f->name, clcnn_ctx_last_error(ctx));
    tap_bail("no net");
  }
  f->np = clcnn_net_num_params(f->net);
  if (f->np > MAXP) tap_bail("too many parameters");
  for (int i = 0; i < f->np; i++) {
    clcnn_param_info pi;
    clcnn_net_param_info(f->net, i, &pi);
    f->count[i] = pi.count;
    f->off[i] = f->total;
    f->total += pi.count;
  }
  f->nx = N * clcnn_net_input_size(f->net);
  f->nout = N * clcnn_net_output_size(f->net);
  f->p0 = malloc(f->total * sizeof(double));
  f->x = malloc(f->nx * sizeof(double));
  f->dout = malloc(f->nout * sizeof(double));
  if (!f->p0 || !f->x || !f->dout) tap_bail("out of memory");
  ref_rng r;
  ref_rng_seed(&r, seed);
  /* values a float holds exactly, so that the float run starts where the double one does */
  for (size_t i = 0; i < f->total; i++) f->p0[i] = (float)ref_rng_range(&r, -0.8, 0.8);
  for (size_t i = 0; i < f->nx; i++) f->x[i] = (float)ref_rng_range(&r, -1, 1);
  for (size_t i = 0; i < f->nout; i++) f->dout[i] = (float)ref_rng_range(&r, -1, 1);
}

static void fixture_free(fixture *f) {
  clcnn_net_destroy(f->net);
  free(f->p0), free(f->x), free(f->dout);
}

/* Flat host values <-> the net's parameters, optimizer state and gradients. */
static clcnn_status put_params(fixture *f, const double *v) {
  clcnn_status st = CLCNN_SUCCESS;
  for (int i = 0; i < f->np && !st; i++) {
    void *h = host_of(f->ctx, v + f->off[i], f->count[i]);
    st = clcnn_net_param_write(f->net, i, h);
    free(h);
  }
  return st;
}
enum { GET_PARAM, GET_GRAD, GET_STATE };
static clcnn_status get_flat(fixture *f, int what, clcnn_optim *opt, int slot, double *v) {
  clcnn_status st = CLCNN_SUCCESS;
  for (int i = 0; i < f->np && !st; i++) {
    void *h = host_of(f->ctx, NULL, f->count[i]);
    st = what == GET_PARAM  ? clcnn_net_param_read(f->net, i, h)
         : what == GET_GRAD ? clcnn_net_grad_read(f->net, i, h)
                            : clcnn_optim_state_read(opt, i, slot, h);
    double_of(f->ctx, h, v + f->off[i], f->count[i]);
    free(h);
  }
  return st;
}
static clcnn_status put_state(fixture *f, clcnn_optim *opt, int slot, const double *v) {
  clcnn_status st = CLCNN_SUCCESS;
  for (int i = 0; i < f->np && !st; i++) {
    void *h = host_of(f->ctx, v + f->off[i], f->count[i]);
    st = clcnn_optim_state_write(opt, i, slot, h);
    free(h);
  }
  return st;
}

/* Run optimizer O for nsteps on the device from the fixture's initial parameters, the step
 * count START and the state INIT (NULL: zero). Each step is zero_grad, forward,
 * backward_from, optim_step, with no host wait in between; the gradients each step used are
 * read afterwards into g (nsteps * total). The final parameters and state go to out (slots
 * the optimizer does not have stay zero); *max_waits is the most host waits seen after a
 * step. */
static clcnn_status device_run(fixture *f, const clcnn_optim_params *o, int64_t start,
                               const snap *init, int nsteps, double *g, snap *out,
                               int *max_waits) {
  clcnn_optim *opt = NULL;
  void *x = host_of(f->ctx, f->x, f->nx), *dout = host_of(f->ctx, f->dout, f->nout);
  clcnn_status st = put_params(f, f->p0);
  st = st ? st : clcnn_optim_create(f->net, o, &opt);
  st = st ? st : clcnn_optim_set_steps(opt, start);
  for (int s = 0; init && !st && s < clcnn_optim_num_slots(opt); s++)
    st = put_state(f, opt, s, init->s[s]);
  *max_waits = 0;
  for (int k = 0; k < nsteps && !st; k++) {
    int cmds = 0, waits = 0;
    st = clcnn_net_zero_grad(f->net);
    st = st ? st : clcnn_net_forward(f->net, x, N);
    st = st ? st : clcnn_net_backward_from(f->net, dout);
    st = st ? st : clcnn_optim_step(opt);
    st = st ? st : clcnn_net_step_stats(f->net, &cmds, &waits);
    if (waits > *max_waits) *max_waits = waits;
    st = st ? st : get_flat(f, GET_GRAD, NULL, 0, g + k * f->total);
  }
  st = st ? st : get_flat(f, GET_PARAM, NULL, 0, out->p);
  for (int s = 0; !st && s < clcnn_optim_num_slots(opt); s++)
    st = get_flat(f, GET_STATE, opt, s, out->s[s]);
  if (!st && clcnn_optim_steps(opt) != start + nsteps) st = CLCNN_ERR_STATE;
  if (st) tap_diag("device run: %s: %s", clcnn_status_name(st), clcnn_ctx_last_error(f->ctx));
  clcnn_optim_destroy(opt);
  free(x), free(dout);
  return st;
}

/* The same steps in the reference, from the gradients the device used. */
static void ref_run(const fixture *f, const clcnn_optim_params *o, int64_t start,
                    const snap *init, int nsteps, const double *g, snap *out) {
  memcpy(out->p, f->p0, f->total * sizeof(double));
  for (int s = 0; s < 2; s++)
    if (init) memcpy(out->s[s], init->s[s], f->total * sizeof(double));
    else memset(out->s[s], 0, f->total * sizeof(double));
  for (int k = 0; k < nsteps; k++)
    ref_update(o, start + k + 1, f->total, out->p, g + k * f->total, out->s[0], out->s[1]);
}

/* Elements of a outside atol + rtol |b|; the largest |a - b| into *worst (kept if larger). */
static int count_bad(const double *a, const double *b, size_t n, double rtol, double atol,
                     double *worst) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= atol + rtol * fabs(b[i]))) bad++;
    if (d > *worst || isnan(d)) *worst = d;
  }
  return bad;
}

/* Device against reference: parameters and every slot the optimizer keeps. */
static int check_case(fixture *f, const char *label, const clcnn_optim_params *o, int64_t start,
                      const snap *init, int nsteps) {
  snap dev = snap_new(f->total), ref = snap_new(f->total);
  double *g = malloc(nsteps * f->total * sizeof(double));
  if (!g) tap_bail("out of memory");
  int waits = -1, nslots = 0;
  clcnn_status st = device_run(f, o, start, init, nsteps, g, &dev, &waits);
  ref_run(f, o, start, init, nsteps, g, &ref);
  double worst = 0;
  int bad = st ? 1 : 0;
  bad += count_bad(dev.p, ref.p, f->total, RTOL, ATOL, &worst);
  /* the reference keeps both slots; compare those the optimizer has */
  if (o->kind != CLCNN_OPTIM_SGD || o->momentum != 0) nslots = 1;
  if (o->kind == CLCNN_OPTIM_ADAM || o->kind == CLCNN_OPTIM_ADAMW ||
      (o->kind == CLCNN_OPTIM_RMSPROP && o->momentum > 0))
    nslots = 2;
  for (int s = 0; s < nslots; s++) bad += count_bad(dev.s[s], ref.s[s], f->total, RTOL, ATOL, &worst);
  int ok = tap_ok(!bad && waits == 0,
                  "%s on the %s: %d steps match the C reference, params and %d state slot%s "
                  "(max |d| %.1e; tolerance %g rel + %g abs), no host wait in a step (%d)",
                  label, f->name, nsteps, nslots, nslots == 1 ? "" : "s", worst, RTOL, ATOL, waits);
  snap_free(&dev), snap_free(&ref);
  free(g);
  return ok;
}

/* ---- the configurations ---- */
typedef struct {
  const char *label;
  clcnn_optim_params p;
} config;

static int make_configs(config *c) {
  int n = 0;
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  p.lr = 0.1;
  c[n++] = (config){"SGD lr 0.1", p};
  p.momentum = 0.9, p.dampening = 0.1, p.lr = 0.05;
  c[n++] = (config){"SGD momentum 0.9 dampening 0.1", p};
  p.dampening = 0, p.nesterov = 1, p.weight_decay = 1e-2;
  c[n++] = (config){"SGD nesterov momentum 0.9 weight_decay 1e-2", p};
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.lr = 1e-2, p.weight_decay = 1e-2;
  c[n++] = (config){"Adam lr 1e-2 weight_decay 1e-2", p};
  p.beta1 = 0.8, p.beta2 = 0.95, p.eps = 1e-3, p.weight_decay = 0;
  c[n++] = (config){"Adam betas (0.8, 0.95) eps 1e-3", p};
  clcnn_optim_defaults(CLCNN_OPTIM_ADAMW, &p);
  p.lr = 1e-2, p.weight_decay = 0.1;
  c[n++] = (config){"AdamW lr 1e-2 weight_decay 0.1", p};
  clcnn_optim_defaults(CLCNN_OPTIM_RMSPROP, &p);
  c[n++] = (config){"RMSprop defaults", p};
  p.weight_decay = 1e-2, p.alpha = 0.9;
  c[n++] = (config){"RMSprop alpha 0.9 weight_decay 1e-2", p};
  p.momentum = 0.5;
  c[n++] = (config){"RMSprop momentum 0.5 weight_decay 1e-2", p};
  p.weight_decay = 0, p.momentum = 0.9, p.eps = 1e-4;
  c[n++] = (config){"RMSprop momentum 0.9 eps 1e-4", p};
  return n;
}

/* ---- refused arguments ---- */
static int refused(clcnn_ctx *ctx, clcnn_status got, clcnn_status want, const char *word,
                   const char *what) {
  const char *msg = clcnn_ctx_last_error(ctx);
  int ok = got == want && (!word || strstr(msg, word));
  if (!ok) tap_diag("got %s, message \"%s\"", clcnn_status_name(got), msg);
  return tap_ok(ok, "%s is refused with %s%s%s%s", what, clcnn_status_name(want),
                word ? " and a message (\"" : "", word ? msg : "", word ? "\")" : "");
}

static void test_refusals(fixture *f) {
  clcnn_ctx *ctx = f->ctx;
  clcnn_optim *opt = (clcnn_optim *)&opt; /* must be set to NULL on failure */
  clcnn_optim_params p;
  clcnn_status st;

  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  p.lr = -0.1;
  st = clcnn_optim_create(f->net, &p, &opt);
  refused(ctx, st, CLCNN_ERR_INVALID_ARGUMENT, "learning rate", "a negative learning rate");
  tap_ok(opt == NULL, "a refused create leaves *out NULL");
  p.lr = NAN;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "learning rate",
          "a NaN learning rate");
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  p.nesterov = 1;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "nesterov",
          "SGD nesterov without momentum");
  p.momentum = 0.9, p.dampening = 0.1;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "nesterov",
          "SGD nesterov with dampening");
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  p.momentum = -0.5;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "momentum",
          "a negative SGD momentum");
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.beta1 = 1;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "beta1",
          "Adam beta1 = 1");
  clcnn_optim_defaults(CLCNN_OPTIM_ADAMW, &p);
  p.beta2 = -0.1;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "beta2",
          "AdamW beta2 < 0");
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.eps = -1e-8;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "epsilon",
          "a negative Adam eps");
  p.eps = 1e-8, p.weight_decay = -1e-2;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "weight_decay",
          "a negative weight decay");
  clcnn_optim_defaults(CLCNN_OPTIM_RMSPROP, &p);
  p.alpha = -0.5;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "alpha",
          "a negative RMSprop alpha");
  clcnn_optim_defaults(CLCNN_OPTIM_RMSPROP, &p);
  p.kind = (clcnn_optim_kind)99;
  refused(ctx, clcnn_optim_create(f->net, &p, &opt), CLCNN_ERR_INVALID_ARGUMENT, "unknown",
          "an unknown optimizer kind");
  tap_ok(clcnn_optim_create(NULL, &p, &opt) == CLCNN_ERR_NULL_POINTER && opt == NULL,
         "a NULL net is refused with CLCNN_ERR_NULL_POINTER");
  refused(ctx, clcnn_optim_create(f->net, NULL, &opt), CLCNN_ERR_NULL_POINTER, "params",
          "NULL params");
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  refused(ctx, clcnn_optim_create(f->net, &p, NULL), CLCNN_ERR_NULL_POINTER, "out", "NULL out");

  st = clcnn_optim_create(f->net, &p, &opt);
  if (!tap_ok(!st && opt, "Adam defaults are accepted")) return;
  double *h = calloc(f->total, sizeof(double));
  refused(ctx, clcnn_optim_state_read(opt, 0, 2, h), CLCNN_ERR_RANGE, "slot 2",
          "reading Adam's slot 2");
  refused(ctx, clcnn_optim_state_write(opt, 0, -1, h), CLCNN_ERR_RANGE, "slot -1",
          "writing slot -1");
  refused(ctx, clcnn_optim_state_read(opt, f->np, 0, h), CLCNN_ERR_RANGE, "parameter",
          "reading the state of a parameter past the last");
  refused(ctx, clcnn_optim_state_write(opt, -1, 0, h), CLCNN_ERR_RANGE, "parameter",
          "writing the state of parameter -1");
  refused(ctx, clcnn_optim_state_read(opt, 0, 0, NULL), CLCNN_ERR_NULL_POINTER, "host",
          "a NULL host array");
  refused(ctx, clcnn_optim_set_lr(opt, -1), CLCNN_ERR_INVALID_ARGUMENT, "learning rate",
          "set_lr(-1)");
  refused(ctx, clcnn_optim_set_steps(opt, -1), CLCNN_ERR_INVALID_ARGUMENT, "negative",
          "set_steps(-1)");
  tap_ok(clcnn_optim_lr(opt) == 1e-3 && clcnn_optim_steps(opt) == 0,
         "refused setters change nothing (lr %g, steps %lld)", clcnn_optim_lr(opt),
         (long long)clcnn_optim_steps(opt));
  tap_ok(clcnn_optim_set_lr(opt, 0.5) == CLCNN_SUCCESS && clcnn_optim_lr(opt) == 0.5,
         "set_lr(0.5) takes");
  tap_ok(clcnn_optim_slot_name(opt, 2) == NULL && clcnn_optim_slot_name(opt, -1) == NULL,
         "slot_name out of range is NULL");
  clcnn_optim_destroy(opt);
  free(h);

  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  st = clcnn_optim_create(f->net, &p, &opt);
  double v[64] = {0};
  tap_ok(!st && clcnn_optim_num_slots(opt) == 0, "plain SGD keeps no state");
  refused(ctx, clcnn_optim_state_read(opt, 0, 0, v), CLCNN_ERR_RANGE, "no state",
          "reading a state slot of plain SGD");
  clcnn_optim_destroy(opt);

  tap_ok(clcnn_optim_step(NULL) == CLCNN_ERR_NULL_POINTER &&
             clcnn_optim_set_lr(NULL, 1) == CLCNN_ERR_NULL_POINTER &&
             clcnn_optim_set_steps(NULL, 1) == CLCNN_ERR_NULL_POINTER &&
             clcnn_optim_state_read(NULL, 0, 0, v) == CLCNN_ERR_NULL_POINTER &&
             clcnn_optim_state_write(NULL, 0, 0, v) == CLCNN_ERR_NULL_POINTER &&
             clcnn_optim_num_slots(NULL) == 0 && clcnn_optim_slot_name(NULL, 0) == NULL &&
             clcnn_optim_steps(NULL) == -1 && isnan(clcnn_optim_lr(NULL)),
         "a NULL optimizer is refused everywhere, and destroy(NULL) is harmless");
  clcnn_optim_destroy(NULL);
}

static void test_defaults(void) {
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  tap_ok(p.kind == CLCNN_OPTIM_SGD && p.lr == 0.01 && p.momentum == 0 && p.dampening == 0 &&
             !p.nesterov && p.weight_decay == 0,
         "SGD defaults: lr 0.01 (PyTorch has none), momentum 0, dampening 0, weight_decay 0, "
         "nesterov off");
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  tap_ok(p.kind == CLCNN_OPTIM_ADAM && p.lr == 1e-3 && p.beta1 == 0.9 && p.beta2 == 0.999 &&
             p.eps == 1e-8 && p.weight_decay == 0,
         "Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0");
  clcnn_optim_defaults(CLCNN_OPTIM_ADAMW, &p);
  tap_ok(p.kind == CLCNN_OPTIM_ADAMW && p.lr == 1e-3 && p.beta1 == 0.9 && p.beta2 == 0.999 &&
             p.eps == 1e-8 && p.weight_decay == 1e-2,
         "AdamW defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2");
  clcnn_optim_defaults(CLCNN_OPTIM_RMSPROP, &p);
  tap_ok(p.kind == CLCNN_OPTIM_RMSPROP && p.lr == 1e-2 && p.alpha == 0.99 && p.eps == 1e-8 &&
             p.weight_decay == 0 && p.momentum == 0,
         "RMSprop defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0");
}

/* Slots and names of each kind. */
static void test_slots(fixture *f) {
  static const struct {
    clcnn_optim_kind kind;
    double momentum;
    int n;
    const char *names[2];
  } want[] = {
      {CLCNN_OPTIM_SGD, 0, 0, {NULL, NULL}},
      {CLCNN_OPTIM_SGD, 0.9, 1, {"momentum_buffer", NULL}},
      {CLCNN_OPTIM_ADAM, 0, 2, {"exp_avg", "exp_avg_sq"}},
      {CLCNN_OPTIM_ADAMW, 0, 2, {"exp_avg", "exp_avg_sq"}},
      {CLCNN_OPTIM_RMSPROP, 0, 1, {"square_avg", NULL}},
      {CLCNN_OPTIM_RMSPROP, 0.9, 2, {"square_avg", "momentum_buffer"}},
  };
  int ok = 1;
  for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
    clcnn_optim_params p;
    clcnn_optim *opt = NULL;
    clcnn_optim_defaults(want[k].kind, &p);
    p.momentum = want[k].momentum;
    if (clcnn_optim_create(f->net, &p, &opt)) ok = 0;
    if (clcnn_optim_num_slots(opt) != want[k].n) ok = 0;
    for (int s = 0; s < want[k].n; s++)
      if (!clcnn_optim_slot_name(opt, s) || strcmp(clcnn_optim_slot_name(opt, s), want[k].names[s]))
        ok = 0;
    /* new state is zero */
    double *h = calloc(f->total, sizeof(double));
    for (int s = 0; s < want[k].n; s++) {
      for (size_t i = 0; i < f->total; i++) h[i] = 1;
      if (get_flat(f, GET_STATE, opt, s, h)) ok = 0;
      for (size_t i = 0; i < f->total; i++) ok &= h[i] == 0;
    }
    free(h);
    clcnn_optim_destroy(opt);
  }
  tap_ok(ok, "state slots have PyTorch's names (SGD momentum_buffer when momentum; Adam, AdamW "
             "exp_avg, exp_avg_sq; RMSprop square_avg, momentum_buffer when momentum) and start "
             "at zero");
}

/* SGD's first step copies the gradient into the momentum buffer (no dampening); set_steps(0)
 * makes the next step a first one again, set_steps(n > 0) a later one. */
static void test_first_step(fixture *f) {
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  p.momentum = 0.9, p.dampening = 0.5, p.lr = 0.1;
  double *g = malloc(2 * f->total * sizeof(double));
  snap dev = snap_new(f->total);
  int waits;
  clcnn_status st = device_run(f, &p, 0, NULL, 1, g, &dev, &waits);
  int same = !st;
  for (size_t i = 0; i < f->total; i++) same &= dev.s[0][i] == g[i];
  tap_ok(same, "SGD momentum 0.9 dampening 0.5: the first step's momentum_buffer is the gradient "
               "itself, not (1 - dampening) times it");

  /* From a state of 1 and steps = 0 the buffer is reset to the gradient; with steps = 5 it is
   * momentum * 1 + (1 - dampening) g. */
  snap init = snap_new(f->total), ref = snap_new(f->total);
  for (size_t i = 0; i < f->total; i++) init.s[0][i] = 1;
  double worst = 0;
  int bad = 0;
  st = device_run(f, &p, 0, &init, 1, g, &dev, &waits);
  for (size_t i = 0; i < f->total; i++) bad += !(dev.s[0][i] == g[i]);
  st = st ? st : device_run(f, &p, 5, &init, 2, g, &dev, &waits);
  ref_run(f, &p, 5, &init, 2, g, &ref);
  bad += count_bad(dev.s[0], ref.s[0], f->total, RTOL, ATOL, &worst);
  bad += count_bad(dev.p, ref.p, f->total, RTOL, ATOL, &worst);
  for (size_t i = 0; i < f->total; i++)
    bad += fabs(dev.s[0][i] - g[f->total + i]) < 1e-6; /* not a copy of the gradient */
  tap_ok(!st && !bad,
         "set_steps(0) makes the next SGD step a first one (buffer = gradient); set_steps(5) "
         "a later one (buffer = 0.9 buf + 0.5 g; max |d| %.1e)",
         worst);
  snap_free(&dev), snap_free(&init), snap_free(&ref);
  free(g);
}

/* Steps, set_steps, and the state round trip; Adam resumed at step 41 uses t = 42. */
static void test_resume(fixture *f) {
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.lr = 1e-2;
  clcnn_optim *opt = NULL;
  clcnn_status st = clcnn_optim_create(f->net, &p, &opt);
  int64_t s0 = clcnn_optim_steps(opt);
  int k;
  for (k = 0; k < 3 && !st; k++) st = clcnn_optim_step(opt);
  int64_t s3 = clcnn_optim_steps(opt);
  st = st ? st : clcnn_optim_set_steps(opt, 41);
  tap_ok(!st && s0 == 0 && s3 == 3 && clcnn_optim_steps(opt) == 41,
         "the step count starts at 0, counts steps (%lld) and can be set (%lld)", (long long)s3,
         (long long)clcnn_optim_steps(opt));

  ref_rng r;
  ref_rng_seed(&r, 99);
  snap w = snap_new(f->total), back = snap_new(f->total);
  for (size_t i = 0; i < f->total; i++) {
    w.s[0][i] = ref_rng_range(&r, -0.1, 0.1);
    w.s[1][i] = ref_rng_range(&r, 0, 0.01);
  }
  for (int s = 0; s < 2 && !st; s++) st = put_state(f, opt, s, w.s[s]);
  for (int s = 0; s < 2 && !st; s++) st = get_flat(f, GET_STATE, opt, s, back.s[s]);
  tap_ok(!st && !memcmp(w.s[0], back.s[0], f->total * sizeof(double)) &&
             !memcmp(w.s[1], back.s[1], f->total * sizeof(double)),
         "state written (exp_avg, exp_avg_sq of every parameter) reads back bit for bit");
  clcnn_optim_destroy(opt);

  check_case(f, "Adam resumed at step 41 from written state (bias correction at t = 42, 43)", &p,
             41, &w, 2);
  snap_free(&w), snap_free(&back);
}

/* The float context against the double one: same nets, same starting values. */
static void test_float(fixture *fd, fixture *ff, const config *c, int nc) {
  for (int k = 0; k < nc; k++) {
    const clcnn_optim_params *o = &c[k].p;
    snap d = snap_new(fd->total), fl = snap_new(ff->total);
    double *g = malloc(NSTEPS * fd->total * sizeof(double));
    int wd, wf;
    clcnn_status st = device_run(fd, o, 0, NULL, NSTEPS, g, &d, &wd);
    st = st ? st : device_run(ff, o, 0, NULL, NSTEPS, g, &fl, &wf);
    double worst = 0;
    int bad = count_bad(fl.p, d.p, fd->total, 1e-5, 1e-7, &worst);
    tap_ok(!st && !bad && wf == 0,
           "float %s on the %s: parameters after %d steps agree with double (max |d| %.1e; 1e-5 "
           "rel + 1e-7 abs)",
           c[k].label, ff->name, NSTEPS, worst);
    snap_free(&d), snap_free(&fl);
    free(g);
  }
}

/* clcnn_lr_schedule refuses what PyTorch's schedulers cannot mean, and leaves *lr alone then
 * (its values are compared with torch.optim.lr_scheduler's in test_torch_ref.sh). */
static void test_lr_schedule_refusals(void) {
  const clcnn_lr_schedule_params step = {.kind = CLCNN_LR_STEP, .step_size = 2, .gamma = 0.5};
  const clcnn_lr_schedule_params cosine = {.kind = CLCNN_LR_COSINE, .t_max = 4};
  clcnn_lr_schedule_params bad_step = step, bad_gamma = step, bad_tmax = cosine, bad_eta = cosine;
  clcnn_lr_schedule_params bad_kind = step;
  bad_step.step_size = 0;
  bad_gamma.gamma = NAN;
  bad_tmax.t_max = 0;
  bad_eta.eta_min = INFINITY;
  bad_kind.kind = (clcnn_lr_kind)7;
  double lr = 42;
  int refused = clcnn_lr_schedule(&step, 0.1, -1, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&step, -0.1, 0, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&step, NAN, 0, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&bad_step, 0.1, 3, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&bad_gamma, 0.1, 3, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&bad_tmax, 0.1, 3, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&bad_eta, 0.1, 3, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(&bad_kind, 0.1, 3, &lr) == CLCNN_ERR_INVALID_ARGUMENT &&
                clcnn_lr_schedule(NULL, 0.1, 3, &lr) == CLCNN_ERR_NULL_POINTER &&
                clcnn_lr_schedule(&step, 0.1, 3, NULL) == CLCNN_ERR_NULL_POINTER;
  tap_ok(refused && lr == 42,
         "clcnn_lr_schedule refuses a negative epoch, a negative or NaN base rate, step_size 0, a NaN "
         "gamma, t_max 0, an infinite eta_min, an unknown kind and NULL, and leaves the rate alone");
  clcnn_lr_schedule_params constant = {.kind = CLCNN_LR_CONSTANT};
  double a = 0, b = 0, c = 0;
  int fine = !clcnn_lr_schedule(&constant, 0.25, 1000, &a) &&
             !clcnn_lr_schedule(&step, 0.1, INT64_MAX, &b) &&
             !clcnn_lr_schedule(&cosine, 0.1, INT64_MAX, &c);
  /* INT64_MAX = 7 mod 2 t_max: the cosine's epoch 7 */
  tap_ok(fine && a == 0.25 && b == 0 && fabs(c - 0.1 * (1 + cos(M_PI * 7 / 4)) / 2) < 1e-15,
         "clcnn_lr_schedule: constant %g, StepLR and cosine at epoch 2^63-1 finite (%g, %g)", a, b,
         c);
}

int main(void) {
  clcnn_ctx *ctx = make_ctx(CLCNN_DOUBLE);
  tap_diag("device: %s", clcnn_ctx_device_name(ctx));
  fixture fx[2];
  fixture_make(&fx[0], ctx, 0, 1);
  fixture_make(&fx[1], ctx, 1, 2);
  clcnn_param_info pi;
  clcnn_net_param_info(fx[1].net, 0, &pi);
  tap_ok(pi.ndim == 4 && fx[0].np == 4 && fx[1].np == 4,
         "nets: mlp with %zu parameters in 4 tensors, conv net with %zu in 4 (%s is 4-d)",
         fx[0].total, fx[1].total, pi.name);

  test_defaults();
  config c[16];
  int nc = make_configs(c);
  for (int k = 0; k < nc; k++)
    for (int n = 0; n < 2; n++) check_case(&fx[n], c[k].label, &c[k].p, 0, NULL, NSTEPS);
  test_slots(&fx[1]);
  test_first_step(&fx[1]);
  test_resume(&fx[1]);
  test_refusals(&fx[0]);
  test_lr_schedule_refusals();

  clcnn_ctx *fctx = make_ctx(CLCNN_FLOAT);
  fixture ff;
  fixture_make(&ff, fctx, 1, 2);
  test_float(&fx[1], &ff, c, nc);
  fixture_free(&ff);
  clcnn_ctx_destroy(fctx);

  fixture_free(&fx[0]);
  fixture_free(&fx[1]);
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
