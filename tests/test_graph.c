/* tests/test_graph.c - the graph machinery on PoCL: a tensor read by several nodes gets the sum of
 * their gradients (checked by central differences in double on whole graphs with several weighted
 * losses), the fusion pass only fuses where the tensors between have one reader, liveness shares
 * buffers without changing a result, and the builders' and losses' misuse gets clear errors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

static clcnn_ctx *ctx, *ctx32;

static clcnn_net *load(clcnn_ctx *cx, const char *text, int batch) {
  clcnn_net *net = NULL;
  char e[512];
  if (clcnn_net_from_text(cx, text, "g.txt", batch, &net, e, sizeof e)) {
    tap_diag("%s", e);
    return NULL;
  }
  return net;
}

/* A loss's targets: class labels (classes > 0, per labels per sample; ignore: a label that
 * counts for nothing, drawn now and then) or reals (classes 0, per reals per sample). */
struct target {
  const char *loss;
  int classes, per, ignore;
};

struct gcase {
  const char *name, *text;
  int batch;
  struct target t[4];
  int nt;
};

static void *make_targets(const struct target *t, int n) {
  size_t m = (size_t)n * t->per;
  if (t->classes) {
    int32_t *y = malloc(m * sizeof *y);
    for (size_t i = 0; i < m; i++)
      y[i] = t->ignore && ref_rng_uniform(&rng) < 0.25 ? t->ignore : (int32_t)(ref_rng_next(&rng) % t->classes);
    return y;
  }
  double *y = malloc(m * sizeof *y);
  for (size_t i = 0; i < m; i++) y[i] = ref_rng_uniform(&rng);
  return y;
}

/* The total loss of the net on x: forward, every loss's targets, backward (which also leaves the
 * gradients). */
static double total_loss(clcnn_net *net, const double *x, int n, const struct gcase *g, void **tg, int *ok) {
  double L = NAN;
  int good = !clcnn_net_forward(net, x, n);
  for (int i = 0; good && i < g->nt; i++) good = !clcnn_net_set_target(net, clcnn_net_tensor(net, g->t[i].loss), tg[i]);
  good = good && !clcnn_net_backward_losses(net) && !clcnn_net_loss(net, &L);
  if (!good) {
    tap_diag("%s: %s", g->name, clcnn_ctx_last_error(ctx));
    *ok = 0;
  }
  return L;
}

/* Every parameter's gradient and the input's against central differences of the total loss
 * (h = 1e-6, in double), at up to 12 elements of each. */
