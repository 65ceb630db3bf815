/* lib/sched.c - the event chain. Every buffer remembers the event of its last write and the
 * events of the reads since; a command that reads a buffer waits for its last write, a
 * command that writes one waits for its last write and for every read since (no
 * write-after-read hazard even on an out-of-order queue). Nothing here blocks the host except
 * clcnn__read and clcnn__wait, which count as host waits. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

clcnn_status cbuf_alloc(clcnn_ctx *ctx, cbuf *b, size_t bytes, const char *what) {
  memset(b, 0, sizeof *b);
  if (!bytes) bytes = ctx->esz; /* OpenCL refuses empty buffers */
  if (ctx->mem_cap && (bytes > ctx->mem_cap || ctx->mem_now > ctx->mem_cap - bytes))
    return clcnn__fail(ctx, __FILE__, __LINE__, CL_MEM_OBJECT_ALLOCATION_FAILURE,
                       "clCreateBuffer(%s, %zu bytes): over the context's cap of %zu bytes "
                       "(%zu in use)", what, bytes, ctx->mem_cap, ctx->mem_now);
  cl_int e;
  b->mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &e);
  if (e != CL_SUCCESS) {
    b->mem = NULL;
    return clcnn__fail(ctx, __FILE__, __LINE__, e, "clCreateBuffer(%s, %zu bytes): %s (%d)", what,
                       bytes, clcnn_status_name(e), e);
  }
  b->bytes = bytes;
  b->ctx = ctx;
  ctx->mem_now += bytes;
  if (ctx->mem_now > ctx->mem_peak) ctx->mem_peak = ctx->mem_now;
  if (bytes > ctx->mem_largest) ctx->mem_largest = bytes;
  ctx->allocations++;
  return CLCNN_SUCCESS;
}

void cbuf_forget(cbuf *b) {
  if (b->wev) clReleaseEvent(b->wev);
  b->wev = NULL;
  for (int i = 0; i < b->nr; i++) clReleaseEvent(b->rev[i]);
  b->nr = 0;
}

void cbuf_free(cbuf *b) {
  cbuf_forget(b);
  free(b->rev);
  if (b->mem) {
    clReleaseMemObject(b->mem);
    if (b->ctx) b->ctx->mem_now -= b->bytes;
  }
  memset(b, 0, sizeof *b);
}

static clcnn_status dep_add(clcnn_ctx *ctx, cl_event ev) {
  if (!ev) return CLCNN_SUCCESS;
  for (int i = 0; i < ctx->ndeps; i++)
    if (ctx->deps[i] == ev) return CLCNN_SUCCESS;
  if (ctx->ndeps == ctx->capdeps) {
    int cap = ctx->capdeps ? ctx->capdeps * 2 : 32;
    cl_event *n = realloc(ctx->deps, cap * sizeof *n);
    if (!n) return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (wait list)");
    ctx->deps = n;
    ctx->capdeps = cap;
  }
  ctx->deps[ctx->ndeps++] = ev;
  return CLCNN_SUCCESS;
}

/* Gather the wait list of a command reading R and writing W into ctx->deps. */
static clcnn_status gather(clcnn_ctx *ctx, cbuf *const *r, int nr, cbuf *const *w, int nw) {
  clcnn_status st = CLCNN_SUCCESS;
  ctx->ndeps = 0;
  for (int i = 0; i < nr && !st; i++) st = dep_add(ctx, r[i]->wev);
  for (int i = 0; i < nw && !st; i++) {
    st = dep_add(ctx, w[i]->wev);
    for (int j = 0; j < w[i]->nr && !st; j++) st = dep_add(ctx, w[i]->rev[j]);
  }
  return st;
}

static void note_read(cbuf *b, cl_event ev) {
  if (b->nr == b->cap) {
    int cap = b->cap ? b->cap * 2 : 8;
    cl_event *n = realloc(b->rev, cap * sizeof *n);
    if (!n) {
      /* Can't remember this read: wait for it now rather than lose the dependency. */
      clWaitForEvents(1, &ev);
      return;
    }
    b->rev = n;
    b->cap = cap;
  }
  clRetainEvent(ev);
  b->rev[b->nr++] = ev;
}

static void note_write(cbuf *b, cl_event ev) {
  cbuf_forget(b);
  clRetainEvent(ev);
  b->wev = ev;
}

