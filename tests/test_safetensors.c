/* tests/test_safetensors.c - safetensors files: what is written reads back bit for bit, the
 * bytes on disk are the format's (pinned by hand-derived golden headers), every broken file is
 * refused with words that say what is wrong, and a refused or failed write leaves PATH as it
 * was. No OpenCL. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

static char dir[256];
static char err[1024];

static const char *in_dir(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  *n = 0;
  if (!f) return NULL;
  size_t cap = 1 << 16;
  unsigned char *b = malloc(cap);
  for (size_t r; b && (r = fread(b + *n, 1, cap - *n, f)) > 0;) {
    *n += r;
    if (*n == cap) b = realloc(b, cap *= 2);
  }
  fclose(f);
  return b;
}

static void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) tap_bail("cannot write a test file");
}

/* A file with header length strlen(header) (no padding) and the given data. */
static void spit_st(const char *path, const char *header, const void *data, size_t ndata) {
  size_t hn = strlen(header);
  unsigned char *b = malloc(8 + hn + ndata + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hn >> (8 * i));
  memcpy(b + 8, header, hn);
  if (ndata) memcpy(b + 8 + hn, data, ndata);
  spit(path, b, 8 + hn + ndata);
  free(b);
}

/* Every |-separated word of WORDS is in s. */
static int has_all(const char *s, const char *words) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|"))
    if (!strstr(s, w)) return 0;
  return 1;
}

/* Opening PATH is refused with CLCNN_ERR_INVALID_ARGUMENT and words. */
static void refused(const char *path, const char *words, const char *what) {
  clcnn_safetensors *f = (clcnn_safetensors *)&f; /* not NULL: open must clear it */
  clcnn_status st = clcnn_safetensors_open(path, &f, err, sizeof err);
  int ok = st == CLCNN_ERR_INVALID_ARGUMENT && f == NULL && has_all(err, words);
  tap_ok(ok, "%s is refused: %s", what, err);
  if (!ok) tap_diag("status %s, wanted the words: %s", clcnn_status_name(st), words);
  if (st == CLCNN_SUCCESS) clcnn_safetensors_close(f);
}

/* Same as refused() for a header written with spit_st(). */
static void refused_header(const char *header, const void *data, size_t ndata, const char *words,
                           const char *what) {
  const char *p = in_dir("bad.safetensors");
  spit_st(p, header, data, ndata);
  refused(p, words, what);
}

