/* lib/ctx.c - choosing a device, making the context and queue, finding and building the
 * kernel programs. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef CLCNN_PKGDATADIR
#define CLCNN_PKGDATADIR "/usr/local/share/clcnn"
#endif

static const char *const prog_files[KP_COUNT] = {
    [KP_UTIL] = "util.cl",
    [KP_CONV2D] = "conv2d.cl",
    [KP_ACTIVATION] = "activation.cl",
    [KP_POOL2D] = "pool2d.cl",
    [KP_SOFTMAX_XENT] = "softmax_xent.cl",
    [KP_OPTIM] = "optim.cl",
    [KP_BATCHNORM] = "batchnorm.cl",
    [KP_DROPOUT] = "dropout.cl",
    [KP_GEMM] = "gemm.cl",
    [KP_ADD] = "add.cl",
    [KP_UPSAMPLE] = "upsample.cl",
    [KP_LOSS] = "loss.cl",
    [KP_YOLO] = "yolo.cl",
};

/* Prepended to every program: the real type for the precision chosen. */
static const char prelude[] =
    "#ifdef CLCNN_FP64\n"
    "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    "typedef double real;\n"
    "#define REAL_MAX DBL_MAX\n"
    "#else\n"
    "typedef float real;\n"
    "#define REAL_MAX FLT_MAX\n"
    "#endif\n"
    "#line 1\n";

/* ---- error text for a context that could not be made ---- */
#define put_err(err, size, ...) ((void)clcnn__errf((err), (size), 0, __VA_ARGS__))

static int has_ext(cl_device_id d, const char *ext) {
  size_t n = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || !n) return 0;
  char *s = malloc(n + 1);
  if (!s) return 0;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) == CL_SUCCESS) {
    s[n] = 0;
    size_t el = strlen(ext);
    for (char *p = s; (p = strstr(p, ext)); p += el)
      if ((p == s || p[-1] == ' ') && (p[el] == 0 || p[el] == ' ')) {
        found = 1;
        break;
      }
  }
  free(s);
  return found;
}

static int icontains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

/* Find the device that SEL names: "P:D", "gpu", "cpu", "accelerator", a name substring, or
 * NULL/"" for the default (first GPU, else first device). */
static clcnn_status pick_device(const char *sel, cl_platform_id *pp, cl_device_id *dp,
                                char *err, size_t err_size) {
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &np);
  if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && np == 0)) {
    put_err(err, err_size,
            "no OpenCL platform found (0 platforms): install one, e.g. 'apt-get install "
            "pocl-opencl-icd' for any CPU");
    return CLCNN_ERR_NO_PLATFORM;
  }
  if (e != CL_SUCCESS) {
    put_err(err, err_size, "clGetPlatformIDs: %s (%d)", clcnn_status_name(e), e);
    return e;
  }
  cl_platform_id plats[64];
  if (np > 64) np = 64;
  clGetPlatformIDs(np, plats, NULL);

  int want_p = -1, want_d = -1;
  cl_device_type want_type = 0;
  const char *name = NULL;
  if (sel && *sel) {
    char *end;
    long p = strtol(sel, &end, 10);
    if (end != sel && *end == ':' && isdigit((unsigned char)end[1])) {
      char *end2;
      long d = strtol(end + 1, &end2, 10);
      if (*end2 == 0 && p >= 0 && d >= 0 && p < 1 << 20 && d < 1 << 20) {
        want_p = (int)p;
        want_d = (int)d;
      }
    }
    if (want_p < 0) {
      if (!strcasecmp(sel, "gpu")) want_type = CL_DEVICE_TYPE_GPU;
      else if (!strcasecmp(sel, "cpu")) want_type = CL_DEVICE_TYPE_CPU;
      else if (!strcasecmp(sel, "accelerator")) want_type = CL_DEVICE_TYPE_ACCELERATOR;
      else name = sel;
    }
  }
  if (want_p >= 0) {
    if ((cl_uint)want_p >= np) {
      put_err(err, err_size, "device %d:%d does not exist: there %s %u platform%s (0..%u)",
              want_p, want_d, np == 1 ? "is" : "are", np, np == 1 ? "" : "s", np - 1);
      return CLCNN_ERR_NO_DEVICE;
    }
    cl_uint nd = 0;
    clGetDeviceIDs(plats[want_p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
    if ((cl_uint)want_d >= nd) {
      put_err(err, err_size, "device %d:%d does not exist: platform %d has %u device%s", want_p,
              want_d, want_p, nd, nd == 1 ? "" : "s");
      return CLCNN_ERR_NO_DEVICE;
    }
    cl_device_id devs[64];
    if (nd > 64) nd = 64;
    clGetDeviceIDs(plats[want_p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
    *pp = plats[want_p];
    *dp = devs[want_d];
    return CLCNN_SUCCESS;
  }
  /* Walk every device; by default take the first GPU, else the first device. */
  cl_platform_id first_p = NULL;
  cl_device_id first_d = NULL;
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS) continue;
    cl_device_id devs[64];
    if (nd > 64) nd = 64;
    clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
    for (cl_uint d = 0; d < nd; d++) {
      cl_device_type t = 0;
      char dn[256] = "";
      clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof t, &t, NULL);
      clGetDeviceInfo(devs[d], CL_DEVICE_NAME, sizeof dn - 1, dn, NULL);
      int match;
      if (name) match = icontains(dn, name);
      else if (want_type) match = (t & want_type) != 0;
      else match = (t & CL_DEVICE_TYPE_GPU) != 0;
      if (match) {
        *pp = plats[p];
        *dp = devs[d];
        return CLCNN_SUCCESS;
      }
      if (!first_d) {
        first_p = plats[p];
        first_d = devs[d];
      }
    }
  }
  if (!name && !want_type && first_d) {
    *pp = first_p;
    *dp = first_d;
    return CLCNN_SUCCESS;
  }
  if (!first_d) {
    put_err(err, err_size, "no OpenCL device found on %u platform%s", np, np == 1 ? "" : "s");
    return CLCNN_ERR_NO_DEVICE;
  }
  put_err(err, err_size,
          "no OpenCL device matches '%s' (give P:D, gpu, cpu, accelerator or part of a device "
          "name; 'clcnn-devices -l' lists them)",
          sel);
  return CLCNN_ERR_NO_DEVICE;
}

