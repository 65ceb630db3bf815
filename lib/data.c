/* lib/data.c - data sets: IDX files (MNIST, Fashion-MNIST; plain or gzip) and CIFAR-10's
 * binary batches, per-channel statistics and normalisation, and a seeded shuffle.
 *
 * Loading never prints and never exits: every refusal writes the file and the reason to
 * err and frees what was allocated. Pixels become float x/255 in [0,1], NCHW. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "clcnn.h"
#include "internal.h"

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned bytes, 3 dims */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned bytes, 1 dim */
#define MAX_ELEMS ((uint64_t)INT32_MAX) /* elements of x: indexable by int */
#define CHUNK (1u << 16)
#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_TRAIN_BATCHES 5

/* Write the reason to err (when there is room) and return st. */
/* fail(err, err_size, st, fmt, ...): the reason into the caller's buffer (lib/status.c). */
#define fail clcnn__errf

static void clear_err(char *err, size_t err_size) {
  if (err && err_size > 0) err[0] = '\0';
}

/* 0..255 -> x/255 (a table per load: no shared state between threads). */
static void make_scale(float t[256]) {
  for (int i = 0; i < 256; i++) t[i] = (float)i / 255.0f;
}

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ---- IDX ------------------------------------------------------------------------------ */

/* Open PATH, or PATH.gz when PATH does not exist; gzip or plain, zlib tells them apart.
 * used (PATH_MAX) receives the name opened. NULL with errno set when neither opens. */
static gzFile open_idx(const char *path, char *used, size_t used_size) {
  snprintf(used, used_size, "%s", path);
  int fd = open(used, O_RDONLY);
  if (fd < 0 && errno == ENOENT) {
    snprintf(used, used_size, "%s.gz", path);
    fd = open(used, O_RDONLY);
    if (fd < 0 && errno == ENOENT) snprintf(used, used_size, "%s", path);
  }
  if (fd < 0) return NULL;
  gzFile f = gzdopen(fd, "rb");
  if (!f) {
    close(fd);
    errno = ENOMEM;
    return NULL;
  }
  gzbuffer(f, 1u << 18);
  return f;
}

/* Read up to n bytes; the count read (short at the end of the file or on a zlib error). */
static size_t read_full(gzFile f, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
    int r = gzread(f, (unsigned char *)buf + got, (unsigned)want);
    if (r <= 0) break;
    got += (size_t)r;
  }
  return got;
}

/* " (zlib: unexpected end of file)" when zlib saw a problem, "" otherwise. */
static const char *zmsg(gzFile f, char *buf, size_t size) {
  int code = Z_OK;
  const char *m = gzerror(f, &code);
  if (code == Z_OK || !m || !*m) return "";
  if (m[0] == '<' && strstr(m, ": ")) m = strstr(m, ": ") + 2; /* "<fd:3>: " */
  snprintf(buf, size, " (zlib: %s)", code == Z_ERRNO ? strerror(errno) : m);
  return buf;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Open NAME (or NAME.gz) and read its header: the magic must be WANT and the dims ndim
 * positive 32-bit counts. On success *f is open and dims[0..ndim) are filled. */
static clcnn_status idx_header(const char *name, uint32_t want, int ndim, const char *what,
                               gzFile *fp, char *used, size_t used_size, uint32_t *dims,
                               char *err, size_t err_size) {
  *fp = NULL;
  gzFile f = open_idx(name, used, used_size);
  if (!f) {
    int e = errno;
    if (e == ENOENT)
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s file %s[.gz] not found (tried %s and %s.gz)", what, name, name, name);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "cannot open %s file %s: %s", what,
                used, strerror(e));
  }
  unsigned char hdr[4 + 4 * 3];
  size_t hbytes = 4 + 4 * (size_t)ndim;
  size_t got = read_full(f, hdr, hbytes);
  char zb[160];
  if (got < 4) {
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
         "%s: not an IDX file: it ends after %zu bytes, before the 4-byte magic number%s", used,
         got, zmsg(f, zb, sizeof zb));
    gzclose(f);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  uint32_t magic = be32(hdr);
  if (magic != want) {
    if (hdr[0] != 0 || hdr[1] != 0)
      fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
           "%s: bad magic number 0x%08x, expected 0x%08x (IDX %s); is it an IDX file?", used,
           magic, want, what);
    else if (hdr[2] != 0x08)
      fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
           "%s: bad magic number 0x%08x: IDX dtype 0x%02x, only unsigned bytes (0x08) are "
           "supported",
           used, magic, hdr[2]);
    else
      fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
           "%s: bad magic number 0x%08x: %d dimensions, %s have %d (expected 0x%08x)", used,
           magic, hdr[3], what, ndim, want);
    gzclose(f);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  if (got < hbytes) {
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
         "%s: truncated IDX header: expected %zu bytes, file ends after %zu%s", used, hbytes, got,
         zmsg(f, zb, sizeof zb));
    gzclose(f);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  for (int i = 0; i < ndim; i++) {
    dims[i] = be32(hdr + 4 + 4 * i);
    if (dims[i] == 0) {
      fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: absurd dimensions: dimension %d of the %s is 0",
           used, i, what);
      gzclose(f);
      return CLCNN_ERR_INVALID_ARGUMENT;
    }
  }
  *fp = f;
  return CLCNN_SUCCESS;
}

