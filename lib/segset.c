/* lib/segset.c - image sets for segmentation and detection: DIR/SPLIT/images/NAME.png with
 * DIR/SPLIT/masks/NAME.png (Pascal VOC's manner: the mask's pixel the class index, 255 ignore)
 * and/or DIR/SPLIT/labels/NAME.txt (YOLO's: one box a line, no file no object), and optionally
 * DIR/classes.txt naming the classes other than background (one a line, darknet's .names), in
 * which case a mask's values are 0 (background) to the number of names and a label's class is
 * below it.
 *
 * Images are read in the order of their names; every image has the first one's size and
 * channels (grey, RGB, or palette images taken as their colours), every mask is a grey or
 * palette image of its image's size. Any refusal names the file and frees everything. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define fail clcnn__errf

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* The names ending in ".png" in DIR, sorted; *n of them. */
static clcnn_status list_png(const char *dir, char ***out, size_t *n, char *err, size_t err_size) {
  DIR *d = opendir(dir);
  if (!d) return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s", dir, strerror(errno));
  char **names = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len <= 4 || strcmp(e->d_name + len - 4, ".png")) continue;
    if (count == cap) {
      char **g = realloc(names, (cap = cap ? 2 * cap : 256) * sizeof *g);
      if (!g) break;
      names = g;
    }
    if (!(names[count] = strdup(e->d_name))) break;
    count++;
  }
  int oom = e != NULL;
  closedir(d);
  if (oom) {
    free_names(names, count);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory listing it", dir);
  }
  if (!count) {
    free(names);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s holds no .png image", dir);
  }
  qsort(names, count, sizeof *names, cmp_str);
  *out = names, *n = count;
  return CLCNN_SUCCESS;
}

/* The number of names in DIR/classes.txt (non-empty lines), 0 when there is no such file, -1
 * (with err) when it cannot be read or names more than 254 classes. */
static int count_classes(const char *dir, char *err, size_t err_size) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/classes.txt", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 0;
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s", path, strerror(errno));
    return -1;
  }
  int n = 0, c, blank = 1;
  while ((c = getc(f)) != EOF) {
    if (c == '\n') n += !blank, blank = 1;
    else if (c != '\r' && c != ' ' && c != '\t') blank = 0;
  }
  n += !blank;
  fclose(f);
  if (n > 254) {
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s names %d classes: at most 254 (mask values 1..254)", path, n);
    return -1;
  }
  return n;
}

