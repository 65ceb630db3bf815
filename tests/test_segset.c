/* tests/test_segset.c - segmentation sets (lib/segset.c): images with masks in VOC's layout,
 * read in the order of their names into NCHW pixels and per-pixel classes, through
 * clcnn_segset_load and through clcnn_dataset_load's dispatch; every bad set refused with the
 * file's name, the output untouched. */
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

static char root[] = "/tmp/clcnn-segset-XXXXXX";
static char err[2048];
static clcnn_dataset sentinel;

static const char *at(const char *fmt, const char *a, const char *b) {
  static char p[4][1024];
  static int k;
  k = (k + 1) % 4;
  char rel[512];
  snprintf(rel, sizeof rel, fmt, a, b);
  snprintf(p[k], sizeof p[k], "%s/%s", root, rel);
  return p[k];
}

static void mkdirs(const char *set, const char *split) {
  mkdir(at("%s%s", set, ""), 0777);
  mkdir(at("%s/%s", set, split), 0777);
  char sub[64];
  snprintf(sub, sizeof sub, "%s/images", split);
  mkdir(at("%s/%s", set, sub), 0777);
  snprintf(sub, sizeof sub, "%s/masks", split);
  mkdir(at("%s/%s", set, sub), 0777);
}

static void put(const char *path, int w, int h, int channels, int indexed, const unsigned char *px) {
  clcnn_image im = {.w = w, .h = h, .channels = channels, .indexed = indexed, .npalette = indexed ? 256 : 0,
                    .px = (unsigned char *)px};
  for (int i = 0; i < 256; i++) im.palette[i][0] = (unsigned char)i, im.palette[i][1] = (unsigned char)(255 - i), im.palette[i][2] = 7;
  if (clcnn_png_write(path, &im, err, sizeof err)) tap_bail(err);
}

static void text(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(s, f) < 0 || fclose(f)) tap_bail("cannot write a test file");
}