/* Images: (n, rows, cols) unsigned bytes -> ds->x as (n, 1, rows, cols) floats. */
static clcnn_status idx_images(const char *name, clcnn_dataset *ds, char *used, size_t used_size,
                               char *err, size_t err_size) {
  char zb[160];
  uint32_t d[3];
  gzFile f;
  clcnn_status st = idx_header(name, IDX_IMAGES_MAGIC, 3, "images", &f, used, used_size, d,
                               err, err_size);
  if (st) return st;
  uint64_t plane = (uint64_t)d[1] * d[2]; /* < 2^64: each factor < 2^32 */
  if (d[1] > MAX_ELEMS || d[2] > MAX_ELEMS || plane > MAX_ELEMS ||
      (uint64_t)d[0] * plane > MAX_ELEMS) { /* plane <= 2^31, d[0] < 2^32: no overflow */
    gzclose(f);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: absurd dimensions %u x %u x %u: more than 2^31-1 pixels", used, d[0], d[1],
                d[2]);
  }
  size_t total = (size_t)d[0] * (size_t)plane;
  /* the header's sizes are a claim: x grows as the pixels arrive, so a short file that
   * claims 2^31 pixels is refused as truncated without first taking 8 GB */
  float *x = NULL;
  size_t cap = 0;
  float scale[256];
  make_scale(scale);
  unsigned char buf[CHUNK];
  size_t done = 0;
  while (done < total) {
    size_t want = total - done < CHUNK ? total - done : CHUNK;
    size_t got = read_full(f, buf, want);
    if (done + got > cap) {
      size_t ncap = cap < total / 2 ? (cap * 2 > done + got ? cap * 2 : done + got) : total;
      if (ncap < (size_t)CHUNK * 16 && total >= (size_t)CHUNK * 16) ncap = (size_t)CHUNK * 16;
      if (ncap > total) ncap = total;
      float *nx = realloc(x, ncap * sizeof *x);
      if (!nx) {
        free(x);
        gzclose(f);
        return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY,
                    "%s: cannot allocate %zu bytes for %u images of %ux%u", used,
                    ncap * sizeof *x, d[0], d[1], d[2]);
      }
      x = nx, cap = ncap;
    }
    for (size_t i = 0; i < got; i++) x[done + i] = scale[buf[i]];
    done += got;
    if (got < want) {
      fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
           "%s: truncated: expected %zu bytes of pixels (%u images of %ux%u), file ends after "
           "%zu%s",
           used, total, d[0], d[1], d[2], done, zmsg(f, zb, sizeof zb));
      free(x);
      gzclose(f);
      return CLCNN_ERR_INVALID_ARGUMENT;
    }
  }
  gzclose(f);
  ds->n = (int)d[0];
  ds->c = 1;
  ds->h = (int)d[1];
  ds->w = (int)d[2];
  ds->x = x;
  return CLCNN_SUCCESS;
}

