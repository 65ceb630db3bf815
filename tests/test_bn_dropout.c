/* tests/test_bn_dropout.c - batch norm and dropout: forwards against plain C written from the
 * formulas, gradients by central finite differences in double precision, running statistics,
 * training and evaluation modes, and reproducible dropout masks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "tap.h"

static uint64_t rng = 7;
static double sym(void) {
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return 2 * (((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0)) - 1;
}
static int close_enough(double a, double b, double atol, double rtol) { return fabs(a - b) <= atol + rtol * fabs(b); }

static clcnn_ctx *ctx;

/* Reference batch norm over (n, c, p): training statistics, PyTorch's running update. */
static void bn_ref(const double *x, const double *g, const double *b, double *y, double *rm, double *rv, int n,
                   int c, int p, double eps, double mom, int training) {
  for (int ch = 0; ch < c; ch++) {
    double m = 0, v = 0, M = (double)n * p;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) m += x[(i * c + ch) * p + j];
    m /= M;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) v += (x[(i * c + ch) * p + j] - m) * (x[(i * c + ch) * p + j] - m);
    double mean = training ? m : rm[ch], var = training ? v / M : rv[ch];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) {
        int k = (i * c + ch) * p + j;
        y[k] = g[ch] * (x[k] - mean) / sqrt(var + eps) + b[ch];
      }
    if (training) {
      rm[ch] = (1 - mom) * rm[ch] + mom * m;
      rv[ch] = (1 - mom) * rv[ch] + mom * v / (M - 1);
    }
  }
}

/* Its training-mode gradients of sum(y * dy), from the formulas: dbeta = sum dy, dgamma =
 * sum dy * xhat, dx = gamma * invstd / M * (M * dy - sum dy - xhat * sum dy * xhat). */
static void bn_grad_ref(const double *x, const double *g, const double *dy, double *dx, double *dg, double *db,
                        int n, int c, int p, double eps) {
  for (int ch = 0; ch < c; ch++) {
    double m = 0, v = 0, M = (double)n * p, s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) m += x[(i * c + ch) * p + j];
    m /= M;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) v += (x[(i * c + ch) * p + j] - m) * (x[(i * c + ch) * p + j] - m);
    double is = 1 / sqrt(v / M + eps);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) {
        int k = (i * c + ch) * p + j;
        s1 += dy[k], s2 += dy[k] * (x[k] - m) * is;
      }
    db[ch] = s1, dg[ch] = s2;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < p; j++) {
        int k = (i * c + ch) * p + j;
        dx[k] = g[ch] * is / M * (M * dy[k] - s1 - (x[k] - m) * is * s2);
      }
  }
}

/* L = sum(out * G) through the net's forward. */
static double lossG(clcnn_net *net, const double *x, int n, const double *G, size_t ny, double *y) {
  if (clcnn_net_forward(net, x, n) || clcnn_net_read_output(net, y)) return NAN;
  double L = 0;
  for (size_t i = 0; i < ny; i++) L += y[i] * G[i];
  return L;
}

/* Check dL/dx and every parameter gradient of NET against central differences. When
 * fix_seed, the dropout generator is reset before every forward so the mask stays put. */