/* Append device (p, d) to a device list as "P:D", refusing a second mention and more than max. */
static clcnn_status list_add(char (*ids)[16], int max, int *count, int p, int d, const char *spec, char *err,
                             size_t err_size) {
  char id[16];
  snprintf(id, sizeof id, "%d:%d", p, d);
  for (int i = 0; i < *count; i++)
    if (!strcmp(ids[i], id)) {
      put_err(err, err_size, "device list '%s': device %s is named twice", spec, id);
      return CLCNN_ERR_INVALID_ARGUMENT;
    }
  if (*count >= max) {
    put_err(err, err_size, "device list '%s': more than %d devices", spec, max);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  memcpy(ids[(*count)++], id, sizeof id);
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_device_list(const char *spec, char (*ids)[16], int max, int *count, char *err,
                                         size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!spec || !ids || !count) {
    put_err(err, err_size, "clcnn_device_list: %s is NULL", !spec ? "spec" : !ids ? "ids" : "count");
    return CLCNN_ERR_NULL_POINTER;
  }
  *count = 0;
  if (max < 1) {
    put_err(err, err_size, "clcnn_device_list: max %d must be at least 1", max);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  cl_platform_id p0;
  cl_device_id d0;
  clcnn_status st = pick_device(NULL, &p0, &d0, err, err_size); /* no platform, no device: its message */
  if (st) return st;
  cl_uint np = 0;
  cl_platform_id plats[64];
  clGetPlatformIDs(0, NULL, &np);
  if (np > 64) np = 64;
  clGetPlatformIDs(np, plats, NULL);
  const char *s = spec;
  for (;;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    char item[256];
    if (!len || len >= sizeof item) {
      put_err(err, err_size, "device list '%s': %s item", spec, len ? "an overlong" : "an empty");
      *count = 0;
      return CLCNN_ERR_INVALID_ARGUMENT;
    }
    memcpy(item, s, len);
    item[len] = 0;
    cl_device_type want = 0;
    if (!strcasecmp(item, "all")) want = CL_DEVICE_TYPE_ALL;
    else if (!strcasecmp(item, "gpu:all")) want = CL_DEVICE_TYPE_GPU;
    else if (!strcasecmp(item, "cpu:all")) want = CL_DEVICE_TYPE_CPU;
    else if (!strcasecmp(item, "accelerator:all")) want = CL_DEVICE_TYPE_ACCELERATOR;
    /* one selector: the device it picks, found below among all as P:D */
    if (!want) st = pick_device(item, &p0, &d0, err, err_size);
    int found = 0;
    for (cl_uint p = 0; p < np && !st; p++) {
      cl_uint nd = 0;
      cl_device_id devs[64];
      if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS) continue;
      if (nd > 64) nd = 64;
      clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
      for (cl_uint d = 0; d < nd && !st; d++) {
        cl_device_type t = 0;
        if (want) clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof t, &t, NULL);
        if (want ? (t & want) != 0 : plats[p] == p0 && devs[d] == d0)
          found = 1, st = list_add(ids, max, count, (int)p, (int)d, spec, err, err_size);
      }
    }
    if (!st && !found) {
      put_err(err, err_size, "device list '%s': no device is a%s %s", spec, want == CL_DEVICE_TYPE_ACCELERATOR ? "n" : "",
              want == CL_DEVICE_TYPE_GPU ? "GPU" : want == CL_DEVICE_TYPE_CPU ? "CPU" : "accelerator");
      st = CLCNN_ERR_NO_DEVICE;
    }
    if (st) {
      *count = 0;
      return st;
    }
    if (!e) break;
    s = e + 1;
  }
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_ctx_create(clcnn_ctx **out, const clcnn_ctx_options *opt,
                                        char *err, size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!out) {
    put_err(err, err_size, "clcnn_ctx_create: out is NULL");
    return CLCNN_ERR_NULL_POINTER;
  }
  *out = NULL;
  clcnn_ctx_options o = {0};
  if (opt) o = *opt;
  if (o.precision != CLCNN_FLOAT && o.precision != CLCNN_DOUBLE) {
    put_err(err, err_size, "clcnn_ctx_create: precision %d is neither CLCNN_FLOAT nor CLCNN_DOUBLE",
            (int)o.precision);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  const char *sel = o.device;
  if (!sel) sel = getenv("CLCNN_DEVICE");

  cl_platform_id plat;
  cl_device_id dev;
  clcnn_status st = pick_device(sel, &plat, &dev, err, err_size);
  if (st) return st;

  clcnn_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    put_err(err, err_size, "clcnn_ctx_create: out of host memory");
    return CLCNN_ERR_OUT_OF_MEMORY;
  }
  ctx->platform = plat;
  ctx->device = dev;
  ctx->prec = o.precision;
  ctx->esz = o.precision == CLCNN_DOUBLE ? sizeof(double) : sizeof(float);
  ctx->profiling = o.profiling != 0;
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof ctx->device_name - 1, ctx->device_name, NULL);

  if (o.precision == CLCNN_DOUBLE && !has_ext(dev, "cl_khr_fp64")) {
    put_err(err, err_size, "device '%s' has no double precision (cl_khr_fp64): use CLCNN_FLOAT",
            ctx->device_name);
    free(ctx);
    return CLCNN_ERR_NO_FP64;
  }
  const char *gemm = o.gemm ? o.gemm : getenv("CLCNN_GEMM");
  static const char *const gemm_modes[] = {[GEMM_AUTO] = "auto", [GEMM_MEASURE] = "measure", [GEMM_OWN] = "clcnn",
                                           [GEMM_CLBLAST] = "clblast"};
  ctx->gemm_mode = -1;
  for (int i = 0; i < 4; i++)
    if (!gemm || !*gemm ? i == GEMM_AUTO : !strcmp(gemm, gemm_modes[i])) ctx->gemm_mode = i;
  if (ctx->gemm_mode < 0) {
    put_err(err, err_size, "GEMM choice '%s' is none of auto, measure, clcnn, clblast%s", gemm,
            o.gemm ? "" : " (from $CLCNN_GEMM)");
    free(ctx);
    return CLCNN_ERR_INVALID_ARGUMENT;
  }
  cl_device_type dtype = 0;
  clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof dtype, &dtype, NULL);
  ctx->cpu = (dtype & CL_DEVICE_TYPE_CPU) != 0;
  ctx->gemm_own = ctx->gemm_mode == GEMM_OWN || (ctx->gemm_mode != GEMM_CLBLAST && ctx->cpu);
  /* 1-D kernels run in work-groups of 64 (every device clcnn targets allows that); $CLCNN_LWS
   * overrides it for experiments. */
  ctx->lws = 64;
  const char *lws = getenv("CLCNN_LWS");
  if (lws && *lws) {
    char *end;
    long v = strtol(lws, &end, 10);
    if (end == lws || *end || v < 1 || v > 4096) {
      put_err(err, err_size, "$CLCNN_LWS '%s' is not a work-group size from 1 to 4096", lws);
      free(ctx);
      return CLCNN_ERR_INVALID_ARGUMENT;
    }
    ctx->lws = (size_t)v;
  }
  size_t maxwg = 0;
  if (clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL) == CL_SUCCESS &&
      maxwg && ctx->lws > maxwg)
    ctx->lws = maxwg;
  if (o.kernel_path && !(ctx->kernel_path = strdup(o.kernel_path))) {
    free(ctx);
    put_err(err, err_size, "clcnn_ctx_create: out of host memory");
    return CLCNN_ERR_OUT_OF_MEMORY;
  }
  cl_int e;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
  ctx->context = clCreateContext(props, 1, &dev, NULL, NULL, &e);
  if (e != CL_SUCCESS) {
    put_err(err, err_size, "clCreateContext(%s): %s (%d)", ctx->device_name, clcnn_status_name(e), e);
    clcnn_ctx_destroy(ctx);
    return e;
  }
  ctx->queue = clCreateCommandQueue(ctx->context, dev,
                                    ctx->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &e);
  if (e != CL_SUCCESS) {
    put_err(err, err_size, "clCreateCommandQueue(%s): %s (%d)", ctx->device_name,
            clcnn_status_name(e), e);
    clcnn_ctx_destroy(ctx);
    return e;
  }
  *out = ctx;
  return CLCNN_SUCCESS;
}

