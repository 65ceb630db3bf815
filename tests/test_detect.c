/* tests/test_detect.c - the host side of detection (lib/detect.c): IoU, decoding the yolo
 * loss's grid into boxes, non-maximum suppression and Pascal VOC's average precision, each on
 * cases computed by hand here (the expected numbers are worked out in the comments), including
 * the edges a rewrite gets wrong: touching boxes, IoU exactly at the threshold, equal scores, a
 * detection of an already-matched object, classes without objects, NaN scores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "tap.h"

static clcnn_box B(int cls, double cx, double cy, double w, double h) {
  clcnn_box b = {cls, cx, cy, w, h};
  return b;
}
static clcnn_detection D(int image, double score, clcnn_box b) {
  clcnn_detection d = {b, score, image};
  return d;
}

static void iou(void) {
  clcnn_box a = B(0, 0.5, 0.5, 0.2, 0.2);
  clcnn_box shifted = B(0, 0.6, 0.5, 0.2, 0.2);    /* overlap 0.1 x 0.2 = 0.02; union 0.06 */
  clcnn_box touching = B(0, 0.75, 0.5, 0.5, 0.5);  /* a's right edge is 0.6, its left 0.5 */
  clcnn_box inside = B(0, 0.5, 0.5, 0.1, 0.1);     /* 0.01 / 0.04 */
  clcnn_box half = B(0, 0.5, 0.5, 0.5, 0.25), big = B(0, 0.5, 0.5, 0.5, 0.5); /* exactly 0.5 */
  clcnn_box right = B(0, 0.8, 0.5, 0.2, 0.2);      /* x from 0.7: they touch at nothing */
  clcnn_box edge = B(0, 0.25, 0.5, 0.5, 0.5), edge2 = B(0, 0.75, 0.5, 0.5, 0.5); /* share the line x = 0.5 */
  tap_ok(clcnn_box_iou(&big, &big) == 1 && fabs(clcnn_box_iou(&a, &a) - 1) < 1e-12, "IoU of a box with itself: 1");
  tap_ok(fabs(clcnn_box_iou(&a, &shifted) - 1.0 / 3) < 1e-12 && clcnn_box_iou(&a, &shifted) == clcnn_box_iou(&shifted, &a),
         "shifted by half its width: 0.02 / 0.06 = 1/3 (%.17g), both ways", clcnn_box_iou(&a, &shifted));
  tap_ok(fabs(clcnn_box_iou(&a, &inside) - 0.25) < 1e-12, "a box inside another: 0.01 / 0.04 = 0.25");
  tap_ok(clcnn_box_iou(&half, &big) == 0.5, "exactly half: 0.125 / 0.25 = 0.5");
  tap_ok(clcnn_box_iou(&a, &right) == 0 && clcnn_box_iou(&edge, &edge2) == 0, "disjoint boxes and boxes sharing an edge: 0");
  (void)touching;
  tap_ok(isnan(clcnn_box_iou(NULL, &a)) && isnan(clcnn_box_iou(&a, NULL)), "a NULL box: NaN");
}

