/* lib/detect.c - what a detector's output becomes on the host: its boxes (decoding the yolo
 * loss's grid, lib/yolo.c), non-maximum suppression, and Pascal VOC's mean average precision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

CLCNN_API double clcnn_box_iou(const clcnn_box *a, const clcnn_box *b) {
  if (!a || !b) return NAN;
  double ax0 = a->cx - a->w / 2, ax1 = a->cx + a->w / 2, ay0 = a->cy - a->h / 2, ay1 = a->cy + a->h / 2;
  double bx0 = b->cx - b->w / 2, bx1 = b->cx + b->w / 2, by0 = b->cy - b->h / 2, by1 = b->cy + b->h / 2;
  double iw = fmin(ax1, bx1) - fmax(ax0, bx0), ih = fmin(ay1, by1) - fmax(ay0, by0);
  if (!(iw > 0 && ih > 0)) return 0;
  double inter = iw * ih, uni = a->w * a->h + b->w * b->h - inter;
  return uni > 0 ? inter / uni : 0;
}

static double sigmoid(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

CLCNN_API clcnn_status clcnn_yolo_decode(const void *out, size_t esz, int n, int classes, int gh, int gw,
                                         double min_score, int image0, clcnn_detection *dets, int max, int *count) {
  if (!out || !count || (!dets && max > 0)) return CLCNN_ERR_NULL_POINTER;
  if ((esz != 4 && esz != 8) || n < 0 || classes < 1 || gh < 1 || gw < 1 || max < 0) return CLCNN_ERR_INVALID_ARGUMENT;
  size_t p = (size_t)gh * gw;
  int found = 0;
#define X(i) (esz == 8 ? ((const double *)out)[i] : (double)((const float *)out)[i])
  for (int b = 0; b < n; b++)
    for (size_t c = 0; c < p; c++) {
      size_t at = (size_t)b * (5 + classes) * p + c;
      /* the class: the first largest score (a NaN counts as largest, as torch.argmax) */
      int best = 0;
      double top = X(at + 5 * p), sum = 0;
      for (int j = 1; j < classes; j++) {
        double z = X(at + (size_t)(5 + j) * p);
        if (z > top || (isnan(z) && !isnan(top))) best = j, top = z;
      }
      for (int j = 0; j < classes; j++) sum += exp(X(at + (size_t)(5 + j) * p) - top);
      double score = sigmoid(X(at)) / sum; /* sigmoid(o) * softmax(z)[best] */
      if (!(score >= min_score)) continue;
      if (found < max) {
        double w = X(at + 3 * p), h = X(at + 4 * p);
        clcnn_detection *d = &dets[found];
        d->image = image0 + b, d->score = score;
        d->box.cls = best;
        d->box.cx = fmin(fmax(((double)(c % gw) + X(at + p)) / gw, 0), 1);
        d->box.cy = fmin(fmax(((double)(c / gw) + X(at + 2 * p)) / gh, 0), 1);
        d->box.w = fmin(w * w, 1), d->box.h = fmin(h * h, 1);
      }
      found++;
    }
#undef X
  *count = found < max ? found : max;
  return CLCNN_SUCCESS;
}

