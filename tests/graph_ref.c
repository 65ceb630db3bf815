/* tests/graph_ref.c - clcnn's side of the graph parity test (tests/test_torch_graph.sh); PyTorch's
 * is tests/torch_graph.py, whose file format this follows.
 *
 *   graph_ref run MODEL DIR      in double: initialise MODEL's parameters (seed 11), write them
 *                                to DIR/init.safetensors, an input batch and every loss's
 *                                targets to DIR/data.safetensors, train 3 Adam steps and write
 *                                DIR/c.safetensors ("loss", "loss.NAME", "grad.KEY" of the
 *                                first step, "final.KEY" after the last)
 *   graph_ref load MODEL FILE    load FILE (a state_dict PyTorch saved) strictly: exactly the
 *                                net's parameters and buffers, each of its shape
 * Exit status 0 on success; the reason on stderr otherwise. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "ref.h"

#define N 3
#define STEPS 3
#define LR 0.01

static clcnn_ctx *ctx;

static void die(const char *what) {
  fprintf(stderr, "graph_ref: %s: %s\n", what, ctx ? clcnn_ctx_last_error(ctx) : "");
  exit(1);
}

/* A growing list of tensors to write; names and data are owned. */
struct out {
  clcnn_st_tensor t[512];
  int n;
};

static void add(struct out *o, const char *name, clcnn_st_dtype dt, int ndim, const int64_t *dims, const void *data,
                size_t bytes) {
  if (o->n == 512) die("too many tensors");
  clcnn_st_tensor *t = &o->t[o->n++];
  memset(t, 0, sizeof *t);
  if (strlen(name) >= sizeof t->name) die("a name too long for safetensors");
  memcpy(t->name, name, strlen(name) + 1);
  t->dtype = dt;
  t->ndim = ndim;
  for (int d = 0; d < ndim; d++) t->dims[d] = dims[d];
  void *copy = malloc(bytes ? bytes : 1);
  memcpy(copy, data, bytes);
  t->data = copy;
  t->bytes = bytes;
}

static void write_out(struct out *o, const char *path) {
  char err[512];
  if (clcnn_safetensors_write(path, o->t, o->n, NULL, 0, err, sizeof err)) {
    fprintf(stderr, "graph_ref: %s\n", err);
    exit(1);
  }
  for (int i = 0; i < o->n; i++) free((void *)o->t[i].data);
  o->n = 0;
}

/* Every parameter (grad: its gradient) and, unless grad, every buffer, under PREFIX. */
static void add_state(struct out *o, clcnn_net *net, const char *prefix, int grad) {
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info info;
    clcnn_net_param_info(net, i, &info);
    double *v = malloc(info.count * sizeof *v);
    if ((grad ? clcnn_net_grad_read(net, i, v) : clcnn_net_param_read(net, i, v))) die("read a parameter");
    int64_t dims[4];
    for (int d = 0; d < info.ndim; d++) dims[d] = info.dims[d];
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, info.name);
    add(o, name, CLCNN_ST_F64, info.ndim, dims, v, info.count * sizeof *v);
    free(v);
  }
  for (int i = 0; !grad && i < clcnn_net_num_buffers(net); i++) {
    clcnn_param_info info;
    clcnn_net_buffer_info(net, i, &info);
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, info.name);
    int64_t dims[4];
    for (int d = 0; d < info.ndim; d++) dims[d] = info.dims[d];
    if (info.dtype == CLCNN_DTYPE_INT64) {
      int64_t v;
      if (clcnn_net_buffer_read(net, i, &v)) die("read a buffer");
      add(o, name, CLCNN_ST_I64, 0, dims, &v, sizeof v);
    } else {
      double *v = malloc(info.count * sizeof *v);
      if (clcnn_net_buffer_read(net, i, v)) die("read a buffer");
      add(o, name, CLCNN_ST_F64, info.ndim, dims, v, info.count * sizeof *v);
      free(v);
    }
  }
}

