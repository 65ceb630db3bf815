/* tests/test_convt.c - the transposed convolution (clcnn_conv_transpose2d, model word
 * "convtranspose") against tests/ref.h's ref_conv_transpose2d, written from the definition
 * y[n,o,i*s - p + k*d] += x[n,c,i] * w[c,o',k].
 *
 * For each case (stride 2 and 3, padding, output padding, dilation 2, groups 2 and depthwise,
 * kh != kw, H != W, batch 3, bias on and off, 1x1 kernels, stride 1, zero = default settings,
 * a partial batch of a bigger net):
 *   - shapes, parameter names and dims (weight (C, OC/G, KH, KW), bias (OC)), layer type;
 *   - forward in a double context vs the reference:   |a-b| <= 1e-12 + 1e-10*|b|;
 *   - every element of d input, d weight, d bias vs the reference's adjoint (same margin);
 *   - d input, d weight, d bias vs central differences of L = sum(out * G) in double, h = 1e-6:
 *     |a-n| <= 1e-7 + 1e-6*|n|, every element up to 64, else 64 random ones;
 *   - two backward passes: parameter gradients exactly twice, input gradient exactly the same;
 *     with the input gradient off, the same parameter gradients bit for bit;
 *   - a float context: forward vs the double reference and everything vs the double context,
 *     |f-d| <= 1e-5*|d| + 1e-5*max|d|.
 * Then PyTorch's default initialisation bounds (fan_in = OC/G * KH * KW), model-file lines that
 * are read and lines that are refused, the builder's argument errors, and the memory estimate
 * against a training step's real peak.
 *
 * All data are rounded to float first, so both contexts see the very same numbers. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

static clcnn_ctx *ctx64, *ctx32;

/* ---- cases ------------------------------------------------------------------------- */
typedef struct {
  int n, c, h, w;
  clcnn_conv_transpose2d_params p;
  int extra_batch; /* the net is made for n + extra_batch samples */
} tcase;

#define CT(N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OPH, OPW, DH, DW, G, B, X)                                    \
  {N, C, H, W,                                                                                                  \
   {.out_channels = OC, .kh = KH, .kw = KW, .stride_h = SH, .stride_w = SW, .pad_h = PH, .pad_w = PW,           \
    .outpad_h = OPH, .outpad_w = OPW, .dilation_h = DH, .dilation_w = DW, .groups = G, .bias = B},              \
   X}

static const tcase cases[] = {
    /*  N  C  H   W  OC KH KW SH SW PH PW OPH OPW DH DW G  B  extra */
    CT(3, 2, 4, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0),  /* stride 2, pad 1, outpad 1, batch 3 */
    CT(2, 4, 5, 3, 6, 3, 2, 2, 1, 1, 0, 1, 0, 1, 1, 2, 0, 0),  /* groups 2, 3x2 kernel, stride 2x1, no bias */
    CT(2, 3, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 2),  /* dilation 2, stride 1, outpad 1 < dilation */
    CT(3, 3, 3, 5, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0),  /* 1x1, stride 1 */
    CT(2, 2, 3, 4, 2, 1, 1, 2, 3, 0, 0, 1, 2, 1, 1, 1, 0, 1),  /* 1x1, stride 2x3, outpad 1x2: rows no input reaches */
    CT(2, 4, 4, 3, 4, 2, 3, 3, 2, 1, 2, 2, 1, 2, 1, 4, 1, 0),  /* depthwise, stride 3x2, pad 1x2, outpad 2x1, dil 2x1 */
    CT(2, 2, 3, 3, 3, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0),  /* zero stride/dilation/groups mean 1 */
    CT(1, 2, 5, 6, 3, 4, 4, 1, 1, 3, 3, 0, 0, 1, 1, 1, 1, 0),  /* padding larger than the overlap: output 2x3 */
    CT(2, 5, 9, 11, 6, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, 1, 1, 1), /* N*P 198: GEMMs past one 64-column panel */
    CT(3, 6, 2, 7, 4, 2, 4, 2, 1, 0, 1, 0, 0, 1, 2, 2, 1, 0),  /* groups 2, dilation 1x2, 2x4 kernel, H 2 */
};

/* the settings with zeros made 1, as the library reads them */
static clcnn_conv_transpose2d_params norm(clcnn_conv_transpose2d_params p) {
  if (!p.stride_h) p.stride_h = 1;
  if (!p.stride_w) p.stride_w = 1;
  if (!p.dilation_h) p.dilation_h = 1;
  if (!p.dilation_w) p.dilation_w = 1;
  if (!p.groups) p.groups = 1;
  return p;
}

