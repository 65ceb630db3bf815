/* tools/clcnn-devices.c - list the OpenCL platforms and devices (clinfo style), and check
 * that clcnn builds its kernels and computes correct gradients on them; --prebuild fills
 * clcnn's disk cache of built programs.
 *
 * Listing uses OpenCL directly; --check and --prebuild use only the public clcnn API. One table of device
 * queries (device_rows) drives both the text and the JSON printers.
 *
 * Exit status: 0 success; 1 no OpenCL platform, an OpenCL error, or a failed check or build;
 * 2 a usage error or a device index that does not exist. */
#include <CL/cl.h>
#include <CL/cl_ext.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clcnn.h"
#include "size.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

static const char *prog = "clcnn-devices";

/* ---- small helpers -------------------------------------------------------------------- */

/* A malloc'd printf; NULL when out of memory. */
static char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

static void die_oom(void) {
  fprintf(stderr, "%s: out of memory\n", prog);
  exit(1);
}

/* Strip leading and trailing white space in place (drivers pad names); returns s. */
static char *trim(char *s) {
  char *b = s;
  while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
  size_t n = strlen(b);
  while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\n' || b[n - 1] == '\r'))
    n--;
  memmove(s, b, n);
  s[n] = '\0';
  return s;
}

/* "CL_INVALID_VALUE (-30)" into buf. */
static const char *cl_err(cl_int err, char *buf, size_t size) {
  snprintf(buf, size, "%s (%d)", clcnn_status_name(err), (int)err);
  return buf;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A string query on a platform (is_platform) or a device, malloc'd, NUL-terminated and
 * trimmed into *out. */
static cl_int info_string(int is_platform, void *obj, cl_uint param, char **out) {
  size_t size = 0;
  cl_int err;
  *out = NULL;
  if (is_platform)
    err = clGetPlatformInfo((cl_platform_id)obj, param, 0, NULL, &size);
  else
    err = clGetDeviceInfo((cl_device_id)obj, param, 0, NULL, &size);
  if (err != CL_SUCCESS) return err;
  char *s = malloc(size + 1);
  if (!s) die_oom();
  if (is_platform)
    err = clGetPlatformInfo((cl_platform_id)obj, param, size, s, NULL);
  else
    err = clGetDeviceInfo((cl_device_id)obj, param, size, s, NULL);
  if (err != CL_SUCCESS) {
    free(s);
    return err;
  }
  s[size] = '\0';
  *out = trim(s);
  return CL_SUCCESS;
}

/* Does the space-separated list exts hold exactly the token name? */
static int has_token(const char *exts, const char *name) {
  size_t n = strlen(name);
  for (const char *p = exts; (p = strstr(p, name)) != NULL; p += n) {
    int start = p == exts || p[-1] == ' ';
    int end = p[n] == '\0' || p[n] == ' ';
    if (start && end) return 1;
  }
  return 0;
}

/* ---- the device table ------------------------------------------------------------------ */

enum kind {
  K_STRING, /* char[] */
  K_UINT,   /* cl_uint; extra: a unit */
  K_ULONG,  /* cl_ulong; extra: a unit */
  K_SIZE,   /* size_t */
  K_BYTES,  /* cl_ulong byte count: "31.2 GiB" in text, the number in JSON */
  K_TYPE,   /* cl_device_type */
  K_EXT     /* bool: extra (an extension) is in CL_DEVICE_EXTENSIONS, or param (a
               cl_device_fp_config query, 0 for none) is non-zero */
};

struct row {
  const char *label; /* text */
  const char *key;   /* JSON */
  cl_device_info param;
  enum kind kind;
  const char *extra;
};

static const struct row device_rows[] = {
    {"Name", "name", CL_DEVICE_NAME, K_STRING, NULL},
    {"Type", "type", CL_DEVICE_TYPE, K_TYPE, NULL},
    {"Vendor", "vendor", CL_DEVICE_VENDOR, K_STRING, NULL},
    {"Device version", "version", CL_DEVICE_VERSION, K_STRING, NULL},
    {"Driver version", "driver_version", CL_DRIVER_VERSION, K_STRING, NULL},
    {"OpenCL C version", "opencl_c_version", CL_DEVICE_OPENCL_C_VERSION, K_STRING, NULL},
    {"Compute units", "compute_units", CL_DEVICE_MAX_COMPUTE_UNITS, K_UINT, NULL},
    {"Max clock", "max_clock_mhz", CL_DEVICE_MAX_CLOCK_FREQUENCY, K_UINT, "MHz"},
    {"Global memory", "global_mem_bytes", CL_DEVICE_GLOBAL_MEM_SIZE, K_BYTES, NULL},
    {"Max allocation", "max_alloc_bytes", CL_DEVICE_MAX_MEM_ALLOC_SIZE, K_BYTES, NULL},
    {"Local memory", "local_mem_bytes", CL_DEVICE_LOCAL_MEM_SIZE, K_BYTES, NULL},
    {"Max work-group size", "max_work_group_size", CL_DEVICE_MAX_WORK_GROUP_SIZE, K_SIZE, NULL},
    {"Double precision (fp64)", "fp64", CL_DEVICE_DOUBLE_FP_CONFIG, K_EXT, "cl_khr_fp64"},
    {"Half precision (fp16)", "fp16", 0, K_EXT, "cl_khr_fp16"},
};
#define N_ROWS (sizeof device_rows / sizeof device_rows[0])

static const struct row *find_row(const char *key) {
  for (size_t i = 0; i < N_ROWS; i++)
    if (!strcmp(device_rows[i].key, key)) return &device_rows[i];
  abort(); /* a key missing from the table is a bug here */
}

struct value {
  cl_int err; /* CL_SUCCESS or why the query failed */
  char *str;  /* K_STRING, malloc'd */
  cl_ulong u; /* numbers, K_TYPE, K_EXT (0 / 1) */
};

static void query(cl_device_id dev, const struct row *r, struct value *v) {
  v->str = NULL;
  v->u = 0;
  v->err = CL_SUCCESS;
  switch (r->kind) {
  case K_STRING:
    v->err = info_string(0, dev, r->param, &v->str);
    break;
  case K_UINT: {
    cl_uint x = 0;
    v->err = clGetDeviceInfo(dev, r->param, sizeof x, &x, NULL);
    v->u = x;
    break;
  }
  case K_SIZE: {
    size_t x = 0;
    v->err = clGetDeviceInfo(dev, r->param, sizeof x, &x, NULL);
    v->u = x;
    break;
  }
  case K_ULONG:
  case K_BYTES: {
    cl_ulong x = 0;
    v->err = clGetDeviceInfo(dev, r->param, sizeof x, &x, NULL);
    v->u = x;
    break;
  }
  case K_TYPE: {
    cl_device_type x = 0;
    v->err = clGetDeviceInfo(dev, r->param, sizeof x, &x, NULL);
    v->u = x;
    break;
  }
  case K_EXT: {
    char *exts = NULL;
    cl_int e1 = info_string(0, dev, CL_DEVICE_EXTENSIONS, &exts);
    if (e1 == CL_SUCCESS && has_token(exts, r->extra)) v->u = 1;
    free(exts);
    cl_int e2 = CL_SUCCESS;
    if (!v->u && r->param) {
      cl_device_fp_config fp = 0;
      /* an OpenCL 1.0 driver may not know the query: that only means "no" */
      e2 = clGetDeviceInfo(dev, r->param, sizeof fp, &fp, NULL);
      if (e2 == CL_SUCCESS && fp != 0) v->u = 1;
    }
    if (e1 != CL_SUCCESS && (!r->param || e2 != CL_SUCCESS)) v->err = e1;
    break;
  }
  }
}

static const char *type_name(cl_ulong t, char *buf, size_t size) {
  static const struct {
    cl_device_type bit;
    const char *name;
  } types[] = {{CL_DEVICE_TYPE_CPU, "CPU"},
               {CL_DEVICE_TYPE_GPU, "GPU"},
               {CL_DEVICE_TYPE_ACCELERATOR, "ACCELERATOR"},
               {CL_DEVICE_TYPE_CUSTOM, "CUSTOM"},
               {CL_DEVICE_TYPE_DEFAULT, "DEFAULT"}};
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (!(t & types[i].bit)) continue;
    t &= ~types[i].bit;
    int n = snprintf(buf + len, size - len, "%s%s", len ? "|" : "", types[i].name);
    if (n < 0 || (size_t)n >= size - len) return buf;
    len += (size_t)n;
  }
  if (t || !len) snprintf(buf + len, size - len, "%s0x%llx", len ? "|" : "", (unsigned long long)t);
  return buf;
}

