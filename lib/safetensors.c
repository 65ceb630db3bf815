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
#include <limits.h>
#include <stdarg.h>
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
#define ST_MAX_DEPTH 64                     /* JSON nesting */
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

/* ---- a growing string ---- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t len) {
  if (b->oom) return;
  if (len > SIZE_MAX / 2 - b->n) {
    b->oom = 1;
    return;
  }
  if (b->n + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + len + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  if (len) memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
  char t[24];
  sb_put(b, t, (size_t)snprintf(t, sizeof t, "%" PRIu64, v));
}

/* S as a JSON string: quotes and backslashes escaped, control characters as \u00xx. */
static void sb_json_str(sbuf *b, const char *s) {
  const char *run = s;
  sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    sb_put(b, run, (size_t)(s - run));
    char e[8];
    if (c < 0x20)
      snprintf(e, sizeof e, "\\u%04x", c);
    else
      e[0] = '\\', e[1] = (char)c, e[2] = 0;
    sb_str(b, e);
    run = s + 1;
  }
  sb_put(b, run, (size_t)(s - run));
  sb_put(b, "\"", 1);
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

/* Check the tensors and metadata; build the header (padded) into h. */
static clcnn_status build_header(const char *path, const clcnn_st_tensor *t, int n,
                                 const char *const *meta, int nmeta, sbuf *h, char *err,
                                 size_t es) {
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

  /* {"__metadata__":{"k":"v"},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}} */
  sb_put(h, "{", 1);
  if (nmeta > 0) {
    sb_str(h, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sb_put(h, ",", 1);
      sb_json_str(h, meta[2 * i]);
      sb_put(h, ":", 1);
      sb_json_str(h, meta[2 * i + 1]);
    }
    sb_put(h, "}", 1);
  }
  /* Data order: 8-byte dtypes first, then 4-byte ones, each group in the caller's order, so
   * that every tensor is aligned to its element size (as the safetensors crate does it). The
   * header keeps the caller's order. */
  uint64_t off8 = 0, off4 = 0;
  for (int i = 0; i < n; i++)
    if (dtype_size[t[i].dtype] == 8) off4 += t[i].bytes;
  for (int i = 0; i < n; i++) {
    uint64_t *off = dtype_size[t[i].dtype] == 8 ? &off8 : &off4;
    if (i || nmeta > 0) sb_put(h, ",", 1);
    sb_json_str(h, t[i].name);
    sb_str(h, ":{\"dtype\":\"");
    sb_str(h, dtype_name[t[i].dtype]);
    sb_str(h, "\",\"shape\":[");
    for (int d = 0; d < t[i].ndim; d++) {
      if (d) sb_put(h, ",", 1);
      sb_u64(h, (uint64_t)t[i].dims[d]);
    }
    sb_str(h, "],\"data_offsets\":[");
    sb_u64(h, *off);
    sb_put(h, ",", 1);
    *off += t[i].bytes;
    sb_u64(h, *off);
    sb_str(h, "]}");
  }
  sb_put(h, "}", 1);
  while (!h->oom && (8 + h->n) % 8 != 0) sb_put(h, " ", 1);
  if (h->oom) return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory for the header", path);
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

  sbuf h = {0};
  clcnn_status st = build_header(path, t, n, meta, nmeta, &h, err, err_size);
  if (st) {
    free(h.p);
    return st;
  }

  size_t tlen = strlen(path) + 64;
  char *tmp = malloc(tlen);
  if (!tmp) {
    free(h.p);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  snprintf(tmp, tlen, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
  mode_t mode = new_file_mode(path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot create the temporary file %s: %s",
         path, tmp, strerror(e));
    free(tmp);
    free(h.p);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  (void)fchmod(fd, mode); /* mkstemp makes 0600; filesystems without modes may refuse */

  unsigned char len8[8];
  uint64_t hn = h.n;
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hn >> (8 * i));
  const char *what = "write";
  int bad = write_all(fd, len8, 8) || write_all(fd, h.p, h.n);
  for (size_t esz = 8; esz >= 4; esz -= 4) /* the order build_header gave the offsets */
    for (int i = 0; i < n && !bad; i++)
      if (dtype_size[t[i].dtype] == esz) bad = write_all(fd, t[i].data, t[i].bytes);
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
  free(h.p);
  return bad ? CLCNN_ERR_INVALID_ARGUMENT : CLCNN_SUCCESS;
}

/* ---- a strict JSON parser (RFC 8259), into a tree ---- */

enum { J_NULL, J_BOOL, J_INT, J_FLOAT, J_STR, J_ARR, J_OBJ };
static const char *const jtype_name[] = {"null", "a boolean", "an integer",
                                         "a number with a fraction or exponent", "a string",
                                         "an array", "an object"};

typedef struct jmem jmem;
typedef struct jval {
  int type;
  int big;        /* J_INT: outside int64 */
  int64_t i;      /* J_INT */
  char *s;        /* J_STR: decoded, NUL-terminated, may hold NULs; owned */
  size_t len;     /* J_STR: bytes */
  struct jval *items; /* J_ARR */
  jmem *mem;      /* J_OBJ, in file order */
  size_t n;       /* J_ARR, J_OBJ */
} jval;
struct jmem {
  char *key; /* decoded, owned */
  size_t klen;
  jval v;
};

static void jfree(jval *v) {
  if (v->type == J_STR) free(v->s);
  if (v->type == J_ARR) {
    for (size_t i = 0; i < v->n; i++) jfree(&v->items[i]);
    free(v->items);
  }
  if (v->type == J_OBJ) {
    for (size_t i = 0; i < v->n; i++) {
      free(v->mem[i].key);
      jfree(&v->mem[i].v);
    }
    free(v->mem);
  }
  memset(v, 0, sizeof *v);
}

typedef struct {
  const unsigned char *p;
  size_t n, i;
  int depth, oom;
  char msg[256];
  size_t at;
} jparser;

static int jerr(jparser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jerr(jparser *ps, const char *fmt, ...) {
  if (!ps->msg[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->msg, sizeof ps->msg, fmt, ap);
    va_end(ap);
    ps->at = ps->i;
  }
  return -1;
}

static int jeof(jparser *ps) { return jerr(ps, "unexpected end of the header (truncated JSON?)"); }

static void jws(jparser *ps) {
  while (ps->i < ps->n && (ps->p[ps->i] == ' ' || ps->p[ps->i] == '\t' || ps->p[ps->i] == '\n' ||
                           ps->p[ps->i] == '\r'))
    ps->i++;
}

static int junexpected(jparser *ps, const char *expected) {
  if (ps->i >= ps->n) return jeof(ps);
  unsigned char c = ps->p[ps->i];
  if (c >= 0x20 && c < 0x7f)
    return jerr(ps, "expected %s, found '%c'", expected, c);
  return jerr(ps, "expected %s, found the byte 0x%02x", expected, c);
}

static int hex4(jparser *ps, unsigned *u) {
  *u = 0;
  for (int k = 0; k < 4; k++, ps->i++) {
    if (ps->i >= ps->n) return jeof(ps);
    unsigned char c = ps->p[ps->i];
    unsigned d = c >= '0' && c <= '9' ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
    if (d == 16) return jerr(ps, "\\u needs four hex digits");
    *u = *u << 4 | d;
  }
  return 0;
}

static void put_utf8(sbuf *b, uint32_t cp) {
  char u[4];
  size_t l;
  if (cp < 0x80) u[0] = (char)cp, l = 1;
  else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), l = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
    u[2] = (char)(0x80 | (cp & 0x3f)), l = 3;
  else
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
    u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), l = 4;
  sb_put(b, u, l);
}

