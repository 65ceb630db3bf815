/* lib/gemm_choice.c - which GEMM computes a product, by measurement, kept per device.
 *
 * Two GEMMs can compute any product: clcnn's own kernels (cl/gemm.cl, shaped for CPU devices)
 * and CLBlast (tuned for most GPUs). Which is faster depends on the device, its driver and the
 * shape, so it is measured: in GEMM_MEASURE mode each shape met for the first time is timed on
 * both, and the answer goes into one file per device, driver and version of clcnn's GEMM
 * kernels, <cache dir>/gemm-<key>.txt, where every later context (GEMM_AUTO, the default, or
 * GEMM_MEASURE) finds it. Shapes not in the file run on the rule (clcnn's GEMM on CPU
 * devices, CLBlast elsewhere). The same file holds CLBlast's Xgemm parameters when
 * clcnn_ctx_tune_clblast has tuned them for the device (CLBlast ships none for PoCL's CPU
 * device, whose defaults run at a twentieth of what the device can do).
 *
 * The file, text, one record a line; any line that does not parse makes the whole file
 * ignored (and rewritten at the next measurement):
 *   clcnn-gemm 1
 *   device <32 hex digits>
 *   xgemm <S|D> <16 values in xgemm_names' order> <GFLOP/s>
 *   shape <S|D> <NN|NT|TN|TT> <m> <n> <k> <clcnn|clblast> <us clcnn> <us clblast>
 */
#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define GEMM_FILE_MAX (1 << 20)

/* ---- CLBlast's Xgemm parameters ---- */
enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN, NXP };
static const char *const xgemm_names[NXP] = {"GEMMK", "KREG", "KWG",  "KWI",  "MDIMA", "MDIMC", "MWG", "NDIMB",
                                             "NDIMC", "NWG",  "SA",   "SB",   "STRM",  "STRN",  "VWM", "VWN"};

/* Candidate sets for devices CLBlast's database does not know, most promising first on a CPU
 * (PoCL: local memory for B, wide vectors, 64-wide tiles), in xgemm_names' order. */
static const size_t xgemm_sets[][NXP] = {
    /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
    {0, 1, 32, 2, 8, 8, 64, 8, 8, 64, 0, 1, 0, 0, 4, 4},
    {0, 1, 32, 2, 8, 8, 64, 8, 8, 64, 0, 1, 0, 0, 8, 8},
    {0, 1, 32, 2, 8, 8, 64, 16, 16, 128, 0, 1, 0, 0, 4, 8},
    {0, 1, 32, 2, 8, 8, 64, 8, 8, 64, 1, 1, 0, 0, 4, 4},
    {0, 1, 16, 2, 8, 8, 32, 8, 8, 64, 0, 1, 0, 0, 4, 8},
    {0, 1, 32, 2, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 4, 4},
    {0, 1, 16, 2, 16, 16, 64, 16, 16, 64, 0, 1, 0, 0, 4, 4},
    {0, 1, 32, 2, 16, 16, 128, 8, 8, 64, 0, 1, 0, 0, 8, 4},
    {0, 1, 32, 2, 8, 8, 32, 8, 8, 32, 0, 0, 0, 0, 4, 4},
    {0, 1, 32, 2, 16, 16, 128, 16, 16, 128, 1, 1, 0, 0, 8, 8},
};
#define NSETS (int)(sizeof xgemm_sets / sizeof xgemm_sets[0])

/* Why the set V cannot run on a device with LOCAL bytes of local memory and work-groups of at
 * most MAXWG items (CLBlast's own constraints for Xgemm), or NULL. A set read from a file must
 * also be one of clcnn's candidates (known: any other could fail to compile in CLBlast). */
static const char *xgemm_invalid(const size_t *v, size_t esz, size_t local, size_t maxwg);
static const char *xgemm_unknown(const size_t *v, size_t esz, size_t local, size_t maxwg) {
  const char *why = xgemm_invalid(v, esz, local, maxwg);
  if (why) return why;
  for (int i = 0; i < NSETS; i++)
    if (!memcmp(v, xgemm_sets[i], sizeof xgemm_sets[i])) return NULL;
  return "not one of clcnn's candidate sets";
}

