#!/bin/sh
# tests/test_layers_clblast.sh - every layer case of tests/test_layers again, with the GEMMs in
# CLBlast instead of clcnn's own kernels (the default on CPU devices): the plain im2col, CLBlast's
# split K and the GEMM weight gradient run there, where clcnn's panels and dot products run in
# tests/test_layers.
CLCNN_GEMM=clblast exec "$abs_top_builddir/tests/test_layers"
