/* tools/clcnn-bench.c - how fast clcnn trains here: per-layer forward and backward kernel times
 * and GFLOP/s, whole training steps in images/s, peak device memory and the time from process
 * start to the first finished step, for each model and batch size; and the GEMMs the layers
 * run, against OpenBLAS sgemm at the same shape when clcnn was built with it.
 *
 *   clcnn-bench [--device SEL] [--batches 16,64,256] [--steps N] [--warmup N] [--gemm]
 *               [--first-step] [--json] MODEL...
 *
 * It reports; it asserts nothing. Figures are medians over the timed steps. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcnn.h"
#ifdef HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int);
#endif

static double t_start;
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* R (taken) as one line of JSON on stdout. */
static void print_json_line(json_t *r) {
  if (!r || json_dumpf(r, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10)) || putchar('\n') == EOF)
    die("--json: cannot write a record (out of memory, or a model name that is not UTF-8?)");
  json_decref(r);
}

/* x rounded to a multiple of unit (the digits the text output shows); NaN (no measure) is null. */
static json_t *json_measure(double x, double unit) {
  return isfinite(x) ? json_real(round(x / unit) * unit) : json_null();
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "clcnn-bench: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* Option parsing returns instead of exiting (the fuzz harness tests/fuzz/fuzz_cmdline.c calls it):
 * ARGS_OK, ARGS_HELP, or ARGS_USAGE with the reason in msg ("" when getopt said it). */
enum { ARGS_OK, ARGS_HELP, ARGS_USAGE };

/* A whole decimal integer in [lo, hi] into *out, else ARGS_USAGE. */
static int parse_int(const char *flag, const char *s, long lo, long hi, int *out, char *msg,
                     size_t msize) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    snprintf(msg, msize, "%s: '%s' is not an integer in %ld..%ld", flag, s, lo, hi);
    return ARGS_USAGE;
  }
  *out = (int)v;
  return ARGS_OK;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n ? v[n / 2] : NAN;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die("%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = malloc(n + 1);
  if (!s || fread(s, 1, n, f) != (size_t)n) die("%s: cannot read", path);
  s[n] = 0;
  fclose(f);
  return s;
}

/* FLOPs of layer l for a batch of n: forward, and backward (input and weight gradients). */
static void layer_flops(clcnn_net *net, int l, int n, double *fwd, double *bwd) {
  int in[4], out[4];
  clcnn_net_layer_shape(net, l - 1, in);
  clcnn_net_layer_shape(net, l, out);
  *fwd = *bwd = 0;
  clcnn_layer_type t = clcnn_net_layer_type(net, l);
  if (t != CLCNN_LAYER_CONV2D && t != CLCNN_LAYER_LINEAR) return;
  int np = clcnn_net_num_params(net);
  for (int i = 0; i < np; i++) {
    clcnn_param_info pi;
    clcnn_net_param_info(net, i, &pi);
    if (pi.layer != l || pi.ndim == 1) continue;
    double per_out = (double)pi.count / pi.dims[0]; /* (in/groups)*kh*kw or in */
    double outs = (double)n * out[1] * out[2] * out[3];
    *fwd = 2 * outs * per_out;
    *bwd = l == 0 ? *fwd : 2 * *fwd; /* the first layer computes no input gradient in training */
  }
}

struct gemm_shape {
  int ta, tb;
  size_t m, n, k;
};

/* The GEMMs a training step of net runs for a batch of n (forward, weight grad, input grad). */
static int net_gemms(clcnn_net *net, int n, struct gemm_shape *g, int max) {
  int cnt = 0;
  for (int l = 0; l < clcnn_net_num_layers(net) && cnt + 3 <= max; l++) {
    int in[4], out[4];
    clcnn_net_layer_shape(net, l - 1, in);
    clcnn_net_layer_shape(net, l, out);
    clcnn_layer_type t = clcnn_net_layer_type(net, l);
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
      clcnn_param_info pi;
      clcnn_net_param_info(net, i, &pi);
      if (pi.layer != l || pi.ndim == 1) continue;
      size_t oc = pi.dims[0], ckk = pi.count / pi.dims[0];
      if (t == CLCNN_LAYER_CONV2D) {
        size_t np = (size_t)n * out[2] * out[3];
        if ((size_t)in[1] * pi.dims[2] * pi.dims[3] != ckk) break; /* grouped: skip */
        g[cnt++] = (struct gemm_shape){0, 0, oc, np, ckk};
        g[cnt++] = (struct gemm_shape){0, 1, oc, ckk, np};
        g[cnt++] = (struct gemm_shape){1, 0, ckk, np, oc};
      } else if (t == CLCNN_LAYER_LINEAR) {
        g[cnt++] = (struct gemm_shape){0, 1, (size_t)n, oc, ckk};
        g[cnt++] = (struct gemm_shape){1, 0, oc, ckk, (size_t)n};
        g[cnt++] = (struct gemm_shape){0, 0, (size_t)n, ckk, oc};
      }
    }
  }
  return cnt;
}