static void fd_check(clcnn_net *net, int n, const char *what, int fix_seed) {
  size_t nin = n * clcnn_net_input_size(net), ny = n * clcnn_net_output_size(net);
  double *x = malloc(nin * sizeof *x), *dx = malloc(nin * sizeof *dx), *G = malloc(ny * sizeof *G),
         *y = malloc(ny * sizeof *y);
  for (size_t i = 0; i < nin; i++) x[i] = 2 * sym() + 0.3;
  for (size_t i = 0; i < ny; i++) G[i] = sym();
  const double h = 1e-6, atol = 1e-8, rtol = 1e-6;
#define RESEED() \
  if (fix_seed) clcnn_net_set_seed(net, 99, 5)
  RESEED();
  clcnn_net_zero_grad(net);
  clcnn_net_forward(net, x, n);
  clcnn_net_backward_from(net, G);
  clcnn_net_read_input_grad(net, dx);
  int np = clcnn_net_num_params(net);
  double *grads[8] = {0};
  clcnn_param_info info[8];
  for (int p = 0; p < np && p < 8; p++) {
    clcnn_net_param_info(net, p, &info[p]);
    grads[p] = malloc(info[p].count * sizeof(double));
    clcnn_net_grad_read(net, p, grads[p]);
  }
  double worst = 0;
  int bad = 0;
  for (size_t i = 0; i < nin; i++) {
    double keep = x[i];
    x[i] = keep + h;
    RESEED();
    double lp = lossG(net, x, n, G, ny, y);
    x[i] = keep - h;
    RESEED();
    double lm = lossG(net, x, n, G, ny, y);
    x[i] = keep;
    double num = (lp - lm) / (2 * h);
    worst = fmax(worst, fabs(num - dx[i]));
    bad += !close_enough(dx[i], num, atol, rtol);
  }
  tap_ok(!bad, "%s: d input vs central differences (%zu), max err %.2e (<= %g + %g rel)", what, nin, worst, atol, rtol);
  for (int p = 0; p < np && p < 8; p++) {
    double *w = malloc(info[p].count * sizeof *w);
    clcnn_net_param_read(net, p, w);
    worst = 0, bad = 0;
    for (size_t i = 0; i < info[p].count; i++) {
      double keep = w[i];
      w[i] = keep + h;
      clcnn_net_param_write(net, p, w);
      RESEED();
      double lp = lossG(net, x, n, G, ny, y);
      w[i] = keep - h;
      clcnn_net_param_write(net, p, w);
      RESEED();
      double lm = lossG(net, x, n, G, ny, y);
      w[i] = keep;
      clcnn_net_param_write(net, p, w);
      double num = (lp - lm) / (2 * h);
      worst = fmax(worst, fabs(num - grads[p][i]));
      bad += !close_enough(grads[p][i], num, atol, rtol);
    }
    tap_ok(!bad, "%s: d %s vs central differences, max err %.2e", what, info[p].name, worst);
    free(w);
    free(grads[p]);
  }
  free(x), free(dx), free(G), free(y);
}