static const char *xgemm_invalid(const size_t *v, size_t esz, size_t local, size_t maxwg) {
  for (int i = 0; i < NXP; i++)
    if (v[i] > 1024) return "a value over 1024";
  if (v[GEMMK] > 1 || v[SA] > 1 || v[SB] > 1 || v[STRM] > 1 || v[STRN] > 1) return "a flag not 0 or 1";
  if (!v[KWG] || !v[KWI] || !v[MDIMA] || !v[MDIMC] || !v[MWG] || !v[NDIMB] || !v[NDIMC] || !v[NWG] || !v[VWM] ||
      !v[VWN] || !v[KREG])
    return "a size of 0";
  if (v[GEMMK] == 0 && v[KREG] != 1) return "KREG must be 1 when GEMMK is 0";
  for (int i = 0; i < NXP; i++)
    if ((i == VWM || i == VWN) && (v[i] & (v[i] - 1))) return "a vector width not a power of two";
  if (v[MWG] % (v[MDIMC] * v[VWM]) || v[NWG] % (v[NDIMC] * v[VWN]) || v[MWG] % (v[MDIMA] * v[VWM]) ||
      v[NWG] % (v[NDIMB] * v[VWN]))
    return "MWG, NWG not multiples of the thread tiles";
  size_t wg = v[MDIMC] * v[NDIMC];
  if (wg % v[MDIMA] || wg % v[NDIMB] || v[KWG] % (wg / v[MDIMA]) || v[KWG] % (wg / v[NDIMB]) || v[KWG] % v[KWI])
    return "KWG not a multiple of the loads per thread";
  if (wg > maxwg) return "a work-group larger than the device allows";
  if ((v[SA] * v[KWG] * v[MWG] + v[SB] * v[KWG] * v[NWG]) * esz > local) return "more local memory than the device has";
  return NULL;
}

static void device_limits(clcnn_ctx *ctx, size_t *local, size_t *maxwg) {
  cl_ulong lm = 0;
  *maxwg = 0;
  clGetDeviceInfo(ctx->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lm, &lm, NULL);
  clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof *maxwg, maxwg, NULL);
  *local = (size_t)lm;
}

static clcnn_status xgemm_apply(clcnn_ctx *ctx, int dbl, const size_t *v) {
  CLBlastStatusCode s = CLBlastOverrideParameters(ctx->device, "Xgemm", dbl ? CLBlastPrecisionDouble : CLBlastPrecisionSingle,
                                                  NXP, (const char **)xgemm_names, v);
  if (s != CLBlastSuccess)
    return FAIL(ctx, s > -1000 ? s : CLCNN_ERR_BLAS, "CLBlastOverrideParameters(Xgemm): %s (%d)", clcnn_status_name(s),
                (int)s);
  return CLCNN_SUCCESS;
}

/* ---- the file ---- */
/* The file's path and the device key in it; 0 when there is no cache directory. */
static int gemm_path(clcnn_ctx *ctx, char *path, size_t size, const char **dir, char key[33]) {
  if (!(*dir = clcnn__cache_dir(ctx))) return 0;
  clcnn__device_key(ctx, key);
  return snprintf(path, size, "%s/gemm-%s.txt", *dir, key) < (int)size;
}

static clcnn_status add_choice(clcnn_ctx *ctx, const struct gemm_choice *c) {
  if (ctx->nchoices == ctx->capchoices) {
    int cap = ctx->capchoices ? 2 * ctx->capchoices : 32;
    struct gemm_choice *p = realloc(ctx->choices, cap * sizeof *p);
    if (!p) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "GEMM choices: out of host memory");
    ctx->choices = p, ctx->capchoices = cap;
  }
  ctx->choices[ctx->nchoices++] = *c;
  return CLCNN_SUCCESS;
}

/* Are tokens FIRST..LAST (0-based, space-separated) of line L plain decimal digits? (sscanf's
 * %zu would take a sign.) */
static int digits_only(const char *l, int first, int last) {
  for (int t = 0; *l; t++) {
    while (*l == ' ') l++;
    const char *e = l;
    while (*e && *e != ' ') e++;
    if (t >= first && t <= last) {
      if (e == l) return 0;
      for (const char *q = l; q < e; q++)
        if (*q < '0' || *q > '9') return 0;
    }
    l = e;
  }
  return 1;
}

