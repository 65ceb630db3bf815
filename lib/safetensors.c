/* lib/safetensors.c - safetensors files, the checkpoint format PyTorch loads with
 * safetensors.torch.load_file().
 *
 * Layout: 8 bytes little-endian u64 N, N bytes of UTF-8 JSON (the header), then the data
 * buffer. The header maps each tensor name to {"dtype", "shape", "data_offsets":[begin,end]}
 * (offsets into the data buffer, end exclusive) and may hold "__metadata__": {string: string}.
 * It is padded with spaces so that 8 + N is a multiple of 8.
 *
 * Writing goes to a temporary file beside PATH, is flushed to disk and renamed over PATH, so
 * PATH is either the old file or the whole new one. Reading takes the whole file into memory
 * and checks everything (JSON syntax, dtypes, shapes, offsets, coverage of the buffer) before
 * handing out a tensor; every refusal names the file, the tensor and what was wrong.
 *
 * Tensor data is read and written in place, without byte swapping: this code targets
 * little-endian hosts, which the check below enforces at compile time. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"
#include "internal.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lib/safetensors.c hands out tensor data in place; a big-endian host would need byte swapping"
#endif
#endif

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER ((uint64_t)100000000) /* 100 MB, the safetensors crate's limit */
#define ST_MAX_DEPTH 64                     /* JSON nesting (jansson allows 2048) */
#define ST_NAME_MAX ((int)sizeof(((clcnn_st_tensor *)0)->name)) /* 128, with the NUL */

struct clcnn_safetensors {
  unsigned char *raw;             /* the whole file (plus 8 bytes of slack); owned */
  clcnn_st_tensor *t;             /* file order; data points into raw */
  int n;
  const clcnn_st_tensor **by_name; /* t sorted by name, for find */
  char **meta_key, **meta_val;    /* owned */
  int nmeta;
};

/* ---- errors ---- */

static int utf8_valid(const char *s, size_t n);

/* fail(err, err_size, st, fmt, ...): the reason into the caller's buffer (lib/status.c). */
#define fail clcnn__errf

/* S (LEN bytes) made fit for a message: at most 60 bytes, then "..."; quotes, backslashes and
 * control characters as \xNN. Returns buf. */
static const char *printable(char *buf, size_t size, const char *s, size_t len) {
  size_t o = 0;
  int utf8 = utf8_valid(s, len); /* if not, bytes >= 0x80 are escaped too */
  for (size_t i = 0; i < len && o + 8 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i >= 60 && (!utf8 || (c & 0xc0) != 0x80)) { /* cut between characters */
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\' || (c >= 0x80 && !utf8))
      o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
    else
      buf[o++] = (char)c;
  }
  buf[o] = 0;
  return buf;
}
#define PRINTABLE(buf, s, len) printable((buf), sizeof(buf), (s), (len))

/* ---- dtypes ---- */

static const char *const dtype_name[] = {"F32", "F64", "I64"}; /* by clcnn_st_dtype */
static const size_t dtype_size[] = {4, 8, 8};
/* The other dtypes of the safetensors format, refused with "not supported". */
static const char *const dtype_other[] = {"BOOL", "U8",   "I8",      "I16",     "U16",
                                          "F16",  "BF16", "I32",     "U32",     "U64",
                                          "C64",  "F4",   "F8_E5M2", "F8_E4M3", "F8_E8M0",
                                          "F6_E2M3", "F6_E3M2"};

static int dtype_ok(clcnn_st_dtype d) { return d == CLCNN_ST_F32 || d == CLCNN_ST_F64 || d == CLCNN_ST_I64; }

/* "[6,1,5,5]" into buf. */
static const char *shape_str(char *buf, size_t size, int ndim, const int64_t *dims) {
  size_t o = 0;
  buf[o++] = '[';
  for (int d = 0; d < ndim && o + 24 < size; d++)
    o += (size_t)snprintf(buf + o, size - o, "%s%" PRId64, d ? "," : "", dims[d]);
  if (o + 2 <= size) buf[o++] = ']';
  buf[o < size ? o : size - 1] = 0;
  return buf;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one: overlong
 * forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

static int utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_seq(u + i, n - i);
    if (!l) return 0;
    i += l;
  }
  return 1;
}