/* a refusal: the status, words in err, the file's name, *out untouched */
static void refused(const char *set, int train, clcnn_status want, const char *words, const char *file, const char *what) {
  clcnn_dataset *out = &sentinel;
  clcnn_status st = clcnn_segset_load(at("%s%s", set, ""), train, &out, err, sizeof err);
  tap_ok(st == want && out == &sentinel && strstr(err, words) && (!file || strstr(err, file)), "%s: %s", what, err);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

/* the metrics on a case computed by hand */
static void metric_tests(void) {
  /* two 2x2 samples, 3 classes (a 4th, absent, in the second run); NCHW logits */
  const float nanf_ = NAN;
  float lg[2][4][4] = {{{5, 1, 0, 9}, {1, 1, 3, 0}, {0, 0, 3, 0}, {-100, -100, -100, -100}},
                       {{0, 0, 0, nanf_}, {0, 0, 0, 0}, {1, 1, -1, 0}, {-100, -100, -100, -100}}};
  unsigned char truth[2][4] = {{0, 1, 2, 255}, {2, 2, 0, 1}};
  float l3[2][3][4];
  double d3[2][3][4];
  for (int s = 0; s < 2; s++)
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < 4; p++) l3[s][c][p] = lg[s][c][p], d3[s][c][p] = lg[s][c][p];
  int64_t cf[9] = {0}, cd[9] = {0};
  /* by hand: sample 0 predicts 0 (truth 0), 0 (a tie of 0 and 1; truth 1), 1 (a tie of 1 and 2;
   * truth 2), and ignores the last pixel; sample 1 predicts 2, 2, 0 (truth 2, 2, 0) and 0 (a NaN
   * in class 0; truth 1) */
  int64_t want[9] = {2, 0, 0, 2, 0, 0, 0, 1, 2};
  tap_ok(clcnn_seg_confusion(l3, 4, truth[0], 2, 3, 4, 255, cf) == CLCNN_SUCCESS && !memcmp(cf, want, sizeof want),
         "confusion by hand: first of equal scores wins, a NaN wins, 255 skipped (float)");
  tap_ok(clcnn_seg_confusion(d3, 8, truth[0], 2, 3, 4, 255, cd) == CLCNN_SUCCESS && !memcmp(cd, want, sizeof want),
         "the same from double logits");
  double acc, miou, fg, iou[4];
  clcnn_seg_scores(cf, 3, &acc, &miou, &fg, iou);
  tap_ok(fabs(acc - 4.0 / 7) < 1e-15 && fabs(iou[0] - 0.5) < 1e-15 && iou[1] == 0 && fabs(iou[2] - 2.0 / 3) < 1e-15,
         "pixel accuracy 4/7, IoU 2/4, 0/3, 2/3 (%.6f; %.4f %.4f %.4f)", acc, iou[0], iou[1], iou[2]);
  tap_ok(fabs(miou - (0.5 + 2.0 / 3) / 3) < 1e-15 && fabs(fg - (2.0 / 3) / 2) < 1e-15,
         "mean IoU 0.388889 over all 3 classes, 0.333333 without background (%.6f, %.6f)", miou, fg);
  int64_t c4[16] = {0};
  clcnn_seg_confusion(lg, 4, truth[0], 2, 4, 4, 255, c4);
  double acc4, miou4, fg4, iou4[4];
  clcnn_seg_scores(c4, 4, &acc4, &miou4, &fg4, iou4);
  tap_ok(isnan(iou4[3]) && miou4 == miou && fg4 == fg && acc4 == acc,
         "a class in neither truth nor prediction has no IoU and leaves the means as they were");
  int64_t keep[9];
  memcpy(keep, cf, sizeof cf);
  unsigned char badt[2][4] = {{0, 1, 3, 0}, {0, 0, 0, 0}};
  tap_ok(clcnn_seg_confusion(l3, 4, badt[0], 2, 3, 4, 255, cf) == CLCNN_ERR_LABEL && !memcmp(cf, keep, sizeof keep),
         "a truth value of 3 with 3 classes: CLCNN_ERR_LABEL, nothing added");
  tap_ok(clcnn_seg_confusion(NULL, 4, truth[0], 2, 3, 4, 255, cf) == CLCNN_ERR_NULL_POINTER &&
             clcnn_seg_confusion(l3, 4, NULL, 2, 3, 4, 255, cf) == CLCNN_ERR_NULL_POINTER &&
             clcnn_seg_confusion(l3, 4, truth[0], 2, 3, 4, 255, NULL) == CLCNN_ERR_NULL_POINTER &&
             clcnn_seg_scores(NULL, 3, &acc, NULL, NULL, NULL) == CLCNN_ERR_NULL_POINTER,
         "NULL logits, truth or matrix: CLCNN_ERR_NULL_POINTER");
  tap_ok(clcnn_seg_confusion(l3, 2, truth[0], 2, 3, 4, 255, cf) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_seg_confusion(l3, 4, truth[0], 2, 0, 4, 255, cf) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_seg_confusion(l3, 4, truth[0], 2, 3, 0, 255, cf) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_seg_confusion(l3, 4, truth[0], -1, 3, 4, 255, cf) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_seg_scores(cf, 0, &acc, NULL, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT,
         "element size 2, 0 classes, 0 pixels, -1 samples: CLCNN_ERR_INVALID_ARGUMENT");
  int64_t zero[9] = {0};
  clcnn_seg_scores(zero, 3, &acc, &miou, &fg, NULL);
  tap_ok(isnan(acc) && isnan(miou) && isnan(fg), "an empty matrix: NaN, not a division by zero's infinity");
}

int main(void) {
  if (!mkdtemp(root)) tap_bail("mkdtemp failed");
  metric_tests();
  enum { W = 5, H = 4, P = W * H };
  unsigned char img[3][P], msk[3][P], rgb[P * 3];

  /* 1. grey images, palette masks, classes.txt with 3 names: read in name order */
  mkdirs("good", "train");
  const char *order[3] = {"b.png", "a.png", "c.png"}; /* written out of order */
  for (int i = 0; i < 3; i++) {
    for (int p = 0; p < P; p++) img[i][p] = (unsigned char)(i * 80 + p * 3), msk[i][p] = (unsigned char)((p + i) % 4);
    msk[i][P - 1] = 255; /* ignore */
    put(at("good/train/images/%s%s", order[i], ""), W, H, 1, 0, img[i]);
    put(at("good/train/masks/%s%s", order[i], ""), W, H, 1, 1, msk[i]);
  }
  text(at("good/train/images/%s%s", "README.txt", ""), "not an image");
  text(at("good/%s%s", "classes.txt", ""), "cat\ndog\n\nbird\n");
  clcnn_dataset *ds = NULL;
  clcnn_status st = clcnn_segset_load(at("good%s%s", "", ""), 1, &ds, err, sizeof err);
  if (tap_ok(st == CLCNN_SUCCESS && ds && !err[0], "a set of 3 grey images with palette masks loads: %s", err)) {
    tap_ok(ds->n == 3 && ds->c == 1 && ds->h == H && ds->w == W && ds->classes == 4 && !ds->y && ds->mask,
           "3 x 1x%dx%d, 4 classes (background and classes.txt's 3 names; a blank line is not a name), no labels", H, W);
    /* name order a, b, c = written index 1, 0, 2 */
    int good = 1, by[3] = {1, 0, 2};
    for (int i = 0; i < 3; i++)
      for (int p = 0; p < P; p++)
        good &= ds->x[i * P + p] == img[by[i]][p] / 255.0f && ds->mask[i * P + p] == msk[by[i]][p];
    tap_ok(good, "in the order of the names (a, b, c): pixels x/255, masks as written, 255 kept");
    clcnn_dataset_destroy(ds);
  }
  ds = NULL;
  st = clcnn_dataset_load(at("good%s%s", "", ""), 1, &ds, err, sizeof err);
  tap_ok(st == CLCNN_SUCCESS && ds && ds->n == 3 && ds->classes == 4 && ds->mask,
         "clcnn_dataset_load reads DIR/train/images with masks as a segmentation set: %s", err);
  clcnn_dataset_destroy(ds);

  /* 2. RGB images, grey masks, no classes.txt: NCHW, classes = the largest value + 1 */
  mkdirs("rgb", "test");
  for (int p = 0; p < P * 3; p++) rgb[p] = (unsigned char)(p * 5);
  unsigned char m2[P];
  for (int p = 0; p < P; p++) m2[p] = (unsigned char)(p % 7);
  put(at("rgb/test/images/%s%s", "x.png", ""), W, H, 3, 0, rgb);
  put(at("rgb/test/masks/%s%s", "x.png", ""), W, H, 1, 0, m2);
  ds = NULL;
  st = clcnn_dataset_load(at("rgb%s%s", "", ""), 0, &ds, err, sizeof err);
  if (tap_ok(st == CLCNN_SUCCESS && ds, "an RGB test split with grey masks loads: %s", err)) {
    int good = ds->n == 1 && ds->c == 3 && ds->classes == 7;
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < P; p++) good &= ds->x[c * P + p] == rgb[p * 3 + c] / 255.0f;
    tap_ok(good, "RGB pixels become NCHW planes; 7 classes from the largest value 6");
    clcnn_dataset_destroy(ds);
  }
  /* a palette image as an image: its colours */
  mkdirs("pal", "train");
  put(at("pal/train/images/%s%s", "p.png", ""), W, H, 1, 1, msk[0]);
  put(at("pal/train/masks/%s%s", "p.png", ""), W, H, 1, 1, msk[0]);
  ds = NULL;
  st = clcnn_segset_load(at("pal%s%s", "", ""), 1, &ds, err, sizeof err);
  if (tap_ok(st == CLCNN_SUCCESS && ds && ds->c == 3, "a palette image is read as its colours (3 channels): %s", err)) {
    int good = 1;
    for (int p = 0; p < P; p++)
      good &= ds->x[p] == msk[0][p] / 255.0f && ds->x[P + p] == (255 - msk[0][p]) / 255.0f && ds->x[2 * P + p] == 7 / 255.0f;
    tap_ok(good, "each index becomes its palette colour");
    clcnn_dataset_destroy(ds);
  }

  /* 3. bad sets */
  mkdirs("size", "train");
  put(at("size/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("size/train/masks/%s%s", "a.png", ""), H, W, 1, 1, msk[0]);
  refused("size", 1, CLCNN_ERR_SHAPE, "is 4x5 but its image", "masks/a.png", "a mask whose size differs from its image");
  mkdirs("nomask", "train");
  put(at("nomask/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  refused("nomask", 1, CLCNN_ERR_INVALID_ARGUMENT, "has no mask", "masks/a.png", "an image without its mask");
  mkdirs("rgbmask", "train");
  put(at("rgbmask/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("rgbmask/train/masks/%s%s", "a.png", ""), W, H, 3, 0, rgb);
  refused("rgbmask", 1, CLCNN_ERR_INVALID_ARGUMENT, "an RGB mask", "masks/a.png", "an RGB mask");
  mkdirs("range", "train");
  unsigned char m5[P] = {0};
  m5[7] = 4; /* one past: 3 names are classes 1..3 */
  put(at("range/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("range/train/masks/%s%s", "a.png", ""), W, H, 1, 1, m5);
  text(at("range/%s%s", "classes.txt", ""), "a\nb\nc\n");
  refused("range", 1, CLCNN_ERR_LABEL, "pixel (2, 1) has class 4 but", "classes.txt names 3 classes",
          "a class index one past classes.txt's (the good set above reaches 3)");
  mkdirs("shape", "train");
  put(at("shape/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("shape/train/masks/%s%s", "a.png", ""), W, H, 1, 1, msk[0]);
  put(at("shape/train/images/%s%s", "b.png", ""), W, H, 3, 0, rgb);
  put(at("shape/train/masks/%s%s", "b.png", ""), W, H, 1, 1, msk[0]);
  refused("shape", 1, CLCNN_ERR_SHAPE, "every image must have one shape", "images/b.png", "a grey and an RGB image in one set");
  mkdirs("cut", "train");
  put(at("cut/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("cut/train/masks/%s%s", "a.png", ""), W, H, 1, 1, msk[0]);
  truncate(at("cut/train/masks/%s%s", "a.png", ""), 40);
  refused("cut", 1, CLCNN_ERR_INVALID_ARGUMENT, "ends before the image does", "masks/a.png", "a mask cut short");
  mkdirs("empty", "train");
  refused("empty", 1, CLCNN_ERR_INVALID_ARGUMENT, "holds no .png image", "empty/train/images", "no image at all");
  refused("good", 0, CLCNN_ERR_INVALID_ARGUMENT, "No such file", "good/test/images", "a test split that does not exist");
  mkdirs("ignored", "train");
  unsigned char all255[P];
  memset(all255, 255, P);
  put(at("ignored/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("ignored/train/masks/%s%s", "a.png", ""), W, H, 1, 0, all255);
  refused("ignored", 1, CLCNN_ERR_LABEL, "every mask pixel is 255 (ignore)", "ignored/train/masks", "masks that ignore every pixel");
  mkdirs("many", "train");
  put(at("many/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  put(at("many/train/masks/%s%s", "a.png", ""), W, H, 1, 1, msk[0]);
  char names[300 * 4 + 1] = "";
  for (int i = 0; i < 300; i++) strcat(names, "cl\n");
  text(at("many/%s%s", "classes.txt", ""), names);
  refused("many", 1, CLCNN_ERR_INVALID_ARGUMENT, "names 300 classes: at most 254", "classes.txt", "300 class names");
  /* 4. detection sets: labels/NAME.txt beside images/ (masks/ optional), no file no object */
  mkdir(at("det%s%s", "", ""), 0777);
  mkdir(at("det/%s%s", "train", ""), 0777);
  mkdir(at("det/%s%s", "train/images", ""), 0777);
  mkdir(at("det/%s%s", "train/labels", ""), 0777);
  for (int i = 0; i < 3; i++) put(at("det/train/images/%s%s", order[i], ""), W, H, 1, 0, img[i]);
  text(at("det/train/labels/%s%s", "a.txt", ""), "0 0.5 0.5 0.2 0.4\n1\t0.25 0.3 0.1 0.1  \n");
  text(at("det/train/labels/%s%s", "c.txt", ""), "\r\n2 0.5 0.5 1 1\r\n\n"); /* b.png has no labels: no object */
  text(at("det/%s%s", "classes.txt", ""), "x\ny\nz\n");
  st = clcnn_segset_load(at("det%s%s", "", ""), 1, &ds, err, sizeof err);
  if (tap_ok(st == CLCNN_SUCCESS && ds, "a detection set (labels, no masks) loads: %s", err)) {
    int good = ds->n == 3 && !ds->mask && !ds->y && ds->boxes && ds->box_start && ds->box_classes == 3 && ds->classes == 3 &&
               ds->box_start[0] == 0 && ds->box_start[1] == 2 && ds->box_start[2] == 2 && ds->box_start[3] == 3;
    good = good && ds->boxes[0].cls == 0 && ds->boxes[0].cx == 0.5 && ds->boxes[0].h == 0.4 && ds->boxes[1].cls == 1 &&
           ds->boxes[1].cx == 0.25 && ds->boxes[1].cy == 0.3 && ds->boxes[2].cls == 2 && ds->boxes[2].w == 1;
    tap_ok(good, "its boxes in name order: a's two (tabs, trailing blanks), none for b, c's one (CRLF, blank lines); "
           "3 classes from classes.txt");
    clcnn_dataset_destroy(ds);
  }
  text(at("det/%s%s", "classes.txt", ""), "x\ny\n");
  refused("det", 1, CLCNN_ERR_LABEL, "c.txt:2: class 2 is not one of 0..1", "labels/c.txt", "a label class past classes.txt's");
  unlink(at("det/%s%s", "classes.txt", ""));
  st = clcnn_segset_load(at("det%s%s", "", ""), 1, &ds, err, sizeof err);
  tap_ok(st == CLCNN_SUCCESS && ds && ds->box_classes == 3 && ds->classes == 3,
         "without classes.txt: the largest class + 1 (%s)", err);
  clcnn_dataset_destroy(ds);
  mkdir(at("good/%s%s", "train/labels", ""), 0777);
  text(at("good/train/labels/%s%s", "b.txt", ""), "2 0.5 0.5 0.5 0.5\n");
  st = clcnn_segset_load(at("good%s%s", "", ""), 1, &ds, err, sizeof err);
  tap_ok(st == CLCNN_SUCCESS && ds && ds->mask && ds->classes == 4 && ds->box_classes == 3 && ds->box_start[3] == 1 &&
             ds->box_start[1] == 0 && ds->box_start[2] == 1 && ds->boxes[0].cls == 2,
         "masks and labels in one set (as clcnn-mkdata writes): both read, 4 mask classes, 3 box classes (%s)", err);
  clcnn_dataset_destroy(ds);
  text(at("det/train/labels/%s%s", "c.txt", ""), "0 0.5 0.5 0.2\n");
  refused("det", 1, CLCNN_ERR_INVALID_ARGUMENT, "c.txt:1: not 'class cx cy w h'", "labels/c.txt", "a label line that does not parse");
  text(at("det/train/labels/%s%s", "c.txt", ""), "0 0.5 0.5 0.2 0.2\n0 0.95 0.5 0.2 0.2\n");
  refused("det", 1, CLCNN_ERR_INVALID_ARGUMENT, "c.txt:2: the box passes the image's edge", "labels/c.txt", "a box outside [0, 1]");
  mkdir(at("det/train/labels/%s%s", "b.txt", ""), 0777);
  text(at("det/train/labels/%s%s", "c.txt", ""), "");
  refused("det", 1, CLCNN_ERR_INVALID_ARGUMENT, "b.txt", "labels/b.txt", "a label file that cannot be read (a directory)");
  mkdir(at("neither%s%s", "", ""), 0777);
  mkdir(at("neither/%s%s", "train", ""), 0777);
  mkdir(at("neither/%s%s", "train/images", ""), 0777);
  put(at("neither/train/images/%s%s", "a.png", ""), W, H, 1, 0, img[0]);
  refused("neither", 1, CLCNN_ERR_INVALID_ARGUMENT, "has neither masks/ (segmentation) nor labels/ (detection)", "neither/train",
          "images without masks or labels");

  /* the label parser itself: every malformed line refused with NAME:LINE */
  static const struct {
    const char *text, *words;
    clcnn_status st;
  } lines[] = {
      {"0 0.5 0.5 0.2", "f.txt:1: not 'class cx cy w h'", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5 0.5 0.2 0.2 9", "f.txt:1: not", CLCNN_ERR_INVALID_ARGUMENT},
      {"\n\na 0.5 0.5 0.2 0.2", "f.txt:3: not", CLCNN_ERR_INVALID_ARGUMENT},
      {"0.5 0.5 0.5 0.2 0.2", "f.txt:1: not", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5,0.5 0.2 0.2", "f.txt:1: not", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 nan 0.5 0.2 0.2", "f.txt:1: not", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5 0.5 inf 0.2", "f.txt:1: not", CLCNN_ERR_INVALID_ARGUMENT},
      {"-1 0.5 0.5 0.2 0.2", "f.txt:1: class -1 is not one of 0..4", CLCNN_ERR_LABEL},
      {"5 0.5 0.5 0.2 0.2", "f.txt:1: class 5 is not one of 0..4", CLCNN_ERR_LABEL},
      {"0 1.5 0.5 0.2 0.2", "centre must be in [0, 1]", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5 -0.1 0.2 0.2", "centre must be in [0, 1]", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5 0.5 0 0.2", "size in (0, 1]", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5 0.5 0.2 1.5", "size in (0, 1]", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.05 0.5 0.2 0.2", "passes the image's edge", CLCNN_ERR_INVALID_ARGUMENT},
      {"0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2 x", "f.txt:2:", CLCNN_ERR_INVALID_ARGUMENT},
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    clcnn_box *b = (clcnn_box *)&sentinel;
    int nb = -1;
    st = clcnn_yolo_labels_parse(lines[i].text, strlen(lines[i].text), "f.txt", 5, &b, &nb, err, sizeof err);
    tap_ok(st == lines[i].st && strstr(err, lines[i].words) && !b && nb == 0, "label text '%s' refused: %s", lines[i].text, err);
  }
  {
    const char nul[] = "0 0.5 0.5 0.2 0.2\n0 0.5\0 0.5 0.2 0.2\n";
    clcnn_box *b = NULL;
    int nb = 0;
    st = clcnn_yolo_labels_parse(nul, sizeof nul - 1, "f.txt", 5, &b, &nb, err, sizeof err);
    tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "f.txt:2: a NUL byte"), "a NUL byte in a line: %s", err);
    char longl[400];
    memset(longl, ' ', sizeof longl);
    memcpy(longl + 300, "0 0.5 0.5 0.2 0.2", 17);
    st = clcnn_yolo_labels_parse(longl, sizeof longl, "f.txt", 5, &b, &nb, err, sizeof err);
    tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "too long"), "a line of 400 bytes: %s", err);
    const char *edge = "0 0.0005 0.5 0.002 0.1\n4 1 1 0.001 0.001";
    st = clcnn_yolo_labels_parse(edge, strlen(edge), "f.txt", 0, &b, &nb, err, sizeof err);
    tap_ok(st == CLCNN_SUCCESS && nb == 2 && b[1].cls == 4 && b[1].cx == 1,
           "edges past the image by at most 0.001 (label writers round), and any class with classes 0: %s", err);
    free(b);
    st = clcnn_yolo_labels_parse("", 0, "f.txt", 5, &b, &nb, err, sizeof err);
    tap_ok(st == CLCNN_SUCCESS && nb == 0 && !b, "an empty file: no boxes");
    tap_ok(clcnn_yolo_labels_parse(NULL, 3, "f", 5, &b, &nb, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
               clcnn_yolo_labels_parse("", 0, "f", 5, NULL, &nb, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
           "NULL text or out: CLCNN_ERR_NULL_POINTER");
  }

  clcnn_dataset *out = &sentinel;
  tap_ok(clcnn_segset_load(NULL, 1, &out, err, sizeof err) == CLCNN_ERR_NULL_POINTER && out == &sentinel &&
             clcnn_segset_load(root, 1, NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
         "NULL dir or out: CLCNN_ERR_NULL_POINTER");
  st = clcnn_dataset_load(at("nothing-here%s%s", "", ""), 1, &out, err, sizeof err);
  mkdir(at("plain%s%s", "", ""), 0777);
  st = clcnn_dataset_load(at("plain%s%s", "", ""), 1, &out, err, sizeof err);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "train/images with masks (a segmentation set)"),
         "a directory with no data set lists the segmentation layout among those looked for");
  tap_ok(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "the temporary directory is removed");
  return tap_done();
}
