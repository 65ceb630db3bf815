/* tests/test_losses.c - the loss nodes: BCE with logits, MSE, smooth L1 (lib/loss.c) and the
 * cross-entropy's per-position mode with an ignore index (lib/softmax_xent.c).
 *
 *   - reference: input -> reshape (a view: the input's gradient is the loss's own dx) -> loss; the
 *     loss value in a double context vs tests/ref.h, |a-b| <= 1e-12 + 1e-10*|b|, and the input
 *     gradient vs weight * the reference's gradient with the same margin; a float context on the
 *     same (float-exact) data within 1e-5*|b| + 1e-5*max|b| of the same reference. Shapes with
 *     fewer elements than the kernels' 1024 parts (one element each), exactly 1024, 1025 (the
 *     first part takes two) and 4845 (several each); batches below max_batch; odd, non-square;
 *     smooth L1's targets put some differences exactly at 0 and at +-beta (PyTorch's gradient
 *     rule there), and beta = 0 (L1); BCE logits up to +-60 (the stable form);
 *   - finite differences: input -> conv (stride 2, padding, 3x2 kernel) -> loss in double; every
 *     element (or 64 random ones) of the conv's weight, bias and the input against central
 *     differences (h = 1e-6) of clcnn_net_loss: |a-n| <= 1e-7 + 1e-6*|n|;
 *   - several losses on one net (two on the same tensor, one further on): the total is the
 *     weighted sum of the values, each value is its reference, the gradients (FD of the total)
 *     add; float against double on that net: |f-d| <= 1e-5*|d| + 1e-5*max|d|;
 *   - cross-entropy per position: ignore 255 and -100, weight 0.5, a batch with every label
 *     ignored (NaN loss, zero gradient, as PyTorch), labels out of range refused, FD through a conv;
 *     one label per sample with an ignored label or weight 0.5: clcnn_net_train_stats;
 *   - API misuse and bad arguments: clear errors (the message is checked);
 *   - model-file lines for bce, mse, smoothl1: good ones read as written, bad ones refused with
 *     file:line:col;
 *   - memory: the estimate of a net with four losses is what a step allocates.
 * Expected values are computed here, never written in. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

static clcnn_ctx *ctx64, *ctx32;

enum { BCE, MSE, SL1, XENT };
static const char *const kind_name[] = {"bce", "mse", "smoothl1", "xent"};

/* ---- helpers (with tests/testutil.h's) ------------------------------------------------ */
static int close_ctx(const clcnn_ctx *cx, const double *got, const double *want, size_t n, double *maxerr) {
  if (cx == ctx64) return close_all(got, want, n, F64_ABS, F64_REL, maxerr);
  return close_all(got, want, n, F32_SCALE * max_abs(want, n), F32_REL, maxerr);
}
static const char *pname(const clcnn_ctx *cx) { return cx == ctx64 ? "double" : "float"; }

static clcnn_tensor *add_loss(clcnn_net *net, clcnn_tensor *x, int kind, double beta, double weight,
                              const char *name) {
  switch (kind) {
  case BCE: return clcnn_bce_loss(net, x, weight, name);
  case MSE: return clcnn_mse_loss(net, x, weight, name);
  default: return clcnn_smoothl1_loss(net, x, beta, weight, name);
  }
}
static double ref_loss(int kind, double beta, const double *x, const double *t, size_t m, double *g) {
  switch (kind) {
  case BCE: return ref_bce_with_logits(x, t, m, g);
  case MSE: return ref_mse(x, t, m, g);
  default: return ref_smoothl1(x, t, m, beta, g);
  }
}

/* Inputs and targets for a loss of KIND over m elements (float-exact). Smooth L1 (and MSE): t on
 * a 1/64 grid in [-2, 2], x = t + d with d 0, +-beta exactly for some, random for the rest. BCE: x in
 * [-8, 8] with some at +-60, t in [0, 1] with some exactly 0 and 1. */
static void make_data(int kind, double beta, double *x, double *t, size_t m) {
  for (size_t i = 0; i < m; i++) {
    if (kind == BCE) {
      x[i] = rndf(-8, 8);
      t[i] = rndf(0, 1);
      int r = ref_rng_int(&rng, 8);
      if (r == 0) x[i] = rndf(-60, 60);
      if (r == 1) t[i] = 0;
      if (r == 2) t[i] = 1;
      continue;
    }
    t[i] = (ref_rng_int(&rng, 257) - 128) / 64.0;
    int r = ref_rng_int(&rng, 6);
    double b = beta > 0 ? beta : 1;
    x[i] = r == 0 ? t[i] : r == 1 ? t[i] + beta : r == 2 ? t[i] - beta : t[i] + rndf(-3 * b, 3 * b);
  }
}

/* ---- 1. each loss against its reference ------------------------------------------------ */
/* One step of NET on the host input hx (n samples) with loss L's targets ht: the loss's value,
 * the net's total and the input gradient (m elements, into dx); the first failing call's status. */
static clcnn_status loss_step(clcnn_ctx *cx, clcnn_net *net, clcnn_tensor *L, const void *hx, const void *ht, int n,
                              double *got, double *total, double *dx, size_t m) {
  void *hdx = xcalloc(m, 8);
  clcnn_status st = clcnn_net_forward(net, hx, n);
  if (!st) st = clcnn_net_set_target(net, L, ht);
  if (!st) st = clcnn_net_backward_losses(net);
  if (!st) st = clcnn_net_loss_value(net, L, got);
  if (!st) st = clcnn_net_loss(net, total);
  if (!st) st = clcnn_net_read_input_grad(net, hdx);
  if (!st) from_host(cx, hdx, dx, m);
  free(hdx);
  return st;
}

static void ref_case(clcnn_ctx *cx, int kind, double beta, double weight, int maxb, int n, int c, int h, int w) {
  size_t size = (size_t)c * h * w, m = (size_t)n * size;
  char what[160];
  char beta_s[32] = "";
  if (kind == SL1) snprintf(beta_s, sizeof beta_s, " beta %g", beta);
  snprintf(what, sizeof what, "%s: %s%s weight %g, %d of %d x %dx%dx%d", pname(cx), kind_name[kind], beta_s, weight,
           n, maxb, c, h, w);
  clcnn_net *net = NULL;
  double *x = dalloc(m), *t = dalloc(m), *g = dalloc(m), *dx = dalloc(m);
  void *hx = NULL, *ht = NULL;
  make_data(kind, beta, x, t, m);
  hx = to_host(cx, x, m), ht = to_host(cx, t, m);
  CALL(cx, what, clcnn_net_create(cx, maxb, c, h, w, &net));
  clcnn_tensor *y = clcnn_reshape(net, clcnn_net_input(net), c, h, w, "r");
  clcnn_tensor *L = add_loss(net, y, kind, beta, weight, NULL);
  CALL(cx, what, clcnn_net_build_status(net));
  double want = ref_loss(kind, beta, x, t, m, g), got = NAN, total = NAN, e;
  for (size_t i = 0; i < m; i++) g[i] *= weight;
  CALL(cx, what, loss_step(cx, net, L, hx, ht, n, &got, &total, dx, m));
  int ok = close_ctx(cx, &got, &want, 1, &e);
  tap_ok(ok, "%s: loss %.17g vs reference %.17g", what, got, want);
  tap_ok(total == weight * got || (cx == ctx32 && fabs(total - weight * got) <= 1e-7 * fabs(total)),
         "%s: clcnn_net_loss %.17g = weight * the loss's value %.17g", what, total, weight * got);
  ok = close_ctx(cx, dx, g, m, &e);
  tap_ok(ok, "%s: input gradient vs weight * reference gradient, max err %.3g", what, e);
  if (kind == SL1) { /* the elements at the kinks: exactly PyTorch's values (a float has them exactly) */
    int exact = 1;
    for (size_t i = 0; i < m; i++) {
      double d = x[i] - t[i];
      if (d == 0 || fabs(d) == beta) exact &= dx[i] == (double)(cx == ctx32 ? (float)g[i] : g[i]) ||
                                               fabs(dx[i] - g[i]) <= 1e-6 * fabs(g[i]);
    }
    tap_ok(exact, "%s: gradient where x - t is 0 or +-beta as PyTorch's", what);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(t), free(g), free(dx), free(hx), free(ht);
}

/* ---- 2. finite differences through a conv ---------------------------------------------- */
/* A net: input (C,H,W) -> conv "c" (2 outputs, 3x2 kernel, stride 2, padding 1, bias) -> loss(es).
 * The targets of each loss are fixed relative to the first forward's output. */
struct fdnet {
  clcnn_ctx *cx;
  clcnn_net *net;
  int n, c, h, w;
  int nloss;
  clcnn_tensor *loss[3], *lin[3];
  void *tgt[3];
  void *hx;
};

/* the weighted total loss at the current parameters and input hx */
static int total_loss(struct fdnet *f, double *L) {
  if (clcnn_net_forward(f->net, f->hx, f->n)) return -1;
  for (int i = 0; i < f->nloss; i++)
    if (clcnn_net_set_target(f->net, f->loss[i], f->tgt[i])) return -1;
  if (clcnn_net_backward_losses(f->net) || clcnn_net_loss(f->net, L)) return -1;
  return 0;
}

/* Central differences of the total loss for the parameters' and the input's gradients, from
 * the gradients of one backward at the starting point (the parameter gradients zeroed first). */
static void fd_check(struct fdnet *f, const char *what) {
  clcnn_ctx *cx = f->cx;
  clcnn_net *net = f->net;
  size_t nin = (size_t)f->n * f->c * f->h * f->w;
  double *x = dalloc(nin), *dx = dalloc(nin), L0;
  size_t *idx = xcalloc(nin > 4096 ? nin : 4096, sizeof(size_t));
  double *grads[8] = {0};
  from_host(cx, f->hx, x, nin);
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, total_loss(f, &L0) ? CLCNN_ERR_STATE : 0);
  CALL(cx, what, clcnn_net_read_input_grad(net, dx));
  int np = clcnn_net_num_params(net);
  for (int p = 0; p < np && p < 8; p++) { /* all of them before the differences' backward passes add to them */
    clcnn_param_info info;
    CALL(cx, what, clcnn_net_param_info(net, p, &info));
    grads[p] = dalloc(info.count);
    CALL(cx, what, clcnn_net_grad_read(net, p, grads[p]));
  }
  for (int p = 0; p < np && p < 8; p++) {
    clcnn_param_info info;
    CALL(cx, what, clcnn_net_param_info(net, p, &info));
    double *v = dalloc(info.count), *g = grads[p];
    int ok = 1;
    double worst = 0;
    if (clcnn_net_param_read(net, p, v)) ok = 0;
    size_t k = pick(idx, info.count);
    for (size_t j = 0; ok && j < k; j++) {
      size_t i = idx[j];
      double keep = v[i], lp = NAN, lm = NAN;
      v[i] = keep + FD_H;
      ok &= !clcnn_net_param_write(net, p, v) && !total_loss(f, &lp);
      v[i] = keep - FD_H;
      ok &= !clcnn_net_param_write(net, p, v) && !total_loss(f, &lm);
      v[i] = keep;
      ok &= !clcnn_net_param_write(net, p, v);
      double num = (lp - lm) / (2 * FD_H), e = fabs(g[i] - num);
      if (!(e <= FD_ABS + FD_REL * fabs(num))) ok = 0;
      if (!(e <= worst)) worst = e;
    }
    tap_ok(ok, "%s: d %s vs central differences (%zu of %zu), max err %.3g", what, info.name, k, info.count, worst);
    free(v);
  }
  {
    int ok = 1;
    double worst = 0;
    size_t k = pick(idx, nin);
    for (size_t j = 0; ok && j < k; j++) {
      size_t i = idx[j];
      double *xp = f->hx, keep = x[i], lp = NAN, lm = NAN;
      xp[i] = keep + FD_H;
      ok &= !total_loss(f, &lp);
      xp[i] = keep - FD_H;
      ok &= !total_loss(f, &lm);
      xp[i] = keep;
      double num = (lp - lm) / (2 * FD_H), e = fabs(dx[i] - num);
      if (!(e <= FD_ABS + FD_REL * fabs(num))) ok = 0;
      if (!(e <= worst)) worst = e;
    }
    tap_ok(ok, "%s: d input vs central differences (%zu of %zu), max err %.3g", what, k, nin, worst);
  }
done:
  for (int p = 0; p < 8; p++) free(grads[p]);
  free(x), free(dx), free(idx);
}