/* ---- writing ---- */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The mode the new file gets: the old file's, else 0666 less the umask (read from /proc
 * where it can be, since umask() itself would change it for other threads). */
static mode_t new_file_mode(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return st.st_mode & 0777;
  mode_t mask = 022;
  FILE *f = fopen("/proc/self/status", "r");
  if (f) {
    char line[256];
    unsigned m;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "Umask: %o", &m) == 1) {
        mask = (mode_t)m;
        break;
      }
    fclose(f);
  }
  return 0666 & ~mask;
}

/* Make the rename durable: flush the directory holding path. Best effort. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

static int cmp_name_ptr(const void *a, const void *b) {
  return strcmp((*(const clcnn_st_tensor *const *)a)->name, (*(const clcnn_st_tensor *const *)b)->name);
}

/* Check the tensors and metadata; the header, padded with spaces, into *h (malloc'd, *hlen
 * bytes). */
static clcnn_status build_header(const char *path, const clcnn_st_tensor *t, int n,
                                 const char *const *meta, int nmeta, char **h, size_t *hlen,
                                 char *err, size_t es) {
  char q[256], sh[256];
  for (int i = 0; i < nmeta; i++) {
    const char *k = meta[2 * i], *v = meta[2 * i + 1];
    if (!k || !v)
      return fail(err, es, CLCNN_ERR_NULL_POINTER, "%s: metadata pair %d has a NULL %s", path, i,
                  k ? "value" : "key");
    if (!utf8_valid(k, strlen(k)))
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: metadata key %d is not valid UTF-8",
                  path, i);
    if (!utf8_valid(v, strlen(v)))
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: metadata '%s': the value is not valid UTF-8", path,
                  PRINTABLE(q, k, strlen(k)));
    for (int j = 0; j < i; j++)
      if (strcmp(meta[2 * j], k) == 0)
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: duplicate metadata key '%s'", path,
                    PRINTABLE(q, k, strlen(k)));
  }
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    const clcnn_st_tensor *x = &t[i];
    size_t len = strnlen(x->name, sizeof x->name);
    if (len == sizeof x->name)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensor %d: the name is not NUL-terminated within %d bytes", path, i,
                  ST_NAME_MAX);
    if (len == 0)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor %d has an empty name", path, i);
    const char *nm = PRINTABLE(q, x->name, len);
    if (strncmp(x->name, "__", 2) == 0)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensor '%s': names starting with \"__\" are reserved (__metadata__)", path, nm);
    if (!utf8_valid(x->name, len))
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the name is not valid UTF-8",
                  path, nm);
    if (!dtype_ok(x->dtype))
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensor '%s': dtype %d is not CLCNN_ST_F32, _F64 or _I64", path, nm,
                  (int)x->dtype);
    if (x->ndim < 0 || x->ndim > ST_MAX_DIMS)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': ndim %d is outside 0..%d",
                  path, nm, x->ndim, ST_MAX_DIMS);
    uint64_t count = 1;
    int big = 0;
    for (int d = 0; d < x->ndim; d++) {
      if (x->dims[d] < 0)
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: tensor '%s': shape %s has a negative dimension", path, nm,
                    shape_str(sh, sizeof sh, x->ndim, x->dims));
      if (x->dims[d] && count > UINT64_MAX / (uint64_t)x->dims[d]) big = 1;
      count *= (uint64_t)x->dims[d];
    }
    for (int d = 0; d < x->ndim; d++)
      if (x->dims[d] == 0) big = 0, count = 0;
    size_t esz = dtype_size[x->dtype];
    if (big || count > SIZE_MAX / esz)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': shape %s is too large",
                  path, nm, shape_str(sh, sizeof sh, x->ndim, x->dims));
    if (count * esz != x->bytes)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensor '%s': %zu bytes given, shape %s %s needs %" PRIu64, path, nm,
                  x->bytes, shape_str(sh, sizeof sh, x->ndim, x->dims), dtype_name[x->dtype],
                  count * esz);
    if (x->bytes > 0 && !x->data)
      return fail(err, es, CLCNN_ERR_NULL_POINTER, "%s: tensor '%s': data is NULL for %zu bytes",
                  path, nm, x->bytes);
    if (x->bytes > SIZE_MAX - total)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: the tensors hold too many bytes", path);
    total += x->bytes;
  }
  if (n > 1) {
    const clcnn_st_tensor **s = malloc((size_t)n * sizeof *s);
    if (!s) return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (int i = 0; i < n; i++) s[i] = &t[i];
    qsort(s, (size_t)n, sizeof *s, cmp_name_ptr);
    for (int i = 1; i < n; i++)
      if (strcmp(s[i - 1]->name, s[i]->name) == 0) {
        fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: duplicate tensor name '%s'", path,
             PRINTABLE(q, s[i]->name, strlen(s[i]->name)));
        free(s);
        return CLCNN_ERR_INVALID_ARGUMENT;
      }
    free(s);
  }

  if (total > (uint64_t)INT64_MAX) /* jansson's integers are int64 */
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: the tensors hold too many bytes", path);

  /* {"__metadata__":{"k":"v"},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}},
   * compact, keys in insertion order (jansson keeps it). */
  json_t *root = json_object();
  int oom = !root;
  if (nmeta > 0 && !oom) {
    json_t *m = json_object();
    oom = json_object_set_new(root, "__metadata__", m) != 0;
    for (int i = 0; i < nmeta && !oom; i++)
      oom = json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1])) != 0;
  }
  /* Data order: 8-byte dtypes first, then 4-byte ones, each group in the caller's order, so
   * that every tensor is aligned to its element size (as the safetensors crate does it). The
   * header keeps the caller's order. */
  uint64_t off8 = 0, off4 = 0;
  for (int i = 0; i < n; i++)
    if (dtype_size[t[i].dtype] == 8) off4 += t[i].bytes;
  for (int i = 0; i < n && !oom; i++) {
    uint64_t *off = dtype_size[t[i].dtype] == 8 ? &off8 : &off4;
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    if (!e || !shape || !offs) {
      json_decref(e);
      json_decref(shape);
      json_decref(offs);
      oom = 1;
      break;
    }
    /* the _new setters take the reference even when they fail: nothing leaks */
    oom = json_object_set_new(e, "dtype", json_string(dtype_name[t[i].dtype])) |
          json_object_set_new(e, "shape", shape) | json_object_set_new(e, "data_offsets", offs) |
          json_object_set_new(root, t[i].name, e);
    for (int d = 0; d < t[i].ndim && !oom; d++) oom = json_array_append_new(shape, json_integer(t[i].dims[d]));
    oom = oom || json_array_append_new(offs, json_integer((json_int_t)*off)) ||
          json_array_append_new(offs, json_integer((json_int_t)(*off + t[i].bytes)));
    *off += t[i].bytes;
  }
  char *js = oom ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  size_t len = js ? strlen(js) : 0;
  size_t padded = (8 + len + 7) / 8 * 8 - 8;
  if (js) *h = realloc(js, padded + 1);
  if (!js || !*h) {
    free(js);
    return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory for the header", path);
  }
  memset(*h + len, ' ', padded - len);
  (*h)[padded] = 0;
  *hlen = padded;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_safetensors_write(const char *path, const clcnn_st_tensor *t, int n,
                                               const char *const *meta, int nmeta, char *err,
                                               size_t err_size) {
  if (err && err_size > 0) err[0] = 0;
  if (!path) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "safetensors write: path is NULL");
  if (!*path) return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "safetensors write: path is empty");
  if (n < 0 || nmeta < 0)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: %d tensors and %d metadata pairs: counts cannot be negative", path, n, nmeta);
  if (n > 0 && !t)
    return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "%s: the tensor array is NULL for %d tensors",
                path, n);
  if (nmeta > 0 && !meta)
    return fail(err, err_size, CLCNN_ERR_NULL_POINTER,
                "%s: the metadata array is NULL for %d pairs", path, nmeta);

  char *h = NULL;
  size_t hlen = 0;
  clcnn_status st = build_header(path, t, n, meta, nmeta, &h, &hlen, err, err_size);
  if (st) return st;

  /* the pieces: the length, the header, then the tensors in the order build_header gave the
   * offsets (the 8-byte dtypes first) */
  unsigned char len8[8];
  uint64_t hn = hlen;
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hn >> (8 * i));
  struct clcnn__piece *pc = malloc(((size_t)n + 2) * sizeof *pc);
  if (!pc) {
    free(h);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  int np = 0;
  pc[np++] = (struct clcnn__piece){len8, 8};
  pc[np++] = (struct clcnn__piece){h, hlen};
  for (size_t esz = 8; esz >= 4; esz -= 4)
    for (int i = 0; i < n; i++)
      if (dtype_size[t[i].dtype] == esz) pc[np++] = (struct clcnn__piece){t[i].data, t[i].bytes};
  st = clcnn__write_file(path, pc, np, err, err_size);
  free(pc);
  free(h);
  return st;
}

