/* tests/test_fault.c - the device failing: the k-th OpenCL allocation, program build or enqueue
 * fails, for every k that net creation and a first training step (forward, backward, optimizer
 * step) reach. Each time the call that met the fault returns an error whose text names the
 * OpenCL call, every OpenCL object made is released again, and a fresh context and net train
 * to the same loss as a run without faults. Also: a kernel source that does not compile gives
 * the compiler's log and is never cached.
 *
 * The failure point is an interposer: this program defines clCreateBuffer, clBuildProgram,
 * clEnqueueNDRangeKernel... itself and is linked with --export-dynamic, so libclcnn's calls
 * (and CLBlast's) resolve here first; each forwards to the real function (dlsym(RTLD_NEXT))
 * unless it is the call chosen to fail. No LD_PRELOAD, so it also runs under AddressSanitizer.
 * The interposer counts the OpenCL objects alive, which is the leak check for the device side;
 * host memory is LeakSanitizer's (an ASan build, tests/lsan.supp).
 *
 * CLCNN_FAULT=alloc:K, build:K or enqueue:K runs only that one case (for reproducing one);
 * CLCNN_FAULT=source only the broken kernel source. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <CL/cl.h>

#include "clcnn.h"
#include "tap.h"

/* ---- the interposer ---- */
enum { F_ALLOC, F_BUILD, F_ENQUEUE, F_CLASSES };
static const char *const class_names[F_CLASSES] = {"alloc", "build", "enqueue"};
static long calls[F_CLASSES];    /* calls of each class so far */
static long fail_at[F_CLASSES];  /* the call (1-based) that fails; 0: none */
static const char *failed_call;  /* the name of the call that was made to fail */
static long failed_code;
/* OpenCL objects alive: buffers, programs, kernels, events, contexts, queues */
enum { O_MEM, O_PROGRAM, O_KERNEL, O_EVENT, O_CONTEXT, O_QUEUE, O_KINDS };
static const char *const kind_names[O_KINDS] = {"buffers", "programs", "kernels", "events", "contexts", "queues"};
static long alive[O_KINDS];

static void *real_fn(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) {
    printf("Bail out! dlsym(RTLD_NEXT, %s) found nothing\n", name);
    exit(1);
  }
  return f;
}
#define REAL(name) static __typeof__(name) *real_; if (!real_) real_ = (__typeof__(name) *)real_fn(#name)