static void store_unstored(clcnn_ctx *ctx);

CLCNN_API void clcnn_ctx_destroy(clcnn_ctx *ctx) {
  if (!ctx) return;
  if (ctx->queue) clFinish(ctx->queue);
  store_unstored(ctx);
  cbuf_free(&ctx->pack_a);
  cbuf_free(&ctx->pack_b);
  cbuf_free(&ctx->part);
  for (int i = 0; i < ctx->nkernels; i++) clReleaseKernel(ctx->kernels[i].k);
  for (int i = 0; i < KP_COUNT; i++)
    if (ctx->progs[i]) clReleaseProgram(ctx->progs[i]);
  if (ctx->queue) clReleaseCommandQueue(ctx->queue);
  if (ctx->context) clReleaseContext(ctx->context);
  free(ctx->deps);
  free(ctx->choices);
  free(ctx->kernel_path);
  free(ctx->cache_dir);
  free(ctx);
}

CLCNN_API const char *clcnn_ctx_last_error(const clcnn_ctx *ctx) {
  return ctx ? ctx->err : "clcnn_ctx_last_error: ctx is NULL";
}
CLCNN_API const char *clcnn_ctx_device_name(const clcnn_ctx *ctx) {
  return ctx ? ctx->device_name : NULL;
}
CLCNN_API clcnn_precision clcnn_ctx_precision(const clcnn_ctx *ctx) {
  return ctx ? ctx->prec : CLCNN_FLOAT;
}
CLCNN_API size_t clcnn_ctx_elem_size(const clcnn_ctx *ctx) { return ctx ? ctx->esz : 0; }
CLCNN_API clcnn_status clcnn_ctx_memory(const clcnn_ctx *ctx, size_t *now, size_t *peak,
                                        uint64_t *allocations) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  if (now) *now = ctx->mem_now;
  if (peak) *peak = ctx->mem_peak;
  if (allocations) *allocations = ctx->allocations;
  return CLCNN_SUCCESS;
}