/* ---- whole files, replaced atomically ---- */

clcnn_status clcnn__write_file(const char *path, const struct clcnn__piece *pc, int np, char *err,
                               size_t err_size) {
  size_t tlen = strlen(path) + 64;
  char *tmp = malloc(tlen);
  if (!tmp) return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  snprintf(tmp, tlen, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
  mode_t mode = new_file_mode(path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot create the temporary file %s: %s",
         path, tmp, strerror(e));
    free(tmp);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  (void)fchmod(fd, mode); /* mkstemp makes 0600; filesystems without modes may refuse */

  const char *what = "write";
  int bad = 0;
  for (int i = 0; i < np && !bad; i++) bad = write_all(fd, pc[i].data, pc[i].bytes);
  if (!bad && fsync(fd) != 0) bad = 1, what = "fsync";
  int e = errno;
  if (close(fd) != 0 && !bad) bad = 1, what = "close", e = errno;
  if (!bad && rename(tmp, path) != 0) {
    e = errno;
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot rename %s to it: %s", path, tmp,
         strerror(e));
    bad = 2;
  } else if (bad) {
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s of the temporary file %s failed: %s",
         path, what, tmp, strerror(e));
  }
  if (bad) unlink(tmp);
  else sync_dir(path);
  free(tmp);
  return bad ? CLCNN_ERR_INVALID_ARGUMENT : CLCNN_SUCCESS;
}

