/* tests/test_replicas.c - data parallel training in one process (clcnn_replicas_*), on two PoCL
 * CPU devices (POCL_DEVICES="pthread pthread", set here when the environment does not set it):
 *
 *   - a net with conv, relu, max pooling, dropout and linear layers, in double: two replicas
 *     splitting global batches of 7 (4 + 3) and 5 (3 + 2) match one net on the whole batch over 4
 *     Adam steps - the loss, every reduced gradient and every parameter within 1e-12 relative, and
 *     the two replicas bit for bit equal; without clcnn_net_set_batch_offset the second replica's
 *     dropout masks differ and so do the gradients (the check sees the offset);
 *   - a global batch of 1: the second replica sits the step out and still matches;
 *   - three replicas on two devices (one device twice, in two contexts), 7 = 3 + 2 + 2;
 *   - batch norm (per-replica statistics): two identical runs give identical bytes, parameters and
 *     running statistics;
 *   - float: two replicas equal bit for bit, close to one net;
 *   - clcnn_replicas_split's shares; clcnn_device_list on lists, types and bad lists;
 *   - misuse: every refusal of create, reduce and a destroyed replica. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

static char devs[8][16];
static int ndev;

static clcnn_ctx *ctx_on(const char *dev, clcnn_precision prec) {
  clcnn_ctx_options o = {.device = dev, .precision = prec};
  char err[512];
  clcnn_ctx *c = NULL;
  if (clcnn_ctx_create(&c, &o, err, sizeof err)) tap_bail(err);
  return c;
}

static const char *model_drop =
    "input 2 8 8\n"
    "conv 4 kernel=3 pad=1\n"
    "relu\n"
    "maxpool 2\n"
    "dropout p=0.3\n"
    "flatten\n"
    "linear 5\n";
static const char *model_bn =
    "input 2 8 8\n"
    "conv 4 kernel=3 pad=1 bias=0\n"
    "batchnorm\n"
    "relu\n"
    "dropout p=0.2\n"
    "globalavgpool\n"
    "flatten\n"
    "linear 5\n";

static clcnn_net *make_net(clcnn_ctx *c, const char *text, int batch) {
  clcnn_net *n = NULL;
  char err[512];
  if (clcnn_net_from_text(c, text, "test", batch, &n, err, sizeof err)) tap_bail(err);
  if (clcnn_net_init_params(n, 5) || clcnn_net_set_seed(n, 9, 0) || clcnn_net_set_input_grad(n, 0))
    tap_bail("net setup");
  return n;
}

static clcnn_optim *make_opt(clcnn_net *n) {
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.lr = 0.01;
  clcnn_optim *o = NULL;
  if (clcnn_optim_create(n, &p, &o)) tap_bail("optimizer");
  return o;
}

/* All parameter values (grad 0) or gradients (grad 1) of a net of precision PREC, concatenated,
 * as doubles. */
static double *all_of(clcnn_net *n, clcnn_precision prec, int grad, size_t *total) {
  size_t t = 0, o = 0;
  int np = clcnn_net_num_params(n);
  for (int p = 0; p < np; p++) {
    clcnn_param_info i;
    clcnn_net_param_info(n, p, &i);
    t += i.count;
  }
  double *out = malloc(t * sizeof *out);
  float *f = malloc(t * sizeof *f);
  if (!out || !f) tap_bail("out of memory");
  for (int p = 0; p < np; p++) {
    clcnn_param_info i;
    clcnn_net_param_info(n, p, &i);
    void *dst = prec == CLCNN_DOUBLE ? (void *)(out + o) : (void *)(f + o);
    if (grad ? clcnn_net_grad_read(n, p, dst) : clcnn_net_param_read(n, p, dst)) tap_bail("read");
    o += i.count;
  }
  if (prec == CLCNN_FLOAT)
    for (size_t k = 0; k < t; k++) out[k] = f[k];
  free(f);
  *total = t;
  return out;
}

/* The largest |a - b| / (1e-300 + max |b|) over the arrays. */
static double rel_diff(const double *a, const double *b, size_t n) {
  double m = 0, d = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabs(b[i]) > m) m = fabs(b[i]);
    if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
  }
  return d / (m > 0 ? m : 1e-300);
}