/* Whether this call of class C (named NAME) is the one to fail with CODE. */
static int fault(int c, const char *name, cl_int code) {
  if (++calls[c] != fail_at[c]) return 0;
  failed_call = name;
  failed_code = code;
  return 1;
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size, void *host_ptr,
                                               cl_int *errcode_ret) {
  REAL(clCreateBuffer);
  if (fault(F_ALLOC, "clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE)) {
    if (errcode_ret) *errcode_ret = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    return NULL;
  }
  cl_int e;
  cl_mem m = real_(context, flags, size, host_ptr, &e);
  if (errcode_ret) *errcode_ret = e;
  if (m) alive[O_MEM]++;
  return m;
}
CL_API_ENTRY cl_int CL_API_CALL clRetainMemObject(cl_mem m) {
  REAL(clRetainMemObject);
  cl_int e = real_(m);
  if (e == CL_SUCCESS) alive[O_MEM]++;
  return e;
}
CL_API_ENTRY cl_int CL_API_CALL clReleaseMemObject(cl_mem m) {
  REAL(clReleaseMemObject);
  cl_int e = real_(m);
  if (e == CL_SUCCESS) alive[O_MEM]--;
  return e;
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithSource(cl_context context, cl_uint count, const char **strings,
                                                              const size_t *lengths, cl_int *errcode_ret) {
  REAL(clCreateProgramWithSource);
  if (fault(F_BUILD, "clCreateProgramWithSource", CL_OUT_OF_HOST_MEMORY)) {
    if (errcode_ret) *errcode_ret = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  cl_int e;
  cl_program p = real_(context, count, strings, lengths, &e);
  if (errcode_ret) *errcode_ret = e;
  if (p) alive[O_PROGRAM]++;
  return p;
}
CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithBinary(cl_context context, cl_uint num_devices,
                                                              const cl_device_id *device_list, const size_t *lengths,
                                                              const unsigned char **binaries, cl_int *binary_status,
                                                              cl_int *errcode_ret) {
  REAL(clCreateProgramWithBinary);
  if (fault(F_BUILD, "clCreateProgramWithBinary", CL_OUT_OF_HOST_MEMORY)) {
    if (errcode_ret) *errcode_ret = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  cl_int e;
  cl_program p = real_(context, num_devices, device_list, lengths, binaries, binary_status, &e);
  if (errcode_ret) *errcode_ret = e;
  if (p) alive[O_PROGRAM]++;
  return p;
}
CL_API_ENTRY cl_int CL_API_CALL clBuildProgram(cl_program program, cl_uint num_devices, const cl_device_id *device_list,
                                               const char *options, void(CL_CALLBACK *notify)(cl_program, void *),
                                               void *user_data) {
  REAL(clBuildProgram);
  if (fault(F_BUILD, "clBuildProgram", CL_OUT_OF_RESOURCES)) return CL_OUT_OF_RESOURCES;
  return real_(program, num_devices, device_list, options, notify, user_data);
}
CL_API_ENTRY cl_int CL_API_CALL clRetainProgram(cl_program p) {
  REAL(clRetainProgram);
  cl_int e = real_(p);
  if (e == CL_SUCCESS) alive[O_PROGRAM]++;
  return e;
}
CL_API_ENTRY cl_int CL_API_CALL clReleaseProgram(cl_program p) {
  REAL(clReleaseProgram);
  cl_int e = real_(p);
  if (e == CL_SUCCESS) alive[O_PROGRAM]--;
  return e;
}
CL_API_ENTRY cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *name, cl_int *errcode_ret) {
  REAL(clCreateKernel);
  if (fault(F_BUILD, "clCreateKernel", CL_OUT_OF_HOST_MEMORY)) {
    if (errcode_ret) *errcode_ret = CL_OUT_OF_HOST_MEMORY;
    return NULL;
  }
  cl_int e;
  cl_kernel k = real_(program, name, &e);
  if (errcode_ret) *errcode_ret = e;
  if (k) alive[O_KERNEL]++;
  return k;
}
CL_API_ENTRY cl_int CL_API_CALL clRetainKernel(cl_kernel k) {
  REAL(clRetainKernel);
  cl_int e = real_(k);
  if (e == CL_SUCCESS) alive[O_KERNEL]++;
  return e;
}
CL_API_ENTRY cl_int CL_API_CALL clReleaseKernel(cl_kernel k) {
  REAL(clReleaseKernel);
  cl_int e = real_(k);
  if (e == CL_SUCCESS) alive[O_KERNEL]--;
  return e;
}

/* An enqueue: fails before the real call, or counts the event it makes. */
#define ENQUEUE(name, event, call)                                            \
  do {                                                                        \
    REAL(name);                                                               \
    if (fault(F_ENQUEUE, #name, CL_OUT_OF_RESOURCES)) return CL_OUT_OF_RESOURCES; \
    cl_int e_ = call;                                                         \
    if (e_ == CL_SUCCESS && (event)) alive[O_EVENT]++;                        \
    return e_;                                                                \
  } while (0)

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim, const size_t *off,
                                                       const size_t *gws, const size_t *lws, cl_uint nev,
                                                       const cl_event *wait, cl_event *ev) {
  ENQUEUE(clEnqueueNDRangeKernel, ev, real_(q, k, dim, off, gws, lws, nev, wait, ev));
}
CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue q, cl_mem b, cl_bool block, size_t off, size_t n,
                                                     const void *p, cl_uint nev, const cl_event *wait, cl_event *ev) {
  ENQUEUE(clEnqueueWriteBuffer, ev, real_(q, b, block, off, n, p, nev, wait, ev));
}
CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue q, cl_mem b, cl_bool block, size_t off, size_t n,
                                                    void *p, cl_uint nev, const cl_event *wait, cl_event *ev) {
  ENQUEUE(clEnqueueReadBuffer, ev, real_(q, b, block, off, n, p, nev, wait, ev));
}
CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyBuffer(cl_command_queue q, cl_mem s, cl_mem d, size_t so, size_t dof,
                                                    size_t n, cl_uint nev, const cl_event *wait, cl_event *ev) {
  ENQUEUE(clEnqueueCopyBuffer, ev, real_(q, s, d, so, dof, n, nev, wait, ev));
}
CL_API_ENTRY cl_int CL_API_CALL clEnqueueFillBuffer(cl_command_queue q, cl_mem b, const void *pat, size_t psize,
                                                    size_t off, size_t n, cl_uint nev, const cl_event *wait,
                                                    cl_event *ev) {
  ENQUEUE(clEnqueueFillBuffer, ev, real_(q, b, pat, psize, off, n, nev, wait, ev));
}
CL_API_ENTRY cl_int CL_API_CALL clRetainEvent(cl_event e) {
  REAL(clRetainEvent);
  cl_int r = real_(e);
  if (r == CL_SUCCESS) alive[O_EVENT]++;
  return r;
}
CL_API_ENTRY cl_int CL_API_CALL clReleaseEvent(cl_event e) {
  REAL(clReleaseEvent);
  cl_int r = real_(e);
  if (r == CL_SUCCESS) alive[O_EVENT]--;
  return r;
}
CL_API_ENTRY cl_context CL_API_CALL clCreateContext(const cl_context_properties *props, cl_uint ndev,
                                                    const cl_device_id *devs,
                                                    void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *),
                                                    void *user_data, cl_int *errcode_ret) {
  REAL(clCreateContext);
  cl_context c = real_(props, ndev, devs, notify, user_data, errcode_ret);
  if (c) alive[O_CONTEXT]++;
  return c;
}
CL_API_ENTRY cl_int CL_API_CALL clReleaseContext(cl_context c) {
  REAL(clReleaseContext);
  cl_int e = real_(c);
  if (e == CL_SUCCESS) alive[O_CONTEXT]--;
  return e;
}
CL_API_ENTRY cl_command_queue CL_API_CALL clCreateCommandQueue(cl_context c, cl_device_id d,
                                                               cl_command_queue_properties props, cl_int *errcode_ret) {
  REAL(clCreateCommandQueue);
  cl_command_queue q = real_(c, d, props, errcode_ret);
  if (q) alive[O_QUEUE]++;
  return q;
}
CL_API_ENTRY cl_int CL_API_CALL clReleaseCommandQueue(cl_command_queue q) {
  REAL(clReleaseCommandQueue);
  cl_int e = real_(q);
  if (e == CL_SUCCESS) alive[O_QUEUE]--;
  return e;
}

/* ---- the scenario: a small net made and trained for one step ---- */
#define BATCH 4
static const char model[] =
    "input 2 8 8\n"
    "conv 4 kernel=3 pad=1\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "linear 3\n";

struct outcome {
  clcnn_status st;   /* the first failing call's status, or success */
  const char *where; /* which API call failed */
  char err[8192];    /* its error text */
  double loss;       /* on success */
};

/* Make a context and the net, take one SGD step with momentum, read the loss; release all. */
static void scenario(struct outcome *o) {
  static double x[BATCH * 2 * 8 * 8];
  static const int32_t labels[BATCH] = {0, 2, 1, 2};
  for (int i = 0; i < BATCH * 2 * 8 * 8; i++) x[i] = ((i * 37) % 23 - 11) / 7.0;
  memset(o, 0, sizeof *o);
  o->where = "";
  clcnn_ctx *ctx = NULL;
  clcnn_net *net = NULL;
  clcnn_optim *opt = NULL;
  clcnn_ctx_options co = {.precision = CLCNN_DOUBLE, .gemm = "clcnn"};
  clcnn_optim_params op;
  clcnn_optim_defaults(CLCNN_OPTIM_SGD, &op);
  op.momentum = 0.9;
  clcnn_status st;
#define STEP(name, call)                                                           \
  if (!st) {                                                                       \
    st = (call);                                                                   \
    if (st) o->where = name, snprintf(o->err, sizeof o->err, "%s", clcnn_ctx_last_error(ctx)); \
  }
  st = clcnn_ctx_create(&ctx, &co, o->err, sizeof o->err);
  if (st) o->where = "clcnn_ctx_create";
  if (!st) {
    st = clcnn_net_from_text(ctx, model, "fault.txt", BATCH, &net, o->err, sizeof o->err);
    if (st) o->where = "clcnn_net_from_text";
  }
  STEP("clcnn_net_init_params", clcnn_net_init_params(net, 7));
  STEP("clcnn_optim_create", clcnn_optim_create(net, &op, &opt));
  STEP("clcnn_net_forward", clcnn_net_forward(net, x, BATCH));
  STEP("clcnn_net_backward", clcnn_net_backward(net, labels));
  STEP("clcnn_optim_step", clcnn_optim_step(opt));
  STEP("clcnn_net_forward (2)", clcnn_net_forward(net, x, BATCH));
  STEP("clcnn_net_backward (2)", clcnn_net_backward(net, labels));
  STEP("clcnn_net_loss", clcnn_net_loss(net, &o->loss));
#undef STEP
  o->st = st;
  clcnn_optim_destroy(opt);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
}

/* Every OpenCL object made since the counts were zero has been released. */
static int all_released(char *what, size_t size) {
  int ok = 1;
  what[0] = 0;
  for (int i = 0; i < O_KINDS; i++)
    if (alive[i]) {
      size_t n = strlen(what);
      snprintf(what + n, size - n, "%s%ld %s", ok ? "" : ", ", alive[i], kind_names[i]);
      ok = 0;
    }
  return ok;
}

static double clean_loss;

/* Run the scenario with call K of class C failing, then a clean one; check both. */
static int one_case(int c, long k, int quiet) {
  struct outcome o;
  memset(calls, 0, sizeof calls);
  memset(fail_at, 0, sizeof fail_at);
  fail_at[c] = k;
  failed_call = NULL;
  scenario(&o);
  fail_at[c] = 0;
  char leak[256];
  int released = all_released(leak, sizeof leak);
  int ok = 1;
  char why[9000] = "";
  char code[64];
  snprintf(code, sizeof code, "%s", clcnn_status_name((clcnn_status)failed_code));
  if (!failed_call) {
    ok = 0;
    snprintf(why, sizeof why, "only %ld %s calls were made", calls[c], class_names[c]);
  } else if (!o.st) {
    ok = 0;
    snprintf(why, sizeof why, "%s failed and the scenario still succeeded", failed_call);
  } else if (!strstr(o.err, failed_call) || !strstr(o.err, code)) {
    ok = 0;
    snprintf(why, sizeof why, "%s failed with %s; %s returned %s with '%s', not naming both", failed_call, code,
             o.where, clcnn_status_name(o.st), o.err);
  } else if (!released) {
    ok = 0;
    snprintf(why, sizeof why, "%s failed in %s; left alive: %s", failed_call, o.where, leak);
  }
  /* the next context works */
  struct outcome again;
  scenario(&again);
  if (ok && (again.st || again.loss != clean_loss)) {
    ok = 0;
    snprintf(why, sizeof why, "afterwards a fresh context %s (%s), loss %.17g, not %.17g",
             again.st ? "fails" : "trains", again.err, again.loss, clean_loss);
  }
  if (ok && !all_released(leak, sizeof leak)) {
    ok = 0;
    snprintf(why, sizeof why, "the clean run afterwards left alive: %s", leak);
  }
  memset(alive, 0, sizeof alive); /* one leak is reported once */
  if (!ok || !quiet)
    tap_ok(ok, "%s %ld (%s in %s): %s", class_names[c], k, failed_call ? failed_call : "-", o.where,
           ok ? o.err : why);
  return ok;
}

/* ---- a kernel source that does not compile ---- */
/* Copy FROM to TO, putting INSERT after the first line that ends in INSERT_AFTER (NULL: none);
 * the line number INSERT gets, or 0 (not copied, or no such line). */
static int copy_file(const char *from, const char *to, const char *insert_after, const char *insert) {
  FILE *in = fopen(from, "r"), *out = in ? fopen(to, "w") : NULL;
  if (!out) {
    if (in) fclose(in);
    return 0;
  }
  char line[4096];
  int n = 0, at = insert_after ? 0 : -1;
  while (fgets(line, sizeof line, in)) {
    fputs(line, out);
    n++;
    size_t len = strlen(line), il = insert_after ? strlen(insert_after) : 0;
    if (!at && len >= il && !strcmp(line + len - il, insert_after)) {
      fputs(insert, out);
      at = ++n;
    }
  }
  fclose(in);
  return fclose(out) == 0 && at ? at : 0;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".clbin")) n++;
  closedir(d);
  return n;
}

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[4400];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  closedir(d);
  rmdir(dir);
}