/* Parse the file's text S into the context (internal.h). */
int clcnn__gemm_choices_parse(clcnn_ctx *ctx, char *s, const char *key, char *why, size_t wsize) {
  int line = 0, ok = 1;
  size_t xg[2][NXP];
  double xf[2] = {0, 0};
  size_t local, maxwg;
  device_limits(ctx, &local, &maxwg);
  for (char *l = s, *next; ok && l && *l; l = next) {
    next = strchr(l, '\n');
    if (!next) {
      snprintf(why, wsize, "line %d: no newline at the end (a file cut short?)", line + 1);
      ok = 0;
      break;
    }
    *next++ = 0;
    line++;
    char w1[16], w2[40], w3[8], w4[8];
    int used = -1;
    if (line == 1) {
      if (strcmp(l, "clcnn-gemm 1")) snprintf(why, wsize, "line 1: not 'clcnn-gemm 1'"), ok = 0;
    } else if (line == 2) {
      if (sscanf(l, "device %32s%n", w2, &used) != 1 || l[used] || strlen(w2) != 32)
        snprintf(why, wsize, "line 2: not 'device <key>'"), ok = 0;
      else if (strcmp(w2, key))
        snprintf(why, wsize, "made for another device, driver or clcnn (key %s, this one's %s)", w2, key), ok = 0;
    } else if (!strncmp(l, "xgemm ", 6)) {
      size_t v[NXP];
      double gf;
      int n = sscanf(l, "xgemm %7s %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %lf%n", w3, &v[0],
                     &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13],
                     &v[14], &v[15], &gf, &used);
      const char *bad = n != 18 || l[used] || (strcmp(w3, "S") && strcmp(w3, "D")) || !(gf > 0 && gf < 1e9) ||
                                !digits_only(l, 2, 17)
                            ? "not 'xgemm S|D <16 values> <GFLOP/s>'"
                            : xgemm_unknown(v, w3[0] == 'D' ? 8 : 4, local, maxwg);
      if (bad) {
        snprintf(why, wsize, "line %d: %s", line, bad), ok = 0;
      } else {
        memcpy(xg[w3[0] == 'D'], v, sizeof v);
        xf[w3[0] == 'D'] = gf;
      }
    } else {
      struct gemm_choice c = {0};
      double a, b;
      int n = sscanf(l, "shape %7s %7s %zu %zu %zu %15s %lf %lf%n", w3, w4, &c.m, &c.n, &c.k, w1, &a, &b, &used);
      if (n != 8 || l[used] || !digits_only(l, 3, 5) || (strcmp(w3, "S") && strcmp(w3, "D")) || strlen(w4) != 2 ||
          !strchr("NT", w4[0]) ||
          !strchr("NT", w4[1]) || (strcmp(w1, "clcnn") && strcmp(w1, "clblast")) || !c.m || !c.n || !c.k ||
          c.m > 1u << 30 || c.n > 1u << 30 || c.k > 1u << 30 || !(a > 0 && a < 1e12) || !(b > 0 && b < 1e12)) {
        snprintf(why, wsize, "line %d: not 'shape S|D NN|NT|TN|TT m n k clcnn|clblast us us'", line);
        ok = 0;
      } else {
        c.dbl = w3[0] == 'D', c.ta = w4[0] == 'T', c.tb = w4[1] == 'T', c.own = !strcmp(w1, "clcnn");
        c.us_own = a, c.us_clblast = b;
        if (add_choice(ctx, &c)) ok = 0, snprintf(why, wsize, "out of host memory");
      }
    }
  }
  if (ok && line < 2) snprintf(why, wsize, "%s", line ? "no device line" : "empty"), ok = 0;
  if (!ok) {
    ctx->nchoices = 0;
    return -1;
  }
  for (int d = 0; d < 2; d++)
    if (xf[d] > 0) memcpy(ctx->xgemm[d], xg[d], sizeof xg[d]), ctx->xgemm_gflops[d] = xf[d];
  return 0;
}

