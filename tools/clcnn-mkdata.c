/* tools/clcnn-mkdata.c - write segmentation and detection sets made from Fashion-MNIST, in the
 * layouts other tools read: OUTDIR/{train,test}/images/NAME.png (grey), masks/NAME.png (palette;
 * 0 background, class + 1 for an item, VOC's colours), labels/NAME.txt (YOLO: "class cx cy w h"
 * relative to the image), and OUTDIR/classes.txt.
 *
 *   clcnn-mkdata OUTDIR [--data DIR] [--train N] [--test N] [--seed N] [-q]
 *
 * Each canvas is 64x64 and holds 1 to 4 items (uniformly). An item is a Fashion-MNIST image cut
 * to the box of its pixels above the threshold (grey level 64), scaled bilinearly so that its
 * longer side is 20..40 pixels (uniformly), and placed uniformly where it fits. Items are drawn
 * in order; a later item's pixels above the threshold cover earlier ones, in the image and in
 * the mask. An item's label box is the box of its visible mask pixels; an item with fewer than
 * 30% of its pixels visible is left out of the labels (its visible pixels stay in the mask).
 * Training canvases use only training images, test canvases only test images. Every draw comes
 * from splitmix64 keyed by (seed, split, canvas), so the same flags write the same bytes.
 *
 * The set is written into OUTDIR.tmp-XXXXXX beside OUTDIR, flushed and renamed to OUTDIR at the
 * end: OUTDIR is the whole set or absent. An existing OUTDIR is refused, never overwritten. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define SIDE 64
#define THRESHOLD 64
#define MIN_LONG 20
#define MAX_LONG 40
#define MAX_ITEMS 4
#define MIN_VISIBLE 0.3

static const char *prog = "clcnn-mkdata";
static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static char *tmpdir_made; /* removed by die() */

static void rm_tree(const char *dir);

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (tmpdir_made) rm_tree(tmpdir_made);
  exit(1);
}

/* ---- options ---- */
struct opts {
  const char *out, *data;
  long train, test, seed;
  int quiet;
};

enum { ARGS_OK, ARGS_HELP, ARGS_VERSION, ARGS_USAGE };
#define USAGE_ERROR(...) return (snprintf(msg, msize, __VA_ARGS__), ARGS_USAGE)

static int parse_count(const char *flag, const char *s, long lo, long hi, long *out, char *msg, size_t msize) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    USAGE_ERROR("%s: '%s' is not a whole number from %ld to %ld", flag, s, lo, hi);
  *out = v;
  return ARGS_OK;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s OUTDIR [options]\n"
          "Write a segmentation and detection set made from Fashion-MNIST into OUTDIR (which must not exist).\n\n"
          "  --data DIR   Fashion-MNIST's IDX files (default %s)\n"
          "  --train N    training canvases, from training images only (default 20000)\n"
          "  --test N     test canvases, from test images only (default 2000)\n"
          "  --seed N     the seed of every draw (default 1); the same flags write the same bytes\n"
          "  -q, --quiet  no progress lines\n"
          "  -h, --help   this text;  --version  the version\n",
          prog, DEFAULT_DATA);
}

