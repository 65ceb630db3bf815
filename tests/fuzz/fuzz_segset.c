/* tests/fuzz/fuzz_segset.c - segmentation sets (lib/segset.c) through clcnn_segset_load: one image,
 * one mask and optionally classes.txt, written as a set's files. Input: a byte whose value mod 4 is
 * the number of class names (0: no classes.txt), a u16 LE image length, the image's PNG bytes,
 * the mask's PNG bytes. Any set is refused with a message naming a file and nothing handed out,
 * or read into one sample whose mask has the image's size and every value a class or 255. */
#include <sys/stat.h>

#include "fuzz.h"

static void put(const char *dir, const char *name, const uint8_t *data, size_t size) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return -1;
  int names = data[0] % 4;
  size_t ilen = (size_t)data[1] | (size_t)data[2] << 8;
  if (ilen > size - 3) return -1;
  const uint8_t *img = data + 3, *mask = img + ilen;
  size_t mlen = size - 3 - ilen;
  static char root[PATH_MAX];
  if (!root[0]) { /* the set's directories, made once */
    snprintf(root, sizeof root, "%s/set", fuzz_scratch());
    const char *dirs[] = {"", "/train", "/train/images", "/train/masks"};
    for (int i = 0; i < 4; i++) {
      char d[PATH_MAX + 32];
      snprintf(d, sizeof d, "%s%s", root, dirs[i]);
      if (mkdir(d, 0777) && errno != EEXIST) abort();
    }
  }
  char d[PATH_MAX + 32];
  snprintf(d, sizeof d, "%s/train", root);
  put(d, "images/a.png", img, ilen);
  put(d, "masks/a.png", mask, mlen);
  static const char cls[] = "one\ntwo\nthree\n";
  char cpath[PATH_MAX + 32];
  snprintf(cpath, sizeof cpath, "%s/classes.txt", root);
  if (names) put(root, "classes.txt", (const uint8_t *)cls, (size_t)(names == 1 ? 4 : names == 2 ? 8 : 14));
  else unlink(cpath);
  clcnn_dataset *ds = (clcnn_dataset *)&names;
  char err[2048] = "";
  clcnn_status st = clcnn_segset_load(root, 1, &ds, err, sizeof err);
  if (st) {
    FUZZ_CHECK(ds == (clcnn_dataset *)&names, "a refused set was handed out");
    FUZZ_CHECK(strstr(err, ".png") || strstr(err, "classes.txt"), "the error names no file: '%s'", err);
    return 0;
  }
  FUZZ_CHECK(ds && ds->n == 1 && ds->mask && ds->h > 0 && ds->w > 0 && ds->x, "one sample with a mask");
  FUZZ_CHECK(ds->classes >= 1 && ds->classes <= 256, "classes %d", ds->classes);
  if (names) FUZZ_CHECK(ds->classes == names + 1, "%d names but %d classes", names, ds->classes);
  for (size_t i = 0; i < (size_t)ds->h * ds->w; i++)
    FUZZ_CHECK(ds->mask[i] == 255 || ds->mask[i] < ds->classes, "mask value %d of %d classes", ds->mask[i], ds->classes);
  for (size_t i = 0; i < (size_t)ds->c * ds->h * ds->w; i++)
    FUZZ_CHECK(ds->x[i] >= 0 && ds->x[i] <= 1, "pixel %g outside [0, 1]", ds->x[i]);
  clcnn_dataset_destroy(ds);
  return 0;
}