static void check_fd(const struct gcase *g) {
  clcnn_net *net = load(ctx, g->text, g->batch);
  if (!tap_ok(net != NULL, "%s: builds", g->name)) return;
  int n = g->batch, ok = 1;
  size_t nx = (size_t)n * clcnn_net_input_size(net);
  double *x = malloc(nx * sizeof *x), *dx = malloc(nx * sizeof *dx);
  for (size_t i = 0; i < nx; i++) x[i] = ref_rng_uniform(&rng) * 2 - 1;
  void *tg[4];
  for (int i = 0; i < g->nt; i++) tg[i] = make_targets(&g->t[i], n);
  clcnn_net_init_params(net, 7);
  clcnn_net_zero_grad(net);
  total_loss(net, x, n, g, tg, &ok);
  clcnn_net_read_input_grad(net, dx);
  int np = clcnn_net_num_params(net);
  double **grads = calloc(np + 1, sizeof *grads); /* read now: each evaluation below adds to them */
  for (int p = 0; p < np; p++) {
    clcnn_param_info info;
    clcnn_net_param_info(net, p, &info);
    grads[p] = malloc(info.count * sizeof **grads);
    clcnn_net_grad_read(net, p, grads[p]);
  }
  /* the rule: parameter gradients add up over backward passes */
  int acc_ok = ok;
  total_loss(net, x, n, g, tg, &acc_ok);
  for (int p = 0; p < np && acc_ok; p++) {
    clcnn_param_info info;
    clcnn_net_param_info(net, p, &info);
    double *twice = malloc(info.count * sizeof *twice);
    clcnn_net_grad_read(net, p, twice);
    for (size_t k = 0; k < info.count; k++) acc_ok &= fabs(twice[k] - 2 * grads[p][k]) <= 1e-12 * (1 + fabs(twice[k]));
    free(twice);
  }
  tap_ok(acc_ok, "%s: a second backward adds the same gradients again", g->name);
  double worst = 0;
  int checked = 0;
  const double h = 1e-6;
  for (int p = -1; p < clcnn_net_num_params(net) && ok; p++) {
    clcnn_param_info info = {.count = nx};
    if (p >= 0) clcnn_net_param_info(net, p, &info);
    double *v = p >= 0 ? malloc(info.count * sizeof *v) : x, *gr = p >= 0 ? grads[p] : dx;
    if (p >= 0) clcnn_net_param_read(net, p, v);
    size_t step = info.count > 12 ? info.count / 12 : 1;
    for (size_t k = 0; k < info.count && ok; k += step) {
      double keep = v[k], lp, lm;
      v[k] = keep + h;
      if (p >= 0) clcnn_net_param_write(net, p, v);
      lp = total_loss(net, x, n, g, tg, &ok);
      v[k] = keep - h;
      if (p >= 0) clcnn_net_param_write(net, p, v);
      lm = total_loss(net, x, n, g, tg, &ok);
      v[k] = keep;
      if (p >= 0) clcnn_net_param_write(net, p, v);
      /* central differences in double carry a rounding error of about 1e-16 |L| / h = 1e-10:
       * an absolute floor of 1e-8 above it, else 1e-5 relative */
      double fd = (lp - lm) / (2 * h), err = fabs(fd - gr[k]) / (1e-8 + 1e-5 * fabs(fd));
      if (err > worst) worst = err;
      if (err > 1) {
        tap_diag("%s: %s[%zu]: analytic %.9g, central difference %.9g", g->name, p >= 0 ? info.name : "input", k,
                 gr[k], fd);
        ok = 0;
      }
      checked++;
    }
    if (p >= 0) free(v);
  }
  for (int p = 0; p < np; p++) free(grads[p]);
  free(grads);
  tap_ok(ok, "%s: %d gradient elements of every parameter and the input match central differences within 1e-8 + 1e-5 |fd| "
         "(the worst at %.2g of that)", g->name, checked, worst);
  for (int i = 0; i < g->nt; i++) free(tg[i]);
  free(x), free(dx);
  clcnn_net_destroy(net);
}

static const struct gcase cases[] = {
    {"three heads on shared tensors",
     "input 6 1 1\n"
     "a = linear 5\n"
     "t = tanh\n"
     "b = linear(t) 3\n"
     "c = linear(t) 4\n"
     "d = linear(a) 2          # a is read by tanh and by d\n"
     "xent(b)\n"
     "xent(c) weight=0.5\n"
     "xent(d) weight=2\n",
     3, {{"loss0", 3, 1, 0}, {"loss1", 4, 1, 0}, {"loss2", 2, 1, 0}}, 3},
    {"a conv whose output also feeds another branch: nothing fused",
     "input 2 6 5\n"
     "c = conv 3 kernel=3 pad=1\n"
     "r = relu\n"
     "p = maxpool 2\n"
     "f1 = flatten\n"
     "l1 = linear 3\n"
     "f2 = flatten(c)\n"
     "l2 = linear 4\n"
     "xent(l1)\n"
     "xent(l2)\n",
     2, {{"loss0", 3, 1, 0}, {"loss1", 4, 1, 0}}, 2},
    {"a conv whose output is also a skip connection: nothing fused",
     "input 2 6 6\n"
     "c = conv 2 kernel=3 pad=1\n"
     "r = relu\n"
     "p = maxpool 2\n"
     "up = upsample 2\n"
     "s = add(up, c)           # the skip\n"
     "f = flatten\n"
     "linear 3\n",
     2, {{"loss0", 3, 1, 0}}, 1},
    {"a relu read twice: the conv does the relu, not the pooling",
     "input 2 6 6\n"
     "c = conv 3 kernel=3 pad=1\n"
     "r = relu\n"
     "p = maxpool 2\n"
     "f1 = flatten\n"
     "l1 = linear 3\n"
     "f2 = flatten(r)\n"
     "l2 = linear 4\n"
     "xent(l1)\n"
     "xent(l2) weight=0.25\n",
     2, {{"loss0", 3, 1, 0}, {"loss1", 4, 1, 0}}, 2},
    {"the input read by a view and a conv",
     "input 2 4 3\n"
     "f = flatten(input)\n"
     "c = conv(input) 2 kernel=3 pad=1\n"
     "g = flatten(c)\n"
     "l1 = linear(f) 3\n"
     "l2 = linear(g) 3\n"
     "xent(l1)\n"
     "xent(l2)\n",
     3, {{"loss0", 3, 1, 0}, {"loss1", 3, 1, 0}}, 2},
    {"a chain of activations whose buffers take turns",
     "input 3 3 2\n"
     "a = conv 4 kernel=1\n"
     "sigmoid\n"
     "conv 4 kernel=1\n"
     "tanh\n"
     "conv 4 kernel=1\n"
     "leakyrelu slope=0.2\n"
     "conv 4 kernel=1\n"
     "relu\n"
     "conv 3 kernel=1\n"
     "sigmoid\n"
     "conv 3 kernel=1\n"
     "flatten\n"
     "linear 3\n",
     3, {{"loss0", 3, 1, 0}}, 1},
    {"per-position cross-entropy with an ignored label",
     "input 2 5 3\n"
     "c = conv 4 kernel=3 pad=1\n"
     "t = tanh\n"
     "seg = xent(t) ignore=3\n",
     2, {{"seg", 4, 15, 3}}, 1},
};

