/* tests/fuzz/fuzz_safetensors.c - safetensors headers and files (lib/safetensors.c) through the
 * public clcnn_safetensors_open API, so it holds whatever parses the JSON header. A file that
 * opens must keep its promises: every tensor's data lies inside the file and has the size
 * its dtype and shape give, and each is found by its name. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("t.safetensors", data, size);
  clcnn_safetensors *f = (clcnn_safetensors *)1;
  char err[1024];
  clcnn_status st = clcnn_safetensors_open(path, &f, err, sizeof err);
  if (st) {
    FUZZ_CHECK(!f, "a refused file was returned");
    FUZZ_CHECK(err[0], "refused with no reason");
    return 0;
  }
  FUZZ_CHECK(f, "no file");
  int n = clcnn_safetensors_count(f);
  FUZZ_CHECK(n >= 0, "count %d", n);
  uint64_t payload = 0;
  for (int i = 0; i < n; i++) {
    const clcnn_st_tensor *t = clcnn_safetensors_get(f, i);
    FUZZ_CHECK(t, "tensor %d of %d", i, n);
    FUZZ_CHECK(t->ndim >= 0 && t->ndim <= 8, "ndim %d", t->ndim);
    FUZZ_CHECK(memchr(t->name, 0, sizeof t->name), "a name without its end");
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) {
      FUZZ_CHECK(t->dims[d] >= 0, "dim %d is %lld", d, (long long)t->dims[d]);
      count *= (uint64_t)t->dims[d];
    }
    size_t esz = t->dtype == CLCNN_ST_F32 ? 4 : 8;
    FUZZ_CHECK(t->dtype == CLCNN_ST_F32 || t->dtype == CLCNN_ST_F64 || t->dtype == CLCNN_ST_I64, "dtype");
    FUZZ_CHECK(t->bytes == count * esz, "%s: %zu bytes for %llu elements", t->name, t->bytes,
               (unsigned long long)count);
    volatile uint8_t sum = 0; /* ASan sees a read outside the file's buffer */
    for (size_t b = 0; b < t->bytes; b++) sum += ((const uint8_t *)t->data)[b];
    (void)sum;
    payload += t->bytes;
    const clcnn_st_tensor *u = clcnn_safetensors_find(f, t->name);
    FUZZ_CHECK(u && !strcmp(u->name, t->name), "%s not found by name", t->name);
  }
  FUZZ_CHECK(payload <= size, "%llu bytes of tensors in a file of %zu", (unsigned long long)payload, size);
  FUZZ_CHECK(!clcnn_safetensors_get(f, n) && !clcnn_safetensors_get(f, -1), "a tensor out of range");
  const char *keys[] = {"format", "clcnn.train", "clcnn.model", ""};
  for (int i = 0; i < 4; i++) {
    const char *v = clcnn_safetensors_meta(f, keys[i]);
    if (v) FUZZ_CHECK(strlen(v) <= size, "metadata longer than the file");
  }
  clcnn_safetensors_close(f);
  return 0;
}