void clcnn__gemm_choices_load(clcnn_ctx *ctx) {
  if (ctx->choices_loaded) return;
  ctx->choices_loaded = 1;
  const int debug = getenv("CLCNN_DEBUG") != NULL;
  char path[4096], key[33], why[256] = "";
  const char *dir;
  if (!gemm_path(ctx, path, sizeof path, &dir, key)) return;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (debug) fprintf(stderr, "clcnn: GEMM choices: none yet (%s)\n", path);
    return;
  }
  char *s = malloc(GEMM_FILE_MAX + 1);
  size_t n = s ? fread(s, 1, GEMM_FILE_MAX + 1, f) : 0;
  int err = ferror(f);
  fclose(f);
  if (!s || err || n > GEMM_FILE_MAX || memchr(s, 0, n)) {
    if (debug) fprintf(stderr, "clcnn: GEMM choices ignored: %s: %s\n", path, !s ? "out of memory" : err ? "read error" : n > GEMM_FILE_MAX ? "too large" : "not text");
    free(s);
    return;
  }
  s[n] = 0;
  if (clcnn__gemm_choices_parse(ctx, s, key, why, sizeof why)) {
    if (debug) fprintf(stderr, "clcnn: GEMM choices ignored: %s: %s\n", path, why);
  } else {
    if (debug) fprintf(stderr, "clcnn: GEMM choices: %d shapes%s from %s\n", ctx->nchoices,
                       ctx->xgemm_gflops[0] > 0 || ctx->xgemm_gflops[1] > 0 ? ", tuned CLBlast" : "", path);
    int d = ctx->prec == CLCNN_DOUBLE;
    if (ctx->xgemm_gflops[d] > 0 && xgemm_apply(ctx, d, ctx->xgemm[d])) {
      ctx->xgemm_gflops[d] = 0; /* CLBlast refused it: run on its defaults */
      clcnn__clear_error(ctx);
    }
  }
  free(s);
}

/* Rewrite the file from the context's records. */
static void save(clcnn_ctx *ctx) {
  const int debug = getenv("CLCNN_DEBUG") != NULL;
  char path[4096], key[33];
  const char *dir;
  if (!gemm_path(ctx, path, sizeof path, &dir, key)) return;
  size_t cap = 64 + 256 * (size_t)(ctx->nchoices + 2), len = 0;
  char *s = malloc(cap);
  if (!s) return;
  len += snprintf(s + len, cap - len, "clcnn-gemm 1\ndevice %s\n", key);
  for (int d = 0; d < 2; d++)
    if (ctx->xgemm_gflops[d] > 0) {
      len += snprintf(s + len, cap - len, "xgemm %c", d ? 'D' : 'S');
      for (int i = 0; i < NXP; i++) len += snprintf(s + len, cap - len, " %zu", ctx->xgemm[d][i]);
      len += snprintf(s + len, cap - len, " %.9g\n", ctx->xgemm_gflops[d]);
    }
  for (int i = 0; i < ctx->nchoices; i++) {
    const struct gemm_choice *c = &ctx->choices[i];
    len += snprintf(s + len, cap - len, "shape %c %c%c %zu %zu %zu %s %.9g %.9g\n", c->dbl ? 'D' : 'S', c->ta ? 'T' : 'N',
                    c->tb ? 'T' : 'N', c->m, c->n, c->k, c->own ? "clcnn" : "clblast", c->us_own, c->us_clblast);
  }
  char werr[512];
  const char *why = clcnn__write_file(path, &(struct clcnn__piece){s, len}, 1, werr, sizeof werr) ? werr : NULL;
  if (debug) fprintf(stderr, "clcnn: GEMM choices %s %s%s%s\n", why ? "not written:" : "written:", path, why ? ": " : "",
                     why ? why : "");
  free(s);
}

/* ---- measuring ---- */
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef clcnn_status (*gemm_fn)(clcnn_ctx *, const char *, int, int, size_t, size_t, size_t, double, cbuf *, size_t,
                                size_t, cbuf *, size_t, size_t, double, cbuf *, size_t, size_t);

/* Seconds per product of FN on A, B, C: one untimed run (it may compile), then the median of
 * BATCHES batches of REPS products queued back to back, each batch waited for. */
static clcnn_status time_fn(clcnn_ctx *ctx, gemm_fn fn, int ta, int tb, size_t m, size_t n, size_t k, cbuf *a, cbuf *b,
                            cbuf *c, int batches, int reps, double *sec) {
  double *t = malloc(batches * sizeof *t);
  clcnn_status st = t ? CLCNN_SUCCESS : FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "GEMM timing: out of host memory");
  for (int r = -1; r < batches && !st; r++) {
    double t0 = now();
    for (int i = 0; i < (r < 0 ? 1 : reps) && !st; i++)
      st = fn(ctx, "GEMM timing", ta, tb, m, n, k, 1.0, a, 0, ta ? m : k, b, 0, tb ? k : n, 0.0, c, 0, n);
    cl_int e = st ? CL_SUCCESS : clFinish(ctx->queue);
    ctx->host_waits++;
    if (e != CL_SUCCESS) st = CLFAIL(ctx, e, "clFinish", "GEMM timing");
    if (r >= 0) t[r] = (now() - t0) / reps;
  }
  if (!st) {
    qsort(t, batches, sizeof t[0], cmp_double);
    *sec = batches % 2 ? t[batches / 2] : (t[batches / 2 - 1] + t[batches / 2]) / 2;
  }
  free(t);
  return st;
}

