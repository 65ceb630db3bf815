/* tests/torch_ref.c DIR - clcnn's side of the comparison with PyTorch's own numbers
 * (tests/test_torch_ref.sh). Runs clcnn and writes what it computed, with its inputs, to
 * safetensors files in DIR, which tests/torch_ref.py recomputes with torch and compares:
 *   optim-double/-float  every optimizer setting clcnn has: the initial parameters, then per step
 *                        the gradients clcnn computed, the parameters and the state after the
 *                        step (metadata "cK": the hyperparameters of setting K)
 *   sched                clcnn_lr_schedule() over 40 epochs for StepLR and CosineAnnealingLR
 *   init                 large conv (with groups) and linear parameters from each clcnn_init rule
 *   pool-double/-float   max pooling of inputs full of ties, -inf and NaN: forward, and the input
 *                        gradient of distinct integer output gradients (which shows where each
 *                        window's gradient went); also conv -> relu -> 2x2 pooling fused
 *   argmax-double/-float logits with ties and, for each sample and label, whether the loss
 *                        kernel counted the sample correct (clcnn_net_train_stats)
 * It checks nothing itself: it fails only when clcnn refuses a call. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "ref.h"

static const char *outdir;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "torch_ref: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory");
  return p;
}

static void check(clcnn_ctx *ctx, clcnn_status st, const char *what) {
  if (st) die("%s: %s (%s)", what, ctx ? clcnn_ctx_last_error(ctx) : "", clcnn_status_name(st));
}

/* ---- a safetensors file being gathered: tensors (data owned) and metadata ---- */
typedef struct {
  clcnn_st_tensor *t;
  int n, cap;
  char **meta; /* key, value, key, value... owned */
  int nmeta;
} dump;

static void dump_add(dump *d, clcnn_st_dtype dt, const void *data, size_t bytes, int ndim,
                     const int *dims, const char *fmt, ...) {
  if (d->n == d->cap) {
    d->cap = d->cap * 2 + 64;
    d->t = realloc(d->t, d->cap * sizeof *d->t);
    if (!d->t) die("out of memory");
  }
  clcnn_st_tensor *t = &d->t[d->n++];
  memset(t, 0, sizeof *t);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->name, sizeof t->name, fmt, ap);
  va_end(ap);
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
  void *copy = xmalloc(bytes);
  memcpy(copy, data, bytes);
  t->data = copy;
  t->bytes = bytes;
}