/* Steps of one net on global batches against n replicas on devices devs_of[] (double), with the
 * batch offsets set when offsets; returns the worst relative difference of loss, gradients and
 * parameters over the steps, and whether the replicas stayed bit for bit equal. */
static double run_pair(const char *text, clcnn_precision prec, int nrep, const int *dev_of, const int *batches, int steps, int offsets,
                       int *replicas_equal) {
  clcnn_ctx *c1 = ctx_on(devs[0], prec);
  int maxb = 0;
  for (int s = 0; s < steps; s++) maxb = batches[s] > maxb ? batches[s] : maxb;
  clcnn_net *one = make_net(c1, text, maxb);
  clcnn_optim *o1 = make_opt(one);
  clcnn_ctx *cr[4];
  clcnn_net *nr[4];
  clcnn_optim *or[4];
  for (int r = 0; r < nrep; r++) {
    cr[r] = ctx_on(devs[dev_of[r]], prec);
    nr[r] = make_net(cr[r], text, maxb);
    or[r] = make_opt(nr[r]);
  }
  clcnn_replicas *g = NULL;
  char err[512];
  if (clcnn_replicas_create(nr, nrep, &g, err, sizeof err)) tap_bail(err);
  size_t in = clcnn_net_input_size(one), classes = clcnn_net_output_size(one), esz = clcnn_ctx_elem_size(c1);
  double worst = 0;
  *replicas_equal = 1;
  for (int s = 0; s < steps; s++) {
    int B = batches[s];
    double *xd = dalloc(B * in);
    int32_t *y = malloc(B * sizeof *y);
    for (size_t i = 0; i < B * in; i++) xd[i] = ref_rng_range(&rng, -1, 1);
    char *x = to_host(c1, xd, B * in);
    free(xd);
    for (int i = 0; i < B; i++) y[i] = (int32_t)(ref_rng_next(&rng) % classes);
    if (clcnn_net_zero_grad(one) || clcnn_net_forward(one, x, B) || clcnn_net_backward(one, y)) tap_bail("one net");
    double loss1, lossr = 0;
    clcnn_net_loss(one, &loss1);
    for (int r = 0; r < nrep; r++) {
      int first, cnt;
      clcnn_replicas_split(g, B, r, &first, &cnt);
      if (!cnt) continue;
      if ((offsets && clcnn_net_set_batch_offset(nr[r], first)) || clcnn_net_zero_grad(nr[r]) ||
          clcnn_net_forward(nr[r], x + first * in * esz, cnt) || clcnn_net_backward(nr[r], y + first))
        tap_bail(clcnn_ctx_last_error(cr[r]));
    }
    if (clcnn_replicas_reduce(g)) tap_bail(clcnn_replicas_last_error(g));
    for (int r = 0; r < nrep; r++) {
      int first, cnt;
      clcnn_replicas_split(g, B, r, &first, &cnt);
      double l;
      if (cnt) clcnn_net_loss(nr[r], &l), lossr += l * cnt / B;
    }
    double dl = fabs(lossr - loss1) / fabs(loss1);
    if (dl > worst) worst = dl;
    size_t t;
    double *g1 = all_of(one, prec, 1, &t);
    for (int r = 0; r < nrep; r++) {
      double *gr = all_of(nr[r], prec, 1, &t), d = rel_diff(gr, g1, t);
      if (d > worst) worst = d;
      free(gr);
    }
    free(g1);
    clcnn_optim_step(o1);
    for (int r = 0; r < nrep; r++) clcnn_optim_step(or[r]);
    free(x), free(y);
  }
  size_t t;
  double *p1 = all_of(one, prec, 0, &t), *p0 = all_of(nr[0], prec, 0, &t);
  double d = rel_diff(p0, p1, t);
  if (d > worst) worst = d;
  for (int r = 1; r < nrep; r++) {
    double *pr = all_of(nr[r], prec, 0, &t);
    if (memcmp(pr, p0, t * sizeof *pr)) *replicas_equal = 0;
    free(pr);
  }
  free(p1), free(p0);
  clcnn_replicas_destroy(g);
  for (int r = 0; r < nrep; r++) clcnn_optim_destroy(or[r]), clcnn_net_destroy(nr[r]), clcnn_ctx_destroy(cr[r]);
  clcnn_optim_destroy(o1), clcnn_net_destroy(one), clcnn_ctx_destroy(c1);
  return worst;
}

