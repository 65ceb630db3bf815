/* tests/test_graph_ops.c - the graph's joins: add, concat and upsample.
 *
 * Each case is a small graph built with the graph builders on the net's input x: convs (3x3 or
 * 1x1, "same" padding, bias) give the joins inputs that differ from x and from each other, and
 * x itself, or one tensor twice, is an input too (add(a, a), concat(a, x, a)). The whole graph
 * is computed on the host in double (tests/ref.h: ref_conv2d, ref_add, ref_concat, ref_upsample
 * and their adjoints, the gradients of tensors read twice summed), and checked:
 *   - forward, double context vs reference:           |a-b| <= 1e-12 + 1e-10*|b|;
 *   - forward, float context vs reference:            |a-b| <= 1e-5*|b| + 1e-5*max|b|;
 *   - input and parameter gradients of a random dy (clcnn_net_backward_from), double context
 *     vs the reference's adjoint, every element (same margin as the double forward);
 *   - the same gradients against central differences in double of L = sum(dy * y), h = 1e-6:
 *     |a-n| <= 1e-7 + 1e-6*|n|, every element up to 64, else 64 random ones (input), 8 random
 *     ones of each parameter tensor;
 *   - float context vs double context for every gradient (the float forward margin);
 *   - a second backward in the float context gives the same input gradient bit for bit
 *     (the backward kernels gather: no atomics, a fixed order).
 * Shapes: odd and non-square H and W, H = 1, batch > 1 and a batch smaller than max_batch,
 * concat of 2, 3 and 4 inputs with different channel counts, upsample scale 1 (a copy: the
 * host's fast path), 2, 3, 4 and 5 in both modes. Then bad arguments through the builders and
 * bad model-file lines through clcnn_net_from_text, each with its message checked, and model
 * files that build the same nets as the builders.
 * All data are rounded to float first, so both contexts see the very same numbers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

#define FD_PARAM_SAMPLE 8

static clcnn_ctx *ctx64, *ctx32;

/* ---- graphs: tensor 0 is the net's input, node i's output is tensor i + 1, the last node's
 * output is the net's ---------------------------------------------------------------------- */
enum { G_CONV, G_ADD, G_CONCAT, G_UP };
#define MAXN 6
#define MAXIN 5
typedef struct {
  int kind, nin, in[MAXIN];
  int oc, k;       /* conv: output channels, kernel k x k, pad k/2, bias */
  int scale, mode; /* upsample */
} gnode;
typedef struct {
  const char *what;
  int n, mb; /* batch, and max_batch (0: n) */
  int c, h, w;
  int nn;
  gnode nd[MAXN];
  int no_input_grad; /* clcnn_net_set_input_grad(net, 0): only the parameters' gradients */
} gcase;

#define CONV(S, OC, K) {.kind = G_CONV, .nin = 1, .in = {S}, .oc = OC, .k = K}
#define ADD(A, B) {.kind = G_ADD, .nin = 2, .in = {A, B}}
#define CAT(N, ...) {.kind = G_CONCAT, .nin = N, .in = {__VA_ARGS__}}
#define UP(S, SC, M) {.kind = G_UP, .nin = 1, .in = {S}, .scale = SC, .mode = M}
#define NEAR CLCNN_UPSAMPLE_NEAREST
#define BIL CLCNN_UPSAMPLE_BILINEAR