CLCNN_API clcnn_status clcnn_segset_load(const char *dir, int train, clcnn_dataset **out, char *err,
                                         size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!dir || !out)
    return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_segset_load: %s is NULL", !dir ? "dir" : "out");
  if (strlen(dir) + 64 >= PATH_MAX)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "data directory name too long: %s", dir);
  const char *split = train ? "train" : "test";
  int named = count_classes(dir, err, err_size);
  if (named < 0) return CLCNN_ERR_INVALID_ARGUMENT;
  char idir[PATH_MAX], mdir[PATH_MAX], ldir[PATH_MAX], ip[2 * PATH_MAX], mp[2 * PATH_MAX];
  snprintf(idir, sizeof idir, "%s/%s/images", dir, split);
  snprintf(mdir, sizeof mdir, "%s/%s/masks", dir, split);
  snprintf(ldir, sizeof ldir, "%s/%s/labels", dir, split);
  char **names = NULL;
  size_t n = 0;
  clcnn_status st = list_png(idir, &names, &n, err, err_size);
  if (st) return st;
  struct stat sd;
  int has_masks = stat(mdir, &sd) == 0 && S_ISDIR(sd.st_mode), has_labels = stat(ldir, &sd) == 0 && S_ISDIR(sd.st_mode);
  if (!has_masks && !has_labels) {
    free_names(names, n);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s/%s has neither masks/ (segmentation) nor labels/ (detection) beside images/", dir, split);
  }
  if (n > INT_MAX) {
    free_names(names, n);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: more than %d images", idir, INT_MAX);
  }
  clcnn_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) {
    free_names(names, n);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", idir);
  }
  ds->n = (int)n;
  int maxv = -1, maxbox = -1;
  size_t nbox = 0, boxcap = 0;
  if (has_labels && !(ds->box_start = calloc(n + 1, sizeof *ds->box_start))) {
    free_names(names, n);
    clcnn_dataset_destroy(ds);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", ldir);
  }
  size_t plane = 0;
  for (size_t i = 0; i < n && !st; i++) {
    clcnn_image im = {0}, mk = {0};
    snprintf(ip, sizeof ip, "%s/%s", idir, names[i]);
    snprintf(mp, sizeof mp, "%s/%s", mdir, names[i]);
    if ((st = clcnn_png_read(ip, &im, err, err_size))) break;
    int ch = clcnn_image_colors(&im);
    if (i == 0) {
      ds->c = ch, ds->h = im.h, ds->w = im.w;
      plane = (size_t)im.h * im.w;
      ds->x = malloc(n * ch * plane * sizeof *ds->x);
      ds->mask = has_masks ? malloc(n * plane) : NULL; /* a detection set without masks has none */
      if (!ds->x || (has_masks && !ds->mask)) st = fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu images", idir, n);
    } else if (ch != ds->c || im.h != ds->h || im.w != ds->w) {
      st = fail(err, err_size, CLCNN_ERR_SHAPE, "%s is %dx%dx%d but %s/%s is %dx%dx%d: every image must have one shape", ip,
                ch, im.h, im.w, idir, names[0], ds->c, ds->h, ds->w);
    }
    if (!st) clcnn_image_to_float(&im, ds->x + i * ds->c * plane); /* NCHW, x/255 */
    clcnn_image_free(&im);
    if (st) break;
    if (has_labels) { /* NAME.txt for NAME.png; none: no object */
      char lp[2 * PATH_MAX];
      snprintf(lp, sizeof lp, "%s/%.*s.txt", ldir, (int)(strlen(names[i]) - 4), names[i]);
      FILE *f = fopen(lp, "rb");
      if (f) {
        char text[1 << 16];
        size_t len = fread(text, 1, sizeof text, f);
        int big = len == sizeof text, bad = ferror(f);
        fclose(f);
        clcnn_box *b = NULL;
        int nb = 0;
        if (big || bad)
          st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s", lp, big ? "larger than 64 KiB" : "read error");
        else if (!(st = clcnn_yolo_labels_parse(text, len, lp, named, &b, &nb, err, err_size))) {
          if (nbox + (size_t)nb > boxcap) {
            size_t cap = boxcap ? 2 * boxcap : 1024;
            while (cap < nbox + (size_t)nb) cap *= 2;
            clcnn_box *g = realloc(ds->boxes, cap * sizeof *g);
            if (!g) st = fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory for its boxes", ldir);
            else ds->boxes = g, boxcap = cap;
          }
          if (!st) {
            memcpy(ds->boxes + nbox, b, (size_t)nb * sizeof *b);
            for (int j = 0; j < nb; j++) maxbox = b[j].cls > maxbox ? b[j].cls : maxbox;
            nbox += (size_t)nb;
          }
        }
        free(b);
        if (st) break;
        if (nbox > INT_MAX) {
          st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: more than %d boxes", ldir, INT_MAX);
          break;
        }
      } else if (errno != ENOENT) {
        st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s", lp, strerror(errno));
        break;
      }
      ds->box_start[i + 1] = (int)nbox;
    }
    if (!has_masks) continue;
    struct stat sb;
    if (stat(mp, &sb) != 0) {
      st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s has no mask: %s: %s", ip, mp, strerror(errno));
      break;
    }
    if ((st = clcnn_png_read(mp, &mk, err, err_size))) break;
    if (mk.channels != 1)
      st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: an RGB mask: a mask is a grey or palette image whose value is the class", mp);
    else if (mk.w != ds->w || mk.h != ds->h)
      st = fail(err, err_size, CLCNN_ERR_SHAPE, "%s is %dx%d but its image %s is %dx%d", mp, mk.w, mk.h, ip, ds->w,
                ds->h);
    else {
      unsigned char *m = ds->mask + i * plane;
      memcpy(m, mk.px, plane);
      for (size_t p = 0; p < plane && !st; p++) {
        if (m[p] == 255) continue;
        if (named && m[p] > named)
          st = fail(err, err_size, CLCNN_ERR_LABEL,
                    "%s: pixel (%zu, %zu) has class %d but %s/classes.txt names %d classes (0 is background, "
                    "1..%d them, 255 ignore)", mp, p % ds->w, p / ds->w, m[p], dir, named, named);
        maxv = m[p] > maxv ? m[p] : maxv;
      }
    }
    clcnn_image_free(&mk);
  }
  free_names(names, n);
  if (!st && has_masks && maxv < 0) st = fail(err, err_size, CLCNN_ERR_LABEL, "%s: every mask pixel is 255 (ignore)", mdir);
  if (st) {
    clcnn_dataset_destroy(ds);
    return st;
  }
  if (has_labels) ds->box_classes = named ? named : maxbox + 1;
  ds->classes = has_masks ? (named ? named + 1 : maxv + 1) : ds->box_classes;
  *out = ds;
  return CLCNN_SUCCESS;
}