/* The fusion pass: what each case fuses. */
static void check_fusion(void) {
  static const int want[][8] = {{0}, {0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0}};
  for (int c = 1; c <= 3; c++) {
    clcnn_net *net = load(ctx32, cases[c].text, 4);
    if (!net) continue;
    int before = 0, ok;
    for (int i = 0; i < clcnn_net_num_layers(net); i++) before |= clcnn_net_layer_fused(net, i);
    ok = !before && !clcnn_net_finalize(net);
    for (int i = 0; ok && i < clcnn_net_num_layers(net); i++) ok = clcnn_net_layer_fused(net, i) == want[c][i];
    tap_ok(ok, "%s: fused as expected once finished, nothing before", cases[c].name);
    clcnn_net_destroy(net);
  }
  /* the same chain as a model without the second branch fuses both */
  clcnn_net *net = load(ctx32, "input 2 6 6\nconv 3 kernel=3 pad=1\nrelu\nmaxpool 2\nflatten\nlinear 3\n", 4);
  tap_ok(net && !clcnn_net_finalize(net) && clcnn_net_layer_fused(net, 1) == 1 && clcnn_net_layer_fused(net, 2) == 1,
         "without the second reader, the relu and the pooling run in the conv");
  clcnn_net_destroy(net);
}

/* Liveness: a kept tensor reads back right, one not kept is refused, results do not depend on
 * the sharing, and a chain shares its gradients. */
static void check_liveness(void) {
  const char *text = "input 5 1 1\na = linear 4\nb = sigmoid\nc = linear 3\n";
  clcnn_net *net = load(ctx, text, 2);
  if (!net) return;
  clcnn_tensor *a = clcnn_net_tensor(net, "a"), *b = clcnn_net_tensor(net, "b");
  tap_ok(!clcnn_net_keep_tensor(net, a), "a tensor can be kept before the graph is finished");
  double x[10], w[20], bias[4], got[8];
  for (int i = 0; i < 10; i++) x[i] = ref_rng_uniform(&rng) - 0.5;
  clcnn_net_init_params(net, 3);
  clcnn_net_param_read(net, 0, w);
  clcnn_net_param_read(net, 1, bias);
  int ok = !clcnn_net_forward(net, x, 2) && !clcnn_net_read_tensor(net, a, got);
  for (int s = 0; s < 2; s++)
    for (int o = 0; o < 4; o++) {
      double v = bias[o];
      for (int i = 0; i < 5; i++) v += x[s * 5 + i] * w[o * 5 + i];
      ok = ok && fabs(got[s * 4 + o] - v) < 1e-12;
    }
  tap_ok(ok, "a kept tensor reads back its values");
  tap_ok(clcnn_net_read_tensor(net, b, got) == CLCNN_ERR_STATE && strstr(clcnn_ctx_last_error(ctx), "not kept"),
         "a tensor not kept is refused: %s", clcnn_ctx_last_error(ctx));
  tap_ok(clcnn_net_keep_tensor(net, b) == CLCNN_ERR_STATE, "keeping after the graph is finished is refused");
  clcnn_net_destroy(net);

  /* a chain of sigmoids: every value is kept for backward, the gradients take turns in few buffers */
  const int L = 8, B = 4, S = 1000;
  char chain[512];
  int len = snprintf(chain, sizeof chain, "input %d 1 1\n", S);
  for (int i = 0; i < L; i++) len += snprintf(chain + len, sizeof chain - len, "sigmoid\n");
  net = load(ctx, chain, B);
  clcnn_memory_estimate e;
  ok = net && !clcnn_net_memory_estimate(net, B, NULL, &e);
  size_t tensor_bytes = (size_t)B * S * 8, naive = (size_t)(L + 1) * tensor_bytes + (size_t)(L + 1) * tensor_bytes;
  /* values: the input and L outputs; gradients: the output's and two more at most in flight */
  tap_ok(ok && e.activations <= (size_t)(L + 1 + 3) * tensor_bytes + 4096,
         "a chain of %d sigmoids needs %zu bytes of activations, not %zu", L, ok ? e.activations : 0, naive);
  clcnn_net_destroy(net);
}