static const gcase cases[] = {
    /* add */
    {"add(conv3x3(x), x)", 2, 0, 3, 5, 4, 2, {CONV(0, 3, 3), ADD(1, 0)}, 0},
    {"add(x, conv1x1(x)), batch 3 of 4", 3, 4, 2, 3, 7, 2, {CONV(0, 2, 1), ADD(0, 1)}, 0},
    {"add(a, a), a = conv3x3(x)", 2, 0, 2, 4, 5, 2, {CONV(0, 2, 3), ADD(1, 1)}, 0},
    {"add(x, x)", 2, 0, 3, 3, 3, 1, {ADD(0, 0)}, 0},
    {"add(conv(x), conv(x)) of two convs", 2, 0, 2, 5, 3, 3, {CONV(0, 3, 3), CONV(0, 3, 1), ADD(1, 2)}, 0},
    {"add(x, conv(x)), input gradient off", 2, 0, 2, 3, 5, 2, {CONV(0, 2, 3), ADD(0, 1)}, 1},
    /* concat */
    {"concat(x, conv(x)): 2 + 3 channels", 2, 0, 2, 5, 3, 2, {CONV(0, 3, 3), CAT(2, 0, 1)}, 0},
    {"concat of 4: 1 + 2 + 3 + 4 channels, batch 3 of 5", 3, 5, 2, 3, 5, 4,
     {CONV(0, 1, 3), CONV(0, 3, 1), CONV(0, 4, 3), CAT(4, 1, 0, 2, 3)}, 0},
    {"concat(a, x, a): a read twice", 2, 0, 2, 4, 3, 2, {CONV(0, 3, 3), CAT(3, 1, 0, 1)}, 0},
    {"concat(x, x)", 2, 0, 3, 2, 5, 1, {CAT(2, 0, 0)}, 0},
    {"concat(conv(x), x, conv(x)), input gradient off", 2, 0, 2, 3, 4, 3,
     {CONV(0, 1, 3), CONV(0, 2, 1), CAT(3, 1, 0, 2)}, 1},
    {"concat of 5 on H = 1", 2, 0, 1, 1, 6, 3, {CONV(0, 2, 3), CONV(0, 1, 1), CAT(5, 0, 1, 2, 0, 1)}, 0},
    /* upsample of the input itself: its backward alone gives the input gradient */
    {"upsample x1 nearest (copy)", 2, 0, 3, 5, 4, 1, {UP(0, 1, NEAR)}, 0},
    {"upsample x1 bilinear (copy)", 2, 0, 3, 5, 4, 1, {UP(0, 1, BIL)}, 0},
    {"upsample x2 nearest", 2, 0, 2, 5, 3, 1, {UP(0, 2, NEAR)}, 0},
    {"upsample x2 bilinear", 2, 0, 2, 5, 3, 1, {UP(0, 2, BIL)}, 0},
    {"upsample x3 nearest", 3, 0, 1, 4, 7, 1, {UP(0, 3, NEAR)}, 0},
    {"upsample x3 bilinear", 3, 0, 1, 4, 7, 1, {UP(0, 3, BIL)}, 0},
    {"upsample x3 bilinear, H = 1, batch 2 of 3", 2, 3, 2, 1, 4, 1, {UP(0, 3, BIL)}, 0},
    {"upsample x2 bilinear, H = W = 1", 2, 0, 3, 1, 1, 1, {UP(0, 2, BIL)}, 0},
    {"upsample x4 bilinear", 1, 0, 2, 3, 2, 1, {UP(0, 4, BIL)}, 0},
    {"upsample x5 bilinear", 2, 0, 1, 3, 4, 1, {UP(0, 5, BIL)}, 0},
    {"upsample x4 nearest", 2, 0, 1, 2, 3, 1, {UP(0, 4, NEAR)}, 0},
    /* together */
    {"add(upsample x2 bilinear(conv(x)), upsample x2 nearest(x))", 2, 0, 3, 3, 5, 4,
     {CONV(0, 3, 3), UP(1, 2, BIL), UP(0, 2, NEAR), ADD(2, 3)}, 0},
    {"concat(upsample x3 bilinear(x), conv(upsample x3 nearest(x)), upsample(x))", 2, 0, 2, 3, 2, 5,
     {UP(0, 3, BIL), UP(0, 3, NEAR), CONV(2, 3, 3), CAT(3, 1, 3, 2), CONV(4, 2, 1)}, 0},
};

/* The shape of each tensor of the graph. */
static void shapes(const gcase *g, int *c, int *h, int *w) {
  c[0] = g->c, h[0] = g->h, w[0] = g->w;
  for (int i = 0; i < g->nn; i++) {
    const gnode *d = &g->nd[i];
    int t = i + 1, a = d->in[0];
    c[t] = c[a], h[t] = h[a], w[t] = w[a];
    if (d->kind == G_CONV) c[t] = d->oc;
    if (d->kind == G_CONCAT)
      for (int j = 1; j < d->nin; j++) c[t] += c[d->in[j]];
    if (d->kind == G_UP) h[t] *= d->scale, w[t] *= d->scale;
  }
}

static clcnn_conv2d_params conv_params(const gnode *d) {
  return (clcnn_conv2d_params){.out_channels = d->oc, .kh = d->k, .kw = d->k, .stride_h = 1, .stride_w = 1,
                               .pad_h = d->k / 2, .pad_w = d->k / 2, .dilation_h = 1, .dilation_w = 1,
                               .groups = 1, .bias = 1};
}

static clcnn_net *build(clcnn_ctx *cx, const gcase *g) {
  clcnn_net *net = NULL;
  clcnn_status st = clcnn_net_create(cx, g->mb ? g->mb : g->n, g->c, g->h, g->w, &net);
  if (st) {
    tap_ok(0, "%s: clcnn_net_create: %s", g->what, clcnn_ctx_last_error(cx));
    return NULL;
  }
  clcnn_tensor *t[MAXN + 1] = {clcnn_net_input(net)};
  for (int i = 0; i < g->nn; i++) {
    const gnode *d = &g->nd[i];
    clcnn_tensor *in[MAXIN];
    for (int j = 0; j < d->nin; j++) in[j] = t[d->in[j]];
    switch (d->kind) {
      case G_CONV: {
        clcnn_conv2d_params p = conv_params(d);
        t[i + 1] = clcnn_conv2d(net, in[0], &p, NULL);
        break;
      }
      case G_ADD: t[i + 1] = clcnn_add(net, in[0], in[1], NULL); break;
      case G_CONCAT: t[i + 1] = clcnn_concat(net, in, d->nin, NULL); break;
      default: t[i + 1] = clcnn_upsample(net, in[0], d->scale, (clcnn_upsample_mode)d->mode, NULL); break;
    }
  }
  if (!t[g->nn] || (g->no_input_grad && clcnn_net_set_input_grad(net, 0))) {
    tap_ok(0, "%s: building the net: %s", g->what, clcnn_ctx_last_error(cx));
    clcnn_net_destroy(net);
    return NULL;
  }
  return net;
}

/* The reference: forward of x (n samples) with the convs' parameters par (weight, bias of each
 * conv in order), the output into y; then the adjoint of dy: the input's gradient into gx and
 * the parameters' into dpar. */
