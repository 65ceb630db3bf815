/* lib/pool2d.h - the state of a pooling node, shared with the conv that computes a 2x2 max pooling
 * after its relu (lib/conv2d.c's fusion). */
#ifndef CLCNN_POOL2D_H
#define CLCNN_POOL2D_H

#include "graph.h"

extern const struct op op_maxpool2d;

struct pool_state {
  clcnn_pool2d_params p;
  cbuf idx; /* max pooling: where each maximum came from */
};

/* A max pooling's window is 2x2 with stride 2 and no padding (the kernels and the fusion with
 * a conv that are made for it). */
static inline int pool_is_2x2(const clcnn_pool2d_params *p) {
  return p->kh == 2 && p->kw == 2 && p->stride_h == 2 && p->stride_w == 2 && p->pad_h == 0 && p->pad_w == 0;
}

#endif