static int temp_files_left(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    const char *p = in_dir(e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

static int same_tensor(const clcnn_st_tensor *a, const clcnn_st_tensor *b) {
  if (!a || !b || strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim ||
      a->bytes != b->bytes)
    return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->dims[d] != b->dims[d]) return 0;
  return a->bytes == 0 || memcmp(a->data, b->data, a->bytes) == 0;
}

/* The file at PATH is 8 bytes of LE length N = the padded length of JSON, JSON, N - strlen(JSON)
 * spaces, then DATA. */
static int file_is(const char *path, const char *json, size_t n_expected, const void *data,
                   size_t ndata) {
  size_t size, jl = strlen(json);
  unsigned char *b = slurp(path, &size);
  int ok = b && size == 8 + n_expected + ndata && (8 + n_expected) % 8 == 0;
  uint64_t hn = 0;
  for (int i = 7; ok && i >= 0; i--) hn = hn << 8 | b[i];
  ok = ok && hn == n_expected && memcmp(b + 8, json, jl) == 0;
  for (size_t i = jl; ok && i < n_expected; i++) ok = b[8 + i] == ' ';
  ok = ok && (ndata == 0 || memcmp(b + 8 + n_expected, data, ndata) == 0);
  if (!ok && b) tap_diag("file: %zu bytes, header length %llu: %.*s", size, (unsigned long long)hn,
                         (int)(size > 8 && hn < size - 8 ? hn : 0), (const char *)b + 8);
  free(b);
  return ok;
}

static void test_round_trip(void) {
  static float w[2 * 3 * 4 * 5];
  static double v[7];
  int64_t count = -9000000000000000001LL;
  for (int i = 0; i < 120; i++) w[i] = (float)(i * 0.37 - 20.0) / 3.0f;
  w[5] = -0.0f;
  for (int i = 0; i < 7; i++) v[i] = 1.0 / (i + 1) - 1e-300 * i;
  clcnn_st_tensor t[4] = {
      {.name = "0.weight", .dtype = CLCNN_ST_F32, .ndim = 4, .dims = {2, 3, 4, 5}, .data = w, .bytes = sizeof w},
      {.name = "caf\xc3\xa9.var", .dtype = CLCNN_ST_F64, .ndim = 1, .dims = {7}, .data = v, .bytes = sizeof v},
      {.name = "1.num_batches_tracked", .dtype = CLCNN_ST_I64, .ndim = 0, .data = &count, .bytes = 8},
      {.name = "empty", .dtype = CLCNN_ST_F32, .ndim = 2, .dims = {0, 3}, .data = NULL, .bytes = 0},
  };
  /* a 300 KB value full of what JSON must escape, and UTF-8 */
  static const char chunk[] = "ab\"c\\d\ne\x01\x1f\tg \xc3\xa9 \xf0\x9f\x98\x80 /}";
  size_t big_len = (300 * 1024 / (sizeof chunk - 1)) * (sizeof chunk - 1);
  char *big = malloc(big_len + 1);
  for (size_t o = 0; o < big_len; o += sizeof chunk - 1) memcpy(big + o, chunk, sizeof chunk - 1);
  big[big_len] = 0;
  const char *meta[] = {"format", "pt", "blob", big, "", "empty key", "k\"\\\n", "v"};
  const char *p = in_dir("round.safetensors");

  clcnn_status st = clcnn_safetensors_write(p, t, 4, meta, 4, err, sizeof err);
  tap_ok(st == CLCNN_SUCCESS && err[0] == 0, "write 4 tensors (4-d F32, F64, 0-d I64, empty) and 4 metadata pairs: %s", err);
  clcnn_safetensors *f = NULL;
  st = clcnn_safetensors_open(p, &f, err, sizeof err);
  tap_ok(st == CLCNN_SUCCESS && f && err[0] == 0, "open it: %s", err);
  if (!f) tap_bail("cannot read back what was written");
  tap_ok(clcnn_safetensors_count(f) == 4, "4 tensors");
  int all = 1;
  for (int i = 0; i < 4; i++) {
    const clcnn_st_tensor *g = clcnn_safetensors_get(f, i);
    tap_ok(same_tensor(g, &t[i]), "tensor %d '%s' keeps its place, name, dtype, shape and bytes", i, t[i].name);
    all &= clcnn_safetensors_find(f, t[i].name) == g;
    if (g && g->bytes && (uintptr_t)g->data % (g->dtype == CLCNN_ST_F32 ? 4 : 8)) all = 0;
  }
  tap_ok(all, "find() finds each by name; data is aligned to the element size");
  tap_ok(!clcnn_safetensors_get(f, 4) && !clcnn_safetensors_get(f, -1) &&
             !clcnn_safetensors_find(f, "nope") && !clcnn_safetensors_find(f, "__metadata__") &&
             !clcnn_safetensors_meta(f, "nope"),
         "absent tensors and keys are NULL");
  const char *m = clcnn_safetensors_meta(f, "blob");
  tap_ok(m && strlen(m) == big_len && memcmp(m, big, big_len) == 0, "the %zu-byte metadata value comes back byte for byte", big_len);
  tap_ok(clcnn_safetensors_meta(f, "format") && !strcmp(clcnn_safetensors_meta(f, "format"), "pt") &&
             clcnn_safetensors_meta(f, "") && !strcmp(clcnn_safetensors_meta(f, ""), "empty key") &&
             clcnn_safetensors_meta(f, "k\"\\\n") && !strcmp(clcnn_safetensors_meta(f, "k\"\\\n"), "v"),
         "the other metadata, an empty key and a key with escapes");
  clcnn_safetensors_close(f);

  size_t size;
  unsigned char *b = slurp(p, &size);
  uint64_t hn = 0;
  for (int i = 7; b && i >= 0; i--) hn = hn << 8 | b[i];
  int pad_ok = b && size >= 8 + hn && (8 + hn) % 8 == 0 && b[8] == '{';
  size_t last = 8 + (size_t)hn; /* the header ends with '}' then only spaces */
  while (pad_ok && last > 8 && b[last - 1] == ' ') last--;
  pad_ok = pad_ok && b[last - 1] == '}' && 8 + hn - last < 8;
  tap_ok(pad_ok, "header padded with fewer than 8 spaces so that 8+N (%llu) is a multiple of 8",
         (unsigned long long)(8 + hn));
  tap_ok(b && size == 8 + hn + sizeof w + sizeof v + 8, "the file is 8 + N + the data, %zu bytes", size);
  free(b);
  free(big);

  /* overwrite in place: the new content replaces the old, the mode is kept */
  chmod(p, 0640);
  clcnn_st_tensor one = {.name = "x", .dtype = CLCNN_ST_F64, .ndim = 1, .dims = {1}, .data = v, .bytes = 8};
  st = clcnn_safetensors_write(p, &one, 1, NULL, 0, err, sizeof err);
  struct stat sb;
  tap_ok(st == CLCNN_SUCCESS && clcnn_safetensors_open(p, &f, err, sizeof err) == CLCNN_SUCCESS &&
             clcnn_safetensors_count(f) == 1 && !clcnn_safetensors_meta(f, "format") &&
             stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0640,
         "writing over an existing file replaces it and keeps its mode: %s", err);
  clcnn_safetensors_close(f);

  /* no tensors at all */
  st = clcnn_safetensors_write(in_dir("none.safetensors"), NULL, 0, NULL, 0, err, sizeof err);
  f = NULL;
  tap_ok(st == CLCNN_SUCCESS && file_is(in_dir("none.safetensors"), "{}", 8, NULL, 0) &&
             clcnn_safetensors_open(in_dir("none.safetensors"), &f, err, sizeof err) == CLCNN_SUCCESS &&
             clcnn_safetensors_count(f) == 0,
         "a file with no tensors is \"{}\" and 6 spaces, and reads back: %s", err);
  clcnn_safetensors_close(f);
  tap_ok(temp_files_left() == 0, "no temporary files are left behind");
}

/* Headers derived by hand from the format; see the character counts. */
static void test_golden(void) {
  /* 1. one F32 tensor (2,3): JSON of 57 characters; 8 + 57 = 65, padded to 72: N = 64. */
  const float d1[6] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, -2.0f};
  const unsigned char d1_le[24] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0, 0x3f,
                                   0, 0, 0x80, 0xbf, 0, 0, 0, 0,    0, 0, 0, 0xc0};
  const char *j1 = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
  clcnn_st_tensor t1 = {.name = "w", .dtype = CLCNN_ST_F32, .ndim = 2, .dims = {2, 3}, .data = d1, .bytes = 24};
  const char *p = in_dir("golden1.safetensors");
  clcnn_status st = clcnn_safetensors_write(p, &t1, 1, NULL, 0, err, sizeof err);
  tap_ok(strlen(j1) == 57 && st == CLCNN_SUCCESS && file_is(p, j1, 64, d1_le, 24),
         "golden: one F32 (2,3) tensor is 8 bytes 0x40, the 57-byte JSON, 7 spaces, 24 LE bytes");

  /* 2. metadata only, with escapes: a " b \ c newline d 0x01 -> 41 characters, N = 48
   *    (jansson writes a newline as \n, other control characters as \u00XX). */
  const char *j2 = "{\"__metadata__\":{\"k\":\"a\\\"b\\\\c\\nd\\u0001\"}}";
  const char *m2[] = {"k", "a\"b\\c\nd\x01"};
  p = in_dir("golden2.safetensors");
  st = clcnn_safetensors_write(p, NULL, 0, m2, 1, err, sizeof err);
  tap_ok(strlen(j2) == 41 && st == CLCNN_SUCCESS && file_is(p, j2, 48, NULL, 0),
         "golden: metadata escapes \\\" \\\\ \\n \\u0001, padded to N = 48");

  /* 3. metadata first, tensors in the caller's order; data: 8-byte dtypes first (I64 b at
   *    [0,8]), then F32 a at [8,20]. 138 characters, 8 + 138 = 146 -> 152: N = 144. */
  const char *j3 = "{\"__metadata__\":{\"format\":\"pt\"},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]},"
                   "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}";
  const unsigned char d3_le[20] = {7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0, 0x3f};
  const int64_t seven = 7;
  clcnn_st_tensor t3[2] = {
      {.name = "a", .dtype = CLCNN_ST_F32, .ndim = 1, .dims = {3}, .data = d1 + 0, .bytes = 12},
      {.name = "b", .dtype = CLCNN_ST_I64, .ndim = 0, .data = &seven, .bytes = 8},
  };
  const float d3[3] = {1.0f, 2.0f, 0.5f};
  t3[0].data = d3;
  const char *m3[] = {"format", "pt"};
  p = in_dir("golden3.safetensors");
  st = clcnn_safetensors_write(p, t3, 2, m3, 1, err, sizeof err);
  tap_ok(strlen(j3) == 138 && st == CLCNN_SUCCESS && file_is(p, j3, 144, d3_le, 20),
         "golden: __metadata__ first, header in the caller's order, I64 data before F32");
}

