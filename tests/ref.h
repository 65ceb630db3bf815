/* tests/ref.h - plain C references for clcnn's layers, written from the formulas.
 *
 * Double precision, no OpenCL, PyTorch semantics: activations NCHW, conv weights
 * OIHW = (out, in/groups, kh, kw), linear weights (out, in), y = x W^T + b.
 * Strides, dilations and groups given here are the effective ones (>= 1): the caller
 * turns clcnn's "0 means default" into real values. Every array is contiguous.
 */
#ifndef CLCNN_REF_H
#define CLCNN_REF_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* ---- a small seeded generator: splitmix64 ----------------------------------------- */
typedef struct {
  uint64_t s;
} ref_rng;

static inline void ref_rng_seed(ref_rng *r, uint64_t seed) { r->s = seed; }

static inline uint64_t ref_rng_next(ref_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 random bits. */
static inline double ref_rng_uniform(ref_rng *r) {
  return (double)(ref_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi). */
static inline double ref_rng_range(ref_rng *r, double lo, double hi) {
  return lo + (hi - lo) * ref_rng_uniform(r);
}

/* Uniform integer in [0, n), n > 0 (the modulo bias is irrelevant for tests). */
static inline int ref_rng_int(ref_rng *r, int n) { return (int)(ref_rng_next(r) % (uint64_t)n); }

/* ---- shapes --------------------------------------------------------------------------- */
/* floor((in + 2p - d*(k-1) - 1) / s) + 1, with a true floor; <= 0 means "does not fit". */
static inline int ref_out_dim(int in, int k, int s, int p, int d) {
  int num = in + 2 * p - d * (k - 1) - 1;
  int q = num >= 0 ? num / s : -((-num + s - 1) / s);
  return q + 1;
}

static inline int ref_imin(int a, int b) { return a < b ? a : b; }
static inline int ref_imax(int a, int b) { return a > b ? a : b; }

/* ---- conv2d (torch.nn.functional.conv2d) --------------------------------------------
 * x (n,c,h,w); wt (oc, c/groups, kh, kw); bias (oc) or NULL; y (n, oc, oh, ow) with
 * oh = ref_out_dim(h, kh, sh, ph, dh), ow likewise. Zero padding. */
static inline void ref_conv2d(const double *x, int n, int c, int h, int w, const double *wt,
                              const double *bias, int oc, int kh, int kw, int sh, int sw, int ph,
                              int pw, int dh, int dw, int groups, double *y) {
  int oh = ref_out_dim(h, kh, sh, ph, dh), ow = ref_out_dim(w, kw, sw, pw, dw);
  int cg = c / groups, ocg = oc / groups;
  for (int b = 0; b < n; b++)
    for (int o = 0; o < oc; o++) {
      int g = o / ocg;
      for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
          double acc = bias ? bias[o] : 0.0;
          for (int ci = 0; ci < cg; ci++) {
            int ic = g * cg + ci;
            for (int ki = 0; ki < kh; ki++) {
              int ih = i * sh - ph + ki * dh;
              if (ih < 0 || ih >= h) continue;
              for (int kj = 0; kj < kw; kj++) {
                int iw = j * sw - pw + kj * dw;
                if (iw < 0 || iw >= w) continue;
                acc += x[(((size_t)b * c + ic) * h + ih) * w + iw] *
                       wt[(((size_t)o * cg + ci) * kh + ki) * kw + kj];
              }
            }
          }
          y[(((size_t)b * oc + o) * oh + i) * ow + j] = acc;
        }
    }
}

/* Its adjoint: given dy (n, oc, oh, ow), the gradients of sum(y * dy): dx (n,c,h,w) and
 * dwt (oc, c/groups, kh, kw) are overwritten, db (oc) too when not NULL. */
static inline void ref_conv2d_backward(const double *x, int n, int c, int h, int w, const double *wt,
                                       int oc, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                                       int dw, int groups, const double *dy, double *dx, double *dwt,
                                       double *db) {
  int oh = ref_out_dim(h, kh, sh, ph, dh), ow = ref_out_dim(w, kw, sw, pw, dw);
  int cg = c / groups, ocg = oc / groups;
  for (size_t i = 0; i < (size_t)n * c * h * w; i++) dx[i] = 0.0;
  for (size_t i = 0; i < (size_t)oc * cg * kh * kw; i++) dwt[i] = 0.0;
  for (int o = 0; db && o < oc; o++) db[o] = 0.0;
  for (int b = 0; b < n; b++)
    for (int o = 0; o < oc; o++) {
      int g = o / ocg;
      for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
          double d = dy[(((size_t)b * oc + o) * oh + i) * ow + j];
          if (db) db[o] += d;
          for (int ci = 0; ci < cg; ci++) {
            int ic = g * cg + ci;
            for (int ki = 0; ki < kh; ki++) {
              int ih = i * sh - ph + ki * dh;
              if (ih < 0 || ih >= h) continue;
              for (int kj = 0; kj < kw; kj++) {
                int iw = j * sw - pw + kj * dw;
                if (iw < 0 || iw >= w) continue;
                size_t xi = (((size_t)b * c + ic) * h + ih) * w + iw;
                size_t wi = (((size_t)o * cg + ci) * kh + ki) * kw + kj;
                dx[xi] += d * wt[wi];
                dwt[wi] += d * x[xi];
              }
            }
          }
        }
    }
}