static void ref_graph(const gcase *g, int n, const double *x, double *const *par, double *y, const double *dy,
                      double *gx, double *const *dpar) {
  int c[MAXN + 1], h[MAXN + 1], w[MAXN + 1];
  shapes(g, c, h, w);
  double *v[MAXN + 1] = {0}, *gr[MAXN + 1] = {0};
  size_t sz[MAXN + 1] = {0};
  for (int t = 0; t <= g->nn; t++) {
    sz[t] = (size_t)n * c[t] * h[t] * w[t];
    v[t] = dalloc(sz[t]);
    gr[t] = dalloc(sz[t]);
  }
  memcpy(v[0], x, sz[0] * sizeof(double));
  for (int i = 0, pj = 0; i < g->nn; i++) {
    const gnode *d = &g->nd[i];
    int t = i + 1, a = d->in[0];
    const double *xs[MAXIN];
    int cs[MAXIN];
    switch (d->kind) {
      case G_CONV:
        ref_conv2d(v[a], n, c[a], h[a], w[a], par[pj], par[pj + 1], d->oc, d->k, d->k, 1, 1, d->k / 2, d->k / 2, 1,
                   1, 1, v[t]);
        pj += 2;
        break;
      case G_ADD: ref_add(v[a], v[d->in[1]], sz[t], v[t]); break;
      case G_CONCAT:
        for (int j = 0; j < d->nin; j++) xs[j] = v[d->in[j]], cs[j] = c[d->in[j]];
        ref_concat(xs, cs, d->nin, n, h[t] * w[t], v[t]);
        break;
      default: ref_upsample(v[a], n, c[a], h[a], w[a], d->scale, d->mode == BIL, v[t]); break;
    }
  }
  memcpy(y, v[g->nn], sz[g->nn] * sizeof(double));
  memcpy(gr[g->nn], dy, sz[g->nn] * sizeof(double));
  int pj = 0;
  for (int i = 0; i < g->nn; i++) pj += g->nd[i].kind == G_CONV ? 2 : 0;
  for (int i = g->nn - 1; i >= 0; i--) { /* each input's share added to its gradient */
    const gnode *d = &g->nd[i];
    int t = i + 1, a = d->in[0];
    double *tmp[MAXIN];
    int cs[MAXIN];
    for (int j = 0; j < d->nin; j++) tmp[j] = dalloc(sz[d->in[j]]), cs[j] = c[d->in[j]];
    switch (d->kind) {
      case G_CONV:
        pj -= 2;
        ref_conv2d_backward(v[a], n, c[a], h[a], w[a], par[pj], d->oc, d->k, d->k, 1, 1, d->k / 2, d->k / 2, 1, 1, 1,
                            gr[t], tmp[0], dpar[pj], dpar[pj + 1]);
        break;
      case G_ADD:
        memcpy(tmp[0], gr[t], sz[t] * sizeof(double));
        memcpy(tmp[1], gr[t], sz[t] * sizeof(double));
        break;
      case G_CONCAT: ref_concat_backward(gr[t], cs, d->nin, n, h[t] * w[t], tmp); break;
      default: ref_upsample_backward(gr[t], n, c[a], h[a], w[a], d->scale, d->mode == BIL, tmp[0]); break;
    }
    for (int j = 0; j < d->nin; j++) {
      for (size_t e = 0; e < sz[d->in[j]]; e++) gr[d->in[j]][e] += tmp[j][e];
      free(tmp[j]);
    }
  }
  memcpy(gx, gr[0], sz[0] * sizeof(double));
  for (int t = 0; t <= g->nn; t++) free(v[t]), free(gr[t]);
}

/* A failed API call: a "not ok" line that says which, and out (testutil.h's CALL, less the status
 * number, as this test always wrote it). */
