/* lib/activation.c - relu, leaky relu, sigmoid, tanh. Kernels in cl/activation.cl. */
#include "layer.h"

static const char *const fwd_name[] = {
    [CLCNN_LAYER_RELU] = "relu_forward",
    [CLCNN_LAYER_LEAKY_RELU] = "leaky_relu_forward",
    [CLCNN_LAYER_SIGMOID] = "sigmoid_forward",
    [CLCNN_LAYER_TANH] = "tanh_forward",
};
static const char *const bwd_name[] = {
    [CLCNN_LAYER_RELU] = "relu_backward",
    [CLCNN_LAYER_LEAKY_RELU] = "leaky_relu_backward",
    [CLCNN_LAYER_SIGMOID] = "sigmoid_backward",
    [CLCNN_LAYER_TANH] = "tanh_backward",
};

clcnn_status activation_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n) {
  const char *name = fwd_name[l->type];
  size_t cnt = (size_t)n * layer_out_size(l);
  cl_kernel k;
  clcnn_status st = clcnn__kernel(ctx, KP_ACTIVATION, name, &k);
  if (st) return st;
  if (l->type == CLCNN_LAYER_LEAKY_RELU)
    st = clcnn__args(ctx, k, name, MEM_ARG(&l->y), MEM_ARG(x), INT_ARG(cnt),
                     REAL_ARG(ctx, l->slope), (size_t)0);
  else
    st = clcnn__args(ctx, k, name, MEM_ARG(&l->y), MEM_ARG(x), INT_ARG(cnt), (size_t)0);
  if (st) return st;
  return clcnn__run(ctx, k, name, cnt, &x, 1, (cbuf *[]){&l->y}, 1);
}

clcnn_status activation_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n) {
  const char *name = bwd_name[l->type];
  size_t cnt = (size_t)n * layer_out_size(l);
  /* leaky relu differentiates through its input, the others through their output */
  cbuf *via = l->type == CLCNN_LAYER_LEAKY_RELU ? x : &l->y;
  cl_kernel k;
  clcnn_status st = clcnn__kernel(ctx, KP_ACTIVATION, name, &k);
  if (st) return st;
  if (l->type == CLCNN_LAYER_LEAKY_RELU)
    st = clcnn__args(ctx, k, name, MEM_ARG(&l->dx), MEM_ARG(dy), MEM_ARG(via), INT_ARG(cnt),
                     REAL_ARG(ctx, l->slope), (size_t)0);
  else
    st = clcnn__args(ctx, k, name, MEM_ARG(&l->dx), MEM_ARG(dy), MEM_ARG(via), INT_ARG(cnt),
                     (size_t)0);
  if (st) return st;
  return clcnn__run(ctx, k, name, cnt, (cbuf *[]){dy, via}, 2, (cbuf *[]){&l->dx}, 1);
}