/* ---- linear: y = x W^T + b --------------------------------------------------------------
 * x (n, in); wt (out, in); bias (out) or NULL; y (n, out). */
static inline void ref_linear(const double *x, int n, int in, const double *wt,
                              const double *bias, int out, double *y) {
  for (int b = 0; b < n; b++)
    for (int o = 0; o < out; o++) {
      double acc = bias ? bias[o] : 0.0;
      for (int k = 0; k < in; k++) acc += x[(size_t)b * in + k] * wt[(size_t)o * in + k];
      y[(size_t)b * out + o] = acc;
    }
}

/* ---- element-wise activations ----------------------------------------------------------- */
typedef enum { REF_RELU, REF_LEAKY_RELU, REF_SIGMOID, REF_TANH } ref_act_kind;

/* y[i] = f(x[i]); slope is leaky relu's negative_slope (y = x > 0 ? x : slope * x). */
static inline void ref_activation(ref_act_kind kind, double slope, const double *x, size_t count,
                                  double *y) {
  for (size_t i = 0; i < count; i++) {
    double v = x[i];
    switch (kind) {
    case REF_RELU: y[i] = v > 0.0 ? v : 0.0; break;
    case REF_LEAKY_RELU: y[i] = v > 0.0 ? v : slope * v; break;
    case REF_SIGMOID: /* stable on both sides */
      y[i] = v >= 0.0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
      break;
    case REF_TANH: y[i] = tanh(v); break;
    }
  }
}

/* ---- max pooling (torch.nn.MaxPool2d, dilation 1, ceil_mode=False) ----------------------
 * x (n,c,h,w); y (n,c,oh,ow); argmax (n,c,oh,ow) or NULL: the flat index into x of each
 * window's maximum (the first one on ties, as PyTorch). Padding acts as -inf. */
static inline void ref_maxpool2d(const double *x, int n, int c, int h, int w, int kh, int kw,
                                 int sh, int sw, int ph, int pw, double *y, size_t *argmax) {
  int oh = ref_out_dim(h, kh, sh, ph, 1), ow = ref_out_dim(w, kw, sw, pw, 1);
  for (int p = 0; p < n * c; p++)
    for (int i = 0; i < oh; i++)
      for (int j = 0; j < ow; j++) {
        double best = -INFINITY;
        size_t where = 0;
        for (int ki = 0; ki < kh; ki++) {
          int ih = i * sh - ph + ki;
          if (ih < 0 || ih >= h) continue;
          for (int kj = 0; kj < kw; kj++) {
            int iw = j * sw - pw + kj;
            if (iw < 0 || iw >= w) continue;
            size_t at = ((size_t)p * h + ih) * w + iw;
            if (x[at] > best) {
              best = x[at];
              where = at;
            }
          }
        }
        size_t o = ((size_t)p * oh + i) * ow + j;
        y[o] = best;
        if (argmax) argmax[o] = where;
      }
}