/* Labels: (n) unsigned bytes -> ds->y, ds->classes = max + 1. *n_out gets the count. */
static clcnn_status idx_labels(const char *name, clcnn_dataset *ds, uint32_t *n_out, char *lused,
                               size_t lused_size, char *err, size_t err_size) {
  char zb[160];
  uint32_t n;
  gzFile f;
  clcnn_status st =
      idx_header(name, IDX_LABELS_MAGIC, 1, "labels", &f, lused, lused_size, &n, err, err_size);
  if (st) return st;
  if (n > MAX_ELEMS) {
    gzclose(f);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: absurd label count %u: more than 2^31-1", lused, n);
  }
  /* the count is a claim: the labels are read in pieces, and only those that arrive are
   * stored, so a short file that claims 2^31 labels takes no 10 GB */
  unsigned char *raw = NULL;
  size_t got = 0, cap = 0;
  while (got < n) {
    size_t want = n - got < CHUNK ? n - got : CHUNK;
    if (got + want > cap) {
      size_t ncap = cap * 2 > got + want ? cap * 2 : got + want;
      if (ncap > n) ncap = n;
      unsigned char *nr = realloc(raw, ncap);
      if (!nr) {
        free(raw);
        gzclose(f);
        return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: cannot allocate %u labels",
                    lused, n);
      }
      raw = nr, cap = ncap;
    }
    size_t r = read_full(f, raw + got, want);
    got += r;
    if (r < want) break;
  }
  if (got < n) {
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
         "%s: truncated: expected %u bytes of labels, file ends after %zu%s", lused, n, got,
         zmsg(f, zb, sizeof zb));
    free(raw);
    gzclose(f);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  int32_t *y = malloc((size_t)n * sizeof *y);
  if (!y) {
    free(raw);
    gzclose(f);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: cannot allocate %u labels", lused,
                n);
  }
  gzclose(f);
  int maxl = 0;
  for (uint32_t i = 0; i < n; i++) {
    y[i] = raw[i];
    if (raw[i] > maxl) maxl = raw[i];
  }
  free(raw);
  if (maxl < 1) {
    free(y);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: every label is 0; a classification data set needs at least 2 classes",
                lused);
  }
  ds->y = y;
  ds->classes = maxl + 1;
  *n_out = n;
  return CLCNN_SUCCESS;
}

CLCNN_API void clcnn_dataset_destroy(clcnn_dataset *ds) {
  if (!ds) return;
  free(ds->x);
  free(ds->y);
  free(ds->mask);
  free(ds->boxes);
  free(ds->box_start);
  free(ds);
}

CLCNN_API clcnn_status clcnn_dataset_load_idx(const char *images, const char *labels,
                                              clcnn_dataset **out, char *err, size_t err_size) {
  clear_err(err, err_size);
  if (out) *out = NULL;
  if (!images || !labels || !out)
    return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_dataset_load_idx: %s is NULL",
                !images ? "images" : !labels ? "labels" : "out");
  clcnn_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "cannot allocate a data set");
  char iused[PATH_MAX + 8], lused[PATH_MAX + 8];
  clcnn_status st = idx_images(images, ds, iused, sizeof iused, err, err_size);
  uint32_t nl = 0;
  if (!st) st = idx_labels(labels, ds, &nl, lused, sizeof lused, err, err_size);
  if (!st && nl != (uint32_t)ds->n)
    st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
              "%s has %d images but %s has %u labels: counts disagree", iused, ds->n, lused, nl);
  if (st) {
    clcnn_dataset_destroy(ds);
    return st;
  }
  *out = ds;
  return CLCNN_SUCCESS;
}

/* ---- CIFAR-10 binary ------------------------------------------------------------------ */