/* At '"': the decoded string into *s, *len. */
static int jstring(jparser *ps, char **s, size_t *len) {
  sbuf b = {0};
  sb_put(&b, "", 0);
  ps->i++;
  for (;;) {
    size_t run = ps->i;
    while (ps->i < ps->n && ps->p[ps->i] >= 0x20 && ps->p[ps->i] < 0x80 && ps->p[ps->i] != '"' &&
           ps->p[ps->i] != '\\')
      ps->i++;
    sb_put(&b, (const char *)ps->p + run, ps->i - run);
    if (ps->i >= ps->n) {
      free(b.p);
      return jerr(ps, "unexpected end of the header inside a string (truncated JSON?)");
    }
    unsigned char c = ps->p[ps->i];
    if (c == '"') {
      ps->i++;
      break;
    }
    if (c < 0x20) {
      free(b.p);
      return jerr(ps, "control character 0x%02x in a string (it must be escaped)", c);
    }
    if (c >= 0x80) {
      size_t l = utf8_seq(ps->p + ps->i, ps->n - ps->i);
      if (!l) {
        free(b.p);
        return jerr(ps, "invalid UTF-8 in a string");
      }
      sb_put(&b, (const char *)ps->p + ps->i, l);
      ps->i += l;
      continue;
    }
    /* a backslash */
    if (++ps->i >= ps->n) {
      free(b.p);
      return jeof(ps);
    }
    c = ps->p[ps->i];
    const char *simple = strchr("\"\\/bfnrt", c);
    if (c && simple) {
      static const char out[] = "\"\\/\b\f\n\r\t";
      sb_put(&b, &out[simple - "\"\\/bfnrt"], 1);
      ps->i++;
      continue;
    }
    if (c != 'u') {
      free(b.p);
      return jerr(ps, c >= 0x20 && c < 0x7f ? "invalid escape \\%c in a string"
                                             : "invalid escape \\(0x%02x) in a string", c);
    }
    ps->i++;
    unsigned u, lo;
    if (hex4(ps, &u)) {
      free(b.p);
      return -1;
    }
    uint32_t cp = u;
    if (u >= 0xdc00 && u <= 0xdfff) {
      ps->i -= 6;
      free(b.p);
      return jerr(ps, "lone low surrogate \\u%04x in a string", u);
    }
    if (u >= 0xd800 && u <= 0xdbff) {
      if (ps->i + 1 >= ps->n || ps->p[ps->i] != '\\' || ps->p[ps->i + 1] != 'u') {
        ps->i -= 6;
        free(b.p);
        return jerr(ps, "lone high surrogate \\u%04x in a string", u);
      }
      ps->i += 2;
      if (hex4(ps, &lo)) {
        free(b.p);
        return -1;
      }
      if (lo < 0xdc00 || lo > 0xdfff) {
        ps->i -= 12;
        free(b.p);
        return jerr(ps, "high surrogate \\u%04x followed by \\u%04x, not a low surrogate", u, lo);
      }
      cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    }
    put_utf8(&b, cp);
  }
  if (b.oom) {
    free(b.p);
    ps->oom = 1;
    return jerr(ps, "out of memory");
  }
  *s = b.p;
  *len = b.n;
  return 0;
}

