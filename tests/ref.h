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

/* ---- conv_transpose2d (torch.nn.functional.conv_transpose2d) ------------------------
 * From the definition: every input element x[b][ic][i][j] adds x * wt[ic][o'][ki][kj] to
 * y[b][g*ocg + o'][i*sh - ph + ki*dh][j*sw - pw + kj*dw] where that lands inside y, g being
 * ic's group. x (n,c,h,w); wt (c, oc/groups, kh, kw); bias (oc) or NULL; y (n, oc, oh, ow)
 * with oh = ref_convt_out_dim(h, kh, sh, ph, oph, dh), ow likewise. */
static inline int ref_convt_out_dim(int in, int k, int s, int p, int op, int d) {
  return (in - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

static inline void ref_conv_transpose2d(const double *x, int n, int c, int h, int w, const double *wt,
                                        const double *bias, int oc, int kh, int kw, int sh, int sw, int ph,
                                        int pw, int oph, int opw, int dh, int dw, int groups, double *y) {
  int oh = ref_convt_out_dim(h, kh, sh, ph, oph, dh), ow = ref_convt_out_dim(w, kw, sw, pw, opw, dw);
  int cg = c / groups, ocg = oc / groups;
  for (int b = 0; b < n; b++)
    for (int o = 0; o < oc; o++)
      for (int q = 0; q < oh * ow; q++) y[((size_t)b * oc + o) * oh * ow + q] = bias ? bias[o] : 0.0;
  for (int b = 0; b < n; b++)
    for (int ic = 0; ic < c; ic++) {
      int g = ic / cg;
      for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
          double v = x[(((size_t)b * c + ic) * h + i) * w + j];
          for (int oo = 0; oo < ocg; oo++)
            for (int ki = 0; ki < kh; ki++) {
              int yi = i * sh - ph + ki * dh;
              if (yi < 0 || yi >= oh) continue;
              for (int kj = 0; kj < kw; kj++) {
                int yj = j * sw - pw + kj * dw;
                if (yj < 0 || yj >= ow) continue;
                y[(((size_t)b * oc + g * ocg + oo) * oh + yi) * ow + yj] +=
                    v * wt[(((size_t)ic * ocg + oo) * kh + ki) * kw + kj];
              }
            }
        }
    }
}

/* Its adjoint: given dy (n, oc, oh, ow), the gradients of sum(y * dy): dx (n,c,h,w) and
 * dwt (c, oc/groups, kh, kw) are overwritten, db (oc) too when not NULL. */
static inline void ref_conv_transpose2d_backward(const double *x, int n, int c, int h, int w, const double *wt,
                                                 int oc, int kh, int kw, int sh, int sw, int ph, int pw, int oph,
                                                 int opw, int dh, int dw, int groups, const double *dy, double *dx,
                                                 double *dwt, double *db) {
  int oh = ref_convt_out_dim(h, kh, sh, ph, oph, dh), ow = ref_convt_out_dim(w, kw, sw, pw, opw, dw);
  int cg = c / groups, ocg = oc / groups;
  for (size_t i = 0; i < (size_t)oc * cg * kh * kw; i++) dwt[i] = 0.0;
  for (int o = 0; db && o < oc; o++) {
    db[o] = 0.0;
    for (int b = 0; b < n; b++)
      for (int q = 0; q < oh * ow; q++) db[o] += dy[((size_t)b * oc + o) * oh * ow + q];
  }
  for (int b = 0; b < n; b++)
    for (int ic = 0; ic < c; ic++) {
      int g = ic / cg;
      for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
          size_t xi = (((size_t)b * c + ic) * h + i) * w + j;
          double acc = 0.0;
          for (int oo = 0; oo < ocg; oo++)
            for (int ki = 0; ki < kh; ki++) {
              int yi = i * sh - ph + ki * dh;
              if (yi < 0 || yi >= oh) continue;
              for (int kj = 0; kj < kw; kj++) {
                int yj = j * sw - pw + kj * dw;
                if (yj < 0 || yj >= ow) continue;
                double d = dy[(((size_t)b * oc + g * ocg + oo) * oh + yi) * ow + yj];
                size_t wi = (((size_t)ic * ocg + oo) * kh + ki) * kw + kj;
                acc += d * wt[wi];
                dwt[wi] += d * x[xi];
              }
            }
          dx[xi] = acc;
        }
    }
}

