/* tests/test_net.c - a whole small network: gradients by central finite differences in double
 * precision, the gradient rule, float against double, the event chain (no host wait inside a
 * step), profiling, partial batches, and where the kernels are loaded from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "ref.h"
#include "tap.h"

static uint64_t rng = 42;
static double urand(void) { /* xorshift64*, uniform in [0,1) */
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return ((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double sym(void) { return 2 * urand() - 1; }

#define N 3
#define C 2
#define H 11 /* odd: the fused pooling leaves a row out */
#define W 9
#define K 5

/* conv, relu, maxpool, conv, relu, avgpool, flatten, linear: the net of the issue. */
static clcnn_net *make_net(clcnn_ctx *ctx, int max_batch) {
  clcnn_net *net = NULL;
  clcnn_conv2d_params c1 = {.out_channels = 4, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
  clcnn_conv2d_params c2 = {.out_channels = 3, .kh = 3, .kw = 2, .stride_h = 1, .bias = 1};
  clcnn_pool2d_params mp = {.kh = 2, .kw = 2};
  clcnn_pool2d_params ap = {.kh = 2, .kw = 2, .stride_h = 1, .stride_w = 1};
  if (clcnn_net_create(ctx, max_batch, C, H, W, &net) || clcnn_net_add_conv2d(net, &c1) ||
      clcnn_net_add_relu(net) || clcnn_net_add_maxpool2d(net, &mp) ||
      clcnn_net_add_conv2d(net, &c2) || clcnn_net_add_relu(net) ||
      clcnn_net_add_avgpool2d(net, &ap) || clcnn_net_add_flatten(net) ||
      clcnn_net_add_linear(net, K, 1)) {
    tap_diag("building the net: %s", clcnn_ctx_last_error(ctx));
    clcnn_net_destroy(net);
    return NULL;
  }
  return net;
}

static clcnn_ctx *make_ctx(clcnn_precision p, int profiling) {
  clcnn_ctx *ctx = NULL;
  char err[512];
  clcnn_ctx_options o = {.precision = p, .profiling = profiling};
  clcnn_status st = clcnn_ctx_create(&ctx, &o, err, sizeof err);
  if (st) {
    printf("Bail out! no OpenCL device for the test: %s: %s\n", clcnn_status_name(st), err);
    exit(1);
  }
  return ctx;
}

/* The loss of (x, labels) through the double net. */
static double loss_of(clcnn_net *net, const double *x, const int32_t *labels) {
  double l = NAN;
  if (clcnn_net_forward(net, x, N) || clcnn_net_backward(net, labels) || clcnn_net_loss(net, &l))
    return NAN;
  return l;
}

static int close_enough(double a, double b, double atol, double rtol) {
  return fabs(a - b) <= atol + rtol * fabs(b);
}

/* One conv layer on (n, c, h, w): every stride-th entry of its weight gradient against central
 * differences of L = sum(out * G) (double). */
static void conv_weight_fd(clcnn_ctx *ctx, const clcnn_conv2d_params *p, int n, int c, int h, int w,
                           size_t stride, const char *what) {
  const double eps = 1e-6, atol = 1e-8, rtol = 1e-6;
  clcnn_net *net = NULL;
  int ok = !clcnn_net_create(ctx, n, c, h, w, &net) && !clcnn_net_add_conv2d(net, p) && !clcnn_net_init_params(net, 11);
  clcnn_param_info wi = {0};
  ok = ok && !clcnn_net_param_info(net, 0, &wi);
  size_t nx = (size_t)n * c * h * w, no = ok ? n * clcnn_net_output_size(net) : 0;
  double *x = malloc(nx * sizeof *x), *G = malloc((no + 1) * sizeof *G), *y = malloc((no + 1) * sizeof *y);
  double *wt = malloc((wi.count + 1) * sizeof *wt), *g = malloc((wi.count + 1) * sizeof *g);
  for (size_t i = 0; i < nx; i++) x[i] = sym();
  for (size_t i = 0; i < no; i++) G[i] = sym();
  ok = ok && !clcnn_net_zero_grad(net) && !clcnn_net_forward(net, x, n) && !clcnn_net_backward_from(net, G) &&
       !clcnn_net_grad_read(net, 0, g) && !clcnn_net_param_read(net, 0, wt);
  double worst = 0;
  int bad = 0;
  for (size_t i = 0; ok && i < wi.count; i += stride) {
    double keep = wt[i], l[2];
    for (int sgn = 0; sgn < 2; sgn++) {
      wt[i] = keep + (sgn ? -eps : eps);
      clcnn_net_param_write(net, 0, wt);
      clcnn_net_forward(net, x, n);
      clcnn_net_read_output(net, y);
      l[sgn] = 0;
      for (size_t j = 0; j < no; j++) l[sgn] += y[j] * G[j];
    }
    wt[i] = keep;
    clcnn_net_param_write(net, 0, wt);
    double num = (l[0] - l[1]) / (2 * eps);
    worst = fmax(worst, fabs(num - g[i]));
    bad += !close_enough(g[i], num, atol, rtol);
  }
  tap_ok(ok && !bad, "%s matches finite differences (every %zu-th of %zu, max |d| %.2e)", what, stride, wi.count,
         worst);
  /* ... and every weight against the reference's adjoint */
  double *dxr = malloc(nx * sizeof *dxr), *gr = malloc((wi.count + 1) * sizeof *gr), *br = malloc((p->out_channels + 1) * sizeof *br);
  double *bg = malloc((p->out_channels + 1) * sizeof *bg);
  int sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1, gs = p->groups ? p->groups : 1;
  worst = 0, bad = 0;
  if (ok) {
    ref_conv2d_backward(x, n, c, h, w, wt, p->out_channels, p->kh, p->kw, sh, sw, p->pad_h, p->pad_w, 1, 1, gs, G,
                        dxr, gr, br);
    for (size_t i = 0; i < wi.count; i++) {
      worst = fmax(worst, fabs(gr[i] - g[i]));
      bad += !close_enough(g[i], gr[i], 1e-12, 1e-10);
    }
    if (p->bias && !clcnn_net_grad_read(net, 1, bg))
      for (int o = 0; o < p->out_channels; o++) bad += !close_enough(bg[o], br[o], 1e-12, 1e-10);
  }
  tap_ok(ok && !bad, "%s: all %zu weights%s vs the C reference (max |d| %.2e)", what, wi.count,
         p->bias ? " and the bias" : "", worst);
  free(dxr), free(gr), free(br), free(bg);
  free(x), free(G), free(y), free(wt), free(g);
  clcnn_net_destroy(net);
}

int main(void) {
  /* clcnn's own GEMM (the CPU default, pinned so that a GEMM choice file cannot move a shape to
   * CLBlast); tests/test_net_clblast.sh runs this with CLCNN_GEMM=clblast */
  setenv("CLCNN_GEMM", "clcnn", 0);
  clcnn_ctx *ctx = make_ctx(CLCNN_DOUBLE, 1);
  tap_diag("device: %s", clcnn_ctx_device_name(ctx));
  clcnn_net *net = make_net(ctx, N);
  if (!tap_ok(net != NULL, "conv-relu-maxpool-conv-relu-avgpool-flatten-linear net builds")) tap_bail("no net");
  int dims[4];
  clcnn_net_layer_shape(net, 7, dims);
  tap_ok(dims[1] == K && clcnn_net_output_size(net) == K, "output shape (1,%d,1,1)", K);
  clcnn_net_layer_shape(net, 3, dims);
  tap_ok(dims[1] == 3 && dims[2] == 3 && dims[3] == 3, "conv 3x2 kernel on 5x4 gives 3x3 (got %dx%d)", dims[2], dims[3]);
  tap_ok(clcnn_net_num_params(net) == 6, "6 parameter tensors");
  clcnn_param_info pi;
  clcnn_net_param_info(net, 4, &pi);
  tap_ok(!strcmp(pi.name, "7.weight") && pi.dims[0] == K && pi.dims[1] == 12,
         "parameter 4 is 7.weight (%d,%d), PyTorch's name and layout", pi.dims[0], pi.dims[1]);
  {
    /* PyTorch's default: weight and bias uniform in +-1/sqrt(fan_in); conv 0's fan_in is 2*3*3 */
    double w0[4 * C * 9], b0[4], bound = 1 / sqrt(C * 9.0), wmax = 0, bmax = 0;
    int iok = clcnn_net_init_params(net, 7) == CLCNN_SUCCESS && !clcnn_net_param_read(net, 0, w0) &&
              !clcnn_net_param_read(net, 1, b0);
    int distinct = 0;
    for (int i = 0; iok && i < 4 * C * 9; i++) wmax = fmax(wmax, fabs(w0[i])), distinct += i && w0[i] != w0[i - 1];
    for (int i = 0; iok && i < 4; i++) bmax = fmax(bmax, fabs(b0[i]));
    tap_ok(iok && wmax <= bound && bmax <= bound && wmax > bound / 2 && distinct == 4 * C * 9 - 1,
           "init_params: conv weights up to %.4f and biases up to %.4f, within 1/sqrt(fan_in) = %.4f, all distinct",
           wmax, bmax, bound);
  }

  size_t nin = (size_t)N * C * H * W;
  double *x = malloc(nin * sizeof *x), *dx = malloc(nin * sizeof *dx);
  int32_t labels[N] = {1, 4, 0};
  for (size_t i = 0; i < nin; i++) x[i] = sym();

  /* The event chain: a forward and a backward make no host wait; the loss makes one. */
  clcnn_net_zero_grad(net);
  clcnn_status st = clcnn_net_forward(net, x, N);
  st = st ? st : clcnn_net_backward(net, labels);
  int cmds = -1, waits = -1;
  clcnn_net_step_stats(net, &cmds, &waits);
  tap_ok(!st && waits == 0 && cmds > 10, "forward + backward enqueue %d commands and wait on the host %d times", cmds, waits);
  double loss;
  st = clcnn_net_loss(net, &loss);
  clcnn_net_step_stats(net, &cmds, &waits);
  tap_ok(!st && waits == 1 && isfinite(loss), "reading the loss (%.6f) is the step's one host wait", loss);

  /* After the first step, a step creates no buffer: everything it needs exists already. */
  uint64_t allocs0 = 0, allocs1 = 0;
  clcnn_ctx_memory(ctx, NULL, NULL, &allocs0);
  int steady = 1;
  for (int s = 0; s < 3; s++) {
    double l;
    steady &= !clcnn_net_zero_grad(net) && !clcnn_net_forward(net, x, N) && !clcnn_net_backward(net, labels) &&
              !clcnn_net_loss(net, &l);
  }
  clcnn_ctx_memory(ctx, NULL, NULL, &allocs1);
  tap_ok(steady && allocs1 == allocs0 && allocs0 > 0, "three more steps create no buffer (%llu buffers before and after)",
         (unsigned long long)allocs1);

  /* The loss against softmax cross-entropy computed here from the outputs. */
  double out[N * K], ref = 0;
  clcnn_net_read_output(net, out);
  for (int n = 0; n < N; n++) {
    double m = out[n * K];
    for (int k = 1; k < K; k++) m = fmax(m, out[n * K + k]);
    double s = 0;
    for (int k = 0; k < K; k++) s += exp(out[n * K + k] - m);
    ref += (log(s) + m - out[n * K + labels[n]]) / N;
  }
  tap_ok(close_enough(loss, ref, 1e-14, 1e-12), "loss matches softmax cross-entropy of the outputs (|d| = %.2e)", fabs(loss - ref));

  /* The running sums on the device: reset, two steps (3 and 2 samples), read, reset again. */
  {
    double ls = -1, hit = -1, seen = -1, l1, l2, o1[N * K], o2[N * K];
    int32_t lab2[2] = {labels[2], 2};
    int sok = !clcnn_net_train_stats_reset(net) && !clcnn_net_forward(net, x, N) && !clcnn_net_backward(net, labels) &&
              !clcnn_net_loss(net, &l1) && !clcnn_net_read_output(net, o1) && !clcnn_net_forward(net, x + nin / N, 2) &&
              !clcnn_net_backward(net, lab2) && !clcnn_net_loss(net, &l2) && !clcnn_net_read_output(net, o2);
    clcnn_net_step_stats(net, &cmds, &waits);
    int waits_before = waits;
    sok = sok && !clcnn_net_train_stats(net, &ls, &hit, &seen);
    clcnn_net_step_stats(net, &cmds, &waits);
    int right = 0; /* the first largest output, as the kernel decides */
    for (int n = 0; n < N + 2; n++) {
      const double *o = n < N ? o1 + n * K : o2 + (n - N) * K;
      int best = 0, want = n < N ? labels[n] : lab2[n - N];
      for (int k = 1; k < K; k++)
        if (o[k] > o[best]) best = k;
      right += best == want;
    }
    tap_ok(sok && close_enough(ls, 3 * l1 + 2 * l2, 1e-13, 1e-12) && hit == right && seen == 5 &&
               waits == waits_before + 1,
           "train_stats: loss sum %.6f (want %.6f), %g right (want %d), %g seen (want 5), one host wait", ls,
           3 * l1 + 2 * l2, hit, right, seen);
    sok = !clcnn_net_train_stats_reset(net) && !clcnn_net_train_stats(net, &ls, &hit, &seen);
    tap_ok(sok && ls == 0 && hit == 0 && seen == 0 && !clcnn_net_train_stats(net, NULL, NULL, NULL),
           "train_stats_reset zeroes them; NULL outputs are allowed");
    tap_ok(clcnn_net_train_stats(NULL, &ls, NULL, NULL) == CLCNN_ERR_NULL_POINTER &&
               clcnn_net_train_stats_reset(NULL) == CLCNN_ERR_NULL_POINTER,
           "train_stats on a NULL net: CLCNN_ERR_NULL_POINTER");
    /* wait_inputs: one host wait, after which the host's input may be overwritten */
    double *x2 = malloc(nin * sizeof *x2), l3 = 0, l4 = 0;
    int32_t lab3[N];
    memcpy(x2, x, nin * sizeof *x2), memcpy(lab3, labels, sizeof lab3);
    int wok = x2 && !clcnn_net_forward(net, x2, N) && !clcnn_net_backward(net, lab3);
    clcnn_net_step_stats(net, &cmds, &waits);
    waits_before = waits;
    wok = wok && !clcnn_net_wait_inputs(net);
    clcnn_net_step_stats(net, &cmds, &waits);
    for (size_t i = 0; x2 && i < nin; i++) x2[i] = 1e30;
    for (int i = 0; i < N; i++) lab3[i] = -7;
    wok = wok && !clcnn_net_loss(net, &l3) && !clcnn_net_forward(net, x, N) && !clcnn_net_backward(net, labels) &&
          !clcnn_net_loss(net, &l4);
    tap_ok(wok && waits == waits_before + 1 && l3 == l4 && clcnn_net_wait_inputs(NULL) == CLCNN_ERR_NULL_POINTER,
           "wait_inputs: one host wait, then the inputs may be overwritten (loss %.6f = %.6f)", l3, l4);
    free(x2);
    /* the checks below read the gradients of one step on x and labels */
    clcnn_net_zero_grad(net), clcnn_net_forward(net, x, N), clcnn_net_backward(net, labels), clcnn_net_finish(net);
  }

  /* Profiling: every layer with kernels reports time, flatten none. */
  int prof_ok = 1;
  for (int l = 0; l < clcnn_net_num_layers(net); l++)
    for (int d = 0; d < 2; d++) {
      uint64_t ns = 0;
      if (clcnn_net_profile(net, l, d, &ns)) prof_ok = 0;
      int has_kernels = clcnn_net_layer_type(net, l) != CLCNN_LAYER_FLATTEN && !clcnn_net_layer_fused(net, l);
      if (has_kernels != (ns > 0)) prof_ok = 0;
    }
  uint64_t loss_ns = 0;
  clcnn_net_profile(net, clcnn_net_num_layers(net), 1, &loss_ns);
  int fused_ok = clcnn_net_layer_fused(net, -1) == -1 && clcnn_net_layer_fused(NULL, 0) == -1;
  /* conv, relu, maxpool 2x2, conv, relu, avgpool, ...: the first relu and maxpool and the second
   * relu run inside their convs */
  for (int l = 0; l < clcnn_net_num_layers(net); l++)
    fused_ok &= clcnn_net_layer_fused(net, l) == (l == 1 || l == 2 || l == 4);
  tap_ok(fused_ok, "a relu right after a conv, and a 2x2 max pooling after that, run inside the conv; nothing else");
  tap_ok(prof_ok && loss_ns > 0, "profiling reports kernel time for every layer and direction (loss %llu ns)",
         (unsigned long long)loss_ns);

  /* Gradients of the whole net by central differences, h = 1e-6. */
  clcnn_net_read_input_grad(net, dx);
  const double h = 1e-6, atol = 1e-8, rtol = 1e-6;
  double worst = 0;
  int bad = 0;
  for (size_t i = 0; i < nin; i += 7) {
    double keep = x[i];
    x[i] = keep + h;
    double lp = loss_of(net, x, labels);
    x[i] = keep - h;
    double lm = loss_of(net, x, labels);
    x[i] = keep;
    double num = (lp - lm) / (2 * h);
    worst = fmax(worst, fabs(num - dx[i]));
    if (!close_enough(dx[i], num, atol, rtol)) bad++;
  }
  tap_ok(!bad, "input gradient matches finite differences (max |d| %.2e; tolerance %g + %g rel)", worst, atol, rtol);

  for (int p = 0; p < clcnn_net_num_params(net); p++) {
    clcnn_net_param_info(net, p, &pi);
    double *w = malloc(pi.count * sizeof *w), *g = malloc(pi.count * sizeof *g);
    clcnn_net_zero_grad(net);
    loss_of(net, x, labels);
    clcnn_net_grad_read(net, p, g);
    clcnn_net_param_read(net, p, w);
    worst = 0;
    bad = 0;
    size_t stride = pi.count > 40 ? pi.count / 40 : 1;
    for (size_t i = 0; i < pi.count; i += stride) {
      double keep = w[i];
      w[i] = keep + h;
      clcnn_net_param_write(net, p, w);
      double lp = loss_of(net, x, labels);
      w[i] = keep - h;
      clcnn_net_param_write(net, p, w);
      double lm = loss_of(net, x, labels);
      w[i] = keep;
      clcnn_net_param_write(net, p, w);
      double num = (lp - lm) / (2 * h);
      worst = fmax(worst, fabs(num - g[i]));
      if (!close_enough(g[i], num, atol, rtol)) bad++;
    }
    tap_ok(!bad, "gradient of %s matches finite differences (max |d| %.2e)", pi.name, worst);
    free(w);
    free(g);
  }

  /* The gradient rule: parameters accumulate, the input gradient is overwritten. */
  clcnn_net_param_info(net, 0, &pi);
  double *g1 = malloc(pi.count * sizeof *g1), *g2 = malloc(pi.count * sizeof *g2);
  double *dx2 = malloc(nin * sizeof *dx2);
  clcnn_net_zero_grad(net);
  loss_of(net, x, labels);
  clcnn_net_grad_read(net, 0, g1);
  clcnn_net_read_input_grad(net, dx);
  clcnn_net_backward(net, labels);
  clcnn_net_grad_read(net, 0, g2);
  clcnn_net_read_input_grad(net, dx2);
  int acc = 1;
  for (size_t i = 0; i < pi.count; i++) acc &= close_enough(g2[i], 2 * g1[i], 1e-15, 1e-13);
  tap_ok(acc, "a second backward adds to the parameter gradients (+=)");
  tap_ok(!memcmp(dx, dx2, nin * sizeof *dx), "a second backward overwrites the input gradient (=)");
  clcnn_net_zero_grad(net);
  clcnn_net_grad_read(net, 0, g2);
  int zero = 1;
  for (size_t i = 0; i < pi.count; i++) zero &= g2[i] == 0;
  tap_ok(zero, "zero_grad clears the parameter gradients");

  /* Without the input gradient the parameter gradients are the same, bit for bit. */
  clcnn_net_set_input_grad(net, 0);
  clcnn_net_zero_grad(net);
  loss_of(net, x, labels);
  clcnn_net_grad_read(net, 0, g2);
  int same_g = !memcmp(g1, g2, pi.count * sizeof *g1);
  st = clcnn_net_read_input_grad(net, dx2);
  tap_ok(same_g && st == CLCNN_ERR_STATE, "input gradient off: same parameter gradients, and reading dx is refused");
  clcnn_net_set_input_grad(net, 1);

  /* A partial batch gives the rows of the full batch. */
  double out1[K];
  clcnn_net_forward(net, x + 2 * C * H * W, 1);
  clcnn_net_read_output(net, out1);
  int same = 1;
  for (int k = 0; k < K; k++) same &= close_enough(out1[k], out[2 * K + k], 1e-14, 1e-12);
  tap_ok(same, "a batch of 1 gives the same output as row 2 of the batch of 3");

  /* Float against double: same parameters, same input. */
  clcnn_ctx *fctx = make_ctx(CLCNN_FLOAT, 0);
  clcnn_net *fnet = make_net(fctx, N);
  if (!fnet) tap_bail("no float net");
  for (int p = 0; p < clcnn_net_num_params(net); p++) {
    clcnn_net_param_info(net, p, &pi);
    double *w = malloc(pi.count * sizeof *w);
    float *wf = malloc(pi.count * sizeof *wf);
    clcnn_net_param_read(net, p, w);
    for (size_t i = 0; i < pi.count; i++) wf[i] = (float)w[i];
    clcnn_net_param_write(fnet, p, wf);
    clcnn_net_param_write(net, p, w); /* keep double identical to the float copy's source */
    free(w);
    free(wf);
  }
  float *xf = malloc(nin * sizeof *xf), *dxf = malloc(nin * sizeof *dxf);
  for (size_t i = 0; i < nin; i++) xf[i] = (float)x[i];
  double dloss = loss_of(net, x, labels), floss = NAN;
  clcnn_net_read_input_grad(net, dx);
  clcnn_net_zero_grad(fnet);
  st = clcnn_net_forward(fnet, xf, N);
  st = st ? st : clcnn_net_backward(fnet, labels);
  st = st ? st : clcnn_net_loss(fnet, &floss);
  st = st ? st : clcnn_net_read_input_grad(fnet, dxf);
  tap_ok(!st && close_enough(floss, dloss, 1e-6, 1e-5), "float loss %.7f agrees with double %.7f (1e-6 + 1e-5 rel)", floss, dloss);
  double gmax = 0, dmax = 0;
  for (size_t i = 0; i < nin; i++) gmax = fmax(gmax, fabs(dx[i])), dmax = fmax(dmax, fabs(dxf[i] - dx[i]));
  tap_ok(!st && dmax <= 1e-4 * gmax + 1e-7, "float input gradient agrees with double (max |d| %.2e, 1e-4 of max |g| %.2e)", dmax, gmax);

  /* A conv whose weight gradient sums over a long K (9 x 31 x 31 = 8649 positions, not a
   * multiple of the chunks): both GEMM backends split K there and add the parts. */
  clcnn_conv2d_params bp = {.out_channels = 2, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
  conv_weight_fd(ctx, &bp, 9, 1, 31, 31, 4, "a weight gradient summed over 8649 positions (split K)");
  /* Wide convs (32 output channels and 72 weights each per group, also with 2 groups): their
   * weight gradient is computed as its transpose on CPU devices; with few input channels (18
   * weights per output channel) as dot products, like narrow ones. */
  clcnn_conv2d_params wp1 = {.out_channels = 32, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
  conv_weight_fd(ctx, &wp1, 2, 8, 6, 5, 7, "a conv with 32 output channels, 8 input: weight gradient");
  conv_weight_fd(ctx, &wp1, 2, 2, 6, 5, 7, "a conv with 32 output channels, 2 input: weight gradient");
  /* ... over 2500 positions: split K in 3 chunks of 834 (not whole 64-column panels of im2col) */
  conv_weight_fd(ctx, &wp1, 4, 8, 25, 25, 37, "a conv with 32 output channels over 2500 positions (split K): weight gradient");
  clcnn_conv2d_params wp2 = {.out_channels = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .groups = 2, .bias = 1};
  conv_weight_fd(ctx, &wp2, 2, 16, 6, 5, 7, "a conv with 64 output channels in 2 groups: weight gradient");

  /* Only a 2x2 max pooling right after a fused relu joins the conv: a second pooling after it
   * runs on its own, on the fused one's output. */
  {
    clcnn_net *pn = NULL;
    clcnn_conv2d_params pc = {.out_channels = 3, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
    clcnn_pool2d_params p2 = {.kh = 2, .kw = 2};
    int pok = !clcnn_net_create(ctx, 2, 2, 9, 8, &pn) && !clcnn_net_add_conv2d(pn, &pc) && !clcnn_net_add_relu(pn) &&
              !clcnn_net_add_maxpool2d(pn, &p2) && !clcnn_net_add_maxpool2d(pn, &p2) && !clcnn_net_init_params(pn, 5) &&
              !clcnn_net_finalize(pn); /* the fusion pass runs on the finished graph */
    pok = pok && clcnn_net_layer_fused(pn, 1) == 1 && clcnn_net_layer_fused(pn, 2) == 1 &&
          clcnn_net_layer_fused(pn, 3) == 0;
    double px[2 * 2 * 9 * 8], y2[2 * 3 * 2 * 2], y1[2 * 3 * 4 * 4];
    for (size_t i = 0; i < sizeof px / sizeof px[0]; i++) px[i] = sym();
    /* the same net without its last pooling gives the fused pooling's output */
    clcnn_net *pn1 = NULL;
    pok = pok && !clcnn_net_forward(pn, px, 2) && !clcnn_net_read_output(pn, y2) &&
          !clcnn_net_create(ctx, 2, 2, 9, 8, &pn1) && !clcnn_net_add_conv2d(pn1, &pc) && !clcnn_net_add_relu(pn1) &&
          !clcnn_net_add_maxpool2d(pn1, &p2) && !clcnn_net_init_params(pn1, 5) && !clcnn_net_forward(pn1, px, 2) &&
          !clcnn_net_read_output(pn1, y1);
    int same = pok;
    for (int pl = 0; same && pl < 6; pl++)
      for (int oy = 0; oy < 2; oy++)
        for (int ox = 0; ox < 2; ox++) {
          const double *q = y1 + pl * 16 + 2 * oy * 4 + 2 * ox;
          double m = fmax(fmax(q[0], q[1]), fmax(q[4], q[5]));
          same &= y2[pl * 4 + oy * 2 + ox] == m;
        }
    tap_ok(same, "conv-relu-maxpool-maxpool: the second pooling is not fused and pools the first's output");
    clcnn_net_destroy(pn1);
    clcnn_net_destroy(pn);
  }

  /* Kernels are found: from $CLCNN_KERNEL_PATH here, embedded or installed without it. */
  const char *origin = clcnn_ctx_kernel_origin(ctx, "conv2d.cl");
  tap_ok(origin && !strcmp(origin, getenv("CLCNN_KERNEL_PATH") ? "env" : "installed"),
         "conv2d.cl comes from %s", origin ? origin : "(nowhere)");
  unsetenv("CLCNN_KERNEL_PATH");
  clcnn_ctx *ectx = NULL;
  clcnn_ctx_options eo = {.precision = CLCNN_DOUBLE, .kernel_path = "/nonexistent-clcnn-dir"};
  char err[512];
  st = clcnn_ctx_create(&ectx, &eo, err, sizeof err);
  origin = ectx ? clcnn_ctx_kernel_origin(ectx, "pool2d.cl") : NULL;
  tap_ok(!st && origin && (!strcmp(origin, "embedded") || !strcmp(origin, "installed")),
         "without a path, pool2d.cl comes from the %s copy", origin ? origin : "(no)");
  tap_ok(ectx && clcnn_ctx_build_all(ectx) == CLCNN_SUCCESS, "every program builds from there");
  clcnn_ctx_destroy(ectx);
  tap_ok(clcnn_ctx_kernel_origin(ctx, "nosuch.cl") == NULL, "a kernel file that does not exist is found nowhere");

  free(x), free(dx), free(dx2), free(g1), free(g2), free(xf), free(dxf);
  clcnn_net_destroy(fnet);
  clcnn_ctx_destroy(fctx);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
