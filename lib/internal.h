/* lib/internal.h - what the library's files share; nothing here is exported. */
#ifndef CLCNN_INTERNAL_H
#define CLCNN_INTERNAL_H

#include <CL/cl.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR /* cl_khr_icd, in CL/cl_ext.h */
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn.h"

/* ---- kernel programs: one per .cl file ---- */
enum {
  KP_UTIL,
  KP_CONV2D,
  KP_ACTIVATION,
  KP_POOL2D,
  KP_SOFTMAX_XENT,
  KP_OPTIM,
  KP_BATCHNORM,
  KP_DROPOUT,
  KP_GEMM,
  KP_ADD,
  KP_UPSAMPLE,
  KP_LOSS,
  KP_YOLO,
  KP_COUNT
};

struct clcnn_embedded_file {
  const char *name; /* "conv2d.cl" */
  const char *src;
};
extern const struct clcnn_embedded_file clcnn_embedded_files[]; /* ends with {NULL, NULL} */
extern const char clcnn_kernels_stamp[]; /* checksum of the sources this library was built with */

/* ---- tracked buffers: each remembers the event of its last write and the events of the
 * reads since, so that every command waits on exactly what it depends on. ---- */
typedef struct {
  cl_mem mem;
  size_t bytes;
  clcnn_ctx *ctx; /* whose memory count it is in */
  cl_event wev;   /* last write, or NULL */
  cl_event *rev;  /* reads since the last write */
  int nr, cap;
} cbuf;

/* A list of events kept for profiling. */
typedef struct {
  cl_event *ev;
  const char **what; /* the command's name, a static string */
  int n, cap;
} evlist;

#define MAX_KERNELS 64

struct clcnn_ctx {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  clcnn_precision prec;
  size_t esz; /* sizeof(real) */
  int profiling;
  char device_name[256];
  char *kernel_path; /* explicit path, owned */
  cl_program progs[KP_COUNT];
  int from_source, from_cache; /* programs built from source, loaded from the disk cache */
  char *cache_dir;             /* the disk cache's directory, owned; NULL: none */
  int cache_state;             /* 0: not looked for yet, 1: cache_dir, -1: no disk cache */
  char unstored[KP_COUNT][33]; /* keys of programs built from source, not yet on disk ("": none) */
  struct {
    int prog;
    const char *name; /* static string */
    cl_kernel k;
  } kernels[MAX_KERNELS];
  int nkernels;
  /* wait-list scratch */
  cl_event *deps;
  int ndeps, capdeps;
  evlist *sink; /* where enqueued events go for profiling, or NULL */
  int commands, host_waits;
  size_t mem_now, mem_peak; /* device bytes in clcnn's buffers */
  size_t mem_largest;       /* the largest buffer created so far */
  size_t mem_cap;           /* refuse buffers beyond this many bytes in all (0: no cap); set by
                               the fuzz harnesses, which parse model files of any size */
  uint64_t allocations;     /* buffers created so far */
  int gemm_own;        /* 1: clcnn's GEMM kernels, 0: CLBlast: the rule where nothing is measured */
  int gemm_mode;       /* GEMM_AUTO, GEMM_MEASURE, GEMM_OWN, GEMM_CLBLAST */
  struct gemm_choice *choices; /* measured shapes: from the device's file, and by this context */
  int nchoices, capchoices, choices_loaded;
  int gemm_measured;           /* shapes this context measured */
  size_t xgemm[2][16];         /* CLBlast Xgemm parameters tuned for this device, float and double */
  double xgemm_gflops[2];      /* 0: none tuned */
  int cpu;             /* a CPU device: 2-D and 3-D kernels run in work-groups of one item */
  size_t lws;          /* work-group size of 1-D kernels */
  cbuf pack_a, pack_b; /* clcnn's GEMM: packed operands, grown to the largest GEMM seen */
  cbuf part;           /* clcnn's GEMM: split-K partial sums */
  char err[8192];
};

