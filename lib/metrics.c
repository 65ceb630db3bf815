/* lib/metrics.c - segmentation metrics: the confusion matrix of per-pixel argmax predictions
 * against masks, and pixel accuracy and intersection over union from it (as Pascal VOC and
 * torchmetrics define them). Plain C on the host: the counts are exact integers. */
#include <math.h>
#include <stdint.h>
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