static void test_bad_files(void) {
  const char *p = in_dir("bad.safetensors");
  spit(p, "", 0);
  refused(p, "bad.safetensors|not a safetensors file|empty", "an empty file");
  spit(p, "\x10\0\0\0\0\0\0", 7);
  refused(p, "7 bytes|too short|truncated", "a 7-byte file");
  {
    unsigned char b[1200] = {0};
    uint64_t hn = 7234987234ULL;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hn >> (8 * i));
    spit(p, b, sizeof b);
    refused(p, "not a safetensors file: header length 7234987234 exceeds the file size 1200",
            "a header length beyond the file");
  }
  refused(in_dir("no-such-file"), "no-such-file|No such file or directory", "a missing file");
  refused(dir, "Is a directory", "a directory");

  static const float f6[6] = {1, 2, 3, 4, 5, 6};
  refused_header("hello world", NULL, 0, "not valid JSON|near 'hello'", "a header that is not JSON");
  refused_header("", NULL, 0, "not valid JSON|end of the header", "an empty header");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"sha", NULL, 0, "not valid JSON|truncated", "truncated JSON");
  refused_header("{} x", NULL, 0, "not valid JSON|trailing", "trailing garbage after the JSON");
  refused_header("{}{}", NULL, 0, "trailing", "two JSON objects");
  refused_header("{\"a\":1,}", NULL, 0, "not valid JSON|string or '}' expected", "a trailing comma");
  refused_header("{\"a\" 1}", NULL, 0, "':' expected", "a missing colon");
  refused_header("{\"a\":01}", NULL, 0, "invalid token near '0'", "a number with a leading zero");
  refused_header("{\"a\":\"x\ty\"}", NULL, 0, "control character 0x9", "a raw tab in a string");
  refused_header("{\"a\":\"\\q\"}", NULL, 0, "invalid escape near '\"\\q'", "an unknown escape");
  refused_header("{\"a\":\"\\ud800x\"}", NULL, 0, "invalid Unicode '\\uD800'", "a lone high surrogate");
  refused_header("{\"a\":\"\\udc00\"}", NULL, 0, "invalid Unicode '\\uDC00'", "a lone low surrogate");
  refused_header("{\"a\":\"\\u12g4\"}", NULL, 0, "invalid escape near '\"\\u12g'", "a bad \\u escape");
  refused_header("{\"a\":\"\xc3\x28\"}", NULL, 0, "invalid UTF-8", "invalid UTF-8");
  refused_header("{\"a\":\"\xc0\xaf\"}", NULL, 0, "invalid UTF-8", "an overlong UTF-8 form");
  refused_header("{\"a\":tru}", NULL, 0, "invalid token near 'tru'", "a misspelt literal");
  {
    char deep[400] = "{\"__metadata__\":";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    for (int i = 0; i < 100; i++) strcat(deep, "]");
    strcat(deep, "}");
    refused_header(deep, NULL, 0, "nesting deeper than 64", "nesting 100 deep");
  }
  refused_header("[]", NULL, 0, "the header is an array, not a JSON object", "a header that is an array");
  refused_header("{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", "\0\0\0\0\0\0", 6,
                 "tensor 'a'|dtype BF16 is not supported", "dtype BF16");
  refused_header("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "\0\0\0\0", 4,
                 "dtype I32 is not supported", "dtype I32");
  refused_header("{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", "\0\0\0\0", 4,
                 "unknown dtype 'Q7'", "an unknown dtype");
  refused_header("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[6,1,5,5],\"data_offsets\":[0,96]}}",
                 NULL, 0,
                 "bad.safetensors: tensor '0.weight': data_offsets [0, 96] hold 96 bytes, shape [6,1,5,5] F32 needs 600",
                 "offsets that do not fit the shape");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[8,32]}}", f6, 24,
                 "tensor 'a'|[8, 32]|beyond the 24 bytes", "offsets beyond the data");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", f6, 20,
                 "tensors 'a' [0, 16] and 'b' [12, 20] overlap", "overlapping tensors");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", f6, 20,
                 "gap|[8, 12)|'b'", "a gap between tensors");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", f6, 24,
                 "gap|[8, 24)|after the last tensor", "bytes after the last tensor");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", f6, 8,
                 "duplicate object key near '\"a\"'", "duplicate tensor names");
  refused_header("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0, "duplicate object key near '\"k\"'",
                 "duplicate metadata keys");
  refused_header("{\"__metadata__\":{\"epoch\":3}}", NULL, 0,
                 "__metadata__ 'epoch' is an integer, not a string", "a metadata value that is a number");
  refused_header("{\"__metadata__\":[]}", NULL, 0, "__metadata__ is an array", "__metadata__ that is an array");
  refused_header("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", NULL, 0, "NUL", "a NUL in a metadata value");
  refused_header("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", f6, 4, "NUL",
                 "a NUL in a tensor name");
  refused_header("{\"a\":{\"dtype\":\"F32\\u0000\",\"shape\":[1],\"data_offsets\":[0,4]}}", f6, 4,
                 "unknown dtype 'F32\\x00'", "a dtype with a NUL after F32");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", NULL, 0,
                 "tensor 'a'|shape dimension 0 is not a non-negative integer (it is negative)", "a negative dimension");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", f6, 4,
                 "shape dimension 0 is not a non-negative integer (it is a number with a fraction", "a fractional dimension");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}",
                 f6, 4, "beyond int64|99999999999999999999", "a dimension beyond int64");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
                 f6, 4, "is too large", "a shape whose size overflows");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                 f6, 4, "9 dimensions|at most 8", "9 dimensions");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", f6, 4,
                 "data_offsets must be [begin, end]", "end before begin");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", f6, 4,
                 "data_offsets must be [begin, end]", "one offset");
  refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", f6, 4, "tensor 'a'|no \"data_offsets\"",
                 "a missing data_offsets");
  refused_header("{\"a\":[1]}", NULL, 0, "tensor 'a'|an array, not an object", "an entry that is not an object");
  refused_header("{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", f6, 4,
                 "dtype is an integer, not a string", "a dtype that is a number");
  {
    char h[400];
    char name[201];
    memset(name, 'n', 200);
    name[200] = 0;
    snprintf(h, sizeof h, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", name);
    refused_header(h, f6, 4, "200 bytes long|at most 127", "a 200-byte tensor name");
  }

  /* a good file cut short in its data */
  clcnn_st_tensor t = {.name = "a", .dtype = CLCNN_ST_F32, .ndim = 1, .dims = {6}, .data = f6, .bytes = 24};
  const char *g = in_dir("cut.safetensors");
  if (clcnn_safetensors_write(g, &t, 1, NULL, 0, err, sizeof err)) tap_bail(err);
  size_t size;
  unsigned char *b = slurp(g, &size);
  spit(g, b, size - 5);
  free(b);
  refused(g, "cut.safetensors|tensor 'a'|beyond the 19 bytes|truncated", "a file truncated in the data");

  /* what a reader must accept: an unpadded header, escapes in names, unknown keys, null
   * metadata, whitespace, a zero-size tensor */
  clcnn_safetensors *f = NULL;
  spit_st(p, " {\"__metadata__\" : null ,\n\"caf\\u00e9 \\ud83d\\ude00\\/\":{\"data_offsets\":[0,8],"
             "\"shape\":[2],\"dtype\":\"F32\",\"extra\":[true,false,null,-1.5e3]},"
             "\"z\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[8,8]}}\t\r\n ", f6, 8);
  clcnn_status st = clcnn_safetensors_open(p, &f, err, sizeof err);
  const clcnn_st_tensor *a = f ? clcnn_safetensors_get(f, 0) : NULL;
  tap_ok(st == CLCNN_SUCCESS && clcnn_safetensors_count(f) == 2 && a &&
             !strcmp(a->name, "caf\xc3\xa9 \xf0\x9f\x98\x80/") && a->bytes == 8 &&
             (uintptr_t)a->data % 8 == 0 && !memcmp(a->data, f6, 8) &&
             clcnn_safetensors_find(f, "z") && clcnn_safetensors_find(f, "z")->bytes == 0,
         "an unpadded header with \\u escapes, surrogate pairs, unknown keys, null metadata, "
         "whitespace and a zero-size tensor is read (data realigned): %s", err);
  clcnn_safetensors_close(f);
}