/* dx (count_x) = scatter-add of dy (count_y) through argmax. */
static inline void ref_maxpool2d_backward(const double *dy, const size_t *argmax, size_t count_y,
                                          double *dx, size_t count_x) {
  for (size_t i = 0; i < count_x; i++) dx[i] = 0.0;
  for (size_t i = 0; i < count_y; i++) dx[argmax[i]] += dy[i];
}

/* ---- average pooling (torch.nn.AvgPool2d, count_include_pad=True, ceil_mode=False) -------
 * The divisor counts padded positions but not those past the padding:
 *   hstart = oh*sh - ph, hend = min(hstart + kh, h + ph), likewise for w,
 *   divisor = (hend - hstart) * (wend - wstart), taken before clamping to the real input. */
static inline void ref_avgpool2d(const double *x, int n, int c, int h, int w, int kh, int kw,
                                 int sh, int sw, int ph, int pw, double *y) {
  int oh = ref_out_dim(h, kh, sh, ph, 1), ow = ref_out_dim(w, kw, sw, pw, 1);
  for (int p = 0; p < n * c; p++)
    for (int i = 0; i < oh; i++)
      for (int j = 0; j < ow; j++) {
        int hs = i * sh - ph, ws = j * sw - pw;
        int he = ref_imin(hs + kh, h + ph), we = ref_imin(ws + kw, w + pw);
        int divisor = (he - hs) * (we - ws);
        hs = ref_imax(hs, 0);
        ws = ref_imax(ws, 0);
        he = ref_imin(he, h);
        we = ref_imin(we, w);
        double acc = 0.0;
        for (int ih = hs; ih < he; ih++)
          for (int iw = ws; iw < we; iw++) acc += x[((size_t)p * h + ih) * w + iw];
        y[((size_t)p * oh + i) * ow + j] = acc / divisor;
      }
}

/* ---- global average pooling: x (n,c,h,w) -> y (n,c,1,1) --------------------------------- */
static inline void ref_global_avgpool(const double *x, int n, int c, int h, int w, double *y) {
  for (int p = 0; p < n * c; p++) {
    double acc = 0.0;
    for (int k = 0; k < h * w; k++) acc += x[(size_t)p * h * w + k];
    y[p] = acc / (h * w);
  }
}

/* ---- softmax cross-entropy, mean over the batch -----------------------------------------
 * z (n, k) logits; labels (n) in [0, k). Returns mean_b (logsumexp(z_b) - z_b[label_b]),
 * computed stably (the row maximum is subtracted first). dz (n, k) or NULL receives the
 * gradient (softmax(z_b) - onehot(label_b)) / n. */
static inline double ref_softmax_xent(const double *z, int n, int k, const int32_t *labels,
                                      double *dz) {
  double total = 0.0;
  for (int b = 0; b < n; b++) {
    const double *zb = z + (size_t)b * k;
    double m = zb[0];
    for (int i = 1; i < k; i++)
      if (zb[i] > m) m = zb[i];
    double s = 0.0;
    for (int i = 0; i < k; i++) s += exp(zb[i] - m);
    total += (m - zb[labels[b]]) + log(s);
    if (dz)
      for (int i = 0; i < k; i++)
        dz[(size_t)b * k + i] = (exp(zb[i] - m) / s - (i == labels[b] ? 1.0 : 0.0)) / n;
  }
  return total / n;
}