/* Returns instead of exiting (the fuzz harness tests/fuzz/fuzz_cmdline.c calls it). */
static int parse_args(int argc, char **argv, struct opts *o, char *msg, size_t msize) {
  enum { O_DATA = 256, O_TRAIN, O_TEST, O_SEED, O_VERSION };
  static const struct option longopts[] = {{"data", 1, 0, O_DATA}, {"train", 1, 0, O_TRAIN}, {"test", 1, 0, O_TEST},
                                           {"seed", 1, 0, O_SEED}, {"quiet", 0, 0, 'q'},      {"help", 0, 0, 'h'},
                                           {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->data = DEFAULT_DATA, o->train = 20000, o->test = 2000, o->seed = 1;
  optind = 0; /* a fresh scan, also when called again (1 would keep glibc's pointer into the last argv) */
  int c, r = ARGS_OK;
  msg[0] = 0;
  while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    const char *flag = argv[optind - 1];
    switch (c) {
      case O_DATA: o->data = optarg; break;
      case O_TRAIN: r = parse_count("--train", optarg, 1, 10000000, &o->train, msg, msize); break;
      case O_TEST: r = parse_count("--test", optarg, 1, 10000000, &o->test, msg, msize); break;
      case O_SEED: r = parse_count("--seed", optarg, 0, LONG_MAX, &o->seed, msg, msize); break;
      case 'q': o->quiet = 1; break;
      case 'h': return ARGS_HELP;
      case O_VERSION: return ARGS_VERSION;
      case ':': USAGE_ERROR("%s needs a value (see --help)", flag);
      default: USAGE_ERROR("unknown option '%s' (see --help)", flag);
    }
    if (r) return r;
  }
  if (optind != argc - 1)
    USAGE_ERROR(optind >= argc ? "no output directory given (usage: clcnn-mkdata OUTDIR [options]; see --help)"
                               : "one output directory expected, got '%s' and more (see --help)",
                argv[optind]);
  o->out = argv[optind];
  if (!o->out[0]) USAGE_ERROR("the output directory is an empty string");
  return ARGS_OK;
}

/* ---- drawing ---- */

/* a uniform integer in [lo, hi] */
static int uniform(uint64_t *st, int lo, int hi) {
  return lo + (int)(((unsigned __int128)clcnn_rng_next(st) * (uint64_t)(hi - lo + 1)) >> 64);
}

/* Item K of the source set as bytes, cut to the box of its pixels above the threshold. 0 when
 * it has none. */
static int cut_item(const clcnn_dataset *ds, int k, unsigned char *cut, int *ch, int *cw) {
  const float *x = ds->x + (size_t)k * 28 * 28;
  unsigned char b[28 * 28];
  int y0 = 28, y1 = -1, x0 = 28, x1 = -1;
  for (int i = 0; i < 28 * 28; i++) {
    b[i] = (unsigned char)lrintf(x[i] * 255.0f);
    if (b[i] > THRESHOLD) {
      int y = i / 28, xx = i % 28;
      y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1, x0 = xx < x0 ? xx : x0, x1 = xx > x1 ? xx : x1;
    }
  }
  if (y1 < 0) return 0;
  *ch = y1 - y0 + 1, *cw = x1 - x0 + 1;
  for (int y = 0; y < *ch; y++) memcpy(cut + y * *cw, b + (y0 + y) * 28 + x0, (size_t)*cw);
  return 1;
}

/* Bilinear resampling of an h x w image to oh x ow, pixel centres aligned (as PyTorch's
 * interpolate with align_corners=False), edges clamped. */
static void resize(const unsigned char *src, int h, int w, unsigned char *dst, int oh, int ow) {
  for (int y = 0; y < oh; y++) {
    double sy = (y + 0.5) * h / oh - 0.5;
    sy = sy < 0 ? 0 : sy;
    int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    double fy = sy - y0;
    for (int x = 0; x < ow; x++) {
      double sx = (x + 0.5) * w / ow - 0.5;
      sx = sx < 0 ? 0 : sx;
      int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
      double fx = sx - x0;
      double v = (1 - fy) * ((1 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1]) +
                 fy * ((1 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1]);
      dst[y * ow + x] = (unsigned char)lrint(v);
    }
  }
}

struct canvas {
  unsigned char img[SIDE * SIDE], mask[SIDE * SIDE];
  signed char owner[SIDE * SIDE]; /* which item a pixel shows, -1 none */
  int n, cls[MAX_ITEMS], total[MAX_ITEMS];
};

static void make_canvas(const clcnn_dataset *ds, uint64_t key, struct canvas *cv) {
  uint64_t st = key;
  memset(cv, 0, sizeof *cv);
  memset(cv->owner, -1, sizeof cv->owner);
  cv->n = uniform(&st, 1, MAX_ITEMS);
  for (int it = 0; it < cv->n; it++) {
    unsigned char cut[28 * 28], big[MAX_LONG * MAX_LONG];
    int k, ch, cw;
    do k = uniform(&st, 0, ds->n - 1);
    while (!cut_item(ds, k, cut, &ch, &cw)); /* an image with nothing above the threshold: another */
    int len = uniform(&st, MIN_LONG, MAX_LONG);
    int oh = ch >= cw ? len : (int)lrint((double)ch * len / cw), ow = cw >= ch ? len : (int)lrint((double)cw * len / ch);
    oh = oh < 1 ? 1 : oh, ow = ow < 1 ? 1 : ow;
    resize(cut, ch, cw, big, oh, ow);
    int py = uniform(&st, 0, SIDE - oh), px = uniform(&st, 0, SIDE - ow);
    cv->cls[it] = ds->y[k];
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++)
        if (big[y * ow + x] > THRESHOLD) {
          int at = (py + y) * SIDE + px + x;
          cv->img[at] = big[y * ow + x];
          cv->mask[at] = (unsigned char)(cv->cls[it] + 1);
          cv->owner[at] = (signed char)it;
          cv->total[it]++;
        }
  }
}

