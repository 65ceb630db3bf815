/* tests/fuzz/fuzz_cifar.c - CIFAR-10 binary batches (lib/data.c) through clcnn_dataset_load on a
 * directory whose test_batch.bin is the input. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_file("test_batch.bin", data, size);
  clcnn_dataset *ds = (clcnn_dataset *)1;
  char err[1024];
  clcnn_status st = clcnn_dataset_load(fuzz_scratch(), 0, &ds, err, sizeof err);
  if (st) {
    FUZZ_CHECK(!ds, "a refused data set was returned");
    FUZZ_CHECK(strstr(err, "test_batch.bin"), "the error names no file: '%s'", err);
    return 0;
  }
  FUZZ_CHECK(ds && !err[0], "success with error text '%s'", err);
  FUZZ_CHECK(size % 3073 == 0 && ds->n == (int)(size / 3073), "%zu bytes gave %d images", size, ds->n);
  FUZZ_CHECK(ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->classes == 10, "shape or classes");
  for (int i = 0; i < ds->n; i++) {
    FUZZ_CHECK(ds->y[i] == data[(size_t)i * 3073], "label %d", i);
    for (int k = 0; k < 3072; k++)
      FUZZ_CHECK(ds->x[(size_t)i * 3072 + k] == data[(size_t)i * 3073 + 1 + k] / 255.0f, "pixel %d of %d", k, i);
  }
  clcnn_dataset_destroy(ds);
  return 0;
}
