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

/* ---- YOLO label files ---- */
#define LABEL_EDGE_SLACK 1e-3 /* how far a box's edge may pass the image (label writers round) */

CLCNN_API clcnn_status clcnn_yolo_labels_parse(const char *text, size_t len, const char *name, int classes,
                                               clcnn_box **out, int *count, char *err, size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!out || !count || (!text && len)) return clcnn__errf(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_yolo_labels_parse: NULL");
  if (!name) name = "(labels)";
  *out = NULL, *count = 0;
  clcnn_box *boxes = NULL;
  int n = 0, cap = 0, line = 0;
  size_t at = 0;
  char buf[256];
  while (at < len) {
    size_t end = at;
    while (end < len && text[end] != '\n') end++;
    line++;
    size_t ll = end - at;
    if (ll && text[end - 1] == '\r') ll--; /* CRLF files */
    const char *why = NULL;
    if (ll >= sizeof buf) why = "the line is too long";
    else if (memchr(text + at, 0, ll)) why = "a NUL byte in the line";
    clcnn_box b = {0};
    if (!why) {
      memcpy(buf, text + at, ll);
      buf[ll] = 0;
      char *p = buf;
      while (*p == ' ' || *p == '\t') p++;
      if (*p) { /* a blank line holds nothing */
        char *e;
        long cls = strtol(p, &e, 10);
        double v[4];
        int good = e != p && (*e == ' ' || *e == '\t');
        for (int i = 0; good && i < 4; i++) {
          p = e;
          v[i] = strtod(p, &e);
          good = e != p && (*e == ' ' || *e == '\t' || *e == 0) && isfinite(v[i]);
        }
        while (good && (*e == ' ' || *e == '\t')) e++;
        if (!good || *e) why = "not 'class cx cy w h' (an integer and four numbers)";
        else if (cls < 0 || (classes > 0 && cls >= classes) || cls > 1000000) why = "class";
        else if (!(v[0] >= 0 && v[0] <= 1 && v[1] >= 0 && v[1] <= 1 && v[2] > 0 && v[2] <= 1 && v[3] > 0 && v[3] <= 1))
          why = "the centre must be in [0, 1] and the size in (0, 1]";
        else if (v[0] - v[2] / 2 < -LABEL_EDGE_SLACK || v[0] + v[2] / 2 > 1 + LABEL_EDGE_SLACK ||
                 v[1] - v[3] / 2 < -LABEL_EDGE_SLACK || v[1] + v[3] / 2 > 1 + LABEL_EDGE_SLACK)
          why = "the box passes the image's edge";
        else {
          b.cls = (int)cls, b.cx = v[0], b.cy = v[1], b.w = v[2], b.h = v[3];
          if (n == cap) {
            clcnn_box *g = realloc(boxes, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *g);
            if (!g) {
              free(boxes);
              return clcnn__errf(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
            }
            boxes = g;
          }
          boxes[n++] = b;
        }
        if (why && !strcmp(why, "class")) {
          free(boxes);
          if (classes > 0)
            return clcnn__errf(err, err_size, CLCNN_ERR_LABEL, "%s:%d: class %ld is not one of 0..%d", name, line, cls,
                               classes - 1);
          return clcnn__errf(err, err_size, CLCNN_ERR_LABEL, "%s:%d: class %ld is negative or too large", name, line, cls);
        }
      }
    }
    if (why) {
      free(boxes);
      return clcnn__errf(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s:%d: %s", name, line, why);
    }
    at = end + 1;
  }
  *out = boxes, *count = n;
  return CLCNN_SUCCESS;
}
