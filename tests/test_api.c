/* tests/test_api.c - the host paths that `make coverage` found no test running: the API's
 * argument checks (each wrong call gets its status and words naming what was wrong), the He
 * and Xavier initialisations against their distributions, dropout's backward in eval mode, a
 * work-group size from $CLCNN_LWS, and the data loader's refusals. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

static clcnn_ctx *ctx;

/* The status is WANT and the last error mentions every word in WORDS (|-separated). */
static int says(clcnn_status got, clcnn_status want, const char *words) {
  const char *err = clcnn_ctx_last_error(ctx);
  int ok = got == want;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|")) ok &= strstr(err, w) != NULL;
  if (!ok) tap_diag("got %s, wanted %s; error: %s", clcnn_status_name(got), clcnn_status_name(want), err);
  return ok;
}

/* Like says(), for the calls that write their message into ERR instead of the context. */
static int says_err(clcnn_status got, clcnn_status want, const char *err, const char *words) {
  int ok = got == want;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|")) ok &= strstr(err, w) != NULL;
  if (!ok) tap_diag("got %s, wanted %s; error: %s", clcnn_status_name(got), clcnn_status_name(want), err);
  return ok;
}

static void layer_checks(void) {
  clcnn_net *net = NULL;
  clcnn_status st = clcnn_net_create(ctx, 1000, 1000, 1000, 1000, &net);
  tap_ok(says(st, CLCNN_ERR_SHAPE, "too large|1000") && !net, "an input of 10^12 elements: %s", clcnn_ctx_last_error(ctx));
  if (clcnn_net_create(ctx, 4, 2, 5, 5, &net)) tap_bail(clcnn_ctx_last_error(ctx));
  st = clcnn_net_add_leaky_relu(net, NAN);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "slope|not finite"), "leaky_relu with a NaN slope: %s", clcnn_ctx_last_error(ctx));
  st = clcnn_net_add_leaky_relu(net, INFINITY);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "not finite"), "leaky_relu with an infinite slope");
  clcnn_pool2d_params bad = {.kh = 0, .kw = 2};
  st = clcnn_net_add_maxpool2d(net, &bad);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "maxpool2d|kernel 0x2|must be positive"), "maxpool2d kernel 0x2: %s",
         clcnn_ctx_last_error(ctx));
  clcnn_pool2d_params neg = {.kh = 2, .kw = 2, .pad_h = -1};
  st = clcnn_net_add_avgpool2d(net, &neg);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "avgpool2d|pad -1x0"), "avgpool2d pad -1: %s", clcnn_ctx_last_error(ctx));
  tap_ok(clcnn_net_num_layers(net) == 0, "refused layers are not added (%d layers)", clcnn_net_num_layers(net));

  /* the describe names of the layers no other test describes */
  if (clcnn_net_add_sigmoid(net) || clcnn_net_add_tanh(net) || clcnn_net_add_global_avgpool(net)) tap_bail(clcnn_ctx_last_error(ctx));
  char buf[128];
  const char *want[] = {"sigmoid", "tanh", "global_avgpool"};
  for (int i = 0; i < 3; i++)
    tap_ok(!strcmp(clcnn_net_layer_describe(net, i, buf, sizeof buf), want[i]), "layer %d describes itself as '%s' (%s)", i,
           want[i], buf);
  tap_ok(!strcmp(clcnn_net_layer_describe(net, 3, buf, sizeof buf), "(no layer 3)") &&
             !strcmp(clcnn_net_layer_describe(net, -1, buf, sizeof buf), "(no layer -1)"),
         "a layer that does not exist: '(no layer N)'");
  if (clcnn_net_add_flatten(net)) tap_bail(clcnn_ctx_last_error(ctx));
  st = clcnn_net_add_linear(net, 0, 1);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "linear|out_features 0|positive"), "linear with 0 outputs: %s", clcnn_ctx_last_error(ctx));
  st = clcnn_net_add_linear(net, 1 << 30, 1);
  tap_ok(says(st, CLCNN_ERR_SHAPE, "linear|too large"), "linear with 2^30 outputs at batch 4: %s", clcnn_ctx_last_error(ctx));
  st = clcnn_net_init(net, (clcnn_init)9, 1);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "unknown rule 9"), "clcnn_net_init with rule 9: %s", clcnn_ctx_last_error(ctx));
  float dout[4 * 2] = {0};
  st = clcnn_net_backward_from(net, dout);
  tap_ok(says(st, CLCNN_ERR_STATE, "no forward pass"), "backward_from before any forward: %s", clcnn_ctx_last_error(ctx));
  clcnn_net_destroy(net);
}

