/* lib/ops.c - the op table: every kind of node, one line each. A kind is its files (lib/X.c and
 * cl/X.cl), its line here and its public builder; nothing else in the library names it. */
#include "graph.h"

extern const struct op op_conv2d, op_linear, op_relu, op_leaky_relu, op_sigmoid, op_tanh, op_maxpool2d, op_avgpool2d,
    op_global_avgpool, op_flatten, op_reshape, op_batchnorm, op_dropout, op_xent,
    op_conv_transpose2d, op_add, op_concat, op_upsample,
    op_bce, op_mse, op_smoothl1, op_yolo;

const struct op *const clcnn__ops[] = {
    &op_conv2d,
    &op_linear,
    &op_relu,
    &op_leaky_relu,
    &op_sigmoid,
    &op_tanh,
    &op_maxpool2d,
    &op_avgpool2d,
    &op_global_avgpool,
    &op_flatten,
    &op_reshape,
    &op_batchnorm,
    &op_dropout,
    &op_conv_transpose2d,
    &op_add,
    &op_concat,
    &op_upsample,
    &op_xent,
    &op_bce,
    &op_mse,
    &op_smoothl1,
    &op_yolo,
    NULL,
};