static void out_shape(int h, int w, const clcnn_conv_transpose2d_params *p0, int *oh, int *ow) {
  clcnn_conv_transpose2d_params p = norm(*p0);
  *oh = ref_convt_out_dim(h, p.kh, p.stride_h, p.pad_h, p.outpad_h, p.dilation_h);
  *ow = ref_convt_out_dim(w, p.kw, p.stride_w, p.pad_w, p.outpad_w, p.dilation_w);
}

static void ref_fwd(const tcase *tc, const double *x, const double *wt, const double *b, double *y) {
  clcnn_conv_transpose2d_params p = norm(tc->p);
  ref_conv_transpose2d(x, tc->n, tc->c, tc->h, tc->w, wt, p.bias ? b : NULL, p.out_channels, p.kh, p.kw,
                       p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.outpad_h, p.outpad_w, p.dilation_h, p.dilation_w,
                       p.groups, y);
}

static void describe(const tcase *tc, char *buf, size_t size) {
  clcnn_conv_transpose2d_params p = norm(tc->p);
  int oh, ow;
  out_shape(tc->h, tc->w, &tc->p, &oh, &ow);
  snprintf(buf, size,
           "%d x %dx%dx%d convtranspose(oc %d, k %dx%d, s %dx%d, p %dx%d, op %dx%d, d %dx%d, g %d, %s) -> %dx%d%s",
           tc->n, tc->c, tc->h, tc->w, p.out_channels, p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
           p.outpad_h, p.outpad_w, p.dilation_h, p.dilation_w, p.groups, p.bias ? "bias" : "no bias", oh, ow,
           tc->extra_batch ? " (partial batch)" : "");
}

/* A net of one transposed conv named "up" on the input. */
static clcnn_net *make_net(clcnn_ctx *cx, const tcase *tc) {
  clcnn_net *net = NULL;
  if (clcnn_net_create(cx, tc->n + tc->extra_batch, tc->c, tc->h, tc->w, &net)) return NULL;
  if (!clcnn_conv_transpose2d(net, clcnn_net_input(net), &tc->p, "up")) {
    tap_diag("builder: %s", clcnn_ctx_last_error(cx));
    clcnn_net_destroy(net);
    return NULL;
  }
  return net;
}