/* Targets of a loss of KIND for the values y (m): away from smooth L1's kinks, BCE's in [0, 1]. */
static void targets_near(int kind, double beta, const double *y, double *t, size_t m) {
  for (size_t i = 0; i < m; i++) {
    if (kind == BCE) {
      t[i] = ref_rng_int(&rng, 5) == 0 ? (double)ref_rng_int(&rng, 2) : rndf(0, 1);
      continue;
    }
    double d;
    do d = rndf(-2, 2);
    while (fabs(d) < 1e-3 || fabs(fabs(d) - beta) < 1e-3);
    t[i] = y[i] - d;
  }
}

static clcnn_tensor *make_conv(clcnn_net *net, clcnn_tensor *x, int oc, const char *name) {
  clcnn_conv2d_params p = {.out_channels = oc, .kh = 3, .kw = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                           .pad_w = 1, .bias = 1};
  return clcnn_conv2d(net, x, &p, name);
}

static void fd_case(int kind, double beta, double weight) {
  clcnn_ctx *cx = ctx64;
  char what[128];
  snprintf(what, sizeof what, "fd %s%s weight %g, 3 x 2x7x5 -> conv(2, k 3x2, s 2, p 1)", kind_name[kind],
           kind == SL1 ? (beta == 0 ? " beta 0" : " beta 0.5") : "", weight);
  struct fdnet f = {.cx = cx, .n = 3, .c = 2, .h = 7, .w = 5, .nloss = 1};
  size_t nin = (size_t)f.n * f.c * f.h * f.w;
  double *x = dalloc(nin), *y = NULL, *t = NULL;
  for (size_t i = 0; i < nin; i++) x[i] = rndf(-1, 1);
  f.hx = to_host(cx, x, nin);
  CALL(cx, what, clcnn_net_create(cx, 4, f.c, f.h, f.w, &f.net));
  clcnn_tensor *c = make_conv(f.net, clcnn_net_input(f.net), 2, "c");
  f.loss[0] = add_loss(f.net, c, kind, beta, weight, NULL);
  CALL(cx, what, clcnn_net_build_status(f.net));
  CALL(cx, what, clcnn_net_init_params(f.net, 7));
  size_t m = (size_t)f.n * clcnn_net_output_size(f.net);
  y = dalloc(m), t = dalloc(m);
  CALL(cx, what, clcnn_net_forward(f.net, f.hx, f.n));
  CALL(cx, what, clcnn_net_read_output(f.net, y));
  targets_near(kind, beta, y, t, m);
  f.tgt[0] = t;
  fd_check(&f, what);
done:
  clcnn_net_destroy(f.net);
  free(x), free(y), free(t), free(f.hx);
}

/* ---- 3. several losses on one net; float against double -------------------------------- */
/* input 3 x 2x7x5 -> conv c (3 outputs); mse(c) weight 0.3 and smoothl1(c, beta 0.5) weight 1.7
 * read the same tensor; d = conv(c) (2 outputs) -> bce(d) weight 2. Returns the run's total,
 * the values, the input gradient and the parameter gradients (for float vs double). */
struct multi_out {
  double total, v[3], *dx, *g[4], *y[2];
  size_t gcount[4], ycount[2], nin;
};

static int multi_run(clcnn_ctx *cx, int fd, struct multi_out *o) {
  const char *what = cx == ctx64 ? "double: mse(c) 0.3 + smoothl1(c) 1.7 + bce(conv(c)) 2" :
                                   "float: mse(c) 0.3 + smoothl1(c) 1.7 + bce(conv(c)) 2";
  int ret = -1;
  ref_rng_seed(&rng, 4242); /* the same data in both contexts */
  struct fdnet f = {.cx = cx, .n = 3, .c = 2, .h = 7, .w = 5, .nloss = 3};
  size_t nin = (size_t)f.n * f.c * f.h * f.w;
  double *x = dalloc(nin), *yc = NULL, *yd = NULL, *t[3] = {0};
  for (size_t i = 0; i < nin; i++) x[i] = rndf(-1, 1);
  f.hx = to_host(cx, x, nin);
  CALL(cx, what, clcnn_net_create(cx, 4, f.c, f.h, f.w, &f.net));
  clcnn_tensor *c = make_conv(f.net, clcnn_net_input(f.net), 3, "c");
  clcnn_tensor *d = make_conv(f.net, c, 2, "d");
  f.loss[0] = clcnn_mse_loss(f.net, c, 0.3, "l_mse");
  f.loss[1] = clcnn_smoothl1_loss(f.net, c, 0.5, 1.7, "l_sl1");
  f.loss[2] = clcnn_bce_loss(f.net, d, 2.0, "l_bce");
  CALL(cx, what, clcnn_net_build_status(f.net));
  /* read back after the forward: kept from the buffer sharing */
  CALL(cx, what, clcnn_net_keep_tensor(f.net, c));
  CALL(cx, what, clcnn_net_keep_tensor(f.net, d));
  /* parameters: float-exact, the same in both contexts */
  for (int p = 0; p < clcnn_net_num_params(f.net); p++) {
    clcnn_param_info info;
    CALL(cx, what, clcnn_net_param_info(f.net, p, &info));
    double *v = dalloc(info.count);
    for (size_t i = 0; i < info.count; i++) v[i] = rndf(-0.5, 0.5);
    void *hv = to_host(cx, v, info.count);
    clcnn_status st = clcnn_net_param_write(f.net, p, hv);
    free(v), free(hv);
    CALL(cx, what, st);
  }
  int dc[4], dd[4];
  clcnn_tensor_shape(c, dc), clcnn_tensor_shape(d, dd);
  size_t mc = (size_t)f.n * dc[1] * dc[2] * dc[3], md = (size_t)f.n * dd[1] * dd[2] * dd[3];
  yc = dalloc(mc), yd = dalloc(md);
  void *hy = xcalloc(mc > md ? mc : md, 8);
  CALL(cx, what, clcnn_net_forward(f.net, f.hx, f.n));
  CALL(cx, what, clcnn_net_read_tensor(f.net, c, hy));
  from_host(cx, hy, yc, mc);
  CALL(cx, what, clcnn_net_read_tensor(f.net, d, hy));
  from_host(cx, hy, yd, md);
  free(hy);
  /* the targets come from the double run's outputs (rounded to float), so both runs share them */
  static double *shared[3];
  static size_t shared_m[3];
  if (cx == ctx64) {
    for (int i = 0; i < 3; i++) free(shared[i]);
    shared_m[0] = shared_m[1] = mc, shared_m[2] = md;
    for (int i = 0; i < 3; i++) shared[i] = dalloc(shared_m[i]);
    targets_near(MSE, 0.5, yc, shared[0], mc);
    targets_near(SL1, 0.5, yc, shared[1], mc);
    targets_near(BCE, 0, yd, shared[2], md);
    for (int i = 0; i < 3; i++)
      for (size_t j = 0; j < shared_m[i]; j++) shared[i][j] = (float)shared[i][j];
  }
  for (int i = 0; i < 3; i++) f.tgt[i] = t[i] = to_host(cx, shared[i], shared_m[i]) ;
  CALL(cx, what, total_loss(&f, &o->total) ? CLCNN_ERR_STATE : 0);
  for (int i = 0; i < 3; i++) CALL(cx, what, clcnn_net_loss_value(f.net, f.loss[i], &o->v[i]));
  {
    double w[3] = {0.3, 1.7, 2.0}, r[3], e;
    r[0] = ref_mse(yc, shared[0], mc, NULL);
    r[1] = ref_smoothl1(yc, shared[1], mc, 0.5, NULL);
    r[2] = ref_bce_with_logits(yd, shared[2], md, NULL);
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= close_ctx(cx, &o->v[i], &r[i], 1, &e);
    tap_ok(ok, "%s: each loss's value vs its reference on the tensor it reads (%.6g %.6g %.6g)", what, o->v[0],
           o->v[1], o->v[2]);
    double sum = w[0] * o->v[0] + w[1] * o->v[1] + w[2] * o->v[2];
    tap_ok(fabs(o->total - sum) <= 1e-12 * fabs(sum), "%s: clcnn_net_loss %.17g = the weighted sum %.17g", what,
           o->total, sum);
  }
  o->nin = nin;
  o->dx = dalloc(nin);
  {
    void *h = xcalloc(nin, 8);
    CALL(cx, what, clcnn_net_read_input_grad(f.net, h));
    from_host(cx, h, o->dx, nin);
    free(h);
  }
  for (int p = 0; p < 4 && p < clcnn_net_num_params(f.net); p++) {
    clcnn_param_info info;
    CALL(cx, what, clcnn_net_param_info(f.net, p, &info));
    void *h = xcalloc(info.count, 8);
    o->g[p] = dalloc(info.count), o->gcount[p] = info.count;
    clcnn_status st = clcnn_net_zero_grad(f.net);
    if (!st) st = total_loss(&f, &o->total) ? CLCNN_ERR_STATE : 0;
    if (!st) st = clcnn_net_grad_read(f.net, p, h);
    from_host(cx, h, o->g[p], info.count);
    free(h);
    CALL(cx, what, st);
  }
  o->y[0] = yc, o->y[1] = yd, o->ycount[0] = mc, o->ycount[1] = md;
  yc = yd = NULL;
  if (fd) fd_check(&f, what);
  ret = 0;
done:
  clcnn_net_destroy(f.net);
  free(x), free(yc), free(yd), free(f.hx);
  for (int i = 0; i < 3; i++) free(t[i]);
  if (cx == ctx32)
    for (int i = 0; i < 3; i++) free(shared[i]), shared[i] = NULL;
  return ret;
}