static void nms(void) {
  /* image 0, class 1: scores 0.9 (a), 0.8 (b, IoU with a 0.6), 0.7 (c, far); class 2 on a's
   * place; image 1 on a's place; d, IoU with a exactly 0.5, is kept (drop only above) */
  clcnn_box a = B(1, 0.5, 0.5, 0.2, 0.2);
  clcnn_box b = B(1, 0.5, 0.5 + 0.05, 0.2, 0.2); /* overlap 0.2 x 0.15 = 0.03, union 0.05: 0.6 */
  clcnn_box c = B(1, 0.1, 0.1, 0.1, 0.1);
  clcnn_box big = B(1, 0.5, 0.5, 0.5, 0.5), half = B(1, 0.5, 0.5, 0.5, 0.25);
  clcnn_detection d[] = {D(0, 0.7, c), D(0, 0.8, b), D(0, 0.9, a), D(0, 0.95, B(2, 0.5, 0.5, 0.2, 0.2)),
                         D(1, 0.5, a), D(2, 0.9, big), D(2, 0.85, half)};
  int n = clcnn_nms(d, 7, 0.5);
  /* kept by score: 0.95 (class 2), 0.9 (a), 0.9 (big, image 2), 0.85 (half: IoU 0.5, not > 0.5),
   * 0.7 (c), 0.5 (image 1); b dropped */
  double want[] = {0.95, 0.9, 0.9, 0.85, 0.7, 0.5};
  int good = n == 6;
  for (int i = 0; good && i < 6; i++) good &= d[i].score == want[i];
  good = good && d[1].image == 0 && d[2].image == 2; /* equal scores keep their order */
  tap_ok(good, "NMS: the overlapping lower score dropped (IoU 0.6 > 0.5); IoU exactly 0.5, other classes and images "
         "kept; sorted by score, ties in order (%d kept)", n);
  clcnn_detection e[] = {D(0, 0.5, a), D(0, 0.6, b)};
  tap_ok(clcnn_nms(e, 2, 0.7) == 2 && e[0].score == 0.6, "NMS at 0.7: IoU 0.6 keeps both, the higher first");
  tap_ok(clcnn_nms(e, 0, 0.5) == 0 && clcnn_nms(NULL, 3, 0.5) == 0, "NMS of nothing: 0");
}