static void run_case(const tcase *tc) {
  clcnn_conv_transpose2d_params p = norm(tc->p);
  int oh, ow, oc = p.out_channels, np = p.bias ? 2 : 1;
  out_shape(tc->h, tc->w, &tc->p, &oh, &ow);
  size_t nin = (size_t)tc->n * tc->c * tc->h * tc->w, osz = (size_t)oc * oh * ow, nout = tc->n * osz;
  size_t pcount[2] = {(size_t)tc->c * (oc / p.groups) * p.kh * p.kw, (size_t)oc};
  int pdims[2][4] = {{tc->c, oc / p.groups, p.kh, p.kw}, {oc}};
  static const char *const pname[2] = {"weight", "bias"};
  char name[240], what[260];
  describe(tc, name, sizeof name);

  double *x = dalloc(nin), *G = dalloc(nout), *yref = dalloc(nout), *y = dalloc(nout);
  double *dx1 = dalloc(nin), *dx2 = dalloc(nin), *y32 = dalloc(nout), *dx32 = dalloc(nin);
  double *par[2], *g1[2], *g2[2], *g32[2], *gr[2], *dxr = dalloc(nin);
  void *hx = NULL, *hG = NULL, *hbuf = NULL, *hp[2] = {NULL, NULL};
  for (int i = 0; i < 2; i++)
    par[i] = dalloc(pcount[i]), g1[i] = dalloc(pcount[i]), g2[i] = dalloc(pcount[i]), g32[i] = dalloc(pcount[i]),
    gr[i] = dalloc(pcount[i]);
  for (size_t i = 0; i < nin; i++) x[i] = rndf(-1, 1);
  for (size_t i = 0; i < nout; i++) G[i] = rndf(-1, 1);
  for (int i = 0; i < 2; i++)
    for (size_t j = 0; j < pcount[i]; j++) par[i][j] = rndf(-1, 1);
  ref_fwd(tc, x, par[0], par[1], yref);
  ref_conv_transpose2d_backward(x, tc->n, tc->c, tc->h, tc->w, par[0], oc, p.kh, p.kw, p.stride_h, p.stride_w,
                                p.pad_h, p.pad_w, p.outpad_h, p.outpad_w, p.dilation_h, p.dilation_w, p.groups, G, dxr,
                                gr[0], gr[1]);

  /* ---- double context ---- */
  clcnn_ctx *cx = ctx64;
  snprintf(what, sizeof what, "%s [f64]", name);
  clcnn_net *net = make_net(cx, tc);
  if (!net) {
    tap_ok(0, "%s: the net is built", what);
    goto done;
  }
  {
    int ok = clcnn_net_num_layers(net) == 1 && clcnn_net_layer_type(net, 0) == CLCNN_LAYER_CONV_TRANSPOSE2D &&
             clcnn_net_output_size(net) == osz && clcnn_net_num_params(net) == np;
    int dims[4] = {0};
    ok = ok && !clcnn_net_layer_shape(net, 0, dims) && dims[1] == oc && dims[2] == oh && dims[3] == ow;
    for (int i = 0; ok && i < np; i++) {
      clcnn_param_info info;
      char want[32];
      snprintf(want, sizeof want, "up.%s", pname[i]);
      ok = !clcnn_net_param_info(net, i, &info) && !strcmp(info.name, want) && info.ndim == (i ? 1 : 4) &&
           info.count == pcount[i];
      for (int d = 0; ok && d < info.ndim; d++) ok = info.dims[d] == pdims[i][d];
    }
    char desc[160];
    clcnn_net_layer_describe(net, 0, desc, sizeof desc);
    ok = ok && strstr(desc, "conv_transpose2d(") != NULL;
    tap_ok(ok, "%s: output (%d,%d,%d), weight (%d,%d,%d,%d)%s, %s", what, oc, oh, ow, pdims[0][0], pdims[0][1],
           pdims[0][2], pdims[0][3], p.bias ? " and bias" : "", desc);
  }
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_param_write(net, i, par[i]));
  CALL(cx, what, clcnn_net_forward(net, x, tc->n));
  CALL(cx, what, clcnn_net_read_output(net, y));
  {
    double e;
    int ok = close_f64(y, yref, nout, &e);
    tap_ok(ok, "%s: forward vs reference, max err %.3g (<= 1e-12 + 1e-10*|ref|)", what, e);
  }
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  CALL(cx, what, clcnn_net_read_input_grad(net, dx1));
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_grad_read(net, i, g1[i]));
  {
    double e[3] = {0, 0, 0};
    int ok = close_f64(dx1, dxr, nin, &e[0]);
    for (int i = 0; i < np; i++) ok &= close_f64(g1[i], gr[i], pcount[i], &e[1 + i]);
    tap_ok(ok, "%s: every gradient vs the reference's adjoint, max err d input %.3g, d weight %.3g, d bias %.3g", what,
           e[0], e[1], e[2]);
  }
  CALL(cx, what, clcnn_net_forward(net, x, tc->n));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  CALL(cx, what, clcnn_net_read_input_grad(net, dx2));
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_grad_read(net, i, g2[i]));
  {
    int ok = memcmp(dx1, dx2, nin * sizeof *dx1) == 0;
    for (int i = 0; i < np; i++)
      for (size_t j = 0; j < pcount[i]; j++) ok &= g2[i][j] == 2 * g1[i][j];
    tap_ok(ok, "%s: a second backward: the same input gradient, exactly twice the parameter gradients", what);
  }
  {
    double e;
    size_t k;
    int r = fd_central(ctx64, net, tc->n, x, -1, x, nin, FD_SAMPLE, G, nout, dx1, &e, &k, what);
    if (r >= 0)
      tap_ok(r, "%s: d input vs central differences (%zu of %zu), max err %.3g (<= 1e-7 + 1e-6*|fd|)", what, k, nin,
             e);
    for (int i = 0; i < np; i++) {
      r = fd_central(ctx64, net, tc->n, x, i, par[i], pcount[i], FD_SAMPLE, G, nout, g1[i], &e, &k, what);
      if (r >= 0)
        tap_ok(r, "%s: d %s vs central differences (%zu of %zu), max err %.3g (<= 1e-7 + 1e-6*|fd|)", what, pname[i],
               k, pcount[i], e);
    }
  }
  /* without the input gradient (a first layer in training): the same parameter gradients */
  CALL(cx, what, clcnn_net_set_input_grad(net, 0));
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_param_write(net, i, par[i]));
  CALL(cx, what, clcnn_net_forward(net, x, tc->n));
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  {
    int ok = 1;
    for (int i = 0; i < np; i++) {
      CALL(cx, what, clcnn_net_grad_read(net, i, g2[i]));
      ok &= memcmp(g2[i], g1[i], pcount[i] * sizeof(double)) == 0;
    }
    tap_ok(ok, "%s: without the input gradient, the same parameter gradients bit for bit", what);
  }
  clcnn_net_destroy(net);

  /* ---- float context ---- */
  cx = ctx32;
  snprintf(what, sizeof what, "%s [f32]", name);
  net = make_net(cx, tc);
  if (!net) {
    tap_ok(0, "%s: the net is built", what);
    goto done;
  }
  hx = to_host(cx, x, nin);
  hG = to_host(cx, G, nout);
  hbuf = xcalloc(nout > nin ? nout : nin, sizeof(float));
  for (int i = 0; i < np; i++) {
    hp[i] = to_host(cx, par[i], pcount[i]);
    CALL(cx, what, clcnn_net_param_write(net, i, hp[i]));
  }
  CALL(cx, what, clcnn_net_forward(net, hx, tc->n));
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, hG));
  CALL(cx, what, clcnn_net_read_output(net, hbuf));
  from_host(cx, hbuf, y32, nout);
  CALL(cx, what, clcnn_net_read_input_grad(net, hbuf));
  from_host(cx, hbuf, dx32, nin);
  for (int i = 0; i < np; i++) {
    CALL(cx, what, clcnn_net_grad_read(net, i, hp[i]));
    from_host(cx, hp[i], g32[i], pcount[i]);
  }
  {
    double e, e2, e3 = 0, e4 = 0;
    int ok = close_f32(y32, yref, nout, &e);
    tap_ok(ok, "%s: forward vs double reference, max err %.3g (<= 1e-5*|ref| + 1e-5*max|ref|)", what, e);
    ok = close_f32(y32, y, nout, &e) & close_f32(dx32, dx1, nin, &e2) & close_f32(g32[0], g1[0], pcount[0], &e3);
    if (np > 1) ok &= close_f32(g32[1], g1[1], pcount[1], &e4);
    tap_ok(ok, "%s: float vs double context: out %.3g, d input %.3g, d weight %.3g, d bias %.3g (<= 1e-5*|d| + "
           "1e-5*max|d|)", what, e, e2, e3, e4);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(G), free(yref), free(y), free(dx1), free(dx2), free(y32), free(dx32), free(dxr);
  free(hx), free(hG), free(hbuf);
  for (int i = 0; i < 2; i++) free(par[i]), free(g1[i]), free(g2[i]), free(g32[i]), free(gr[i]), free(hp[i]);
}