struct operands {
  cbuf a, b, c;
};

static clcnn_status operands(clcnn_ctx *ctx, size_t m, size_t n, size_t k, struct operands *o, int random) {
  memset(o, 0, sizeof *o);
  clcnn_status st;
  if ((st = cbuf_alloc(ctx, &o->a, m * k * ctx->esz, "GEMM measurement A")) ||
      (st = cbuf_alloc(ctx, &o->b, k * n * ctx->esz, "GEMM measurement B")) ||
      (st = cbuf_alloc(ctx, &o->c, m * n * ctx->esz, "GEMM measurement C")))
    return st;
  if (!random)
    return (st = clcnn__zero(ctx, &o->a, o->a.bytes, "GEMM measurement A")) ? st
                                                                              : clcnn__zero(ctx, &o->b, o->b.bytes, "GEMM measurement B");
  /* values in [-1, 1) from a fixed sequence, so that a wrong product shows */
  size_t na = m * k, nb = k * n;
  void *h = malloc((na > nb ? na : nb) * ctx->esz);
  if (!h) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "GEMM measurement: out of host memory");
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (int which = 0; which < 2 && !st; which++) {
    size_t cnt = which ? nb : na;
    for (size_t i = 0; i < cnt; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      double v = (double)(x >> 11) / 4503599627370496.0 - 1.0;
      if (ctx->prec == CLCNN_DOUBLE) ((double *)h)[i] = v;
      else ((float *)h)[i] = (float)v;
    }
    cbuf *dst = which ? &o->b : &o->a;
    if (!(st = clcnn__write(ctx, dst, 0, cnt * ctx->esz, h, "GEMM measurement input")))
      st = clcnn__wait(ctx, dst); /* h is reused */
  }
  free(h);
  return st;
}

static void operands_free(clcnn_ctx *ctx, struct operands *o) {
  clFinish(ctx->queue);
  cbuf_free(&o->a), cbuf_free(&o->b), cbuf_free(&o->c);
}

/* Products queued back to back per timed batch, as in a training step (no wait between them):
 * enough that the host's wait at the end does not decide, ~20 MFLOP, at most 20. */
static int batch_reps(size_t m, size_t n, size_t k) {
  double flops = 2.0 * m * n * k;
  return flops >= 2e7 ? 1 : (int)(2e7 / flops) > 20 ? 20 : (int)(2e7 / flops);
}

static clcnn_status measure(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, struct gemm_choice *c) {
  struct operands o;
  double so = 0, sb = 0;
  int reps = batch_reps(m, n, k);
  cl_int e = clFinish(ctx->queue); /* the training commands queued so far are not part of it */
  ctx->host_waits++;
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clFinish", "GEMM measurement");
  clcnn_status st = operands(ctx, m, n, k, &o, 0);
  if (!st) st = time_fn(ctx, clcnn__gemm_own, ta, tb, m, n, k, &o.a, &o.b, &o.c, 3, reps, &so);
  if (!st && time_fn(ctx, clcnn__gemm_clblast, ta, tb, m, n, k, &o.a, &o.b, &o.c, 3, reps, &sb)) {
    /* CLBlast cannot run this product here: clcnn's GEMM it is, and the file says so */
    if (getenv("CLCNN_DEBUG")) fprintf(stderr, "clcnn: GEMM measurement: CLBlast failed: %s\n", clcnn_ctx_last_error(ctx));
    clcnn__clear_error(ctx);
    sb = 1e5; /* 100 s: never chosen */
  }
  operands_free(ctx, &o);
  if (st) return st;
  *c = (struct gemm_choice){.dbl = ctx->prec == CLCNN_DOUBLE, .ta = (unsigned char)ta, .tb = (unsigned char)tb,
                            .m = m, .n = n, .k = k, .us_own = so * 1e6, .us_clblast = sb * 1e6};
  c->own = so <= sb;
  if (getenv("CLCNN_DEBUG"))
    fprintf(stderr, "clcnn: GEMM %c%c %zu x %zu x %zu: clcnn %.1f us, CLBlast %.1f us: %s\n", ta ? 'T' : 'N',
            tb ? 'T' : 'N', m, n, k, c->us_own, c->us_clblast, c->own ? "clcnn" : "CLBlast");
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_ctx_time_gemm(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, int reps,
                                           double *seconds) {
  if (!ctx || !seconds) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(ctx);
  if (!m || !n || !k || reps <= 0 || reps > 10000 || m > 1u << 20 || n > 1u << 20 || k > 1u << 20)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "time_gemm: m %zu n %zu k %zu reps %d", m, n, k, reps);
  struct operands o;
  clcnn_status st = operands(ctx, m, n, k, &o, 0);
  if (!st) st = time_fn(ctx, clcnn__gemm, ta, tb, m, n, k, &o.a, &o.b, &o.c, reps, batch_reps(m, n, k), seconds);
  operands_free(ctx, &o);
  return st;
}