/* Append the records of PATH (label byte + 3072 CHW pixel bytes each) to ds from sample
 * ds->n on; ds->x and ds->y have room for cap samples. */
static clcnn_status cifar_read(const char *path, clcnn_dataset *ds, size_t records,
                               const float *scale, char *err, size_t err_size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "cannot open %s: %s", path,
                strerror(errno));
  enum { BATCH = 64 };
  unsigned char *buf = malloc((size_t)BATCH * CIFAR_RECORD);
  if (!buf) {
    fclose(f);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "cannot allocate a read buffer");
  }
  size_t done = 0;
  while (done < records) {
    size_t want = records - done < BATCH ? records - done : BATCH;
    size_t got = fread(buf, CIFAR_RECORD, want, f);
    if (got < want) {
      int e = ferror(f) ? errno : 0;
      free(buf);
      fclose(f);
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: truncated: expected %zu records of %d bytes, file ends after %zu%s%s",
                  path, records, CIFAR_RECORD, done + got, e ? ": " : "", e ? strerror(e) : "");
    }
    for (size_t r = 0; r < got; r++) {
      const unsigned char *rec = buf + r * CIFAR_RECORD;
      if (rec[0] > 9) {
        fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
             "%s: record %zu has label %d; CIFAR-10 labels are 0..9", path, done + r, rec[0]);
        free(buf);
        fclose(f);
        return CLCNN_ERR_INVALID_ARGUMENT;
      }
      size_t s = (size_t)ds->n;
      ds->y[s] = rec[0];
      float *x = ds->x + s * CIFAR_PIXELS;
      for (int i = 0; i < CIFAR_PIXELS; i++) x[i] = scale[rec[1 + i]];
      ds->n++;
    }
    done += got;
  }
  free(buf);
  fclose(f);
  return CLCNN_SUCCESS;
}

static clcnn_status cifar_load(const char *base, int train, clcnn_dataset **out, char *err,
                               size_t err_size) {
  int nfiles = train ? CIFAR_TRAIN_BATCHES : 1;
  char path[CIFAR_TRAIN_BATCHES][PATH_MAX + 32];
  size_t records[CIFAR_TRAIN_BATCHES];
  size_t total = 0;
  for (int i = 0; i < nfiles; i++) {
    if (train)
      snprintf(path[i], sizeof path[i], "%s/data_batch_%d.bin", base, i + 1);
    else
      snprintf(path[i], sizeof path[i], "%s/test_batch.bin", base);
    struct stat sb;
    if (stat(path[i], &sb) != 0)
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                  "CIFAR-10 batch %s: %s (the train split needs data_batch_1.bin.."
                  "data_batch_5.bin)",
                  path[i], strerror(errno));
    if (!S_ISREG(sb.st_mode))
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "CIFAR-10 batch %s is not a file",
                  path[i]);
    uint64_t size = (uint64_t)sb.st_size;
    if (size == 0 || size % CIFAR_RECORD != 0)
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: truncated or not a CIFAR-10 batch: %llu bytes is not a positive "
                  "multiple of the %d-byte record (1 label + 3x32x32 pixels)",
                  path[i], (unsigned long long)size, CIFAR_RECORD);
    records[i] = (size_t)(size / CIFAR_RECORD);
    total += records[i];
    if ((uint64_t)total * CIFAR_PIXELS > MAX_ELEMS)
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: absurd size: more than 2^31-1 pixels in all", path[i]);
  }
  clcnn_dataset *ds = calloc(1, sizeof *ds);
  if (ds) {
    ds->x = malloc(total * CIFAR_PIXELS * sizeof *ds->x);
    ds->y = malloc(total * sizeof *ds->y);
  }
  if (!ds || !ds->x || !ds->y) {
    clcnn_dataset_destroy(ds);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "cannot allocate %zu CIFAR-10 images",
                total);
  }
  ds->c = 3;
  ds->h = ds->w = CIFAR_SIDE;
  ds->classes = 10;
  float scale[256];
  make_scale(scale);
  for (int i = 0; i < nfiles; i++) {
    clcnn_status st = cifar_read(path[i], ds, records[i], scale, err, err_size);
    if (st) {
      clcnn_dataset_destroy(ds);
      return st;
    }
  }
  *out = ds;
  return CLCNN_SUCCESS;
}