static void free_multi(struct multi_out *o) {
  free(o->dx);
  for (int i = 0; i < 4; i++) free(o->g[i]);
  for (int i = 0; i < 2; i++) free(o->y[i]);
}

static void multi_losses(void) {
  struct multi_out d = {0}, s = {0};
  if (multi_run(ctx64, 1, &d) == 0 && multi_run(ctx32, 0, &s) == 0) {
    double e[6] = {0};
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= close_all(&s.v[i], &d.v[i], 1, F32_SCALE * fabs(d.v[i]), F32_REL, &e[0]);
    ok &= close_all(&s.total, &d.total, 1, F32_SCALE * fabs(d.total), F32_REL, &e[0]);
    tap_ok(ok, "several losses: float values and total within 1e-5 relative of double's");
    ok = close_all(s.dx, d.dx, d.nin, F32_SCALE * max_abs(d.dx, d.nin), F32_REL, &e[1]);
    for (int p = 0; p < 4; p++)
      ok &= close_all(s.g[p], d.g[p], d.gcount[p], F32_SCALE * max_abs(d.g[p], d.gcount[p]), F32_REL, &e[2 + p]);
    tap_ok(ok, "several losses: float gradients within 1e-5*|d| + 1e-5*max|d| of double's, max err %.3g %.3g %.3g "
           "%.3g %.3g", e[1], e[2], e[3], e[4], e[5]);
  }
  free_multi(&d), free_multi(&s);
}

/* Two losses on a tensor nothing else reads: input -> reshape r -> mse(r) 0.4, smoothl1(r, 0.5) 1.5.
 * The input's gradient is 0.4 * mse's + 1.5 * smooth L1's (the second goes through the net's
 * gradient-sum buffer). */
static void two_on_one(clcnn_ctx *cx) {
  char what[96];
  snprintf(what, sizeof what, "%s: mse(r) 0.4 + smoothl1(r, beta 0.5) 1.5 on one tensor, 2 x 3x5x4", pname(cx));
  const int n = 2, c = 3, h = 5, w = 4;
  size_t m = (size_t)n * c * h * w;
  clcnn_net *net = NULL;
  double *x = dalloc(m), *t1 = dalloc(m), *t2 = dalloc(m), *g1 = dalloc(m), *g2 = dalloc(m), *dx = dalloc(m);
  make_data(MSE, 0, x, t1, m);
  for (size_t i = 0; i < m; i++) t2[i] = x[i] + rndf(-1, 1);
  void *hx = to_host(cx, x, m), *h1 = to_host(cx, t1, m), *h2 = to_host(cx, t2, m), *hdx = xcalloc(m, 8);
  CALL(cx, what, clcnn_net_create(cx, n, c, h, w, &net));
  clcnn_tensor *r = clcnn_reshape(net, clcnn_net_input(net), c, h, w, "r");
  clcnn_tensor *a = clcnn_mse_loss(net, r, 0.4, NULL), *b = clcnn_smoothl1_loss(net, r, 0.5, 1.5, NULL);
  CALL(cx, what, clcnn_net_build_status(net));
  double va, vb, total, e, want[2];
  want[0] = ref_mse(x, t1, m, g1);
  want[1] = ref_smoothl1(x, t2, m, 0.5, g2);
  for (size_t i = 0; i < m; i++) g1[i] = 0.4 * g1[i] + 1.5 * g2[i];
  CALL(cx, what, clcnn_net_forward(net, hx, n));
  CALL(cx, what, clcnn_net_set_target(net, a, h1));
  CALL(cx, what, clcnn_net_set_target(net, b, h2));
  CALL(cx, what, clcnn_net_backward_losses(net));
  CALL(cx, what, clcnn_net_loss_value(net, a, &va));
  CALL(cx, what, clcnn_net_loss_value(net, b, &vb));
  CALL(cx, what, clcnn_net_loss(net, &total));
  CALL(cx, what, clcnn_net_read_input_grad(net, hdx));
  from_host(cx, hdx, dx, m);
  tap_ok(close_ctx(cx, &va, &want[0], 1, &e) && close_ctx(cx, &vb, &want[1], 1, &e) &&
             fabs(total - (0.4 * va + 1.5 * vb)) <= 1e-7 * fabs(total),
         "%s: values vs references, total = 0.4 mse + 1.5 smoothl1", what);
  tap_ok(close_ctx(cx, dx, g1, m, &e), "%s: input gradient = the weighted sum of the references', max err %.3g", what,
         e);
done:
  clcnn_net_destroy(net);
  free(x), free(t1), free(t2), free(g1), free(g2), free(dx), free(hx), free(h1), free(h2), free(hdx);
}