/* Mean and standard deviation of N floats, and their largest magnitude. */
static void moments(const float *v, size_t n, double *mean, double *sd, double *amax) {
  double s = 0, s2 = 0, m = 0;
  for (size_t i = 0; i < n; i++) s += v[i];
  *mean = s / n;
  for (size_t i = 0; i < n; i++) {
    s2 += (v[i] - *mean) * (v[i] - *mean);
    if (fabs(v[i]) > m) m = fabs(v[i]);
  }
  *sd = sqrt(s2 / (n - 1));
  *amax = m;
}

/* He: N(0, 2/fan_in). Xavier: U(-b, b), b = sqrt(6/(fan_in+fan_out)), sd b/sqrt(3). torch.nn.init's
 * fans: a conv's fan_in is (in/groups)*kh*kw, its fan_out out*kh*kw; a linear's in and out. Biases 0.
 * The sample sd of n values is within 4 standard errors (sd/sqrt(2n)) of the true one. */
static void init_checks(void) {
  clcnn_net *net = NULL;
  clcnn_conv2d_params conv = {.out_channels = 16, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .groups = 2, .bias = 1};
  if (clcnn_net_create(ctx, 2, 8, 6, 6, &net) || clcnn_net_add_conv2d(net, &conv) || clcnn_net_add_flatten(net) ||
      clcnn_net_add_linear(net, 10, 1))
    tap_bail(clcnn_ctx_last_error(ctx));
  const double fan_in[2] = {4 * 9, 16 * 36}, fan_out[2] = {16 * 9, 10};
  for (int rule = CLCNN_INIT_HE; rule <= CLCNN_INIT_DCGAN; rule++) {
    const char *rname = rule == CLCNN_INIT_HE ? "He" : rule == CLCNN_INIT_XAVIER ? "Xavier" : "DCGAN";
    clcnn_status st = clcnn_net_init(net, (clcnn_init)rule, 7);
    if (!tap_ok(st == CLCNN_SUCCESS, "clcnn_net_init(%s)", rname)) continue;
    for (int p = 0; p < clcnn_net_num_params(net); p++) {
      clcnn_param_info info;
      float *v;
      if (clcnn_net_param_info(net, p, &info) || !(v = malloc(info.count * sizeof *v))) tap_bail("param_info");
      if (clcnn_net_param_read(net, p, v)) tap_bail(clcnn_ctx_last_error(ctx));
      double mean, sd, amax;
      moments(v, info.count, &mean, &sd, &amax);
      if (info.ndim == 1) {
        tap_ok(amax == 0, "%s: %s is all zeros (largest |v| %g)", rname, info.name, amax);
      } else {
        int k = info.layer == 0 ? 0 : 1;
        double n = (double)info.count;
        if (rule == CLCNN_INIT_HE) {
          double want = sqrt(2.0 / fan_in[k]);
          tap_ok(fabs(sd - want) <= 4 * want / sqrt(2 * n) && fabs(mean) <= 4 * want / sqrt(n),
                 "He: %s (%zu values, fan_in %g): sd %.5f, want %.5f; mean %.5f", info.name, info.count, fan_in[k], sd, want,
                 mean);
        } else if (rule == CLCNN_INIT_DCGAN) {
          tap_ok(fabs(sd - 0.02) <= 4 * 0.02 / sqrt(2 * n) && fabs(mean) <= 4 * 0.02 / sqrt(n),
                 "DCGAN: %s (%zu values): sd %.5f, want 0.02; mean %.5f", info.name, info.count, sd, mean);
        } else {
          double b = sqrt(6.0 / (fan_in[k] + fan_out[k])), want = b / sqrt(3.0);
          tap_ok(amax <= b && amax > 0.98 * b && fabs(sd - want) <= 4 * want / sqrt(2 * n),
                 "Xavier: %s (fan_in %g, fan_out %g): every |v| <= %.5f (largest %.5f), sd %.5f, want %.5f", info.name,
                 fan_in[k], fan_out[k], b, amax, sd, want);
        }
      }
      free(v);
    }
  }
  clcnn_net_destroy(net);
}

