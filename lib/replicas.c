/* lib/replicas.c - data parallel training: one replica of a net per device, their parameter
 * gradients combined on the host into the gradient of the global batch's mean loss.
 *
 * Each replica's gradients are read to the host node by node as its backward enqueues them
 * (net.c calls clcnn__replicas_grads_ready after each node with parameters), so the reads wait
 * on exactly that node's gradient events and the last layers' gradients arrive while the first
 * layers' backward still runs. clcnn_replicas_reduce() then walks the parameters in the order
 * the backward reaches them (last first), waits for each one's reads, sums them in double in
 * replica order - a fixed order, so the same inputs give the same bits - and enqueues the result's
 * write into every replica, where the optimizer step queued after it reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct clcnn_replicas {
  int n;              /* replicas */
  clcnn_net **nets;   /* borrowed; NULL once a net is destroyed */
  int np;             /* parameters per net */
  size_t *off, *count; /* parameter p: elements off[p].. off[p] + count[p] - 1 of the staging arrays */
  size_t total, esz;
  unsigned char **stage; /* [replica] its gradients as read (total reals) */
  unsigned char *result; /* the combined gradient, written back to every replica */
  cl_event *rev;         /* [replica * np + p]: this step's read of the replica's gradient p, or NULL */
  int *batch;            /* [replica]: samples of its backward since the last reduce (0: none) */
  double *acc;           /* one parameter's sum_r n_r g_r, in double */
  int world, first;      /* replicas in all processes, and the index of this group's first */
  clcnn_allreduce_fn fn; /* sums acc over the processes (NULL: this process alone) */
  void *user;
  double wait_s, sum_s;  /* host time in reduce: waiting for reads, summing and enqueueing writes */
  long reductions;
  char err[1024];
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static clcnn_status gfail(clcnn_replicas *g, clcnn_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static clcnn_status gfail(clcnn_replicas *g, clcnn_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->err, sizeof g->err, fmt, ap);
  va_end(ap);
  return st;
}

/* A replica's failure: its context's story, under the replica's number. */
static clcnn_status rfail(clcnn_replicas *g, int r, clcnn_status st) {
  clcnn_ctx *ctx = clcnn__net_ctx(g->nets[r]);
  return gfail(g, st, "replica %d (%s): %s", r, clcnn_ctx_device_name(ctx), clcnn_ctx_last_error(ctx));
}

static void release_reads(clcnn_replicas *g) {
  for (int i = 0; g->rev && i < g->n * g->np; i++)
    if (g->rev[i]) clWaitForEvents(1, &g->rev[i]), clReleaseEvent(g->rev[i]), g->rev[i] = NULL;
}

CLCNN_API void clcnn_replicas_destroy(clcnn_replicas *g) {
  if (!g) return;
  release_reads(g);
  for (int r = 0; r < g->n; r++) {
    if (g->nets && g->nets[r]) {
      clFinish(clcnn__net_ctx(g->nets[r])->queue); /* no write of result still pending */
      clcnn__net_set_group(g->nets[r], NULL, 0);
    }
    if (g->stage) free(g->stage[r]);
  }
  free(g->nets), free(g->off), free(g->count), free(g->stage), free(g->result), free(g->rev), free(g->batch);
  free(g->acc);
  free(g);
}

void clcnn__replicas_detach(struct clcnn_replicas *g, int index) {
  for (int p = 0; p < g->np; p++)
    if (g->rev[index * g->np + p])
      clWaitForEvents(1, &g->rev[index * g->np + p]), clReleaseEvent(g->rev[index * g->np + p]),
          g->rev[index * g->np + p] = NULL;
  g->nets[index] = NULL;
  g->batch[index] = 0;
}