/* ---- 4. cross-entropy per position ------------------------------------------------------ */
/* input -> reshape -> xent(ignore, weight) on (N,C,H,W) logits; labels (N,H,W). */
static void xent_case(clcnn_ctx *cx, int n, int maxb, int c, int h, int w, int ignore, double weight,
                      int ignored_every /* 0: none ignored; k: about one in k; 1: all */) {
  char what[160];
  snprintf(what, sizeof what, "%s: xent per position, %d of %d x %dx%dx%d, ignore %d, weight %g, %s", pname(cx), n,
           maxb, c, h, w, ignore, weight,
           ignored_every == 1 ? "every label ignored" : ignored_every ? "some ignored" : "none ignored");
  size_t p = (size_t)h * w, m = (size_t)n * c * p;
  clcnn_net *net = NULL;
  double *x = dalloc(m), *g = dalloc(m), *dx = dalloc(m);
  int32_t *lab = xcalloc((size_t)n * p, sizeof(int32_t));
  void *hx = NULL;
  for (size_t i = 0; i < m; i++) x[i] = rndf(-3, 3);
  for (size_t i = 0; i < (size_t)n * p; i++)
    lab[i] = ignored_every && ref_rng_int(&rng, ignored_every) == 0 ? ignore : ref_rng_int(&rng, c);
  if (ignored_every != 1) lab[0] = ignore == 0 ? 1 : 0; /* at least one label counts */
  hx = to_host(cx, x, m);
  CALL(cx, what, clcnn_net_create(cx, maxb, c, h, w, &net));
  clcnn_tensor *L = clcnn_xent_loss(net, clcnn_reshape(net, clcnn_net_input(net), c, h, w, "r"), ignore, weight,
                                    "xe");
  CALL(cx, what, clcnn_net_build_status(net));
  double want = ref_xent_positions(x, n, c, (int)p, lab, ignore, g), got = 0, total = 0, e;
  for (size_t i = 0; i < m; i++) g[i] *= weight;
  { /* first a batch without ignored labels, so that the gradient buffer holds non-zeros everywhere */
    int32_t *all = xcalloc((size_t)n * p, sizeof(int32_t));
    for (size_t i = 0; i < (size_t)n * p; i++) all[i] = (int32_t)(i % c);
    clcnn_status st = clcnn_net_forward(net, hx, n);
    if (!st) st = clcnn_net_set_target(net, L, all);
    if (!st) st = clcnn_net_backward_losses(net);
    if (!st) st = clcnn_net_wait_inputs(net); /* the labels are copied from `all` on the event chain */
    free(all);
    CALL(cx, what, st);
  }
  CALL(cx, what, loss_step(cx, net, L, hx, lab, n, &got, &total, dx, m));
  if (ignored_every == 1) {
    int zero = 1;
    for (size_t i = 0; i < m; i++) zero &= dx[i] == 0;
    tap_ok(isnan(got) && isnan(want), "%s: the loss is NaN (%g), as PyTorch's mean over no labels", what, got);
    tap_ok(zero, "%s: the gradient is exactly 0 everywhere", what);
  } else {
    tap_ok(close_ctx(cx, &got, &want, 1, &e), "%s: loss %.17g vs reference %.17g", what, got, want);
    tap_ok(close_ctx(cx, dx, g, m, &e), "%s: input gradient vs weight * reference, max err %.3g", what, e);
    int zero = 1;
    for (size_t i = 0; i < m; i++)
      if (lab[(i / (c * p)) * p + i % p] == ignore) zero &= dx[i] == 0;
    tap_ok(zero, "%s: exactly 0 gradient at the ignored positions", what);
    tap_ok(fabs(total - weight * got) <= 1e-7 * fabs(total), "%s: clcnn_net_loss = weight * value", what);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(g), free(dx), free(lab), free(hx);
}

static void xent_fd(void) {
  clcnn_ctx *cx = ctx64;
  const char *what = "fd xent per position ignore 255 weight 0.5, 3 x 2x7x5 -> conv(4, k 3x2, s 2, p 1)";
  struct fdnet f = {.cx = cx, .n = 3, .c = 2, .h = 7, .w = 5, .nloss = 1};
  size_t nin = (size_t)f.n * f.c * f.h * f.w;
  double *x = dalloc(nin);
  int32_t *lab = NULL;
  for (size_t i = 0; i < nin; i++) x[i] = rndf(-1, 1);
  f.hx = to_host(cx, x, nin);
  CALL(cx, what, clcnn_net_create(cx, 4, f.c, f.h, f.w, &f.net));
  clcnn_tensor *c = make_conv(f.net, clcnn_net_input(f.net), 4, "c");
  f.loss[0] = clcnn_xent_loss(f.net, c, 255, 0.5, NULL);
  CALL(cx, what, clcnn_net_build_status(f.net));
  CALL(cx, what, clcnn_net_init_params(f.net, 11));
  int dims[4];
  clcnn_tensor_shape(c, dims);
  size_t np = (size_t)f.n * dims[2] * dims[3];
  lab = xcalloc(np, sizeof(int32_t));
  for (size_t i = 0; i < np; i++) lab[i] = i % 3 == 1 ? 255 : ref_rng_int(&rng, dims[1]);
  f.tgt[0] = lab;
  fd_check(&f, what);
done:
  clcnn_net_destroy(f.net);
  free(x), free(lab), free(f.hx);
}

static void xent_bad_labels(void) {
  clcnn_ctx *cx = ctx64;
  const char *what = "xent per position labels";
  clcnn_net *net = NULL;
  double x[2 * 3 * 2 * 2] = {0};
  int32_t lab[8];
  CALL(cx, what, clcnn_net_create(cx, 2, 3, 2, 2, &net));
  clcnn_tensor *r = clcnn_reshape(net, clcnn_net_input(net), 3, 2, 2, "r");
  clcnn_tensor *a = clcnn_xent_loss(net, r, 255, 1, "a"), *b = clcnn_xent_loss(net, r, -100, 1, "b");
  CALL(cx, what, clcnn_net_build_status(net));
  CALL(cx, what, clcnn_net_forward(net, x, 2));
  struct {
    clcnn_tensor *loss;
    int where, label;
    const char *words;
  } bad[] = {
      {a, 5, 3, "loss 'a'|label 3|sample 1|position 1|outside 0..2|ignore index 255"},
      {a, 0, -1, "label -1|sample 0|position 0|ignore index 255"},
      {a, 7, -100, "label -100|ignore index 255"},
      {b, 6, 255, "loss 'b'|label 255|sample 1|position 2|ignore index -100"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int j = 0; j < 8; j++) lab[j] = j % 3;
    lab[bad[i].where] = bad[i].label;
    clcnn_status st = clcnn_net_set_target(net, bad[i].loss, lab);
    tap_ok(st == CLCNN_ERR_LABEL && has_words(clcnn_ctx_last_error(cx), bad[i].words),
           "%s: label %d refused (%s): %s", what, bad[i].label, clcnn_status_name(st), clcnn_ctx_last_error(cx));
  }
  tap_ok(clcnn_net_backward_losses(net) == CLCNN_ERR_STATE, "%s: no backward after refused labels", what);
done:
  clcnn_net_destroy(net);
}

/* clcnn_net_train_stats through cross-entropy's general kernels (one label per sample): a net
 * without a loss (its cross-entropy ignores -100, as PyTorch's CrossEntropyLoss and
 * tests/clcnn_torch.py's implicit xent) given a label -100, and an explicit xent with weight 0.5
 * and ignore 255. The sums count the samples not ignored, their unweighted losses and their right
 * predictions (torch.argmax's: the first largest output). */
static void xent_stats(int explicit_loss) {
  clcnn_ctx *cx = ctx64;
  const char *what = explicit_loss ? "train stats: xent(ignore 255, weight 0.5), a label 255"
                                   : "train stats: the default loss, a label -100";
  const int n = 4, k = 5, ign = explicit_loss ? 255 : -100;
  clcnn_net *net = NULL;
  double x[4 * 3], y[4 * 5], w[5 * 3], b[5];
  for (int i = 0; i < 12; i++) x[i] = rndf(-1, 1);
  for (int i = 0; i < 15; i++) w[i] = rndf(-1, 1);
  for (int i = 0; i < 5; i++) b[i] = rndf(-1, 1);
  /* outputs 1 and 2 equal and the largest (>= 7, the others <= 4): sample 0's label 1 is right by
   * the first-largest rule only */
  for (int i = 0; i < 3; i++) w[2 * 3 + i] = w[1 * 3 + i];
  b[1] = b[2] = 10;
  int32_t lab[4] = {1, ign, 4, 0};
  double sums[3][2] = {{0}}, loss;
  CALL(cx, what, clcnn_net_create(cx, n, 3, 1, 1, &net));
  clcnn_tensor *out = clcnn_linear(net, clcnn_net_input(net), k, 1, "fc");
  if (explicit_loss) clcnn_xent_loss(net, out, 255, 0.5, "xe");
  CALL(cx, what, clcnn_net_build_status(net));
  CALL(cx, what, clcnn_net_param_write(net, 0, w));
  CALL(cx, what, clcnn_net_param_write(net, 1, b));
  CALL(cx, what, clcnn_net_train_stats_reset(net));
  CALL(cx, what, clcnn_net_forward(net, x, n));
  CALL(cx, what, clcnn_net_read_output(net, y));
  CALL(cx, what, clcnn_net_backward(net, lab));
  CALL(cx, what, clcnn_net_loss(net, &loss));
  CALL(cx, what, clcnn_net_train_stats(net, &sums[0][0], &sums[1][0], &sums[2][0]));
  /* the reference over the samples not ignored */
  double kept[3 * 5], one, sum = 0, hits = 0;
  int32_t kl[3];
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (lab[i] == ign) continue;
    memcpy(kept + m * k, y + i * k, k * sizeof(double));
    kl[m] = lab[i];
    sum += ref_softmax_xent(y + i * k, 1, k, &lab[i], NULL);
    int best = 0;
    for (int j = 1; j < k; j++)
      if (y[i * k + j] > y[i * k + best]) best = j;
    hits += best == lab[i];
    m++;
  }
  one = ref_softmax_xent(kept, m, k, kl, NULL);
  double e, wgt = explicit_loss ? 0.5 : 1;
  double want_loss = wgt * one;
  tap_ok(close_all(&loss, &want_loss, 1, F64_ABS, F64_REL, &e), "%s: loss %.17g vs %g * reference over the 3 kept %.17g",
         what, loss, wgt, one);
  tap_ok(sums[2][0] == 3, "%s: samples counted %g (the 3 not ignored)", what, sums[2][0]);
  tap_ok(close_all(&sums[0][0], &sum, 1, F64_ABS, F64_REL, &e) && sums[1][0] == hits,
         "%s: loss sum %.17g (reference %.17g, unweighted), right %g (reference %g)", what, sums[0][0], sum, sums[1][0],
         hits);
done:
  clcnn_net_destroy(net);
}