#undef CALL
#define CALL(cx, what, expr)                                                                                \
  do {                                                                                                      \
    clcnn_status s_ = (expr);                                                                               \
    if (s_ != CLCNN_SUCCESS) {                                                                              \
      tap_ok(0, "%s: %s: %s: %s", what, #expr, clcnn_status_name(s_), clcnn_ctx_last_error(cx));           \
      goto done;                                                                                            \
    }                                                                                                       \
  } while (0)

/* L(t) = sum(dy * out) by central differences at `most` of the entries of t (the net's input xh
 * when pidx < 0, else a host copy of parameter pidx), against ana: testutil.h's fd_central, with
 * a failed API call counted as a failed check (0). */
static int fd_check(clcnn_net *net, int n, double *xh, int pidx, double *t, size_t count, size_t most,
                    const double *dy, size_t nout, const double *ana, double *maxerr, size_t *checked,
                    const char *what) {
  return fd_central(ctx64, net, n, xh, pidx, t, count, most, dy, nout, ana, maxerr, checked, what) == 1;
}

/* The describe string of node i of the graph, as the library should give it. */
static void want_describe(const gcase *g, int i, const int *c, char *buf, size_t size) {
  const gnode *d = &g->nd[i];
  switch (d->kind) {
    case G_ADD: snprintf(buf, size, "add"); break;
    case G_CONCAT: snprintf(buf, size, "concat(%d inputs, %d channels)", d->nin, c[i + 1]); break;
    case G_UP: snprintf(buf, size, "upsample(x%d, %s)", d->scale, d->mode == BIL ? "bilinear" : "nearest"); break;
    default: buf[0] = 0; break;
  }
}

static void run_case(const gcase *g) {
  int c[MAXN + 1], h[MAXN + 1], w[MAXN + 1];
  shapes(g, c, h, w);
  const int n = g->n, in_grad = !g->no_input_grad;
  const size_t nx = (size_t)n * c[0] * h[0] * w[0], ny = (size_t)n * c[g->nn] * h[g->nn] * w[g->nn];
  clcnn_net *net64 = build(ctx64, g), *net32 = net64 ? build(ctx32, g) : NULL;
  double *x = dalloc(nx), *dy = dalloc(ny), *yref = dalloc(ny), *gxref = dalloc(nx);
  double *y64 = dalloc(ny), *y32 = dalloc(ny), *gx64 = dalloc(nx), *gx32 = dalloc(nx);
  double *par[2 * MAXN] = {0}, *dpar[2 * MAXN] = {0}, *gp64[2 * MAXN] = {0}, *gp32[2 * MAXN] = {0};
  size_t pcount[2 * MAXN] = {0};
  void *hx = NULL, *hdy = NULL, *hbuf = NULL, *hgx_again = NULL;
  int np = 0;
  double e;
  if (!net32) goto done;

  /* shapes, types and descriptions of the joins */
  {
    int ok = clcnn_net_num_layers(net64) == g->nn;
    for (int i = 0; i < g->nn && ok; i++) {
      int dims[4];
      char want[96], got[128];
      ok = !clcnn_net_layer_shape(net64, i, dims) && dims[1] == c[i + 1] && dims[2] == h[i + 1] && dims[3] == w[i + 1];
      want_describe(g, i, c, want, sizeof want);
      if (ok && want[0]) {
        clcnn_net_layer_describe(net64, i, got, sizeof got);
        static const clcnn_layer_type types[] = {CLCNN_LAYER_CONV2D, CLCNN_LAYER_ADD, CLCNN_LAYER_CONCAT,
                                                 CLCNN_LAYER_UPSAMPLE};
        ok = !strcmp(got, want) && clcnn_net_layer_type(net64, i) == types[g->nd[i].kind];
        if (!ok) tap_diag("layer %d: described as '%s', wanted '%s'", i, got, want);
      }
    }
    tap_ok(ok, "%s: layers' shapes, types and descriptions", g->what);
  }

  /* the same parameters, rounded to float, in both nets */
  CALL(ctx64, g->what, clcnn_net_init_params(net64, 0x5eed0000u + (uint64_t)n * 31 + g->c));
  np = clcnn_net_num_params(net64);
  for (int i = 0; i < np; i++) {
    clcnn_param_info info;
    CALL(ctx64, g->what, clcnn_net_param_info(net64, i, &info));
    pcount[i] = info.count;
    par[i] = dalloc(info.count), dpar[i] = dalloc(info.count);
    gp64[i] = dalloc(info.count), gp32[i] = dalloc(info.count);
    CALL(ctx64, g->what, clcnn_net_param_read(net64, i, par[i]));
    for (size_t j = 0; j < info.count; j++) par[i][j] = (float)par[i][j];
    CALL(ctx64, g->what, clcnn_net_param_write(net64, i, par[i]));
    free(hbuf);
    hbuf = to_host(ctx32, par[i], info.count);
    CALL(ctx32, g->what, clcnn_net_param_write(net32, i, hbuf));
  }
  for (size_t i = 0; i < nx; i++) x[i] = rndf(-1, 1);
  for (size_t i = 0; i < ny; i++) dy[i] = rndf(-1, 1);
  ref_graph(g, n, x, par, yref, dy, gxref, dpar);

  /* double */
  CALL(ctx64, g->what, clcnn_net_forward(net64, x, n));
  CALL(ctx64, g->what, clcnn_net_read_output(net64, y64));
  CALL(ctx64, g->what, clcnn_net_backward_from(net64, dy));
  if (in_grad) CALL(ctx64, g->what, clcnn_net_read_input_grad(net64, gx64));
  for (int i = 0; i < np; i++) CALL(ctx64, g->what, clcnn_net_grad_read(net64, i, gp64[i]));
  /* float */
  hx = to_host(ctx32, x, nx), hdy = to_host(ctx32, dy, ny);
  free(hbuf);
  hbuf = xcalloc(ny > nx ? ny : nx, sizeof(float));
  for (int i = 0; i < np; i++)
    if (pcount[i] > ny && pcount[i] > nx) hbuf = realloc(hbuf, pcount[i] * sizeof(float));
  if (!hbuf) tap_bail("out of host memory");
  CALL(ctx32, g->what, clcnn_net_forward(net32, hx, n));
  CALL(ctx32, g->what, clcnn_net_read_output(net32, hbuf));
  from_host(ctx32, hbuf, y32, ny);
  CALL(ctx32, g->what, clcnn_net_backward_from(net32, hdy));
  if (in_grad) {
    CALL(ctx32, g->what, clcnn_net_read_input_grad(net32, hbuf));
    from_host(ctx32, hbuf, gx32, nx);
  }
  for (int i = 0; i < np; i++) {
    CALL(ctx32, g->what, clcnn_net_grad_read(net32, i, hbuf));
    from_host(ctx32, hbuf, gp32[i], pcount[i]);
  }

  int ok = close_f64(y64, yref, ny, &e); /* (e is printed after it is computed) */
  tap_ok(ok, "%s: forward, double vs reference (max err %.3g)", g->what, e);
  ok = close_f32(y32, yref, ny, &e);
  tap_ok(ok, "%s: forward, float vs reference (max err %.3g)", g->what, e);
  if (in_grad) {
    ok = close_f64(gx64, gxref, nx, &e);
    tap_ok(ok, "%s: input gradient, double vs reference (max err %.3g)", g->what, e);
    ok = close_f32(gx32, gx64, nx, &e);
    tap_ok(ok, "%s: input gradient, float vs double (max err %.3g)", g->what, e);
  }
  if (np) {
    int ok64 = 1, ok32 = 1;
    double e64 = 0, e32 = 0;
    for (int i = 0; i < np; i++) {
      ok64 &= close_f64(gp64[i], dpar[i], pcount[i], &e);
      e64 = fmax(e64, e);
      ok32 &= close_f32(gp32[i], gp64[i], pcount[i], &e);
      e32 = fmax(e32, e);
    }
    tap_ok(ok64, "%s: %d parameter gradients, double vs reference (max err %.3g)", g->what, np, e64);
    tap_ok(ok32, "%s: %d parameter gradients, float vs double (max err %.3g)", g->what, np, e32);
  }

  /* deterministic: the float backward again, the same input gradient bit for bit (parameter
   * gradients accumulate, so the input's is the one to compare) */
  if (in_grad) {
    size_t bytes = nx * sizeof(float);
    hgx_again = xcalloc(nx, sizeof(float));
    void *first = to_host(ctx32, gx32, nx);
    CALL(ctx32, g->what, clcnn_net_backward_from(net32, hdy));
    CALL(ctx32, g->what, clcnn_net_read_input_grad(net32, hgx_again));
    tap_ok(!memcmp(first, hgx_again, bytes), "%s: float input gradient the same bit for bit on a second backward",
           g->what);
    free(first);
  }

  /* finite differences in double */
  {
    char what[160];
    size_t checked;
    if (in_grad) {
      snprintf(what, sizeof what, "%s: fd of the input gradient", g->what);
      int ok = fd_check(net64, n, x, -1, x, nx, FD_SAMPLE, dy, ny, gx64, &e, &checked, what);
      tap_ok(ok, "%s (%zu of %zu elements, max err %.3g)", what, checked, nx, e);
    }
    int ok = 1;
    size_t total = 0;
    double em = 0;
    snprintf(what, sizeof what, "%s: fd of the parameter gradients", g->what);
    for (int i = 0; i < np && ok; i++) {
      ok = fd_check(net64, n, x, i, par[i], pcount[i], FD_PARAM_SAMPLE, dy, ny, gp64[i], &e, &checked, what);
      total += checked, em = fmax(em, e);
    }
    if (np) tap_ok(ok, "%s (%zu elements of %d tensors, max err %.3g)", what, total, np, em);
  }

done:
  for (int i = 0; i < 2 * MAXN; i++) free(par[i]), free(dpar[i]), free(gp64[i]), free(gp32[i]);
  free(x), free(dy), free(yref), free(gxref), free(y64), free(y32), free(gx64), free(gx32);
  free(hx), free(hdy), free(hbuf), free(hgx_again);
  clcnn_net_destroy(net64);
  clcnn_net_destroy(net32);
}

/* ---- model files: the same graph as text --------------------------------------------------- */
static void graph_text(const gcase *g, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "input %d %d %d\n", g->c, g->h, g->w);
  for (int i = 0; i < g->nn && k < size; i++) {
    const gnode *d = &g->nd[i];
    char ins[64] = "";
    for (int j = 0; j < d->nin; j++) {
      size_t l = strlen(ins);
      if (d->in[j]) snprintf(ins + l, sizeof ins - l, "%st%d", j ? ", " : "", d->in[j]);
      else snprintf(ins + l, sizeof ins - l, "%sinput", j ? ", " : "");
    }
    switch (d->kind) {
      case G_CONV:
        k += (size_t)snprintf(buf + k, size - k, "t%d = conv(%s) %d kernel=%d pad=%d\n", i + 1, ins, d->oc, d->k,
                              d->k / 2);
        break;
      case G_ADD: k += (size_t)snprintf(buf + k, size - k, "t%d = add(%s)\n", i + 1, ins); break;
      case G_CONCAT: k += (size_t)snprintf(buf + k, size - k, "t%d = concat(%s)\n", i + 1, ins); break;
      default: /* nearest is the default: given for odd scales, left out for even ones */
        k += (size_t)snprintf(buf + k, size - k, "t%d = upsample(%s) %d%s\n", i + 1, ins, d->scale,
                              d->mode == BIL ? " mode=bilinear" : (d->scale & 1 ? " mode=nearest" : ""));
        break;
    }
  }
}