/* 31.2 GiB, 64 KiB, 512 B */
static const char *human_bytes(cl_ulong b, char *buf, size_t size) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    u++;
  }
  if (u == 0 || v == floor(v))
    snprintf(buf, size, "%.0f %s", v, units[u]);
  else
    snprintf(buf, size, "%.1f %s", v, units[u]);
  return buf;
}

/* ---- platforms and devices ------------------------------------------------------------- */

struct plat {
  cl_platform_id id;
  cl_device_id *dev;
  cl_uint ndev;
  cl_int err; /* of clGetDeviceIDs; CL_DEVICE_NOT_FOUND is 0 devices, not an error */
};

struct cl_list {
  struct plat *p;
  cl_uint np;
};

static void list_free(struct cl_list *l) {
  for (cl_uint i = 0; i < l->np; i++) free(l->p[i].dev);
  free(l->p);
  l->p = NULL;
  l->np = 0;
}

/* All platforms and their devices. No platform is np = 0 and CL_SUCCESS. */
static cl_int list_load(struct cl_list *l) {
  cl_uint np = 0;
  l->p = NULL;
  l->np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && np == 0)) return CL_SUCCESS;
  if (err != CL_SUCCESS) return err;
  cl_platform_id *ids = malloc(np * sizeof *ids);
  l->p = calloc(np, sizeof *l->p);
  if (!ids || !l->p) die_oom();
  err = clGetPlatformIDs(np, ids, NULL);
  if (err != CL_SUCCESS) {
    free(ids);
    free(l->p);
    l->p = NULL;
    return err;
  }
  l->np = np;
  for (cl_uint i = 0; i < np; i++) {
    struct plat *p = &l->p[i];
    cl_uint nd = 0;
    p->id = ids[i];
    p->err = clGetDeviceIDs(p->id, CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
    if (p->err == CL_DEVICE_NOT_FOUND || (p->err == CL_SUCCESS && nd == 0)) {
      p->err = CL_SUCCESS;
      continue;
    }
    if (p->err != CL_SUCCESS) continue;
    p->dev = malloc(nd * sizeof *p->dev);
    if (!p->dev) die_oom();
    p->err = clGetDeviceIDs(p->id, CL_DEVICE_TYPE_ALL, nd, p->dev, NULL);
    if (p->err != CL_SUCCESS) {
      free(p->dev);
      p->dev = NULL;
      continue;
    }
    p->ndev = nd;
  }
  free(ids);
  return CL_SUCCESS;
}

/* A -d selection: plat < 0 means every device. */
struct sel {
  long plat, dev;
};

static int selected(const struct sel *s, cl_uint p, cl_uint d) {
  return s->plat < 0 || ((cl_uint)s->plat == p && (d == (cl_uint)-1 || (cl_uint)s->dev == d));
}

/* ---- text ------------------------------------------------------------------------------ */

static const char *platform_rows[][2] = {
    {"Vendor", "vendor"}, {"Version", "version"}, {"Profile", "profile"}};
static const cl_platform_info platform_params[] = {CL_PLATFORM_VENDOR, CL_PLATFORM_VERSION,
                                                   CL_PLATFORM_PROFILE};
#define N_PLATFORM_ROWS (sizeof platform_params / sizeof platform_params[0])

/* The width of the platform labels; device labels, indented 2 more, get 2 less. */
static int label_width(void) {
  size_t w = strlen("Number of devices");
  for (size_t i = 0; i < N_PLATFORM_ROWS; i++)
    if (strlen(platform_rows[i][0]) > w) w = strlen(platform_rows[i][0]);
  for (size_t i = 0; i < N_ROWS; i++)
    if (strlen(device_rows[i].label) + 2 > w) w = strlen(device_rows[i].label) + 2;
  return (int)w;
}

static void text_value(const struct row *r, const struct value *v) {
  char buf[128];
  if (v->err != CL_SUCCESS) {
    printf("(error: %s)\n", cl_err(v->err, buf, sizeof buf));
    return;
  }
  switch (r->kind) {
  case K_STRING:
    printf("%s\n", v->str);
    break;
  case K_UINT:
  case K_ULONG:
  case K_SIZE:
    printf("%llu%s%s\n", (unsigned long long)v->u, r->extra ? " " : "", r->extra ? r->extra : "");
    break;
  case K_BYTES:
    printf("%s\n", human_bytes(v->u, buf, sizeof buf));
    break;
  case K_TYPE:
    printf("%s\n", type_name(v->u, buf, sizeof buf));
    break;
  case K_EXT:
    printf("%s\n", v->u ? "yes" : "no");
    break;
  }
}

