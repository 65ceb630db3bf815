/* tests/testutil.h - helpers that clcnn's C tests share: the margins of the numeric checks,
 * host buffers, float-exact random data, copies to and from a context's precision, the
 * closeness check, the pick of finite-difference indices, the CALL macro, the central-difference
 * gradient check, the contexts, and the check that a model file's text is refused with the
 * right words.
 *
 * Everything is static (inline), so each test program gets its own copy and its own `rng`; a
 * program seeds it with ref_rng_seed(&rng, ...) before using rndf() or pick(). Include after
 * clcnn.h; it includes ref.h and tap.h. */
#ifndef CLCNN_TESTUTIL_H
#define CLCNN_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "ref.h"
#include "tap.h"

/* Margins:
 *   forward in a double context vs the double reference: |a-b| <= F64_ABS + F64_REL*|b|;
 *   a float context vs the double one or the reference:  |a-b| <= F32_REL*|b| + F32_SCALE*max|b|;
 *   gradients vs central differences with step FD_H:     |a-n| <= FD_ABS + FD_REL*|n|, on every
 *   element of tensors up to FD_SAMPLE elements and on FD_SAMPLE random ones of bigger tensors. */
#define F64_ABS 1e-12
#define F64_REL 1e-10
#define F32_REL 1e-5
#define F32_SCALE 1e-5 /* times the largest |reference| of the tensor */
#define FD_H 1e-6
#define FD_ABS 1e-7
#define FD_REL 1e-6
#define FD_SAMPLE 64

/* The program's random numbers (seeded by its main). */
static ref_rng rng;

/* calloc that never returns NULL (zero sizes count as one): out of memory bails out. */
static inline void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) tap_bail("out of host memory");
  return p;
}
static inline double *dalloc(size_t n) { return xcalloc(n, sizeof(double)); }

/* A number float holds exactly, uniform in [lo, hi), so float and double contexts see the very
 * same data. */
static inline double rndf(double lo, double hi) { return (double)(float)ref_rng_range(&rng, lo, hi); }

/* A new host array of the context's precision holding a[0..n) (free() it). */
static inline void *to_host(const clcnn_ctx *cx, const double *a, size_t n) {
  if (clcnn_ctx_elem_size(cx) == sizeof(float)) {
    float *p = xcalloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)a[i];
    return p;
  }
  double *p = dalloc(n);
  memcpy(p, a, n * sizeof(double));
  return p;
}
/* a[0..n) from the host array h of the context's precision. */
static inline void from_host(const clcnn_ctx *cx, const void *h, double *a, size_t n) {
  if (clcnn_ctx_elem_size(cx) == sizeof(float))
    for (size_t i = 0; i < n; i++) a[i] = ((const float *)h)[i];
  else
    memcpy(a, h, n * sizeof(double));
}

static inline double max_abs(const double *a, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++)
    if (fabs(a[i]) > m) m = fabs(a[i]);
  return m;
}

/* Every |got - want| <= abs_tol + rel_tol*|want|? *maxerr gets the largest |got - want| (NaN
 * when any is NaN). */
static inline int close_all(const double *got, const double *want, size_t n, double abs_tol, double rel_tol,
                            double *maxerr) {
  int ok = 1;
  double m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]);
    if (!(e <= abs_tol + rel_tol * fabs(want[i]))) ok = 0;
    if (isnan(e) || e > m) m = isnan(m) ? m : e;
  }
  *maxerr = m;
  return ok;
}
/* The double context's margin and the float context's (see the margins above). */
static inline int close_f64(const double *got, const double *want, size_t n, double *maxerr) {
  return close_all(got, want, n, F64_ABS, F64_REL, maxerr);
}
static inline int close_f32(const double *got, const double *want, size_t n, double *maxerr) {
  return close_all(got, want, n, F32_SCALE * max_abs(want, n), F32_REL, maxerr);
}

/* The indices to check in a tensor of n elements, in idx[0..k) (idx has room for n): all of
 * them, or `most` distinct random ones. Returns k. pick() takes FD_SAMPLE. */