/* The model file of a case builds a net whose output is the builders' net's, bit for bit. */
static void text_same(const gcase *g) {
  char text[1024], err[512] = "";
  graph_text(g, text, sizeof text);
  int c[MAXN + 1], h[MAXN + 1], w[MAXN + 1];
  shapes(g, c, h, w);
  const size_t nx = (size_t)g->n * c[0] * h[0] * w[0], ny = (size_t)g->n * c[g->nn] * h[g->nn] * w[g->nn];
  clcnn_net *a = build(ctx64, g), *b = NULL;
  double *x = dalloc(nx), *ya = dalloc(ny), *yb = dalloc(ny), *p = NULL;
  if (!a) goto done;
  if (clcnn_net_from_text(ctx64, text, "same.txt", g->mb ? g->mb : g->n, &b, err, sizeof err)) {
    tap_ok(0, "model file of %s: %s", g->what, err);
    goto done;
  }
  CALL(ctx64, g->what, clcnn_net_init_params(a, 7));
  for (int i = 0; i < clcnn_net_num_params(a); i++) {
    clcnn_param_info info;
    CALL(ctx64, g->what, clcnn_net_param_info(a, i, &info));
    free(p);
    p = dalloc(info.count);
    CALL(ctx64, g->what, clcnn_net_param_read(a, i, p));
    CALL(ctx64, g->what, clcnn_net_param_write(b, i, p));
  }
  for (size_t i = 0; i < nx; i++) x[i] = rndf(-1, 1);
  CALL(ctx64, g->what, clcnn_net_forward(a, x, g->n));
  CALL(ctx64, g->what, clcnn_net_read_output(a, ya));
  CALL(ctx64, g->what, clcnn_net_forward(b, x, g->n));
  CALL(ctx64, g->what, clcnn_net_read_output(b, yb));
  tap_ok(clcnn_net_num_layers(b) == g->nn && clcnn_net_num_params(b) == clcnn_net_num_params(a) &&
             !memcmp(ya, yb, ny * sizeof(double)),
         "model file of %s: the builders' net, the same output bit for bit", g->what);
done:
  free(x), free(ya), free(yb), free(p);
  clcnn_net_destroy(a);
  clcnn_net_destroy(b);
}