static int jnumber(jparser *ps, jval *v) {
  int neg = 0, frac = 0, big = 0;
  uint64_t mag = 0;
  if (ps->p[ps->i] == '-') neg = 1, ps->i++;
  const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (ps->i >= ps->n) return jeof(ps);
  if (ps->p[ps->i] == '0') {
    ps->i++;
    if (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9')
      return jerr(ps, "a number with a leading zero");
  } else if (ps->p[ps->i] >= '1' && ps->p[ps->i] <= '9') {
    while (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9') {
      unsigned d = ps->p[ps->i++] - '0';
      if (big || mag > (lim - d) / 10) big = 1;
      else mag = mag * 10 + d;
    }
  } else {
    return junexpected(ps, "a digit");
  }
  if (ps->i < ps->n && ps->p[ps->i] == '.') {
    ps->i++;
    if (ps->i >= ps->n || ps->p[ps->i] < '0' || ps->p[ps->i] > '9') return junexpected(ps, "a digit");
    while (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9') ps->i++;
    frac = 1;
  }
  if (ps->i < ps->n && (ps->p[ps->i] == 'e' || ps->p[ps->i] == 'E')) {
    ps->i++;
    if (ps->i < ps->n && (ps->p[ps->i] == '+' || ps->p[ps->i] == '-')) ps->i++;
    if (ps->i >= ps->n || ps->p[ps->i] < '0' || ps->p[ps->i] > '9') return junexpected(ps, "a digit");
    while (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9') ps->i++;
    frac = 1;
  }
  v->type = frac ? J_FLOAT : J_INT;
  v->big = big;
  v->i = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
  return 0;
}

static int jvalue(jparser *ps, jval *v);

static int cmp_mem(const void *a, const void *b) {
  const jmem *x = *(const jmem *const *)a, *y = *(const jmem *const *)b;
  size_t l = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->key, y->key, l);
  return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static int jcontainer(jparser *ps, jval *v, int obj) {
  size_t cap = 0;
  char close = obj ? '}' : ']';
  v->type = obj ? J_OBJ : J_ARR;
  if (++ps->depth > ST_MAX_DEPTH) return jerr(ps, "nesting deeper than %d levels", ST_MAX_DEPTH);
  ps->i++;
  jws(ps);
  if (ps->i < ps->n && ps->p[ps->i] == close) {
    ps->i++;
    ps->depth--;
    return 0;
  }
  for (;;) {
    jmem m = {0};
    jws(ps);
    if (obj) {
      if (ps->i >= ps->n || ps->p[ps->i] != '"') return junexpected(ps, "a string key");
      if (jstring(ps, &m.key, &m.klen)) return -1;
      jws(ps);
      if (ps->i >= ps->n || ps->p[ps->i] != ':') {
        free(m.key);
        return junexpected(ps, "':' after a key");
      }
      ps->i++;
    }
    if (jvalue(ps, &m.v)) {
      free(m.key);
      jfree(&m.v);
      return -1;
    }
    if (v->n == cap) {
      size_t nc = cap ? cap * 2 : 8;
      void *q = obj ? realloc(v->mem, nc * sizeof *v->mem) : realloc(v->items, nc * sizeof *v->items);
      if (!q) {
        free(m.key);
        jfree(&m.v);
        ps->oom = 1;
        return jerr(ps, "out of memory");
      }
      if (obj) v->mem = q;
      else v->items = q;
      cap = nc;
    }
    if (obj) v->mem[v->n++] = m;
    else v->items[v->n++] = m.v;
    jws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == ',') {
      ps->i++;
      continue;
    }
    if (ps->i < ps->n && ps->p[ps->i] == close) {
      ps->i++;
      break;
    }
    return junexpected(ps, obj ? "',' or '}'" : "',' or ']'");
  }
  ps->depth--;
  if (obj && v->n > 1) { /* duplicate keys: sort pointers, compare neighbours */
    const jmem **s = malloc(v->n * sizeof *s);
    if (!s) {
      ps->oom = 1;
      return jerr(ps, "out of memory");
    }
    for (size_t k = 0; k < v->n; k++) s[k] = &v->mem[k];
    qsort(s, v->n, sizeof *s, cmp_mem);
    for (size_t k = 1; k < v->n; k++)
      if (cmp_mem(&s[k - 1], &s[k]) == 0) {
        char q[256];
        ps->i--; /* at the closing brace */
        jerr(ps, "duplicate key '%s' in an object", PRINTABLE(q, s[k]->key, s[k]->klen));
        free(s);
        return -1;
      }
    free(s);
  }
  return 0;
}

static int jliteral(jparser *ps, const char *word) {
  size_t l = strlen(word);
  for (size_t k = 0; k < l; k++) {
    if (ps->i + k >= ps->n) return jeof(ps);
    if (ps->p[ps->i + k] != (unsigned char)word[k]) return junexpected(ps, "a JSON value");
  }
  ps->i += l;
  return 0;
}

static int jvalue(jparser *ps, jval *v) {
  jws(ps);
  if (ps->i >= ps->n) return jeof(ps);
  unsigned char c = ps->p[ps->i];
  switch (c) {
  case '{': return jcontainer(ps, v, 1);
  case '[': return jcontainer(ps, v, 0);
  case '"':
    v->type = J_STR;
    return jstring(ps, &v->s, &v->len);
  case 't': v->type = J_BOOL; return jliteral(ps, "true");
  case 'f': v->type = J_BOOL; return jliteral(ps, "false");
  case 'n': v->type = J_NULL; return jliteral(ps, "null");
  default:
    if (c == '-' || (c >= '0' && c <= '9')) return jnumber(ps, v);
    return junexpected(ps, "a JSON value");
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

static int jmem_is(const jmem *m, const char *key) {
  return m->klen == strlen(key) && memcmp(m->key, key, m->klen) == 0;
}

static const jval *jget(const jval *obj, const char *key) {
  for (size_t k = 0; k < obj->n; k++)
    if (jmem_is(&obj->mem[k], key)) return &obj->mem[k].v;
  return NULL;
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

/* The tensor described by m (value already known to be an object) into *t, its offsets
 * into *sp. data_size: bytes after the header. */
static clcnn_status tensor_entry(const char *path, const jmem *m, uint64_t data_size,
                                 clcnn_st_tensor *t, span *sp, char *err, size_t es) {
  char q[256], sh[256];
  const char *nm = PRINTABLE(q, m->key, m->klen);
  if (m->klen == 0)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: a tensor has an empty name", path);
  if (memchr(m->key, 0, m->klen))
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the name holds a NUL character", path, nm);
  if (m->klen >= (size_t)ST_NAME_MAX)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': the name is %zu bytes long, clcnn keeps at most %d", path, nm,
                m->klen, ST_NAME_MAX - 1);
  memcpy(t->name, m->key, m->klen);
  t->name[m->klen] = 0;
  if (m->v.type != J_OBJ)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the entry is %s, not an object",
                path, nm, jtype_name[m->v.type]);

  const jval *dt = jget(&m->v, "dtype"), *shape = jget(&m->v, "shape"),
             *off = jget(&m->v, "data_offsets");
  if (!dt || !shape || !off)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': the entry has no \"%s\"", path,
                nm, !dt ? "dtype" : !shape ? "shape" : "data_offsets");
  if (dt->type != J_STR)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': dtype is %s, not a string",
                path, nm, jtype_name[dt->type]);
  int d = -1;
  for (int k = 0; k < 3; k++)
    if (dt->len == strlen(dtype_name[k]) && memcmp(dt->s, dtype_name[k], dt->len) == 0) d = k;
  if (d < 0) {
    char qd[256];
    const char *dn = PRINTABLE(qd, dt->s, dt->len);
    for (size_t k = 0; k < sizeof dtype_other / sizeof *dtype_other; k++)
      if (dt->len == strlen(dtype_other[k]) && memcmp(dt->s, dtype_other[k], dt->len) == 0)
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: tensor '%s': dtype %s is not supported (clcnn reads F32, F64 and I64)",
                    path, nm, dn);
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': unknown dtype '%s'", path, nm, dn);
  }
  t->dtype = (clcnn_st_dtype)d;

  if (shape->type != J_ARR)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': shape is %s, not an array",
                path, nm, jtype_name[shape->type]);
  if (shape->n > ST_MAX_DIMS)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': shape has %zu dimensions, clcnn keeps at most %d", path, nm,
                shape->n, ST_MAX_DIMS);
  t->ndim = (int)shape->n;
  uint64_t count = 1;
  int big = 0, zero = 0;
  for (size_t k = 0; k < shape->n; k++) {
    const jval *x = &shape->items[k];
    if (x->type != J_INT || x->big || x->i < 0)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                  "%s: tensor '%s': shape dimension %zu is not a non-negative integer (it is %s)",
                  path, nm, k,
                  x->type == J_INT ? (x->big ? "beyond int64" : "negative") : jtype_name[x->type]);
    t->dims[k] = x->i;
    if (x->i == 0) zero = 1;
    else if (count > UINT64_MAX / (uint64_t)x->i) big = 1;
    else count *= (uint64_t)x->i;
  }
  if (zero) count = 0, big = 0;
  uint64_t esz = dtype_size[d];
  shape_str(sh, sizeof sh, t->ndim, t->dims);
  if (big || count > UINT64_MAX / esz)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: tensor '%s': shape %s is too large", path,
                nm, sh);
  uint64_t need = count * esz;

  if (off->type != J_ARR || off->n != 2 || off->items[0].type != J_INT ||
      off->items[1].type != J_INT || off->items[0].big || off->items[1].big ||
      off->items[0].i < 0 || off->items[1].i < off->items[0].i)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", path,
                nm);
  uint64_t b = (uint64_t)off->items[0].i, e = (uint64_t)off->items[1].i;
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
static clcnn_status from_header(const char *path, jval *top, clcnn_safetensors *f,
                                uint64_t data_size, span **spans_out, char *err, size_t es) {
  char q[256], q2[256];
  if (top->type != J_OBJ)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: the header is %s, not a JSON object",
                path, jtype_name[top->type]);
  size_t nt = 0;
  const jval *meta = NULL;
  for (size_t k = 0; k < top->n; k++) {
    if (jmem_is(&top->mem[k], "__metadata__")) meta = &top->mem[k].v;
    else nt++;
  }
  if (nt > INT_MAX / 2)
    return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: %zu tensors are too many", path, nt);

  if (meta && meta->type != J_NULL) {
    if (meta->type != J_OBJ)
      return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT, "%s: __metadata__ is %s, not an object",
                  path, jtype_name[meta->type]);
    f->meta_key = calloc(meta->n ? meta->n : 1, sizeof *f->meta_key);
    f->meta_val = calloc(meta->n ? meta->n : 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val)
      return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (size_t k = 0; k < meta->n; k++) {
      jmem *m = &meta->mem[k];
      const char *key = PRINTABLE(q, m->key, m->klen);
      if (m->v.type != J_STR)
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: __metadata__ '%s' is %s, not a string", path, key, jtype_name[m->v.type]);
      if (memchr(m->key, 0, m->klen) || memchr(m->v.s, 0, m->v.len))
        return fail(err, es, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: __metadata__ '%s' holds a NUL character", path, key);
      /* the strings move from the tree to f */
      f->meta_key[f->nmeta] = m->key;
      f->meta_val[f->nmeta++] = m->v.s;
      m->key = NULL;
      m->v.s = NULL;
      m->v.type = J_NULL;
    }
  }

  f->t = calloc(nt ? nt : 1, sizeof *f->t);
  span *sp = calloc(nt ? nt : 1, sizeof *sp);
  *spans_out = sp;
  if (!f->t || !sp) return fail(err, es, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  for (size_t k = 0; k < top->n; k++) {
    const jmem *m = &top->mem[k];
    if (jmem_is(m, "__metadata__")) continue;
    clcnn_status st = tensor_entry(path, m, data_size, &f->t[f->n], &sp[f->n], err, es);
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

  jparser ps = {.p = raw + 8, .n = (size_t)hn};
  jval top = {0};
  if (jvalue(&ps, &top) == 0) {
    jws(&ps);
    if (ps.i < ps.n) jerr(&ps, "trailing characters after the JSON value");
  }
  if (ps.msg[0]) {
    jfree(&top);
    free(raw);
    if (ps.oom) return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory parsing the header", path);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: the header is not valid JSON: %s at byte %zu of the header", path, ps.msg,
                ps.at);
  }

  clcnn_safetensors *f = calloc(1, sizeof *f);
  span *sp = NULL;
  if (!f) {
    jfree(&top);
    free(raw);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  f->raw = raw;
  size_t data_at = 8 + (size_t)hn, data_size = size - data_at;
  st = from_header(path, &top, f, data_size, &sp, err, err_size);
  jfree(&top);
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