enum { GEMM_AUTO, GEMM_MEASURE, GEMM_OWN, GEMM_CLBLAST };
struct gemm_choice {
  unsigned char dbl, ta, tb, own;
  size_t m, n, k;
  double us_own, us_clblast; /* per product, measured */
};

/* ---- errors ---- */
clcnn_status clcnn__fail(clcnn_ctx *ctx, const char *file, int line, clcnn_status st,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define FAIL(ctx, st, ...) clcnn__fail((ctx), __FILE__, __LINE__, (st), __VA_ARGS__)
/* An OpenCL call failed: "file:line: clFoo(what): CL_NAME (-n)". */
#define CLFAIL(ctx, err, call, what) \
  clcnn__fail((ctx), __FILE__, __LINE__, (err), "%s(%s): %s (%d)", (call), (what), \
              clcnn_status_name(err), (int)(err))
void clcnn__clear_error(clcnn_ctx *ctx);
/* Write a reason into a caller's buffer (when there is one; always NUL-terminated) and return
 * st: for the calls that report without a context (data sets, files, making a context). */
clcnn_status clcnn__errf(char *err, size_t err_size, clcnn_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Write PATH as the concatenation of the pieces: into a temporary file beside it, flushed,
 * then renamed over it, so that PATH is the old file or the whole new one (safetensors.c). */
struct clcnn__piece {
  const void *data;
  size_t bytes;
};
clcnn_status clcnn__write_file(const char *path, const struct clcnn__piece *pc, int np, char *err,
                               size_t err_size);

/* ---- programs and kernels (ctx.c) ---- */
/* The kernel NAME of program PROG, built on first use and cached on the context. */
clcnn_status clcnn__kernel(clcnn_ctx *ctx, int prog, const char *name, cl_kernel *out);

/* ---- scheduling (sched.c) ---- */
clcnn_status cbuf_alloc(clcnn_ctx *ctx, cbuf *b, size_t bytes, const char *what);
void cbuf_free(cbuf *b);
void cbuf_forget(cbuf *b); /* release its events */

/* Enqueue a 1-D kernel over n items (rounded up; kernels guard), with reads and writes
 * naming the buffers it reads and writes. */
clcnn_status clcnn__run(clcnn_ctx *ctx, cl_kernel k, const char *what, size_t n,
                        cbuf *const *reads, int nreads, cbuf *const *writes, int nwrites);
/* The same over a 2-D range of n0 x n1 items (exact sizes). */
clcnn_status clcnn__run2(clcnn_ctx *ctx, cl_kernel k, const char *what, size_t n0, size_t n1,
                         cbuf *const *reads, int nreads, cbuf *const *writes, int nwrites);
/* The same over a 3-D range of exact sizes. */
clcnn_status clcnn__run3(clcnn_ctx *ctx, cl_kernel k, const char *what, const size_t gws[3],
                         cbuf *const *reads, int nreads, cbuf *const *writes, int nwrites);
/* Set kernel arguments: a list of (size, pointer) pairs, ended by 0. */
clcnn_status clcnn__args(clcnn_ctx *ctx, cl_kernel k, const char *what, ...);
/* An argument of the context's real type. */
#define REAL_ARG(ctx, v) (ctx)->esz, ((ctx)->prec == CLCNN_DOUBLE ? (void *)&(double){(v)} \
                                                                   : (void *)&(float){(float)(v)})
#define MEM_ARG(b) sizeof(cl_mem), (void *)&(b)->mem
#define INT_ARG(v) sizeof(cl_int), (void *)&(cl_int){(cl_int)(v)}

clcnn_status clcnn__write(clcnn_ctx *ctx, cbuf *b, size_t off, size_t bytes, const void *host,
                          const char *what);
clcnn_status clcnn__read(clcnn_ctx *ctx, cbuf *b, size_t off, size_t bytes, void *host,
                         const char *what);
/* The same without blocking: *ev (the caller's to release) completes when host holds the bytes. */
clcnn_status clcnn__read_async(clcnn_ctx *ctx, cbuf *b, size_t off, size_t bytes, void *host, const char *what,
                               cl_event *ev);
clcnn_status clcnn__zero(clcnn_ctx *ctx, cbuf *b, size_t bytes, const char *what);
/* Enqueue a copy of `rows` rows of row_bytes bytes, row r from src at src_off + r * src_pitch to
 * dst at dst_off + r * dst_pitch (clEnqueueCopyBufferRect), on the event chain. */
clcnn_status clcnn__copy_rect(clcnn_ctx *ctx, cbuf *dst, size_t dst_off, size_t dst_pitch, cbuf *src, size_t src_off,
                              size_t src_pitch, size_t row_bytes, size_t rows, const char *what);
clcnn_status clcnn__wait(clcnn_ctx *ctx, cbuf *b); /* wait for every pending access to b */

/* Put a command's event EV (whose reference this takes) on the chain: it read R, wrote W. */
void clcnn__commit(clcnn_ctx *ctx, cl_event ev, const char *what, cbuf *const *r, int nr,
                   cbuf *const *w, int nw);

void evlist_clear(evlist *l);
void evlist_free(evlist *l);
uint64_t evlist_ns(const evlist *l);

/* C = alpha * op(A) op(B) + beta * C, row-major, through CLBlast. */
clcnn_status clcnn__gemm(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n,
                         size_t k, double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b,
                         size_t boff, size_t ldb, double beta, cbuf *c, size_t coff, size_t ldc);

/* Make sure scratch buffer b holds bytes; it only grows (once the first step has run, a step
 * allocates nothing). OpenCL keeps a replaced buffer alive for the commands still using it. */
clcnn_status clcnn__reserve(clcnn_ctx *ctx, cbuf *b, size_t bytes, const char *what);
/* The context's scratch for partial sums (split K, narrow weight gradients). */
cbuf *clcnn__scratch(clcnn_ctx *ctx);
/* clcnn's GEMM with B already packed in 64-column panels of kbs rows (this product's K rows
 * from row koff): a conv's im2col writes that layout directly (CPU devices only). */
/* Which GEMM computes this product (lib/gemm_choice.c): *own = 1 for clcnn's, 0 for CLBlast. In
 * GEMM_MEASURE mode a shape not yet in the device's file is measured now (both, blocking) and
 * written there. */
clcnn_status clcnn__gemm_pick(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, int *own);
/* Read the device's GEMM file (tuned CLBlast parameters, measured shapes) and apply it. */
void clcnn__gemm_choices_load(clcnn_ctx *ctx);
/* The GEMM choice file's text S (NUL-ended; changed in place) into the context, for the device
 * KEY; 0, or -1 with the line and why in WHY, and then the context keeps no record of it. */
int clcnn__gemm_choices_parse(clcnn_ctx *ctx, char *s, const char *key, char *why, size_t wsize);
/* The two GEMMs themselves (lib/gemm.c). */
clcnn_status clcnn__gemm_own(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n, size_t k,
                             double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b, size_t boff, size_t ldb,
                             double beta, cbuf *c, size_t coff, size_t ldc);
clcnn_status clcnn__gemm_clblast(clcnn_ctx *ctx, const char *what, int ta, int tb, size_t m, size_t n, size_t k,
                                 double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *b, size_t boff, size_t ldb,
                                 double beta, cbuf *c, size_t coff, size_t ldc);
/* The disk cache's directory (NULL: none), and the key of the device, driver and clcnn's GEMM
 * kernels (lib/ctx.c). */
const char *clcnn__cache_dir(clcnn_ctx *ctx);
void clcnn__device_key(clcnn_ctx *ctx, char key[33]);
/* Why the program cache entry BUF (SIZE bytes) cannot be the entry for KEY (32 hex digits):
 * a static string, or NULL when its header and checksum are right. */
const char *clcnn__cache_entry_check(const unsigned char *buf, size_t size, const char *key);

/* c[coff + i*ldc + j] (ct: c[coff + j*ldc + i]) = alpha * the sum over s < splits, in order, of
 * part[s][i][j] (parts mp x np) + beta * c, for i < m, j < n: the fixed-order sum of partial
 * results (split-K GEMMs, chunked reductions). */
clcnn_status clcnn__reduce(clcnn_ctx *ctx, cbuf *c, size_t coff, size_t ldc, cbuf *part, size_t m, size_t n,
                           size_t splits, size_t mp, size_t np, double alpha, double beta, int ct);
clcnn_status clcnn__gemm_packed_b(clcnn_ctx *ctx, const char *what, int ta, size_t m, size_t n, size_t k,
                                  double alpha, cbuf *a, size_t aoff, size_t lda, cbuf *bp, size_t kbs,
                                  size_t koff, double beta, cbuf *c, size_t coff, size_t ldc);
/* dW (ocg x cgkk, at dwoff, row length cgkk) += dY (ocg x k, at dyoff, row length k) . col^T, col
 * being rows roff.. of a packed im2col of ckk rows; computed as its transpose so that the long
 * im2col streams as the GEMM's A (CPU devices). */
clcnn_status clcnn__gemm_wgrad_colp(clcnn_ctx *ctx, cbuf *colp, size_t ckk, size_t roff, size_t cgkk, size_t k,
                                    cbuf *dy, size_t dyoff, size_t ocg, cbuf *dw, size_t dwoff);

/* ---- memory estimates (clcnn_net_memory_estimate) ----
 * The context's scratch buffers that a step grows, in bytes: each only grows, to the largest
 * request (clcnn__reserve), so a step needs the maximum of each over its products. transient:
 * the most allocated and freed again within the step (the operands of a GEMM measurement). */
struct scratch_need {
  size_t pack_a, pack_b, part, transient;
};
static inline void clcnn__need(size_t *have, size_t bytes) {
  if (bytes > *have) *have = bytes;
}
/* Which GEMM clcnn__gemm_pick() takes for this product, without measuring: 1 clcnn's, 0
 * CLBlast's, -1 not known until it is measured (GEMM_MEASURE, a shape not in the file). */
int clcnn__gemm_known(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k);
/* What clcnn__gemm(), clcnn__gemm_packed_b() and clcnn__gemm_wgrad_colp() reserve when called
 * with these sizes: added to need as maxima (both GEMMs' when the choice is not known). */
void clcnn__gemm_need(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, struct scratch_need *need);
void clcnn__gemm_packed_b_need(clcnn_ctx *ctx, size_t m, size_t n, size_t k, struct scratch_need *need);
void clcnn__gemm_wgrad_colp_need(clcnn_ctx *ctx, size_t cgkk, size_t k, size_t ocg, struct scratch_need *need);

/* ---- what other parts of the library see of a net (net.c) ---- */
clcnn_ctx *clcnn__net_ctx(clcnn_net *net);
/* The data-parallel group a net is in (lib/replicas.c): net.c tells it when a node's backward
 * has been enqueued (its parameters FIRST.. FIRST+NPAR-1 have their gradients) and when a whole
 * backward of N samples has; a net destroyed while in a group leaves it. */
void clcnn__net_set_group(clcnn_net *net, struct clcnn_replicas *g, int index);
int clcnn__net_in_group(const clcnn_net *net);
clcnn_status clcnn__replicas_grads_ready(struct clcnn_replicas *g, int index, int first, int npar);
void clcnn__replicas_backward_done(struct clcnn_replicas *g, int index, int n);
void clcnn__replicas_detach(struct clcnn_replicas *g, int index);
/* Parameter i's value and gradient buffers and its element count. */
clcnn_status clcnn__net_param(clcnn_net *net, int i, cbuf **value, cbuf **grad, size_t *count);

#endif