/* Two replicas of the batch-norm net for STEPS steps of batch 6 in precision PREC: the bytes of
 * replica 0's parameters and buffers (out, *bytes) and whether the replicas' parameters agree. */
static unsigned char *bn_run(clcnn_precision prec, int steps, size_t *bytes, int *equal) {
  clcnn_ctx *c[2] = {ctx_on(devs[0], prec), ctx_on(devs[1], prec)};
  clcnn_net *n[2] = {make_net(c[0], model_bn, 6), make_net(c[1], model_bn, 6)};
  clcnn_optim *o[2] = {make_opt(n[0]), make_opt(n[1])};
  clcnn_replicas *g = NULL;
  char err[512];
  if (clcnn_replicas_create(n, 2, &g, err, sizeof err)) tap_bail(err);
  size_t esz = clcnn_ctx_elem_size(c[0]), in = clcnn_net_input_size(n[0]);
  ref_rng own; /* the same data in every call */
  ref_rng_seed(&own, 99);
  double *xd = dalloc(6 * in);
  int32_t y[6];
  for (int s = 0; s < steps; s++) {
    for (size_t i = 0; i < 6 * in; i++) xd[i] = ref_rng_range(&own, -1, 1);
    void *x = to_host(c[0], xd, 6 * in);
    for (int i = 0; i < 6; i++) y[i] = (int32_t)(ref_rng_next(&own) % 5);
    for (int r = 0; r < 2; r++) {
      int first, cnt;
      clcnn_replicas_split(g, 6, r, &first, &cnt);
      if (clcnn_net_set_batch_offset(n[r], first) || clcnn_net_zero_grad(n[r]) ||
          clcnn_net_forward(n[r], (char *)x + first * in * esz, cnt) || clcnn_net_backward(n[r], y + first))
        tap_bail(clcnn_ctx_last_error(c[r]));
    }
    if (clcnn_replicas_reduce(g)) tap_bail(clcnn_replicas_last_error(g));
    clcnn_optim_step(o[0]), clcnn_optim_step(o[1]);
    clcnn_net_finish(n[0]), clcnn_net_finish(n[1]); /* x is read asynchronously */
    free(x);
  }
  free(xd);
  size_t total = 0;
  for (int p = 0; p < clcnn_net_num_params(n[0]); p++) {
    clcnn_param_info i;
    clcnn_net_param_info(n[0], p, &i);
    total += i.count * esz;
  }
  for (int b = 0; b < clcnn_net_num_buffers(n[0]); b++) {
    clcnn_param_info i;
    clcnn_net_buffer_info(n[0], b, &i);
    total += i.count * 8;
  }
  unsigned char *out = calloc(total, 1), *other = calloc(total, 1);
  size_t off = 0, poff = 0;
  for (int p = 0; p < clcnn_net_num_params(n[0]); p++) {
    clcnn_param_info i;
    clcnn_net_param_info(n[0], p, &i);
    clcnn_net_param_read(n[0], p, out + off);
    clcnn_net_param_read(n[1], p, other + off);
    off += i.count * esz;
  }
  poff = off;
  for (int b = 0; b < clcnn_net_num_buffers(n[0]); b++) {
    clcnn_param_info i;
    clcnn_net_buffer_info(n[0], b, &i);
    clcnn_net_buffer_read(n[0], b, out + off);
    off += i.count * 8;
  }
  *equal = !memcmp(out, other, poff);
  free(other);
  clcnn_replicas_destroy(g);
  for (int r = 0; r < 2; r++) clcnn_optim_destroy(o[r]), clcnn_net_destroy(n[r]), clcnn_ctx_destroy(c[r]);
  *bytes = total;
  return out;
}