/* ---- 5. misuse and bad arguments -------------------------------------------------------- */
static void misuse(clcnn_ctx *cx) {
  char what[64];
  snprintf(what, sizeof what, "%s: misuse", pname(cx));
  clcnn_net *net = NULL;
  double x[2 * 2 * 3 * 2], t[2 * 2 * 3 * 2];
  for (int i = 0; i < 24; i++) x[i] = rndf(-1, 1), t[i] = rndf(0, 1);
  void *hx = to_host(cx, x, 24), *ht = to_host(cx, t, 24);
  CALL(cx, what, clcnn_net_create(cx, 2, 2, 3, 2, &net));
  clcnn_tensor *r = clcnn_reshape(net, clcnn_net_input(net), 2, 3, 2, "r");
  /* builders refuse bad numbers, and the net is as before */
  struct {
    int kind;
    double beta, weight;
    const char *words;
  } bb[] = {
      {MSE, 0, -1, "loss 'l'|mse|weight -1|finite and non-negative"},
      {BCE, 0, NAN, "loss 'l'|bce_with_logits|weight nan"},
      {SL1, 1, INFINITY, "weight inf"},
      {SL1, -0.5, 1, "loss 'l'|smooth_l1|beta -0.5|non-negative"},
      {SL1, NAN, 1, "beta nan"},
      {SL1, INFINITY, 1, "beta inf"},
  };
  for (size_t i = 0; i < sizeof bb / sizeof bb[0]; i++) {
    clcnn_tensor *l = add_loss(net, r, bb[i].kind, bb[i].beta, bb[i].weight, "l");
    tap_ok(!l && clcnn_net_build_status(net) == CLCNN_ERR_INVALID_ARGUMENT &&
               has_words(clcnn_ctx_last_error(cx), bb[i].words),
           "%s: %s beta %g weight %g refused: %s", what, kind_name[bb[i].kind], bb[i].beta, bb[i].weight,
           clcnn_ctx_last_error(cx));
  }
  tap_ok(clcnn_net_tensor(net, "l") == NULL, "%s: no node left behind by the refused builders", what);
  clcnn_tensor *lb = clcnn_bce_loss(net, r, 1, "lb"), *lm = clcnn_mse_loss(net, r, 1, "lm");
  CALL(cx, what, clcnn_net_build_status(net));
  clcnn_status st = clcnn_net_set_target(net, lb, ht);
  tap_ok(st == CLCNN_ERR_STATE && has_words(clcnn_ctx_last_error(cx), "no forward pass"),
         "%s: targets before any forward: %s", what, clcnn_ctx_last_error(cx));
  CALL(cx, what, clcnn_net_forward(net, hx, 2));
  double v;
  st = clcnn_net_loss_value(net, lb, &v);
  tap_ok(st == CLCNN_ERR_STATE, "%s: a loss's value before any backward: %s", what, clcnn_ctx_last_error(cx));
  st = clcnn_net_set_target(net, r, ht);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && has_words(clcnn_ctx_last_error(cx), "r|not a loss"),
         "%s: targets for a tensor that is not a loss: %s", what, clcnn_ctx_last_error(cx));
  CALL(cx, what, clcnn_net_set_target(net, lb, ht));
  st = clcnn_net_backward_losses(net);
  tap_ok(st == CLCNN_ERR_STATE && has_words(clcnn_ctx_last_error(cx), "loss 'lm'|no targets"),
         "%s: backward_losses with one loss lacking targets: %s", what, clcnn_ctx_last_error(cx));
  int32_t labels[2] = {0, 1};
  st = clcnn_net_backward(net, labels);
  tap_ok(st == CLCNN_ERR_STATE && has_words(clcnn_ctx_last_error(cx), "not one cross-entropy|clcnn_net_set_target"),
         "%s: clcnn_net_backward on a net with bce and mse: %s", what, clcnn_ctx_last_error(cx));
  /* bad targets: refused, nothing kept */
  struct {
    clcnn_tensor *loss;
    int at;
    double val;
    const char *words;
  } bt[] = {
      {lm, 13, NAN, "loss 'lm'|target nan|sample 1|element 1|not finite"},
      {lm, 0, INFINITY, "target inf|sample 0|element 0|not finite"},
      {lb, 5, -INFINITY, "loss 'lb'|target -inf|not finite"},
      {lb, 23, 1.5, "loss 'lb'|target 1.5|sample 1|element 11|outside [0, 1]"},
      {lb, 2, -0.25, "target -0.25|sample 0|element 2|outside [0, 1]"},
  };
  for (size_t i = 0; i < sizeof bt / sizeof bt[0]; i++) {
    double tt[24];
    memcpy(tt, t, sizeof tt);
    tt[bt[i].at] = bt[i].val;
    void *h = to_host(cx, tt, 24);
    CALL(cx, what, clcnn_net_forward(net, hx, 2)); /* forgets the targets */
    st = clcnn_net_set_target(net, bt[i].loss, h);
    free(h);
    tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && has_words(clcnn_ctx_last_error(cx), bt[i].words),
           "%s: target %g refused: %s", what, bt[i].val, clcnn_ctx_last_error(cx));
    CALL(cx, what, clcnn_net_set_target(net, bt[i].loss == lb ? lm : lb, ht));
    st = clcnn_net_backward_losses(net);
    tap_ok(st == CLCNN_ERR_STATE, "%s: then backward_losses still refused (%s)", what, clcnn_ctx_last_error(cx));
  }
  /* a new forward forgets the last batch's targets */
  CALL(cx, what, clcnn_net_set_target(net, lb, ht));
  CALL(cx, what, clcnn_net_set_target(net, lm, ht));
  CALL(cx, what, clcnn_net_forward(net, hx, 1));
  st = clcnn_net_backward_losses(net);
  tap_ok(st == CLCNN_ERR_STATE && has_words(clcnn_ctx_last_error(cx), "no targets for this batch"),
         "%s: targets do not outlive their forward: %s", what, clcnn_ctx_last_error(cx));
  CALL(cx, what, clcnn_net_set_target(net, lb, ht));
  CALL(cx, what, clcnn_net_set_target(net, lm, ht));
  CALL(cx, what, clcnn_net_backward_losses(net));
  CALL(cx, what, clcnn_net_loss_value(net, lm, &v));
  {
    double want = ref_mse(x, t, 12, NULL), e; /* batch 1: the first 12 */
    if (cx == ctx32) {
      double xf[12], tf[12];
      for (int i = 0; i < 12; i++) xf[i] = (float)x[i], tf[i] = (float)t[i];
      want = ref_mse(xf, tf, 12, NULL);
    }
    tap_ok(close_ctx(cx, &v, &want, 1, &e), "%s: then a batch of 1 gives its own loss %.17g (reference %.17g)",
           what, v, want);
  }
  clcnn_net_destroy(net), net = NULL;
  /* one loss, not a cross-entropy: clcnn_net_backward (class labels) is refused */
  CALL(cx, what, clcnn_net_create(cx, 2, 2, 3, 2, &net));
  clcnn_smoothl1_loss(net, clcnn_reshape(net, clcnn_net_input(net), 2, 3, 2, NULL), 1, 1, NULL);
  CALL(cx, what, clcnn_net_build_status(net));
  CALL(cx, what, clcnn_net_forward(net, hx, 2));
  st = clcnn_net_backward(net, labels);
  tap_ok(st == CLCNN_ERR_STATE && has_words(clcnn_ctx_last_error(cx), "1 loss,|not one cross-entropy"),
         "%s: clcnn_net_backward on a net whose one loss is smoothl1: %s", what, clcnn_ctx_last_error(cx));
done:
  clcnn_net_destroy(net);
  free(hx), free(ht);
}

/* ---- 6. model files --------------------------------------------------------------------- */
static void model_good(void) {
  const char *text = "input 2 5 7\n"
                     "c = conv 3 kernel=3 pad=1\n"
                     "bce(c) weight=0.5\n"
                     "m = mse(c)\n"
                     "smoothl1 beta=0.25 weight=2   # reads the last layer, c\n";
  const char *what = "model file: bce(c) weight=0.5, m = mse(c), smoothl1 beta=0.25 weight=2";
  clcnn_ctx *cx = ctx64;
  char err[1024] = "";
  clcnn_net *net = NULL;
  double *x = dalloc(2 * 70), *y = dalloc(2 * 105), *t[3];
  for (int i = 0; i < 3; i++) t[i] = dalloc(2 * 105);
  clcnn_status st = clcnn_net_from_text(cx, text, "t.txt", 2, &net, err, sizeof err);
  tap_ok(st == 0, "%s: read (%s)", what, err);
  if (st) goto done;
  clcnn_tensor *L[3] = {clcnn_net_tensor(net, "loss0"), clcnn_net_tensor(net, "m"), clcnn_net_tensor(net, "loss2")};
  tap_ok(L[0] && L[1] && L[2], "%s: the losses are loss0, m, loss2", what);
  if (!L[0] || !L[1] || !L[2]) goto done;
  CALL(cx, what, clcnn_net_init_params(net, 3));
  for (int i = 0; i < 140; i++) x[i] = rndf(-1, 1);
  CALL(cx, what, clcnn_net_forward(net, x, 2));
  CALL(cx, what, clcnn_net_read_output(net, y));
  targets_near(BCE, 0, y, t[0], 210);
  targets_near(MSE, 0, y, t[1], 210);
  for (int i = 0; i < 210; i++) t[2][i] = y[i] + rndf(-0.5, 0.5); /* both sides of beta = 0.25 */
  for (int i = 0; i < 3; i++) CALL(cx, what, clcnn_net_set_target(net, L[i], t[i]));
  CALL(cx, what, clcnn_net_backward_losses(net));
  double v[3], want[3], total, e;
  want[0] = ref_bce_with_logits(y, t[0], 210, NULL);
  want[1] = ref_mse(y, t[1], 210, NULL);
  want[2] = ref_smoothl1(y, t[2], 210, 0.25, NULL);
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    CALL(cx, what, clcnn_net_loss_value(net, L[i], &v[i]));
    ok &= close_ctx(cx, &v[i], &want[i], 1, &e);
  }
  tap_ok(ok, "%s: each value vs its reference (smooth L1 with beta 0.25)", what);
  CALL(cx, what, clcnn_net_loss(net, &total));
  double sum = 0.5 * v[0] + v[1] + 2 * v[2];
  tap_ok(fabs(total - sum) <= 1e-12 * fabs(sum), "%s: total %.17g = 0.5 bce + mse + 2 smoothl1 = %.17g", what, total,
         sum);