#ifdef HAVE_OPENBLAS
static double time_openblas(const struct gemm_shape *s, int reps) {
  float *a = calloc(s->m * s->k, 4), *b = calloc(s->k * s->n, 4), *c = calloc(s->m * s->n, 4);
  double t[64];
  if (!a || !b || !c) die("out of memory");
  if (reps > 64) reps = 64;
  for (int r = -1; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, (int)s->m,
                (int)s->n, (int)s->k, 1.0f, a, s->ta ? (int)s->m : (int)s->k, b, s->tb ? (int)s->k : (int)s->n, 0.0f,
                c, (int)s->n);
    if (r >= 0) t[r] = now() - t0;
  }
  free(a), free(b), free(c);
  return median(t, reps);
}
#endif

struct args {
  const char *device, *batches;
  int steps, warmup, do_gemm, first_step, json, threads;
};

static int parse_args(int argc, char **argv, struct args *a, char *msg, size_t msize) {
  static const struct option lo[] = {{"device", 1, 0, 'd'}, {"batches", 1, 0, 'b'}, {"steps", 1, 0, 's'},
                                     {"warmup", 1, 0, 'w'}, {"gemm", 0, 0, 'g'},    {"first-step", 0, 0, 'f'},
                                     {"json", 0, 0, 'j'},   {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'},
                                     {0, 0, 0, 0}};
  *a = (struct args){.batches = "16,64,256", .steps = 20, .warmup = 3};
  *msg = 0;
  int c, r = ARGS_OK;
  optind = 0; /* a fresh scan, also when called again */
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
      case 'd': a->device = optarg; break;
      case 'b': a->batches = optarg; break;
      case 's': r = parse_int("--steps", optarg, 1, 10000, &a->steps, msg, msize); break;
      case 'w': r = parse_int("--warmup", optarg, 0, 10000, &a->warmup, msg, msize); break;
      case 'g': a->do_gemm = 1; break;
      case 'f': a->first_step = 1; break;
      case 'j': a->json = 1; break;
      case 't': r = parse_int("--threads", optarg, 1, 1024, &a->threads, msg, msize); break;
      case 'h': return ARGS_HELP;
      default: return ARGS_USAGE; /* getopt said why */
    }
    if (r) return r;
  }
  if (optind >= argc) {
    snprintf(msg, msize, "give one or more model files (see --help)");
    return ARGS_USAGE;
  }
  /* every batch size now, before a device is opened or a model read */
  char bl[256];
  if (snprintf(bl, sizeof bl, "%s", a->batches) >= (int)sizeof bl) {
    snprintf(msg, msize, "--batches: '%.40s...' is too long", a->batches);
    return ARGS_USAGE;
  }
  for (char *save = NULL, *tok = strtok_r(bl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    int n;
    if ((r = parse_int("--batches", tok, 1, 65536, &n, msg, msize))) return r;
  }
  return ARGS_OK;
}