int main(void) {
  /* two CPU devices from PoCL, unless the environment chose its devices */
  setenv("POCL_DEVICES", "pthread pthread", 0);
  char err[512];
  int cnt = 0;
  if (clcnn_device_list("cpu:all", devs, 8, &ndev, err, sizeof err)) tap_bail(err);
  if (ndev < 2) {
    char why[256];
    snprintf(why, sizeof why, "two OpenCL CPU devices are needed, %d found (PoCL: POCL_DEVICES=\"pthread pthread\")",
             ndev);
    tap_bail(why);
  }
  tap_diag("devices %s and %s", devs[0], devs[1]);

  /* ---- the device list ---- */
  char ids[8][16];
  char two[40];
  snprintf(two, sizeof two, "%s,%s", devs[1], devs[0]);
  tap_ok(!clcnn_device_list(two, ids, 8, &cnt, err, sizeof err) && cnt == 2 && !strcmp(ids[0], devs[1]) &&
             !strcmp(ids[1], devs[0]),
         "device list '%s': both, in its order", two);
  tap_ok(!clcnn_device_list("all", ids, 8, &cnt, err, sizeof err) && cnt >= ndev, "device list 'all': %d devices", cnt);
  tap_ok(!clcnn_device_list("cpu", ids, 8, &cnt, err, sizeof err) && cnt == 1, "device list 'cpu': one device");
  snprintf(two, sizeof two, "%s,%s", devs[0], devs[0]);
  tap_ok(clcnn_device_list(two, ids, 8, &cnt, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && cnt == 0 &&
             has_words(err, "named twice"),
         "device list '%s' refused: %s", two, err);
  tap_ok(clcnn_device_list("0:0,,0:1", ids, 8, &cnt, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             has_words(err, "empty item"),
         "device list '0:0,,0:1' refused: %s", err);
  tap_ok(clcnn_device_list("0:0,", ids, 8, &cnt, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && has_words(err, "empty"),
         "device list '0:0,' refused: %s", err);
  tap_ok(clcnn_device_list("0:0,0:999", ids, 8, &cnt, err, sizeof err) == CLCNN_ERR_NO_DEVICE && cnt == 0 &&
             has_words(err, "0:999"),
         "device list '0:0,0:999' refused: %s", err);
  tap_ok(clcnn_device_list("cpu:all", ids, 1, &cnt, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             has_words(err, "more than 1"),
         "device list with max 1 refused: %s", err);
  tap_ok(clcnn_device_list("no such device anywhere", ids, 8, &cnt, err, sizeof err) == CLCNN_ERR_NO_DEVICE,
         "device list of an unknown name refused: %s", err);
  tap_ok(clcnn_device_list(NULL, ids, 8, &cnt, err, sizeof err) == CLCNN_ERR_NULL_POINTER, "device list NULL refused");
  tap_ok(clcnn_device_list("cpu", NULL, 8, &cnt, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_device_list("cpu", ids, 8, NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
         "device list: NULL ids or count refused");
  tap_ok(clcnn_device_list("cpu", ids, 0, &cnt, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             has_words(err, "at least 1"),
         "device list with max 0 refused: %s", err);
  int gpus = 0;
  clcnn_status gs = clcnn_device_list("gpu:all", ids, 8, &gpus, err, sizeof err);
  tap_ok(gs == CLCNN_SUCCESS ? gpus >= 1 : gs == CLCNN_ERR_NO_DEVICE && has_words(err, "no device is a GPU"),
         "device list 'gpu:all': %s", gs ? err : "GPUs found");

  /* ---- the split ---- */
  {
    clcnn_ctx *c = ctx_on(devs[0], CLCNN_DOUBLE);
    clcnn_net *n[3] = {make_net(c, model_drop, 4), make_net(c, model_drop, 4), make_net(c, model_drop, 4)};
    clcnn_replicas *g = NULL;
    if (clcnn_replicas_create(n, 3, &g, err, sizeof err)) tap_bail(err);
    static const int cases[][4] = {{7, 3, 2, 2}, {6, 2, 2, 2}, {2, 1, 1, 0}, {0, 0, 0, 0}, {8, 3, 3, 2}};
    for (int k = 0; k < 5; k++) {
      int ok = 1, next = 0;
      for (int r = 0; r < 3; r++) {
        int first, count;
        ok &= !clcnn_replicas_split(g, cases[k][0], r, &first, &count) && count == cases[k][1 + r] && first == next;
        next += count;
      }
      tap_ok(ok && next == cases[k][0], "split of %d over 3 replicas: %d + %d + %d, contiguous", cases[k][0],
             cases[k][1], cases[k][2], cases[k][3]);
    }
    int first, count;
    tap_ok(clcnn_replicas_split(g, 4, 3, &first, &count) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_replicas_split(g, -1, 0, &first, &count) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_replicas_split(g, 4, 0, NULL, &count) == CLCNN_ERR_NULL_POINTER,
           "split: replica 3, batch -1, NULL refused");
    tap_ok(clcnn_replicas_count(g) == 3 && clcnn_replicas_count(NULL) == 0, "count");

    /* ---- misuse ---- */
    clcnn_replicas *h = NULL;
    tap_ok(clcnn_replicas_create(n, 1, &h, err, sizeof err) == CLCNN_ERR_STATE && !h && has_words(err, "another group"),
           "a net already in a group refused: %s", err);
    tap_ok(clcnn_replicas_reduce(g) == CLCNN_ERR_STATE && has_words(clcnn_replicas_last_error(g), "no replica has a backward"),
           "reduce before any backward refused: %s", clcnn_replicas_last_error(g));
    tap_ok(clcnn_replicas_set_world(g, 2, 0, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT &&
               has_words(clcnn_replicas_last_error(g), "do not fit"),
           "set_world: a world smaller than the group refused: %s", clcnn_replicas_last_error(g));
    tap_ok(clcnn_replicas_set_world(g, 5, 3, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_replicas_set_world(g, 5, -1, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT,
           "set_world: replicas past the world's end or a negative first refused");
    tap_ok(clcnn_replicas_set_world(g, 5, 0, NULL, NULL) == CLCNN_ERR_NULL_POINTER &&
               has_words(clcnn_replicas_last_error(g), "function to sum with"),
           "set_world: replicas elsewhere without a sum function refused: %s", clcnn_replicas_last_error(g));
    tap_ok(clcnn_replicas_set_world(NULL, 3, 0, NULL, NULL) == CLCNN_ERR_NULL_POINTER, "set_world: NULL group refused");
    clcnn_replicas_destroy(g);
    tap_ok(clcnn_replicas_create(n, 0, &h, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && has_words(err, "0 replicas"),
           "0 replicas refused: %s", err);
    tap_ok(clcnn_replicas_create(NULL, 2, &h, err, sizeof err) == CLCNN_ERR_NULL_POINTER, "NULL nets refused");
    tap_ok(clcnn_replicas_create(n, 2, NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER, "NULL out refused");
    clcnn_net *dup[2] = {n[0], n[0]};
    tap_ok(clcnn_replicas_create(dup, 2, &h, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && has_words(err, "same net"),
           "the same net twice refused: %s", err);
    clcnn_net *withnull[2] = {n[0], NULL};
    tap_ok(clcnn_replicas_create(withnull, 2, &h, err, sizeof err) == CLCNN_ERR_NULL_POINTER && has_words(err, "replica 1"),
           "a NULL replica refused: %s", err);
    clcnn_net *other = make_net(c, model_bn, 4);
    clcnn_net *mixed[2] = {n[0], other};
    tap_ok(clcnn_replicas_create(mixed, 2, &h, err, sizeof err) == CLCNN_ERR_SHAPE && has_words(err, "replica 1"),
           "replicas of two graphs refused: %s", err);
    clcnn_ctx *cf = ctx_on(devs[1], CLCNN_FLOAT);
    clcnn_net *nf = make_net(cf, model_drop, 4);
    clcnn_net *prec[2] = {n[0], nf};
    tap_ok(clcnn_replicas_create(prec, 2, &h, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && has_words(err, "float"),
           "replicas in two precisions refused: %s", err);
    /* a replica destroyed before its group */
    if (clcnn_replicas_create(n, 2, &h, err, sizeof err)) tap_bail(err);
    clcnn_net_destroy(n[1]);
    n[1] = NULL;
    tap_ok(clcnn_replicas_reduce(h) == CLCNN_ERR_STATE && has_words(clcnn_replicas_last_error(h), "destroyed"),
           "reduce with a destroyed replica refused: %s", clcnn_replicas_last_error(h));
    tap_ok(clcnn_replicas_broadcast(h) == CLCNN_ERR_STATE, "broadcast with a destroyed replica refused");
    clcnn_replicas_destroy(h);
    tap_ok(clcnn_replicas_reduce(NULL) == CLCNN_ERR_NULL_POINTER && clcnn_replicas_broadcast(NULL) == CLCNN_ERR_NULL_POINTER,
           "NULL group refused");
    clcnn_replicas_destroy(NULL);
    tap_ok(clcnn_net_set_batch_offset(n[0], -1) == CLCNN_ERR_INVALID_ARGUMENT, "a negative batch offset refused");
    clcnn_net_destroy(n[0]), clcnn_net_destroy(n[2]), clcnn_net_destroy(other), clcnn_net_destroy(nf);
    clcnn_ctx_destroy(cf), clcnn_ctx_destroy(c);
  }

  /* ---- one net against replicas, in double ---- */
  int eq;
  static const int b75[4] = {7, 5, 7, 5}, b1[3] = {1, 1, 2};
  const int two_devs[2] = {0, 1}, three[3] = {0, 1, 0};
  double w = run_pair(model_drop, CLCNN_DOUBLE, 2, two_devs, b75, 4, 1, &eq);
  tap_ok(w <= 1e-12, "2 replicas, batches 7 (4+3) and 5 (3+2), 4 Adam steps: loss, gradients and weights as one net "
         "(worst relative difference %.2e)", w);
  tap_ok(eq, "2 replicas: their weights equal bit for bit");
  w = run_pair(model_drop, CLCNN_DOUBLE, 2, two_devs, b75, 2, 0, &eq);
  tap_ok(w > 1e-6, "without the batch offsets the second replica's dropout differs (relative difference %.2e)", w);
  w = run_pair(model_drop, CLCNN_DOUBLE, 2, two_devs, b1, 3, 1, &eq);
  tap_ok(w <= 1e-12 && eq, "global batches of 1 (the second replica sits out) and 2: as one net (%.2e)", w);
  w = run_pair(model_drop, CLCNN_DOUBLE, 3, three, b75, 3, 1, &eq);
  tap_ok(w <= 1e-12 && eq, "3 replicas on 2 devices, 7 = 3+2+2 and 5 = 2+2+1: as one net (%.2e)", w);

  /* float: one step (Adam's first step moves every weight by lr whatever the gradient's size, so
   * later steps would compare rounding, not the reduction) */
  static const int b7[1] = {7};
  w = run_pair(model_drop, CLCNN_FLOAT, 2, two_devs, b7, 1, 1, &eq);
  tap_ok(w <= 1e-5 && eq, "float, 2 replicas, 7 = 4+3, 1 step: as one net within 1e-5 (%.2e), replicas equal", w);

  /* ---- batch norm: identical runs give identical bytes ---- */
  size_t nb1, nb2;
  int e1, e2;
  unsigned char *r1 = bn_run(CLCNN_DOUBLE, 3, &nb1, &e1), *r2 = bn_run(CLCNN_DOUBLE, 3, &nb2, &e2);
  tap_ok(nb1 == nb2 && !memcmp(r1, r2, nb1), "batch norm, double: two identical runs, identical bytes (%zu)", nb1);
  tap_ok(e1 && e2, "batch norm, double: the replicas' weights equal bit for bit");
  free(r1), free(r2);
  r1 = bn_run(CLCNN_FLOAT, 3, &nb1, &e1), r2 = bn_run(CLCNN_FLOAT, 3, &nb2, &e2);
  tap_ok(nb1 == nb2 && !memcmp(r1, r2, nb1), "batch norm, float: two identical runs, identical bytes (%zu)", nb1);
  tap_ok(e1 && e2, "batch norm, float: the replicas' weights equal bit for bit");
  free(r1), free(r2);
  return tap_done();
}