/* higher score first; equal scores in their input order (the sort is made stable by the index) */
struct ranked {
  const clcnn_detection *d;
  int i;
};
static int by_score(const void *pa, const void *pb) {
  const struct ranked *a = pa, *b = pb;
  if (a->d->score != b->d->score) return a->d->score > b->d->score ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

CLCNN_API int clcnn_nms(clcnn_detection *dets, int n, double iou_threshold) {
  if (!dets || n <= 0) return 0;
  struct ranked *r = malloc((size_t)n * sizeof *r);
  clcnn_detection *kept = malloc((size_t)n * sizeof *kept);
  if (!r || !kept) {
    free(r), free(kept);
    return -1;
  }
  for (int i = 0; i < n; i++) r[i].d = &dets[i], r[i].i = i;
  qsort(r, (size_t)n, sizeof *r, by_score);
  int nk = 0;
  for (int i = 0; i < n; i++) {
    const clcnn_detection *d = r[i].d;
    int keep = 1;
    for (int j = 0; j < nk && keep; j++)
      keep = !(kept[j].image == d->image && kept[j].box.cls == d->box.cls &&
               clcnn_box_iou(&kept[j].box, &d->box) > iou_threshold);
    if (keep) kept[nk++] = *d;
  }
  memcpy(dets, kept, (size_t)nk * sizeof *kept);
  free(r), free(kept);
  return nk;
}

CLCNN_API clcnn_status clcnn_voc_ap(const clcnn_detection *dets, int ndets, const clcnn_box *truth,
                                    const int *truth_image, int ntruth, int classes, double iou_threshold, double *ap,
                                    double *map) {
  if ((!dets && ndets > 0) || ((!truth || !truth_image) && ntruth > 0)) return CLCNN_ERR_NULL_POINTER;
  if (ndets < 0 || ntruth < 0 || classes < 1) return CLCNN_ERR_INVALID_ARGUMENT;
  for (int i = 0; i < ndets; i++)
    if (dets[i].box.cls < 0 || dets[i].box.cls >= classes || isnan(dets[i].score)) return CLCNN_ERR_LABEL;
  for (int i = 0; i < ntruth; i++)
    if (truth[i].cls < 0 || truth[i].cls >= classes) return CLCNN_ERR_LABEL;
  struct ranked *r = malloc((size_t)(ndets ? ndets : 1) * sizeof *r);
  char *used = calloc((size_t)(ntruth ? ntruth : 1), 1);
  if (!r || !used) {
    free(r), free(used);
    return CLCNN_ERR_OUT_OF_MEMORY;
  }
  double sum = 0;
  int counted = 0;
  for (int k = 0; k < classes; k++) {
    int npos = 0, nr = 0;
    for (int i = 0; i < ntruth; i++) npos += truth[i].cls == k;
    for (int i = 0; i < ndets; i++)
      if (dets[i].box.cls == k) r[nr].d = &dets[i], r[nr].i = i, nr++;
    if (!npos) { /* no object of this class: no AP (VOC leaves such classes out) */
      if (ap) ap[k] = NAN;
      continue;
    }
    qsort(r, (size_t)nr, sizeof *r, by_score);
    memset(used, 0, (size_t)ntruth);
    /* walk down the ranking: a detection is a true positive when its best-overlapping object of
     * its class in its image overlaps it by more than the threshold and was not taken by a
     * higher-ranked one. The area under the precision envelope (each precision raised to the
     * largest at any higher recall), summed where recall steps: VOC's all-point AP. */
    double tp = 0, fp = 0, area = 0, prev_recall = 0;
    double *prec = malloc((size_t)(nr ? nr : 1) * sizeof *prec), *rec = malloc((size_t)(nr ? nr : 1) * sizeof *rec);
    if (!prec || !rec) {
      free(prec), free(rec), free(r), free(used);
      return CLCNN_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < nr; i++) {
      const clcnn_detection *d = r[i].d;
      double best = -1;
      int at = -1;
      for (int g = 0; g < ntruth; g++)
        if (truth[g].cls == k && truth_image[g] == d->image) {
          double o = clcnn_box_iou(&truth[g], &d->box);
          if (o > best) best = o, at = g;
        }
      if (at >= 0 && best > iou_threshold && !used[at]) used[at] = 1, tp++;
      else fp++;
      prec[i] = tp / (tp + fp), rec[i] = tp / npos;
    }
    for (int i = nr - 2; i >= 0; i--) prec[i] = fmax(prec[i], prec[i + 1]);
    for (int i = 0; i < nr; i++) {
      area += (rec[i] - prev_recall) * prec[i];
      prev_recall = rec[i];
    }
    free(prec), free(rec);
    if (ap) ap[k] = area;
    sum += area, counted++;
  }
  free(r), free(used);
  if (map) *map = counted ? sum / counted : NAN;
  return CLCNN_SUCCESS;
}