/* In eval mode dropout is the identity, forward and backward. */
static void dropout_eval(void) {
  enum { N = 3, C = 5, H = 2, W = 3, E = N * C * H * W };
  clcnn_net *net = NULL;
  if (clcnn_net_create(ctx, N, C, H, W, &net) || clcnn_net_add_dropout(net, 0.5) || clcnn_net_set_input_grad(net, 1))
    tap_bail(clcnn_ctx_last_error(ctx));
  float x[E], dy[E], y[E], dx[E];
  for (int i = 0; i < E; i++) x[i] = (float)(i % 7) - 2.5f, dy[i] = (float)((i * 5) % 11) - 4.25f, dx[i] = NAN;
  clcnn_status st;
  if ((st = clcnn_net_set_training(net, 0)) || (st = clcnn_net_forward(net, x, N)) || (st = clcnn_net_backward_from(net, dy)) ||
      (st = clcnn_net_read_output(net, y)) || (st = clcnn_net_read_input_grad(net, dx)))
    tap_ok(0, "dropout in eval mode: %s", clcnn_ctx_last_error(ctx));
  else
    tap_ok(!memcmp(x, y, sizeof x) && !memcmp(dy, dx, sizeof dy), "dropout(0.5) in eval mode passes x forward and dy back unchanged");
  clcnn_net_destroy(net);
}

static void optim_checks(void) {
  clcnn_net *net = NULL;
  if (clcnn_net_create(ctx, 2, 3, 1, 1, &net) || clcnn_net_add_flatten(net) || clcnn_net_add_linear(net, 4, 1) ||
      clcnn_net_init_params(net, 1))
    tap_bail(clcnn_ctx_last_error(ctx));
  clcnn_optim_params p;
  clcnn_optim *opt = NULL;
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  p.momentum = 0.9, p.dampening = NAN;
  clcnn_status st = clcnn_optim_create(net, &p, &opt);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "dampening|not finite") && !opt, "SGD with a NaN dampening: %s", clcnn_ctx_last_error(ctx));
  const clcnn_optim_kind kinds[2] = {CLCNN_OPTIM_ADAMW, CLCNN_OPTIM_RMSPROP};
  const char *names[2] = {"AdamW", "RMSprop"};
  float host[12];
  for (int i = 0; i < 2; i++) {
    clcnn_optim_defaults(kinds[i], &p);
    if (clcnn_optim_create(net, &p, &opt)) tap_bail(clcnn_ctx_last_error(ctx));
    st = clcnn_optim_state_read(opt, 0, 5, host);
    tap_ok(says(st, CLCNN_ERR_RANGE, "slot 5|out of range") && strstr(clcnn_ctx_last_error(ctx), names[i]),
           "%s's state slot 5 is refused, naming the optimizer: %s", names[i], clcnn_ctx_last_error(ctx));
    clcnn_optim_destroy(opt);
    opt = NULL;
  }
  /* a net that changed under its optimizer */
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &p);
  if (clcnn_optim_create(net, &p, &opt)) tap_bail(clcnn_ctx_last_error(ctx));
  if (clcnn_net_add_linear(net, 2, 1)) tap_bail(clcnn_ctx_last_error(ctx));
  st = clcnn_optim_step(opt);
  tap_ok(says(st, CLCNN_ERR_STATE, "4 parameter tensors|made for 2"), "a step after the net grew a layer: %s",
         clcnn_ctx_last_error(ctx));
  clcnn_optim_destroy(opt);
  clcnn_net_destroy(net);
}