CLCNN_API void clcnn_ctx_reset_peak(clcnn_ctx *ctx) {
  if (ctx) ctx->mem_peak = ctx->mem_now;
}

CLCNN_API size_t clcnn_ctx_largest_buffer(const clcnn_ctx *ctx) { return ctx ? ctx->mem_largest : 0; }

CLCNN_API clcnn_status clcnn_ctx_device_memory(const clcnn_ctx *ctx, uint64_t *global_bytes,
                                               uint64_t *max_alloc_bytes) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  cl_ulong g = 0, m = 0;
  cl_int e = clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof g, &g, NULL);
  if (e == CL_SUCCESS) e = clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof m, &m, NULL);
  if (e != CL_SUCCESS) return CLFAIL((clcnn_ctx *)ctx, e, "clGetDeviceInfo", "device memory");
  if (global_bytes) *global_bytes = g;
  if (max_alloc_bytes) *max_alloc_bytes = m;
  return CLCNN_SUCCESS;
}

CLCNN_API const char *clcnn_ctx_gemm_backend(const clcnn_ctx *ctx) {
  static const char *const names[] = {[GEMM_AUTO] = "auto", [GEMM_MEASURE] = "measure", [GEMM_OWN] = "clcnn",
                                      [GEMM_CLBLAST] = "clblast"};
  return !ctx ? NULL : names[ctx->gemm_mode];
}