/* ---- the parsed header (jansson) ---- */

static const char *jtype_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number with a fraction or exponent";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* How deeply v nests (a scalar is 0). jansson itself stops at 2048 levels. */
static int jdepth(const json_t *v) {
  int d = 0;
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      int dx = jdepth(x);
      if (dx > d) d = dx;
    }
    return d + 1;
  }
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      int dx = jdepth(x);
      if (dx > d) d = dx;
    }
    return d + 1;
  }
  return 0;
}

/* What jansson's error code means, before its own text. */
static const char *jerror_lead(enum json_error_code c) {
  switch (c) {
  case json_error_premature_end_of_input: return "unexpected end of the header (truncated JSON?): ";
  case json_error_end_of_input_expected: return "trailing characters after the JSON value: ";
  case json_error_invalid_utf8: return "invalid UTF-8: ";
  case json_error_numeric_overflow: return "a number beyond int64 or double: ";
  default: return "";
  }
}

/* ---- reading ---- */

/* The whole file into *buf (with 8 spare bytes after the *size read). */
static clcnn_status read_all(const char *path, unsigned char **buf, size_t *size, char *err,
                             size_t es) {
  *buf = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot open: %s", path, strerror(e));
  }
  struct stat st;
  size_t cap = 1 << 16;
  if (fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    if (S_ISREG(st.st_mode) && st.st_size >= 0 && (uint64_t)st.st_size < SIZE_MAX / 2)
      cap = (size_t)st.st_size + 4096;
  }
  unsigned char *b = malloc(cap);
  size_t n = 0;
  for (;;) {
    if (!b) {
      close(fd);
      return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
    }
    if (cap - n < 4096) {
      unsigned char *q = cap < SIZE_MAX / 4 ? realloc(b, cap * 2) : NULL;
      if (!q) free(b);
      b = q;
      cap *= 2;
      continue;
    }
    ssize_t r = read(fd, b + n, cap - n - 8);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(b);
      close(fd);
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot read: %s", path, strerror(e));
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  *buf = b;
  *size = n;
  return CLCNN_SUCCESS;
}