static void check_api(void) {
  clcnn_net *net = NULL, *other = NULL;
  clcnn_net_create(ctx32, 2, 3, 4, 4, &net);
  clcnn_net_create(ctx32, 2, 3, 4, 4, &other);
  clcnn_tensor *x = clcnn_net_input(net);
  clcnn_conv2d_params bad = {.out_channels = 2, .kh = 9, .kw = 9};
  clcnn_tensor *y = clcnn_conv2d(net, x, &bad, "c");
  const char *first = clcnn_ctx_last_error(ctx32);
  char keep[512];
  snprintf(keep, sizeof keep, "%s", first);
  clcnn_tensor *z = clcnn_relu(net, y, NULL);
  tap_ok(!y && !z && clcnn_net_build_status(net) == CLCNN_ERR_SHAPE && !strcmp(clcnn_ctx_last_error(ctx32), keep) &&
             clcnn_net_num_layers(net) == 0,
         "a failed builder returns NULL; the next one given NULL keeps the first reason: %s", keep);
  tap_ok(!clcnn_relu(net, NULL, NULL) && clcnn_net_build_status(net) == CLCNN_ERR_SHAPE,
         "the status stays the first failure's");
  clcnn_tensor *a = clcnn_relu(net, x, "a");
  tap_ok(a && clcnn_net_build_status(net) == CLCNN_SUCCESS, "a good builder succeeds and clears the status");
  tap_ok(!clcnn_relu(net, NULL, NULL) && clcnn_net_build_status(net) == CLCNN_ERR_NULL_POINTER &&
             strstr(clcnn_ctx_last_error(ctx32), "input 0 is NULL"),
         "a NULL input with no earlier failure: %s", clcnn_ctx_last_error(ctx32));
  tap_ok(!clcnn_relu(net, clcnn_net_input(other), NULL) && strstr(clcnn_ctx_last_error(ctx32), "another net"),
         "a tensor of another net is refused: %s", clcnn_ctx_last_error(ctx32));
  tap_ok(!clcnn_relu(net, a, "a") && strstr(clcnn_ctx_last_error(ctx32), "name 'a' is used twice"),
         "a name used twice: %s", clcnn_ctx_last_error(ctx32));
  tap_ok(!clcnn_relu(net, a, "eval") && strstr(clcnn_ctx_last_error(ctx32), "reserved"),
         "a reserved name: %s", clcnn_ctx_last_error(ctx32));
  tap_ok(!clcnn_relu(net, a, "7") && strstr(clcnn_ctx_last_error(ctx32), "digits only"),
         "a name of digits that is not the index: %s", clcnn_ctx_last_error(ctx32));
  tap_ok(clcnn_relu(net, a, "1") != NULL, "the index itself is a good name");
  char longname[80];
  memset(longname, 'n', 64), longname[64] = 0;
  tap_ok(!clcnn_relu(net, a, longname) && strstr(clcnn_ctx_last_error(ctx32), "1 to 63 characters"),
         "a 64-character name: %s", clcnn_ctx_last_error(ctx32));
  tap_ok(!clcnn_relu(net, a, "a-b") && strstr(clcnn_ctx_last_error(ctx32), "letters, digits or '_'"),
         "a name with a '-': %s", clcnn_ctx_last_error(ctx32));
  clcnn_tensor *f = clcnn_flatten(net, NULL, NULL); /* NULL after the failures above */
  f = clcnn_flatten(net, clcnn_net_output(net), "f");
  clcnn_tensor *l = clcnn_linear(net, f, 3, 1, "out");
  clcnn_tensor *loss = clcnn_xent_loss(net, l, -100, 1, NULL);
  tap_ok(f && l && loss && !strcmp(clcnn_tensor_name(loss), "loss0"), "a loss node is named loss0");
  double xin[96] = {0};
  int32_t lab[2] = {0, 2};
  tap_ok(clcnn_net_set_target(net, loss, lab) == CLCNN_ERR_STATE, "targets before a forward are refused");
  tap_ok(clcnn_net_set_target(net, l, lab) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(clcnn_ctx_last_error(ctx32), "is not a loss"),
         "targets for a tensor that is not a loss are refused: %s", clcnn_ctx_last_error(ctx32));
  float xf[96] = {0};
  (void)xin;
  tap_ok(!clcnn_net_forward(net, xf, 2) && clcnn_net_backward_losses(net) == CLCNN_ERR_STATE &&
             strstr(clcnn_ctx_last_error(ctx32), "no targets"),
         "backward without the loss's targets is refused: %s", clcnn_ctx_last_error(ctx32));
  int32_t badlab[2] = {0, 3};
  tap_ok(clcnn_net_set_target(net, loss, badlab) == CLCNN_ERR_LABEL, "a label out of range is refused: %s",
         clcnn_ctx_last_error(ctx32));
  tap_ok(!clcnn_relu(net, a, NULL) && clcnn_net_build_status(net) == CLCNN_ERR_STATE &&
             strstr(clcnn_ctx_last_error(ctx32), "finished"),
         "no node can be added once the net is finished: %s", clcnn_ctx_last_error(ctx32));
  double v = 0;
  int good = !clcnn_net_set_target(net, loss, lab) && !clcnn_net_backward(net, lab) && !clcnn_net_loss_value(net, loss, &v);
  tap_ok(good && fabs(v - log(3.0)) < 1e-6,
         "one cross-entropy loss: clcnn_net_backward takes its labels (loss %.6f = log 3 on zero logits)", v);
  clcnn_net_destroy(net);
  clcnn_net_destroy(other);

  /* two losses: clcnn_net_backward cannot know which labels are whose */
  net = load(ctx32, cases[0].text, 2);
  float x6[12] = {0};
  int32_t l2[2] = {0, 1};
  tap_ok(net && !clcnn_net_forward(net, x6, 2) && clcnn_net_backward(net, l2) == CLCNN_ERR_STATE &&
             strstr(clcnn_ctx_last_error(ctx32), "clcnn_net_set_target"),
         "clcnn_net_backward on a net of three losses is refused: %s", clcnn_ctx_last_error(ctx32));
  clcnn_net_destroy(net);
}