static int print_text(const struct cl_list *l, const struct sel *s) {
  int w = label_width(), rc = 0;
  char buf[128];
  if (s->plat < 0) printf("%u platform%s\n", (unsigned)l->np, l->np == 1 ? "" : "s");
  for (cl_uint pi = 0; pi < l->np; pi++) {
    const struct plat *p = &l->p[pi];
    if (!selected(s, pi, (cl_uint)-1)) continue;
    char *name = NULL;
    cl_int err = info_string(1, p->id, CL_PLATFORM_NAME, &name);
    printf("\nPlatform #%u: %s\n", (unsigned)pi, err == CL_SUCCESS ? name : "(unknown name)");
    free(name);
    for (size_t i = 0; i < N_PLATFORM_ROWS; i++) {
      char *v = NULL;
      err = info_string(1, p->id, platform_params[i], &v);
      printf("  %-*s  ", w, platform_rows[i][0]);
      if (err == CL_SUCCESS)
        printf("%s\n", v);
      else
        printf("(error: %s)\n", cl_err(err, buf, sizeof buf));
      free(v);
    }
    if (p->err != CL_SUCCESS) {
      printf("  %-*s  (error: clGetDeviceIDs: %s)\n", w, "Number of devices",
             cl_err(p->err, buf, sizeof buf));
      rc = 1;
      continue;
    }
    printf("  %-*s  %u\n", w, "Number of devices", (unsigned)p->ndev);
    for (cl_uint di = 0; di < p->ndev; di++) {
      if (!selected(s, pi, di)) continue;
      printf("\n  Device %u:%u\n", (unsigned)pi, (unsigned)di);
      for (size_t i = 0; i < N_ROWS; i++) {
        struct value v;
        query(p->dev[di], &device_rows[i], &v);
        printf("    %-*s  ", w - 2, device_rows[i].label);
        text_value(&device_rows[i], &v);
        free(v.str);
      }
    }
  }
  return rc;
}

static int print_short(const struct cl_list *l, const struct sel *s) {
  int rc = 0;
  char buf[128];
  for (cl_uint pi = 0; pi < l->np; pi++) {
    const struct plat *p = &l->p[pi];
    if (!selected(s, pi, (cl_uint)-1)) continue;
    char *name = NULL;
    cl_int err = info_string(1, p->id, CL_PLATFORM_NAME, &name);
    printf("Platform #%u: %s\n", (unsigned)pi, err == CL_SUCCESS ? name : "(unknown name)");
    free(name);
    if (p->err != CL_SUCCESS) {
      printf(" `-- (error: clGetDeviceIDs: %s)\n", cl_err(p->err, buf, sizeof buf));
      rc = 1;
      continue;
    }
    /* the last device shown gets "`--", the others "+--", as in clinfo -l */
    cl_uint last = p->ndev;
    for (cl_uint di = 0; di < p->ndev; di++)
      if (selected(s, pi, di)) last = di;
    for (cl_uint di = 0; di < p->ndev; di++) {
      if (!selected(s, pi, di)) continue;
      char *dname = NULL;
      cl_device_type t = 0;
      err = info_string(0, p->dev[di], CL_DEVICE_NAME, &dname);
      cl_int terr = clGetDeviceInfo(p->dev[di], CL_DEVICE_TYPE, sizeof t, &t, NULL);
      printf(" %s-- Device %u:%u: %s [%s]\n", di == last ? "`" : "+", (unsigned)pi,
             (unsigned)di, err == CL_SUCCESS ? dname : "(unknown name)",
             terr == CL_SUCCESS ? type_name(t, buf, sizeof buf) : "?");
      free(dname);
    }
  }
  return rc;
}

/* ---- JSON ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s, 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s) {
  size_t n;
  unsigned cp;
  if (s[0] < 0x80) return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf) n = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef) n = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4) n = 4, cp = s[0] & 0x07;
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

/* STR as a JSON string; bytes that are not UTF-8 become U+FFFD (jansson takes only UTF-8). */
static json_t *json_text(const char *str) {
  size_t n = strlen(str);
  char *clean = malloc(3 * n + 1), *o = clean;
  if (!clean) return NULL;
  for (const unsigned char *s = (const unsigned char *)str; *s;) {
    size_t k = utf8_len(s);
    if (k == 0) memcpy(o, "\xef\xbf\xbd", 3), o += 3, s++;
    else memcpy(o, s, k), o += k, s += k;
  }
  json_t *j = json_stringn(clean, (size_t)(o - clean));
  free(clean);
  return j;
}

static json_t *json_value(const struct row *r, const struct value *v) {
  char buf[128];
  if (v->err != CL_SUCCESS) return json_null();
  switch (r->kind) {
  case K_STRING: return json_text(v->str);
  case K_UINT:
  case K_ULONG:
  case K_SIZE:
  case K_BYTES: /* jansson's integers are int64: a larger count (none is real) becomes a double */
    return v->u <= INT64_MAX ? json_integer((json_int_t)v->u) : json_real((double)v->u);
  case K_TYPE: return json_text(type_name(v->u, buf, sizeof buf));
  case K_EXT: return json_boolean(v->u);
  }
  return json_null();
}

/* obj[key] = v; v is taken (freed when it cannot be set, also when obj is NULL) and *oom set
 * when anything failed. */
static void json_put(json_t *obj, const char *key, json_t *v, int *oom) {
  if (json_object_set_new(obj, key, v)) *oom = 1;
}

/* {"platforms": PLATFORMS} on stdout, two spaces a level; PLATFORMS is taken. */
static int print_platforms(json_t *platforms, int oom) {
  json_t *root = json_object();
  json_put(root, "platforms", platforms, &oom);
  int bad = oom || json_dumpf(root, stdout, JSON_INDENT(2)) != 0;
  if (!bad) putchar('\n');
  else fprintf(stderr, "%s: cannot %s the JSON\n", prog, oom ? "build (out of memory)" : "write");
  json_decref(root);
  return bad;
}

static int print_json(const struct cl_list *l, const struct sel *s) {
  int rc = 0, oom = 0;
  char buf[128];
  json_t *plats = json_array();
  for (cl_uint pi = 0; pi < l->np && plats && !oom; pi++) {
    const struct plat *p = &l->p[pi];
    if (!selected(s, pi, (cl_uint)-1)) continue;
    json_t *jp = json_object();
    if (json_array_append_new(plats, jp)) { /* frees jp */
      oom = 1;
      break;
    }
    json_put(jp, "index", json_integer(pi), &oom);
    static const cl_platform_info pparams[] = {CL_PLATFORM_NAME, CL_PLATFORM_VENDOR,
                                               CL_PLATFORM_VERSION, CL_PLATFORM_PROFILE};
    static const char *pkeys[] = {"name", "vendor", "version", "profile"};
    for (size_t i = 0; i < sizeof pparams / sizeof pparams[0]; i++) {
      char *v = NULL;
      cl_int err = info_string(1, p->id, pparams[i], &v);
      json_put(jp, pkeys[i], err == CL_SUCCESS ? json_text(v) : json_null(), &oom);
      free(v);
    }
    if (p->err != CL_SUCCESS) {
      json_put(jp, "error", json_text(cl_err(p->err, buf, sizeof buf)), &oom);
      rc = 1;
    }
    json_t *devs = json_array();
    json_put(jp, "devices", devs, &oom);
    for (cl_uint di = 0; di < p->ndev && !oom; di++) {
      if (!selected(s, pi, di)) continue;
      json_t *jd = json_object();
      if (json_array_append_new(devs, jd)) {
        oom = 1;
        break;
      }
      snprintf(buf, sizeof buf, "%u:%u", (unsigned)pi, (unsigned)di);
      json_put(jd, "index", json_string(buf), &oom);
      for (size_t i = 0; i < N_ROWS; i++) {
        struct value v;
        query(p->dev[di], &device_rows[i], &v);
        json_put(jd, device_rows[i].key, json_value(&device_rows[i], &v), &oom);
        free(v.str);
      }
    }
  }
  return print_platforms(plats, oom || !plats) ? 1 : rc;
}