/* ---- PyTorch's default initialisation: kaiming_uniform_(a=sqrt(5)) on the weight gives
 * U(+-1/sqrt(fan_in)), the bias U(+-1/sqrt(fan_in)), fan_in = weight.size(1) * KH * KW =
 * OC/G * KH * KW. With C much larger than OC a conv-like fan_in (C/G * KH * KW) would give a
 * bound 4 times smaller; the largest of 144 uniform draws is past half the bound unless
 * 0.5^144 happens. */
static void init_fans(void) {
  const int C = 8, OC = 2, K = 3;
  clcnn_conv_transpose2d_params p = {.out_channels = OC, .kh = K, .kw = K, .stride_h = 2, .stride_w = 2, .bias = 1};
  clcnn_net *net = NULL;
  double *w = dalloc((size_t)C * OC * K * K), *b = dalloc(OC);
  const char *what = "default init of convtranspose(8 -> 2, k 3x3)";
  CALL(ctx64, what, clcnn_net_create(ctx64, 1, C, 5, 5, &net));
  if (!clcnn_conv_transpose2d(net, clcnn_net_input(net), &p, NULL)) CALL(ctx64, what, clcnn_net_build_status(net));
  CALL(ctx64, what, clcnn_net_init(net, CLCNN_INIT_DEFAULT, 42));
  CALL(ctx64, what, clcnn_net_param_read(net, 0, w));
  CALL(ctx64, what, clcnn_net_param_read(net, 1, b));
  {
    double bound = 1 / sqrt((double)OC * K * K), mw = max_abs(w, (size_t)C * OC * K * K), mb = max_abs(b, OC);
    tap_ok(mw <= bound && mw > bound / 2 && mb <= bound,
           "%s: max |weight| %.4f and |bias| %.4f within 1/sqrt(OC*KH*KW) = %.4f, weight past half of it", what, mw,
           mb, bound);
  }
done:
  clcnn_net_destroy(net);
  free(w), free(b);
}