static void model_checks(void) {
  char err[512];
  clcnn_net *net = NULL;
  clcnn_status st = clcnn_net_from_text(ctx, "input 1 8 8\nconv 4 kernel=3 bias=2\n", "m.txt", 2, &net, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "m.txt:2:|expected 0 or 1|bias") && !net, "bias=2: %s", err);
  st = clcnn_net_from_text(ctx, "input 1 8 8\nconv 4 kernel=3 dilation=0\n", "m.txt", 2, &net, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "m.txt:2:|dilation") && !net, "dilation=0: %s", err);
  st = clcnn_net_from_text(ctx, "input 1 8 8\nmaxpool 2 stride=0\n", "m.txt", 2, &net, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "m.txt:2:|stride") && !net, "maxpool stride=0: %s", err);
  st = clcnn_net_from_text(ctx, "input 1 8 8\navgpool 2 pad=x\n", "m.txt", 2, &net, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "m.txt:2:|pad") && !net, "avgpool pad=x: %s", err);
  /* im2col of a 1000x1000 kernel over a 2000x2000 plane: 10^6 x ~4*10^6 elements */
  st = clcnn_net_from_text(ctx, "input 1 2000 2000\nconv 2 kernel=1000\n", "m.txt", 1, &net, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_SHAPE, err, "m.txt:2:|conv2d|im2col buffer is too large") && !net, "a conv whose im2col is too large: %s",
         err);
  st = clcnn_net_from_text(ctx, "input 100000 100000 100000\n", "big.txt", 2, &net, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_SHAPE, err, "big.txt:1:1|input:|too large") && !net, "an input of 10^15 elements: %s", err);
}

static void data_checks(const char *tmp) {
  char err[512], d[256];
  clcnn_dataset *ds = NULL;
  /* data_batch_1.bin holds one record (3073 bytes); data_batch_2.bin is a directory */
  snprintf(d, sizeof d, "%s/cifar", tmp);
  char b1[300], b2[300];
  snprintf(b1, sizeof b1, "%s/data_batch_1.bin", d);
  snprintf(b2, sizeof b2, "%s/data_batch_2.bin", d);
  FILE *f;
  if (mkdir(d, 0700) || mkdir(b2, 0700) || !(f = fopen(b1, "wb"))) tap_bail("mkdir");
  for (int i = 0; i < 3073; i++) fputc(i % 10, f);
  fclose(f);
  clcnn_status st = clcnn_dataset_load(d, 1, &ds, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "data_batch_2.bin is not a file") && !ds, "a CIFAR-10 batch that is a directory: %s",
         err);
  rmdir(b2);
  unlink(b1);
  rmdir(d);
  /* "/tmp/./././..." names /tmp and is shorter than PATH_MAX, too long for the files in it */
  char *longdir = malloc(PATH_MAX);
  if (!longdir) tap_bail("malloc");
  strcpy(longdir, "/tmp");
  while (strlen(longdir) + 64 < PATH_MAX) strcat(longdir, "/.");
  st = clcnn_dataset_load(longdir, 1, &ds, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "data directory name too long") && !ds, "a %zu-byte directory name: %.60s...",
         strlen(longdir), err);
  free(longdir);
  clcnn_dataset *dummy = NULL;
  st = clcnn_dataset_load_idx("x", NULL, &dummy, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_NULL_POINTER, err, "labels is NULL"), "clcnn_dataset_load_idx without labels: %s", err);
  char idx[300];
  snprintf(idx, sizeof idx, "%s/short-idx3-ubyte", tmp);
  if (!(f = fopen(idx, "wb"))) tap_bail("fopen");
  fwrite("\0\0", 1, 2, f);
  fclose(f);
  st = clcnn_dataset_load_idx(idx, idx, &dummy, err, sizeof err);
  tap_ok(says_err(st, CLCNN_ERR_INVALID_ARGUMENT, err, "not an IDX file|ends after 2 bytes") && !dummy, "a 2-byte IDX file: %s", err);
  unlink(idx);
  clcnn_dataset empty = {.n = 0, .c = 2, .h = 3, .w = 3};
  double mean[2] = {7, 7}, sd[2] = {7, 7};
  clcnn_dataset_stats(&empty, mean, sd);
  tap_ok(mean[0] == 0 && mean[1] == 0 && sd[0] == 0 && sd[1] == 0, "the statistics of an empty data set are 0, not NaN");
}