/* The YOLO lines of the items at least 30% visible, boxes around their visible pixels. */
static size_t label_text(const struct canvas *cv, char *buf, size_t size) {
  size_t len = 0;
  for (int it = 0; it < cv->n; it++) {
    int vis = 0, y0 = SIDE, y1 = -1, x0 = SIDE, x1 = -1;
    for (int i = 0; i < SIDE * SIDE; i++)
      if (cv->owner[i] == it) {
        int y = i / SIDE, x = i % SIDE;
        vis++;
        y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1, x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
      }
    if (cv->total[it] == 0 || vis < MIN_VISIBLE * cv->total[it]) continue;
    len += (size_t)snprintf(buf + len, size - len, "%d %.6f %.6f %.6f %.6f\n", cv->cls[it], (x0 + x1 + 1) / 2.0 / SIDE,
                            (y0 + y1 + 1) / 2.0 / SIDE, (x1 - x0 + 1) / (double)SIDE, (y1 - y0 + 1) / (double)SIDE);
  }
  return len;
}

/* ---- files ---- */

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) die("%s: %s", path, strerror(errno));
  if (fwrite(data, 1, n, f) != n || fflush(f) != 0) {
    int e = errno;
    fclose(f);
    die("%s: write failed: %s", path, strerror(e));
  }
  if (fclose(f) != 0) die("%s: close failed: %s", path, strerror(errno));
}

static void write_png(const char *path, const clcnn_image *im) {
  char err[512];
  unsigned char *buf;
  size_t n;
  if (clcnn_png_encode(im, path, &buf, &n, err, sizeof err)) die("%s", err);
  write_bytes(path, buf, n);
  free(buf);
}

/* snprintf into a path buffer; a path that does not fit stops the run */
static void pathf(char *p, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *p, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(p, size, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= size) die("a path longer than %zu bytes", size - 1);
}

static void make_dir(const char *path) {
  if (mkdir(path, 0777) != 0) die("%s: cannot create the directory: %s", path, strerror(errno));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path) != 0 && errno != ENOENT;
}