/* FILE holds exactly the net's parameters and buffers, each of its shape: load them. */
static int load_strict(clcnn_net *net, const char *path) {
  char err[512];
  clcnn_safetensors *f;
  if (clcnn_safetensors_open(path, &f, err, sizeof err)) {
    fprintf(stderr, "graph_ref: %s\n", err);
    return 1;
  }
  int np = clcnn_net_num_params(net), nb = clcnn_net_num_buffers(net), bad = 0;
  if (clcnn_safetensors_count(f) != np + nb) {
    fprintf(stderr, "graph_ref: %s has %d tensors, the net %d parameters and buffers\n", path,
            clcnn_safetensors_count(f), np + nb);
    bad = 1;
  }
  for (int i = 0; i < np + nb && !bad; i++) {
    clcnn_param_info info;
    if (i < np) clcnn_net_param_info(net, i, &info);
    else clcnn_net_buffer_info(net, i - np, &info);
    const clcnn_st_tensor *t = clcnn_safetensors_find(f, info.name);
    int same = t && t->ndim == info.ndim;
    for (int d = 0; same && d < info.ndim; d++) same = t->dims[d] == info.dims[d];
    if (!same) {
      fprintf(stderr, "graph_ref: %s: %s missing or of another shape\n", path, info.name);
      bad = 1;
      break;
    }
    if (info.dtype == CLCNN_DTYPE_INT64) {
      int64_t v;
      memcpy(&v, t->data, sizeof v);
      bad = clcnn_net_buffer_write(net, i - np, &v) != 0;
      continue;
    }
    double *v = malloc(info.count * sizeof *v);
    for (size_t k = 0; k < info.count; k++) {
      if (t->dtype == CLCNN_ST_F32) {
        float x;
        memcpy(&x, (const char *)t->data + 4 * k, 4);
        v[k] = x;
      } else {
        memcpy(&v[k], (const char *)t->data + 8 * k, 8);
      }
    }
    bad = (i < np ? clcnn_net_param_write(net, i, v) : clcnn_net_buffer_write(net, i - np, v)) != 0;
    free(v);
  }
  clcnn_safetensors_close(f);
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "run") && strcmp(argv[1], "load"))) {
    fprintf(stderr, "usage: graph_ref run MODEL DIR | load MODEL FILE\n");
    return 2;
  }
  char err[512];
  clcnn_ctx_options opt = {.precision = CLCNN_DOUBLE};
  if (clcnn_ctx_create(&ctx, &opt, err, sizeof err)) {
    fprintf(stderr, "graph_ref: no double-precision OpenCL device: %s\n", err);
    return 1;
  }
  clcnn_net *net;
  if (clcnn_net_from_file(ctx, argv[2], N, &net, err, sizeof err)) {
    fprintf(stderr, "graph_ref: %s\n", err);
    return 1;
  }
  if (!strcmp(argv[1], "load")) {
    int bad = load_strict(net, argv[3]);
    clcnn_net_destroy(net);
    clcnn_ctx_destroy(ctx);
    return bad;
  }
  if (clcnn_net_init_params(net, 11) || clcnn_net_finalize(net)) die("initialise");
  char path[4096];
  struct out o = {.n = 0};
  add_state(&o, net, "", 0);
  snprintf(path, sizeof path, "%s/init.safetensors", argv[3]);
  write_out(&o, path);

  /* the batch and every loss's targets */
  ref_rng rng;
  ref_rng_seed(&rng, 5);
  int nl = clcnn_net_num_losses(net);
  size_t nx = (size_t)N * clcnn_net_input_size(net);
  double *x = malloc(nx * sizeof *x);
  for (size_t i = 0; i < nx; i++) x[i] = 2 * ref_rng_uniform(&rng) - 1;
  int dims[4];
  clcnn_tensor_shape(clcnn_net_input(net), dims);
  add(&o, "x", CLCNN_ST_F64, 4, (int64_t[]){N, dims[1], dims[2], dims[3]}, x, nx * sizeof *x);
  void *tg[16];
  if (nl > 16) die("too many losses");
  for (int i = 0; i < nl; i++) {
    clcnn_loss_info li;
    clcnn_net_loss_info(net, i, &li);
    clcnn_tensor_shape(li.input, dims);
    char name[160];
    snprintf(name, sizeof name, "target.%s", clcnn_tensor_name(li.loss));
    if (li.type == CLCNN_LAYER_XENT_LOSS) {
      size_t m = (size_t)N * li.targets;
      int32_t *y = malloc(m * sizeof *y);
      int64_t *y64 = malloc(m * sizeof *y64);
      for (size_t k = 0; k < m; k++) y64[k] = y[k] = (int32_t)(ref_rng_next(&rng) % li.classes);
      if (li.targets > 1) add(&o, name, CLCNN_ST_I64, 3, (int64_t[]){N, dims[2], dims[3]}, y64, m * sizeof *y64);
      else add(&o, name, CLCNN_ST_I64, 1, (int64_t[]){N}, y64, m * sizeof *y64);
      free(y64);
      tg[i] = y;
    } else {
      size_t m = (size_t)N * dims[1] * dims[2] * dims[3];
      double *y = malloc(m * sizeof *y);
      for (size_t k = 0; k < m; k++)
        y[k] = li.type == CLCNN_LAYER_BCE_LOSS ? ref_rng_uniform(&rng) : 2 * ref_rng_uniform(&rng) - 1;
      add(&o, name, CLCNN_ST_F64, 4, (int64_t[]){N, dims[1], dims[2], dims[3]}, y, m * sizeof *y);
      tg[i] = y;
    }
  }
  double lr = LR;
  add(&o, "lr", CLCNN_ST_F64, 1, (int64_t[]){1}, &lr, sizeof lr);
  snprintf(path, sizeof path, "%s/data.safetensors", argv[3]);
  write_out(&o, path);

  /* 3 steps of Adam, as torch_graph.py takes them */
  clcnn_optim_params op;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &op);
  op.lr = LR;
  clcnn_optim *adam;
  if (clcnn_optim_create(net, &op, &adam)) die("Adam");
  for (int s = 0; s < STEPS; s++) {
    if (clcnn_net_zero_grad(net) || clcnn_net_forward(net, x, N)) die("forward");
    for (int i = 0; i < nl; i++) {
      clcnn_loss_info li;
      clcnn_net_loss_info(net, i, &li);
      if (clcnn_net_set_target(net, li.loss, tg[i])) die("targets");
    }
    if (clcnn_net_backward_losses(net)) die("backward");
    if (s == 0) {
      double total;
      if (clcnn_net_loss(net, &total)) die("loss");
      add(&o, "loss", CLCNN_ST_F64, 1, (int64_t[]){1}, &total, sizeof total);
      for (int i = 0; i < nl; i++) {
        clcnn_loss_info li;
        clcnn_net_loss_info(net, i, &li);
        double v;
        if (clcnn_net_loss_value(net, li.loss, &v)) die("loss value");
        char name[160];
        snprintf(name, sizeof name, "loss.%s", clcnn_tensor_name(li.loss));
        add(&o, name, CLCNN_ST_F64, 1, (int64_t[]){1}, &v, sizeof v);
      }
      add_state(&o, net, "grad.", 1);
    }
    if (clcnn_optim_step(adam)) die("step");
  }
  add_state(&o, net, "final.", 0);
  snprintf(path, sizeof path, "%s/c.safetensors", argv[3]);
  write_out(&o, path);
  for (int i = 0; i < nl; i++) free(tg[i]);
  free(x);
  clcnn_optim_destroy(adam);
  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  return 0;
}