int clcnn__gemm_known(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k) {
  if (ctx->gemm_mode != GEMM_OWN) clcnn__gemm_choices_load(ctx); /* applies tuned CLBlast parameters */
  if (ctx->gemm_mode == GEMM_OWN || ctx->gemm_mode == GEMM_CLBLAST) return ctx->gemm_mode == GEMM_OWN;
  unsigned char dbl = ctx->prec == CLCNN_DOUBLE;
  for (int i = 0; i < ctx->nchoices; i++) {
    const struct gemm_choice *c = &ctx->choices[i];
    if (c->dbl == dbl && c->ta == !!ta && c->tb == !!tb && c->m == m && c->n == n && c->k == k) return c->own;
  }
  return ctx->gemm_mode == GEMM_MEASURE ? -1 : ctx->gemm_own;
}

clcnn_status clcnn__gemm_pick(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, int *own) {
  int known = clcnn__gemm_known(ctx, ta, tb, m, n, k);
  *own = known >= 0 ? known : ctx->gemm_own;
  if (known >= 0) return CLCNN_SUCCESS;
  struct gemm_choice c;
  clcnn_status st = measure(ctx, ta, tb, m, n, k, &c);
  if (st) { /* could not measure (out of device memory for the operands, say): the rule, unrecorded */
    if (getenv("CLCNN_DEBUG")) fprintf(stderr, "clcnn: GEMM measurement failed: %s\n", clcnn_ctx_last_error(ctx));
    clcnn__clear_error(ctx);
    return CLCNN_SUCCESS;
  }
  if ((st = add_choice(ctx, &c))) return st;
  ctx->gemm_measured++;
  *own = c.own;
  save(ctx);
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_ctx_gemm_stats(const clcnn_ctx *ctx, int *known, int *measured, double *clblast_gflops) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  if (known) *known = ctx->nchoices;
  if (measured) *measured = ctx->gemm_measured;
  if (clblast_gflops) *clblast_gflops = ctx->xgemm_gflops[ctx->prec == CLCNN_DOUBLE];
  return CLCNN_SUCCESS;
}