/* ---- --check: build every kernel and check gradients through the public API ------------ */

struct check {
  clcnn_ctx *ctx;
  clcnn_net *net;
  int single;   /* float rather than double */
  char *why;    /* the first failure, malloc'd */
  double max_rel;
};

static void check_fail(struct check *c, const char *fmt, ...) {
  if (c->why) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  c->why = malloc((size_t)n + 1);
  if (!c->why) die_oom();
  va_start(ap, fmt);
  vsnprintf(c->why, (size_t)n + 1, fmt, ap);
  va_end(ap);
}

/* Record a failed clcnn call with the context's story; returns non-zero when st failed. */
static int check_st(struct check *c, clcnn_status st, const char *what) {
  if (st == CLCNN_SUCCESS) return 0;
  const char *last = c->ctx ? clcnn_ctx_last_error(c->ctx) : "";
  check_fail(c, "%s: %s (%d)%s%s", what, clcnn_status_name(st), st, *last ? ": " : "", last);
  return 1;
}

static double get_el(const void *b, size_t i, int single) {
  return single ? (double)((const float *)b)[i] : ((const double *)b)[i];
}

static void set_el(void *b, size_t i, int single, double v) {
  if (single)
    ((float *)b)[i] = (float)v;
  else
    ((double *)b)[i] = v;
}

/* splitmix64: a small generator, so the check is the same everywhere. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) { /* [-1, 1) */
  return (double)(rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

enum { GC_N = 2, GC_C = 2, GC_H = 7, GC_W = 6, GC_CLASSES = 4 };

/* The loss of a forward and backward pass on x. */
static int loss_at(struct check *c, const void *x, const int32_t *labels, double *loss) {
  return check_st(c, clcnn_net_forward(c->net, x, GC_N), "clcnn_net_forward") ||
         check_st(c, clcnn_net_backward(c->net, labels), "clcnn_net_backward") ||
         check_st(c, clcnn_net_loss(c->net, loss), "clcnn_net_loss");
}

/* Compare the analytic derivative a of the loss with respect to the element el of buf
 * against central differences. put() makes the change seen by the net (a no-op for the
 * input, a clcnn_net_param_write for parameters). Float retries with a smaller step, since
 * a step of 1e-2 can cross a ReLU or max-pool kink. */
static int fd_check(struct check *c, void *x, const int32_t *labels, void *buf, size_t el,
                    int param, double a, const char *what) {
  const int single = c->single;
  const double tol = single ? 5e-2 : 1e-6;
  const double floor_ = 1e-2; /* |a - n| <= tol * floor_ always passes */
  double h = single ? 1e-2 : 1e-6, rel = 0, num = 0;
  const double orig = get_el(buf, el, single);
  int tries = single ? 3 : 1;
  for (int t = 0; t < tries; t++, h /= 4) {
    double lp, lm;
    set_el(buf, el, single, orig + h);
    double xp = get_el(buf, el, single); /* the values actually stored */
    if (param >= 0 && check_st(c, clcnn_net_param_write(c->net, param, buf), "clcnn_net_param_write"))
      return 1;
    if (loss_at(c, x, labels, &lp)) return 1;
    set_el(buf, el, single, orig - h);
    double xm = get_el(buf, el, single);
    if (param >= 0 && check_st(c, clcnn_net_param_write(c->net, param, buf), "clcnn_net_param_write"))
      return 1;
    if (loss_at(c, x, labels, &lm)) return 1;
    set_el(buf, el, single, orig);
    if (param >= 0 && check_st(c, clcnn_net_param_write(c->net, param, buf), "clcnn_net_param_write"))
      return 1;
    num = (lp - lm) / (xp - xm);
    rel = fabs(a - num) / fmax(fmax(fabs(a), fabs(num)), floor_);
    if (rel <= tol) break;
  }
  if (!(rel <= tol)) { /* also catches NaN */
    check_fail(c, "gradcheck: %s: analytic %.9g, finite differences %.9g (rel err %.2g > %.0e)",
               what, a, num, rel, tol);
    return 1;
  }
  if (rel > c->max_rel) c->max_rel = rel;
  return 0;
}

static int gradcheck(struct check *c) {
  int rc = 1;
  void *x = NULL, *dx = NULL, *pbuf = NULL;
  void *grads[4] = {NULL, NULL, NULL, NULL};
  clcnn_param_info info[4];
  int32_t labels[GC_N];
  uint64_t rng = 1;
  const int single = c->single;
  const size_t es = clcnn_ctx_elem_size(c->ctx);
  if (es != (single ? sizeof(float) : sizeof(double))) {
    check_fail(c, "clcnn_ctx_elem_size is %zu for %s", es, single ? "float" : "double");
    return 1;
  }

  clcnn_conv2d_params conv = {0};
  conv.out_channels = 3;
  conv.kh = conv.kw = 3;
  conv.stride_h = conv.stride_w = 1;
  conv.pad_h = conv.pad_w = 1;
  conv.bias = 1;
  clcnn_pool2d_params pool = {0};
  pool.kh = pool.kw = 2;
  pool.stride_h = pool.stride_w = 2;
  if (check_st(c, clcnn_net_create(c->ctx, GC_N, GC_C, GC_H, GC_W, &c->net), "clcnn_net_create") ||
      check_st(c, clcnn_net_add_conv2d(c->net, &conv), "clcnn_net_add_conv2d") ||
      check_st(c, clcnn_net_add_relu(c->net), "clcnn_net_add_relu") ||
      check_st(c, clcnn_net_add_maxpool2d(c->net, &pool), "clcnn_net_add_maxpool2d") ||
      check_st(c, clcnn_net_add_flatten(c->net), "clcnn_net_add_flatten") ||
      check_st(c, clcnn_net_add_linear(c->net, GC_CLASSES, 1), "clcnn_net_add_linear") ||
      check_st(c, clcnn_net_init_params(c->net, 1), "clcnn_net_init_params"))
    return 1;
  const size_t in = clcnn_net_input_size(c->net), nx = GC_N * in;
  if (in != GC_C * GC_H * GC_W || clcnn_net_output_size(c->net) != GC_CLASSES) {
    check_fail(c, "net sizes: input %zu (expected %d), output %zu (expected %d)", in,
               GC_C * GC_H * GC_W, clcnn_net_output_size(c->net), GC_CLASSES);
    return 1;
  }
  const int np = clcnn_net_num_params(c->net);
  if (np != 4) { /* conv weight and bias, linear weight and bias */
    check_fail(c, "clcnn_net_num_params is %d, expected 4", np);
    return 1;
  }

  x = malloc(nx * es);
  dx = malloc(nx * es);
  if (!x || !dx) die_oom();
  for (size_t i = 0; i < nx; i++) set_el(x, i, single, rng_uniform(&rng));
  for (int i = 0; i < GC_N; i++) labels[i] = (int32_t)(rng_next(&rng) % GC_CLASSES);

  double loss;
  if (check_st(c, clcnn_net_zero_grad(c->net), "clcnn_net_zero_grad") ||
      loss_at(c, x, labels, &loss) ||
      check_st(c, clcnn_net_read_input_grad(c->net, dx), "clcnn_net_read_input_grad"))
    goto out;
  if (!(loss > 0 && isfinite(loss))) {
    check_fail(c, "gradcheck: loss is %g", loss);
    goto out;
  }

  /* read every gradient now: each later backward pass adds to the parameters' */
  for (int p = 0; p < np; p++) {
    if (check_st(c, clcnn_net_param_info(c->net, p, &info[p]), "clcnn_net_param_info")) goto out;
    grads[p] = malloc(info[p].count * es);
    if (!grads[p]) die_oom();
    if (check_st(c, clcnn_net_grad_read(c->net, p, grads[p]), "clcnn_net_grad_read")) goto out;
  }

  /* the gradient with respect to the input, at a few places */
  for (int k = 0; k < 8; k++) {
    size_t i = (size_t)(rng_next(&rng) % nx);
    char what[64];
    snprintf(what, sizeof what, "d loss / d input[%zu]", i);
    if (fd_check(c, x, labels, x, i, -1, get_el(dx, i, single), what)) goto out;
  }

  /* every parameter's gradient, at a few places */
  for (int p = 0; p < np && !c->why; p++) {
    pbuf = malloc(info[p].count * es);
    if (!pbuf) die_oom();
    if (check_st(c, clcnn_net_param_read(c->net, p, pbuf), "clcnn_net_param_read")) break;
    for (int k = 0; k < 3; k++) {
      size_t i = (size_t)(rng_next(&rng) % info[p].count);
      char what[96];
      snprintf(what, sizeof what, "d loss / d %.32s[%zu]", info[p].name, i);
      if (fd_check(c, x, labels, pbuf, i, p, get_el(grads[p], i, single), what)) break;
    }
    free(pbuf);
    pbuf = NULL;
  }
  rc = c->why ? 1 : 0;
out:
  for (int p = 0; p < 4; p++) free(grads[p]);
  free(pbuf);
  free(x);
  free(dx);
  return rc;
}

enum precision_choice { PREC_AUTO, PREC_FLOAT, PREC_DOUBLE };

/* --check --model FILE: the largest batch of that model that fits on each device, under the
 * device's limits or --mem-limit and --alloc-limit (0: the device's). */
static struct {
  const char *path;
  char *text;
  uint64_t mem_limit, alloc_limit;
} fit;

/* Training as clcnn-train does it (float, no input gradient) with Adam, whose two state
 * tensors per parameter are the most any optimizer keeps: the largest batch from 1 to 65536
 * (clcnn-train's range) whose estimate fits, as a line "  FILE: ...". 0 when one fits. */
static int fit_model(const char *index) {
  char err[4096] = "", a[32], b[32], g[32], m[32];
  printf("  %s: ", fit.path);
  clcnn_ctx_options opt = {0};
  opt.device = index;
  opt.precision = CLCNN_FLOAT;
  clcnn_ctx *ctx = NULL;
  clcnn_net *net = NULL;
  clcnn_status st = clcnn_ctx_create(&ctx, &opt, err, sizeof err);
  if (st) {
    printf("FAIL: clcnn_ctx_create: %s\n", err);
    return 1;
  }
  uint64_t global = 0, maxalloc = 0;
  int batch = 0;
  clcnn_optim_params op;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &op);
  clcnn_memory_estimate e = {0};
  st = clcnn_ctx_device_memory(ctx, &global, &maxalloc);
  if (!st && (st = clcnn_net_from_text(ctx, fit.text, fit.path, 1, &net, err, sizeof err))) {
    printf("FAIL: %s\n", err);
    clcnn_ctx_destroy(ctx);
    return 1;
  }
  if (fit.mem_limit && fit.mem_limit < global) global = fit.mem_limit;
  if (fit.alloc_limit && fit.alloc_limit < maxalloc) maxalloc = fit.alloc_limit;
  if (!st) clcnn_net_set_input_grad(net, 0);
  if (!st) st = clcnn_net_largest_batch(net, &op, global, maxalloc, 65536, &batch);
  if (!st) st = clcnn_net_memory_estimate(net, batch ? batch : 1, &op, &e);
  if (st) {
    printf("FAIL: %s\n", clcnn_ctx_last_error(ctx));
  } else if (!batch) {
    printf("does not fit: a batch of 1 needs %s and a buffer of %s; %s and %s available\n",
           human_bytes(e.total, a, sizeof a), human_bytes(e.largest, b, sizeof b),
           human_bytes(global, g, sizeof g), human_bytes(maxalloc, m, sizeof m));
  } else {
    printf("largest batch %d (%s of %s, largest buffer %s of %s)\n", batch, human_bytes(e.total, a, sizeof a),
           human_bytes(global, g, sizeof g), human_bytes(e.largest, b, sizeof b), human_bytes(maxalloc, m, sizeof m));
  }
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  return st || !batch;
}