/* ---- model files ------------------------------------------------------------------- */
/* TEXT is refused with status WANT, no net, an error holding every |-separated word of WORDS
 * and no source file name of the library. */
static void bad(const char *what, const char *text, clcnn_status want, const char *words) {
  char err[1024];
  int ok = model_refused(ctx64, text, 4, want, words, err, sizeof err);
  tap_ok(ok, "model file, %s: refused: %s", what, err);
}

/* A model file's line builds the same node as the builder: its output shape, its parameters,
 * and its forward (with the parameters written) against the reference. */
static void good(const char *text, const tcase *tc, const char *wname) {
  char err[1024] = "", what[300];
  snprintf(what, sizeof what, "model file \"%.*s\"", (int)(strchr(strchr(text, '\n') + 1, '\n') - text) , text);
  for (char *c = what; *c; c++)
    if (*c == '\n') *c = ';';
  clcnn_net *net = NULL;
  clcnn_conv_transpose2d_params p = norm(tc->p);
  int oh, ow;
  out_shape(tc->h, tc->w, &p, &oh, &ow);
  size_t nin = (size_t)tc->n * tc->c * tc->h * tc->w, nout = (size_t)tc->n * p.out_channels * oh * ow;
  size_t nw = (size_t)tc->c * (p.out_channels / p.groups) * p.kh * p.kw;
  double *x = dalloc(nin), *wt = dalloc(nw), *b = dalloc(p.out_channels), *y = dalloc(nout), *yr = dalloc(nout);
  if (clcnn_net_from_text(ctx64, text, "t.txt", tc->n, &net, err, sizeof err)) {
    tap_ok(0, "%s: read: %s", what, err);
    goto done;
  }
  {
    clcnn_param_info info;
    int dims[4] = {0};
    char want[80];
    snprintf(want, sizeof want, "%s.weight", wname);
    int ok = clcnn_net_layer_type(net, 0) == CLCNN_LAYER_CONV_TRANSPOSE2D && !clcnn_net_layer_shape(net, 0, dims) &&
             dims[1] == p.out_channels && dims[2] == oh && dims[3] == ow &&
             clcnn_net_num_params(net) == (p.bias ? 2 : 1) && !clcnn_net_param_info(net, 0, &info) &&
             !strcmp(info.name, want) && info.dims[0] == tc->c && info.dims[1] == p.out_channels / p.groups &&
             info.dims[2] == p.kh && info.dims[3] == p.kw;
    tap_ok(ok, "%s: output (%d,%d,%d), %s (%d,%d,%d,%d)%s", what, dims[1], dims[2], dims[3], info.name, info.dims[0],
           info.dims[1], info.dims[2], info.dims[3], p.bias ? " and bias" : ", no bias");
  }
  for (size_t i = 0; i < nin; i++) x[i] = rndf(-1, 1);
  for (size_t i = 0; i < nw; i++) wt[i] = rndf(-1, 1);
  for (int i = 0; i < p.out_channels; i++) b[i] = rndf(-1, 1);
  CALL(ctx64, what, clcnn_net_param_write(net, 0, wt));
  if (p.bias) CALL(ctx64, what, clcnn_net_param_write(net, 1, b));
  CALL(ctx64, what, clcnn_net_forward(net, x, tc->n));
  CALL(ctx64, what, clcnn_net_read_output(net, y));
  ref_fwd(tc, x, wt, b, yr);
  {
    double e;
    int ok = close_f64(y, yr, nout, &e);
    tap_ok(ok, "%s: forward vs reference, max err %.3g", what, e);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(wt), free(b), free(y), free(yr);
}

static void model_files(void) {
  const clcnn_status INV = CLCNN_ERR_INVALID_ARGUMENT, SH = CLCNN_ERR_SHAPE;
  tcase t1 = CT(2, 2, 4, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0);
  good("input 2 4 5\nconvtranspose 3 kernel=3 stride=2 pad=1 outpad=1\n", &t1, "0");
  tcase t2 = CT(2, 4, 3, 5, 6, 3, 2, 2, 1, 1, 0, 1, 0, 1, 2, 2, 0, 0);
  good("input 4 3 5\nup = convtranspose 6 kernel=3x2 stride=2x1 pad=1x0 outpad=1x0 dilation=1x2 groups=2 bias=0\n", &t2,
       "up");
  tcase t3 = CT(3, 3, 4, 4, 2, 3, 3, 1, 1, 0, 0, 1, 1, 2, 2, 1, 1, 0);
  good("input 3 4 4\nu = convtranspose(input) 2 kernel=3 outpad=1 dilation=2 bias=1\n", &t3, "u");

  bad("no kernel", "input 2 4 4\nconvtranspose 3 stride=2\n", INV, "t.txt:2:|convtranspose needs kernel=K");
  bad("no output channels", "input 2 4 4\nconvtranspose kernel=3\n", INV, "t.txt:2:");
  bad("zero output channels", "input 2 4 4\nconvtranspose 0 kernel=3\n", INV, "t.txt:2:|output channels");
  bad("negative pad", "input 2 4 4\nconvtranspose 3 kernel=3 pad=-1\n", INV, "t.txt:2:|pad");
  bad("negative output padding", "input 2 4 4\nconvtranspose 3 kernel=3 stride=2 outpad=0x-1\n", INV,
      "t.txt:2:|outpad");
  bad("zero stride", "input 2 4 4\nconvtranspose 3 kernel=3 stride=0\n", INV, "t.txt:2:|stride");
  bad("bias=2", "input 2 4 4\nconvtranspose 3 kernel=3 bias=2\n", INV, "t.txt:2:|expected 0 or 1");
  bad("a misspelt option", "input 2 4 4\nconvtranspose 3 kernel=3 outpadding=1\n", INV,
      "t.txt:2:|'outpadding=1'|outpad");
  bad("output padding as large as the stride", "input 2 4 4\nconvtranspose 3 kernel=3 stride=2 outpad=2\n", INV,
      "t.txt:2:|output padding 2x2 must be smaller than either stride 2x2 or dilation 1x1");
  bad("output padding as large as stride and dilation in W only",
      "input 2 4 4\nconvtranspose 3 kernel=3 stride=2x1 outpad=1\n", INV,
      "t.txt:2:|output padding 1x1 must be smaller than either stride 2x1 or dilation 1x1");
  bad("groups not dividing the input channels", "input 3 4 4\nconvtranspose 4 kernel=3 groups=2\n", SH,
      "t.txt:2:|conv_transpose2d|groups 2|input channels 3");
  bad("groups not dividing the output channels", "input 4 4 4\nconvtranspose 3 kernel=3 groups=2\n", SH,
      "t.txt:2:|groups 2|output channels 3");
  bad("a non-positive output size", "input 2 1 3\nconvtranspose 3 kernel=1 pad=1\n", SH,
      "t.txt:2:|output size -1x1 is not positive");
  bad("an output past int indices", "input 1 1 1\nconvtranspose 2 kernel=50000 dilation=50000\n", SH,
      "t.txt:2:|too large");
  bad("a column buffer past int indices", "input 1 100 100\nconvtranspose 1 kernel=500 pad=249\n", SH,
      "t.txt:2:|column buffer is too large");
}

/* ---- the builder's argument errors ------------------------------------------------ */
static void builder_errors(void) {
  clcnn_net *net = NULL;
  const char *what = "builder";
  CALL(ctx64, what, clcnn_net_create(ctx64, 2, 3, 4, 5, &net));
  clcnn_tensor *in = clcnn_net_input(net);
  clcnn_tensor *none = clcnn_conv_transpose2d(net, in, NULL, "a");
  tap_ok(!none && clcnn_net_build_status(net) == CLCNN_ERR_NULL_POINTER &&
             strstr(clcnn_ctx_last_error(ctx64), "params is NULL"),
         "NULL params refused: %s", clcnn_ctx_last_error(ctx64));
  clcnn_conv_transpose2d_params ok = {.out_channels = 4, .kh = 3, .kw = 2, .stride_h = 2, .stride_w = 1, .bias = 1};
  tap_ok(!clcnn_conv_transpose2d(NULL, in, &ok, "a"), "NULL net: NULL, no crash");
  tap_ok(!clcnn_conv_transpose2d(net, NULL, &ok, "a"), "NULL input: NULL, no crash");
  static const struct {
    const char *what;
    clcnn_conv_transpose2d_params p;
    clcnn_status want;
    const char *words;
  } bads[] = {
      {"zero output channels", {.out_channels = 0, .kh = 3, .kw = 3}, CLCNN_ERR_INVALID_ARGUMENT, "out_channels 0"},
      {"negative kernel", {.out_channels = 2, .kh = -1, .kw = 3}, CLCNN_ERR_INVALID_ARGUMENT, "kernel -1x3"},
      {"zero kernel width", {.out_channels = 2, .kh = 3, .kw = 0}, CLCNN_ERR_INVALID_ARGUMENT, "kernel 3x0"},
      {"negative stride", {.out_channels = 2, .kh = 3, .kw = 3, .stride_w = -2}, CLCNN_ERR_INVALID_ARGUMENT,
       "stride 0x-2"},
      {"negative pad", {.out_channels = 2, .kh = 3, .kw = 3, .pad_h = -1}, CLCNN_ERR_INVALID_ARGUMENT, "pad -1x0"},
      {"negative output padding", {.out_channels = 2, .kh = 3, .kw = 3, .outpad_w = -1}, CLCNN_ERR_INVALID_ARGUMENT,
       "output padding 0x-1"},
      {"negative dilation", {.out_channels = 2, .kh = 3, .kw = 3, .dilation_h = -3}, CLCNN_ERR_INVALID_ARGUMENT,
       "dilation -3x0"},
      {"negative groups", {.out_channels = 2, .kh = 3, .kw = 3, .groups = -1}, CLCNN_ERR_INVALID_ARGUMENT,
       "groups -1"},
      {"output padding 1 with stride 1 and dilation 1", {.out_channels = 2, .kh = 3, .kw = 3, .outpad_h = 1},
       CLCNN_ERR_INVALID_ARGUMENT, "output padding 1x0 must be smaller than either stride 1x1 or dilation 1x1"},
      {"groups 3 of 4 output channels", {.out_channels = 4, .kh = 3, .kw = 3, .groups = 3}, CLCNN_ERR_SHAPE,
       "groups 3 must divide the input channels 3 and the output channels 4"},
      {"output 0 high", {.out_channels = 2, .kh = 1, .kw = 1, .pad_h = 2}, CLCNN_ERR_SHAPE,
       "output size 0x5 is not positive"},
  };
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    clcnn_tensor *t = clcnn_conv_transpose2d(net, in, &bads[i].p, "a");
    const char *e = clcnn_ctx_last_error(ctx64);
    tap_ok(!t && clcnn_net_build_status(net) == bads[i].want && has_words(e, bads[i].words) &&
               has_words(e, "layer 0 conv_transpose2d 'a'") && clcnn_net_num_layers(net) == 0,
           "builder, %s: refused (%s), the net unchanged: %s", bads[i].what, clcnn_status_name(bads[i].want), e);
  }
  /* output padding below the dilation is allowed with stride 1, as PyTorch allows it */
  clcnn_conv_transpose2d_params dil = {.out_channels = 3, .kh = 2, .kw = 2, .outpad_h = 1, .outpad_w = 1,
                                       .dilation_h = 2, .dilation_w = 2};
  clcnn_tensor *t = clcnn_conv_transpose2d(net, in, &dil, "a");
  int dims[4] = {0};
  int good = t && !clcnn_tensor_shape(t, dims) && dims[1] == 3 && dims[2] == ref_convt_out_dim(4, 2, 1, 0, 1, 2) &&
             dims[3] == ref_convt_out_dim(5, 2, 1, 0, 1, 2) && clcnn_net_num_layers(net) == 1;
  tap_ok(good,
         "builder after the refusals: output padding 1 < dilation 2 with stride 1 is built, (%d,%d,%d)", dims[1],
         dims[2], dims[3]);
done:
  clcnn_net_destroy(net);
}