static void rm_tree(const char *dir) { (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* Write one split: N canvases of SPLIT's images into DIR/SPLIT. */
static void write_split(const char *dir, const char *split, const clcnn_dataset *ds, long n, long seed, int quiet) {
  char p[PATH_MAX + 64];
  static const char *const subs[] = {"", "/images", "/masks", "/labels"};
  for (int i = 0; i < 4; i++) {
    pathf(p, sizeof p, "%s/%s%s", dir, split, subs[i]);
    make_dir(p);
  }
  int digits = 1;
  for (long m = n - 1; m >= 10; m /= 10) digits++;
  digits = digits < 5 ? 5 : digits;
  clcnn_image img = {.w = SIDE, .h = SIDE, .channels = 1}, mask = {.w = SIDE, .h = SIDE, .channels = 1, .indexed = 1, .npalette = 256};
  clcnn_voc_palette(mask.palette);
  struct canvas cv;
  /* every canvas's draws from its own key: (seed, split, index) */
  uint64_t base = (uint64_t)seed ^ 0x6a09e667f3bcc909ull;
  base = clcnn_rng_next(&base) ^ (split[1] == 'r' ? 1u : 2u);
  base = clcnn_rng_next(&base);
  long labelled = 0, items = 0;
  for (long i = 0; i < n; i++) {
    uint64_t key = base ^ ((uint64_t)i * 0xd1b54a32d192ed03ull);
    make_canvas(ds, clcnn_rng_next(&key), &cv);
    img.px = cv.img, mask.px = cv.mask;
    pathf(p, sizeof p, "%s/%s/images/%0*ld.png", dir, split, digits, i);
    write_png(p, &img);
    pathf(p, sizeof p, "%s/%s/masks/%0*ld.png", dir, split, digits, i);
    write_png(p, &mask);
    char text[MAX_ITEMS * 64];
    size_t len = label_text(&cv, text, sizeof text);
    for (size_t c = 0; c < len; c++) labelled += text[c] == '\n';
    items += cv.n;
    pathf(p, sizeof p, "%s/%s/labels/%0*ld.txt", dir, split, digits, i);
    write_bytes(p, text, len);
    if (!quiet && (i + 1) % 5000 == 0) printf("%s: %ld of %ld\n", split, i + 1, n), fflush(stdout);
  }
  printf("%s: %ld canvases, %ld items, %ld labelled (at least %.0f%% visible)\n", split, n, items, labelled,
         100 * MIN_VISIBLE);
}

int main(int argc, char **argv) {
  struct opts o;
  char msg[512];
  switch (parse_args(argc, argv, &o, msg, sizeof msg)) {
    case ARGS_HELP: usage(stdout); return 0;
    case ARGS_VERSION: printf("clcnn-mkdata %s\n", clcnn_version()); return 0;
    case ARGS_USAGE: fprintf(stderr, "%s: %s\n", prog, msg); return 2;
    default: break;
  }
  struct stat sb;
  if (lstat(o.out, &sb) == 0) die("%s exists: give a directory that does not exist yet (nothing was written)", o.out);
  char err[1024];
  clcnn_dataset *train = NULL, *test = NULL;
  if (clcnn_dataset_load(o.data, 1, &train, err, sizeof err) || clcnn_dataset_load(o.data, 0, &test, err, sizeof err))
    die("%s", err);
  if (train->c != 1 || train->h != 28 || train->w != 28 || test->c != 1 || test->h != 28 || test->w != 28 ||
      train->classes > 10 || test->classes > 10)
    die("%s: the items must be 1x28x28 images of at most 10 classes (Fashion-MNIST); these are %dx%dx%d", o.data,
        train->c, train->h, train->w);

  /* everything goes into a temporary directory beside OUTDIR, renamed at the end */
  size_t tl = strlen(o.out) + 32;
  char *tmp = malloc(tl);
  if (!tmp) die("out of memory");
  snprintf(tmp, tl, "%s.tmp-XXXXXX", o.out);
  if (!mkdtemp(tmp)) die("%s: cannot create a directory beside it (%s): %s", o.out, tmp, strerror(errno));
  mode_t mask = umask(0);
  umask(mask);
  chmod(tmp, 0777 & ~mask); /* mkdtemp makes 0700 */
  tmpdir_made = tmp;

  char p[PATH_MAX + 64];
  pathf(p, sizeof p, "%s/classes.txt", tmp);
  char names[256];
  size_t len = 0;
  for (int c = 0; c < 10; c++) len += (size_t)snprintf(names + len, sizeof names - len, "%s\n", class_names[c]);
  write_bytes(p, names, len);
  write_split(tmp, "train", train, o.train, o.seed, o.quiet);
  write_split(tmp, "test", test, o.test, o.seed, o.quiet);
  sync(); /* the files on disk before the name appears */
  if (rename(tmp, o.out) != 0) die("cannot rename %s to %s: %s", tmp, o.out, strerror(errno));
  tmpdir_made = NULL;
  printf("wrote %s (classes.txt, train/, test/)\n", o.out);
  free(tmp);
  clcnn_dataset_destroy(train);
  clcnn_dataset_destroy(test);
  return 0;
}