done:
  clcnn_net_destroy(net);
  free(x), free(y);
  for (int i = 0; i < 3; i++) free(t[i]);
}

static void model_bad(void) {
  static const struct {
    const char *lines, *words;
  } bad[] = {
      {"bce(c) weight=-1\n", "t.txt:3:1|loss 'loss0'|weight -1|non-negative"},
      {"mse(c) weight=abc\n", "t.txt:3:15|expected a number|weight|'abc'"},
      {"mse(c) weight=\n", "t.txt:3:"},
      {"smoothl1(c) beta=-0.5\n", "t.txt:3:1|beta -0.5|non-negative"},
      {"smoothl1(c) beta=nan\n", "t.txt:3:18|expected a number|beta|'nan'"},
      {"smoothl1(c) beta=1e999\n", "t.txt:3:18|expected a number|beta"},
      {"mse(c) beta=1\n", "t.txt:3:8|beta"},
      {"bce(c) ignore=3\n", "t.txt:3:8|ignore"},
      {"mse(c)\nrelu\n", "t.txt:4:1|a layer after the loss on line 3"},
      {"smoothl1(c) beta=0.5\nd = conv 2 kernel=1\n", "t.txt:4:|a layer after the loss on line 3"},
      {"mse(nope)\n", "t.txt:3:5|unknown name 'nope'"},
      {"bce(c, c)\n", "t.txt:3:1|bce takes 1 input, got 2|bce(X) [weight=W]"},
      {"l = mse(c)\nbce(l)\n", "t.txt:4:5|'l' is a loss"},
      {"c = mse(c)\n", "t.txt:3:1|'c'|defined twice"},
  };
  clcnn_ctx *cx = ctx64;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[256], err[1024] = "";
    snprintf(text, sizeof text, "input 2 5 7\nc = conv 3 kernel=3 pad=1\n%s", bad[i].lines);
    clcnn_net *net = NULL;
    clcnn_status st = clcnn_net_from_text(cx, text, "t.txt", 2, &net, err, sizeof err);
    char shown[64];
    snprintf(shown, sizeof shown, "%s", bad[i].lines);
    for (char *p = shown; *p; p++)
      if (*p == '\n') *p = '|';
    tap_ok(st != 0 && !net && has_words(err, bad[i].words), "model file line(s) \"%s\" refused: %s", shown, err);
    clcnn_net_destroy(net);
  }
}

/* ---- 7. memory: the estimate of a net with losses is what a step allocates ---------------- */
static void memory(void) {
  static const char text[] = "input 3 7 5\n"
                             "c = conv 4 kernel=3x2 stride=2 pad=1\n"
                             "bce(c) weight=0.5\n"
                             "mse(c)\n"
                             "x = xent(c) ignore=255\n"
                             "smoothl1(c) beta=0.5\n";
  const char *what = "memory: conv -> bce, mse, xent per position, smoothl1; batch 5";
  const int B = 5;
  clcnn_ctx_options o = {.precision = CLCNN_FLOAT, .gemm = "clcnn"};
  char err[1024] = "";
  clcnn_ctx *cx = NULL;
  clcnn_net *small = NULL, *net = NULL;
  float *x = NULL, *t = NULL;
  int32_t *lab = NULL;
  if (clcnn_ctx_create(&cx, &o, err, sizeof err)) tap_bail(err);
  clcnn_memory_estimate est, full;
  size_t base = 0, peak = 0;
  CALL(cx, what, clcnn_net_from_text(cx, text, "m.txt", 1, &small, err, sizeof err));
  CALL(cx, what, clcnn_net_memory_estimate(small, B, NULL, &est));
  clcnn_net_destroy(small), small = NULL;
  clcnn_ctx_destroy(cx), cx = NULL;
  if (clcnn_ctx_create(&cx, &o, err, sizeof err)) tap_bail(err);
  clcnn_ctx_memory(cx, &base, NULL, NULL);
  CALL(cx, what, clcnn_net_from_text(cx, text, "m.txt", B, &net, err, sizeof err));
  CALL(cx, what, clcnn_net_init_params(net, 5));
  CALL(cx, what, clcnn_net_memory_estimate(net, B, NULL, &full));
  size_t in = clcnn_net_input_size(net), out = clcnn_net_output_size(net);
  x = xcalloc(B * in, sizeof *x), t = xcalloc(B * out, sizeof *t), lab = xcalloc(B * out / 4, sizeof *lab);
  for (size_t i = 0; i < B * in; i++) x[i] = (float)rndf(-1, 1);
  for (size_t i = 0; i < B * out; i++) t[i] = (float)rndf(0, 1);
  for (size_t i = 0; i < B * out / 4; i++) lab[i] = (int32_t)(i % 5 == 0 ? 255 : i % 4);
  const char *names[4] = {"loss0", "loss1", "x", "loss3"};
  for (int step = 0; step < 2; step++) {
    uint64_t a0 = 0, a1 = 0;
    clcnn_ctx_memory(cx, NULL, NULL, &a0);
    CALL(cx, what, clcnn_net_forward(net, x, B));
    for (int i = 0; i < 4; i++)
      CALL(cx, what, clcnn_net_set_target(net, clcnn_net_tensor(net, names[i]), i == 2 ? (void *)lab : (void *)t));
    CALL(cx, what, clcnn_net_backward_losses(net));
    CALL(cx, what, clcnn_net_finish(net));
    clcnn_ctx_memory(cx, NULL, &peak, &a1);
    if (step == 1) tap_ok(a1 == a0, "%s: a second step allocates nothing (%llu buffers)", what,
                          (unsigned long long)(a1 - a0));
  }
  peak -= base;
  tap_ok(est.total == peak && full.total == est.total, "%s: estimated %zu bytes (from batch 1) and %zu (at batch 5), "
         "peak after a step %zu", what, est.total, full.total, peak);
  tap_ok(est.largest == clcnn_ctx_largest_buffer(cx), "%s: largest buffer estimated %zu, allocated %zu", what,
         est.largest, clcnn_ctx_largest_buffer(cx));
done:
  clcnn_net_destroy(small), clcnn_net_destroy(net);
  clcnn_ctx_destroy(cx);
  free(x), free(t), free(lab);
}

/* ---- main ------------------------------------------------------------------------------- */
/* ---- the YOLO grid loss (lib/yolo.c) ----------------------------------------------------- */
/* Targets for n samples of a k-class gh x gw grid: about 40% of the cells hold an object, with
 * offsets and sizes in [0, 1] (some exactly 0 or 1) and a class; the other cells hold finite
 * junk, which the loss must not read. */
static void yolo_make_targets(double *t, int n, int k, int p) {
  for (int b = 0; b < n; b++)
    for (int c = 0; c < p; c++) {
      double *ti = t + (size_t)b * 6 * p + c;
      int obj = ref_rng_int(&rng, 5) < 2;
      ti[0] = obj;
      for (int j = 1; j < 5; j++) {
        int r = ref_rng_int(&rng, 10);
        ti[(size_t)j * p] = !obj ? rndf(-50, 50) : r == 0 ? 0 : r == 1 ? 1 : rndf(0.01, 1);
        if (obj && j > 2 && ti[(size_t)j * p] == 0) ti[(size_t)j * p] = 0.25; /* sqrt(0)'s slope is not tested by FD */
      }
      ti[(size_t)5 * p] = obj ? ref_rng_int(&rng, k) : rndf(-50, 50);
    }
}

static void yolo_ref_case(clcnn_ctx *cx, int maxb, int n, int k, int gh, int gw, double coord, double noobj,
                          double weight) {
  int c = 5 + k, p = gh * gw;
  size_t m = (size_t)n * c * p, mt = (size_t)n * 6 * p;
  char what[160];
  snprintf(what, sizeof what, "%s: yolo coord %g noobj %g weight %g, %d of %d x %d classes on %dx%d cells (%d cells)",
           pname(cx), coord, noobj, weight, n, maxb, k, gh, gw, n * p);
  clcnn_net *net = NULL;
  double *x = dalloc(m), *t = dalloc(mt), *g = dalloc(m), *dx = dalloc(m);
  void *hx = NULL, *ht = NULL;
  for (size_t i = 0; i < m; i++) x[i] = ref_rng_int(&rng, 8) == 0 ? rndf(-40, 40) : rndf(-3, 3);
  yolo_make_targets(t, n, k, p);
  hx = to_host(cx, x, m), ht = to_host(cx, t, mt);
  CALL(cx, what, clcnn_net_create(cx, maxb, c, gh, gw, &net));
  clcnn_tensor *y = clcnn_reshape(net, clcnn_net_input(net), c, gh, gw, "r");
  clcnn_tensor *L = clcnn_yolo_loss(net, y, coord, noobj, weight, NULL);
  CALL(cx, what, clcnn_net_build_status(net));
  clcnn_loss_info li;
  CALL(cx, what, clcnn_net_loss_info(net, 0, &li));
  tap_ok(li.type == CLCNN_LAYER_YOLO_LOSS && li.classes == 0 && li.targets == 6 * p && li.weight == weight,
         "%s: loss info: yolo, %d reals a sample", what, li.targets);
  double want = ref_yolo(x, t, n, k, p, coord, noobj, g), got = NAN, total = NAN, e;
  for (size_t i = 0; i < m; i++) g[i] *= weight;
  CALL(cx, what, loss_step(cx, net, L, hx, ht, n, &got, &total, dx, m));
  tap_ok(close_ctx(cx, &got, &want, 1, &e), "%s: loss %.17g vs reference %.17g", what, got, want);
  tap_ok(fabs(total - weight * got) <= 1e-7 * fabs(total), "%s: clcnn_net_loss %.17g = weight * value", what, total);
  tap_ok(close_ctx(cx, dx, g, m, &e), "%s: input gradient vs weight * reference gradient, max err %.3g", what, e);
done:
  clcnn_net_destroy(net);
  free(x), free(t), free(g), free(dx), free(hx), free(ht);
}

