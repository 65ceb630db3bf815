#!/bin/sh
# tests/test_net_clblast.sh - the whole-network checks of tests/test_net again, with the GEMMs
# in CLBlast instead of clcnn's own kernels (the default on CPU devices), so both backends are
# proven on every machine.
CLCNN_GEMM=clblast exec "$abs_top_builddir/tests/test_net"