/* tests/graphs/NAME as text (the caller frees it); NULL when it cannot be read. */
static char *graph_file(const char *name) {
  const char *top = getenv("abs_top_srcdir");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/graphs/%s", top ? top : ".", name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *text = calloc(1, 1 << 16);
  size_t n = text ? fread(text, 1, (1 << 16) - 1, f) : 0;
  fclose(f);
  if (text && !n) free(text), text = NULL;
  return text;
}

int main(void) {
  ref_rng_seed(&rng, 42);
  ctx = make_ctx_of(CLCNN_DOUBLE, NULL, 0);
  ctx32 = make_ctx_of(CLCNN_FLOAT, NULL, 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_fd(&cases[i]);
  /* the whole of tests/graphs/fanout.txt: a tensor read by a conv, an add and a concat, a
   * transposed conv, a reshape, an upsample and two losses (BCE on 4x4x5, smooth L1 on 2x8x8) */
  char *fan = graph_file("fanout.txt");
  if (tap_ok(fan != NULL, "tests/graphs/fanout.txt is readable")) {
    struct gcase g = {"tests/graphs/fanout.txt as a whole", fan, 2, {{"mask", 0, 80, 0}, {"loss1", 0, 128, 0}}, 2};
    check_fd(&g);
  }
  free(fan);
  check_fusion();
  check_liveness();
  check_api();
  clcnn_ctx_destroy(ctx32);
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
