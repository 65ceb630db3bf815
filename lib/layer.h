/* lib/layer.h - a layer of a sequential net, and the forward/backward pair of each kind.
 *
 * Every pair has the same shape: forward reads x (n samples of the layer's input shape) and
 * writes l->y; backward reads x, l->y and dy (the gradient of the layer's output) and writes
 * l->dx with '=', accumulating the parameter gradients l->dw, l->db with '+='. */
#ifndef CLCNN_LAYER_H
#define CLCNN_LAYER_H

#include "internal.h"

struct layer {
  clcnn_layer_type type;
  int index;                       /* position in the net, = torch.nn.Sequential's */
  int in_c, in_h, in_w;            /* input shape of one sample */
  int out_c, out_h, out_w;         /* output shape of one sample */
  clcnn_conv2d_params conv;        /* conv2d, normalised (no zeros) */
  clcnn_pool2d_params pool;        /* max/avg pooling, normalised */
  double slope;                    /* leaky relu */
  int has_w, has_b;
  cbuf w, b, dw, db;               /* parameters and their gradients */
  cbuf y, dx;                      /* output, gradient of the input */
  cbuf col, dcol, t;               /* conv2d: im2col, its gradient, GEMM output */
  int packed;                      /* conv2d: 0 not chosen yet, 1 im2col into clcnn's GEMM panels,
                                      2 plain im2col (then any GEMM); fixed at the first forward */
  cbuf idx;                        /* maxpool2d: where each maximum came from */
  double eps, momentum;            /* batchnorm */
  cbuf rmean, rvar, mean, invstd;  /* batchnorm: running and batch statistics */
  int64_t nbt;                     /* batchnorm: num_batches_tracked */
  double p;                        /* dropout probability */
  int training;                    /* the mode of the last forward */
  int no_dx;                       /* backward: skip the input gradient (first layer, not asked) */
  int fuse_relu;                   /* conv2d: the relu after it is applied in its unpack, and its
                                      backward's mask in the conv's pack (saves two passes) */
  int fused;                       /* relu: done by the conv before it; output and input grad alias;
                                      maxpool2d (2x2, stride 2, after a fused relu): done by that conv */
  struct layer *fpool;             /* conv2d: the fused max pooling whose output and indices it writes */
  uint64_t key;                    /* dropout: the mask's key for the last forward */
  cbuf *yp, *dxp;                  /* the output and input gradient others see (flatten aliases) */
  evlist prof[2];                  /* forward and backward commands, when profiling */
};

static inline size_t layer_in_size(const struct layer *l) {
  return (size_t)l->in_c * l->in_h * l->in_w;
}
/* A max pooling's window is 2x2 with stride 2 and no padding (the kernels and the fusion with
 * a conv that are made for it). */
static inline int pool_is_2x2(const clcnn_pool2d_params *p) {
  return p->kh == 2 && p->kw == 2 && p->stride_h == 2 && p->stride_w == 2 && p->pad_h == 0 && p->pad_w == 0;
}
static inline size_t layer_out_size(const struct layer *l) {
  return (size_t)l->out_c * l->out_h * l->out_w;
}

/* Shape checks and buffers for a max_batch; the kinds with parameters allocate them. */
clcnn_status conv2d_setup(clcnn_ctx *ctx, struct layer *l, int max_batch);
clcnn_status linear_setup(clcnn_ctx *ctx, struct layer *l, int max_batch);
clcnn_status pool2d_setup(clcnn_ctx *ctx, struct layer *l, int max_batch);
clcnn_status batchnorm_setup(clcnn_ctx *ctx, struct layer *l, int max_batch);
clcnn_status dropout_setup(clcnn_ctx *ctx, struct layer *l, int max_batch);

/* The context's scratch a training step of n samples reserves (see struct scratch_need). */
void conv2d_need(clcnn_ctx *ctx, const struct layer *l, int n, int no_dx, struct scratch_need *need);
void batchnorm_need(clcnn_ctx *ctx, const struct layer *l, int n, struct scratch_need *need);

/* x (n,C,H,W); weight (OC,C/G,KH,KW); bias (OC) or none; y (n,OC,OH,OW). */
clcnn_status conv2d_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n);
clcnn_status conv2d_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n);
/* x (n,IN); weight (OUT,IN); bias (OUT) or none; y (n,OUT). */
clcnn_status linear_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n);
clcnn_status linear_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n);
/* relu, leaky relu, sigmoid, tanh: x and y of the same shape. */
clcnn_status activation_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n);
clcnn_status activation_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n);
/* max, average, global average pooling: x (n,C,H,W), y (n,C,OH,OW). */
clcnn_status pool2d_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n);
clcnn_status pool2d_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n);
/* batchnorm: x, y (n,C,P); weight = gamma, bias = beta (C). l->training picks the mode. */
clcnn_status batchnorm_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n);
clcnn_status batchnorm_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n);
/* dropout: x, y of the same shape; l->training and l->key pick the mask. */
clcnn_status dropout_forward(clcnn_ctx *ctx, struct layer *l, cbuf *x, int n);
clcnn_status dropout_backward(clcnn_ctx *ctx, struct layer *l, cbuf *x, cbuf *dy, int n);
/* logits (n,K), labels (n) -> losses (n), loss (1), dlogits (n,K). */
/* ... also hits (n): 1 where the first largest logit is the label, and the running sums
 * stats (3) += sum of losses, correct predictions, n. */
clcnn_status softmax_xent(clcnn_ctx *ctx, cbuf *logits, cbuf *labels, cbuf *losses, cbuf *hits, cbuf *loss,
                          cbuf *stats, cbuf *dlogits, int n, int k);

#endif