/* ---- tuning CLBlast ---- */
CLCNN_API clcnn_status clcnn_ctx_tune_clblast(clcnn_ctx *ctx, size_t m, size_t n, size_t k, int max_sets,
                                              double *before_gflops, double *after_gflops) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(ctx);
  if (m < 16 || n < 16 || k < 16 || m > 8192 || n > 65536 || k > 65536 || max_sets < 0)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "tune_clblast: m %zu, n %zu, k %zu, max_sets %d", m, n, k, max_sets);
  clcnn__gemm_choices_load(ctx);
  int d = ctx->prec == CLCNN_DOUBLE;
  size_t local, maxwg;
  device_limits(ctx, &local, &maxwg);
  struct operands o;
  clcnn_status st = operands(ctx, m, n, k, &o, 1);
  void *ref = NULL, *got = NULL;
  size_t bytes = m * n * ctx->esz;
  if (!st && (!(ref = malloc(bytes)) || !(got = malloc(bytes))))
    st = FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "tune_clblast: out of host memory");
  /* the reference product, by clcnn's GEMM (tested against the formula in test_net) */
  if (!st) st = clcnn__gemm_own(ctx, "tune reference", 0, 0, m, n, k, 1.0, &o.a, 0, k, &o.b, 0, n, 0.0, &o.c, 0, n);
  if (!st) st = clcnn__read(ctx, &o.c, 0, bytes, ref, "tune reference");
  double flops = 2.0 * m * n * k, base = 0, best = 0, scale = 0;
  for (size_t i = 0; !st && i < m * n; i++) {
    double r = d ? ((double *)ref)[i] : ((float *)ref)[i];
    if (fabs(r) > scale) scale = fabs(r);
  }
  int best_set = -1, tried = 0;
  const int debug = getenv("CLCNN_DEBUG") != NULL;
  /* set -1: the parameters CLBlast runs with now: its own, or those tuned before */
  for (int set = -1; !st && set < NSETS && (!max_sets || tried < max_sets); set++) {
    const char *bad = set >= 0 ? xgemm_invalid(xgemm_sets[set], ctx->esz, local, maxwg) : NULL;
    if (bad) {
      if (debug) fprintf(stderr, "clcnn: tune: set %d skipped: %s\n", set, bad);
      continue;
    }
    if (set >= 0) tried++;
    if (set >= 0 && xgemm_apply(ctx, d, xgemm_sets[set])) {
      clcnn__clear_error(ctx);
      continue;
    }
    double sec = 0;
    clcnn_status s = time_fn(ctx, clcnn__gemm_clblast, 0, 0, m, n, k, &o.a, &o.b, &o.c, 3, 1, &sec);
    double err = 0;
    if (!s) s = clcnn__read(ctx, &o.c, 0, bytes, got, "tune result");
    for (size_t i = 0; !s && i < m * n; i++) {
      double r = d ? ((double *)ref)[i] : ((float *)ref)[i], g = d ? ((double *)got)[i] : ((float *)got)[i];
      if (!(fabs(g - r) <= err)) err = fabs(g - r); /* NaN counts as an error */
      if (isnan(g)) err = INFINITY;
    }
    int right = !s && err <= (d ? 1e-10 : 1e-4) * (scale + 1);
    double gf = sec > 0 ? flops / sec / 1e9 : 0;
    if (debug) fprintf(stderr, "clcnn: tune: set %d: %s%s, %.1f GFLOP/s\n", set, s ? clcnn_ctx_last_error(ctx) : "ran",
                       s ? "" : right ? ", right" : ", WRONG product", gf);
    if (s && set >= 0) clcnn__clear_error(ctx); /* a set the driver cannot build is only not a candidate */
    if (set < 0) {
      if (s) st = s; /* CLBlast does not run at all here: its error stands */
      else base = gf;
    } else if (right && gf > best) {
      best = gf, best_set = set;
    }
  }
  if (!st) {
    int record = best_set >= 0 && best > base;
    /* CLBlast keeps the last set applied for the rest of the process: apply the winner, the set
     * tuned before when that won, or else the fastest candidate (CLBlast's own parameters
     * cannot be put back; new processes run on them, as nothing is recorded) */
    if (record || (best_set >= 0 && !(ctx->xgemm_gflops[d] > 0)))
      st = xgemm_apply(ctx, d, xgemm_sets[best_set]);
    else if (ctx->xgemm_gflops[d] > 0)
      st = xgemm_apply(ctx, d, ctx->xgemm[d]);
    if (!st && record) {
      memcpy(ctx->xgemm[d], xgemm_sets[best_set], sizeof ctx->xgemm[d]);
      ctx->xgemm_gflops[d] = best;
      /* the shapes measured against the old parameters are stale */
      int j = 0;
      for (int i = 0; i < ctx->nchoices; i++)
        if (ctx->choices[i].dbl != d) ctx->choices[j++] = ctx->choices[i];
      ctx->nchoices = j;
      save(ctx);
    }
    if (!record) best = base;
    if (!st && best_set < 0 && tried && !(ctx->xgemm_gflops[d] > 0)) {
      /* every candidate failed or computed wrong, and CLBlast cannot be given its own parameters
       * back: this context stops using it */
      ctx->gemm_mode = GEMM_OWN, ctx->gemm_own = 1;
      st = FAIL(ctx, CLCNN_ERR_BLAS,
                "tune_clblast: none of the %d parameter sets tried ran and computed right; CLBlast keeps the last "
                "one for the rest of this process, so this context now uses clcnn's GEMM only",
                tried);
    }
  }
  if (!st && before_gflops) *before_gflops = base;
  if (!st && after_gflops) *after_gflops = best;
  free(ref), free(got);
  operands_free(ctx, &o);
  return st;
}