static void bn_case(int n, int c, int h, int w, int flat) {
  if ((flat ? c * h * w : c) > 256) tap_bail("bn_case: more than 256 channels");
  char what[128];
  snprintf(what, sizeof what, "batchnorm%s %d x %dx%dx%d", flat ? "1d" : "2d", n, c, h, w);
  clcnn_net *net = NULL;
  int ok = !clcnn_net_create(ctx, n, c, h, w, &net);
  if (flat) ok = ok && !clcnn_net_add_flatten(net);
  ok = ok && !clcnn_net_add_batchnorm(net, 1e-5, 0.1);
  if (!tap_ok(ok, "%s builds", what)) {
    clcnn_net_destroy(net);
    return;
  }
  int C = flat ? c * h * w : c, P = flat ? 1 : h * w;
  size_t cnt = (size_t)n * c * h * w;
  double *x = malloc(cnt * sizeof *x), *y = malloc(cnt * sizeof *y), *yr = malloc(cnt * sizeof *yr);
  double g[256], b[256], rm[256], rv[256], rmd[256], rvd[256];
  clcnn_param_info bi;
  clcnn_net_buffer_info(net, 0, &bi);
  clcnn_net_buffer_read(net, 0, rmd);
  clcnn_net_buffer_read(net, 1, rvd);
  int fresh = 1;
  for (int i = 0; i < C; i++) fresh &= rmd[i] == 0 && rvd[i] == 1;
  clcnn_net_param_read(net, 0, g);
  for (int i = 0; i < C; i++) fresh &= g[i] == 1;
  tap_ok(fresh && clcnn_net_num_buffers(net) == 3 && !strcmp(bi.name, flat ? "1.running_mean" : "0.running_mean"),
         "%s: starts as PyTorch's (weight 1, running_var 1), buffers named %s", what, bi.name);
  for (int i = 0; i < C; i++) g[i] = 1 + 0.5 * sym(), b[i] = sym(), rm[i] = 0, rv[i] = 1;
  for (size_t i = 0; i < cnt; i++) x[i] = 3 * sym() + 1;
  clcnn_net_param_write(net, 0, g);
  clcnn_net_param_write(net, 1, b);
  double err = 0;
  for (int step = 0; step < 2; step++) {
    clcnn_net_forward(net, x, n);
    clcnn_net_read_output(net, y);
    bn_ref(x, g, b, yr, rm, rv, n, C, P, 1e-5, 0.1, 1);
    for (size_t i = 0; i < cnt; i++) err = fmax(err, fabs(y[i] - yr[i]));
  }
  tap_ok(err <= 1e-12, "%s: training forward vs reference, max err %.2e (<= 1e-12)", what, err);
  clcnn_net_buffer_read(net, 0, rmd);
  clcnn_net_buffer_read(net, 1, rvd);
  int64_t nbt = -1;
  clcnn_net_buffer_read(net, 2, &nbt);
  err = 0;
  for (int i = 0; i < C; i++) err = fmax(err, fmax(fabs(rmd[i] - rm[i]), fabs(rvd[i] - rv[i])));
  tap_ok(err <= 1e-13 && nbt == 2, "%s: running mean and unbiased variance after 2 steps, max err %.2e; num_batches_tracked %lld",
         what, err, (long long)nbt);
  clcnn_net_set_training(net, 0);
  clcnn_net_forward(net, x, n);
  clcnn_net_read_output(net, y);
  bn_ref(x, g, b, yr, rm, rv, n, C, P, 1e-5, 0.1, 0);
  err = 0;
  for (size_t i = 0; i < cnt; i++) err = fmax(err, fabs(y[i] - yr[i]));
  clcnn_net_buffer_read(net, 2, &nbt);
  tap_ok(err <= 1e-12 && nbt == 2, "%s: evaluation uses the running statistics, max err %.2e, counter unchanged", what, err);
  /* training-mode gradients, every element against the formulas */
  clcnn_net_set_training(net, 1);
  {
    double *dy = malloc(cnt * sizeof *dy), *dx = malloc(cnt * sizeof *dx), *dxr = malloc(cnt * sizeof *dxr);
    double dg[256], dbt[256], dgr[256], dbr[256], e = 0;
    for (size_t i = 0; i < cnt; i++) dy[i] = sym();
    int gok = !clcnn_net_zero_grad(net) && !clcnn_net_forward(net, x, n) && !clcnn_net_backward_from(net, dy) &&
              !clcnn_net_read_input_grad(net, dx) && !clcnn_net_grad_read(net, 0, dg) && !clcnn_net_grad_read(net, 1, dbt);
    bn_grad_ref(x, g, dy, dxr, dgr, dbr, n, C, P, 1e-5);
    for (size_t i = 0; gok && i < cnt; i++) {
      e = fmax(e, fabs(dx[i] - dxr[i]));
      gok &= close_enough(dx[i], dxr[i], 1e-12, 1e-10);
    }
    for (int i = 0; gok && i < C; i++) {
      e = fmax(e, fmax(fabs(dg[i] - dgr[i]), fabs(dbt[i] - dbr[i])));
      gok &= close_enough(dg[i], dgr[i], 1e-12, 1e-10) && close_enough(dbt[i], dbr[i], 1e-12, 1e-10);
    }
    tap_ok(gok, "%s: training gradients (input %zu, weight and bias %d) vs the formulas, max err %.2e", what, cnt, C, e);
    /* parameter gradients accumulate: a second pass without zero_grad gives exactly twice */
    double dg2[256], dbt2[256];
    int aok = !clcnn_net_forward(net, x, n) && !clcnn_net_backward_from(net, dy) && !clcnn_net_grad_read(net, 0, dg2) &&
              !clcnn_net_grad_read(net, 1, dbt2);
    for (int i = 0; aok && i < C; i++) aok &= dg2[i] == 2 * dg[i] && dbt2[i] == 2 * dbt[i];
    tap_ok(aok, "%s: weight and bias gradients accumulate, 2 backwards = exactly 2x", what);
    free(dy), free(dx), free(dxr);
  }
  /* finite differences of a sum over more than ~2000 outputs lose the 1e-8 margin to rounding:
   * those sizes rest on the formulas above, checked against differences on the smaller ones */
  if (cnt <= 2000) {
    clcnn_net_set_training(net, 0);
    snprintf(what + strlen(what), sizeof what - strlen(what), " eval");
    fd_check(net, n, what, 0);
    clcnn_net_set_training(net, 1);
    what[strlen(what) - 5] = 0;
    snprintf(what + strlen(what), sizeof what - strlen(what), " train");
    fd_check(net, n, what, 0);
  }
  free(x), free(y), free(yr);
  clcnn_net_destroy(net);
}