/* Print the why: its first line after the verdict, the rest indented below. */
static void print_why(const char *why) {
  const char *nl = strchr(why, '\n');
  if (!nl) {
    printf("%s\n", why);
    return;
  }
  printf("%.*s\n", (int)(nl - why), why);
  for (const char *s = nl + 1; *s;) {
    const char *e = strchr(s, '\n');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    printf("    %.*s\n", (int)n, s);
    s += n + (e ? 1 : 0);
  }
}

static int check_device(const struct plat *p, cl_uint pi, cl_uint di, enum precision_choice pc) {
  struct check c = {0};
  char index[32], err[4096];
  char *name = NULL;
  struct value fp64;
  snprintf(index, sizeof index, "%u:%u", (unsigned)pi, (unsigned)di);
  if (info_string(0, p->dev[di], CL_DEVICE_NAME, &name) != CL_SUCCESS) name = NULL;
  query(p->dev[di], find_row("fp64"), &fp64);
  int dbl = pc == PREC_DOUBLE || (pc == PREC_AUTO && fp64.err == CL_SUCCESS && fp64.u);
  c.single = !dbl;
  const char *prec = dbl ? "double" : "float";
  printf("%s  %s", index, name ? name : "(unknown name)");
  fflush(stdout);

  clcnn_ctx_options opt = {0};
  opt.device = index;
  opt.precision = dbl ? CLCNN_DOUBLE : CLCNN_FLOAT;
  err[0] = '\0';
  clcnn_status st = clcnn_ctx_create(&c.ctx, &opt, err, sizeof err);
  if (st != CLCNN_SUCCESS) {
    check_fail(&c, "clcnn_ctx_create: %s (%d)%s%s", clcnn_status_name(st), st, *err ? ": " : "",
               err);
  } else {
    const char *cname = clcnn_ctx_device_name(c.ctx);
    char *mine = xasprintf("%s", cname ? cname : "");
    if (!mine) die_oom();
    if (name && strcmp(trim(mine), name) != 0)
      check_fail(&c, "clcnn_ctx_create opened \"%s\" for %s, not \"%s\"", mine, index, name);
    free(mine);
  }
  if (!c.why) {
    double t0 = now_s();
    st = clcnn_ctx_build_all(c.ctx);
    printf("  build %.2f s", now_s() - t0);
    fflush(stdout);
    check_st(&c, st, "clcnn_ctx_build_all");
  }
  if (!c.why) {
    double t0 = now_s();
    gradcheck(&c);
    printf("  gradcheck %.2f s", now_s() - t0);
  }
  clcnn_net_destroy(c.net);
  clcnn_ctx_destroy(c.ctx);
  free(name);
  if (c.why) {
    printf("  FAIL (%s): ", prec);
    print_why(c.why);
    free(c.why);
    return 1;
  }
  printf("  PASS (%s, max rel err %.1g)\n", prec, c.max_rel);
  return fit.path ? fit_model(index) : 0;
}

