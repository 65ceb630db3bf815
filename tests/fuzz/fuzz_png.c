/* tests/fuzz/fuzz_png.c - PNG decoding (lib/image.c) through clcnn_png_decode: any input is
 * refused with a message naming it and the output untouched, or decoded into an image whose
 * shape and kind are among those the reader takes, palette indices inside the palette. */
#include <zlib.h>

#include "fuzz.h"

/* Most mutations break a chunk's CRC, which the decoder refuses at once; for inputs of even
 * length the CRCs are made right first, so that mutations reach the chunks' contents. */
static uint8_t *fix_crcs(const uint8_t *data, size_t size) {
  uint8_t *c = malloc(size ? size : 1);
  if (!c) return NULL;
  memcpy(c, data, size);
  for (size_t at = 8; at + 12 <= size;) {
    size_t len = (size_t)c[at] << 24 | (size_t)c[at + 1] << 16 | (size_t)c[at + 2] << 8 | c[at + 3];
    if (len > size - at - 12) break;
    uLong crc = crc32(crc32(0L, Z_NULL, 0), c + at + 4, (uInt)(len + 4));
    for (int i = 0; i < 4; i++) c[at + 8 + len + i] = (uint8_t)(crc >> (24 - 8 * i));
    at += 12 + len;
  }
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *fixed = size % 2 == 0 ? fix_crcs(data, size) : NULL;
  if (fixed) data = fixed;
  clcnn_image im;
  memset(&im, 0xA5, sizeof im);
  char err[1024];
  clcnn_status st = clcnn_png_decode(data, size, "fuzz.png", &im, err, sizeof err);
  if (st) {
    FUZZ_CHECK(im.w == (int)0xA5A5A5A5, "a refused image was written");
    FUZZ_CHECK(!strncmp(err, "fuzz.png: ", 10), "the error names no file: '%s'", err);
    free(fixed);
    return 0;
  }
  FUZZ_CHECK(!err[0], "success with error text '%s'", err);
  FUZZ_CHECK(im.w >= 1 && im.h >= 1 && im.w <= CLCNN_IMAGE_MAX_SIDE && im.h <= CLCNN_IMAGE_MAX_SIDE, "a %dx%d image",
             im.w, im.h);
  FUZZ_CHECK(im.indexed ? im.channels == 1 && im.npalette >= 1 && im.npalette <= 256 : im.channels == 1 || im.channels == 3,
             "channels %d indexed %d palette %d", im.channels, im.indexed, im.npalette);
  size_t n = (size_t)im.w * im.h * im.channels;
  unsigned sum = 0;
  for (size_t i = 0; i < n; i++) { /* every pixel is readable (ASan) and every index in the palette */
    sum += im.px[i];
    if (im.indexed) FUZZ_CHECK(im.px[i] < im.npalette, "index %d past a palette of %d", im.px[i], im.npalette);
  }
  (void)sum;
  clcnn_image_free(&im);
  free(fixed);
  return 0;
}
