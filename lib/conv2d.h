/* lib/conv2d.h - the state of a convolution, shared by conv2d.c and its transpose. */
#ifndef CLCNN_CONV2D_H
#define CLCNN_CONV2D_H

#include "graph.h"

struct conv_state {
  clcnn_conv2d_params p; /* normalised: no zeros */
  cbuf col;              /* im2col (its gradient and the GEMM's output are the net's shared
                            scratch: graph_shared) */
  cbuf wt;               /* the direct convolution's weights, in blocks of 8 output channels */
  int packed;            /* 0 not chosen yet, 1 im2col into clcnn's GEMM panels, 2 plain im2col (then any
                            GEMM); fixed at the first forward */
  int fuse_relu;         /* the relu after it is applied in its unpack, its mask in its pack */
  struct node *fpool;    /* the fused 2x2 max pooling whose output and indices it writes */
};

#endif