static void ap(void) {
  /* class 0: three objects - g0, g1 in image 0, g2 in image 1. Detections ranked:
   *   0.9 on g0 (TP), 0.8 on nothing (FP), 0.7 on g2 (TP), 0.6 on g0 again (FP: taken), and
   *   0.6 on g1 with IoU exactly 0.5 (FP: VOC needs more than 0.5); g1 never found.
   *   precision 1, 1/2, 2/3, 1/2, 2/5; recall 1/3, 1/3, 2/3, 2/3, 2/3.
   *   The envelope: 1, 2/3, 2/3, 1/2, 2/5; AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
   * class 1: one object, found by a 0.3 detection after a 0.4 one on nothing in its image: precision
   *   0, 1/2 at recall 0, 1: AP = 1/2.
   * class 2: no object, one detection: NaN, left out. class 3: an object, no detection: AP 0.
   * mAP = (5/9 + 1/2 + 0) / 3 = 19/54. */
  clcnn_box truth[] = {B(0, 0.3, 0.3, 0.2, 0.2), B(0, 0.5, 0.5, 0.5, 0.5), B(0, 0.5, 0.5, 0.2, 0.2),
                       B(1, 0.2, 0.8, 0.2, 0.2), B(3, 0.5, 0.5, 0.1, 0.1)};
  int timg[] = {0, 0, 1, 3, 4};
  clcnn_detection d[] = {
      D(0, 0.6, B(0, 0.31, 0.3, 0.2, 0.2)), /* g0 again */
      D(0, 0.9, B(0, 0.3, 0.3, 0.2, 0.2)),  /* g0 */
      D(0, 0.8, B(0, 0.9, 0.9, 0.1, 0.1)),  /* nothing */
      D(1, 0.7, B(0, 0.5, 0.5, 0.2, 0.2)),  /* g2 */
      D(0, 0.6, B(0, 0.5, 0.5, 0.5, 0.25)), /* g1 at IoU 0.5 (the g0 duplicate ranks first: input order) */
      D(3, 0.4, B(1, 0.8, 0.8, 0.2, 0.2)),  /* nothing */
      D(3, 0.3, B(1, 0.2, 0.8, 0.2, 0.2)),  /* the class 1 object */
      D(5, 0.9, B(2, 0.5, 0.5, 0.2, 0.2)),  /* class 2 has no object */
  };
  double aps[4], map = 0;
  clcnn_status st = clcnn_voc_ap(d, 8, truth, timg, 5, 4, 0.5, aps, &map);
  tap_ok(st == CLCNN_SUCCESS && fabs(aps[0] - 5.0 / 9) < 1e-12, "AP of class 0: 5/9 (%.17g): a duplicate, a miss, "
         "IoU exactly 0.5 not enough", aps[0]);
  tap_ok(fabs(aps[1] - 0.5) < 1e-12 && isnan(aps[2]) && aps[3] == 0, "class 1: 1/2; class 2 (no object): NaN; class 3 "
         "(nothing found): 0");
  tap_ok(fabs(map - 19.0 / 54) < 1e-12, "mAP over the classes with objects: 19/54 (%.17g)", map);
  /* the envelope: hit, miss, hit, hit over three objects - precision 1, 1/2, 2/3, 3/4 at recall
   * 1/3, 1/3, 2/3, 1; the step to 2/3 counts 3/4 (the best precision at any larger recall), so
   * AP = 1/3 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6 (2/3 at the step would give 29/36) */
  clcnn_box three[] = {B(0, 0.2, 0.2, 0.1, 0.1), B(0, 0.5, 0.5, 0.1, 0.1), B(0, 0.8, 0.8, 0.1, 0.1)};
  int img7[] = {7, 7, 7};
  clcnn_detection hmhh[] = {D(7, 0.9, three[0]), D(7, 0.8, B(0, 0.2, 0.8, 0.1, 0.1)), D(7, 0.7, three[1]),
                            D(7, 0.6, three[2])};
  st = clcnn_voc_ap(hmhh, 4, three, img7, 3, 1, 0.5, aps, &map);
  tap_ok(st == CLCNN_SUCCESS && fabs(map - 5.0 / 6) < 1e-12, "hit, miss, hit, hit: AP 5/6 (%.17g): each precision "
         "raised to the best at a larger recall", map);
  /* detections in another image than their object are false positives */
  clcnn_detection wrong[] = {D(1, 0.9, B(0, 0.3, 0.3, 0.2, 0.2))};
  clcnn_box one[] = {B(0, 0.3, 0.3, 0.2, 0.2)};
  int img0[] = {0};
  st = clcnn_voc_ap(wrong, 1, one, img0, 1, 1, 0.5, aps, &map);
  tap_ok(st == CLCNN_SUCCESS && aps[0] == 0 && map == 0, "a perfect box in the wrong image: AP 0");
  clcnn_detection right[] = {D(0, 0.2, B(0, 0.3, 0.3, 0.2, 0.2))};
  st = clcnn_voc_ap(right, 1, one, img0, 1, 1, 0.5, NULL, &map);
  tap_ok(st == CLCNN_SUCCESS && map == 1, "one object found first: AP 1 (ap may be NULL)");
  st = clcnn_voc_ap(NULL, 0, one, img0, 1, 1, 0.5, aps, &map);
  tap_ok(st == CLCNN_SUCCESS && aps[0] == 0 && map == 0, "no detections: AP 0");
  st = clcnn_voc_ap(right, 1, NULL, NULL, 0, 1, 0.5, aps, &map);
  tap_ok(st == CLCNN_SUCCESS && isnan(aps[0]) && isnan(map), "no objects at all: NaN");
  clcnn_detection badc[] = {D(0, 0.5, B(4, 0.3, 0.3, 0.2, 0.2))}, nan_score[] = {D(0, NAN, B(0, 0.3, 0.3, 0.2, 0.2))};
  clcnn_box badt[] = {B(-1, 0.3, 0.3, 0.2, 0.2)};
  tap_ok(clcnn_voc_ap(badc, 1, one, img0, 1, 4, 0.5, aps, &map) == CLCNN_ERR_LABEL &&
             clcnn_voc_ap(right, 1, badt, img0, 1, 4, 0.5, aps, &map) == CLCNN_ERR_LABEL &&
             clcnn_voc_ap(nan_score, 1, one, img0, 1, 4, 0.5, aps, &map) == CLCNN_ERR_LABEL &&
             clcnn_voc_ap(NULL, 1, one, img0, 1, 4, 0.5, aps, &map) == CLCNN_ERR_NULL_POINTER &&
             clcnn_voc_ap(right, 1, one, NULL, 1, 4, 0.5, aps, &map) == CLCNN_ERR_NULL_POINTER &&
             clcnn_voc_ap(right, 1, one, img0, 1, 0, 0.5, aps, &map) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_voc_ap(right, -1, one, img0, 1, 4, 0.5, aps, &map) == CLCNN_ERR_INVALID_ARGUMENT,
         "classes out of range, a NaN score, NULLs, no classes, a negative count: refused");
}