/* Run FN on every selected device; a platform whose devices could not be listed counts as a
 * failure. Returns the exit status: 1 if anything failed or nothing was selected. */
typedef int (*device_fn)(const struct plat *p, cl_uint pi, cl_uint di, enum precision_choice pc);
static int for_each_device(const struct cl_list *l, const struct sel *s, enum precision_choice pc,
                           device_fn fn, const char *none, int summary) {
  int devices = 0, failed = 0;
  char buf[128];
  for (cl_uint pi = 0; pi < l->np; pi++) {
    const struct plat *p = &l->p[pi];
    if (!selected(s, pi, (cl_uint)-1)) continue;
    if (p->err != CL_SUCCESS) {
      printf("platform %u: FAIL: clGetDeviceIDs: %s\n", (unsigned)pi,
             cl_err(p->err, buf, sizeof buf));
      failed++;
      continue;
    }
    for (cl_uint di = 0; di < p->ndev; di++) {
      if (!selected(s, pi, di)) continue;
      devices++;
      failed += fn(p, pi, di, pc) != 0;
      fflush(stdout);
    }
  }
  if (devices == 0) {
    fprintf(stderr, "%s: %s\n", prog, none);
    return 1;
  }
  if (summary && devices > 1) printf("%d of %d devices passed\n", devices - failed, devices);
  return failed ? 1 : 0;
}

static int run_check(const struct cl_list *l, const struct sel *s, enum precision_choice pc) {
  return for_each_device(l, s, pc, check_device, "no OpenCL device to check", 1);
}

/* ---- --prebuild: build every kernel program, filling the disk cache -------------------- */

/* Start the line "P:D  name  precision<what>: " and make a context on that device in that
 * precision; on failure the line ends with why and the answer is NULL. */
static clcnn_ctx *open_device(cl_uint pi, cl_uint di, const char *name, int dbl, const char *what) {
  char index[32], err[4096] = "";
  snprintf(index, sizeof index, "%u:%u", (unsigned)pi, (unsigned)di);
  printf("%s  %s  %s%s: ", index, name ? name : "(unknown name)", dbl ? "double" : "float", what);
  fflush(stdout);
  clcnn_ctx_options opt = {0};
  opt.device = index;
  opt.precision = dbl ? CLCNN_DOUBLE : CLCNN_FLOAT;
  clcnn_ctx *ctx = NULL;
  clcnn_status st = clcnn_ctx_create(&ctx, &opt, err, sizeof err);
  if (st != CLCNN_SUCCESS) {
    printf("FAIL: clcnn_ctx_create: %s (%d)%s", clcnn_status_name(st), st, *err ? ": " : "");
    print_why(err);
    return NULL;
  }
  return ctx;
}

/* Build everything on device P:D in one precision; one line of what it took. 0 on success. */
static int prebuild_one(cl_uint pi, cl_uint di, const char *name, int dbl) {
  clcnn_ctx *ctx = open_device(pi, di, name, dbl, "");
  if (!ctx) return 1;
  double t0 = now_s();
  clcnn_status st = clcnn_ctx_build_all(ctx);
  double t = now_s() - t0;
  int from_source = 0, from_cache = 0;
  clcnn_ctx_build_stats(ctx, &from_source, &from_cache);
  if (st != CLCNN_SUCCESS) {
    printf("FAIL: clcnn_ctx_build_all: %s (%d): ", clcnn_status_name(st), st);
    print_why(clcnn_ctx_last_error(ctx));
  } else {
    printf("built %d program%s from source, %d from cache, in %.2f s\n", from_source,
           from_source == 1 ? "" : "s", from_cache, t);
  }
  clcnn_ctx_destroy(ctx);
  return st != CLCNN_SUCCESS;
}

/* Float and, where the device has fp64, double (or only the precision pc names). */
static int prebuild_device(const struct plat *p, cl_uint pi, cl_uint di, enum precision_choice pc) {
  int failed = 0;
  char *name = NULL;
  struct value fp64;
  if (info_string(0, p->dev[di], CL_DEVICE_NAME, &name) != CL_SUCCESS) name = NULL;
  query(p->dev[di], find_row("fp64"), &fp64);
  int has64 = fp64.err == CL_SUCCESS && fp64.u;
  if (pc != PREC_DOUBLE) failed += prebuild_one(pi, di, name, 0);
  if (pc == PREC_DOUBLE || (pc == PREC_AUTO && has64)) failed += prebuild_one(pi, di, name, 1);
  free(name);
  return failed;
}

static int run_prebuild(const struct cl_list *l, const struct sel *s, enum precision_choice pc) {
  return for_each_device(l, s, pc, prebuild_device, "no OpenCL device to build for", 0);
}

/* ---- --tune: CLBlast's GEMM parameters for a device, measured ---------------------------- */

static struct {
  size_t m, n, k;
  int sets;
} tune = {1024, 1024, 1024, 0}; /* big enough for CLBlast's Xgemm, not its direct kernel */

static int tune_one(cl_uint pi, cl_uint di, const char *name, int dbl) {
  char what[96];
  snprintf(what, sizeof what, "  %zu x %zu x %zu", tune.m, tune.n, tune.k);
  clcnn_ctx *ctx = open_device(pi, di, name, dbl, what);
  if (!ctx) return 1;
  double before = 0, after = 0, t0 = now_s();
  clcnn_status st = clcnn_ctx_tune_clblast(ctx, tune.m, tune.n, tune.k, tune.sets, &before, &after);
  if (st != CLCNN_SUCCESS) {
    printf("FAIL: clcnn_ctx_tune_clblast: %s (%d): ", clcnn_status_name(st), st);
    print_why(clcnn_ctx_last_error(ctx));
  } else {
    printf("CLBlast %.1f GFLOP/s before, %.1f after%s (%.0f s)\n", before, after,
           after > before ? ", recorded" : ": no set beat the parameters in use", now_s() - t0);
  }
  clcnn_ctx_destroy(ctx);
  return st != CLCNN_SUCCESS;
}

static int tune_device(const struct plat *p, cl_uint pi, cl_uint di, enum precision_choice pc) {
  char *name = NULL;
  if (info_string(0, p->dev[di], CL_DEVICE_NAME, &name) != CL_SUCCESS) name = NULL;
  int failed = tune_one(pi, di, name, pc == PREC_DOUBLE);
  free(name);
  return failed;
}