/* ---- a data set directory --------------------------------------------------------------- */

CLCNN_API clcnn_status clcnn_dataset_load(const char *dir, int train, clcnn_dataset **out,
                                          char *err, size_t err_size) {
  clear_err(err, err_size);
  if (out) *out = NULL;
  if (!dir || !out)
    return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_dataset_load: %s is NULL",
                !dir ? "dir" : "out");
  struct stat sb;
  if (stat(dir, &sb) != 0)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "data directory %s: %s%s", dir,
                strerror(errno), errno == ENOENT ? " (the directory does not exist)" : "");
  if (!S_ISDIR(sb.st_mode))
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "data directory %s is not a directory",
                dir);

  if (strlen(dir) + 64 >= PATH_MAX)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "data directory name too long: %s",
                dir);
  char seg[PATH_MAX];
  snprintf(seg, sizeof seg, "%s/%s/images", dir, train ? "train" : "test");
  if (stat(seg, &sb) == 0 && S_ISDIR(sb.st_mode)) return clcnn_segset_load(dir, train, out, err, err_size);
  const char *split = train ? "train" : "t10k";
  char images[PATH_MAX], labels[PATH_MAX], gz[PATH_MAX + 8];
  snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte", dir, split);
  snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte", dir, split);
  snprintf(gz, sizeof gz, "%s.gz", images);
  int have_images = exists(images) || exists(gz);
  snprintf(gz, sizeof gz, "%s.gz", labels);
  int have_labels = exists(labels) || exists(gz);
  if (have_images || have_labels) /* a missing half is reported by the IDX loader */
    return clcnn_dataset_load_idx(images, labels, out, err, err_size);

  char base[PATH_MAX], first[PATH_MAX + 32];
  const char *firstname = train ? "data_batch_1.bin" : "test_batch.bin";
  for (int sub = 0; sub < 2; sub++) {
    snprintf(base, sizeof base, sub ? "%s/cifar-10-batches-bin" : "%s", dir);
    snprintf(first, sizeof first, "%s/%s", base, firstname);
    if (exists(first)) return cifar_load(base, train, out, err, err_size);
  }
  return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
              "no %s data set in %s: looked for %s-images-idx3-ubyte[.gz] and "
              "%s-labels-idx1-ubyte[.gz] (MNIST, Fashion-MNIST), and for %s in %s or "
              "%s/cifar-10-batches-bin (CIFAR-10 binary), and for %s/%s/images with masks (a segmentation set)",
              train ? "training" : "test", dir, split, split,
              train ? "data_batch_1.bin..data_batch_5.bin" : "test_batch.bin", dir, dir, dir, train ? "train" : "test");
}

/* ---- statistics and normalisation ------------------------------------------------------ */

CLCNN_API void clcnn_dataset_stats(const clcnn_dataset *ds, double *mean, double *std) {
  if (!ds || !mean || !std || ds->c <= 0) return;
  size_t plane = ds->n > 0 && ds->x ? (size_t)ds->h * (size_t)ds->w : 0;
  size_t per = (size_t)ds->c * plane;
  double count = (double)ds->n * (double)plane;
  for (int c = 0; c < ds->c; c++) {
    if (count <= 0) {
      mean[c] = std[c] = 0;
      continue;
    }
    /* Two passes: the mean, then the squared deviations from it. */
    double s = 0;
    for (int i = 0; i < ds->n; i++) {
      const float *p = ds->x + (size_t)i * per + (size_t)c * plane;
      double ps = 0;
      for (size_t k = 0; k < plane; k++) ps += p[k];
      s += ps;
    }
    double m = s / count, q = 0;
    for (int i = 0; i < ds->n; i++) {
      const float *p = ds->x + (size_t)i * per + (size_t)c * plane;
      double pq = 0;
      for (size_t k = 0; k < plane; k++) {
        double d = p[k] - m;
        pq += d * d;
      }
      q += pq;
    }
    mean[c] = m;
    std[c] = sqrt(q / count);
  }
}