static void dump_meta(dump *d, const char *key, const char *fmt, ...) {
  d->meta = realloc(d->meta, (d->nmeta + 1) * 2 * sizeof *d->meta);
  if (!d->meta) die("out of memory");
  char val[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(val, sizeof val, fmt, ap);
  va_end(ap);
  d->meta[2 * d->nmeta] = strdup(key);
  d->meta[2 * d->nmeta + 1] = strdup(val);
  if (!d->meta[2 * d->nmeta] || !d->meta[2 * d->nmeta + 1]) die("out of memory");
  d->nmeta++;
}

static void dump_write(dump *d, const char *name) {
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/%s.safetensors", outdir, name);
  if (clcnn_safetensors_write(path, d->t, d->n, (const char *const *)d->meta, d->nmeta, err,
                              sizeof err))
    die("%s", err);
  for (int i = 0; i < d->n; i++) free((void *)d->t[i].data);
  for (int i = 0; i < 2 * d->nmeta; i++) free(d->meta[i]);
  free(d->t);
  free(d->meta);
  memset(d, 0, sizeof *d);
}

/* A real array of the context's precision. */
static clcnn_st_dtype real_dtype(clcnn_ctx *ctx) {
  return clcnn_ctx_precision(ctx) == CLCNN_DOUBLE ? CLCNN_ST_F64 : CLCNN_ST_F32;
}
static void set_real(clcnn_ctx *ctx, void *h, size_t i, double v) {
  if (clcnn_ctx_precision(ctx) == CLCNN_DOUBLE) ((double *)h)[i] = v;
  else ((float *)h)[i] = (float)v;
}

static clcnn_ctx *make_ctx(clcnn_precision prec) {
  clcnn_ctx *ctx = NULL;
  char err[512];
  clcnn_ctx_options o = {.precision = prec};
  if (clcnn_ctx_create(&ctx, &o, err, sizeof err)) die("no OpenCL device: %s", err);
  return ctx;
}

/* ---- optimizers ----------------------------------------------------------------------- */
#define OPT_BATCH 2
#define OPT_STEPS 5

static const struct optcase {
  clcnn_optim_kind kind;
  double lr, momentum, dampening;
  int nesterov;
  double weight_decay, beta1, beta2, eps, alpha;
} optcases[] = {
    /* kind, lr, momentum, dampening, nesterov, weight_decay, beta1, beta2, eps, alpha */
    {CLCNN_OPTIM_SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.1, 0, 0, 0, 0.05, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.05, 0.9, 0, 0, 0, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.05, 0.9, 0.3, 0, 0, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.05, 0.8, 0.5, 0, 0.01, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.05, 0.5, 1, 0, 0, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.05, 0.9, 0, 1, 0, 0, 0, 0, 0},
    {CLCNN_OPTIM_SGD, 0.05, 0.7, 0, 1, 0.02, 0, 0, 0, 0},
    {CLCNN_OPTIM_ADAM, 1e-2, 0, 0, 0, 0, 0.9, 0.999, 1e-8, 0},
    {CLCNN_OPTIM_ADAM, 2e-2, 0, 0, 0, 0.1, 0.8, 0.99, 1e-3, 0},
    {CLCNN_OPTIM_ADAMW, 1e-2, 0, 0, 0, 1e-2, 0.9, 0.999, 1e-8, 0},
    {CLCNN_OPTIM_ADAMW, 2e-2, 0, 0, 0, 0.5, 0.5, 0.9, 1e-3, 0},
    {CLCNN_OPTIM_RMSPROP, 1e-2, 0, 0, 0, 0, 0, 0, 1e-8, 0.99},
    {CLCNN_OPTIM_RMSPROP, 1e-2, 0, 0, 0, 0.1, 0, 0, 1e-3, 0.9},
    {CLCNN_OPTIM_RMSPROP, 1e-2, 0.9, 0, 0, 0, 0, 0, 1e-8, 0.99},
    {CLCNN_OPTIM_RMSPROP, 5e-3, 0.5, 0, 0, 0.05, 0, 0, 1e-2, 0.8},
};

/* (2,4,4) -> conv 3, 3x3, pad 1 -> tanh -> flatten -> linear 3: a 4-d, a 2-d and two 1-d
 * parameters; tanh makes each step's gradient depend on where the parameters are. */
static void optim_run(clcnn_precision prec, const char *file) {
  clcnn_ctx *ctx = make_ctx(prec);
  size_t esz = clcnn_ctx_elem_size(ctx);
  clcnn_net *net = NULL;
  clcnn_conv2d_params cp = {.out_channels = 3, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
  check(ctx, clcnn_net_create(ctx, OPT_BATCH, 2, 4, 4, &net), "net");
  check(ctx, clcnn_net_add_conv2d(net, &cp), "conv");
  check(ctx, clcnn_net_add_tanh(net), "tanh");
  check(ctx, clcnn_net_add_flatten(net), "flatten");
  check(ctx, clcnn_net_add_linear(net, 3, 1), "linear");
  check(ctx, clcnn_net_init(net, CLCNN_INIT_DEFAULT, 7), "init");
  int np = clcnn_net_num_params(net);
  clcnn_param_info info[8];
  void *p0[8];
  size_t nx = OPT_BATCH * clcnn_net_input_size(net), nout = OPT_BATCH * clcnn_net_output_size(net);
  void *x = xmalloc(nx * esz), *dout = xmalloc(nout * esz), *h = xmalloc(64 * 1024);
  for (int i = 0; i < np; i++) {
    check(ctx, clcnn_net_param_info(net, i, &info[i]), "param info");
    p0[i] = xmalloc(info[i].count * esz);
    check(ctx, clcnn_net_param_read(net, i, p0[i]), "param read");
  }
  dump d = {0};
  ref_rng r;
  int ncases = (int)(sizeof optcases / sizeof *optcases);
  for (int c = 0; c < ncases; c++) {
    const struct optcase *oc = &optcases[c];
    clcnn_optim_params op = {.kind = oc->kind, .lr = oc->lr, .momentum = oc->momentum,
                             .dampening = oc->dampening, .nesterov = oc->nesterov,
                             .weight_decay = oc->weight_decay, .beta1 = oc->beta1,
                             .beta2 = oc->beta2, .eps = oc->eps, .alpha = oc->alpha};
    char key[32];
    snprintf(key, sizeof key, "c%d", c);
    dump_meta(&d, key, "%d %.17g %.17g %.17g %d %.17g %.17g %.17g %.17g %.17g", (int)op.kind, op.lr,
              op.momentum, op.dampening, op.nesterov, op.weight_decay, op.beta1, op.beta2, op.eps,
              op.alpha);
    for (int i = 0; i < np; i++) {
      check(ctx, clcnn_net_param_write(net, i, p0[i]), "param write");
      dump_add(&d, real_dtype(ctx), p0[i], info[i].count * esz, info[i].ndim, info[i].dims,
               "c%d.s0.%s", c, info[i].name);
    }
    clcnn_optim *opt = NULL;
    check(ctx, clcnn_optim_create(net, &op, &opt), "optimizer");
    int nslots = clcnn_optim_num_slots(opt);
    char slots[64] = "";
    for (int s = 0; s < nslots; s++)
      snprintf(slots + strlen(slots), sizeof slots - strlen(slots), "%s%s", s ? "," : "",
               clcnn_optim_slot_name(opt, s));
    snprintf(key, sizeof key, "c%d.slots", c);
    dump_meta(&d, key, "%s", slots);
    ref_rng_seed(&r, 1000 + c);
    for (int t = 1; t <= OPT_STEPS; t++) {
      for (size_t i = 0; i < nx; i++) set_real(ctx, x, i, ref_rng_range(&r, -1, 1));
      for (size_t i = 0; i < nout; i++) set_real(ctx, dout, i, ref_rng_range(&r, -1, 1));
      check(ctx, clcnn_net_zero_grad(net), "zero_grad");
      check(ctx, clcnn_net_forward(net, x, OPT_BATCH), "forward");
      check(ctx, clcnn_net_backward_from(net, dout), "backward");
      for (int i = 0; i < np; i++) {
        check(ctx, clcnn_net_grad_read(net, i, h), "grad read");
        dump_add(&d, real_dtype(ctx), h, info[i].count * esz, info[i].ndim, info[i].dims,
                 "c%d.s%d.%s.grad", c, t, info[i].name);
      }
      check(ctx, clcnn_optim_step(opt), "step");
      for (int i = 0; i < np; i++) {
        check(ctx, clcnn_net_param_read(net, i, h), "param read");
        dump_add(&d, real_dtype(ctx), h, info[i].count * esz, info[i].ndim, info[i].dims,
                 "c%d.s%d.%s", c, t, info[i].name);
        for (int s = 0; s < nslots; s++) {
          check(ctx, clcnn_optim_state_read(opt, i, s, h), "state read");
          dump_add(&d, real_dtype(ctx), h, info[i].count * esz, info[i].ndim, info[i].dims,
                   "c%d.s%d.%s.%s", c, t, info[i].name, clcnn_optim_slot_name(opt, s));
        }
      }
    }
    clcnn_optim_destroy(opt);
  }
  char n[16];
  snprintf(n, sizeof n, "%d", ncases);
  dump_meta(&d, "cases", "%s", n);
  dump_meta(&d, "steps", "%d", OPT_STEPS);
  dump_write(&d, file);
  for (int i = 0; i < np; i++) free(p0[i]);
  free(x), free(dout), free(h);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

/* ---- learning-rate schedules ---------------------------------------------------------- */
#define SCHED_EPOCHS 40

static void sched_run(void) {
  static const clcnn_lr_schedule_params cases[] = {
      {.kind = CLCNN_LR_STEP, .step_size = 1, .gamma = 0.9},
      {.kind = CLCNN_LR_STEP, .step_size = 3, .gamma = 0.1},
      {.kind = CLCNN_LR_STEP, .step_size = 7, .gamma = 0.5},
      {.kind = CLCNN_LR_STEP, .step_size = 50, .gamma = 0.1},
      {.kind = CLCNN_LR_COSINE, .t_max = 40},
      {.kind = CLCNN_LR_COSINE, .t_max = 20, .eta_min = 1e-3},
      {.kind = CLCNN_LR_COSINE, .t_max = 7, .eta_min = 0},
      {.kind = CLCNN_LR_COSINE, .t_max = 1, .eta_min = 0.01},
      {.kind = CLCNN_LR_COSINE, .t_max = 13, .eta_min = 0.2},
  };
  static const double base[] = {0.1, 0.05, 1.0, 0.3, 0.1, 0.01, 0.5, 0.1, 0.1};
  dump d = {0};
  int n = (int)(sizeof cases / sizeof *cases);
  for (int c = 0; c < n; c++) {
    double lr[SCHED_EPOCHS];
    for (int e = 0; e < SCHED_EPOCHS; e++)
      check(NULL, clcnn_lr_schedule(&cases[c], base[c], e, &lr[e]), "clcnn_lr_schedule");
    int dims[1] = {SCHED_EPOCHS};
    dump_add(&d, CLCNN_ST_F64, lr, sizeof lr, 1, dims, "s%d", c);
    char key[16];
    snprintf(key, sizeof key, "s%d", c);
    dump_meta(&d, key, "%s %.17g %lld %.17g %lld %.17g",
              cases[c].kind == CLCNN_LR_STEP ? "step" : "cosine", base[c],
              (long long)cases[c].step_size, cases[c].gamma, (long long)cases[c].t_max,
              cases[c].eta_min);
  }
  dump_meta(&d, "cases", "%d", n);
  dump_write(&d, "sched");
}

/* ---- initialisation ------------------------------------------------------------------- *
 * conv 256 -> 128, 5x5, groups 4 (weight 128x64x5x5 = 204800 values, fan_in 1600, fan_out
 * 3200), then linear 128*2*2 -> 2048 (weight 2048x512, fan_in 512, bias 2048 values). Double
 * precision, so that the values are the generator's and not roundings of them. */
static void init_run(void) {
  clcnn_ctx *ctx = make_ctx(CLCNN_DOUBLE);
  clcnn_net *net = NULL;
  clcnn_conv2d_params cp = {.out_channels = 128, .kh = 5, .kw = 5, .groups = 4, .bias = 1};
  check(ctx, clcnn_net_create(ctx, 1, 256, 6, 6, &net), "net");
  check(ctx, clcnn_net_add_conv2d(net, &cp), "conv");
  check(ctx, clcnn_net_add_flatten(net), "flatten");
  check(ctx, clcnn_net_add_linear(net, 2048, 1), "linear");
  static const char *rules[] = {"default", "he", "xavier"};
  dump d = {0};
  for (int rule = 0; rule < 3; rule++) {
    check(ctx, clcnn_net_init(net, (clcnn_init)rule, 1234 + rule), "init");
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
      clcnn_param_info pi;
      check(ctx, clcnn_net_param_info(net, i, &pi), "param info");
      double *h = xmalloc(pi.count * sizeof *h);
      check(ctx, clcnn_net_param_read(net, i, h), "param read");
      dump_add(&d, CLCNN_ST_F64, h, pi.count * sizeof *h, pi.ndim, pi.dims, "%s.%s", rules[rule],
               pi.name);
      free(h);
    }
  }
  dump_write(&d, "init");
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

/* ---- max pooling's ties --------------------------------------------------------------- */
static const struct poolcase {
  int c, h, w, kh, kw, sh, sw, ph, pw;
  int fused; /* conv 1x1 (identity) -> relu -> this pooling, which the conv then computes */
  int specials; /* -inf and NaN among the values */
} poolcases[] = {
    {2, 6, 8, 2, 2, 2, 2, 0, 0, 0, 1},  /* 2x2 stride 2: the maxpool2x2 kernels */
    {2, 7, 9, 2, 2, 2, 2, 0, 0, 0, 1},  /* ... odd sizes: a row and a column in no window */
    {2, 9, 9, 3, 3, 2, 2, 1, 1, 0, 1},  /* overlapping, padded */
    {2, 8, 7, 3, 3, 2, 2, 0, 0, 0, 1},  /* overlapping */
    {2, 9, 11, 3, 3, 3, 3, 0, 0, 0, 1}, /* stride = kernel, not 2x2: the non-overlapping backward */
    {2, 8, 8, 3, 3, 3, 3, 1, 1, 0, 1},  /* ... padded (the general backward) */
    {2, 7, 8, 2, 2, 2, 2, 1, 1, 0, 1},  /* 2x2 stride 2 padded: not the fast path */
    {2, 8, 9, 2, 3, 2, 3, 0, 1, 0, 1},  /* 2x3 stride 2x3, padded in w */
    {2, 9, 10, 2, 3, 2, 3, 0, 0, 0, 1}, /* 2x3 stride 2x3: non-overlapping, a row and a column left */
    {3, 6, 8, 2, 2, 2, 2, 0, 0, 1, 0},  /* conv -> relu -> 2x2 pooling, fused */
    {3, 7, 9, 2, 2, 2, 2, 0, 0, 1, 0},  /* ... odd sizes */
};
#define POOL_N 2

static void pool_run(clcnn_precision prec, const char *file) {
  clcnn_ctx *ctx = make_ctx(prec);
  size_t esz = clcnn_ctx_elem_size(ctx);
  dump d = {0};
  ref_rng r;
  ref_rng_seed(&r, 99);
  int n = (int)(sizeof poolcases / sizeof *poolcases);
  for (int k = 0; k < n; k++) {
    const struct poolcase *pc = &poolcases[k];
    clcnn_net *net = NULL;
    check(ctx, clcnn_net_create(ctx, POOL_N, pc->c, pc->h, pc->w, &net), "net");
    clcnn_pool2d_params pp = {pc->kh, pc->kw, pc->sh, pc->sw, pc->ph, pc->pw};
    if (pc->fused) {
      clcnn_conv2d_params cp = {.out_channels = pc->c, .kh = 1, .kw = 1, .bias = 1};
      check(ctx, clcnn_net_add_conv2d(net, &cp), "conv");
      check(ctx, clcnn_net_add_relu(net), "relu");
      void *wt = xmalloc((size_t)pc->c * pc->c * esz), *b = xmalloc(pc->c * esz);
      for (int i = 0; i < pc->c; i++) {
        set_real(ctx, b, i, 0);
        for (int j = 0; j < pc->c; j++) set_real(ctx, wt, (size_t)i * pc->c + j, i == j);
      }
      check(ctx, clcnn_net_param_write(net, 0, wt), "weight");
      check(ctx, clcnn_net_param_write(net, 1, b), "bias");
      free(wt), free(b);
    }
    check(ctx, clcnn_net_add_maxpool2d(net, &pp), "maxpool");
    int last = clcnn_net_num_layers(net) - 1, od[4];
    check(ctx, clcnn_net_layer_shape(net, last, od), "shape");
    size_t nx = POOL_N * clcnn_net_input_size(net), ny = POOL_N * clcnn_net_output_size(net);
    void *x = xmalloc(nx * esz), *y = xmalloc(ny * esz), *dy = xmalloc(ny * esz),
         *dx = xmalloc(nx * esz);
    /* small integers: most windows hold ties; a few -inf, NaN, and planes of -inf or of one
     * value; in the fused case negative values, which relu makes zeros that tie */
    for (size_t i = 0; i < nx; i++) {
      size_t plane = i / ((size_t)pc->h * pc->w);
      double v = pc->fused ? ref_rng_int(&r, 5) - 2 : ref_rng_int(&r, 3);
      if (pc->specials) {
        int u = ref_rng_int(&r, 10);
        if (u == 0) v = -INFINITY;
        if (u == 1) v = NAN;
        if (plane == 1) v = -INFINITY; /* a plane of -inf only */
        if (plane == 2) v = 1;         /* a plane of one value */
        size_t at = i % ((size_t)pc->h * pc->w);
        if (plane == 0 && (at == 0 || at == (size_t)pc->w + 1)) v = NAN; /* two in one window */
      }
      set_real(ctx, x, i, v);
    }
    for (size_t i = 0; i < ny; i++) set_real(ctx, dy, i, (double)(i + 1)); /* distinct, exact sums */
    check(ctx, clcnn_net_forward(net, x, POOL_N), "forward");
    check(ctx, clcnn_net_backward_from(net, dy), "backward");
    check(ctx, clcnn_net_read_output(net, y), "output");
    check(ctx, clcnn_net_read_input_grad(net, dx), "input grad");
    int xd[4] = {POOL_N, pc->c, pc->h, pc->w}, yd[4] = {POOL_N, od[1], od[2], od[3]};
    dump_add(&d, real_dtype(ctx), x, nx * esz, 4, xd, "p%d.x", k);
    dump_add(&d, real_dtype(ctx), y, ny * esz, 4, yd, "p%d.y", k);
    dump_add(&d, real_dtype(ctx), dy, ny * esz, 4, yd, "p%d.dy", k);
    dump_add(&d, real_dtype(ctx), dx, nx * esz, 4, xd, "p%d.dx", k);
    char key[16];
    snprintf(key, sizeof key, "p%d", k);
    dump_meta(&d, key, "%d %d %d %d %d %d %d %d", pc->kh, pc->kw, pc->sh, pc->sw, pc->ph, pc->pw,
              pc->fused, pc->fused ? clcnn_net_layer_fused(net, last) : 0);
    free(x), free(y), free(dy), free(dx);
    clcnn_net_destroy(net);
  }
  dump_meta(&d, "cases", "%d", n);
  dump_write(&d, file);
  clcnn_ctx_destroy(ctx);
}

/* ---- argmax's ties in the loss kernel ------------------------------------------------- *
 * Net: (K,1,1) -> flatten, so the logits are the input. For each sample and each label, one
 * step alone: whether clcnn_net_train_stats() counted it correct. */
#define AM_K 6
#define AM_S 24

static void argmax_run(clcnn_precision prec, const char *file) {
  clcnn_ctx *ctx = make_ctx(prec);
  size_t esz = clcnn_ctx_elem_size(ctx);
  clcnn_net *net = NULL;
  check(ctx, clcnn_net_create(ctx, 1, AM_K, 1, 1, &net), "net");
  check(ctx, clcnn_net_add_flatten(net), "flatten");
  void *z = xmalloc(AM_S * AM_K * esz), *out = xmalloc(AM_K * esz);
  double hits[AM_S][AM_K];
  ref_rng r;
  ref_rng_seed(&r, 5);
  for (int s = 0; s < AM_S; s++) {
    /* values in {-1, 0, 1, 2}, most samples with a tie for the largest; sample 0 all equal;
     * samples 1-3 with NaN (two in sample 1), samples 4-5 with tied infinities */
    for (int j = 0; j < AM_K; j++) {
      double v = s == 0 ? 0.5 : ref_rng_int(&r, 4) - 1;
      if ((s == 1 && (j == 2 || j == 4)) || (s == 2 && j == 5) || (s == 3 && j == 0)) v = NAN;
      if ((s == 4 && (j == 1 || j == 3)) || (s == 5 && j != 2)) v = s == 4 ? INFINITY : -INFINITY;
      set_real(ctx, z, (size_t)s * AM_K + j, v);
    }
    for (int j = 0; j < AM_K; j++) {
      int32_t label = j;
      double before, after;
      check(ctx, clcnn_net_train_stats(net, NULL, &before, NULL), "stats");
      check(ctx, clcnn_net_forward(net, (char *)z + (size_t)s * AM_K * esz, 1), "forward");
      check(ctx, clcnn_net_backward(net, &label), "backward");
      check(ctx, clcnn_net_train_stats(net, NULL, &after, NULL), "stats");
      hits[s][j] = after - before;
    }
    check(ctx, clcnn_net_read_output(net, out), "output");
    if (memcmp(out, (char *)z + (size_t)s * AM_K * esz, AM_K * esz))
      die("argmax: the flatten net's output is not its input");
  }
  dump d = {0};
  int zd[2] = {AM_S, AM_K};
  dump_add(&d, real_dtype(ctx), z, AM_S * AM_K * esz, 2, zd, "logits");
  dump_add(&d, CLCNN_ST_F64, hits, sizeof hits, 2, zd, "hits");
  dump_write(&d, file);
  free(z), free(out);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

int main(int argc, char **argv) {
  if (argc != 2) die("usage: torch_ref DIR");
  outdir = argv[1];
  optim_run(CLCNN_DOUBLE, "optim-double");
  optim_run(CLCNN_FLOAT, "optim-float");
  sched_run();
  init_run();
  pool_run(CLCNN_DOUBLE, "pool-double");
  pool_run(CLCNN_FLOAT, "pool-float");
  argmax_run(CLCNN_DOUBLE, "argmax-double");
  argmax_run(CLCNN_FLOAT, "argmax-float");
  return 0;
}
