/* tests/test_gemm_choice.c - the GEMM chosen by measurement: "measure" times each new shape
 * on both GEMMs once and writes the device's file, later contexts ("auto") take the choice from
 * it without measuring, a file naming the other GEMM is obeyed (and the net still computes the
 * same), a damaged, foreign or unwritable file is ignored and rewritten, and CLBlast tuned at
 * run time records parameters that later contexts apply and that still compute right. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

#define N 4
static char dir[4096], gemm_file[4200];

static clcnn_ctx *make_ctx(const char *gemm, int profiling) {
  clcnn_ctx *ctx = NULL;
  char err[512];
  clcnn_ctx_options o = {.precision = CLCNN_FLOAT, .gemm = gemm, .profiling = profiling};
  clcnn_status st = clcnn_ctx_create(&ctx, &o, err, sizeof err);
  if (st) {
    printf("Bail out! no OpenCL device for the test: %s: %s\n", clcnn_status_name(st), err);
    exit(1);
  }
  return ctx;
}

/* conv 1->4 3x3 pad 1, relu, flatten, linear 256->10 on 4 images of 8x8: one training step
 * (forward, backward); the logits into out. */
static clcnn_net *step(clcnn_ctx *ctx, float out[N * 10]) {
  clcnn_net *net = NULL;
  clcnn_conv2d_params c = {.out_channels = 4, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
  float x[N * 64];
  int32_t y[N] = {1, 7, 3, 9};
  for (int i = 0; i < N * 64; i++) x[i] = (float)((i * 29 % 17) - 8) / 5.0f;
  int ok = !clcnn_net_create(ctx, N, 1, 8, 8, &net) && !clcnn_net_add_conv2d(net, &c) && !clcnn_net_add_relu(net) &&
           !clcnn_net_add_flatten(net) && !clcnn_net_add_linear(net, 10, 1) && !clcnn_net_init_params(net, 5) &&
           !clcnn_net_forward(net, x, N) && !clcnn_net_read_output(net, out) && !clcnn_net_backward(net, y) &&
           !clcnn_net_finish(net);
  if (!ok) {
    tap_diag("the net: %s", clcnn_ctx_last_error(ctx));
    clcnn_net_destroy(net);
    return NULL;
  }
  return net;
}

static int stats(clcnn_ctx *ctx, int *known, int *measured, double *gf) {
  double g;
  return !clcnn_ctx_gemm_stats(ctx, known, measured, gf ? gf : &g);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *s = calloc(1, 1 << 21);
  if (s) fread(s, 1, (1 << 21) - 1, f);
  fclose(f);
  return s;
}

static int spit(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(s, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

static int count_lines(const char *s, const char *prefix) {
  int n = 0;
  for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    n += !strncmp(p, prefix, strlen(prefix));
  return n;
}

/* Does any command of the net's layer L, direction DIR, carry NAME? */
static int ran(clcnn_net *net, int l, int dir, const char *name) {
  clcnn_profile_cmd cmds[64];
  int n = clcnn_net_profile_cmds(net, l, dir, cmds, 64);
  for (int i = 0; i < n && i < 64; i++)
    if (!strcmp(cmds[i].name, name)) return 1;
  return 0;
}

static double maxdiff(const float *a, const float *b, int n) {
  double d = 0;
  for (int i = 0; i < n; i++)
    if (!(fabs(a[i] - b[i]) <= d)) d = fabs(a[i] - b[i]);
  return d;
}

int main(void) {
  const char *tmpdir = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/clcnn-test-gemm.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(dir)) tap_bail("mkdtemp failed");
  setenv("CLCNN_CACHE_DIR", dir, 1);
  unsetenv("CLCNN_GEMM");
  float ref[N * 10], out[N * 10];
  int known, measured, known0;

  /* 1. measure: every shape once, into the file */
  clcnn_ctx *ctx = make_ctx("measure", 0);
  tap_ok(!strcmp(clcnn_ctx_gemm_backend(ctx), "measure"), "gemm backend reports 'measure'");
  clcnn_net *net = step(ctx, ref);
  int ok = net && stats(ctx, &known, &measured, NULL) && measured >= 3 && known == measured;
  tap_ok(ok, "measure: the step's %d GEMM shapes measured (%d known)", measured, known);
  known0 = known;
  ok = net && !clcnn_net_forward(net, (float[N * 64]){0}, N) && !clcnn_net_finish(net) &&
       stats(ctx, &known, &measured, NULL) && measured == known0;
  tap_ok(ok, "measure: a second step measures nothing again (%d)", measured);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  {
    /* the file's name holds the device key: find it */
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls %s/gemm-*.txt 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    gemm_file[0] = 0;
    if (p) {
      if (!fgets(gemm_file, sizeof gemm_file, p)) gemm_file[0] = 0;
      pclose(p);
    }
    gemm_file[strcspn(gemm_file, "\n")] = 0;
  }
  char *text = slurp(gemm_file);
  tap_ok(text && !strncmp(text, "clcnn-gemm 1\ndevice ", 20) && count_lines(text, "shape S ") == known0,
         "the GEMM file %s holds the %d shapes", gemm_file, known0);
  if (!text) tap_bail("no GEMM file: the rest depends on it");

  /* 2. auto: the choices come from the file, nothing is measured, the result is the same */
  ctx = make_ctx(NULL, 0);
  tap_ok(!strcmp(clcnn_ctx_gemm_backend(ctx), "auto"), "the default GEMM choice is 'auto'");
  net = step(ctx, out);
  ok = net && stats(ctx, &known, &measured, NULL) && known == known0 && measured == 0;
  tap_ok(ok, "auto: %d shapes known from the file, %d measured", known, measured);
  tap_ok(net && !memcmp(out, ref, sizeof out), "auto: the same choices give the same logits, bit for bit");
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);

  /* 3. a file that names the other GEMM for every shape is obeyed */
  char *swapped = malloc(strlen(text) + 64 * known0 + 1), *w = swapped;
  int nclcnn = 0;
  for (const char *p = text; *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)len, p);
    char *c;
    if ((c = strstr(line, " clcnn "))) {
      w += sprintf(w, "%.*s clblast %s\n", (int)(c - line), line, c + 7), nclcnn++;
    } else if ((c = strstr(line, " clblast "))) {
      w += sprintf(w, "%.*s clcnn %s\n", (int)(c - line), line, c + 9);
    } else {
      w += sprintf(w, "%s\n", line);
    }
    p += len + (e != NULL);
  }
  tap_ok(spit(gemm_file, swapped, strlen(swapped)), "the file rewritten with the other GEMM for each shape");
  ctx = make_ctx(NULL, 1);
  net = step(ctx, out);
  /* layer 0 is the conv: its forward runs clcnn's tile kernel or CLBlast (named after the layer) */
  int conv_own = net && ran(net, 0, 0, "gemm_tile"), conv_blas = net && ran(net, 0, 0, "conv2d forward");
  ok = net && stats(ctx, &known, &measured, NULL) && known == known0 && measured == 0 && conv_own != conv_blas;
  tap_ok(ok, "swapped file: read (%d shapes), conv forward on %s", known, conv_own ? "clcnn" : "CLBlast");
  tap_ok(net && (strstr(text, "shape S NN 4 256 9 clcnn") ? conv_blas : conv_own),
         "swapped file: the conv forward runs on the GEMM the file names");
  tap_ok(net && maxdiff(out, ref, N * 10) < 1e-5, "swapped file: the logits agree to %.1e", maxdiff(out, ref, N * 10));
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  free(swapped);

  /* 4. bad files are ignored (auto: nothing known) and rewritten by the next measurement */
  const char *dev_line = strchr(text, '\n') + 1; /* "device <key>\n..." */
  char good_head[128];
  snprintf(good_head, sizeof good_head, "clcnn-gemm 1\n%.39s\n", dev_line);
  struct {
    const char *what, *body;
    int head;
  } bad[] = {
      {"empty", "", 0},
      {"a wrong first line", "clcnn-gemm 2\n", 0},
      {"another device's key", "clcnn-gemm 1\ndevice 00000000000000000000000000000000\n", 0},
      {"a line cut short (no newline)", "shape S NN 4 256 9 clcnn 1.0 2.0", 1},
      {"a bad transpose", "shape S NX 4 256 9 clcnn 1.0 2.0\n", 1},
      {"an unknown GEMM", "shape S NN 4 256 9 cublas 1.0 2.0\n", 1},
      {"a zero size", "shape S NN 0 256 9 clcnn 1.0 2.0\n", 1},
      {"a negative time", "shape S NN 4 256 9 clcnn -1.0 2.0\n", 1},
      {"trailing junk", "shape S NN 4 256 9 clcnn 1.0 2.0 x\n", 1},
      {"an unknown record", "tile S 4 64\n", 1},
      {"Xgemm parameters CLBlast cannot run (MWG not a multiple of MDIMC*VWM)",
       "xgemm S 0 1 32 2 8 8 60 8 8 64 0 1 0 0 4 4 50.0\n", 1},
      {"Xgemm parameters that are too few", "xgemm S 0 1 32 2 8 8 64 8 8 64 0 1 0 0 4 50.0\n", 1},
      {"a sign on a size", "shape S NN -4 256 9 clcnn 1.0 2.0\n", 1},
      {"Xgemm parameters with a vector width of 3",
       "xgemm S 0 1 32 2 8 8 48 8 8 64 0 1 0 0 3 4 50.0\n", 1},
      {"Xgemm parameters CLBlast accepts but clcnn never tried (KWI 4)",
       "xgemm S 0 1 32 4 8 8 64 8 8 64 0 1 0 0 4 4 50.0\n", 1},
      {"a NUL byte", "shape S NN 4 256 9 clcnn 1.0 2.0\n\0\n", 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", bad[i].head ? good_head : "");
    size_t bl = strlen(bad[i].body) + (strstr(bad[i].what, "NUL") ? 2 : 0);
    memcpy(buf + n, bad[i].body, bl);
    n += bl;
    spit(gemm_file, buf, n);
    ctx = make_ctx(NULL, 0);
    net = step(ctx, out);
    ok = net && stats(ctx, &known, &measured, NULL) && known == 0 && measured == 0 &&
             maxdiff(out, ref, N * 10) < 1e-5;
    clcnn_net_destroy(net);
    clcnn_ctx_destroy(ctx);
    tap_ok(ok, "a file with %s: ignored (%d shapes known), the net still computes", bad[i].what, known);
  }
  ctx = make_ctx("measure", 0);
  net = step(ctx, out);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  free(text);
  text = slurp(gemm_file);
  /* (how many shapes a step has depends on what was measured: a conv on CLBlast adds one) */
  tap_ok(text && !strncmp(text, good_head, strlen(good_head)) && count_lines(text, "shape S ") >= 3,
         "measure after a bad file: rewritten whole, %d shapes", text ? count_lines(text, "shape S ") : -1);

  /* 5. no cache directory, or one that cannot be written: measure still runs, nothing breaks */
  const char *nodirs[] = {"off", "/proc/nonexistent/clcnn"};
  for (int i = 0; i < 2; i++) {
    setenv("CLCNN_CACHE_DIR", nodirs[i], 1);
    ctx = make_ctx("measure", 0);
    net = step(ctx, out);
    ok = net && stats(ctx, &known, &measured, NULL) && measured >= 3 && known == measured &&
         maxdiff(out, ref, N * 10) < 1e-5;
    tap_ok(ok, "CLCNN_CACHE_DIR=%s: measured %d shapes, kept nowhere", nodirs[i], measured);
    clcnn_net_destroy(net);
    clcnn_ctx_destroy(ctx);
  }
  setenv("CLCNN_CACHE_DIR", dir, 1);

  /* 6. CLBlast tuned at run time */
  ctx = make_ctx(NULL, 0);
  double before = -1, after = -1, gf = -1;
  tap_ok(clcnn_ctx_tune_clblast(NULL, 32, 32, 32, 1, NULL, NULL) == CLCNN_ERR_NULL_POINTER, "tune: NULL context");
  tap_ok(clcnn_ctx_tune_clblast(ctx, 0, 32, 32, 1, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(clcnn_ctx_last_error(ctx), "tune_clblast"),
         "tune: m = 0 refused: %s", clcnn_ctx_last_error(ctx));
  tap_ok(clcnn_ctx_tune_clblast(ctx, 32, 32, 32, -1, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT, "tune: max_sets < 0 refused");
  tap_ok(clcnn_ctx_tune_clblast(ctx, 32, 1 << 20, 32, 1, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT, "tune: n too large refused");
  tap_ok(clcnn_ctx_tune_clblast(ctx, 8, 32, 32, 1, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT,
         "tune: m = 8 refused (too small to time)");
  clcnn_status st = clcnn_ctx_tune_clblast(ctx, 512, 512, 512, 1, &before, &after);
  tap_ok(!st && before > 0 && after >= before, "tune: one set against CLBlast's own: %.2f -> %.2f GFLOP/s%s%s", before,
         after, st ? ": " : "", st ? clcnn_ctx_last_error(ctx) : "");
  clcnn_ctx_destroy(ctx);
  free(text);
  text = slurp(gemm_file);
  int recorded = after > before;
  tap_ok(text && count_lines(text, "xgemm S ") == recorded && (!recorded || count_lines(text, "shape S ") == 0),
         "tune: the file %s the parameters%s", recorded ? "records" : "does not record",
         recorded ? " and drops the stale shapes" : "");
  ctx = make_ctx("clblast", 0);
  net = step(ctx, out);
  ok = net && stats(ctx, NULL, NULL, &gf) && (recorded ? fabs(gf - after) < 0.06 : gf == 0);
  tap_ok(ok, "tune: a new context applies what was recorded (%.2f GFLOP/s)", gf);
  tap_ok(net && maxdiff(out, ref, N * 10) < 1e-5, "tune: CLBlast on those parameters computes the same logits (%.1e)",
         maxdiff(out, ref, N * 10));
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  free(text);

  /* 7. parameters in the file (as a tune on another run would leave them) are applied */
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%sxgemm S 0 1 32 2 8 8 64 8 8 64 0 1 0 0 8 8 42.5\n", good_head);
  spit(gemm_file, buf, (size_t)n);
  ctx = make_ctx("clblast", 0);
  net = step(ctx, out);
  gf = -1;
  ok = net && stats(ctx, NULL, NULL, &gf) && gf == 42.5;
  tap_ok(ok, "Xgemm parameters in the file: applied (%.1f GFLOP/s recorded)", gf);
  /* a product big enough for CLBlast's Xgemm (not its direct kernel), against clcnn's GEMM */
  double sec = 0;
  ok = net && !clcnn_ctx_time_gemm(ctx, 0, 0, 512, 512, 512, 1, &sec) && sec > 0;
  tap_ok(ok, "Xgemm parameters in the file: CLBlast runs a 512^3 product on them%s%s", ok ? "" : ": ",
         ok ? "" : clcnn_ctx_last_error(ctx));
  tap_ok(net && maxdiff(out, ref, N * 10) < 1e-5, "Xgemm parameters in the file: the same logits (%.1e)",
         maxdiff(out, ref, N * 10));
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);

  char cmd[4400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) tap_diag("could not remove %s", dir);
  return tap_done();
}
