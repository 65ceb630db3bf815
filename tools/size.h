/* tools/size.h - a size in bytes as the tools' --mem-limit and --alloc-limit take it: digits,
 * then optionally K, M, G or T (KiB..TiB). 0 when it is none (0 itself, junk, an overflow). */
#ifndef CLCNN_TOOLS_SIZE_H
#define CLCNN_TOOLS_SIZE_H
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t parse_size_bytes(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
  int shift = 0;
  if (v && !errno) {
    const char *units = "KMGT", *u = *end ? strchr(units, end[0] & ~0x20) : NULL;
    if (u && end[1] == 0) shift = 10 * (int)(u - units + 1);
    else if (*end) v = 0;
  }
  if (!v || errno || (shift && v > (UINT64_MAX >> shift))) return 0;
  return (uint64_t)v << shift;
}
#endif