/* ---- memory: clcnn_net_memory_estimate() against a step's peak ------------------- */
static const char memnet[] = "input 3 5 4\n"
                             "convtranspose 4 kernel=3 stride=2 pad=1 outpad=1\n"
                             "relu\n"
                             "convtranspose 4 kernel=2x3 stride=1x2 dilation=2x1 groups=2\n"
                             "flatten\n"
                             "linear 5\n";

static clcnn_net *load(clcnn_ctx *ctx, int batch, int input_grad) {
  char err[1024];
  clcnn_net *net = NULL;
  if (clcnn_net_from_text(ctx, memnet, "mem.txt", batch, &net, err, sizeof err)) {
    tap_diag("%s", err);
    return NULL;
  }
  clcnn_net_set_input_grad(net, input_grad);
  return net;
}

static void memest(int batch, const char *gemm, int input_grad) {
  char what[160];
  snprintf(what, sizeof what, "memory: two convtranspose, batch %d, gemm %s, input gradient %s", batch, gemm,
           input_grad ? "on" : "off");
  clcnn_optim_params op;
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &op);
  op.momentum = 0.9;
  clcnn_ctx *ctx = open_ctx(gemm);
  clcnn_net *small = load(ctx, 1, input_grad);
  clcnn_memory_estimate est;
  int ok = small && !clcnn_net_memory_estimate(small, batch, &op, &est);
  clcnn_net_destroy(small);
  clcnn_ctx_destroy(ctx);
  if (!ok) {
    tap_ok(0, "%s: estimated", what);
    return;
  }
  ctx = open_ctx(gemm);
  size_t base = 0, peak = 0;
  clcnn_ctx_memory(ctx, &base, NULL, NULL);
  clcnn_net *net = load(ctx, batch, input_grad);
  clcnn_optim *opt = NULL;
  ok = net && !clcnn_net_init(net, CLCNN_INIT_DEFAULT, 1) && !clcnn_optim_create(net, &op, &opt);
  size_t in = ok ? clcnn_net_input_size(net) : 0;
  float *x = xcalloc((size_t)batch * in, sizeof *x);
  int32_t *y = xcalloc(batch, sizeof *y);
  for (size_t i = 0; i < (size_t)batch * in; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  for (int i = 0; i < batch; i++) y[i] = i % 5;
  ok = ok && !clcnn_net_forward(net, x, batch) && !clcnn_net_backward(net, y) && !clcnn_optim_step(opt) &&
       !clcnn_net_finish(net);
  if (!ok) tap_diag("%s: %s", what, clcnn_ctx_last_error(ctx));
  clcnn_ctx_memory(ctx, NULL, &peak, NULL);
  peak -= base;
  size_t largest = clcnn_ctx_largest_buffer(ctx);
  tap_ok(ok && est.total == peak && est.largest == largest,
         "%s: estimate %zu bytes (largest buffer %zu), peak after a step %zu (largest %zu)", what, est.total,
         est.largest, peak, largest);
  free(x), free(y);
  clcnn_optim_destroy(opt);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

/* A batch whose column buffer passes int indices cannot be built; one sample less can. */
static void batch_limit(void) {
  clcnn_ctx *ctx = open_ctx("clcnn");
  char err[512];
  clcnn_net *net = NULL;
  const int C = 1, H = 64, W = 64, OC = 8, K = 4;
  if (clcnn_net_from_text(ctx, "input 1 64 64\nconvtranspose 8 kernel=4\n", "lim.txt", 1, &net, err, sizeof err)) {
    tap_ok(0, "batch limit: the net is read: %s", err);
    clcnn_ctx_destroy(ctx);
    return;
  }
  size_t per = (size_t)OC * K * K * H * W; /* column elements per sample */
  int last = (int)(INT_MAX / per);
  (void)C;
  clcnn_memory_estimate e;
  uint64_t a0, a1;
  clcnn_ctx_memory(ctx, NULL, NULL, &a0);
  tap_ok(clcnn_net_memory_estimate(net, last, NULL, &e) == CLCNN_SUCCESS, "batch %d can be built", last);
  clcnn_status st = clcnn_net_memory_estimate(net, last + 1, NULL, &e);
  tap_ok(st == CLCNN_ERR_SHAPE &&
             strstr(clcnn_ctx_last_error(ctx), "column buffer is too large"),
         "batch %d cannot: %s", last + 1, clcnn_ctx_last_error(ctx));
  clcnn_ctx_memory(ctx, NULL, NULL, &a1);
  tap_ok(a1 == a0, "batch limit: nothing allocated");
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

int main(void) {
  ref_rng_seed(&rng, 0xC0417u);
  setenv("CLCNN_GEMM", "clcnn", 0); /* clcnn's own GEMM, as test_layers pins it */
  ctx64 = make_ctx_of(CLCNN_DOUBLE, NULL, 0);
  ctx32 = make_ctx_of(CLCNN_FLOAT, ctx64, 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
  init_fans();
  model_files();
  builder_errors();
  memest(1, "clcnn", 1);
  memest(7, "clcnn", 0);
  memest(6, "clblast", 1);
  batch_limit();
  clcnn_ctx_destroy(ctx32);
  clcnn_ctx_destroy(ctx64);
  return tap_done();
}