/* ---- finding a kernel source ---- */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (cap - n < 4096) {
      char *nb = realloc(buf, cap = cap * 2 + 8192);
      if (!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static char *try_dir(const char *dir, const char *file, char *path, size_t psize) {
  if (!dir || !*dir) return NULL;
  snprintf(path, psize, "%s/%s", dir, file);
  return read_file(path, NULL);
}

/* The installed kernels are used only when their stamp is this library's: an older or newer
 * installation next to a library from a build tree must not lend it other kernels. */
static int installed_matches(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/kernels.stamp", CLCNN_PKGDATADIR);
  char *stamp = read_file(path, NULL);
  if (!stamp) return 0;
  size_t n = strlen(stamp);
  while (n && (stamp[n - 1] == '\n' || stamp[n - 1] == ' ')) stamp[--n] = 0;
  int ok = !strcmp(stamp, clcnn_kernels_stamp);
  if (!ok && getenv("CLCNN_DEBUG"))
    fprintf(stderr, "clcnn: %s is from other sources (%s, this library %s): not used\n", path, stamp,
            clcnn_kernels_stamp);
  free(stamp);
  return ok;
}

/* The source of FILE, and where it came from. The caller frees *src. */
static const char *find_source(clcnn_ctx *ctx, const char *file, char **src, char *path,
                               size_t psize) {
  *src = NULL;
  if ((*src = try_dir(ctx->kernel_path, file, path, psize))) return "explicit";
  if ((*src = try_dir(getenv("CLCNN_KERNEL_PATH"), file, path, psize))) return "env";
  if (installed_matches() && (*src = try_dir(CLCNN_PKGDATADIR, file, path, psize))) return "installed";
  for (const struct clcnn_embedded_file *e = clcnn_embedded_files; e->name; e++)
    if (!strcmp(e->name, file)) {
      snprintf(path, psize, "(embedded)/%s", file);
      *src = strdup(e->src);
      return *src ? "embedded" : NULL;
    }
  return NULL;
}

CLCNN_API const char *clcnn_ctx_kernel_origin(clcnn_ctx *ctx, const char *name) {
  if (!ctx || !name) return NULL;
  char *src, path[4096];
  const char *origin = find_source(ctx, name, &src, path, sizeof path);
  free(src);
  return origin;
}

/* ---- the disk cache of program binaries ----
 * A built program is kept as <dir>/<key>.clbin, where key is 32 hex digits: two independent
 * 64-bit hashes of everything that decides the binary (the format, the prelude, the source,
 * the build options, and the device, vendor, driver and platform versions). The file is a
 * 64-byte header followed by the device binary (the payload):
 *    0  "CLCNNBIN"
 *    8  CACHE_FORMAT, u32 little-endian
 *   12  0, u32 (reserved)
 *   16  the key again, 32 hex digits
 *   48  the payload's length, u64 little-endian
 *   56  the payload's FNV-1a 64 checksum, u64 little-endian
 * An entry is written to a temporary file in the same directory and renamed into place, so a
 * reader sees a whole entry or none. One that fails any check, or that the driver will not
 * load, is removed and the program built from source: the cache never makes a build fail. */
#define CACHE_MAGIC "CLCNNBIN"
#define CACHE_FORMAT 1u
#define CACHE_HEADER 64
#define CACHE_MAX_PAYLOAD ((uint64_t)1 << 30)

struct hash128 {
  uint64_t a, b;
};

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t fnv1a64(const unsigned char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}

static void hash_bytes(struct hash128 *h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h->a = (h->a ^ s[i]) * 0x100000001b3ULL;                  /* FNV-1a 64 */
    h->b = rotl64((h->b ^ s[i]) * 0x9e3779b97f4a7c15ULL, 29); /* multiply-rotate */
  }
}

/* A field, preceded by its length so that no two lists of fields hash alike. */
static void hash_field(struct hash128 *h, const void *p, size_t n) {
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)n >> (8 * i));
  hash_bytes(h, len, sizeof len);
  hash_bytes(h, p, n);
}

static void hash_str(struct hash128 *h, const char *s) { hash_field(h, s, strlen(s)); }

/* A string query of the device (or, for platform queries, its platform); "?" if it fails. */
static void hash_info(struct hash128 *h, clcnn_ctx *ctx, cl_uint param, int platform) {
  size_t n = 0;
  cl_int e = platform ? clGetPlatformInfo(ctx->platform, param, 0, NULL, &n)
                      : clGetDeviceInfo(ctx->device, param, 0, NULL, &n);
  char *s = e == CL_SUCCESS && n ? malloc(n) : NULL;
  if (s) {
    e = platform ? clGetPlatformInfo(ctx->platform, param, n, s, NULL)
                 : clGetDeviceInfo(ctx->device, param, n, s, NULL);
    if (e == CL_SUCCESS) hash_field(h, s, strnlen(s, n));
  }
  if (!s || e != CL_SUCCESS) hash_str(h, "?");
  free(s);
}

static uint64_t mix64(uint64_t z) { /* splitmix64's finaliser */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* The key of SRC built with OPTS on the context's device: 32 hex digits into key[33]. */
static void cache_key(clcnn_ctx *ctx, const char *src, const char *opts, char key[33]) {
  struct hash128 h = {0xcbf29ce484222325ULL, 0x6a09e667f3bcc909ULL};
  char fmt[32];
  snprintf(fmt, sizeof fmt, "clcnn program cache %u", CACHE_FORMAT);
  hash_str(&h, fmt);
  hash_str(&h, prelude);
  hash_str(&h, src);
  hash_str(&h, opts);
  hash_info(&h, ctx, CL_DEVICE_NAME, 0);
  hash_info(&h, ctx, CL_DEVICE_VENDOR, 0);
  hash_info(&h, ctx, CL_DRIVER_VERSION, 0);
  hash_info(&h, ctx, CL_DEVICE_VERSION, 0);
  hash_info(&h, ctx, CL_PLATFORM_VERSION, 1); /* PoCL names its LLVM here */
  snprintf(key, 33, "%016llx%016llx", (unsigned long long)mix64(h.a),
           (unsigned long long)mix64(h.b));
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* mkdir -p PATH, each new directory 0700; 0 or an errno. */
static int mkdir_p(char *path) {
  struct stat sb;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p) continue;
    char c = *p;
    *p = 0;
    int e = 0;
    if (stat(path, &sb) != 0) e = mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : errno;
    else if (!S_ISDIR(sb.st_mode)) e = ENOTDIR;
    *p = c;
    if (e) return e;
    if (!c) return 0;
  }
}

