/* lib/softmax_xent.c - the loss: softmax cross-entropy, mean over the batch. */
#include "layer.h"

clcnn_status softmax_xent(clcnn_ctx *ctx, cbuf *logits, cbuf *labels, cbuf *losses, cbuf *hits, cbuf *loss,
                          cbuf *stats, cbuf *dlogits, int n, int k) {
  cl_kernel kf, km;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_SOFTMAX_XENT, "softmax_xent_forward_backward", &kf)) ||
      (st = clcnn__args(ctx, kf, "softmax_xent_forward_backward", MEM_ARG(losses), MEM_ARG(hits),
                        MEM_ARG(dlogits), MEM_ARG(logits), MEM_ARG(labels), INT_ARG(n), INT_ARG(k),
                        (size_t)0)) ||
      (st = clcnn__run(ctx, kf, "softmax_xent_forward_backward", n, (cbuf *[]){logits, labels}, 2,
                       (cbuf *[]){losses, hits, dlogits}, 3)))
    return st;
  if ((st = clcnn__kernel(ctx, KP_SOFTMAX_XENT, "softmax_xent_mean", &km)) ||
      (st = clcnn__args(ctx, km, "softmax_xent_mean", MEM_ARG(loss), MEM_ARG(stats), MEM_ARG(losses), MEM_ARG(hits),
                        INT_ARG(n), (size_t)0)) ||
      (st = clcnn__run(ctx, km, "softmax_xent_mean", 1, (cbuf *[]){losses, hits, stats}, 3,
                       (cbuf *[]){loss, stats}, 2)))
    return st;
  return CLCNN_SUCCESS;
}