/* ---- bad arguments ----------------------------------------------------------------------- */
/* A builder's result T must be NULL with status WANT, the net's layers unchanged, and the
 * context's error holding WORDS. */
static void refused(clcnn_net *net, clcnn_tensor *t, int layers, clcnn_status want, const char *words,
                    const char *what) {
  clcnn_status st = clcnn_net_build_status(net);
  const char *e = clcnn_ctx_last_error(ctx64);
  int ok = !t && st == want && clcnn_net_num_layers(net) == layers && has_words(e, words);
  if (st != want) tap_diag("status %s, wanted %s", clcnn_status_name(st), clcnn_status_name(want));
  tap_ok(ok, "%s: %s", what, e);
}

static void api_errors(void) {
  clcnn_net *net = NULL, *other = NULL;
  if (clcnn_net_create(ctx64, 2, 3, 4, 4, &net) || clcnn_net_create(ctx64, 2, 3, 4, 4, &other)) {
    tap_ok(0, "bad arguments: clcnn_net_create: %s", clcnn_ctx_last_error(ctx64));
    clcnn_net_destroy(net);
    return;
  }
  clcnn_conv2d_params cp = {.out_channels = 2, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1,
                            .pad_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 1, .bias = 1};
  clcnn_pool2d_params pp = {.kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2};
  clcnn_tensor *x = clcnn_net_input(net);
  clcnn_tensor *a = clcnn_conv2d(net, x, &cp, "a");   /* (2,4,4) */
  clcnn_tensor *p = clcnn_maxpool2d(net, x, &pp, "p"); /* (3,2,2) */
  clcnn_pool2d_params qp = {.kh = 1, .kw = 2, .stride_h = 1, .stride_w = 2};
  clcnn_tensor *q = clcnn_maxpool2d(net, x, &qp, "q"); /* (3,4,2): only W differs from x */
  if (!a || !p || !q) {
    tap_ok(0, "bad arguments: building: %s", clcnn_ctx_last_error(ctx64));
    goto done;
  }
  int L = clcnn_net_num_layers(net);
  char words[256];
  snprintf(words, sizeof words, "layer %d add 'b1'|shapes (3,4,4) and (2,4,4) differ", L);
  refused(net, clcnn_add(net, x, a, "b1"), L, CLCNN_ERR_SHAPE, words, "add of (3,4,4) and (2,4,4)");
  refused(net, clcnn_add(net, p, x, NULL), L, CLCNN_ERR_SHAPE, "add|(3,2,2)|(3,4,4)|differ",
          "add of (3,2,2) and (3,4,4): same channels, other H and W");
  refused(net, clcnn_add(net, x, q, NULL), L, CLCNN_ERR_SHAPE, "add|(3,4,4)|(3,4,2)|differ",
          "add of (3,4,4) and (3,4,2): only W differs");
  refused(net, clcnn_concat(net, (clcnn_tensor *[]){x, q}, 2, NULL), L, CLCNN_ERR_SHAPE, "concat|(3,4,4)|(3,4,2)",
          "concat of (3,4,4) and (3,4,2): only W differs");
  refused(net, clcnn_concat(net, (clcnn_tensor *[]){x, a, a, p}, 4, NULL), L, CLCNN_ERR_SHAPE, "concat|(3,4,4)|(3,2,2)",
          "concat of 4 whose last differs");
  tap_ok(clcnn_relu(net, a, "r") != NULL, "a builder after the failures works");
  L = clcnn_net_num_layers(net);
  refused(net, clcnn_add(net, x, NULL, NULL), L, CLCNN_ERR_NULL_POINTER, "add|input 1 is NULL", "add(x, NULL)");
  refused(net, clcnn_add(net, x, clcnn_net_input(other), NULL), L, CLCNN_ERR_INVALID_ARGUMENT, "add|another net",
          "add of a tensor of another net");
  tap_ok(clcnn_add(NULL, x, x, NULL) == NULL && clcnn_concat(NULL, (clcnn_tensor *[]){x, x}, 2, NULL) == NULL &&
             clcnn_upsample(NULL, x, 2, CLCNN_UPSAMPLE_NEAREST, NULL) == NULL,
         "builders on a NULL net return NULL");

  refused(net, clcnn_concat(net, (clcnn_tensor *[]){x, a, p}, 3, "cc"), L, CLCNN_ERR_SHAPE,
          "concat 'cc'|(3,2,2)|(3,4,4)|H and W", "concat of (3,4,4), (2,4,4), (3,2,2)");
  refused(net, clcnn_concat(net, (clcnn_tensor *[]){x}, 1, NULL), L, CLCNN_ERR_INVALID_ARGUMENT,
          "concat takes at least 2 inputs, got 1", "concat of 1 input");
  refused(net, clcnn_concat(net, (clcnn_tensor *[]){x}, 0, NULL), L, CLCNN_ERR_INVALID_ARGUMENT,
          "concat takes at least 2 inputs, got 0", "concat of 0 inputs");
  refused(net, clcnn_concat(net, NULL, 2, NULL), L, CLCNN_ERR_NULL_POINTER, "concat|NULL", "concat(NULL, 2)");
  refused(net, clcnn_concat(net, (clcnn_tensor *[]){x, clcnn_net_input(other)}, 2, NULL), L,
          CLCNN_ERR_INVALID_ARGUMENT, "concat|another net", "concat with a tensor of another net");

  refused(net, clcnn_upsample(net, x, 0, CLCNN_UPSAMPLE_NEAREST, "u"), L, CLCNN_ERR_INVALID_ARGUMENT,
          "upsample 'u'|scale 0|at least 1", "upsample scale 0");
  refused(net, clcnn_upsample(net, x, -2, CLCNN_UPSAMPLE_BILINEAR, NULL), L, CLCNN_ERR_INVALID_ARGUMENT,
          "upsample|scale -2", "upsample scale -2");
  refused(net, clcnn_upsample(net, x, 2, (clcnn_upsample_mode)2, NULL), L, CLCNN_ERR_INVALID_ARGUMENT,
          "upsample|mode 2|NEAREST|BILINEAR", "upsample mode 2");
  refused(net, clcnn_upsample(net, x, 1 << 30, CLCNN_UPSAMPLE_NEAREST, NULL), L, CLCNN_ERR_SHAPE,
          "upsample|(3,4,4)|too large", "upsample x 2^30: H times scale past INT_MAX");
  refused(net, clcnn_upsample(net, x, 30000, CLCNN_UPSAMPLE_BILINEAR, NULL), L, CLCNN_ERR_SHAPE,
          "upsample|too large", "upsample x 30000: the output past INT_MAX elements");

  /* after all that the net is as it was: it runs, and upsample x1 of the relu is its input */
  {
    clcnn_tensor *u = clcnn_upsample(net, clcnn_net_output(net), 1, CLCNN_UPSAMPLE_BILINEAR, NULL);
    double xin[2 * 48], out[2 * 32];
    for (int i = 0; i < 2 * 48; i++) xin[i] = rndf(-1, 1);
    int ok = u && !clcnn_net_init_params(net, 3) && !clcnn_net_forward(net, xin, 2) &&
             !clcnn_net_read_output(net, out) && clcnn_net_num_layers(net) == L + 1;
    double ref[2 * 32], wt[2 * 27], b[2];
    if (ok) ok = !clcnn_net_param_read(net, 0, wt) && !clcnn_net_param_read(net, 1, b);
    if (ok) {
      ref_conv2d(xin, 2, 3, 4, 4, wt, b, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, ref);
      for (int i = 0; i < 2 * 32 && ok; i++) ok = fabs(out[i] - (ref[i] > 0 ? ref[i] : 0)) <= 1e-12 + 1e-10 * fabs(ref[i]);
    }
    tap_ok(ok, "the net after the refused nodes runs: upsample x1(relu(conv(x))) vs reference");
  }
done:
  clcnn_net_destroy(net);
  clcnn_net_destroy(other);
}