/* The context's cache directory, made if missing: $CLCNN_CACHE_DIR ("" or "off": no cache),
 * else $XDG_CACHE_HOME/clcnn, else $HOME/.cache/clcnn. NULL when there is none or it cannot
 * be made; the answer is kept for the context's life. */
static const char *cache_dir(clcnn_ctx *ctx, int debug) {
  if (ctx->cache_state) return ctx->cache_state > 0 ? ctx->cache_dir : NULL;
  ctx->cache_state = -1;
  const char *env = getenv("CLCNN_CACHE_DIR"), *base, *sub;
  if (env) {
    if (!*env || !strcmp(env, "off")) {
      if (debug) fprintf(stderr, "clcnn: program cache off (CLCNN_CACHE_DIR='%s')\n", env);
      return NULL;
    }
    base = env, sub = "";
  } else if ((base = getenv("XDG_CACHE_HOME")) && base[0] == '/') { /* XDG: absolute only */
    sub = "/clcnn";
  } else if ((base = getenv("HOME")) && *base) {
    sub = "/.cache/clcnn";
  } else {
    if (debug) fprintf(stderr, "clcnn: program cache off (no $CLCNN_CACHE_DIR, $XDG_CACHE_HOME or $HOME)\n");
    return NULL;
  }
  size_t n = strlen(base) + strlen(sub) + 1;
  if (n > 3072 || !(ctx->cache_dir = malloc(n))) return NULL; /* room left for the file names */
  snprintf(ctx->cache_dir, n, "%s%s", base, sub);
  int e = mkdir_p(ctx->cache_dir);
  if (e) {
    if (debug) fprintf(stderr, "clcnn: program cache off: %s: %s\n", ctx->cache_dir, strerror(e));
    free(ctx->cache_dir);
    ctx->cache_dir = NULL;
    return NULL;
  }
  ctx->cache_state = 1;
  return ctx->cache_dir;
}

/* Say why the entry PATH is unusable (with CLCNN_DEBUG) and remove it. */
static void cache_reject(const char *file, const char *path, int debug, const char *why) {
  if (debug) fprintf(stderr, "clcnn: %s: cache entry rejected: %s: %s\n", file, why, path);
  unlink(path);
}

/* The whole of the file PATH into *buf (malloc'd), its size into *size; 0, or -1 with
 * errno set (ENOENT: no such entry; EFBIG: too large to be one). */
static int slurp(const char *path, unsigned char **buf, size_t *size) {
  *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat sb;
  int e = fstat(fd, &sb) != 0 ? errno
          : !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > CACHE_HEADER + CACHE_MAX_PAYLOAD ? EFBIG
                                                                                            : 0;
  if (e) {
    close(fd);
    errno = e;
    return -1;
  }
  size_t n = (size_t)sb.st_size, got = 0;
  unsigned char *b = malloc(n ? n : 1);
  if (!b) {
    close(fd);
    errno = ENOMEM;
    return -1;
  }
  while (got < n) {
    ssize_t r = read(fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* shrank under us: the checks below see it short */
    got += (size_t)r;
  }
  close(fd);
  *buf = b;
  *size = got;
  return 0;
}

const char *clcnn__cache_entry_check(const unsigned char *buf, size_t size, const char *key) {
  if (size < CACHE_HEADER) return "shorter than the header";
  if (memcmp(buf, CACHE_MAGIC, 8)) return "not a clcnn program binary (bad magic)";
  if (get_u32(buf + 8) != CACHE_FORMAT) return "another format version";
  if (memcmp(buf + 16, key, 32)) return "its key is not its name's";
  if (get_u64(buf + 48) != size - CACHE_HEADER) return "truncated or padded (length differs)";
  if (get_u64(buf + 48) == 0) return "empty binary";
  if (fnv1a64(buf + CACHE_HEADER, size - CACHE_HEADER) != get_u64(buf + 56))
    return "corrupt (checksum differs)";
  return NULL;
}

/* The program of the cache entry PATH (for KEY), built with OPTS; NULL when there is no entry
 * or it is unusable (then it is removed). */
static cl_program cache_load(clcnn_ctx *ctx, const char *file, const char *path, const char *key,
                             const char *opts, int debug) {
  unsigned char *buf;
  size_t size;
  if (slurp(path, &buf, &size) != 0) {
    if (errno == ENOENT) {
      if (debug) fprintf(stderr, "clcnn: %s: cache miss %s\n", file, path);
    } else if (errno == EFBIG) {
      cache_reject(file, path, debug, "not a regular file of a plausible size");
    } else if (debug) {
      fprintf(stderr, "clcnn: %s: cache entry unreadable: %s: %s\n", file, strerror(errno), path);
    }
    return NULL;
  }
  const char *why = clcnn__cache_entry_check(buf, size, key);
  if (why) {
    free(buf);
    cache_reject(file, path, debug, why);
    return NULL;
  }
  const unsigned char *bin = buf + CACHE_HEADER;
  size_t len = size - CACHE_HEADER;
  cl_int e, bst = CL_SUCCESS;
  cl_program p = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &len, &bin, &bst, &e);
  free(buf);
  char msg[128];
  if (e != CL_SUCCESS || bst != CL_SUCCESS) {
    snprintf(msg, sizeof msg, "clCreateProgramWithBinary: %s (%d), binary status %s (%d)",
             clcnn_status_name(e), e, clcnn_status_name(bst), bst);
    if (p) clReleaseProgram(p);
    cache_reject(file, path, debug, msg);
    return NULL;
  }
  if ((e = clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL)) != CL_SUCCESS) {
    snprintf(msg, sizeof msg, "clBuildProgram: %s (%d)", clcnn_status_name(e), e);
    clReleaseProgram(p);
    cache_reject(file, path, debug, msg);
    return NULL;
  }
  if (debug) fprintf(stderr, "clcnn: %s: cache hit %s\n", file, path);
  return p;
}