/* "MxNxK", each a positive decimal of at most 6 digits; 0 on success. */
static int parse_shape(const char *s, size_t v[3]) {
  const char *p = s;
  for (int i = 0; i < 3; i++) {
    int digits = 0;
    v[i] = 0;
    while (*p >= '0' && *p <= '9' && digits < 7) v[i] = v[i] * 10 + (size_t)(*p++ - '0'), digits++;
    if (!digits || digits > 6 || !v[i] || *p != (i < 2 ? 'x' : 0)) return -1;
    if (i < 2) p++;
  }
  return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: %s [-l | --json | --check | --prebuild | --tune] [-d P:D] [--precision PREC]\n"
          "          [--tune-sets N] [--tune-shape MxNxK] [--model FILE [--mem-limit SIZE]\n"
          "          [--alloc-limit SIZE]]\n"
          "List the OpenCL platforms and devices, and check that clcnn trains on them.\n"
          "\n"
          "  -l, --list             one line per platform and device, as clinfo -l\n"
          "      --json             the listing as JSON\n"
          "      --check            build every clcnn kernel and check gradients on each\n"
          "                         device; exit 0 only if every device passes\n"
          "      --model=FILE       with --check: also print the largest batch of the model in\n"
          "                         FILE that clcnn-train fits on each device (any optimizer)\n"
          "      --mem-limit=SIZE   with --model: count at most SIZE bytes of device memory\n"
          "                         (or with K, M, G, T: KiB..TiB)\n"
          "      --alloc-limit=SIZE with --model: the same for the largest buffer\n"
          "      --prebuild         build every clcnn kernel program on each device, in\n"
          "                         float and (with fp64) double, filling the disk cache\n"
          "      --tune             tune CLBlast's GEMM kernel for each device (for devices\n"
          "                         CLBlast's database does not know) and record the best\n"
          "                         parameters in the device's GEMM file in the cache\n"
          "      --tune-sets=N      try at most N candidate sets (default: all)\n"
          "      --tune-shape=MxNxK the product timed, each from 16 (default 1024x1024x1024)\n"
          "  -d, --device=P:D       only device D of platform P, numbered as by -l\n"
          "  -p, --precision=PREC   with --check: float, double or auto (the default: double\n"
          "                         where the device has fp64, else float); with --prebuild:\n"
          "                         only float, only double, or auto (both where fp64 exists);\n"
          "                         with --tune: float (also for auto) or double\n"
          "  -h, --help             print this help and exit\n"
          "      --version          print the version of clcnn and exit\n"
          "\n"
          "Exit status: 0 success; 1 no OpenCL platform, an OpenCL error, or a failed check\n"
          "or build; 2 a usage error or a device that does not exist.\n",
          prog);
}

static void usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  usage(stderr);
  exit(2);
}

/* "P:D", both decimal; 0 on success. */
static int parse_index(const char *s, struct sel *out) {
  long v[2];
  const char *p = s;
  for (int i = 0; i < 2; i++) {
    if (*p < '0' || *p > '9') return -1;
    v[i] = 0;
    while (*p >= '0' && *p <= '9') {
      if (v[i] > 100000) return -1; /* far beyond any real index */
      v[i] = v[i] * 10 + (*p++ - '0');
    }
    if (i == 0 && *p++ != ':') return -1;
  }
  if (*p) return -1;
  out->plat = v[0];
  out->dev = v[1];
  return 0;
}

static void no_platform_hint(void) {
  fprintf(stderr,
          "%s: no OpenCL platform is installed (no ICD in /etc/OpenCL/vendors, or\n"
          "OCL_ICD_VENDORS points elsewhere). On Debian or Ubuntu, install one of:\n"
          "  pocl-opencl-icd     any CPU (PoCL)\n"
          "  mesa-opencl-icd     AMD and Intel GPUs through Mesa\n"
          "  nvidia-opencl-icd   NVIDIA GPUs\n"
          "  intel-opencl-icd    Intel GPUs\n",
          prog);
}

/* The options, parsed without exiting (the fuzz harness tests/fuzz/fuzz_cmdline.c calls this):
 * ARGS_OK, ARGS_HELP, ARGS_VERSION, or ARGS_USAGE with the reason in msg. */
enum { ARGS_OK, ARGS_HELP, ARGS_VERSION, ARGS_USAGE };
enum mode { M_TEXT, M_LIST, M_JSON, M_CHECK, M_PREBUILD, M_TUNE };
struct args {
  enum mode mode;
  struct sel sel;
  const char *dev_arg;
  enum precision_choice pc;
};
#define USAGE_ERROR(...) return (snprintf(msg, msize, __VA_ARGS__), ARGS_USAGE)