/* input -> conv (5 + 3 channels) -> yolo, in double: every gradient by central differences */
static void yolo_fd(double coord, double noobj, double weight) {
  clcnn_ctx *cx = ctx64;
  char what[128];
  snprintf(what, sizeof what, "fd yolo coord %g noobj %g weight %g, 3 x 2x7x5 -> conv(8, k 3x2, s 2, p 1)", coord,
           noobj, weight);
  struct fdnet f = {.cx = cx, .n = 3, .c = 2, .h = 7, .w = 5, .nloss = 1};
  size_t nin = (size_t)f.n * f.c * f.h * f.w;
  double *x = dalloc(nin), *t = NULL;
  for (size_t i = 0; i < nin; i++) x[i] = rndf(-1, 1);
  f.hx = to_host(cx, x, nin);
  CALL(cx, what, clcnn_net_create(cx, 4, f.c, f.h, f.w, &f.net));
  clcnn_tensor *c = make_conv(f.net, clcnn_net_input(f.net), 8, "c");
  f.loss[0] = clcnn_yolo_loss(f.net, c, coord, noobj, weight, NULL);
  CALL(cx, what, clcnn_net_build_status(f.net));
  CALL(cx, what, clcnn_net_init_params(f.net, 13));
  int dims[4];
  clcnn_tensor_shape(c, dims);
  t = dalloc((size_t)f.n * 6 * dims[2] * dims[3]);
  yolo_make_targets(t, f.n, 3, dims[2] * dims[3]);
  f.tgt[0] = t;
  fd_check(&f, what);
done:
  clcnn_net_destroy(f.net);
  free(x), free(t), free(f.hx);
}

/* what the loss refuses: its input's channels, its numbers, targets out of their ranges */
static void yolo_bad(clcnn_ctx *cx) {
  char what[64];
  snprintf(what, sizeof what, "%s: yolo misuse", pname(cx));
  clcnn_net *net = NULL;
  enum { N = 2, K = 2, GH = 2, GW = 3, P = GH * GW };
  double x[N * (5 + K) * P], t[N * 6 * P];
  for (int i = 0; i < N * (5 + K) * P; i++) x[i] = rndf(-1, 1);
  CALL(cx, what, clcnn_net_create(cx, N, 5 + K, GH, GW, &net));
  clcnn_tensor *r = clcnn_reshape(net, clcnn_net_input(net), 5 + K, GH, GW, "r");
  {
    clcnn_net *net5 = NULL;
    CALL(cx, what, clcnn_net_create(cx, N, 5, 2, 7, &net5));
    tap_ok(!clcnn_yolo_loss(net5, clcnn_net_input(net5), 5, 0.5, 1, "l") &&
               clcnn_net_build_status(net5) == CLCNN_ERR_SHAPE &&
               has_words(clcnn_ctx_last_error(cx), "5 channels|5 + classes|at least 6"),
           "%s: a 5-channel input refused: %s", what, clcnn_ctx_last_error(cx));
    clcnn_net_destroy(net5);
  }
  static const double nums[][3] = {{-1, 0.5, 1}, {5, -0.5, 1}, {NAN, 0.5, 1}, {5, INFINITY, 1}, {5, 0.5, -2}};
  for (int i = 0; i < 5; i++)
    tap_ok(!clcnn_yolo_loss(net, r, nums[i][0], nums[i][1], nums[i][2], "l") &&
               clcnn_net_build_status(net) == CLCNN_ERR_INVALID_ARGUMENT &&
               has_words(clcnn_ctx_last_error(cx), "finite and non-negative"),
           "%s: coord %g noobj %g weight %g refused: %s", what, nums[i][0], nums[i][1], nums[i][2],
           clcnn_ctx_last_error(cx));
  clcnn_tensor *L = clcnn_yolo_loss(net, r, 5, 0.5, 1, "l");
  CALL(cx, what, clcnn_net_build_status(net));
  void *hx = to_host(cx, x, sizeof x / sizeof x[0]);
  CALL(cx, what, clcnn_net_forward(net, hx, N));
  static const struct {
    int plane, cell;
    double v;
    clcnn_status st;
    const char *words;
  } bad[] = {
      {0, 4, 0.5, CLCNN_ERR_INVALID_ARGUMENT, "sample 1, cell 4|object flag is 0.5"},
      {1, 1, 1.5, CLCNN_ERR_INVALID_ARGUMENT, "cell 1|x offset 1.5|outside [0, 1]"},
      {2, 1, -0.25, CLCNN_ERR_INVALID_ARGUMENT, "y offset -0.25"},
      {3, 1, 2, CLCNN_ERR_INVALID_ARGUMENT, "width 2"},
      {4, 1, NAN, CLCNN_ERR_INVALID_ARGUMENT, "height nan|not finite"},
      {5, 1, 2, CLCNN_ERR_LABEL, "class 2 is not one of 0..1"},
      {5, 1, 0.5, CLCNN_ERR_LABEL, "class 0.5"},
      {5, 1, -1, CLCNN_ERR_LABEL, "class -1"},
      {3, 2, INFINITY, CLCNN_ERR_INVALID_ARGUMENT, "cell 2|width inf|not finite"}, /* a cell without an object */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(t, 0, sizeof t);
    for (int b = 0; b < N; b++) t[(size_t)b * 6 * P + 1] = 1, t[(size_t)b * 6 * P + 5 * P + 1] = 1; /* cell 1: class 1 */
    int b = bad[i].plane == 0 ? 1 : 0;
    t[(size_t)b * 6 * P + (size_t)bad[i].plane * P + bad[i].cell] = bad[i].v;
    void *ht = to_host(cx, t, sizeof t / sizeof t[0]);
    clcnn_status st = clcnn_net_set_target(net, L, ht);
    tap_ok(st == bad[i].st && has_words(clcnn_ctx_last_error(cx), bad[i].words), "%s: target %g in plane %d refused: %s",
           what, bad[i].v, bad[i].plane, clcnn_ctx_last_error(cx));
    free(ht);
  }
  tap_ok(clcnn_net_backward_losses(net) == CLCNN_ERR_STATE, "%s: no backward after refused targets", what);
  free(hx);
done:
  clcnn_net_destroy(net);
}