/* TEXT is refused with status WANT (0: any), no net, and an error holding WORDS. */
static void bad(const char *what, const char *text, clcnn_status want, const char *words) {
  char err[1024];
  int ok = model_refused(ctx64, text, 2, want, words, err, sizeof err);
  tap_ok(ok, "model file, %s: %s", what, err);
}

static void model_errors(void) {
  static const char base[] = "input 3 4 4\n"
                             "a = conv 2 kernel=3 pad=1\n"
                             "b = conv(input) 2 kernel=1\n"
                             "p = maxpool(input) 2\n";
  char text[1024], words[256];
#define BAD(WHAT, LINE, WANT, WORDS) (snprintf(text, sizeof text, "%s%s", base, LINE), bad(WHAT, text, WANT, WORDS))
  BAD("concat of one input", "concat(a)\n", CLCNN_ERR_INVALID_ARGUMENT, "t.txt:5:|concat takes at least 2 inputs, got 1");
  BAD("add of three inputs", "add(a, b, p)\n", CLCNN_ERR_INVALID_ARGUMENT, "t.txt:5:|add takes 2 inputs, got 3|add(A, B)");
  BAD("add of one input", "add(a)\n", CLCNN_ERR_INVALID_ARGUMENT, "add takes 2 inputs, got 1");
  BAD("add without inputs (the line above's output only)", "add\n", CLCNN_ERR_INVALID_ARGUMENT, "add takes 2 inputs, got 1");
  BAD("add of an unknown name", "add(a, nosuch)\n", CLCNN_ERR_INVALID_ARGUMENT, "t.txt:5:8:|unknown name 'nosuch'");
  BAD("concat of a name defined below", "c = concat(a, d)\nd = relu(a)\n", CLCNN_ERR_INVALID_ARGUMENT,
      "t.txt:5:|'d'|before its definition");
  BAD("add of (2,4,4) and (3,2,2)", "s = add(a, p)\n", CLCNN_ERR_SHAPE, "t.txt:5:|add 's'|(2,4,4)|(3,2,2)|differ");
  BAD("concat of (3,4,4) and (3,2,2)", "concat(input, a, p)\n", CLCNN_ERR_SHAPE, "t.txt:5:|concat|(3,4,4)|(3,2,2)");
  BAD("concat of an upsampled tensor", "u = upsample(a) 2\nconcat(u, input)\n", CLCNN_ERR_SHAPE,
      "t.txt:6:|concat|(3,4,4)|(2,8,8)");
  BAD("add with a number", "add(a, b) 2\n", CLCNN_ERR_INVALID_ARGUMENT, "'2'|add takes no arguments");
  BAD("concat with an option", "concat(a, b) mode=bilinear\n", CLCNN_ERR_INVALID_ARGUMENT, "unknown option|concat");
  BAD("upsample 0", "upsample 0\n", CLCNN_ERR_INVALID_ARGUMENT, "t.txt:5:10:|upsample|scale|'0'");
  BAD("upsample -1", "upsample -1\n", CLCNN_ERR_INVALID_ARGUMENT, "upsample|scale|'-1'");
  BAD("upsample 1.5", "upsample 1.5\n", CLCNN_ERR_INVALID_ARGUMENT, "upsample|scale|'1.5'");
  BAD("upsample without a scale", "upsample\n", CLCNN_ERR_INVALID_ARGUMENT, "upsample needs S|upsample S [mode=");
  BAD("upsample with two numbers", "upsample 2 3\n", CLCNN_ERR_INVALID_ARGUMENT, "unexpected '3'");
  BAD("upsample with an unknown option", "upsample 2 scale=2\n", CLCNN_ERR_INVALID_ARGUMENT,
      "unknown option for upsample|mode");
  BAD("upsample of two inputs", "upsample(a, b) 2\n", CLCNN_ERR_INVALID_ARGUMENT, "upsample takes 1 input, got 2");
  BAD("upsample mode given twice", "upsample 2 mode=nearest mode=bilinear\n", CLCNN_ERR_INVALID_ARGUMENT,
      "duplicate option 'mode'");
  static const char *const modes[] = {"cubic", "Bilinear", "nearest-exact", "bilinea", ""};
  for (int i = 0; i < 5; i++) {
    char line[96];
    snprintf(line, sizeof line, "u = upsample(a) 2 mode=%s\n", modes[i]);
    snprintf(text, sizeof text, "%s%s", base, line);
    /* the value's column: right after "mode=" */
    char loc[64];
    snprintf(loc, sizeof loc, "t.txt:5:%d:", (int)(strstr(line, "mode=") - line) + 1 + 5);
    snprintf(words, sizeof words, "%s|upsample's mode must be nearest or bilinear|got '%s'", loc, modes[i]);
    char what[64];
    snprintf(what, sizeof what, "upsample mode=%s", modes[i]);
    bad(what, text, CLCNN_ERR_INVALID_ARGUMENT, words);
  }
#undef BAD
}

