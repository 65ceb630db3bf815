/* tests/fuzz/fuzz_idx.c - IDX images and labels (lib/data.c, plain or gzip) through
 * clcnn_dataset_load_idx. The input: a flags byte (bit 0: gzip the images file, bit 1: gzip
 * the labels file), the images file's length (u32, little-endian, cut to what is left), the
 * images file, then the labels file. A raw input may itself be gzip (the seeds hold some), so
 * damaged gzip streams are tried too. */
#include <zlib.h>

#include "fuzz.h"

/* data[0..size) to NAME, through gzip when gz. */
static const char *put(const char *name, const uint8_t *data, size_t size, int gz) {
  if (!gz) return fuzz_file(name, data, size);
  const char *path = fuzz_file(name, NULL, 0);
  gzFile f = gzopen(path, "wb1");
  if (!f || (size && gzwrite(f, data, (unsigned)size) != (int)size) || gzclose(f) != Z_OK) {
    fprintf(stderr, "%s: gzip failed\n", path);
    abort();
  }
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5) return -1;
  int flags = data[0];
  size_t ilen = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
  data += 5, size -= 5;
  if (ilen > size) ilen = size;
  char images[PATH_MAX + 64], labels[PATH_MAX + 64];
  snprintf(images, sizeof images, "%s", put("images", data, ilen, flags & 1));
  snprintf(labels, sizeof labels, "%s", put("labels", data + ilen, size - ilen, flags & 2));
  clcnn_dataset *ds = (clcnn_dataset *)1;
  char err[1024];
  clcnn_status st = clcnn_dataset_load_idx(images, labels, &ds, err, sizeof err);
  if (st) {
    FUZZ_CHECK(!ds, "a refused data set was returned");
    FUZZ_CHECK(strstr(err, "/images") || strstr(err, "/labels"), "the error names no file: '%s'", err);
    return 0;
  }
  FUZZ_CHECK(ds && !err[0], "success with error text '%s'", err);
  FUZZ_CHECK(ds->n > 0 && ds->c == 1 && ds->h > 0 && ds->w > 0 && ds->classes >= 2 &&
                 ds->classes <= 256,
             "n %d, shape (%d,%d,%d), %d classes", ds->n, ds->c, ds->h, ds->w, ds->classes);
  size_t px = (size_t)ds->n * ds->h * ds->w;
  for (size_t i = 0; i < px; i++) FUZZ_CHECK(ds->x[i] >= 0 && ds->x[i] <= 1, "pixel %zu", i);
  for (int i = 0; i < ds->n; i++)
    FUZZ_CHECK(ds->y[i] >= 0 && ds->y[i] < ds->classes, "label %d is %d", i, (int)ds->y[i]);
  clcnn_dataset_destroy(ds);
  return 0;
}