int main(void) {
  char err[512];
  clcnn_ctx_options o = {.precision = CLCNN_DOUBLE};
  if (clcnn_ctx_create(&ctx, &o, err, sizeof err)) {
    printf("Bail out! no OpenCL device with fp64: %s\n", err);
    return 1;
  }
  bn_case(3, 2, 3, 4, 0);
  bn_case(4, 3, 1, 1, 1);
  bn_case(2, 2, 2, 3, 1);
  /* the kernels sum a plane 16 lanes at a time, then a scalar tail: planes of 15 (tail only),
   * 16 (lanes only), 17 and 33 (both) */
  bn_case(3, 2, 3, 5, 0);
  bn_case(3, 2, 4, 4, 0);
  bn_case(2, 2, 1, 17, 0);
  bn_case(2, 3, 3, 11, 0);
  /* about 256 work-items of partial sums: with many channels a work-item sums several samples
   * (100 channels of 5: chunks of 3 and 2; 90 planes of 17 in 3 samples: chunks of 2 and 1) */
  bn_case(5, 100, 1, 1, 1);
  bn_case(3, 90, 1, 17, 0);

  /* batchnorm after conv and relu, inside a net */
  clcnn_net *net = NULL;
  clcnn_conv2d_params cp = {.out_channels = 3, .kh = 2, .kw = 2, .bias = 1};
  int ok = !clcnn_net_create(ctx, 3, 2, 4, 4, &net) && !clcnn_net_add_conv2d(net, &cp) &&
           !clcnn_net_add_batchnorm(net, 1e-5, 0.1) && !clcnn_net_add_tanh(net) && !clcnn_net_init_params(net, 3);
  if (tap_ok(ok, "conv -> batchnorm -> tanh builds")) fd_check(net, 3, "conv-batchnorm-tanh", 0);
  clcnn_net_destroy(net);

  /* Dropout. */
  const int n = 4, c = 50;
  ok = !clcnn_net_create(ctx, n, c, 1, 1, &net) && !clcnn_net_add_dropout(net, 0.3);
  tap_ok(ok, "dropout(0.3) builds");
  double x[4 * 50], y[4 * 50], y2[4 * 50];
  for (int i = 0; i < n * c; i++) x[i] = 1 + fabs(sym());
  clcnn_net_set_seed(net, 1234, 0);
  clcnn_net_forward(net, x, n);
  clcnn_net_read_output(net, y);
  int zeros = 0, scaled = 1;
  for (int i = 0; i < n * c; i++) {
    if (y[i] == 0) zeros++;
    else scaled &= close_enough(y[i], x[i] / 0.7, 1e-15, 1e-15);
  }
  tap_ok(scaled && zeros > 0.2 * n * c && zeros < 0.4 * n * c,
         "training: %d of %d zeroed (p = 0.3), the rest scaled by 1/(1-p)", zeros, n * c);
  clcnn_net_set_seed(net, 1234, 0);
  clcnn_net_forward(net, x, n);
  clcnn_net_read_output(net, y2);
  tap_ok(!memcmp(y, y2, sizeof y), "the same seed and counter give the same mask");
  clcnn_net_forward(net, x, n);
  clcnn_net_read_output(net, y2);
  uint64_t s, k;
  clcnn_net_get_seed(net, &s, &k);
  tap_ok(memcmp(y, y2, sizeof y) != 0 && s == 1234 && k == 2, "the next step draws a new mask (counter %llu)", (unsigned long long)k);
  clcnn_net_set_training(net, 0);
  clcnn_net_forward(net, x, n);
  clcnn_net_read_output(net, y2);
  tap_ok(!memcmp(x, y2, sizeof x), "evaluation passes the input through");
  clcnn_net_destroy(net);

  /* Dropout's gradient with the mask held fixed, inside a small net. */
  ok = !clcnn_net_create(ctx, 3, 6, 1, 1, &net) && !clcnn_net_add_linear(net, 8, 1) &&
       !clcnn_net_add_dropout(net, 0.5) && !clcnn_net_add_linear(net, 3, 1) && !clcnn_net_init_params(net, 5);
  if (tap_ok(ok, "linear -> dropout(0.5) -> linear builds")) fd_check(net, 3, "linear-dropout-linear", 1);
  clcnn_net_destroy(net);

  /* Bad arguments. */
  clcnn_net_create(ctx, 2, 3, 4, 4, &net);
  clcnn_status st = clcnn_net_add_batchnorm(net, 0, 0.1);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(clcnn_ctx_last_error(ctx), "eps"), "batchnorm eps 0 is refused: %s", clcnn_ctx_last_error(ctx));
  st = clcnn_net_add_batchnorm(net, 1e-5, 1.5);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(clcnn_ctx_last_error(ctx), "momentum"), "batchnorm momentum 1.5 is refused");
  st = clcnn_net_add_dropout(net, 1.0);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(clcnn_ctx_last_error(ctx), "[0, 1)"), "dropout p = 1 is refused");
  st = clcnn_net_add_dropout(net, NAN);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT, "dropout p = NaN is refused");
  int64_t neg = -3;
  clcnn_net_add_batchnorm(net, 1e-5, 0.1);
  tap_ok(clcnn_net_buffer_write(net, 2, &neg) == CLCNN_ERR_INVALID_ARGUMENT, "a negative num_batches_tracked is refused");
  tap_ok(clcnn_net_buffer_read(net, 3, y) == CLCNN_ERR_RANGE, "a buffer that does not exist");
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