/* Record the finished enqueue: EV is owned by the caller's reference, which this consumes. */
void clcnn__commit(clcnn_ctx *ctx, cl_event ev, const char *what, cbuf *const *r, int nr,
                   cbuf *const *w, int nw) {
  for (int i = 0; i < nr; i++) {
    int also_written = 0;
    for (int j = 0; j < nw; j++) also_written |= w[j] == r[i];
    if (!also_written) note_read(r[i], ev);
  }
  for (int i = 0; i < nw; i++) note_write(w[i], ev);
  ctx->commands++;
  if (ctx->sink) {
    evlist *l = ctx->sink;
    if (l->n == l->cap) {
      int cap = l->cap ? l->cap * 2 : 8;
      cl_event *n = realloc(l->ev, cap * sizeof *n);
      if (n) l->ev = n;
      const char **w = realloc(l->what, cap * sizeof *w);
      if (w) l->what = w;
      if (n && w) l->cap = cap;
    }
    if (l->n < l->cap) {
      l->what[l->n] = what;
      l->ev[l->n++] = ev;
      return; /* the list keeps the reference */
    }
  }
  clReleaseEvent(ev);
}

clcnn_status clcnn__args(clcnn_ctx *ctx, cl_kernel k, const char *what, ...) {
  va_list ap;
  va_start(ap, what);
  cl_uint i = 0;
  for (;;) {
    size_t size = va_arg(ap, size_t);
    if (!size) break;
    const void *p = va_arg(ap, const void *);
    cl_int e = clSetKernelArg(k, i, size, p);
    if (e != CL_SUCCESS) {
      va_end(ap);
      return clcnn__fail(ctx, __FILE__, __LINE__, e, "clSetKernelArg(%s, arg %u): %s (%d)", what, i,
                         clcnn_status_name(e), e);
    }
    i++;
  }
  va_end(ap);
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__run(clcnn_ctx *ctx, cl_kernel k, const char *what, size_t n,
                        cbuf *const *r, int nr, cbuf *const *w, int nw) {
  if (n == 0) return CLCNN_SUCCESS;
  clcnn_status st = gather(ctx, r, nr, w, nw);
  if (st) return st;
  size_t lws = ctx->lws, gws = (n + lws - 1) / lws * lws;
  cl_event ev;
  cl_int e = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &gws, &lws, (cl_uint)ctx->ndeps,
                                    ctx->ndeps ? ctx->deps : NULL, &ev);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clEnqueueNDRangeKernel", what);
  clcnn__commit(ctx, ev, what, r, nr, w, nw);
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__run3(clcnn_ctx *ctx, cl_kernel k, const char *what, const size_t gws[3],
                         cbuf *const *r, int nr, cbuf *const *w, int nw) {
  if (!gws[0] || !gws[1] || !gws[2]) return CLCNN_SUCCESS;
  clcnn_status st = gather(ctx, r, nr, w, nw);
  if (st) return st;
  /* A CPU device gets a fixed work-group shape: with none given, PoCL picks one per global size
   * and compiles the kernel again for each (a GEMM tile kernel nine times in LeNet-5's first
   * step, most of the cold start). Each item of these kernels is a whole tile or row. */
  static const size_t one[3] = {1, 1, 1};
  cl_event ev;
  cl_int e = clEnqueueNDRangeKernel(ctx->queue, k, 3, NULL, gws, ctx->cpu ? one : NULL, (cl_uint)ctx->ndeps,
                                    ctx->ndeps ? ctx->deps : NULL, &ev);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clEnqueueNDRangeKernel", what);
  clcnn__commit(ctx, ev, what, r, nr, w, nw);
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__run2(clcnn_ctx *ctx, cl_kernel k, const char *what, size_t n0, size_t n1,
                         cbuf *const *r, int nr, cbuf *const *w, int nw) {
  size_t gws[3] = {n0, n1, 1};
  return clcnn__run3(ctx, k, what, gws, r, nr, w, nw);
}

clcnn_status clcnn__write(clcnn_ctx *ctx, cbuf *b, size_t off, size_t bytes, const void *host,
                          const char *what) {
  if (!bytes) return CLCNN_SUCCESS;
  clcnn_status st = gather(ctx, NULL, 0, &b, 1);
  if (st) return st;
  cl_event ev;
  cl_int e = clEnqueueWriteBuffer(ctx->queue, b->mem, CL_FALSE, off, bytes, host,
                                  (cl_uint)ctx->ndeps, ctx->ndeps ? ctx->deps : NULL, &ev);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clEnqueueWriteBuffer", what);
  evlist *sink = ctx->sink;
  ctx->sink = NULL; /* transfers are not kernel time */
  clcnn__commit(ctx, ev, what, NULL, 0, &b, 1);
  ctx->sink = sink;
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__copy_rect(clcnn_ctx *ctx, cbuf *dst, size_t dst_off, size_t dst_pitch, cbuf *src, size_t src_off,
                              size_t src_pitch, size_t row_bytes, size_t rows, const char *what) {
  if (!row_bytes || !rows) return CLCNN_SUCCESS;
  clcnn_status st = gather(ctx, &src, 1, &dst, 1);
  if (st) return st;
  /* origins in bytes (x), rows (y); the slice pitches follow from the row pitches */
  size_t so[3] = {src_off, 0, 0}, dof[3] = {dst_off, 0, 0}, region[3] = {row_bytes, rows, 1};
  cl_event ev;
  cl_int e = clEnqueueCopyBufferRect(ctx->queue, src->mem, dst->mem, so, dof, region, src_pitch, 0, dst_pitch, 0,
                                     (cl_uint)ctx->ndeps, ctx->ndeps ? ctx->deps : NULL, &ev);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clEnqueueCopyBufferRect", what);
  clcnn__commit(ctx, ev, what, &src, 1, &dst, 1);
  return CLCNN_SUCCESS;
}

/* A read that does not block: enqueued after b's last write, put on the chain as a read of b (a
 * later write of b waits for it), *ev (the caller's reference) completing when HOST holds the
 * bytes. For the replicas' gradients, read layer by layer while the backward goes on. */
clcnn_status clcnn__read_async(clcnn_ctx *ctx, cbuf *b, size_t off, size_t bytes, void *host, const char *what,
                               cl_event *ev) {
  *ev = NULL;
  if (!bytes) return CLCNN_SUCCESS;
  clcnn_status st = gather(ctx, &b, 1, NULL, 0);
  if (st) return st;
  cl_int e = clEnqueueReadBuffer(ctx->queue, b->mem, CL_FALSE, off, bytes, host, (cl_uint)ctx->ndeps,
                                 ctx->ndeps ? ctx->deps : NULL, ev);
  if (e != CL_SUCCESS) return *ev = NULL, CLFAIL(ctx, e, "clEnqueueReadBuffer", what);
  clRetainEvent(*ev); /* one reference for the chain, one for the caller */
  evlist *sink = ctx->sink;
  ctx->sink = NULL; /* transfers are not kernel time */
  clcnn__commit(ctx, *ev, what, &b, 1, NULL, 0);
  ctx->sink = sink;
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__read(clcnn_ctx *ctx, cbuf *b, size_t off, size_t bytes, void *host,
                         const char *what) {
  if (!bytes) return CLCNN_SUCCESS;
  cl_event wev = b->wev;
  cl_int e = clEnqueueReadBuffer(ctx->queue, b->mem, CL_TRUE, off, bytes, host, wev ? 1 : 0,
                                 wev ? &wev : NULL, NULL);
  ctx->host_waits++;
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clEnqueueReadBuffer", what);
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__zero(clcnn_ctx *ctx, cbuf *b, size_t bytes, const char *what) {
  if (!bytes) return CLCNN_SUCCESS;
  clcnn_status st = gather(ctx, NULL, 0, &b, 1);
  if (st) return st;
  cl_event ev;
  cl_uchar zero = 0;
  cl_int e = clEnqueueFillBuffer(ctx->queue, b->mem, &zero, 1, 0, bytes, (cl_uint)ctx->ndeps,
                                 ctx->ndeps ? ctx->deps : NULL, &ev);
  if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clEnqueueFillBuffer", what);
  clcnn__commit(ctx, ev, what, NULL, 0, &b, 1);
  return CLCNN_SUCCESS;
}

clcnn_status clcnn__wait(clcnn_ctx *ctx, cbuf *b) {
  clcnn_status st = gather(ctx, NULL, 0, &b, 1);
  if (st) return st;
  ctx->host_waits++;
  if (ctx->ndeps) {
    cl_int e = clWaitForEvents((cl_uint)ctx->ndeps, ctx->deps);
    if (e != CL_SUCCESS) return CLFAIL(ctx, e, "clWaitForEvents", "buffer");
  }
  return CLCNN_SUCCESS;
}

void evlist_clear(evlist *l) {
  for (int i = 0; i < l->n; i++) clReleaseEvent(l->ev[i]);
  l->n = 0;
}

void evlist_free(evlist *l) {
  evlist_clear(l);
  free(l->ev);
  free(l->what);
  memset(l, 0, sizeof *l);
}

uint64_t evlist_ns(const evlist *l) {
  uint64_t sum = 0;
  for (int i = 0; i < l->n; i++) {
    cl_ulong a = 0, b = 0;
    if (clGetEventProfilingInfo(l->ev[i], CL_PROFILING_COMMAND_START, sizeof a, &a, NULL) ==
            CL_SUCCESS &&
        clGetEventProfilingInfo(l->ev[i], CL_PROFILING_COMMAND_END, sizeof b, &b, NULL) ==
            CL_SUCCESS &&
        b > a)
      sum += b - a;
  }
  return sum;
}