CLCNN_API void clcnn_safetensors_close(clcnn_safetensors *f) {
  if (!f) return;
  for (int i = 0; i < f->nmeta; i++) {
    free(f->meta_key[i]);
    free(f->meta_val[i]);
  }
  free(f->meta_key);
  free(f->meta_val);
  free(f->by_name);
  free(f->t);
  free(f->raw);
  free(f);
}

typedef struct {
  uint64_t begin, end;
  int idx;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* The tensor KEY: V into *t, its offsets into *sp. data_size: bytes after the header. (jansson
 * refuses a NUL in a key, so KEY is a C string.) */
static clcnn_status tensor_entry(const char *path, const char *key, const json_t *v, uint64_t data_size,
                                 clcnn_st_tensor *t, span *sp, char *err, size_t es) {
  char q[256], sh[256];
  size_t klen = strlen(key);
  const char *nm = PRINTABLE(q, key, klen);
  if (klen == 0)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: a tensor has an empty name", path);
  if (klen >= (size_t)ST_NAME_MAX)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': the name is %zu bytes long, clcnn keeps at most %d", path, nm,
                klen, ST_NAME_MAX - 1);
  memcpy(t->name, key, klen + 1);
  if (!json_is_object(v))
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the entry is %s, not an object",
                path, nm, jtype_name(v));

  const json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
               *off = json_object_get(v, "data_offsets");
  if (!dt || !shape || !off)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the entry has no \"%s\"", path,
                nm, !dt ? "dtype" : !shape ? "shape" : "data_offsets");
  if (!json_is_string(dt))
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': dtype is %s, not a string",
                path, nm, jtype_name(dt));
  const char *ds = json_string_value(dt);
  size_t dlen = json_string_length(dt); /* may hold a NUL: compare all of it */
  int d = -1;
  for (int k = 0; k < 3; k++)
    if (dlen == strlen(dtype_name[k]) && memcmp(ds, dtype_name[k], dlen) == 0) d = k;
  if (d < 0) {
    char qd[256];
    const char *dn = PRINTABLE(qd, ds, dlen);
    for (size_t k = 0; k < sizeof dtype_other / sizeof *dtype_other; k++)
      if (dlen == strlen(dtype_other[k]) && memcmp(ds, dtype_other[k], dlen) == 0)
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: tensor '%s': dtype %s is not supported (clcnn reads F32, F64 and I64)",
                    path, nm, dn);
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': unknown dtype '%s'", path, nm, dn);
  }
  t->dtype = (clcnn_st_dtype)d;

  if (!json_is_array(shape))
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': shape is %s, not an array",
                path, nm, jtype_name(shape));
  size_t nd = json_array_size(shape);
  if (nd > ST_MAX_DIMS)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': shape has %zu dimensions, clcnn keeps at most %d", path, nm,
                nd, ST_MAX_DIMS);
  t->ndim = (int)nd;
  uint64_t count = 1;
  int big = 0, zero = 0;
  for (size_t k = 0; k < nd; k++) {
    const json_t *x = json_array_get(shape, k);
    json_int_t xi = json_integer_value(x); /* jansson's integers are int64 */
    if (!json_is_integer(x) || xi < 0)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensor '%s': shape dimension %zu is not a non-negative integer (it is %s)",
                  path, nm, k, json_is_integer(x) ? "negative" : jtype_name(x));
    t->dims[k] = xi;
    if (xi == 0) zero = 1;
    else if (count > UINT64_MAX / (uint64_t)xi) big = 1;
    else count *= (uint64_t)xi;
  }
  if (zero) count = 0, big = 0;
  uint64_t esz = dtype_size[d];
  shape_str(sh, sizeof sh, t->ndim, t->dims);
  if (big || count > UINT64_MAX / esz)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': shape %s is too large", path,
                nm, sh);
  uint64_t need = count * esz;

  const json_t *o0 = json_array_get(off, 0), *o1 = json_array_get(off, 1);
  if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(o0) || !json_is_integer(o1) ||
      json_integer_value(o0) < 0 || json_integer_value(o1) < json_integer_value(o0))
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", path,
                nm);
  uint64_t b = (uint64_t)json_integer_value(o0), e = (uint64_t)json_integer_value(o1);
  if (e - b != need)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                " bytes, shape %s %s needs %" PRIu64,
                path, nm, b, e, e - b, sh, dtype_name[d], need);
  if (e > data_size)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                "] reach beyond the %" PRIu64 " bytes of data after the header (truncated file?)",
                path, nm, b, e, data_size);
  t->bytes = (size_t)need;
  sp->begin = b;
  sp->end = e;
  return CLCNN_SUCCESS;
}