CLCNN_API clcnn_status clcnn_replicas_create(clcnn_net *const *nets, int n, clcnn_replicas **out, char *err,
                                             size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!out) return clcnn__errf(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_replicas_create: out is NULL");
  *out = NULL;
  if (!nets) return clcnn__errf(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_replicas_create: nets is NULL");
  if (n < 1 || n > 4096)
    return clcnn__errf(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_replicas_create: %d replicas (1..4096)", n);
  for (int r = 0; r < n; r++) {
    if (!nets[r]) return clcnn__errf(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_replicas_create: replica %d is NULL", r);
    if (clcnn__net_in_group(nets[r]))
      return clcnn__errf(err, err_size, CLCNN_ERR_STATE, "clcnn_replicas_create: replica %d is in another group already", r);
    for (int q = 0; q < r; q++)
      if (nets[q] == nets[r])
        return clcnn__errf(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                       "clcnn_replicas_create: replicas %d and %d are the same net", q, r);
  }
  /* one graph: the same parameters in the same shapes, in one precision */
  clcnn_ctx *c0 = clcnn__net_ctx(nets[0]);
  int np = clcnn_net_num_params(nets[0]);
  for (int r = 1; r < n; r++) {
    clcnn_ctx *cr = clcnn__net_ctx(nets[r]);
    if (clcnn_ctx_precision(cr) != clcnn_ctx_precision(c0))
      return clcnn__errf(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                     "clcnn_replicas_create: replica %d is in %s precision, replica 0 in %s", r,
                     clcnn_ctx_precision(cr) == CLCNN_DOUBLE ? "double" : "float",
                     clcnn_ctx_precision(c0) == CLCNN_DOUBLE ? "double" : "float");
    if (clcnn_net_num_params(nets[r]) != np)
      return clcnn__errf(err, err_size, CLCNN_ERR_SHAPE, "clcnn_replicas_create: replica %d has %d parameters, replica 0 %d",
                     r, clcnn_net_num_params(nets[r]), np);
    for (int p = 0; p < np; p++) {
      clcnn_param_info a, b;
      clcnn_net_param_info(nets[0], p, &a);
      clcnn_net_param_info(nets[r], p, &b);
      if (strcmp(a.name, b.name) || a.ndim != b.ndim || memcmp(a.dims, b.dims, sizeof a.dims) || a.count != b.count)
        return clcnn__errf(err, err_size, CLCNN_ERR_SHAPE,
                       "clcnn_replicas_create: parameter %d is %s (%zu elements) in replica 0 but %s (%zu) in replica %d",
                       p, a.name, a.count, b.name, b.count, r);
    }
  }
  clcnn_replicas *g = calloc(1, sizeof *g);
  if (!g) return clcnn__errf(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_replicas_create: out of host memory");
  g->n = n, g->np = np, g->esz = clcnn_ctx_elem_size(c0), g->world = n, g->first = 0;
  g->nets = calloc(n, sizeof *g->nets);
  g->off = calloc(np + 1, sizeof *g->off);
  g->count = calloc(np + 1, sizeof *g->count);
  g->stage = calloc(n, sizeof *g->stage);
  g->rev = calloc((size_t)n * np + 1, sizeof *g->rev);
  g->batch = calloc(n, sizeof *g->batch);
  int ok = g->nets && g->off && g->count && g->stage && g->rev && g->batch;
  for (int p = 0; ok && p < np; p++) {
    clcnn_param_info a;
    clcnn_net_param_info(nets[0], p, &a);
    g->off[p] = g->total, g->count[p] = a.count, g->total += a.count;
  }
  ok = ok && (g->result = malloc(g->total * g->esz + 1));
  size_t most = 1;
  for (int p = 0; ok && p < np; p++) most = g->count[p] > most ? g->count[p] : most;
  ok = ok && (g->acc = malloc(most * sizeof *g->acc));
  for (int r = 0; ok && r < n; r++) ok = (g->stage[r] = malloc(g->total * g->esz + 1)) != NULL;
  if (!ok) {
    clcnn_replicas_destroy(g);
    return clcnn__errf(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_replicas_create: out of host memory");
  }
  for (int r = 0; r < n; r++) g->nets[r] = nets[r], clcnn__net_set_group(nets[r], g, r);
  *out = g;
  return CLCNN_SUCCESS;
}

CLCNN_API int clcnn_replicas_count(const clcnn_replicas *g) { return g ? g->n : 0; }

CLCNN_API const char *clcnn_replicas_last_error(const clcnn_replicas *g) { return g ? g->err : ""; }

CLCNN_API clcnn_status clcnn_replicas_set_world(clcnn_replicas *g, int world, int first, clcnn_allreduce_fn fn,
                                                void *user) {
  if (!g) return CLCNN_ERR_NULL_POINTER;
  g->err[0] = 0;
  if (world < g->n || first < 0 || first > world - g->n)
    return gfail(g, CLCNN_ERR_INVALID_ARGUMENT, "clcnn_replicas_set_world: replicas %d..%d of %d do not fit", first,
                 first + g->n - 1, world);
  if (!fn && world != g->n)
    return gfail(g, CLCNN_ERR_NULL_POINTER, "clcnn_replicas_set_world: %d replicas elsewhere need a function to sum with",
                 world - g->n);
  g->world = world, g->first = first, g->fn = fn, g->user = user;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_replicas_split(const clcnn_replicas *g, int batch, int i, int *first, int *count) {
  if (!g || !first || !count) return CLCNN_ERR_NULL_POINTER;
  if (batch < 0 || i < 0 || i >= g->n) return CLCNN_ERR_INVALID_ARGUMENT;
  int w = g->world, k = g->first + i; /* this replica's place among all */
  int q = batch / w, extra = batch % w;
  *count = q + (k < extra);
  *first = k * q + (k < extra ? k : extra);
  return CLCNN_SUCCESS;
}

static clcnn_status check_nets(clcnn_replicas *g, const char *fn) {
  for (int r = 0; r < g->n; r++)
    if (!g->nets[r]) return gfail(g, CLCNN_ERR_STATE, "%s: replica %d's net was destroyed", fn, r);
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_replicas_broadcast(clcnn_replicas *g) {
  if (!g) return CLCNN_ERR_NULL_POINTER;
  g->err[0] = 0;
  clcnn_status st = check_nets(g, "clcnn_replicas_broadcast");
  if (st) return st;
  void *tmp = malloc(g->total * g->esz + 8);
  if (!tmp) return gfail(g, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_replicas_broadcast: out of host memory");
  for (int p = 0; p < g->np && !st; p++) {
    if ((st = clcnn_net_param_read(g->nets[0], p, tmp))) st = rfail(g, 0, st);
    for (int r = 1; r < g->n && !st; r++)
      if ((st = clcnn_net_param_write(g->nets[r], p, tmp))) st = rfail(g, r, st);
  }
  for (int b = 0; b < clcnn_net_num_buffers(g->nets[0]) && !st; b++) {
    clcnn_param_info bi;
    clcnn_net_buffer_info(g->nets[0], b, &bi);
    void *h = bi.count * 8 <= g->total * g->esz + 8 ? tmp : malloc(bi.count * 8);
    if (!h) {
      st = gfail(g, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_replicas_broadcast: out of host memory");
      break;
    }
    if ((st = clcnn_net_buffer_read(g->nets[0], b, h))) st = rfail(g, 0, st);
    for (int r = 1; r < g->n && !st; r++)
      if ((st = clcnn_net_buffer_write(g->nets[r], b, h))) st = rfail(g, r, st);
    if (h != tmp) free(h);
  }
  free(tmp);
  return st;
}

/* Enqueue the reads of replica INDEX's gradients FIRST.. FIRST+NPAR-1 into its staging array. */
clcnn_status clcnn__replicas_grads_ready(struct clcnn_replicas *g, int index, int first, int npar) {
  clcnn_net *net = g->nets[index];
  clcnn_ctx *ctx = clcnn__net_ctx(net);
  for (int p = first; p < first + npar; p++) {
    cbuf *v, *gr;
    size_t count;
    clcnn_status st = clcnn__net_param(net, p, &v, &gr, &count);
    if (st) return st;
    cl_event *ev = &g->rev[index * g->np + p];
    if (*ev) clWaitForEvents(1, ev), clReleaseEvent(*ev), *ev = NULL; /* a second backward before the reduce */
    if ((st = clcnn__read_async(ctx, gr, 0, count * g->esz, g->stage[index] + g->off[p] * g->esz, "replica gradient",
                                ev)))
      return st;
  }
  return CLCNN_SUCCESS;
}

void clcnn__replicas_backward_done(struct clcnn_replicas *g, int index, int n) { g->batch[index] = n; }

CLCNN_API clcnn_status clcnn_replicas_reduce(clcnn_replicas *g) {
  if (!g) return CLCNN_ERR_NULL_POINTER;
  g->err[0] = 0;
  clcnn_status st = check_nets(g, "clcnn_replicas_reduce");
  if (st) return st;
  double total = 0;
  for (int r = 0; r < g->n; r++) total += g->batch[r];
  double t0 = now_s(), tw = 0;
  if (g->fn && (st = g->fn(&total, 1, g->user))) { /* the samples of every process's replicas */
    st = gfail(g, st, "clcnn_replicas_reduce: summing the sample counts over the processes failed (%d)", st);
    goto out;
  }
  if (total <= 0) {
    st = gfail(g, CLCNN_ERR_STATE, "clcnn_replicas_reduce: no replica has a backward pass since the last reduce");
    goto out;
  }
  /* let every device run what it has queued; a replica without a share has only the last
   * reduce's writes pending, from the result array about to be overwritten: wait for those */
  for (int r = 0; r < g->n; r++) {
    cl_command_queue q = clcnn__net_ctx(g->nets[r])->queue;
    cl_int e = g->batch[r] ? clFlush(q) : clFinish(q);
    if (e != CL_SUCCESS) {
      st = gfail(g, e, "replica %d: %s: %s (%d)", r, g->batch[r] ? "clFlush" : "clFinish", clcnn_status_name(e), e);
      goto out;
    }
  }
  for (int p = g->np - 1; p >= 0; p--) { /* the order the backward reaches them */
    size_t off = g->off[p], cnt = g->count[p];
    for (int r = 0; r < g->n; r++) {
      if (!g->batch[r]) continue;
      cl_event *ev = &g->rev[r * g->np + p];
      if (!*ev) { /* no gradient reached it in this backward: read what it holds */
        cbuf *v, *gr;
        size_t count;
        clcnn_ctx *ctx = clcnn__net_ctx(g->nets[r]);
        if ((st = clcnn__net_param(g->nets[r], p, &v, &gr, &count)) ||
            (st = clcnn__read_async(ctx, gr, 0, cnt * g->esz, g->stage[r] + off * g->esz, "replica gradient", ev))) {
          st = rfail(g, r, st);
          goto out;
        }
      }
      double tw0 = now_s();
      cl_int e = clWaitForEvents(1, ev);
      tw += now_s() - tw0;
      clReleaseEvent(*ev);
      *ev = NULL;
      if (e != CL_SUCCESS) {
        st = gfail(g, e, "replica %d: reading parameter %d's gradient: %s (%d)", r, p, clcnn_status_name(e), e);
        goto out;
      }
    }
    /* sum_r n_r g_r in double, in replica order; then over the processes, in theirs; / N */
    double *acc = g->acc;
    for (size_t i = 0; i < cnt; i++) acc[i] = 0;
    for (int r = 0; r < g->n; r++) {
      double w = g->batch[r];
      if (!w) continue;
      if (g->esz == 8)
        for (size_t i = 0; i < cnt; i++) acc[i] += w * ((const double *)g->stage[r])[off + i];
      else
        for (size_t i = 0; i < cnt; i++) acc[i] += w * ((const float *)g->stage[r])[off + i];
    }
    if (g->fn && (st = g->fn(acc, cnt, g->user))) {
      st = gfail(g, st, "clcnn_replicas_reduce: summing parameter %d's gradient over the processes failed (%d)", p, st);
      goto out;
    }
    if (g->esz == 8)
      for (size_t i = 0; i < cnt; i++) ((double *)g->result)[off + i] = acc[i] / total;
    else
      for (size_t i = 0; i < cnt; i++) ((float *)g->result)[off + i] = (float)(acc[i] / total);
    for (int r = 0; r < g->n; r++) {
      cbuf *v, *gr;
      size_t count;
      clcnn_ctx *ctx = clcnn__net_ctx(g->nets[r]);
      if ((st = clcnn__net_param(g->nets[r], p, &v, &gr, &count)) ||
          (st = clcnn__write(ctx, gr, 0, cnt * g->esz, g->result + off * g->esz, "reduced gradient"))) {
        st = rfail(g, r, st);
        goto out;
      }
    }
  }
  for (int r = 0; r < g->n; r++) clFlush(clcnn__net_ctx(g->nets[r])->queue);
  /* a replica that sat the step out ran no forward: its dropout counter takes the step it missed,
   * so that its next masks are those of the others' next step */
  for (int r = 0; r < g->n; r++) {
    uint64_t seed, counter;
    if (!g->batch[r] && !clcnn_net_get_seed(g->nets[r], &seed, &counter))
      clcnn_net_set_seed(g->nets[r], seed, counter + 1);
  }
  g->reductions++;
out:
  if (st) release_reads(g);
  for (int r = 0; r < g->n; r++) g->batch[r] = 0;
  g->wait_s += tw;
  g->sum_s += now_s() - t0 - tw;
  return st;
}

CLCNN_API clcnn_status clcnn_replicas_times(const clcnn_replicas *g, double *wait_s, double *reduce_s, long *reductions) {
  if (!g) return CLCNN_ERR_NULL_POINTER;
  if (wait_s) *wait_s = g->wait_s;
  if (reduce_s) *reduce_s = g->sum_s;
  if (reductions) *reductions = g->reductions;
  return CLCNN_SUCCESS;
}