/* Write P's binary as the entry PATH (for KEY) in DIR. Any failure only means no entry. */
static void cache_store(clcnn_ctx *ctx, cl_program p, const char *dir, const char *path,
                        const char *key, const char *file, int debug) {
  cl_uint ndev = 0;
  size_t len = 0;
  const char *why = NULL;
  char werr[512];
  unsigned char *buf = NULL;
  (void)ctx;
  if (clGetProgramInfo(p, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS ||
      ndev != 1 || clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS)
    why = "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES) failed";
  else if (!len || len > CACHE_MAX_PAYLOAD)
    why = "the driver gives no binary of a plausible size";
  else if (!(buf = malloc(CACHE_HEADER + len)))
    why = "out of host memory";
  if (!why) {
    unsigned char *bins[1] = {buf + CACHE_HEADER};
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS)
      why = "clGetProgramInfo(CL_PROGRAM_BINARIES) failed";
  }
  if (!why) {
    memcpy(buf, CACHE_MAGIC, 8);
    put_u32(buf + 8, CACHE_FORMAT);
    put_u32(buf + 12, 0);
    memcpy(buf + 16, key, 32);
    put_u64(buf + 48, len);
    put_u64(buf + 56, fnv1a64(buf + CACHE_HEADER, len));
    if (clcnn__write_file(path, &(struct clcnn__piece){buf, CACHE_HEADER + len}, 1, werr, sizeof werr)) why = werr;
  }
  free(buf);
  if (why) {
    if (debug) fprintf(stderr, "clcnn: %s: not cached: %s: %s\n", file, why, path);
  } else if (debug) {
    fprintf(stderr, "clcnn: %s: cached %s\n", file, path);
  }
}

/* The key of this device and driver, and of clcnn's GEMM kernels, for the file of measured GEMM
 * choices: 32 hex digits. */
void clcnn__device_key(clcnn_ctx *ctx, char key[33]) {
  const char *gemm_src = "";
  for (const struct clcnn_embedded_file *e = clcnn_embedded_files; e->name; e++)
    if (!strcmp(e->name, "gemm.cl")) gemm_src = e->src;
  cache_key(ctx, gemm_src, "clcnn gemm choices", key);
}

const char *clcnn__cache_dir(clcnn_ctx *ctx) { return cache_dir(ctx, getenv("CLCNN_DEBUG") != NULL); }