static const char *const cl_files[] = {"util.cl", "conv2d.cl", "activation.cl", "pool2d.cl", "softmax_xent.cl",
                                       "optim.cl", "batchnorm.cl", "dropout.cl", "gemm.cl"};

/* $CLCNN_KERNEL_PATH copied, with a syntax error in conv2d.cl: the build fails with the
 * compiler's log, and the disk cache keeps the programs that built, never the broken one. */
static void broken_kernel(const char *base) {
  const char *src = getenv("CLCNN_KERNEL_PATH");
  if (!src) tap_bail("CLCNN_KERNEL_PATH is not set (make check sets it to the sources' cl/)");
  char cl[4200], cache[4200], conv[4300];
  snprintf(cl, sizeof cl, "%s/cl", base);
  snprintf(cache, sizeof cache, "%s/broken-cache", base);
  snprintf(conv, sizeof conv, "%s/conv2d.cl", cl);
  mkdir(cl, 0700);
  mkdir(cache, 0700);
  int copied = 1, bad_line = 0;
  for (size_t i = 0; i < sizeof cl_files / sizeof cl_files[0]; i++) {
    char from[4200], to[4300];
    snprintf(from, sizeof from, "%s/%s", src, cl_files[i]);
    snprintf(to, sizeof to, "%s/%s", cl, cl_files[i]);
    /* a statement missing an operand, after the first line that opens a block: a kernel's body */
    int conv2d = !strcmp(cl_files[i], "conv2d.cl");
    int at = copy_file(from, to, conv2d ? "{\n" : NULL, "  int clcnn_broken = (1 + );\n");
    if (!at) copied = 0;
    if (conv2d) bad_line = at;
  }
  tap_ok(copied && bad_line > 0, "a copy of %s with a syntax error in conv2d.cl, line %d", src, bad_line);
  /* the log names the line (the prelude ends in '#line 1', so the file's own numbers) */
  char where[32];
  snprintf(where, sizeof where, ":%d:", bad_line);
  setenv("CLCNN_CACHE_DIR", cache, 1);
  for (int round = 1; round <= 2; round++) {
    clcnn_ctx *ctx = NULL;
    clcnn_ctx_options co = {.precision = CLCNN_DOUBLE, .kernel_path = cl};
    char err[512];
    clcnn_status st = clcnn_ctx_create(&ctx, &co, err, sizeof err);
    if (st) tap_bail(err);
    clcnn_net *net = NULL;
    double x[BATCH * 2 * 8 * 8] = {0};
    st = clcnn_net_from_text(ctx, model, "fault.txt", BATCH, &net, err, sizeof err);
    if (!st) st = clcnn_net_forward(net, x, BATCH);
    const char *e = clcnn_ctx_last_error(ctx);
    int logged = st == CLCNN_ERR_BUILD && strstr(e, "clBuildProgram") && strstr(e, conv) &&
                 strstr(e, "CL_BUILD_PROGRAM_FAILURE") && strstr(e, where) && strstr(e, "error") &&
                 !strstr(e, "(no build log)");
    tap_ok(logged, "round %d: the first forward is CLCNN_ERR_BUILD naming conv2d.cl, with the log's line %d", round,
           bad_line);
    if (!logged || round == 1) tap_diag("%s: %s", clcnn_status_name(st), e);
    /* every program but the broken one builds, and the next forward fails the same way */
    st = clcnn_ctx_build_all(ctx);
    tap_ok(st == CLCNN_ERR_BUILD && strstr(clcnn_ctx_last_error(ctx), conv) &&
               clcnn_net_forward(net, x, BATCH) == CLCNN_ERR_BUILD && strstr(clcnn_ctx_last_error(ctx), where),
           "round %d: clcnn_ctx_build_all and a second forward fail on it too", round);
    int from_source = -1, from_cache = -1;
    clcnn_ctx_build_stats(ctx, &from_source, &from_cache);
    clcnn_net_destroy(net);
    clcnn_ctx_destroy(ctx); /* writes the programs built from source to the disk cache */
    /* round 1 built util.cl from source (build_all's order), round 2 found it in the cache;
     * conv2d.cl never built, so nothing of it is on the disk for a later context to load */
    int entries = count_entries(cache);
    tap_ok(from_source + from_cache == 1 && entries == 1 && (round == 1 ? from_source : from_cache) == 1,
           "round %d: %d program built from source, %d from the cache; the cache holds %d entry", round, from_source,
           from_cache, entries);
    char leak[256];
    tap_ok(all_released(leak, sizeof leak), "round %d: every OpenCL object released %s", round, leak);
    memset(alive, 0, sizeof alive);
  }
  for (size_t i = 0; i < sizeof cl_files / sizeof cl_files[0]; i++) {
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", cl, cl_files[i]);
    unlink(p);
  }
  rmdir(cl);
  rm_dir(cache);
}