int main(int argc, char **argv) {
  t_start = now();
  struct args a;
  char msg[1024];
  int r = parse_args(argc, argv, &a, msg, sizeof msg);
  if (r == ARGS_HELP) {
    printf("usage: clcnn-bench [--device SEL] [--batches 16,64,256] [--steps N] [--warmup N] [--gemm]\n"
           "                   [--threads N] [--first-step] [--json] MODEL...\n");
    return 0;
  }
  if (r) {
    if (*msg) fprintf(stderr, "clcnn-bench: %s\n", msg);
    return 2;
  }
  const char *device = a.device, *batches = a.batches;
  int steps = a.steps, warmup = a.warmup, do_gemm = a.do_gemm, first_step = a.first_step, json = a.json,
      threads = a.threads;
#ifdef HAVE_OPENBLAS
  if (threads > 0) openblas_set_num_threads(threads);
#endif
  char err[2048];
  clcnn_ctx *ctx = NULL, *pctx = NULL;
  clcnn_ctx_options o = {.device = device};
  if (clcnn_ctx_create(&ctx, &o, err, sizeof err)) die("%s", err);
  if (!first_step) {
    o.profiling = 1;
    if (clcnn_ctx_create(&pctx, &o, err, sizeof err)) die("%s", err);
  }
  if (!json) printf("device: %s, GEMM: %s\n", clcnn_ctx_device_name(ctx), clcnn_ctx_gemm_backend(ctx));

  for (int mi = optind; mi < argc; mi++) {
    char *text = read_text(argv[mi]);
    const char *name = strrchr(argv[mi], '/') ? strrchr(argv[mi], '/') + 1 : argv[mi];
    char bl[256];
    snprintf(bl, sizeof bl, "%s", batches);
    for (char *tok = strtok(bl, ","); tok; tok = strtok(NULL, ",")) {
      int n;
      if (parse_int("--batches", tok, 1, 65536, &n, msg, sizeof msg)) die("%s", msg); /* checked in parse_args */
      for (int pass = 0; pass < (first_step ? 1 : 2); pass++) {
        clcnn_ctx *cx = pass ? pctx : ctx;
        clcnn_net *net = NULL;
        clcnn_optim *opt = NULL;
        size_t mem0;
        clcnn_ctx_memory(cx, &mem0, NULL, NULL);
        clcnn_ctx_reset_peak(cx);
        if (clcnn_net_from_text(cx, text, argv[mi], n, &net, err, sizeof err)) die("%s", err);
        clcnn_optim_params op;
        clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &op);
        if (clcnn_net_init(net, CLCNN_INIT_DEFAULT, 1) || clcnn_net_set_input_grad(net, 0) ||
            clcnn_optim_create(net, &op, &opt))
          die("%s", clcnn_ctx_last_error(cx));
        size_t in = clcnn_net_input_size(net), k = clcnn_net_output_size(net);
        float *x = malloc(n * in * sizeof *x);
        int32_t *y = malloc(n * sizeof *y);
        if (!x || !y) die("out of memory");
        uint64_t s = 12345;
        for (size_t i = 0; i < n * in; i++) x[i] = (float)(((s = s * 6364136223846793005ull + 1) >> 40) / 16777216.0);
        for (int i = 0; i < n; i++) y[i] = i % (int)k;
        /* a graph with its own losses: targets for each (labels, or reals in [0,1)) */
        if (clcnn_net_finalize(net)) die("%s", clcnn_ctx_last_error(cx));
        int nl = clcnn_net_num_losses(net), plain = 0;
        void **tg = calloc(nl ? nl : 1, sizeof *tg);
        clcnn_tensor **lt = calloc(nl ? nl : 1, sizeof *lt);
        if (!tg || !lt) die("out of memory");
        for (int i = 0; i < nl; i++) {
          clcnn_loss_info li;
          clcnn_net_loss_info(net, i, &li);
          size_t m = (size_t)n * li.targets;
          lt[i] = li.loss;
          if (nl == 1 && li.type == CLCNN_LAYER_XENT_LOSS && li.targets == 1) plain = 1;
          if (li.classes) {
            int32_t *l = malloc(m * sizeof *l);
            for (size_t j = 0; l && j < m; j++) l[j] = (int32_t)(j % li.classes);
            tg[i] = l;
          } else {
            float *r = malloc(m * sizeof *r);
            for (size_t j = 0; r && j < m; j++) r[j] = (float)((j * 2654435761u) % 1000) / 1000.0f;
            tg[i] = r;
          }
          if (!tg[i]) die("out of memory");
        }
        double *t = malloc((steps + warmup) * sizeof *t), loss;
        uint64_t allocs_after_first = 0, allocs_end = 0;
        int total = first_step ? 1 : warmup + steps;
        for (int st = 0; st < total; st++) {
          double t0 = now();
          int bad = clcnn_net_zero_grad(net) || clcnn_net_forward(net, x, n);
          if (plain) {
            bad = bad || clcnn_net_backward(net, y);
          } else {
            for (int i = 0; i < nl && !bad; i++) bad = clcnn_net_set_target(net, lt[i], tg[i]) != 0;
            bad = bad || clcnn_net_backward_losses(net);
          }
          if (bad || clcnn_optim_step(opt) || clcnn_net_loss(net, &loss)) die("%s", clcnn_ctx_last_error(cx));
          t[st] = now() - t0;
          if (st == 0) {
            clcnn_ctx_memory(cx, NULL, NULL, &allocs_after_first);
            if (first_step) {
              printf("%s batch %d: first training step finished %.3f s after process start\n", name, n,
                     now() - t_start);
              fflush(stdout);
              /* destroying the context writes the programs it built to the disk cache */
              free(x), free(y), free(t), free(text);
              for (int i = 0; i < nl; i++) free(tg[i]);
              free(tg), free(lt);
              clcnn_optim_destroy(opt);
              clcnn_net_destroy(net);
              clcnn_ctx_destroy(pctx);
              clcnn_ctx_destroy(ctx);
              return 0;
            }
          }
        }
        clcnn_ctx_memory(cx, NULL, NULL, &allocs_end);
        if (pass == 0) {
          size_t peak;
          clcnn_ctx_memory(cx, NULL, &peak, NULL);
          peak -= mem0; /* this net's, its optimizer's and the GEMM scratch's */
          double med = median(t + warmup, steps);
          if (json)
            print_json_line(json_pack("{s:s, s:i, s:o, s:o, s:I, s:I}", "model", name, "batch", n, "step_s",
                                      json_measure(med, 1e-6), "images_per_s", json_measure(n / med, 0.1),
                                      "peak_bytes", (json_int_t)peak, "allocations_after_first_step",
                                      (json_int_t)(allocs_end - allocs_after_first)));
          else
            printf("\n%s, batch %d: %.2f ms/step, %.0f images/s (median of %d steps), peak device memory %.1f MiB,"
                   " %llu buffers created after the first step\n",
                   name, n, med * 1e3, n / med, steps, peak / 1048576.0,
                   (unsigned long long)(allocs_end - allocs_after_first));
        } else if (!json) {
          printf("  %-3s %-52s %10s %8s %10s %8s\n", "", "layer (kernel time of the last step)", "fwd us",
                 "GFLOP/s", "bwd us", "GFLOP/s");
          char desc[128];
          double tf = 0, tb = 0;
          for (int l = 0; l <= clcnn_net_num_layers(net); l++) {
            uint64_t fns = 0, bns = 0;
            double ff = 0, fb = 0;
            if (l < clcnn_net_num_layers(net)) clcnn_net_profile(net, l, 0, &fns);
            clcnn_net_profile(net, l, 1, &bns);
            if (l < clcnn_net_num_layers(net)) {
              layer_flops(net, l, n, &ff, &fb);
              clcnn_net_layer_describe(net, l, desc, sizeof desc);
            } else {
              snprintf(desc, sizeof desc, "loss");
            }
            tf += fns / 1e3, tb += bns / 1e3;
            printf("  %-3d %-52s %10.1f %8.1f %10.1f %8.1f\n", l, desc, fns / 1e3, fns ? ff / fns : 0, bns / 1e3,
                   bns ? fb / bns : 0);
          }
          printf("  %-3s %-52s %10.1f %8s %10.1f\n", "", "total", tf, "", tb);
        }
        free(x), free(y), free(t);
        for (int i = 0; i < nl; i++) free(tg[i]);
        free(tg), free(lt);
        clcnn_optim_destroy(opt);
        clcnn_net_destroy(net);
      }
      if (do_gemm && !first_step) {
        clcnn_net *net = NULL;
        if (clcnn_net_from_text(ctx, text, argv[mi], n, &net, err, sizeof err)) die("%s", err);
        struct gemm_shape g[96];
        int ng = net_gemms(net, n, g, 96);
        if (!json) printf("  GEMMs of a step (M x N x K, transposes): clcnn%s\n",
#ifdef HAVE_OPENBLAS
                          " vs OpenBLAS sgemm"
#else
                          " (built without OpenBLAS: no reference)"
#endif
          );
        for (int i = 0; i < ng; i++) {
          double sec, fl = 2.0 * g[i].m * g[i].n * g[i].k;
          if (clcnn_ctx_time_gemm(ctx, g[i].ta, g[i].tb, g[i].m, g[i].n, g[i].k, 7, &sec))
            die("%s", clcnn_ctx_last_error(ctx));
          double ob = NAN;
#ifdef HAVE_OPENBLAS
          ob = time_openblas(&g[i], 7);
#endif
          if (json)
            print_json_line(json_pack("{s:s, s:i, s:[I,I,I,i,i], s:o, s:o}", "model", name, "batch", n, "gemm",
                                      (json_int_t)g[i].m, (json_int_t)g[i].n, (json_int_t)g[i].k, g[i].ta, g[i].tb,
                                      "clcnn_gflops", json_measure(fl / sec / 1e9, 0.01), "openblas_gflops",
                                      json_measure(fl / ob / 1e9, 0.01)));
          else
            printf("    %6zu x %6zu x %6zu %c%c  clcnn %7.1f GFLOP/s  OpenBLAS %7.1f GFLOP/s  ratio %.2f\n", g[i].m,
                   g[i].n, g[i].k, g[i].ta ? 'T' : 'N', g[i].tb ? 'T' : 'N', fl / sec / 1e9, fl / ob / 1e9,
                   ob / sec);
        }
        clcnn_net_destroy(net);
      }
    }
    free(text);
  }
  clcnn_ctx_destroy(pctx);
  clcnn_ctx_destroy(ctx);
  return 0;
}