/* clcnn_yolo_targets on hand-computed cases */
static void yolo_assign(void) {
  enum { GH = 2, GW = 3, P = GH * GW };
  float t[6 * P], keep[6 * P];
  /* a box centred in cell (1, 2), one on the line between columns 0 and 1 (column 1), one on the
   * image's right and bottom edges (the last cell), and two in cell (0, 0): the larger kept */
  clcnn_box boxes[] = {{1, 0.9, 0.75, 0.2, 0.4}, {0, 1.0 / 3, 0.25, 0.1, 0.1}, {2, 1.0, 1.0, 0.3, 0.3},
                       {0, 0.1, 0.1, 0.1, 0.2}, {2, 0.2, 0.3, 0.25, 0.25}};
  int st = clcnn_yolo_targets(boxes, 5, 3, GH, GW, t);
  /* want: cell 5 (row 1, col 2): box 0, tx = 0.9*3-2 = 0.7, ty = 0.75*2-1 = 0.5 - then box 2
   * (0.09 > 0.08) replaces it; cell 1: box 1, tx = 0, ty = 0.5; cell 0: box 4 (0.0625 > 0.02),
   * tx = 0.6, ty = 0.6 */
  float want[6 * P] = {0};
  float rows[][6] = {{0, 1, 0.6f, 0.6f, 0.25f, 0.25f}, {1, 1, 0, 0.5f, 0.1f, 0.1f}, {5, 1, 1, 1, 0.3f, 0.3f}};
  int cls[] = {2, 0, 2};
  for (int i = 0; i < 3; i++) {
    int c = (int)rows[i][0];
    for (int j = 0; j < 5; j++) want[(size_t)j * P + c] = rows[i][j + 1];
    want[5 * P + c] = (float)cls[i];
  }
  int good = st == CLCNN_SUCCESS;
  for (int i = 0; i < 6 * P; i++) good &= fabsf(t[i] - want[i]) <= 1e-6f;
  tap_ok(good, "clcnn_yolo_targets: centres to their cells (an edge to the last), offsets, the larger of two kept");
  clcnn_box same[] = {{0, 0.5, 0.5, 0.2, 0.2}, {1, 0.55, 0.6, 0.2, 0.2}};
  st = clcnn_yolo_targets(same, 2, 2, 1, 1, t);
  tap_ok(st == CLCNN_SUCCESS && t[0] == 1 && t[5] == 0 && t[1] == 0.5f, "two boxes of one size in a cell: the first kept");
  st = clcnn_yolo_targets(NULL, 0, 3, GH, GW, t);
  good = st == CLCNN_SUCCESS;
  for (int i = 0; i < 6 * P; i++) good &= t[i] == 0;
  tap_ok(good, "no boxes: every cell empty");
  memcpy(keep, t, sizeof t);
  clcnn_box badb[][1] = {{{3, 0.5, 0.5, 0.1, 0.1}}, {{-1, 0.5, 0.5, 0.1, 0.1}}, {{0, 1.5, 0.5, 0.1, 0.1}},
                         {{0, 0.5, -0.1, 0.1, 0.1}}, {{0, 0.5, 0.5, 0, 0.1}}, {{0, 0.5, 0.5, 0.1, 1.01}},
                         {{0, NAN, 0.5, 0.1, 0.1}}};
  clcnn_status wantst[] = {CLCNN_ERR_LABEL, CLCNN_ERR_LABEL, CLCNN_ERR_INVALID_ARGUMENT, CLCNN_ERR_INVALID_ARGUMENT,
                           CLCNN_ERR_INVALID_ARGUMENT, CLCNN_ERR_INVALID_ARGUMENT, CLCNN_ERR_INVALID_ARGUMENT};
  good = 1;
  for (int i = 0; i < 7; i++) good &= clcnn_yolo_targets(badb[i], 1, 3, GH, GW, t) == wantst[i];
  tap_ok(good && !memcmp(keep, t, sizeof t), "boxes with a class out of range, a centre outside, a size 0 or past 1, NaN: refused, targets untouched");
  tap_ok(clcnn_yolo_targets(NULL, 1, 3, GH, GW, t) == CLCNN_ERR_NULL_POINTER &&
             clcnn_yolo_targets(boxes, 1, 3, GH, GW, NULL) == CLCNN_ERR_NULL_POINTER &&
             clcnn_yolo_targets(boxes, -1, 3, GH, GW, t) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_yolo_targets(boxes, 1, 0, GH, GW, t) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_yolo_targets(boxes, 1, 3, 0, GW, t) == CLCNN_ERR_INVALID_ARGUMENT,
         "clcnn_yolo_targets: NULL boxes or targets, n < 0, no classes, an empty grid refused");
}

/* a model file's yolo line: its numbers reach the loss, bad ones are refused with file:line:col */
static void yolo_model(void) {
  clcnn_ctx *cx = ctx64;
  const char *text = "input 2 6 8\n"
                     "c = conv 9 kernel=3 stride=2 pad=1\n"
                     "det = yolo(c) coord=2 noobj=0.25 weight=3\n";
  char err[1024] = "", desc[256] = "";
  clcnn_net *net = NULL;
  clcnn_status st = clcnn_net_from_text(cx, text, "d.txt", 2, &net, err, sizeof err);
  clcnn_loss_info li;
  tap_ok(!st && !clcnn_net_loss_info(net, 0, &li) && li.type == CLCNN_LAYER_YOLO_LOSS && li.weight == 3 &&
             li.targets == 6 * 3 * 4,
         "model file: det = yolo(c) coord=2 noobj=0.25 weight=3 reads (%s)", err);
  if (!st) {
    double x[2 * 2 * 6 * 8], t[2 * 6 * 12], y[2 * 9 * 12], got, want;
    for (int i = 0; i < 2 * 96; i++) x[i] = rndf(-1, 1);
    yolo_make_targets(t, 2, 4, 12);
    CALL(cx, "model file yolo", clcnn_net_init_params(net, 5));
    CALL(cx, "model file yolo", clcnn_net_forward(net, x, 2));
    CALL(cx, "model file yolo", clcnn_net_read_output(net, y));
    CALL(cx, "model file yolo", clcnn_net_set_target(net, li.loss, t));
    CALL(cx, "model file yolo", clcnn_net_backward_losses(net));
    CALL(cx, "model file yolo", clcnn_net_loss_value(net, li.loss, &got));
    want = ref_yolo(y, t, 2, 4, 12, 2, 0.25, NULL);
    tap_ok(fabs(got - want) <= 1e-12 + 1e-10 * fabs(want), "model file: its coord and noobj reach the loss (%.17g vs %.17g)",
           got, want);
  }
done:
  clcnn_net_destroy(net);
  net = NULL;
  static const struct {
    const char *line, *words;
  } bad[] = {
      {"yolo(c) coord=-1", "d.txt:3:|coord -1|finite and non-negative"},
      {"yolo(c) noobj=x", "d.txt:3:|noobj"},
      {"yolo(c) classes=3", "d.txt:3:|classes"},
      {"yolo(c) 5", "d.txt:3:"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char t2[256];
    snprintf(t2, sizeof t2, "input 2 6 8\nc = conv 9 kernel=3\n%s\n", bad[i].line);
    st = clcnn_net_from_text(cx, t2, "d.txt", 2, &net, err, sizeof err);
    tap_ok(st && has_words(err, bad[i].words), "model file: '%s' refused: %s", bad[i].line, err);
    clcnn_net_destroy(net);
    net = NULL;
  }
  (void)desc;
}

int main(void) {
  ref_rng_seed(&rng, 20261202);
  ctx64 = make_ctx_of(CLCNN_DOUBLE, NULL, 0);
  ctx32 = make_ctx_of(CLCNN_FLOAT, ctx64, 0);
  tap_diag("device: %s", clcnn_ctx_device_name(ctx64));

  static const struct {
    int maxb, n, c, h, w;
  } shapes[] = {
      {4, 3, 2, 5, 7},    /* odd, non-square, a partial batch */
      {1, 1, 1, 1, 1},    /* one element */
      {2, 2, 3, 1, 1},    /* vectors */
      {1, 1, 1024, 1, 1}, /* exactly one element per part */
      {1, 1, 1025, 1, 1}, /* part 0 takes two */
      {3, 3, 5, 17, 19},  /* 4845: several per part, not a multiple of 1024 */
  };
  const double betas[] = {1, 0.25, 0};
  for (int cxi = 0; cxi < 2; cxi++) {
    clcnn_ctx *cx = cxi ? ctx32 : ctx64;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      ref_case(cx, BCE, 0, 1, shapes[s].maxb, shapes[s].n, shapes[s].c, shapes[s].h, shapes[s].w);
      ref_case(cx, MSE, 0, 0.75, shapes[s].maxb, shapes[s].n, shapes[s].c, shapes[s].h, shapes[s].w);
      for (int b = 0; b < 3; b++)
        ref_case(cx, SL1, betas[b], b == 1 ? 2.5 : 1, shapes[s].maxb, shapes[s].n, shapes[s].c, shapes[s].h,
                 shapes[s].w);
    }
    ref_case(cx, BCE, 0, 0, 2, 2, 3, 4, 5); /* weight 0: a zero gradient, the value still there */
  }

  fd_case(BCE, 0, 0.7);
  fd_case(MSE, 0, 1);
  fd_case(SL1, 0.5, 1.3);
  fd_case(SL1, 0, 1);
  multi_losses();
  two_on_one(ctx64);
  two_on_one(ctx32);

  for (int cxi = 0; cxi < 2; cxi++) {
    clcnn_ctx *cx = cxi ? ctx32 : ctx64;
    xent_case(cx, 3, 4, 4, 3, 5, 255, 1, 4);
    xent_case(cx, 2, 2, 5, 7, 2, -100, 0.5, 3);
    xent_case(cx, 2, 3, 3, 4, 4, -100, 1, 0);
    xent_case(cx, 2, 2, 3, 3, 2, 255, 0.5, 1);
    xent_case(cx, 4, 4, 6, 1, 1, -100, 0.5, 3); /* one label per sample, weighted and with ignored ones */
    xent_case(cx, 4, 4, 6, 1, 1, -100, 1, 0);   /* the plain path (weight 1, nothing ignored) */
    xent_case(cx, 3, 3, 4, 1, 1, 2, 1, 3);      /* an ignore index that is a class */
  }
  xent_fd();
  xent_bad_labels();
  xent_stats(0);
  xent_stats(1);

  static const struct {
    int maxb, n, k, gh, gw;
  } yshapes[] = {
      {3, 2, 1, 3, 4},    /* one class, a partial batch */
      {4, 4, 3, 16, 16},  /* 1024 cells: one per part */
      {1, 1, 2, 25, 41},  /* 1025: part 0 takes two */
      {3, 3, 10, 19, 85}, /* 4845: several per part */
  };
  for (int cxi = 0; cxi < 2; cxi++)
    for (size_t s = 0; s < sizeof yshapes / sizeof yshapes[0]; s++)
      yolo_ref_case(cxi ? ctx32 : ctx64, yshapes[s].maxb, yshapes[s].n, yshapes[s].k, yshapes[s].gh, yshapes[s].gw,
                    s == 1 ? 2 : 5, s == 1 ? 0.1 : 0.5, s == 2 ? 0.5 : 1);
  yolo_fd(5, 0.5, 1);
  yolo_fd(1.5, 2, 0.3);
  yolo_bad(ctx64);
  yolo_bad(ctx32);
  yolo_assign();
  yolo_model();

  misuse(ctx64);
  misuse(ctx32);
  model_good();
  model_bad();
  memory();

  clcnn_ctx_destroy(ctx32);
  clcnn_ctx_destroy(ctx64);
  return tap_done();
}