/* A context whose kernels run in work-groups of $CLCNN_LWS items computes what the default does. */
static void lws_check(void) {
  enum { N = 2, C = 3, H = 5, W = 7, E = N * C * H * W };
  float x[E], y[2][E];
  for (int i = 0; i < E; i++) x[i] = (float)((i * 13) % 17) - 8.5f;
  for (int run = 0; run < 2; run++) {
    char err[512];
    clcnn_ctx *c = NULL;
    clcnn_net *net = NULL;
    if (run) setenv("CLCNN_LWS", "3", 1);
    clcnn_status st = clcnn_ctx_create(&c, NULL, err, sizeof err);
    unsetenv("CLCNN_LWS");
    if (!tap_ok(st == CLCNN_SUCCESS, "a context with %s: %s", run ? "CLCNN_LWS=3" : "the default work-group size", st ? err : "ok"))
      return;
    if (clcnn_net_create(c, N, C, H, W, &net) || clcnn_net_add_leaky_relu(net, 0.25) || clcnn_net_forward(net, x, N) ||
        clcnn_net_read_output(net, y[run]))
      tap_ok(0, "leaky_relu forward: %s", clcnn_ctx_last_error(c));
    clcnn_net_destroy(net);
    clcnn_ctx_destroy(c);
  }
  int same = 1;
  for (int i = 0; i < E; i++) same &= y[1][i] == (x[i] > 0 ? x[i] : 0.25f * x[i]) && y[0][i] == y[1][i];
  tap_ok(same, "with CLCNN_LWS=3 (210 items: 70 groups) leaky_relu gives the reference values, as with the default");
}

int main(void) {
  char err[512];
  clcnn_ctx_options o = {.profiling = 1};
  clcnn_status st = clcnn_ctx_create(&ctx, &o, err, sizeof err);
  if (st) {
    printf("Bail out! no OpenCL device: %s\n", err);
    return 1;
  }
  char tmp[] = "/tmp/clcnn-api.XXXXXX";
  if (!mkdtemp(tmp)) tap_bail("mkdtemp");

  layer_checks();
  init_checks();
  dropout_eval();
  optim_checks();
  model_checks();
  data_checks(tmp);

  /* profile: the loss "layer" has no forward part; out-of-range layers and directions are refused */
  clcnn_net *net = NULL;
  if (clcnn_net_create(ctx, 2, 1, 2, 2, &net) || clcnn_net_add_flatten(net)) tap_bail(clcnn_ctx_last_error(ctx));
  uint64_t ns = 99;
  st = clcnn_net_profile(net, 1, 0, &ns);
  tap_ok(st == CLCNN_SUCCESS && ns == 0, "the loss's forward time is 0 ns (got %llu)", (unsigned long long)ns);
  st = clcnn_net_profile(net, 2, 0, &ns);
  tap_ok(says(st, CLCNN_ERR_RANGE, "layer 2 (0..1)|out of range"), "profile of layer 2 of 1: %s", clcnn_ctx_last_error(ctx));
  st = clcnn_net_profile(net, 0, 2, &ns);
  tap_ok(says(st, CLCNN_ERR_RANGE, "direction 2"), "profile in direction 2: %s", clcnn_ctx_last_error(ctx));
  clcnn_net_destroy(net);

  double sec = -1;
  st = clcnn_ctx_time_gemm(ctx, 0, 0, 8, 8, 8, 0, &sec);
  tap_ok(says(st, CLCNN_ERR_INVALID_ARGUMENT, "time_gemm|reps 0") && sec == -1, "clcnn_ctx_time_gemm with 0 repetitions: %s",
         clcnn_ctx_last_error(ctx));
  lws_check();
  rmdir(tmp);
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
