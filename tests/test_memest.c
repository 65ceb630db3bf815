/* tests/test_memest.c - will it fit: clcnn_net_memory_estimate() against what a training step
 * really allocates. For each example model, batch size, optimizer and GEMM backend, a fresh
 * context builds the net at batch 1 and estimates the batch without allocating it; then the net
 * is built at that batch and takes one step (forward, backward, optimizer step), and the peak
 * and the largest buffer that clcnn_ctx_memory() and clcnn_ctx_largest_buffer() report must be
 * the estimate's total and largest. The parts are checked against the parameter list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

static const char *srcdir(void) {
  const char *d = getenv("abs_top_srcdir");
  return d && *d ? d : ".";
}

/* A small net whose weight gradients are long, thin products: both GEMMs split K on a big batch. */
static const char thin[] = "input 16 1 1\nlinear 10\n";

/* MODEL: a file in examples/ or, as "graphs/NAME", in tests/graphs/; or "thin". */
static clcnn_net *load(clcnn_ctx *ctx, const char *model, int batch) {
  char path[1024], err[1024];
  snprintf(path, sizeof path, "%s/%s/%s", srcdir(), strncmp(model, "graphs/", 7) ? "examples" : "tests", model);
  clcnn_net *net = NULL;
  if (!strcmp(model, "thin") ? clcnn_net_from_text(ctx, thin, "thin", batch, &net, err, sizeof err)
                             : clcnn_net_from_file(ctx, path, batch, &net, err, sizeof err)) {
    tap_diag("%s", err);
    return NULL;
  }
  clcnn_net_set_input_grad(net, 0); /* as clcnn-train */
  return net;
}

struct optcase {
  const char *name;
  clcnn_optim_kind kind;
  double momentum;
  int slots;
};
static const struct optcase optims[] = {
    {"sgd", CLCNN_OPTIM_SGD, 0, 0}, {"sgd+momentum", CLCNN_OPTIM_SGD, 0.9, 1}, {"adam", CLCNN_OPTIM_ADAM, 0, 2}};

static double worst_ratio_lo = 1e9, worst_ratio_hi = 0;

/* Parameters (weights and biases) and batchnorm's running statistics, in bytes, from the
 * net's own lists. */
static void param_bytes(clcnn_net *net, size_t esz, size_t *params, size_t *buffers) {
  *params = *buffers = 0;
  clcnn_param_info info;
  for (int i = 0; i < clcnn_net_num_params(net); i++)
    if (!clcnn_net_param_info(net, i, &info)) *params += info.count * esz;
  for (int i = 0; i < clcnn_net_num_buffers(net); i++)
    if (!clcnn_net_buffer_info(net, i, &info) && info.dtype == CLCNN_DTYPE_REAL) *buffers += info.count * esz;
}

/* A training step's losses: the labels for a net with one cross-entropy per sample, else targets
 * for each of its losses (labels or reals). */
static int backward(clcnn_net *net, const int32_t *y, int batch) {
  int nl = clcnn_net_num_losses(net);
  clcnn_loss_info li;
  if (nl == 1 && !clcnn_net_loss_info(net, 0, &li) && li.type == CLCNN_LAYER_XENT_LOSS && li.targets == 1)
    return clcnn_net_backward(net, y) == CLCNN_SUCCESS;
  void *t[8] = {0};
  int ok = nl <= 8;
  for (int i = 0; i < nl && ok; i++) {
    ok = !clcnn_net_loss_info(net, i, &li);
    size_t m = (size_t)batch * li.targets;
    ok = ok && (t[i] = malloc(m * 8 + 1)) != NULL;
    for (size_t j = 0; ok && j < m; j++)
      if (li.classes) ((int32_t *)t[i])[j] = (int32_t)(j % li.classes);
      else ((float *)t[i])[j] = (float)(j % 7) / 7.0f;
    ok = ok && clcnn_net_set_target(net, li.loss, t[i]) == CLCNN_SUCCESS;
  }
  ok = ok && clcnn_net_backward_losses(net) == CLCNN_SUCCESS;
  clcnn_net_wait_inputs(net); /* the targets are copied from t on the event chain */
  for (int i = 0; i < 8; i++) free(t[i]);
  return ok;
}