static inline size_t pick_most(size_t *idx, size_t n, size_t most) {
  for (size_t i = 0; i < n; i++) idx[i] = i;
  if (n <= most) return n;
  for (size_t i = 0; i < most; i++) {
    size_t j = i + (size_t)ref_rng_int(&rng, (int)(n - i));
    size_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return most;
}
static inline size_t pick(size_t *idx, size_t n) { return pick_most(idx, n, FD_SAMPLE); }

/* A failed API call: one "not ok" line that says which, with the context's story, then
 * `goto done` (the caller's clean-up label). */
#define CALL(cx, what, expr)                                                                                    \
  do {                                                                                                          \
    clcnn_status s_ = (expr);                                                                                   \
    if (s_ != CLCNN_SUCCESS) {                                                                                  \
      tap_ok(0, "%s: %s: %s (%d): %s", what, #expr, clcnn_status_name(s_), s_, clcnn_ctx_last_error(cx));       \
      goto done;                                                                                                \
    }                                                                                                           \
  } while (0)

/* Central differences of L = sum(out * G), step FD_H, with respect to the entries of t that
 * pick_most(..., most) chooses (t is the net's input xh when pidx < 0, else a host copy of parameter pidx),
 * against the analytic gradient ana: |ana - num| <= FD_ABS + FD_REL*|num|. The forward runs on
 * net (in context cx) with xh at batch n; the difference is summed as sum(G * (out+ - out-)) so
 * that the untouched outputs cancel exactly. The first miss is a diagnostic. *maxerr gets the
 * largest |ana - num| (NaN when any is), *checked how many entries were checked. Returns 1 when
 * all are close, 0 when not, -1 when an API call failed (a "not ok" line said which). */
static inline int fd_central(clcnn_ctx *cx, clcnn_net *net, int n, double *xh, int pidx, double *t, size_t count,
                             size_t most, const double *G, size_t nout, const double *ana, double *maxerr, size_t *checked,
                             const char *what) {
  size_t *idx = xcalloc(count, sizeof *idx);
  double *op = dalloc(nout), *om = dalloc(nout);
  int ok = 1;
  double m = 0.0;
  size_t k = pick_most(idx, count, most);
  for (size_t s = 0; s < k; s++) {
    size_t j = idx[s];
    double keep = t[j];
    for (int side = 0; side < 2; side++) {
      t[j] = keep + (side ? -FD_H : FD_H);
      if (pidx >= 0) CALL(cx, what, clcnn_net_param_write(net, pidx, t));
      CALL(cx, what, clcnn_net_forward(net, xh, n));
      CALL(cx, what, clcnn_net_read_output(net, side ? om : op));
    }
    t[j] = keep;
    double num = 0.0;
    for (size_t i = 0; i < nout; i++) num += G[i] * (op[i] - om[i]);
    num /= 2 * FD_H;
    double e = fabs(ana[j] - num);
    if (!(e <= FD_ABS + FD_REL * fabs(num))) {
      if (ok) tap_diag("%s: first miss at %zu: analytic %.12g, numeric %.12g", what, j, ana[j], num);
      ok = 0;
    }
    if (isnan(e) || e > m) m = isnan(m) ? m : e;
  }
  if (pidx >= 0) CALL(cx, what, clcnn_net_param_write(net, pidx, t));
  *maxerr = m;
  *checked = k;
  free(idx), free(op), free(om);
  return ok;
done:
  free(idx), free(op), free(om);
  *maxerr = NAN;
  *checked = 0;
  return -1;
}

/* A context of precision prec on the default device; none is a failure, never a skip: bails out
 * (destroying `other` first, when given). With say_device, a diagnostic names the device. */
static inline clcnn_ctx *make_ctx_of(clcnn_precision prec, clcnn_ctx *other, int say_device) {
  clcnn_ctx_options opt = {.precision = prec};
  char err[512] = "";
  clcnn_ctx *cx = NULL;
  clcnn_status s = clcnn_ctx_create(&cx, &opt, err, sizeof err);
  const char *pn = prec == CLCNN_DOUBLE ? "double" : "float";
  if (s != CLCNN_SUCCESS || !cx) {
    char why[700];
    snprintf(why, sizeof why, "clcnn_ctx_create(%s): %s (%d): %s", pn, clcnn_status_name(s), s, err);
    clcnn_ctx_destroy(other);
    tap_bail(why);
  }
  if (say_device) tap_diag("%s context on %s", pn, clcnn_ctx_device_name(cx));
  return cx;
}

/* A float context with the given GEMM backend ("clcnn", "clblast"; NULL: the default). */
static inline clcnn_ctx *open_ctx(const char *gemm) {
  clcnn_ctx *ctx = NULL;
  char err[1024];
  clcnn_ctx_options o = {.precision = CLCNN_FLOAT, .gemm = gemm};
  if (clcnn_ctx_create(&ctx, &o, err, sizeof err)) tap_bail(err);
  return ctx;
}

/* s holds every |-separated word of words? (Says which is missing.) */
static inline int has_words(const char *s, const char *words) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|"))
    if (!strstr(s, w)) {
      tap_diag("missing \"%s\" in: %s", w, s);
      return 0;
    }
  return 1;
}

/* The model file `text` (named t.txt, at this batch) is refused by clcnn_net_from_text on cx
 * with status want (0: any failure), no net, and an error in err[0..size) that holds every
 * |-separated word of words and names no source file of the library. The check itself is the
 * caller's (tap_ok with its own description); this says so when the status is not the one
 * wanted. */
static inline int model_refused(clcnn_ctx *cx, const char *text, int batch, clcnn_status want, const char *words,
                                char *err, size_t size) {
  clcnn_net *net = (clcnn_net *)&net; /* not NULL: the call must clear it */
  err[0] = 0;
  clcnn_status st = clcnn_net_from_text(cx, text, "t.txt", batch, &net, err, size);
  int ok = st != CLCNN_SUCCESS && (!want || st == want) && net == NULL && has_words(err, words) &&
           !strstr(err, "lib/");
  if (st && want && st != want) tap_diag("status %s, wanted %s", clcnn_status_name(st), clcnn_status_name(want));
  if (!st) clcnn_net_destroy(net);
  return ok;
}
#endif