CLCNN_API clcnn_status clcnn_dataset_normalize(clcnn_dataset *ds, const double *mean,
                                               const double *std) {
  if (!ds || !mean || !std) return CLCNN_ERR_NULL_POINTER;
  if (ds->n > 0 && !ds->x) return CLCNN_ERR_NULL_POINTER;
  if (ds->c <= 0 || ds->h <= 0 || ds->w <= 0 || ds->n < 0) return CLCNN_ERR_INVALID_ARGUMENT;
  for (int c = 0; c < ds->c; c++)
    if (!isfinite(mean[c]) || !isfinite(std[c]) || !(std[c] > 0))
      return CLCNN_ERR_INVALID_ARGUMENT; /* checked before anything changes */
  size_t plane = (size_t)ds->h * (size_t)ds->w;
  for (int i = 0; i < ds->n; i++)
    for (int c = 0; c < ds->c; c++) {
      float *p = ds->x + ((size_t)i * (size_t)ds->c + (size_t)c) * plane;
      double m = mean[c], inv = 1.0 / std[c];
      for (size_t k = 0; k < plane; k++) p[k] = (float)((p[k] - m) * inv);
    }
  return CLCNN_SUCCESS;
}

/* ---- a seeded generator and a shuffle -------------------------------------------------- */