/* Check the parsed header and fill f. */
static clcnn_status from_header(const char *path, const json_t *top, clcnn_safetensors *f,
                                uint64_t data_size, span **spans_out, char *err, size_t es) {
  char q[256], q2[256];
  if (!json_is_object(top))
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: the header is %s, not a JSON object",
                path, jtype_name(top));
  if (jdepth(top) > ST_MAX_DEPTH)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: the header is refused: nesting deeper than %d levels",
                path, ST_MAX_DEPTH);
  const json_t *meta = json_object_get(top, "__metadata__");
  size_t nt = json_object_size(top) - (meta != NULL);
  if (nt > INT_MAX / 2)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: %zu tensors are too many", path, nt);

  if (meta && !json_is_null(meta)) {
    if (!json_is_object(meta))
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: __metadata__ is %s, not an object",
                  path, jtype_name(meta));
    size_t nm = json_object_size(meta);
    f->meta_key = calloc(nm ? nm : 1, sizeof *f->meta_key);
    f->meta_val = calloc(nm ? nm : 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val)
      return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)meta, k, v) {
      const char *key = PRINTABLE(q, k, strlen(k));
      if (!json_is_string(v))
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: __metadata__ '%s' is %s, not a string", path, key, jtype_name(v));
      if (memchr(json_string_value(v), 0, json_string_length(v)))
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: __metadata__ '%s' holds a NUL character", path, key);
      char *ck = strdup(k), *cv = strdup(json_string_value(v));
      f->meta_key[f->nmeta] = ck; /* close() frees them, NULL or not */
      f->meta_val[f->nmeta++] = cv;
      if (!ck || !cv) return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
  }

  f->t = calloc(nt ? nt : 1, sizeof *f->t);
  span *sp = calloc(nt ? nt : 1, sizeof *sp);
  *spans_out = sp;
  if (!f->t || !sp) return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)top, k, v) { /* in file order: jansson keeps it */
    if (v == meta) continue;
    clcnn_status st = tensor_entry(path, k, v, data_size, &f->t[f->n], &sp[f->n], err, es);
    if (st) return st;
    sp[f->n].idx = f->n;
    f->n++;
  }

  /* The tensors tile the data buffer: sorted by offsets, each begins where the last ended. */
  qsort(sp, nt, sizeof *sp, cmp_span);
  uint64_t pos = 0;
  for (size_t k = 0; k < nt; k++) {
    if (sp[k].begin > pos)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: a gap in the data: bytes [%" PRIu64 ", %" PRIu64
                  ") belong to no tensor (tensor '%s' begins at %" PRIu64 ")",
                  path, pos, sp[k].begin, PRINTABLE(q, f->t[sp[k].idx].name, strlen(f->t[sp[k].idx].name)),
                  sp[k].begin);
    if (sp[k].begin < pos)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%" PRIu64 ", %" PRIu64
                  "] overlap",
                  path, PRINTABLE(q, f->t[sp[k - 1].idx].name, strlen(f->t[sp[k - 1].idx].name)),
                  sp[k - 1].begin, sp[k - 1].end,
                  PRINTABLE(q2, f->t[sp[k].idx].name, strlen(f->t[sp[k].idx].name)), sp[k].begin,
                  sp[k].end);
    pos = sp[k].end;
  }
  if (pos != data_size)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: a gap in the data: bytes [%" PRIu64 ", %" PRIu64
                ") after the last tensor belong to no tensor",
                path, pos, data_size);
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_safetensors_open(const char *path, clcnn_safetensors **out, char *err,
                                              size_t err_size) {
  if (err && err_size > 0) err[0] = 0;
  if (out) *out = NULL;
  if (!path || !out)
    return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "safetensors open: %s is NULL",
                !path ? "path" : "the out pointer");

  unsigned char *raw;
  size_t size;
  clcnn_status st = read_all(path, &raw, &size, err, err_size);
  if (st) return st;
  if (size == 0) {
    free(raw);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: not a safetensors file: the file is empty",
                path);
  }
  if (size < 8) {
    free(raw);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: not a safetensors file: %zu bytes, too short for the 8-byte header length (truncated)",
                path, size);
  }
  uint64_t hn = 0;
  for (int i = 7; i >= 0; i--) hn = hn << 8 | raw[i];
  if (hn > size - 8) {
    free(raw);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: not a safetensors file: header length %" PRIu64 " exceeds the file size %zu",
                path, hn, size);
  }
  if (hn > ST_MAX_HEADER) {
    free(raw);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: not a safetensors file: header length %" PRIu64 " exceeds the limit of %" PRIu64
                " bytes",
                path, hn, ST_MAX_HEADER);
  }

  json_error_t je;
  json_t *top = json_loadb((const char *)raw + 8, (size_t)hn, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (!top) {
    free(raw);
    if (json_error_code(&je) == json_error_out_of_memory)
      return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory parsing the header", path);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: the header is not valid JSON: %s%s at byte %d of the header", path,
                jerror_lead(json_error_code(&je)), je.text, je.position);
  }

  clcnn_safetensors *f = calloc(1, sizeof *f);
  span *sp = NULL;
  if (!f) {
    json_decref(top);
    free(raw);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  f->raw = raw;
  size_t data_at = 8 + (size_t)hn, data_size = size - data_at;
  st = from_header(path, top, f, data_size, &sp, err, err_size);
  json_decref(top);
  if (!st && f->n > 0 && !(f->by_name = malloc((size_t)f->n * sizeof *f->by_name)))
    st = fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  if (st) {
    free(sp);
    clcnn_safetensors_close(f);
    return st;
  }
  /* A writer that does not pad the header leaves the data unaligned: move it (the buffer has
   * 8 spare bytes) so that each tensor whose offset is a multiple of its element size is
   * aligned for it. */
  if (data_at % 8) {
    size_t to = (data_at + 7) / 8 * 8;
    memmove(raw + to, raw + data_at, data_size);
    data_at = to;
  }
  for (int k = 0; k < f->n; k++) {
    f->t[sp[k].idx].data = raw + data_at + sp[k].begin;
    f->by_name[k] = &f->t[k];
  }
  free(sp);
  if (f->n > 1) qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name_ptr);
  *out = f;
  return CLCNN_SUCCESS;
}

CLCNN_API int clcnn_safetensors_count(const clcnn_safetensors *f) { return f ? f->n : 0; }

CLCNN_API const clcnn_st_tensor *clcnn_safetensors_get(const clcnn_safetensors *f, int i) {
  return f && i >= 0 && i < f->n ? &f->t[i] : NULL;
}

CLCNN_API const clcnn_st_tensor *clcnn_safetensors_find(const clcnn_safetensors *f,
                                                        const char *name) {
  if (!f || !name) return NULL;
  int lo = 0, hi = f->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(f->by_name[mid]->name, name);
    if (c == 0) return f->by_name[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

CLCNN_API const char *clcnn_safetensors_meta(const clcnn_safetensors *f, const char *key) {
  if (!f || !key) return NULL;
  for (int i = 0; i < f->nmeta; i++)
    if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
  return NULL;
}
