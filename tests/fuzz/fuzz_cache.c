/* tests/fuzz/fuzz_cache.c - the program cache's entries (lib/ctx.c): the checks an entry passes
 * before its binary goes to the driver. The input is an entry file, checked against the key
 * "0123456789abcdef0123456789abcdef"; when its first byte is odd the harness writes the
 * right length and checksum into it first, so that the later checks are reached too. An
 * accepted entry has the header and exactly the payload its header names. */
#include "internal.h"
#include "fuzz.h"

#define KEY "0123456789abcdef0123456789abcdef"

static uint64_t fnv(const uint8_t *s, size_t n) { /* FNV-1a 64, as lib/ctx.c writes it */
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  if (size >= 64 && (data[0] & 1)) {
    uint64_t len = size - 64, sum = fnv(buf + 64, size - 64);
    for (int i = 0; i < 8; i++) buf[48 + i] = (uint8_t)(len >> 8 * i), buf[56 + i] = (uint8_t)(sum >> 8 * i);
  }
  const char *why = clcnn__cache_entry_check(buf, size, KEY);
  if (!why) {
    FUZZ_CHECK(size > 64 && !memcmp(buf, "CLCNNBIN", 8) && !memcmp(buf + 16, KEY, 32),
               "an entry of %zu bytes accepted", size);
    uint64_t len = 0, sum = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | buf[48 + i], sum = sum << 8 | buf[56 + i];
    FUZZ_CHECK(len == size - 64 && sum == fnv(buf + 64, size - 64), "length or checksum");
  } else {
    FUZZ_CHECK(*why, "an empty reason");
  }
  free(buf);
  return 0;
}