static clcnn_status build_program(clcnn_ctx *ctx, int prog) {
  const char *file = prog_files[prog];
  char *src, path[4096];
  const char *origin = find_source(ctx, file, &src, path, sizeof path);
  if (!origin)
    return FAIL(ctx, CLCNN_ERR_KERNEL_SOURCE,
                "kernel source %s not found (looked in the explicit path, $CLCNN_KERNEL_PATH, "
                "%s and the embedded copy)",
                file, CLCNN_PKGDATADIR);
  const int debug = getenv("CLCNN_DEBUG") != NULL;
  if (debug) fprintf(stderr, "clcnn: %s from %s: %s\n", file, origin, path);
  const char *opts = ctx->prec == CLCNN_DOUBLE ? "-cl-std=CL1.2 -DCLCNN_FP64" : "-cl-std=CL1.2";

  char key[33], entry[4096];
  const char *dir = cache_dir(ctx, debug);
  cl_program p;
  if (dir) {
    cache_key(ctx, src, opts, key);
    snprintf(entry, sizeof entry, "%s/%s.clbin", dir, key);
    if ((p = cache_load(ctx, file, entry, key, opts, debug))) {
      free(src);
      ctx->progs[prog] = p;
      ctx->from_cache++;
      return CLCNN_SUCCESS;
    }
  }

  const char *srcs[2] = {prelude, src};
  cl_int e;
  p = clCreateProgramWithSource(ctx->context, 2, srcs, NULL, &e);
  free(src);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clCreateProgramWithSource", path);
  e = clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL);
  if (e != CL_SUCCESS) {
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(p, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
        (log = malloc(n + 1))) {
      if (clGetProgramBuildInfo(p, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
        n = 0;
      log[n] = 0;
    }
    FAIL(ctx, e == CL_BUILD_PROGRAM_FAILURE ? CLCNN_ERR_BUILD : e,
         "clBuildProgram(%s, %s, options '%s'): %s (%d)\n%s", path, ctx->device_name, opts,
         clcnn_status_name(e), e, log ? log : "(no build log)");
    free(log);
    clReleaseProgram(p);
    return e == CL_BUILD_PROGRAM_FAILURE ? CLCNN_ERR_BUILD : e;
  }
  ctx->progs[prog] = p;
  ctx->from_source++;
  if (dir) memcpy(ctx->unstored[prog], key, sizeof key);
  return CLCNN_SUCCESS;
}

/* Write the programs built from source to the disk cache. Not done as they are built: asking a
 * driver for a program's binary can compile all its kernels (PoCL: 1-2 s a program), which would
 * delay the first training step; clcnn_ctx_destroy and clcnn_ctx_build_all do it instead. */
static void store_unstored(clcnn_ctx *ctx) {
  const int debug = getenv("CLCNN_DEBUG") != NULL;
  for (int i = 0; i < KP_COUNT; i++) {
    if (!ctx->unstored[i][0] || !ctx->progs[i]) continue;
    const char *dir = cache_dir(ctx, debug);
    if (dir) {
      char entry[4096];
      snprintf(entry, sizeof entry, "%s/%s.clbin", dir, ctx->unstored[i]);
      cache_store(ctx, ctx->progs[i], dir, entry, ctx->unstored[i], prog_files[i], debug);
    }
    ctx->unstored[i][0] = 0;
  }
}

clcnn_status clcnn__kernel(clcnn_ctx *ctx, int prog, const char *name, cl_kernel *out) {
  for (int i = 0; i < ctx->nkernels; i++)
    if (ctx->kernels[i].prog == prog && !strcmp(ctx->kernels[i].name, name)) {
      *out = ctx->kernels[i].k;
      return CLCNN_SUCCESS;
    }
  if (!ctx->progs[prog]) {
    clcnn_status st = build_program(ctx, prog);
    if (st) return st;
  }
  if (ctx->nkernels == MAX_KERNELS)
    return FAIL(ctx, CLCNN_ERR_STATE, "kernel cache full (%d kernels)", MAX_KERNELS);
  cl_int e;
  cl_kernel k = clCreateKernel(ctx->progs[prog], name, &e);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clCreateKernel", name);
  ctx->kernels[ctx->nkernels].prog = prog;
  ctx->kernels[ctx->nkernels].name = name;
  ctx->kernels[ctx->nkernels].k = k;
  ctx->nkernels++;
  *out = k;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_ctx_build_stats(const clcnn_ctx *ctx, int *from_source,
                                             int *from_cache) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  if (from_source) *from_source = ctx->from_source;
  if (from_cache) *from_cache = ctx->from_cache;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_ctx_build_all(clcnn_ctx *ctx) {
  if (!ctx) return CLCNN_ERR_NULL_POINTER;
  clcnn__clear_error(ctx);
  for (int i = 0; i < KP_COUNT; i++)
    if (!ctx->progs[i]) {
      clcnn_status st = build_program(ctx, i);
      if (st) return st;
    }
  store_unstored(ctx);
  /* CLBlast compiles its GEMM kernels on the first call in a process: make that call now,
   * once small (its direct kernel) and once large (its indirect one). */
  cbuf a, b, c;
  const size_t n = 512;
  clcnn_status st = cbuf_alloc(ctx, &a, n * n * ctx->esz, "warm-up A");
  if (st) return st;
  if ((st = cbuf_alloc(ctx, &b, n * n * ctx->esz, "warm-up B"))) {
    cbuf_free(&a);
    return st;
  }
  if (!(st = cbuf_alloc(ctx, &c, n * n * ctx->esz, "warm-up C"))) {
    if (!(st = clcnn__zero(ctx, &a, a.bytes, "warm-up A")) && !(st = clcnn__zero(ctx, &b, b.bytes, "warm-up B")))
      for (int t = 0; t < 4 && !st; t++) /* the transpositions the layers use */
        if (!(st = clcnn__gemm(ctx, "warm-up", t & 1, t >> 1, 8, 8, 8, 1.0, &a, 0, 8, &b, 0, 8, 0.0, &c, 0, 8)))
          st = clcnn__gemm(ctx, "warm-up", t & 1, t >> 1, n, n, n, 1.0, &a, 0, n, &b, 0, n, 0.0, &c, 0, n);
    if (!st) {
      cl_int e = clFinish(ctx->queue);
      if (e != CL_SUCCESS) st = CLFAIL(ctx, e, "clFinish", "warm-up");
    }
    cbuf_free(&c);
  }
  cbuf_free(&a);
  cbuf_free(&b);
  return st;
}