/* Sweep class C: call k failing, for every k of the TOTAL calls of a run. */
static void sweep(int c, long total) {
  int good = 0;
  for (long k = 1; k <= total; k++) good += one_case(c, k, 1);
  tap_ok(good == total,
         "%s: each of the %ld calls failing in turn gives an error naming it, no leak, and a working context after (%d "
         "right)", class_names[c], total, good);
}

/* A run without faults: the loss and the calls of each class. */
static void count_calls(long total[F_CLASSES]) {
  struct outcome o;
  memset(calls, 0, sizeof calls);
  scenario(&o);
  if (o.st) {
    printf("Bail out! the scenario fails without a fault: %s: %s\n", o.where, o.err);
    exit(1);
  }
  if (clean_loss != 0 && o.loss != clean_loss) tap_ok(0, "the same loss with the disk cache as without");
  clean_loss = o.loss;
  memcpy(total, calls, F_CLASSES * sizeof *total);
}

int main(void) {
  const char *only = getenv("CLCNN_FAULT");
  char base[] = "/tmp/clcnn-fault-XXXXXX", cache[64];
  if (!mkdtemp(base)) tap_bail("mkdtemp");
  snprintf(cache, sizeof cache, "%s/cache", base);
  if (only && !strcmp(only, "source")) {
    broken_kernel(base);
    rmdir(base);
    return tap_done();
  }
  /* Programs built from source (the disk cache off): every build call is reached in every run. */
  setenv("CLCNN_CACHE_DIR", "off", 1);
  long src_total[F_CLASSES], total[F_CLASSES];
  count_calls(src_total);
  char leak[256];
  tap_ok(all_released(leak, sizeof leak), "without faults every OpenCL object is released %s", leak);
  tap_diag("a run building from source: %ld allocations, %ld build calls, %ld enqueues; loss %.17g",
           src_total[F_ALLOC], src_total[F_BUILD], src_total[F_ENQUEUE], clean_loss);
  tap_ok(src_total[F_ALLOC] > 10 && src_total[F_BUILD] > 10 && src_total[F_ENQUEUE] > 20,
         "the run reaches every class of call");
  if (only) {
    char cls[16];
    long k;
    int c = -1;
    if (sscanf(only, "%15[a-z]:%ld", cls, &k) == 2)
      for (int i = 0; i < F_CLASSES; i++)
        if (!strcmp(cls, class_names[i])) c = i;
    if (c < 0 || k < 1) tap_bail("CLCNN_FAULT is not alloc:K, build:K, enqueue:K or source");
    one_case(c, k, 0);
    rmdir(base);
    return tap_done();
  }
  sweep(F_BUILD, src_total[F_BUILD]);
  /* The allocations and enqueues with the programs from a disk cache (a run is ten times
   * faster); the first run fills it. */
  mkdir(cache, 0700);
  setenv("CLCNN_CACHE_DIR", cache, 1);
  count_calls(total);
  count_calls(total);
  tap_ok(total[F_ALLOC] == src_total[F_ALLOC] && total[F_ENQUEUE] == src_total[F_ENQUEUE],
         "with the disk cache the run makes the same allocations and enqueues");
  sweep(F_ALLOC, total[F_ALLOC]);
  sweep(F_ENQUEUE, total[F_ENQUEUE]);
  /* one past the last of each class: nothing fails, so the counts cover the whole run */
  for (int c = 0; c < F_CLASSES; c++) {
    struct outcome o;
    memset(calls, 0, sizeof calls);
    fail_at[c] = total[c] + 1;
    failed_call = NULL;
    scenario(&o);
    fail_at[c] = 0;
    tap_ok(!o.st && !failed_call && o.loss == clean_loss, "%s %ld, past the last: the run succeeds", class_names[c],
           total[c] + 1);
  }
  /* a program in the cache that the driver will not take back is built from source instead */
  memset(calls, 0, sizeof calls);
  memset(alive, 0, sizeof alive);
  fail_at[F_BUILD] = 1;
  failed_call = NULL;
  struct outcome o;
  scenario(&o);
  fail_at[F_BUILD] = 0;
  tap_ok(failed_call && !strcmp(failed_call, "clCreateProgramWithBinary") && !o.st && o.loss == clean_loss &&
             all_released(leak, sizeof leak),
         "a cached program the driver refuses (%s) is built from source: the run succeeds %s",
         failed_call ? failed_call : "no call failed", leak);
  rm_dir(cache);
  broken_kernel(base);
  rmdir(base);
  return tap_done();
}