/* splitmix64 (Steele, Lea, Flood 2014; Vigna's reference code). */
CLCNN_API uint64_t clcnn_rng_next(uint64_t *state) {
  if (!state) return 0;
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Fisher-Yates from the end; j uniform in [0, i] by a multiply-shift (Lemire), whose bias
 * (< (i+1)/2^64) is far below anything a training run can see. */
CLCNN_API void clcnn_shuffle(uint32_t *order, size_t n, uint64_t *state) {
  if (!order || !state || n < 2) return;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(((unsigned __int128)clcnn_rng_next(state) * (i + 1)) >> 64);
    uint32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

/* ---- augmentation ------------------------------------------------------------------------ */

/* The draws of one key, always in this order and always all of them, so that a key means one
 * thing whatever the settings: the crop's offsets in [0, 2*pad] (as RandomCrop draws them from
 * the padded image), then the flip. Checks the settings too. */
static clcnn_status augment_draw(const clcnn_augment *aug, int h, int w, uint64_t key, int *oy, int *ox, int *flip) {
  if (h <= 0 || w <= 0 || aug->crop_pad < 0 || aug->crop_pad > CLCNN_AUGMENT_MAX_PAD || (aug->hflip != 0 && aug->hflip != 1))
    return CLCNN_ERR_INVALID_ARGUMENT;
  uint64_t st = key;
  uint64_t span = (uint64_t)(2 * aug->crop_pad + 1);
  *oy = (int)(((unsigned __int128)clcnn_rng_next(&st) * span) >> 64) - aug->crop_pad;
  *ox = (int)(((unsigned __int128)clcnn_rng_next(&st) * span) >> 64) - aug->crop_pad;
  *flip = aug->hflip && (clcnn_rng_next(&st) >> 63);
  return CLCNN_SUCCESS;
}

/* dst[y][x] = padded[y + pad + oy][x + pad + ox] = src[y + oy][x + ox], fill outside; the same
 * loop for a float plane and a byte one */
#define AUGMENT_PLANE(d, s, f)                                                             \
  for (int y = 0; y < h; y++) {                                                            \
    int sy = y + oy;                                                                       \
    for (int x = 0; x < w; x++) {                                                          \
      int sx = (flip ? w - 1 - x : x) + ox;                                                \
      (d)[(size_t)y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? (s)[(size_t)sy * w + sx] : (f); \
    }                                                                                      \
  }

CLCNN_API clcnn_status clcnn_augment_sample(const clcnn_augment *aug, const float *src, float *dst,
                                            int c, int h, int w, const float *fill, uint64_t key) {
  if (!aug || !src || !dst) return CLCNN_ERR_NULL_POINTER;
  int oy, ox, flip;
  if (c <= 0 || augment_draw(aug, h, w, key, &oy, &ox, &flip)) return CLCNN_ERR_INVALID_ARGUMENT;
  size_t plane = (size_t)h * (size_t)w, n = (size_t)c * plane;
  if (dst < src + n && src < dst + n) return CLCNN_ERR_INVALID_ARGUMENT; /* overlapping */
  for (int ch = 0; ch < c; ch++) {
    const float *s = src + (size_t)ch * plane;
    float *d = dst + (size_t)ch * plane;
    float f = fill ? fill[ch] : 0.0f;
    AUGMENT_PLANE(d, s, f)
  }
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_augment_mask(const clcnn_augment *aug, const unsigned char *src, unsigned char *dst,
                                          int h, int w, unsigned char fill, uint64_t key) {
  if (!aug || !src || !dst) return CLCNN_ERR_NULL_POINTER;
  int oy, ox, flip;
  if (augment_draw(aug, h, w, key, &oy, &ox, &flip)) return CLCNN_ERR_INVALID_ARGUMENT;
  size_t n = (size_t)h * (size_t)w;
  if (dst < src + n && src < dst + n) return CLCNN_ERR_INVALID_ARGUMENT;
  AUGMENT_PLANE(dst, src, fill)
  return CLCNN_SUCCESS;
}
#undef AUGMENT_PLANE

/* "none", or a comma-separated list of "hflip" and "crop=P", each at most once. */
CLCNN_API clcnn_status clcnn_augment_parse(const char *spec, clcnn_augment *out, char *err,
                                           size_t err_size) {
  clear_err(err, err_size);
  if (!spec || !out) return CLCNN_ERR_NULL_POINTER;
  clcnn_augment a = {0, 0};
  int have_flip = 0, have_crop = 0;
#define AUG_FAIL(...)                                     \
  do {                                                    \
    if (err && err_size) snprintf(err, err_size, __VA_ARGS__); \
    return CLCNN_ERR_INVALID_ARGUMENT;                    \
  } while (0)
  if (!strcmp(spec, "none")) {
    *out = a;
    return CLCNN_SUCCESS;
  }
  const char *p = spec;
  for (;;) {
    size_t len = strcspn(p, ",");
    if (len == 5 && !strncmp(p, "hflip", len)) {
      if (have_flip++) AUG_FAIL("'hflip' is given twice");
      a.hflip = 1;
    } else if (len >= 5 && !strncmp(p, "crop=", 5)) {
      if (have_crop++) AUG_FAIL("'crop' is given twice");
      long v = 0;
      if (len == 5) AUG_FAIL("crop= needs a padding (e.g. crop=2)");
      for (size_t i = 5; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > CLCNN_AUGMENT_MAX_PAD)
          AUG_FAIL("crop's padding must be a whole number from 0 to %d, not '%.*s'", CLCNN_AUGMENT_MAX_PAD,
                   (int)(len - 5 > 32 ? 32 : len - 5), p + 5);
        v = v * 10 + (p[i] - '0');
      }
      if (v > CLCNN_AUGMENT_MAX_PAD)
        AUG_FAIL("crop's padding must be a whole number from 0 to %d, not '%.*s'", CLCNN_AUGMENT_MAX_PAD,
                 (int)(len - 5 > 32 ? 32 : len - 5), p + 5);
      a.crop_pad = (int)v;
    } else {
      AUG_FAIL("'%.*s' is not an augmentation: expected 'none' or a comma-separated list of 'hflip' and 'crop=P'",
               (int)(len > 64 ? 64 : len), p);
    }
    if (!p[len]) break;
    p += len + 1;
  }
#undef AUG_FAIL
  *out = a;
  return CLCNN_SUCCESS;
}