/* ---- per-position cross-entropy with an ignore index (torch.nn.CrossEntropyLoss) ----------
 * z (n, c, p) logits, labels (n, p) in [0, c) or equal to ignore. Returns the mean over the
 * positions whose label is not ignore (NaN when there are none, as PyTorch's 0/0); dz (n, c, p)
 * or NULL receives (softmax - onehot) / count at those positions, 0 at the ignored ones. */
static inline double ref_xent_positions(const double *z, int n, int c, int p, const int32_t *labels, int ignore,
                                        double *dz) {
  int count = 0;
  for (int i = 0; i < n * p; i++) count += labels[i] != ignore;
  double total = 0.0;
  for (int b = 0; b < n; b++)
    for (int q = 0; q < p; q++) {
      const double *zq = z + (size_t)b * c * p + q;
      double *dq = dz ? dz + (size_t)b * c * p + q : NULL;
      int t = labels[b * p + q];
      if (t == ignore) {
        for (int j = 0; dq && j < c; j++) dq[(size_t)j * p] = 0.0;
        continue;
      }
      double m = zq[0];
      for (int j = 1; j < c; j++)
        if (zq[(size_t)j * p] > m) m = zq[(size_t)j * p];
      double s = 0.0;
      for (int j = 0; j < c; j++) s += exp(zq[(size_t)j * p] - m);
      total += log(s) + m - zq[(size_t)t * p];
      for (int j = 0; dq && j < c; j++) dq[(size_t)j * p] = (exp(zq[(size_t)j * p] - m) / s - (j == t)) / count;
    }
  return total / count; /* 0/0 = NaN when every label is ignored */
}

/* ---- elementwise losses, mean over all m elements ---------------------------------------
 * x and t (m); each returns the mean loss and, when g is not NULL, writes dL/dx (of the mean). */

/* log(1 + e^z) without overflow */
static inline double ref_softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* torch.nn.BCEWithLogitsLoss: t * -log(sigmoid(x)) + (1 - t) * -log(1 - sigmoid(x)), written as
 * t softplus(-x) + (1 - t) softplus(x); the gradient sigmoid(x) - t. */
static inline double ref_bce_with_logits(const double *x, const double *t, size_t m, double *g) {
  double total = 0.0;
  for (size_t i = 0; i < m; i++) {
    total += t[i] * ref_softplus(-x[i]) + (1 - t[i]) * ref_softplus(x[i]);
    if (g) g[i] = (1.0 / (1.0 + exp(-x[i])) - t[i]) / (double)m;
  }
  return total / (double)m;
}

/* torch.nn.MSELoss: (x - t)^2; the gradient 2 (x - t). */
static inline double ref_mse(const double *x, const double *t, size_t m, double *g) {
  double total = 0.0;
  for (size_t i = 0; i < m; i++) {
    double d = x[i] - t[i];
    total += d * d;
    if (g) g[i] = 2 * d / (double)m;
  }
  return total / (double)m;
}

/* torch.nn.SmoothL1Loss(beta): 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, d = x - t.
 * The gradient as PyTorch's backward: d / beta strictly between -beta and beta, -1 at and below
 * -beta, +1 at and above beta. beta == 0 is torch.nn.L1Loss (PyTorch calls l1_loss): |d|, whose
 * gradient is sign(d), 0 at d == 0. */
static inline double ref_smoothl1(const double *x, const double *t, size_t m, double beta, double *g) {
  double total = 0.0;
  for (size_t i = 0; i < m; i++) {
    double d = x[i] - t[i], gi;
    if (beta == 0) {
      total += fabs(d);
      gi = d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
    } else {
      total += fabs(d) < beta ? 0.5 * d * d / beta : fabs(d) - 0.5 * beta;
      gi = d <= -beta ? -1.0 : d >= beta ? 1.0 : d / beta;
    }
    if (g) g[i] = gi / (double)m;
  }
  return total / (double)m;
}

#endif /* CLCNN_REF_H */