static void decode(void) {
  /* 2 samples, 3 classes, a 2 x 3 grid: cell (1, 2) of sample 1 holds o = 2, x = 0.25, y = 0.5,
   * w = 0.5, h = 0.6, scores (1, 3, 3): class 1 (the first of two largest), probability
   * e^3 / (e + 2 e^3); every other cell o = -30 (a score near 0) */
  enum { N = 2, K = 3, GH = 2, GW = 3, P = GH * GW };
  float out[N * (5 + K) * P];
  double outd[N * (5 + K) * P];
  for (int i = 0; i < N * (5 + K) * P; i++) out[i] = (i % (5 + K) * P) < P ? -30 : 0.1f * (float)(i % 7);
  for (int b = 0; b < N; b++)
    for (int c = 0; c < P; c++) out[(size_t)b * (5 + K) * P + c] = -30;
  float v[] = {2, 0.25f, 0.5f, 0.5f, 0.6f, 1, 3, 3};
  for (int j = 0; j < 5 + K; j++) out[(size_t)1 * (5 + K) * P + (size_t)j * P + 5] = v[j];
  for (int i = 0; i < N * (5 + K) * P; i++) outd[i] = out[i];
  clcnn_detection d[N * P];
  int count = -1;
  double score = 1 / (1 + exp(-2.0)) * exp(3.0) / (exp(1.0) + 2 * exp(3.0));
  for (int e = 0; e < 2; e++) {
    clcnn_status st = clcnn_yolo_decode(e ? (void *)outd : (void *)out, e ? 8 : 4, N, K, GH, GW, 0.01, 10, d, N * P, &count);
    int good = st == CLCNN_SUCCESS && count == 1 && d[0].image == 11 && d[0].box.cls == 1 &&
               fabs(d[0].score - score) < 1e-6 && fabs(d[0].box.cx - 2.25 / 3) < 1e-6 && fabs(d[0].box.cy - 0.75) < 1e-6 &&
               fabs(d[0].box.w - 0.25) < 1e-6 && fabs(d[0].box.h - 0.36) < 1e-6;
    tap_ok(good, "%s: one box above 0.01: image 11 (image0 10 + 1), class 1 (the first of two equal), score %.6f, centre "
           "(2.25/3, 0.75), size w^2 x h^2", e ? "double" : "float", score);
  }
  clcnn_yolo_decode(out, 4, N, K, GH, GW, 0, 0, d, N * P, &count);
  tap_ok(count == N * P, "min_score 0: every cell (%d)", count);
  clcnn_yolo_decode(out, 4, N, K, GH, GW, 0, 0, d, 5, &count);
  tap_ok(count == 5, "at most max written (5)");
  out[5] = 5, out[4 * P + 5] = -3, out[1 * P + 5] = 7; /* sample 0, cell 5: centre past the image, h^2 = 9 */
  clcnn_yolo_decode(out, 4, 1, K, GH, GW, 0.2, 0, d, N * P, &count);
  tap_ok(count == 1 && d[0].box.cx == 1 && d[0].box.h == 1, "a centre past the edge and a size past 1 clamped to 1");
  tap_ok(clcnn_yolo_decode(NULL, 4, N, K, GH, GW, 0, 0, d, 1, &count) == CLCNN_ERR_NULL_POINTER &&
             clcnn_yolo_decode(out, 4, N, K, GH, GW, 0, 0, NULL, 1, &count) == CLCNN_ERR_NULL_POINTER &&
             clcnn_yolo_decode(out, 2, N, K, GH, GW, 0, 0, d, 1, &count) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_yolo_decode(out, 4, N, 0, GH, GW, 0, 0, d, 1, &count) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_yolo_decode(out, 4, N, K, 0, GW, 0, 0, d, 1, &count) == CLCNN_ERR_INVALID_ARGUMENT,
         "decode refuses NULLs, an element size other than 4 and 8, no classes, an empty grid");
}

int main(void) {
  iou();
  nms();
  ap();
  decode();
  return tap_done();
}