/* A model file with every join and option, read back: types, shapes and descriptions. */
static void model_good(void) {
  static const char text[] = "input 3 5 4\n"
                             "a = conv 2 kernel=3 pad=1\n"
                             "u = upsample(a) 2 mode=bilinear\n"
                             "v = upsample(input) 2\n"
                             "w = upsample(input) 2 mode=nearest\n"
                             "c = concat(u, v, u, w)\n"
                             "s = add(c, c)\n";
  char err[512] = "";
  clcnn_net *net = NULL;
  if (!tap_ok(!clcnn_net_from_text(ctx64, text, "good.txt", 2, &net, err, sizeof err), "model file with add, "
              "concat and upsample: %s", err[0] ? err : "read"))
    return;
  static const char *const want[] = {NULL, "upsample(x2, bilinear)", "upsample(x2, nearest)", "upsample(x2, nearest)",
                                     "concat(4 inputs, 10 channels)", "add"};
  static const int shape[][3] = {{2, 5, 4}, {2, 10, 8}, {3, 10, 8}, {3, 10, 8}, {10, 10, 8}, {10, 10, 8}};
  int ok = clcnn_net_num_layers(net) == 6;
  for (int i = 0; i < 6 && ok; i++) {
    char d[128];
    int dims[4];
    clcnn_net_layer_describe(net, i, d, sizeof d);
    ok = !clcnn_net_layer_shape(net, i, dims) && dims[1] == shape[i][0] && dims[2] == shape[i][1] &&
         dims[3] == shape[i][2] && (!want[i] || !strcmp(d, want[i]));
    if (!ok) tap_diag("layer %d: '%s' (%d,%d,%d)", i, d, dims[1], dims[2], dims[3]);
  }
  tap_ok(ok, "model file: 6 layers, their shapes and descriptions");
  clcnn_net_destroy(net);
}

int main(void) {
  ref_rng_seed(&rng, 0x6a0b5u);
  setenv("CLCNN_GEMM", "clcnn", 0);
  ctx64 = make_ctx_of(CLCNN_DOUBLE, NULL, 1);
  ctx32 = make_ctx_of(CLCNN_FLOAT, ctx64, 1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
  text_same(&cases[7]);
  text_same(&cases[23]);
  text_same(&cases[24]);
  api_errors();
  model_errors();
  model_good();
  clcnn_ctx_destroy(ctx32);
  clcnn_ctx_destroy(ctx64);
  return tap_done();
}
