/* lib/metrics.c - segmentation metrics: the confusion matrix of per-pixel argmax predictions
 * against masks, and pixel accuracy and intersection over union from it (as Pascal VOC and
 * torchmetrics define them); and the Frechet distance of two Gaussians, what FID measures. Plain C
 * on the host: the counts are exact integers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

CLCNN_API clcnn_status clcnn_seg_confusion(const void *logits, size_t esz, const unsigned char *truth, int n,
                                           int classes, int hw, int ignore, int64_t *confusion) {
  if (!logits || !truth || !confusion) return CLCNN_ERR_NULL_POINTER;
  if (n < 0 || classes < 1 || classes > 255 || hw < 1 || (esz != 4 && esz != 8)) return CLCNN_ERR_INVALID_ARGUMENT;
  /* checked first: a bad mask changes nothing */
  for (size_t i = 0; i < (size_t)n * hw; i++)
    if (truth[i] != ignore && truth[i] >= classes) return CLCNN_ERR_LABEL;
  for (int s = 0; s < n; s++)
    for (int p = 0; p < hw; p++) {
      int t = truth[(size_t)s * hw + p];
      if (t == ignore) continue;
      /* the first largest score wins; a NaN is larger than anything (torch.argmax) */
      int best = 0;
      double bv = 0;
      for (int c = 0; c < classes; c++) {
        size_t at = ((size_t)s * classes + c) * hw + p;
        double v = esz == 4 ? ((const float *)logits)[at] : ((const double *)logits)[at];
        if (c == 0 || (isnan(v) && !isnan(bv)) || v > bv) best = c, bv = v;
        if (isnan(bv)) break;
      }
      confusion[(size_t)t * classes + best]++;
    }
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_seg_scores(const int64_t *confusion, int classes, double *pixel_acc, double *miou,
                                        double *miou_fg, double *iou) {
  if (!confusion) return CLCNN_ERR_NULL_POINTER;
  if (classes < 1 || classes > 255) return CLCNN_ERR_INVALID_ARGUMENT;
  int64_t total = 0, hit = 0;
  double sum = 0, sum_fg = 0;
  int count = 0, count_fg = 0;
  for (int c = 0; c < classes; c++) {
    int64_t tp = confusion[(size_t)c * classes + c], fp = 0, fn = 0;
    for (int k = 0; k < classes; k++) {
      total += confusion[(size_t)c * classes + k];
      if (k != c) fn += confusion[(size_t)c * classes + k], fp += confusion[(size_t)k * classes + c];
    }
    hit += tp;
    /* a class in neither the masks nor the predictions has no IoU and is left out of the means */
    double v = tp + fp + fn ? (double)tp / (double)(tp + fp + fn) : NAN;
    if (iou) iou[c] = v;
    if (!isnan(v)) {
      sum += v, count++;
      if (c > 0) sum_fg += v, count_fg++;
    }
  }
  if (pixel_acc) *pixel_acc = total ? (double)hit / (double)total : NAN;
  if (miou) *miou = count ? sum / count : NAN;
  if (miou_fg) *miou_fg = count_fg ? sum_fg / count_fg : NAN;
  return CLCNN_SUCCESS;
}

/* Eigenvalues (into w) and eigenvectors (columns of v) of the symmetric n x n matrix a (destroyed),
 * by cyclic Jacobi rotations. */
static void jacobi(double *a, int n, double *w, double *v) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) v[i * n + j] = i == j;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0, tot = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double x = a[i * n + j] * a[i * n + j];
        if (i == j) tot += x;
        else off += x;
      }
    if (off <= 1e-30 * (tot + off) || off == 0) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (apq == 0) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) { /* columns p, q */
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq, a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) { /* rows p, q */
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk, a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq, v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  for (int i = 0; i < n; i++) w[i] = a[i * n + i];
}

/* The Frechet distance between N(m1, c1) and N(m2, c2) in d dimensions:
 * |m1 - m2|^2 + tr(c1) + tr(c2) - 2 tr((c1 c2)^(1/2)), the last term as the sum of the square roots
 * of the eigenvalues of s c2 s with s = c1^(1/2) (similar to c1 c2, and symmetric). */
CLCNN_API clcnn_status clcnn_frechet_distance(const double *m1, const double *c1, const double *m2, const double *c2,
                                              int d, double *out) {
  if (!m1 || !c1 || !m2 || !c2 || !out) return CLCNN_ERR_NULL_POINTER;
  if (d < 1 || d > 4096) return CLCNN_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < (size_t)d * d; i++)
    if (!isfinite(c1[i]) || !isfinite(c2[i]) || (i < (size_t)d && (!isfinite(m1[i]) || !isfinite(m2[i]))))
      return CLCNN_ERR_INVALID_ARGUMENT;
  double *a = malloc(sizeof(double) * d * d), *v = malloc(sizeof(double) * d * d), *w = malloc(sizeof(double) * d),
         *s = malloc(sizeof(double) * d * d), *t = malloc(sizeof(double) * d * d);
  if (!a || !v || !w || !s || !t) {
    free(a), free(v), free(w), free(s), free(t);
    return CLCNN_ERR_OUT_OF_MEMORY;
  }
  memcpy(a, c1, sizeof(double) * d * d);
  jacobi(a, d, w, v);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double x = 0;
      for (int k = 0; k < d; k++) x += v[i * d + k] * sqrt(w[k] > 0 ? w[k] : 0) * v[j * d + k];
      s[i * d + j] = x;
    }
  for (int i = 0; i < d; i++) /* t = s c2 */
    for (int j = 0; j < d; j++) {
      double x = 0;
      for (int k = 0; k < d; k++) x += s[i * d + k] * c2[k * d + j];
      t[i * d + j] = x;
    }
  for (int i = 0; i < d; i++) /* a = t s */
    for (int j = 0; j < d; j++) {
      double x = 0;
      for (int k = 0; k < d; k++) x += t[i * d + k] * s[k * d + j];
      a[i * d + j] = x;
    }
  for (int i = 0; i < d; i++) /* symmetric up to rounding */
    for (int j = 0; j < i; j++) a[i * d + j] = a[j * d + i] = 0.5 * (a[i * d + j] + a[j * d + i]);
  jacobi(a, d, w, v);
  double fd = 0;
  for (int i = 0; i < d; i++) fd += (m1[i] - m2[i]) * (m1[i] - m2[i]) + c1[i * d + i] + c2[i * d + i];
  for (int i = 0; i < d; i++) fd -= 2 * sqrt(w[i] > 0 ? w[i] : 0);
  free(a), free(v), free(w), free(s), free(t);
  *out = fd;
  return CLCNN_SUCCESS;
}