/* ---- graph joins: add, concat along channels, upsampling ----------------------------------- */
/* y = a + b (count elements). */
static inline void ref_add(const double *a, const double *b, size_t count, double *y) {
  for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

/* torch.cat(dim=1): k inputs x[i] (n, c[i], p) -> y (n, sum c, p), p = H*W. */
static inline void ref_concat(const double *const *x, const int *c, int k, int n, int p, double *y) {
  int ct = 0;
  for (int i = 0; i < k; i++) ct += c[i];
  for (int b = 0; b < n; b++)
    for (int i = 0, off = 0; i < k; off += c[i], i++)
      for (int ch = 0; ch < c[i]; ch++)
        for (int q = 0; q < p; q++)
          y[((size_t)b * ct + off + ch) * p + q] = x[i][((size_t)b * c[i] + ch) * p + q];
}

/* Its adjoint: dx[i] (n, c[i], p) overwritten with its slice of dy (n, sum c, p). */
static inline void ref_concat_backward(const double *dy, const int *c, int k, int n, int p, double *const *dx) {
  int ct = 0;
  for (int i = 0; i < k; i++) ct += c[i];
  for (int b = 0; b < n; b++)
    for (int i = 0, off = 0; i < k; off += c[i], i++)
      for (int ch = 0; ch < c[i]; ch++)
        for (int q = 0; q < p; q++)
          dx[i][((size_t)b * c[i] + ch) * p + q] = dy[((size_t)b * ct + off + ch) * p + q];
}

/* torch.nn.Upsample(scale_factor=s, mode, align_corners=False), integer s >= 1, along one axis
 * of n inputs: output o reads inputs i0 (weight w0) and i1 (weight w1). nearest: i0 = i1 =
 * floor(o / s), w0 = 1, w1 = 0. bilinear: src = (o + 0.5) / s - 0.5, below 0 taken as 0,
 * i0 = floor(src), i1 = i0 + 1 clamped to n - 1, w1 = src - i0, w0 = 1 - w1 (PyTorch's
 * area_pixel_compute_source_index and upsample_bilinear2d, in double). */
static inline void ref_upsample_src(int o, int s, int n, int bilinear, int *i0, int *i1, double *w0, double *w1) {
  if (!bilinear) {
    *i0 = *i1 = o / s;
    *w0 = 1.0, *w1 = 0.0;
    return;
  }
  double src = (o + 0.5) / s - 0.5;
  if (src < 0) src = 0;
  *i0 = (int)floor(src);
  *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
  *w1 = src - *i0;
  *w0 = 1.0 - *w1;
}

/* x (n,c,h,w) -> y (n,c,h*s,w*s). */
static inline void ref_upsample(const double *x, int n, int c, int h, int w, int s, int bilinear, double *y) {
  int oh = h * s, ow = w * s;
  for (int p = 0; p < n * c; p++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        int y0, y1, x0, x1;
        double a0, a1, b0, b1;
        ref_upsample_src(oy, s, h, bilinear, &y0, &y1, &a0, &a1);
        ref_upsample_src(ox, s, w, bilinear, &x0, &x1, &b0, &b1);
        const double *xp = x + (size_t)p * h * w;
        y[((size_t)p * oh + oy) * ow + ox] =
            a0 * (b0 * xp[y0 * w + x0] + b1 * xp[y0 * w + x1]) + a1 * (b0 * xp[y1 * w + x0] + b1 * xp[y1 * w + x1]);
      }
}

/* Its adjoint, scattered: dx (n,c,h,w) overwritten with the sum over outputs of weight * dy. */
static inline void ref_upsample_backward(const double *dy, int n, int c, int h, int w, int s, int bilinear,
                                         double *dx) {
  int oh = h * s, ow = w * s;
  for (size_t i = 0; i < (size_t)n * c * h * w; i++) dx[i] = 0.0;
  for (int p = 0; p < n * c; p++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        int y0, y1, x0, x1;
        double a0, a1, b0, b1;
        ref_upsample_src(oy, s, h, bilinear, &y0, &y1, &a0, &a1);
        ref_upsample_src(ox, s, w, bilinear, &x0, &x1, &b0, &b1);
        double d = dy[((size_t)p * oh + oy) * ow + ox];
        double *dp = dx + (size_t)p * h * w;
        dp[y0 * w + x0] += a0 * b0 * d;
        dp[y0 * w + x1] += a0 * b1 * d;
        dp[y1 * w + x0] += a1 * b0 * d;
        dp[y1 * w + x1] += a1 * b1 * d;
      }
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

/* The YOLO v1 grid loss as lib/yolo.c states it: x n x (5+k) x p (per cell: objectness logit o,
 * x, y, w, h, k class scores), t n x 6 x p (per cell: has an object, tx, ty, tw, th, class).
 * Per sample, over the cells: with an object, softplus(-o) + coord * ((x-tx)^2 + (y-ty)^2 +
 * (w-sqrt(tw))^2 + (h-sqrt(th))^2) + logsumexp(z) - z_class; without, noobj * softplus(o).
 * Returns the mean over the n samples; g (optional) its gradient. */
static inline double ref_yolo(const double *x, const double *t, int n, int k, int p, double coord, double noobj,
                              double *g) {
  double total = 0.0;
  for (int b = 0; b < n; b++)
    for (int c = 0; c < p; c++) {
      const double *xi = x + (size_t)b * (5 + k) * p + c, *ti = t + (size_t)b * 6 * p + c;
      double *gi = g ? g + (size_t)b * (5 + k) * p + c : NULL;
      double o = xi[0], sig = 1.0 / (1.0 + exp(-o));
      if (ti[0] == 0) {
        total += noobj * ref_softplus(o);
        if (gi) {
          gi[0] = noobj * sig / n;
          for (int j = 1; j < 5 + k; j++) gi[(size_t)j * p] = 0;
        }
        continue;
      }
      total += ref_softplus(-o);
      if (gi) gi[0] = (sig - 1) / n;
      double want[4] = {ti[p], ti[2 * (size_t)p], sqrt(ti[3 * (size_t)p]), sqrt(ti[4 * (size_t)p])};
      for (int j = 0; j < 4; j++) {
        double d = xi[(size_t)(j + 1) * p] - want[j];
        total += coord * d * d;
        if (gi) gi[(size_t)(j + 1) * p] = coord * 2 * d / n;
      }
      int cls = (int)ti[5 * (size_t)p];
      double m = -INFINITY, sum = 0;
      for (int j = 0; j < k; j++) m = fmax(m, xi[(size_t)(5 + j) * p]);
      for (int j = 0; j < k; j++) sum += exp(xi[(size_t)(5 + j) * p] - m);
      total += log(sum) + m - xi[(size_t)(5 + cls) * p];
      if (gi)
        for (int j = 0; j < k; j++)
          gi[(size_t)(5 + j) * p] = (exp(xi[(size_t)(5 + j) * p] - m) / sum - (j == cls)) / n;
    }
  return total / n;
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