static int parse_args(int argc, char **argv, struct args *a, char *msg, size_t msize) {
  enum { OPT_JSON = 256, OPT_CHECK, OPT_PREBUILD, OPT_VERSION, OPT_TUNE, OPT_TUNE_SETS, OPT_TUNE_SHAPE, OPT_MODEL,
         OPT_MEM_LIMIT, OPT_ALLOC_LIMIT };
  static const struct option longopts[] = {{"list", no_argument, NULL, 'l'},
                                           {"json", no_argument, NULL, OPT_JSON},
                                           {"check", no_argument, NULL, OPT_CHECK},
                                           {"prebuild", no_argument, NULL, OPT_PREBUILD},
                                           {"tune", no_argument, NULL, OPT_TUNE},
                                           {"tune-sets", required_argument, NULL, OPT_TUNE_SETS},
                                           {"tune-shape", required_argument, NULL, OPT_TUNE_SHAPE},
                                           {"model", required_argument, NULL, OPT_MODEL},
                                           {"mem-limit", required_argument, NULL, OPT_MEM_LIMIT},
                                           {"alloc-limit", required_argument, NULL, OPT_ALLOC_LIMIT},
                                           {"device", required_argument, NULL, 'd'},
                                           {"precision", required_argument, NULL, 'p'},
                                           {"help", no_argument, NULL, 'h'},
                                           {"version", no_argument, NULL, OPT_VERSION},
                                           {NULL, 0, NULL, 0}};
  enum mode mode = M_TEXT;
  int nmodes = 0, tune_opts = 0, limit_opts = 0;
  struct sel sel = {-1, -1};
  const char *dev_arg = NULL;
  enum precision_choice pc = PREC_AUTO;
  int o;

  opterr = 0; /* our own messages */
  fit.path = NULL, fit.mem_limit = fit.alloc_limit = 0; /* a fresh scan also when called again */
  optind = 0; /* a fresh scan, also when called again */
  while ((o = getopt_long(argc, argv, ":ld:p:h", longopts, NULL)) != -1) {
    switch (o) {
    case 'l':
      mode = M_LIST;
      nmodes++;
      break;
    case OPT_JSON:
      mode = M_JSON;
      nmodes++;
      break;
    case OPT_CHECK:
      mode = M_CHECK;
      nmodes++;
      break;
    case OPT_PREBUILD:
      mode = M_PREBUILD;
      nmodes++;
      break;
    case OPT_TUNE:
      mode = M_TUNE;
      nmodes++;
      break;
    case OPT_TUNE_SETS: {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (end == optarg || *end || v < 1 || v > 1000)
        USAGE_ERROR("--tune-sets: '%s' is not a number from 1 to 1000", optarg);
      tune.sets = (int)v;
      tune_opts++;
      break;
    }
    case OPT_TUNE_SHAPE: {
      size_t v[3];
      if (parse_shape(optarg, v) != 0)
        USAGE_ERROR("--tune-shape: '%s' is not MxNxK with each from 1 to 999999", optarg);
      tune.m = v[0], tune.n = v[1], tune.k = v[2];
      tune_opts++;
      break;
    }
    case OPT_MODEL:
      fit.path = optarg;
      break;
    case OPT_MEM_LIMIT:
    case OPT_ALLOC_LIMIT:
      if (!(*(o == OPT_MEM_LIMIT ? &fit.mem_limit : &fit.alloc_limit) = parse_size_bytes(optarg)))
        USAGE_ERROR("%s: '%s' is not a size: a positive number of bytes, or one followed by K, M, G or T",
                    o == OPT_MEM_LIMIT ? "--mem-limit" : "--alloc-limit", optarg);
      limit_opts++;
      break;
    case 'd':
      dev_arg = optarg;
      if (parse_index(optarg, &sel) != 0)
        USAGE_ERROR("-d: '%s' is not a device index of the form P:D (e.g. 0:0, see -l)", optarg);
      break;
    case 'p':
      if (!strcmp(optarg, "float"))
        pc = PREC_FLOAT;
      else if (!strcmp(optarg, "double"))
        pc = PREC_DOUBLE;
      else if (!strcmp(optarg, "auto"))
        pc = PREC_AUTO;
      else
        USAGE_ERROR("--precision: '%s' is not float, double or auto", optarg);
      break;
    case 'h':
      return ARGS_HELP;
    case OPT_VERSION:
      return ARGS_VERSION;
    case ':':
      USAGE_ERROR("option '%s' needs an argument", argv[optind - 1]);
      break;
    default:
      if (optopt >= 256 || (optopt && strchr("lh", optopt)))
        USAGE_ERROR("option '%s' takes no argument", argv[optind - 1]);
      else if (optopt)
        USAGE_ERROR("unknown option '-%c'", optopt);
      else
        USAGE_ERROR("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) USAGE_ERROR("unexpected argument '%s'", argv[optind]);
  if (nmodes > 1) USAGE_ERROR("choose one of -l, --json, --check, --prebuild and --tune");
  if (tune_opts && mode != M_TUNE) USAGE_ERROR("--tune-sets and --tune-shape go with --tune");
  if (fit.path && mode != M_CHECK) USAGE_ERROR("--model goes with --check");
  if (limit_opts && !fit.path) USAGE_ERROR("--mem-limit and --alloc-limit go with --check --model FILE");
  *a = (struct args){mode, sel, dev_arg, pc};
  return ARGS_OK;
}

int main(int argc, char **argv) {
  struct args a;
  char msg[1024];
  switch (parse_args(argc, argv, &a, msg, sizeof msg)) {
  case ARGS_OK:
    break;
  case ARGS_HELP:
    usage(stdout);
    return 0;
  case ARGS_VERSION:
    printf("%s (clcnn) %s\n", prog, clcnn_version());
    return 0;
  default:
    usage_error("%s", msg);
  }
  enum mode mode = a.mode;
  struct sel sel = a.sel;
  const char *dev_arg = a.dev_arg;
  enum precision_choice pc = a.pc;
  if (fit.path) { /* read it now: a missing file is a usage error, before any device is touched */
    FILE *f = fopen(fit.path, "rb");
    size_t n = 0, cap = 0, r;
    char *t = NULL;
    if (!f) {
      fprintf(stderr, "%s: --model %s: %s\n", prog, fit.path, strerror(errno));
      return 2;
    }
    do {
      if (n + 4096 + 1 > cap) {
        char *nt = realloc(t, cap = cap ? 2 * cap : 8192);
        if (!nt) die_oom();
        t = nt;
      }
      r = fread(t + n, 1, cap - n - 1, f);
      n += r;
    } while (r > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
      fprintf(stderr, "%s: --model %s: read error\n", prog, fit.path);
      free(t);
      return 2;
    }
    t[n] = 0;
    fit.text = t;
  }

  struct cl_list l;
  char buf[128];
  cl_int err = list_load(&l);
  if (err != CL_SUCCESS) {
    fprintf(stderr, "%s: clGetPlatformIDs: %s\n", prog, cl_err(err, buf, sizeof buf));
    if (mode == M_JSON) print_platforms(json_array(), 0);
    return 1;
  }
  if (l.np == 0) {
    if (mode == M_JSON) {
      print_platforms(json_array(), 0);
      fprintf(stderr, "%s: 0 platforms\n", prog);
    } else if (mode == M_CHECK || mode == M_PREBUILD || mode == M_TUNE) {
      fprintf(stderr, "%s: 0 platforms: nothing to %s\n", prog,
              mode == M_CHECK ? "check" : mode == M_TUNE ? "tune" : "build");
    } else {
      printf("0 platforms\n");
    }
    no_platform_hint();
    return 1;
  }
  if (dev_arg) {
    if ((unsigned long)sel.plat >= l.np) {
      fprintf(stderr, "%s: -d %s: no platform %ld: there %s %u platform%s (see %s -l)\n", prog,
              dev_arg, sel.plat, l.np == 1 ? "is" : "are", (unsigned)l.np, l.np == 1 ? "" : "s",
              prog);
      list_free(&l);
      return 2;
    }
    const struct plat *p = &l.p[sel.plat];
    if ((unsigned long)sel.dev >= p->ndev) {
      if (p->err != CL_SUCCESS)
        fprintf(stderr, "%s: -d %s: platform %ld: clGetDeviceIDs: %s\n", prog, dev_arg, sel.plat,
                cl_err(p->err, buf, sizeof buf));
      else
        fprintf(stderr, "%s: -d %s: no device %ld on platform %ld, which has %u (see %s -l)\n",
                prog, dev_arg, sel.dev, sel.plat, (unsigned)p->ndev, prog);
      list_free(&l);
      return 2;
    }
  }

  int rc = 0;
  switch (mode) {
  case M_TEXT:
    rc = print_text(&l, &sel);
    break;
  case M_LIST:
    rc = print_short(&l, &sel);
    break;
  case M_JSON:
    rc = print_json(&l, &sel);
    break;
  case M_CHECK:
    rc = run_check(&l, &sel, pc);
    break;
  case M_PREBUILD:
    rc = run_prebuild(&l, &sel, pc);
    break;
  case M_TUNE:
    rc = for_each_device(&l, &sel, pc, tune_device, "no OpenCL device to tune", 0);
    break;
  }
  list_free(&l);
  free(fit.text);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "%s: error writing the output\n", prog);
    rc = 1;
  }
  return rc;
}