static void one_case(const char *model, int batch, const struct optcase *oc, const char *gemm) {
  char what[160];
  snprintf(what, sizeof what, "%s batch %d %s gemm %s", model, batch, oc->name, gemm);
  clcnn_ctx *ctx = open_ctx(gemm);
  clcnn_optim_params op;
  clcnn_optim_defaults(oc->kind, &op);
  op.momentum = oc->momentum;

  /* the estimate, from a net built at batch 1 */
  size_t base = 0;
  clcnn_ctx_memory(ctx, &base, NULL, NULL);
  clcnn_net *small = load(ctx, model, 1);
  if (!small) {
    tap_ok(0, "%s: the model loads", what);
    clcnn_ctx_destroy(ctx);
    return;
  }
  size_t now0, now1;
  uint64_t a0, a1;
  clcnn_memory_estimate est, est_small;
  clcnn_ctx_memory(ctx, &now0, NULL, &a0);
  clcnn_status st = clcnn_net_memory_estimate(small, batch, &op, &est);
  clcnn_ctx_memory(ctx, &now1, NULL, &a1);
  tap_ok(st == CLCNN_SUCCESS && a1 == a0 && now1 == now0, "%s: estimated without allocating (%s)", what,
         st ? clcnn_ctx_last_error(ctx) : "ok");
  size_t params, buffers;
  param_bytes(small, clcnn_ctx_elem_size(ctx), &params, &buffers);
  tap_ok(est.parameters == params + buffers && est.gradients == params && est.optimizer == oc->slots * params,
         "%s: parameters %zu (expected %zu), gradients %zu (%zu), optimizer state %zu (%d x %zu)", what,
         est.parameters, params + buffers, est.gradients, params, est.optimizer, oc->slots, params);
  size_t sum = est.parameters + est.gradients + est.optimizer + est.activations + est.scratch;
  tap_ok(est.total >= sum && est.largest > 0 && est.largest <= est.total,
         "%s: the parts add up to %zu, the peak is %zu, the largest buffer %zu", what, sum, est.total, est.largest);
  /* at batch 1 itself the small net's figure is its own */
  clcnn_net_memory_estimate(small, 1, &op, &est_small);
  tap_ok(est_small.total <= est.total && (batch == 1 ? est_small.total == est.total : est_small.total < est.total),
         "%s: batch 1 needs %zu, batch %d %zu", what, est_small.total, batch, est.total);
  clcnn_net_destroy(small);

  /* the truth: a fresh context, the net at that batch, one training step */
  clcnn_ctx_destroy(ctx);
  ctx = open_ctx(gemm);
  clcnn_ctx_memory(ctx, &base, NULL, NULL);
  clcnn_net *net = load(ctx, model, batch);
  clcnn_optim *opt = NULL;
  int ok = net && !clcnn_net_init(net, CLCNN_INIT_DEFAULT, 1) && !clcnn_optim_create(net, &op, &opt);
  /* the same estimate from the net at its full batch, before its first step */
  clcnn_memory_estimate est_full;
  ok = ok && !clcnn_net_memory_estimate(net, batch, &op, &est_full);
  size_t in = ok ? clcnn_net_input_size(net) : 0, k = ok ? clcnn_net_output_size(net) : 1;
  float *x = malloc(batch * in * sizeof *x + 1);
  int32_t *y = malloc(batch * sizeof *y);
  for (size_t i = 0; x && i < batch * in; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  for (int i = 0; y && i < batch; i++) y[i] = (int32_t)(i % k);
  double loss = 0;
  ok = ok && x && y && !clcnn_net_forward(net, x, batch) && backward(net, y, batch) && !clcnn_optim_step(opt) &&
       !clcnn_net_loss(net, &loss) && !clcnn_net_finish(net);
  if (!ok) tap_diag("%s: %s", what, clcnn_ctx_last_error(ctx));
  size_t peak = 0;
  clcnn_ctx_memory(ctx, NULL, &peak, NULL);
  peak -= base;
  size_t largest = clcnn_ctx_largest_buffer(ctx);
  tap_ok(ok && est_full.total == est.total && est_full.largest == est.largest,
         "%s: a step ran; the estimate from the full net is the same (%zu)", what, est_full.total);
  double ratio = peak ? (double)est.total / peak : 0;
  if (ratio < worst_ratio_lo) worst_ratio_lo = ratio;
  if (ratio > worst_ratio_hi) worst_ratio_hi = ratio;
  tap_ok(est.total == peak, "%s: estimate %zu bytes, peak after a step %zu (ratio %.4f)", what, est.total, peak,
         ratio);
  tap_ok(est.largest == largest, "%s: largest buffer estimated %zu, allocated %zu", what, est.largest, largest);
  /* a second step allocates nothing more */
  uint64_t allocs0, allocs1;
  clcnn_ctx_memory(ctx, NULL, NULL, &allocs0);
  ok = ok && !clcnn_net_forward(net, x, batch) && backward(net, y, batch) && !clcnn_optim_step(opt) &&
       !clcnn_net_finish(net);
  clcnn_ctx_memory(ctx, NULL, NULL, &allocs1);
  tap_ok(ok && allocs1 == allocs0, "%s: a second step allocates nothing (%llu buffers)", what,
         (unsigned long long)(allocs1 - allocs0));
  free(x);
  free(y);
  clcnn_optim_destroy(opt);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

/* Bad arguments are refused with a reason, a batch past the kernels' int indices as a shape
 * error, and none of it allocates. */
static void bad_arguments(void) {
  clcnn_ctx *ctx = open_ctx("clcnn");
  clcnn_net *net = load(ctx, "cifar10.txt", 1);
  if (!net) {
    tap_ok(0, "cifar10 loads");
    clcnn_ctx_destroy(ctx);
    return;
  }
  clcnn_memory_estimate e;
  clcnn_optim_params op;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &op);
  uint64_t a0, a1;
  clcnn_ctx_memory(ctx, NULL, NULL, &a0);
  tap_ok(clcnn_net_memory_estimate(NULL, 1, &op, &e) == CLCNN_ERR_NULL_POINTER, "NULL net refused");
  tap_ok(clcnn_net_memory_estimate(net, 1, &op, NULL) == CLCNN_ERR_NULL_POINTER, "NULL out refused");
  tap_ok(clcnn_net_memory_estimate(net, 0, &op, &e) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(clcnn_ctx_last_error(ctx), "batch 0"),
         "batch 0 refused: %s", clcnn_ctx_last_error(ctx));
  tap_ok(clcnn_net_memory_estimate(net, -5, &op, &e) == CLCNN_ERR_INVALID_ARGUMENT, "batch -5 refused");
  op.kind = (clcnn_optim_kind)7;
  tap_ok(clcnn_net_memory_estimate(net, 1, &op, &e) == CLCNN_ERR_INVALID_ARGUMENT, "optimizer kind 7 refused: %s",
         clcnn_ctx_last_error(ctx));
  /* cifar10's second conv: its 32*3*3 x (batch * 16*16) im2col passes INT_MAX elements at batch
   * 29128 (2147483647 / 73728 = 29127.3) */
  tap_ok(clcnn_net_memory_estimate(net, 29127, NULL, &e) == CLCNN_SUCCESS, "batch 29127 can be built");
  tap_ok(clcnn_net_memory_estimate(net, 29128, NULL, &e) == CLCNN_ERR_SHAPE &&
             strstr(clcnn_ctx_last_error(ctx), "im2col"),
         "batch 29128 cannot: %s", clcnn_ctx_last_error(ctx));
  clcnn_ctx_memory(ctx, NULL, NULL, &a1);
  tap_ok(a1 == a0, "none of it allocated");
  /* no optimizer: no state; eval-only nets use that */
  tap_ok(!clcnn_net_memory_estimate(net, 8, NULL, &e) && e.optimizer == 0, "no optimizer, no state");
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

int main(void) {
  static const struct {
    const char *model;
    int batches[3];
  } models[] = {{"lenet5.txt", {1, 7, 64}}, {"fashion-bn.txt", {1, 5, 32}}, {"cifar10.txt", {3, 16, 0}},
                {"resnet-fashion.txt", {2, 9, 0}}, {"graphs/unet-tiny.txt", {1, 6, 0}}, {"graphs/fanout.txt", {3, 0, 0}}};
  for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
    for (int b = 0; b < 3 && models[m].batches[b]; b++)
      for (int o = 0; o < 3; o++) one_case(models[m].model, models[m].batches[b], &optims[o], "clcnn");
  /* CLBlast's products reserve other scratch (split-K parts only) */
  for (int o = 0; o < 3; o += 2) one_case("lenet5.txt", 9, &optims[o], "clblast");
  one_case("fashion-bn.txt", 4, &optims[1], "clblast");
  /* cifar10's second conv at batch 128: its weight gradient from the im2col panels splits K */
  one_case("cifar10.txt", 128, &optims[2], "clcnn");
  /* dW (10 x 16) summed over 4096 and 8192 samples: split K in clcnn's GEMM and in CLBlast's */
  one_case("thin", 4096, &optims[1], "clcnn");
  one_case("thin", 8192, &optims[0], "clblast");
  tap_diag("estimate / peak: from %.4f to %.4f", worst_ratio_lo, worst_ratio_hi);
  bad_arguments();
  return tap_done();
}