static void test_bad_writes(void) {
  static const float f6[6] = {1, 2, 3, 4, 5, 6};
  const char *p = in_dir("keep.safetensors");
  clcnn_st_tensor t = {.name = "a", .dtype = CLCNN_ST_F32, .ndim = 1, .dims = {6}, .data = f6, .bytes = 24};
  if (clcnn_safetensors_write(p, &t, 1, NULL, 0, err, sizeof err)) tap_bail(err);
  size_t n0, n1;
  unsigned char *before = slurp(p, &n0);

  struct {
    clcnn_st_tensor t[2];
    int n;
    const char *meta[2];
    int nmeta;
    clcnn_status want;
    const char *words, *what;
  } cases[] = {
      {{t, t}, 2, {0}, 0, CLCNN_ERR_INVALID_ARGUMENT, "duplicate tensor name 'a'", "duplicate names"},
      {{{.name = "", .dtype = CLCNN_ST_F32, .ndim = 1, .dims = {6}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "tensor 0 has an empty name", "an empty name"},
      {{{.name = "__x", .dtype = CLCNN_ST_F32, .ndim = 1, .dims = {6}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "'__x'|reserved", "a name starting with __"},
      {{{.name = "a", .dtype = CLCNN_ST_F32, .ndim = 9, .dims = {6}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "ndim 9 is outside 0..8", "ndim 9"},
      {{{.name = "a", .dtype = CLCNN_ST_F32, .ndim = 2, .dims = {-2, -3}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "shape [-2,-3] has a negative dimension", "negative dimensions"},
      {{{.name = "a", .dtype = CLCNN_ST_F32, .ndim = 2, .dims = {2, 2}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "tensor 'a': 24 bytes given, shape [2,2] F32 needs 16", "bytes that do not fit the shape"},
      {{{.name = "a", .dtype = CLCNN_ST_F64, .ndim = 1, .dims = {3}, .data = NULL, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_NULL_POINTER, "data is NULL for 24 bytes", "NULL data"},
      {{{.name = "a", .dtype = (clcnn_st_dtype)3, .ndim = 1, .dims = {3}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "dtype 3", "an unknown dtype"},
      {{{.name = "bad\xff", .dtype = CLCNN_ST_F32, .ndim = 1, .dims = {6}, .data = f6, .bytes = 24}}, 1, {0}, 0,
       CLCNN_ERR_INVALID_ARGUMENT, "'bad\\xff'|not valid UTF-8", "a name that is not UTF-8"},
      {{t}, 1, {"k", NULL}, 1, CLCNN_ERR_NULL_POINTER, "metadata pair 0 has a NULL value", "a NULL metadata value"},
      {{t}, 1, {"k", "\xc3"}, 1, CLCNN_ERR_INVALID_ARGUMENT, "metadata 'k'|not valid UTF-8", "metadata that is not UTF-8"},
      {{t}, -1, {0}, 0, CLCNN_ERR_INVALID_ARGUMENT, "cannot be negative", "a negative count"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    clcnn_status st = clcnn_safetensors_write(p, cases[c].t, cases[c].n,
                                              cases[c].nmeta ? cases[c].meta : NULL, cases[c].nmeta,
                                              err, sizeof err);
    int ok = st == cases[c].want && has_all(err, cases[c].words);
    tap_ok(ok, "write refuses %s: %s", cases[c].what, err);
    if (!ok) tap_diag("status %s, wanted %s", clcnn_status_name(st), clcnn_status_name(cases[c].want));
  }
  clcnn_st_tensor longname = t;
  memset(longname.name, 'x', sizeof longname.name);
  tap_ok(clcnn_safetensors_write(p, &longname, 1, NULL, 0, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "not NUL-terminated"),
         "write refuses a name without a NUL in its 128 bytes: %s", err);
  const char *dm[] = {"k", "1", "k", "2"};
  tap_ok(clcnn_safetensors_write(p, &t, 1, dm, 2, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "duplicate metadata key 'k'"),
         "write refuses duplicate metadata keys: %s", err);
  tap_ok(clcnn_safetensors_write(NULL, &t, 1, NULL, 0, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             strstr(err, "path is NULL"), "a NULL path: %s", err);
  tap_ok(clcnn_safetensors_write(p, NULL, 1, NULL, 0, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
         "a NULL tensor array: %s", err);
  tap_ok(clcnn_safetensors_write(p, &t, 1, NULL, 1, NULL, 0) == CLCNN_ERR_NULL_POINTER,
         "a NULL metadata array, with err NULL");

  unsigned char *after = slurp(p, &n1);
  tap_ok(after && n1 == n0 && memcmp(before, after, n0) == 0,
         "after every refused write the existing file is byte for byte the same");
  free(after);

  /* failures after the temporary file exists: PATH is a directory, rename fails */
  const char *d = in_dir("a-directory");
  mkdir(d, 0755);
  clcnn_status st = clcnn_safetensors_write(d, &t, 1, NULL, 0, err, sizeof err);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "cannot rename") && strstr(err, "Is a directory"),
         "writing over a directory fails at the rename: %s", err);
  tap_ok(temp_files_left() == 0, "no temporary files are left in the directory");

  const char *nowhere = in_dir("no/such/dir/x.safetensors");
  st = clcnn_safetensors_write(nowhere, &t, 1, NULL, 0, err, sizeof err);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "x.safetensors") &&
             strstr(err, "No such file or directory") && access(nowhere, F_OK) != 0,
         "writing into a directory that does not exist fails cleanly: %s", err);

  char small[6];
  st = clcnn_safetensors_write(p, cases[0].t, 2, NULL, 0, small, sizeof small);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strlen(small) == 5, "a 6-byte err buffer gets 5 characters and a NUL");
  clcnn_safetensors *f = (clcnn_safetensors *)&f;
  tap_ok(clcnn_safetensors_open(nowhere, &f, NULL, 0) == CLCNN_ERR_INVALID_ARGUMENT && f == NULL,
         "open with err NULL");
  tap_ok(clcnn_safetensors_open(NULL, &f, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_safetensors_open(p, NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
         "open with a NULL path or out pointer: %s", err);
  clcnn_safetensors_close(NULL);
  tap_ok(clcnn_safetensors_count(NULL) == 0 && !clcnn_safetensors_get(NULL, 0) &&
             !clcnn_safetensors_find(NULL, "a") && !clcnn_safetensors_meta(NULL, "a"),
         "the accessors and close accept NULL");
  tap_ok(temp_files_left() == 0, "still no temporary files");
  free(before);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/clcnn-st-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) tap_bail("cannot make a temporary directory");
  umask(022);
  test_round_trip();
  test_golden();
  test_bad_files();
  test_bad_writes();
  remove_dir();
  return tap_done();
}
