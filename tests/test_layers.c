/* tests/test_layers.c - every layer, forward and backward, against tests/ref.h.
 *
 * For each layer type and several shapes (stride 2, padding, odd and non-square sizes and
 * kernels, batch > 1, a kernel covering the whole padded input, dilation and groups):
 *   - forward in a double context vs the double reference:  |a-b| <= 1e-12 + 1e-10*|b|;
 *   - forward in a float context vs the double reference:   |a-b| <= 1e-5*|b| + 1e-5*max|b|;
 *   - backward (double context) vs central finite differences of L = sum(out * G), h = 1e-6,
 *     through the library's own forward:                    |a-n| <= 1e-7 + 1e-6*|n|,
 *     every element of tensors up to 64 elements, 64 random ones of bigger tensors;
 *   - the gradient rule: a second backward without zero_grad doubles the parameter gradients
 *     exactly and leaves the input gradient exactly as it was;
 *   - a float and a double context on the same data agree: |f-d| <= 1e-5*|d| + 1e-5*max|d|
 *     for the output and every gradient.
 * Softmax cross-entropy: the loss vs the reference (same margins), the input and parameter
 * gradients vs finite differences of clcnn_net_loss (or the reference's analytic gradient for
 * logits near +-1000, where differences of a loss that large are dominated by rounding).
 *
 * All data are rounded to float first, so both contexts see the very same numbers.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h" /* the margins above, the helpers */

static clcnn_ctx *ctx64, *ctx32;

/* ---- one-layer cases ----------------------------------------------------------------- */
typedef struct {
  clcnn_layer_type type;
  int n, c, h, w;
  clcnn_conv2d_params conv; /* CONV2D */
  clcnn_pool2d_params pool; /* MAXPOOL2D, AVGPOOL2D */
  int out_features, bias;   /* LINEAR */
  double slope;             /* LEAKY_RELU */
} lcase;

#define CONV(N, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, G, B)                           \
  {.type = CLCNN_LAYER_CONV2D, .n = N, .c = C, .h = H, .w = W,                              \
   .conv = {.out_channels = OC, .kh = KH, .kw = KW, .stride_h = SH, .stride_w = SW,         \
            .pad_h = PH, .pad_w = PW, .dilation_h = DH, .dilation_w = DW, .groups = G,      \
            .bias = B}}
#define LIN(N, IN, OUT, B)                                                                  \
  {.type = CLCNN_LAYER_LINEAR, .n = N, .c = IN, .h = 1, .w = 1, .out_features = OUT, .bias = B}
#define POOL(T, N, C, H, W, KH, KW, SH, SW, PH, PW)                                         \
  {.type = T, .n = N, .c = C, .h = H, .w = W,                                               \
   .pool = {.kh = KH, .kw = KW, .stride_h = SH, .stride_w = SW, .pad_h = PH, .pad_w = PW}}
#define ACT(T, N, C, H, W, S) {.type = T, .n = N, .c = C, .h = H, .w = W, .slope = S}

static const lcase cases[] = {
    /* conv2d: N C H W  OC KH KW  SH SW  PH PW  DH DW  G  BIAS */
    CONV(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),  /* 'same' padding */
    CONV(3, 2, 9, 7, 3, 3, 2, 2, 2, 1, 0, 1, 1, 1, 1),  /* stride 2, 3x2 kernel */
    CONV(2, 4, 8, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 0),  /* dilation 2, groups 2, no bias */
    CONV(2, 2, 5, 4, 3, 7, 6, 1, 1, 1, 1, 1, 1, 1, 1),  /* kernel = whole padded input */
    CONV(2, 4, 7, 5, 2, 2, 3, 2, 1, 1, 1, 2, 1, 2, 1),  /* groups 2 of one output each */
    CONV(3, 4, 6, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4, 0),  /* depthwise, stride 2 */
    CONV(1, 1, 5, 5, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0),  /* 1x1, stride 2 */
    CONV(2, 3, 6, 5, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 1),  /* zero stride/dilation/groups = 1 */
    CONV(2, 3, 7, 9, 3, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1),  /* stride 1x2: im2col's strided copy along W only */
    CONV(2, 2, 9, 8, 2, 2, 3, 3, 2, 0, 1, 1, 1, 1, 0),  /* stride 3x2, pad 0x1 */
    /* linear: N IN OUT BIAS */
    LIN(3, 7, 5, 1),
    LIN(2, 12, 4, 0),
    LIN(1, 1, 3, 1),
    LIN(3, 9, 1, 1),
    /* activations */
    ACT(CLCNN_LAYER_RELU, 2, 3, 5, 4, 0),
    ACT(CLCNN_LAYER_RELU, 3, 1, 7, 3, 0),
    ACT(CLCNN_LAYER_LEAKY_RELU, 2, 3, 5, 4, 0.1),
    ACT(CLCNN_LAYER_LEAKY_RELU, 3, 1, 7, 3, 0.25),
    ACT(CLCNN_LAYER_SIGMOID, 2, 3, 5, 4, 0),
    ACT(CLCNN_LAYER_SIGMOID, 3, 1, 7, 3, 0),
    ACT(CLCNN_LAYER_TANH, 2, 3, 5, 4, 0),
    ACT(CLCNN_LAYER_TANH, 3, 1, 7, 3, 0),
    /* pools: N C H W  KH KW  SH SW  PH PW */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 3, 7, 6, 2, 2, 0, 0, 0, 0), /* stride = kernel, odd H */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 5, 7, 2, 2, 2, 2, 0, 0), /* 2x2 stride 2: odd H and W, edges zeroed */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 9, 7, 3, 2, 2, 2, 1, 1), /* 3x2, stride 2, pad */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 3, 2, 5, 4, 1, 1, 1, 1), /* whole padded input */
    POOL(CLCNN_LAYER_MAXPOOL2D, 3, 2, 8, 9, 3, 3, 2, 2, 1, 1),
    POOL(CLCNN_LAYER_MAXPOOL2D, 1, 4, 5, 7, 3, 3, 1, 2, 1, 0),
    POOL(CLCNN_LAYER_AVGPOOL2D, 2, 3, 7, 6, 2, 2, 0, 0, 0, 0),
    POOL(CLCNN_LAYER_AVGPOOL2D, 2, 2, 9, 7, 3, 2, 2, 2, 1, 1),
    POOL(CLCNN_LAYER_AVGPOOL2D, 2, 2, 3, 2, 5, 4, 1, 1, 1, 1),
    POOL(CLCNN_LAYER_AVGPOOL2D, 3, 2, 8, 9, 3, 3, 2, 2, 1, 1),
    POOL(CLCNN_LAYER_AVGPOOL2D, 1, 4, 5, 7, 3, 3, 1, 2, 1, 0),
    POOL(CLCNN_LAYER_AVGPOOL2D, 2, 3, 7, 6, 3, 3, 2, 2, 1, 1),
    /* global average pooling, flatten */
    ACT(CLCNN_LAYER_GLOBAL_AVGPOOL, 2, 3, 5, 4, 0),
    ACT(CLCNN_LAYER_GLOBAL_AVGPOOL, 3, 2, 7, 3, 0),
    ACT(CLCNN_LAYER_GLOBAL_AVGPOOL, 1, 4, 1, 1, 0),
    ACT(CLCNN_LAYER_FLATTEN, 2, 3, 4, 5, 0),
};

/* The kernels' fast paths and the host's choices between kernels, each on a shape that enters
 * it and one that just misses it (tests/README.md's table names these by their comments). */
static const lcase kcases[] = {
    /* conv2d weight gradient on CPU devices (clcnn's GEMM): dW^T = col . dY^T from the im2col
     * panels when >= 32 output channels and >= 64 weights each per group, else dot products */
    CONV(2, 8, 6, 5, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),   /* wide: 32 x 72, one split */
    CONV(2, 7, 6, 5, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0),   /* 63 weights: narrow, no bias */
    CONV(2, 8, 6, 5, 31, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),   /* 31 outputs: narrow (not 4k rows) */
    CONV(4, 9, 25, 25, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1), /* wide, 81 rows, K 2500: split in 3 of 834 */
    CONV(2, 8, 5, 4, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0),   /* wide, 72 outputs: 2 column panels */
    CONV(2, 16, 6, 5, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1),  /* wide, 2 groups of 32 */
    CONV(2, 8, 9, 9, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),   /* wide, stride 2 (strided im2col) */
    CONV(2, 1, 31, 31, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),  /* narrow: 5 outputs, 31 chunks of 64 + 2 */
    CONV(3, 2, 7, 9, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0),    /* narrow, 1x1: 2 weights per output */
    /* the direct convolution (stride 1, no dilation, one group, kernel > 1x1): forward when the
     * output rows are >= 32 long, input gradient when the input rows are; its tiles are 8
     * channels x 32 columns */
    CONV(2, 3, 5, 33, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),  /* both: 2 column tiles (1 column in the last), 11 channels */
    CONV(2, 4, 4, 32, 8, 3, 3, 1, 1, 0, 1, 1, 1, 1, 0),   /* both: one whole tile, 8 channels, pad 0x1 */
    CONV(1, 9, 6, 56, 17, 5, 3, 1, 1, 2, 0, 1, 1, 1, 1),  /* both: 5x3 kernel, 54 columns (22 in the last tile), 17 channels */
    CONV(2, 2, 3, 70, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1),   /* both: even kernel, 71 columns (3 tiles), 3 channels */
    CONV(1, 16, 3, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0),  /* both; weight gradient in chunks of 2 rows, the last 1 */
    CONV(2, 3, 4, 33, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1),   /* forward misses (31 columns), input gradient enters */
    CONV(2, 3, 4, 31, 9, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),   /* forward enters (33 columns), input gradient misses (31) */
    CONV(2, 3, 4, 34, 6, 3, 3, 1, 1, 3, 1, 1, 1, 1, 0),   /* both; pad 3 > K-1: dy cropped by a row (pad -1) */
    CONV(1, 2, 5, 66, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),   /* stride 2, 33 columns: misses */
    CONV(1, 2, 7, 40, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1),   /* dilation 2: misses */
    CONV(1, 4, 5, 36, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1),   /* 2 groups: misses */
    CONV(2, 3, 3, 40, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1),   /* 1x1: misses */
    /* GEMM: clcnn's split K (few 4x64 tiles, K >= 2048) and CLBlast's (m*n <= 16384, K >= 8192),
     * here the linear forward's K = in features; 8203 = 16 chunks of 513 (last 508), CLBlast's
     * 4 of 2050 and a rest of 3 */
    LIN(3, 8203, 5, 1),
    LIN(5, 8203, 65, 1), /* 2x2 tiles, 16 chunks: a last chunk running past K would read the next panels' rows */
    LIN(3, 2047, 5, 1), /* K just under 2048: one pass */
    LIN(2, 32, 3, 0),   /* K a multiple of 16: the transposed packing's whole blocks only */
    /* max pooling: the 2x2 stride 2 kernels (odd and even sizes) and the general ones,
     * whose backward has a branch for windows that do not overlap (stride = kernel, no pad) */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 6, 8, 2, 2, 2, 2, 0, 0), /* 2x2, even H and W */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 5, 6, 2, 2, 2, 2, 1, 1), /* 2x2 stride 2 padded: general */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 5, 6, 2, 2, 1, 1, 0, 0), /* 2x2 stride 1: general */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 7, 8, 3, 3, 3, 3, 0, 0), /* 3x3 stride 3: rows/cols past windows */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 3, 6, 6, 3, 2, 0, 0, 0, 0), /* 3x2, stride = kernel, exact tiling */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 7, 8, 3, 3, 3, 3, 1, 1), /* stride = kernel but padded: overlap rule */
    POOL(CLCNN_LAYER_MAXPOOL2D, 2, 2, 7, 8, 3, 3, 2, 3, 0, 0), /* stride != kernel in H */
};

/* Effective conv/pool hyper-parameters. */
typedef struct {
  int kh, kw, sh, sw, ph, pw, dh, dw, g;
} hyper;

static hyper hyper_of(const lcase *lc) {
  hyper hp = {1, 1, 1, 1, 0, 0, 1, 1, 1};
  if (lc->type == CLCNN_LAYER_CONV2D) {
    const clcnn_conv2d_params *p = &lc->conv;
    hp = (hyper){p->kh, p->kw, p->stride_h ? p->stride_h : 1, p->stride_w ? p->stride_w : 1,
                 p->pad_h, p->pad_w, p->dilation_h ? p->dilation_h : 1,
                 p->dilation_w ? p->dilation_w : 1, p->groups ? p->groups : 1};
  } else if (lc->type == CLCNN_LAYER_MAXPOOL2D || lc->type == CLCNN_LAYER_AVGPOOL2D) {
    const clcnn_pool2d_params *p = &lc->pool;
    hp = (hyper){p->kh, p->kw, p->stride_h ? p->stride_h : p->kh,
                 p->stride_w ? p->stride_w : p->kw, p->pad_h, p->pad_w, 1, 1, 1};
  }
  return hp;
}

/* Output shape per sample (c, h, w). */
static void out_shape(const lcase *lc, int *oc, int *oh, int *ow) {
  hyper hp = hyper_of(lc);
  *oc = lc->c;
  *oh = lc->h;
  *ow = lc->w;
  switch (lc->type) {
  case CLCNN_LAYER_CONV2D:
    *oc = lc->conv.out_channels;
    *oh = ref_out_dim(lc->h, hp.kh, hp.sh, hp.ph, hp.dh);
    *ow = ref_out_dim(lc->w, hp.kw, hp.sw, hp.pw, hp.dw);
    break;
  case CLCNN_LAYER_MAXPOOL2D:
  case CLCNN_LAYER_AVGPOOL2D:
    *oh = ref_out_dim(lc->h, hp.kh, hp.sh, hp.ph, 1);
    *ow = ref_out_dim(lc->w, hp.kw, hp.sw, hp.pw, 1);
    break;
  case CLCNN_LAYER_LINEAR: *oc = lc->out_features, *oh = *ow = 1; break;
  case CLCNN_LAYER_GLOBAL_AVGPOOL: *oh = *ow = 1; break;
  case CLCNN_LAYER_FLATTEN: *oc = lc->c * lc->h * lc->w, *oh = *ow = 1; break;
  default: break;
  }
}

/* Expected parameters: count, and for each ndim and dims. */
static int expected_params(const lcase *lc, int ndim[2], int dims[2][4], size_t count[2]) {
  memset(dims, 0, 2 * 4 * sizeof(int));
  int np = 0;
  if (lc->type == CLCNN_LAYER_CONV2D) {
    hyper hp = hyper_of(lc);
    int oc = lc->conv.out_channels;
    ndim[0] = 4, dims[0][0] = oc, dims[0][1] = lc->c / hp.g, dims[0][2] = hp.kh,
    dims[0][3] = hp.kw;
    count[0] = (size_t)oc * (lc->c / hp.g) * hp.kh * hp.kw;
    np = 1;
    if (lc->conv.bias) ndim[1] = 1, dims[1][0] = oc, count[1] = (size_t)oc, np = 2;
  } else if (lc->type == CLCNN_LAYER_LINEAR) {
    int in = lc->c * lc->h * lc->w;
    ndim[0] = 2, dims[0][0] = lc->out_features, dims[0][1] = in;
    count[0] = (size_t)lc->out_features * in;
    np = 1;
    if (lc->bias) ndim[1] = 1, dims[1][0] = lc->out_features, count[1] = lc->out_features, np = 2;
  }
  return np;
}

static void describe(const lcase *lc, char *buf, size_t size) {
  hyper hp = hyper_of(lc);
  int n = snprintf(buf, size, "%d x %dx%dx%d ", lc->n, lc->c, lc->h, lc->w);
  char *b = buf + n;
  size -= (size_t)n;
  switch (lc->type) {
  case CLCNN_LAYER_CONV2D:
    snprintf(b, size, "conv2d(oc %d, k %dx%d, s %dx%d, p %dx%d, d %dx%d, g %d%s)",
             lc->conv.out_channels, hp.kh, hp.kw, hp.sh, hp.sw, hp.ph, hp.pw, hp.dh, hp.dw, hp.g,
             lc->conv.bias ? ", bias" : ", no bias");
    break;
  case CLCNN_LAYER_LINEAR:
    snprintf(b, size, "linear(%d%s)", lc->out_features, lc->bias ? ", bias" : ", no bias");
    break;
  case CLCNN_LAYER_RELU: snprintf(b, size, "relu"); break;
  case CLCNN_LAYER_LEAKY_RELU: snprintf(b, size, "leaky_relu(%g)", lc->slope); break;
  case CLCNN_LAYER_SIGMOID: snprintf(b, size, "sigmoid"); break;
  case CLCNN_LAYER_TANH: snprintf(b, size, "tanh"); break;
  case CLCNN_LAYER_MAXPOOL2D:
  case CLCNN_LAYER_AVGPOOL2D:
    snprintf(b, size, "%s(k %dx%d, s %dx%d, p %dx%d)",
             lc->type == CLCNN_LAYER_MAXPOOL2D ? "maxpool2d" : "avgpool2d", hp.kh, hp.kw, hp.sh,
             hp.sw, hp.ph, hp.pw);
    break;
  case CLCNN_LAYER_GLOBAL_AVGPOOL: snprintf(b, size, "global_avgpool"); break;
  case CLCNN_LAYER_FLATTEN: snprintf(b, size, "flatten"); break;
  default: snprintf(b, size, "layer type %d", (int)lc->type); break;
  }
}

static clcnn_status add_layer(clcnn_net *net, const lcase *lc) {
  switch (lc->type) {
  case CLCNN_LAYER_CONV2D: return clcnn_net_add_conv2d(net, &lc->conv);
  case CLCNN_LAYER_LINEAR: return clcnn_net_add_linear(net, lc->out_features, lc->bias);
  case CLCNN_LAYER_RELU: return clcnn_net_add_relu(net);
  case CLCNN_LAYER_LEAKY_RELU: return clcnn_net_add_leaky_relu(net, lc->slope);
  case CLCNN_LAYER_SIGMOID: return clcnn_net_add_sigmoid(net);
  case CLCNN_LAYER_TANH: return clcnn_net_add_tanh(net);
  case CLCNN_LAYER_MAXPOOL2D: return clcnn_net_add_maxpool2d(net, &lc->pool);
  case CLCNN_LAYER_AVGPOOL2D: return clcnn_net_add_avgpool2d(net, &lc->pool);
  case CLCNN_LAYER_GLOBAL_AVGPOOL: return clcnn_net_add_global_avgpool(net);
  case CLCNN_LAYER_FLATTEN: return clcnn_net_add_flatten(net);
  default: break;
  }
  return CLCNN_ERR_INVALID_ARGUMENT;
}

/* The reference forward: x (n,c,h,w), params[0] weight, params[1] bias or NULL. */
static void ref_forward(const lcase *lc, const double *x, double *const params[2], double *y) {
  hyper hp = hyper_of(lc);
  size_t count = (size_t)lc->n * lc->c * lc->h * lc->w;
  switch (lc->type) {
  case CLCNN_LAYER_CONV2D:
    ref_conv2d(x, lc->n, lc->c, lc->h, lc->w, params[0], lc->conv.bias ? params[1] : NULL,
               lc->conv.out_channels, hp.kh, hp.kw, hp.sh, hp.sw, hp.ph, hp.pw, hp.dh, hp.dw,
               hp.g, y);
    break;
  case CLCNN_LAYER_LINEAR:
    ref_linear(x, lc->n, lc->c * lc->h * lc->w, params[0], lc->bias ? params[1] : NULL,
               lc->out_features, y);
    break;
  case CLCNN_LAYER_RELU: ref_activation(REF_RELU, 0, x, count, y); break;
  case CLCNN_LAYER_LEAKY_RELU: ref_activation(REF_LEAKY_RELU, lc->slope, x, count, y); break;
  case CLCNN_LAYER_SIGMOID: ref_activation(REF_SIGMOID, 0, x, count, y); break;
  case CLCNN_LAYER_TANH: ref_activation(REF_TANH, 0, x, count, y); break;
  case CLCNN_LAYER_MAXPOOL2D:
    ref_maxpool2d(x, lc->n, lc->c, lc->h, lc->w, hp.kh, hp.kw, hp.sh, hp.sw, hp.ph, hp.pw, y,
                  NULL);
    break;
  case CLCNN_LAYER_AVGPOOL2D:
    ref_avgpool2d(x, lc->n, lc->c, lc->h, lc->w, hp.kh, hp.kw, hp.sh, hp.sw, hp.ph, hp.pw, y);
    break;
  case CLCNN_LAYER_GLOBAL_AVGPOOL: ref_global_avgpool(x, lc->n, lc->c, lc->h, lc->w, y); break;
  case CLCNN_LAYER_FLATTEN: memcpy(y, x, count * sizeof(double)); break;
  default: break;
  }
}

/* Inputs that keep finite differences honest: distinct values 1/8 apart for max pooling (h
 * never moves an argmax), |x| >= 0.01 for the relus (h never crosses the kink). */
static void make_input(const lcase *lc, double *x, size_t count) {
  if (lc->type == CLCNN_LAYER_MAXPOOL2D) {
    size_t *perm = xcalloc(count, sizeof *perm);
    for (size_t i = 0; i < count; i++) perm[i] = i;
    for (size_t i = count; i > 1; i--) {
      size_t j = (size_t)ref_rng_int(&rng, (int)i), t = perm[i - 1];
      perm[i - 1] = perm[j];
      perm[j] = t;
    }
    for (size_t i = 0; i < count; i++) x[i] = ((double)perm[i] - (double)(count / 2)) * 0.125;
    free(perm);
  } else if (lc->type == CLCNN_LAYER_RELU || lc->type == CLCNN_LAYER_LEAKY_RELU) {
    for (size_t i = 0; i < count; i++)
      x[i] = (ref_rng_uniform(&rng) < 0.5 ? -1.0 : 1.0) * rndf(0.01, 1.0);
  } else {
    for (size_t i = 0; i < count; i++) x[i] = rndf(-1.0, 1.0);
  }
}

static const char *const pname[2] = {"weight", "bias"};

/* max_batch > lc->n runs a partial batch through a net made for a bigger one. */
static void run_case(const lcase *lc, int max_batch) {
  char name[200];
  describe(lc, name, sizeof name);
  if (max_batch > lc->n)
    snprintf(name + strlen(name), sizeof name - strlen(name), " (net max_batch %d)", max_batch);
  int oc, oh, ow, pndim[2] = {0, 0}, pdims[2][4];
  size_t pcount[2] = {0, 0};
  out_shape(lc, &oc, &oh, &ow);
  int np = expected_params(lc, pndim, pdims, pcount);
  size_t nin = (size_t)lc->n * lc->c * lc->h * lc->w, osz = (size_t)oc * oh * ow,
         nout = (size_t)lc->n * osz;

  double *x = dalloc(nin), *G = dalloc(nout), *yref = dalloc(nout), *y = dalloc(nout);
  double *p[2] = {NULL, NULL}, *g1[2] = {NULL, NULL}, *g2[2] = {NULL, NULL};
  double *dx1 = dalloc(nin), *dx2 = dalloc(nin), *y32 = dalloc(nout), *dx32 = dalloc(nin);
  double *g32[2] = {NULL, NULL};
  void *hx = NULL, *hG = NULL, *hbuf = NULL, *hp[2] = {NULL, NULL};
  clcnn_net *net = NULL;
  clcnn_ctx *cx = ctx64;
  char what[240];

  make_input(lc, x, nin);
  for (size_t i = 0; i < nout; i++) G[i] = rndf(-1.0, 1.0);
  for (int i = 0; i < np; i++) {
    p[i] = dalloc(pcount[i]), g1[i] = dalloc(pcount[i]), g2[i] = dalloc(pcount[i]);
    g32[i] = dalloc(pcount[i]);
    for (size_t j = 0; j < pcount[i]; j++) p[i][j] = rndf(-1.0, 1.0);
  }
  ref_forward(lc, x, p, yref);

  /* ---- double context: structure, forward, gradient rule, finite differences ---- */
  snprintf(what, sizeof what, "%s [f64]", name);
  CALL(cx, what, clcnn_net_create(cx, max_batch, lc->c, lc->h, lc->w, &net));
  CALL(cx, what, add_layer(net, lc));
  {
    int ok = clcnn_net_num_layers(net) == 1 && clcnn_net_layer_type(net, 0) == lc->type &&
             clcnn_net_output_size(net) == osz && clcnn_net_input_size(net) == nin / lc->n &&
             clcnn_net_num_params(net) == np;
    int dims[4] = {0, 0, 0, 0};
    if (clcnn_net_layer_shape(net, 0, dims) != CLCNN_SUCCESS || dims[0] != 1 ||
        (size_t)dims[1] * dims[2] * dims[3] != osz ||
        ((lc->type != CLCNN_LAYER_LINEAR && lc->type != CLCNN_LAYER_FLATTEN) &&
         (dims[1] != oc || dims[2] != oh || dims[3] != ow)))
      ok = 0;
    for (int i = 0; ok && i < np; i++) {
      clcnn_param_info info;
      char want[32];
      snprintf(want, sizeof want, "0.%s", pname[i]);
      if (clcnn_net_param_info(net, i, &info) != CLCNN_SUCCESS || strcmp(info.name, want) ||
          info.layer != 0 || info.ndim != pndim[i] || info.count != pcount[i] ||
          info.dtype != CLCNN_DTYPE_REAL)
        ok = 0;
      for (int d = 0; ok && d < pndim[i]; d++)
        if (info.dims[d] != pdims[i][d]) ok = 0;
    }
    tap_ok(ok, "%s: output (%d,%d,%d) of %zu, %d parameter(s), shapes and names", what, oc, oh,
           ow, osz, np);
  }
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_param_write(net, i, p[i]));
  CALL(cx, what, clcnn_net_forward(net, x, lc->n));
  CALL(cx, what, clcnn_net_read_output(net, y));
  {
    double e;
    int ok = close_f64(y, yref, nout, &e);
    tap_ok(ok, "%s: forward vs reference, max err %.3g (<= 1e-12 + 1e-10*|ref|)", what, e);
  }
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  CALL(cx, what, clcnn_net_read_input_grad(net, dx1));
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_grad_read(net, i, g1[i]));
  CALL(cx, what, clcnn_net_forward(net, x, lc->n));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  CALL(cx, what, clcnn_net_read_input_grad(net, dx2));
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_grad_read(net, i, g2[i]));
  {
    double e = 0.0;
    int ok = 1;
    for (size_t j = 0; j < nin; j++) {
      if (dx2[j] != dx1[j]) ok = 0;
      if (fabs(dx2[j] - dx1[j]) > e) e = fabs(dx2[j] - dx1[j]);
    }
    tap_ok(ok, "%s: input gradient overwritten by a second backward, max |dx2-dx1| %.3g", what,
           e);
    if (np) {
      ok = 1, e = 0.0;
      for (int i = 0; i < np; i++)
        for (size_t j = 0; j < pcount[i]; j++) {
          if (g2[i][j] != 2 * g1[i][j]) ok = 0;
          if (fabs(g2[i][j] - 2 * g1[i][j]) > e) e = fabs(g2[i][j] - 2 * g1[i][j]);
        }
      tap_ok(ok, "%s: parameter gradients accumulate, 2 backwards = exactly 2x, max err %.3g",
             what, e);
    }
  }
  {
    double e;
    size_t k;
    int r = fd_central(ctx64, net, lc->n, x, -1, x, nin, FD_SAMPLE, G, nout, dx1, &e, &k, what);
    if (r >= 0)
      tap_ok(r, "%s: d input vs central differences (%zu of %zu), max err %.3g "
             "(<= 1e-7 + 1e-6*|fd|)", what, k, nin, e);
    for (int i = 0; i < np; i++) {
      r = fd_central(ctx64, net, lc->n, x, i, p[i], pcount[i], FD_SAMPLE, G, nout, g1[i], &e, &k, what);
      if (r >= 0)
        tap_ok(r, "%s: d %s vs central differences (%zu of %zu), max err %.3g "
               "(<= 1e-7 + 1e-6*|fd|)", what, pname[i], k, pcount[i], e);
    }
  }
  if (np) { /* every element of every gradient against the reference's adjoint */
    double *dxr = dalloc(nin), *gr[2] = {dalloc(pcount[0]), dalloc(np > 1 ? pcount[1] : 1)}, e[3] = {0, 0, 0};
    int has_b = np > 1;
    if (lc->type == CLCNN_LAYER_CONV2D) {
      hyper h = hyper_of(lc);
      ref_conv2d_backward(x, lc->n, lc->c, lc->h, lc->w, p[0], oc, h.kh, h.kw, h.sh, h.sw, h.ph, h.pw, h.dh,
                          h.dw, h.g, G, dxr, gr[0], has_b ? gr[1] : NULL);
    } else { /* linear: dx = G W, dW = G^T x, db = sum G */
      int in = lc->c * lc->h * lc->w;
      for (int b = 0; b < lc->n; b++)
        for (int j = 0; j < in; j++) {
          double a = 0.0;
          for (int o = 0; o < oc; o++) a += G[(size_t)b * oc + o] * p[0][(size_t)o * in + j];
          dxr[(size_t)b * in + j] = a;
        }
      for (int o = 0; o < oc; o++) {
        for (int j = 0; j < in; j++) {
          double a = 0.0;
          for (int b = 0; b < lc->n; b++) a += G[(size_t)b * oc + o] * x[(size_t)b * in + j];
          gr[0][(size_t)o * in + j] = a;
        }
        if (has_b) {
          double a = 0.0;
          for (int b = 0; b < lc->n; b++) a += G[(size_t)b * oc + o];
          gr[1][o] = a;
        }
      }
    }
    int ok = close_f64(dx1, dxr, nin, &e[0]);
    for (int i = 0; i < np; i++) ok &= close_f64(g1[i], gr[i], pcount[i], &e[1 + i]);
    tap_ok(ok, "%s: every gradient vs the reference's adjoint (%zu + %zu + %zu), max err d input %.3g, d weight %.3g, "
           "d bias %.3g (<= 1e-12 + 1e-10*|ref|)", what, nin, pcount[0], has_b ? pcount[1] : 0, e[0], e[1], e[2]);
    free(dxr), free(gr[0]), free(gr[1]);
  }
  if (lc->type == CLCNN_LAYER_MAXPOOL2D) { /* the exact rule, through the reference argmax */
    hyper h = hyper_of(lc);
    size_t *am = xcalloc(nout, sizeof *am);
    double *dxr = dalloc(nin), *yr = dalloc(nout), e;
    ref_maxpool2d(x, lc->n, lc->c, lc->h, lc->w, h.kh, h.kw, h.sh, h.sw, h.ph, h.pw, yr, am);
    ref_maxpool2d_backward(G, am, nout, dxr, nin);
    int ok = close_f64(dx1, dxr, nin, &e);
    tap_ok(ok, "%s: d input vs reference argmax scatter, max err %.3g", what, e);
    free(am), free(dxr), free(yr);
  }
  clcnn_net_destroy(net);
  net = NULL;

  /* ---- float context: forward vs reference, everything vs the double context ---- */
  cx = ctx32;
  snprintf(what, sizeof what, "%s [f32]", name);
  hx = to_host(cx, x, nin);
  hG = to_host(cx, G, nout);
  hbuf = xcalloc(nout > nin ? nout : nin, sizeof(float));
  CALL(cx, what, clcnn_net_create(cx, max_batch, lc->c, lc->h, lc->w, &net));
  CALL(cx, what, add_layer(net, lc));
  for (int i = 0; i < np; i++) {
    hp[i] = to_host(cx, p[i], pcount[i]);
    CALL(cx, what, clcnn_net_param_write(net, i, hp[i]));
  }
  CALL(cx, what, clcnn_net_forward(net, hx, lc->n));
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, hG));
  CALL(cx, what, clcnn_net_read_output(net, hbuf));
  from_host(cx, hbuf, y32, nout);
  CALL(cx, what, clcnn_net_read_input_grad(net, hbuf));
  from_host(cx, hbuf, dx32, nin);
  for (int i = 0; i < np; i++) {
    free(hp[i]);
    hp[i] = xcalloc(pcount[i], sizeof(float));
    CALL(cx, what, clcnn_net_grad_read(net, i, hp[i]));
    from_host(cx, hp[i], g32[i], pcount[i]);
  }
  {
    double e, e2;
    int ok = close_f32(y32, yref, nout, &e);
    tap_ok(ok, "%s: forward vs double reference, max err %.3g (<= 1e-5*|ref| + 1e-5*max|ref|)",
           what, e);
    ok = close_f32(y32, y, nout, &e) & close_f32(dx32, dx1, nin, &e2);
    char msg[160];
    int len = snprintf(msg, sizeof msg, "out %.3g, d input %.3g", e, e2);
    for (int i = 0; i < np; i++) {
      ok &= close_f32(g32[i], g1[i], pcount[i], &e);
      len += snprintf(msg + len, sizeof msg - (size_t)len, ", d %s %.3g", pname[i], e);
    }
    tap_ok(ok, "%s: float vs double context: max err %s (<= 1e-5*|d| + 1e-5*max|d|)", what,
           msg);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(G), free(yref), free(y), free(dx1), free(dx2), free(y32), free(dx32);
  free(hx), free(hG), free(hbuf);
  for (int i = 0; i < 2; i++) free(p[i]), free(g1[i]), free(g2[i]), free(g32[i]), free(hp[i]);
}

/* ---- softmax cross-entropy ---------------------------------------------------------- */
typedef struct {
  int n, c, h, w;
  int linear_out; /* 0: a flatten layer, the input is the logits; else a linear layer */
  int huge;       /* logits near +-1000: exp() overflows unless the max is subtracted */
  int max_batch;  /* of the net; 0: n */
} xcase;

static const xcase xcases[] = {
    {3, 5, 1, 1, 0, 0, 0},
    {3, 5, 1, 1, 0, 0, 5}, /* a partial batch: the mean is over 3 */
    {2, 2, 2, 2, 0, 0, 0}, /* 8 classes from a 2x2x2 input */
    {4, 6, 1, 1, 5, 0, 0},
    {2, 6, 1, 1, 5, 0, 4},
    {3, 4, 1, 1, 0, 1, 0},
    {2, 3, 1, 1, 4, 1, 0}, /* linear to huge logits */
};

/* Loss through the library: forward, backward(labels), loss. */
static clcnn_status lib_loss(clcnn_net *net, const void *x, int n, const int32_t *labels,
                             double *loss) {
  clcnn_status s = clcnn_net_forward(net, x, n);
  if (!s) s = clcnn_net_backward(net, labels);
  if (!s) s = clcnn_net_loss(net, loss);
  return s;
}

static void run_xent(const xcase *xc) {
  int n = xc->n, in = xc->c * xc->h * xc->w, k = xc->linear_out ? xc->linear_out : in;
  size_t nin = (size_t)n * in, nz = (size_t)n * k, nw = (size_t)k * in;
  int mb = xc->max_batch > n ? xc->max_batch : n;
  char name[200], what[240];
  snprintf(name, sizeof name, "%d x %dx%dx%d %s -> softmax_xent(%d classes)%s%s", n, xc->c, xc->h,
           xc->w, xc->linear_out ? "linear(bias)" : "flatten", k,
           xc->huge ? ", logits near +-1000" : "", mb > n ? " (net max_batch > n)" : "");
  double *x = dalloc(nin), *z = dalloc(nz), *dz = dalloc(nz), *dx = dalloc(nin);
  double *wt = dalloc(nw), *b = dalloc((size_t)k), *gw = dalloc(nw), *gb = dalloc((size_t)k);
  double *dxr = dalloc(nin), *gwr = dalloc(nw), *gbr = dalloc((size_t)k);
  int32_t *labels = xcalloc((size_t)n, sizeof *labels);
  void *hx = NULL, *hbuf = NULL;
  clcnn_net *net = NULL;
  clcnn_ctx *cx = ctx64;

  for (int i = 0; i < n; i++) labels[i] = ref_rng_int(&rng, k);
  for (size_t j = 0; j < nw; j++) wt[j] = rndf(-1.0, 1.0);
  for (int j = 0; j < k; j++) b[j] = rndf(-1.0, 1.0);
  if (!xc->huge) {
    for (size_t j = 0; j < nin; j++) x[j] = rndf(-3.0, 3.0);
  } else if (!xc->linear_out) {
    /* rows: all near +1000, all near -1000, and one spread over [-1000, 1000] */
    for (int r = 0; r < n; r++)
      for (int j = 0; j < in; j++) {
        double base = r % 3 == 0 ? 1000.0 : r % 3 == 1 ? -1000.0 : (j % 2 ? 1000.0 : -1000.0);
        x[(size_t)r * in + j] = base + rndf(-2.0, 2.0);
      }
  } else {
    for (size_t j = 0; j < nin; j++) x[j] = (j % 2 ? -500.0 : 500.0) + rndf(-1.0, 1.0);
  }
  if (xc->linear_out)
    ref_linear(x, n, in, wt, b, k, z);
  else
    memcpy(z, x, nz * sizeof(double));
  double lref = ref_softmax_xent(z, n, k, labels, dz), zmax = max_abs(z, nz);
  /* analytic reference gradients: dx = dz W (linear) or dz; dW = dz^T x; db = sum dz */
  for (int r = 0; r < n; r++)
    for (int j = 0; j < in; j++) {
      double a = 0.0;
      if (xc->linear_out)
        for (int o = 0; o < k; o++) a += dz[(size_t)r * k + o] * wt[(size_t)o * in + j];
      else
        a = dz[(size_t)r * in + j];
      dxr[(size_t)r * in + j] = a;
    }
  for (int o = 0; o < k; o++) {
    double sb = 0.0;
    for (int r = 0; r < n; r++) sb += dz[(size_t)r * k + o];
    gbr[o] = sb;
    for (int j = 0; j < in; j++) {
      double a = 0.0;
      for (int r = 0; r < n; r++) a += dz[(size_t)r * k + o] * x[(size_t)r * in + j];
      gwr[(size_t)o * in + j] = a;
    }
  }

  /* ---- double context ---- */
  snprintf(what, sizeof what, "%s [f64]", name);
  CALL(cx, what, clcnn_net_create(cx, mb, xc->c, xc->h, xc->w, &net));
  if (xc->linear_out) {
    if (xc->h != 1 || xc->w != 1) CALL(cx, what, clcnn_net_add_flatten(net));
    CALL(cx, what, clcnn_net_add_linear(net, k, 1));
    CALL(cx, what, clcnn_net_param_write(net, 0, wt));
    CALL(cx, what, clcnn_net_param_write(net, 1, b));
  } else {
    CALL(cx, what, clcnn_net_add_flatten(net));
  }
  CALL(cx, what, clcnn_net_zero_grad(net));
  double loss = NAN;
  CALL(cx, what, lib_loss(net, x, n, labels, &loss));
  CALL(cx, what, clcnn_net_read_input_grad(net, dx));
  if (xc->linear_out) {
    CALL(cx, what, clcnn_net_grad_read(net, 0, gw));
    CALL(cx, what, clcnn_net_grad_read(net, 1, gb));
  }
  {
    double e = fabs(loss - lref);
    tap_ok(isfinite(loss) && e <= F64_ABS + F64_REL * fabs(lref),
           "%s: loss %.15g vs reference %.15g, err %.3g (<= 1e-12 + 1e-10*|ref|)", what, loss,
           lref, e);
    double e1, e2 = 0, e3 = 0;
    char msg[120] = "";
    int ok = close_f64(dx, dxr, nin, &e1);
    if (xc->linear_out) {
      ok &= close_f64(gw, gwr, nw, &e2) & close_f64(gb, gbr, (size_t)k, &e3);
      snprintf(msg, sizeof msg, ", d weight %.3g, d bias %.3g", e2, e3);
    }
    tap_ok(ok, "%s: gradients vs analytic reference, max err d input %.3g%s "
           "(<= 1e-12 + 1e-10*|ref|)", what, e1, msg);
  }
  if (!xc->huge) { /* finite differences of clcnn_net_loss */
    struct {
      const char *name;
      double *t, *ana;
      size_t count;
      int pidx;
    } ts[3] = {{"input", x, dx, nin, -1}, {"weight", wt, gw, nw, 0}, {"bias", b, gb, (size_t)k, 1}};
    int nts = xc->linear_out ? 3 : 1;
    size_t *idx = xcalloc(nw > nin ? nw : nin, sizeof *idx);
    for (int ti = 0; ti < nts; ti++) {
      size_t cnt = pick(idx, ts[ti].count);
      double m = 0.0;
      int ok = 1;
      for (size_t s = 0; s < cnt; s++) {
        size_t j = idx[s];
        double keep = ts[ti].t[j], lp = NAN, lm = NAN;
        clcnn_status st = 0;
        ts[ti].t[j] = keep + FD_H;
        if (ts[ti].pidx >= 0) st = clcnn_net_param_write(net, ts[ti].pidx, ts[ti].t);
        if (!st) st = lib_loss(net, x, n, labels, &lp);
        ts[ti].t[j] = keep - FD_H;
        if (!st && ts[ti].pidx >= 0) st = clcnn_net_param_write(net, ts[ti].pidx, ts[ti].t);
        if (!st) st = lib_loss(net, x, n, labels, &lm);
        ts[ti].t[j] = keep;
        if (!st && ts[ti].pidx >= 0) st = clcnn_net_param_write(net, ts[ti].pidx, ts[ti].t);
        if (st) {
          free(idx);
          CALL(cx, what, st);
        }
        double num = (lp - lm) / (2 * FD_H), e = fabs(ts[ti].ana[j] - num);
        if (!(e <= FD_ABS + FD_REL * fabs(num))) {
          if (ok)
            tap_diag("%s: d %s first miss at %zu: analytic %.12g, numeric %.12g", what,
                     ts[ti].name, j, ts[ti].ana[j], num);
          ok = 0;
        }
        if (isnan(e) || e > m) m = isnan(m) ? m : e;
      }
      tap_ok(ok, "%s: d %s vs central differences of the loss (%zu of %zu), max err %.3g "
             "(<= 1e-7 + 1e-6*|fd|)", what, ts[ti].name, cnt, ts[ti].count, m);
    }
    free(idx);
  }
  clcnn_net_destroy(net);
  net = NULL;

  /* ---- float context ---- */
  cx = ctx32;
  snprintf(what, sizeof what, "%s [f32]", name);
  hx = to_host(cx, x, nin);
  hbuf = xcalloc(nw > nin ? nw : nin, sizeof(float));
  CALL(cx, what, clcnn_net_create(cx, mb, xc->c, xc->h, xc->w, &net));
  if (xc->linear_out) {
    if (xc->h != 1 || xc->w != 1) CALL(cx, what, clcnn_net_add_flatten(net));
    CALL(cx, what, clcnn_net_add_linear(net, k, 1));
    void *hw = to_host(cx, wt, nw), *hb = to_host(cx, b, (size_t)k);
    clcnn_status s1 = clcnn_net_param_write(net, 0, hw), s2 = clcnn_net_param_write(net, 1, hb);
    free(hw), free(hb);
    CALL(cx, what, s1);
    CALL(cx, what, s2);
  } else {
    CALL(cx, what, clcnn_net_add_flatten(net));
  }
  CALL(cx, what, clcnn_net_zero_grad(net));
  loss = NAN;
  CALL(cx, what, lib_loss(net, hx, n, labels, &loss));
  CALL(cx, what, clcnn_net_read_input_grad(net, hbuf));
  from_host(cx, hbuf, dx, nin);
  if (xc->linear_out) {
    CALL(cx, what, clcnn_net_grad_read(net, 0, hbuf));
    from_host(cx, hbuf, gw, nw);
    CALL(cx, what, clcnn_net_grad_read(net, 1, hbuf));
    from_host(cx, hbuf, gb, (size_t)k);
  }
  {
    double e = fabs(loss - lref);
    tap_ok(isfinite(loss) && e <= F32_REL * fabs(lref) + F32_SCALE * zmax,
           "%s: loss %.9g vs double reference %.15g, err %.3g (<= 1e-5*|ref| + 1e-5*max|logit|)",
           what, loss, lref, e);
    double e1, e2 = 0, e3 = 0;
    char msg[120] = "";
    int ok = close_f32(dx, dxr, nin, &e1);
    if (xc->linear_out) {
      ok &= close_f32(gw, gwr, nw, &e2) & close_f32(gb, gbr, (size_t)k, &e3);
      snprintf(msg, sizeof msg, ", d weight %.3g, d bias %.3g", e2, e3);
    }
    tap_ok(ok, "%s: gradients vs double reference, max err d input %.3g%s "
           "(<= 1e-5*|ref| + 1e-5*max|ref|)", what, e1, msg);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(z), free(dz), free(dx), free(wt), free(b), free(gw), free(gb);
  free(dxr), free(gwr), free(gbr), free(labels), free(hx), free(hbuf);
}

/* ---- conv -> relu -> max pooling, fused or not ----------------------------------------- */
typedef struct {
  int n, c, h, w, max_batch;
  clcnn_conv2d_params conv;
  int relu;                 /* a relu after the conv */
  clcnn_pool2d_params pool; /* kh 0: no pooling after it */
  int fused;                /* 1: relu fused; 2: relu and pooling fused */
  const char *why;
} fcase;

#define FUSED(N, C, H, W, OC, K, S, P, B, RELU, PK, PS, F, WHY)                                 \
  {N, C, H, W, N + (N == 3), {.out_channels = OC, .kh = K, .kw = K, .stride_h = S, .stride_w = S, .pad_h = P, \
                   .pad_w = P, .bias = B},                                                    \
   RELU, {.kh = PK, .kw = PK, .stride_h = PS, .stride_w = PS}, F, WHY}

static const fcase fcases[] = {
    /* N C H W  OC K S P  BIAS  RELU  POOL K, S  FUSED */
    FUSED(2, 3, 8, 6, 4, 3, 1, 1, 1, 1, 2, 2, 2, "even conv output"),
    FUSED(2, 3, 8, 6, 4, 3, 1, 1, 0, 1, 2, 2, 2, "even conv output, no bias"),
    FUSED(2, 2, 9, 7, 3, 3, 1, 1, 0, 1, 2, 2, 2, "odd H and W, no bias"),
    FUSED(3, 2, 9, 6, 5, 3, 1, 1, 1, 1, 2, 2, 2, "odd H, even W"),
    FUSED(2, 2, 8, 7, 3, 3, 1, 1, 0, 1, 2, 2, 2, "even H, odd W, no bias"),
    FUSED(2, 3, 11, 10, 4, 3, 2, 1, 1, 1, 2, 2, 2, "stride-2 conv, 6x5 output"),
    FUSED(2, 8, 7, 6, 32, 3, 1, 1, 1, 1, 2, 2, 2, "32 outputs (wide weight gradient)"),
    FUSED(2, 3, 7, 6, 4, 3, 1, 1, 0, 1, 0, 0, 1, "relu only, no bias"),
    FUSED(2, 3, 7, 6, 4, 3, 1, 1, 1, 1, 0, 0, 1, "relu only"),
    FUSED(2, 3, 8, 6, 4, 3, 1, 1, 1, 1, 2, 1, 1, "2x2 stride 1 pooling: not fused"),
    FUSED(2, 3, 9, 7, 4, 3, 1, 1, 0, 1, 3, 2, 1, "3x3 stride 2 pooling: not fused"),
    FUSED(2, 3, 8, 6, 4, 3, 1, 1, 1, 0, 2, 2, 0, "no relu: pooling not fused"),
    FUSED(2, 3, 7, 7, 4, 3, 1, 1, 0, 0, 0, 0, 0, "no relu, no bias: conv alone"),
};

/* The chain's reference: conv output y0 (pre-relu), the final output, and the argmax. */
static void fref_forward(const fcase *fc, const double *x, double *const p[2], double *y0, double *r, double *out,
                         size_t *am, int oh, int ow) {
  const clcnn_conv2d_params *cp = &fc->conv;
  ref_conv2d(x, fc->n, fc->c, fc->h, fc->w, p[0], cp->bias ? p[1] : NULL, cp->out_channels, cp->kh, cp->kw,
             cp->stride_h, cp->stride_w, cp->pad_h, cp->pad_w, 1, 1, 1, y0);
  size_t ny = (size_t)fc->n * cp->out_channels * oh * ow;
  if (fc->relu) ref_activation(REF_RELU, 0, y0, ny, r);
  else memcpy(r, y0, ny * sizeof *r);
  if (fc->pool.kh)
    ref_maxpool2d(r, fc->n, cp->out_channels, oh, ow, fc->pool.kh, fc->pool.kw, fc->pool.stride_h,
                  fc->pool.stride_w, 0, 0, out, am);
  else
    memcpy(out, r, ny * sizeof *out);
}

/* Do finite differences of step 1e-6 keep every relu on its side and every argmax in place?
 * Pre-relu values at least 1e-5 from 0, and the values a window compares at least 1e-5 apart
 * (those the relu zeroed tie harmlessly: their gradient is 0 whichever wins). */
static int fd_safe(const fcase *fc, const double *y0, const double *r, int oh, int ow) {
  size_t ny = (size_t)fc->n * fc->conv.out_channels * oh * ow;
  if (fc->relu)
    for (size_t i = 0; i < ny; i++)
      if (fabs(y0[i]) < 1e-5) return 0;
  if (!fc->pool.kh) return 1;
  int kh = fc->pool.kh, sh = fc->pool.stride_h, ph = ref_out_dim(oh, kh, sh, 0, 1), pw = ref_out_dim(ow, kh, sh, 0, 1);
  for (int pl = 0; pl < fc->n * fc->conv.out_channels; pl++)
    for (int i = 0; i < ph; i++)
      for (int j = 0; j < pw; j++)
        for (int a = 0; a < kh * kh; a++)
          for (int b = a + 1; b < kh * kh; b++) {
            double u = r[((size_t)pl * oh + i * sh + a / kh) * ow + j * sh + a % kh];
            double v = r[((size_t)pl * oh + i * sh + b / kh) * ow + j * sh + b % kh];
            if ((u != 0 || v != 0) && fabs(u - v) < 1e-5) return 0;
          }
  return 1;
}

static void run_fused(const fcase *fc) {
  const clcnn_conv2d_params *cp = &fc->conv;
  int oc = cp->out_channels, oh = ref_out_dim(fc->h, cp->kh, cp->stride_h, cp->pad_h, 1),
      ow = ref_out_dim(fc->w, cp->kw, cp->stride_w, cp->pad_w, 1);
  int qh = fc->pool.kh ? ref_out_dim(oh, fc->pool.kh, fc->pool.stride_h, 0, 1) : oh;
  int qw = fc->pool.kh ? ref_out_dim(ow, fc->pool.kw, fc->pool.stride_w, 0, 1) : ow;
  size_t nin = (size_t)fc->n * fc->c * fc->h * fc->w, ny = (size_t)fc->n * oc * oh * ow,
         nout = (size_t)fc->n * oc * qh * qw, pcount[2] = {(size_t)oc * fc->c * cp->kh * cp->kw, (size_t)oc};
  int np = cp->bias ? 2 : 1, nl = 1 + fc->relu + (fc->pool.kh > 0);
  char name[200], what[240];
  snprintf(name, sizeof name, "%d x %dx%dx%d conv2d(oc %d, k %d, s %d, p %d%s)%s", fc->n, fc->c, fc->h, fc->w, oc,
           cp->kh, cp->stride_h, cp->pad_h, cp->bias ? ", bias" : ", no bias", fc->relu ? " -> relu" : "");
  if (fc->pool.kh)
    snprintf(name + strlen(name), sizeof name - strlen(name), " -> maxpool2d(k %d, s %d)", fc->pool.kh,
             fc->pool.stride_h);
  snprintf(name + strlen(name), sizeof name - strlen(name), " [%s]", fc->why);
  double *x = dalloc(nin), *y0 = dalloc(ny), *r = dalloc(ny), *yref = dalloc(nout), *G = dalloc(nout);
  double *y = dalloc(nout), *dx = dalloc(nin), *dxr = dalloc(nin), *dr = dalloc(ny), *y32 = dalloc(nout);
  double *dx32 = dalloc(nin), *p[2], *g[2], *gr[2], *g32[2], *gnodx = dalloc(pcount[0]);
  size_t *am = xcalloc(nout, sizeof *am);
  void *hx = NULL, *hG = NULL, *hbuf = NULL, *hp[2] = {NULL, NULL};
  for (int i = 0; i < 2; i++) p[i] = dalloc(pcount[i]), g[i] = dalloc(pcount[i]), gr[i] = dalloc(pcount[i]),
                              g32[i] = dalloc(pcount[i]);
  clcnn_net *net = NULL;
  clcnn_ctx *cx = ctx64;
  int tries = 0;
  do { /* data on which finite differences are exact up to rounding */
    for (size_t i = 0; i < nin; i++) x[i] = rndf(-1.0, 1.0);
    for (int i = 0; i < np; i++)
      for (size_t j = 0; j < pcount[i]; j++) p[i][j] = rndf(-1.0, 1.0);
    fref_forward(fc, x, p, y0, r, yref, am, oh, ow);
  } while (!fd_safe(fc, y0, r, oh, ow) && ++tries < 100);
  if (tries == 100) tap_bail("no finite-difference-safe data for a fused case");
  for (size_t i = 0; i < nout; i++) G[i] = rndf(-1.0, 1.0);
  /* the reference backward: through the argmax, the relu's mask, the conv's adjoint */
  if (fc->pool.kh) ref_maxpool2d_backward(G, am, nout, dr, ny);
  else memcpy(dr, G, ny * sizeof *dr);
  for (size_t i = 0; fc->relu && i < ny; i++)
    if (!(y0[i] > 0)) dr[i] = 0;
  ref_conv2d_backward(x, fc->n, fc->c, fc->h, fc->w, p[0], oc, cp->kh, cp->kw, cp->stride_h, cp->stride_w,
                      cp->pad_h, cp->pad_w, 1, 1, 1, dr, dxr, gr[0], cp->bias ? gr[1] : NULL);

  snprintf(what, sizeof what, "%s [f64]", name);
  CALL(cx, what, clcnn_net_create(cx, fc->max_batch, fc->c, fc->h, fc->w, &net));
  CALL(cx, what, clcnn_net_add_conv2d(net, cp));
  if (fc->relu) CALL(cx, what, clcnn_net_add_relu(net));
  if (fc->pool.kh) CALL(cx, what, clcnn_net_add_maxpool2d(net, &fc->pool));
  CALL(cx, what, clcnn_net_finalize(net)); /* the fusion pass runs on the finished graph */
  {
    int ok = clcnn_net_num_layers(net) == nl && clcnn_net_output_size(net) == (size_t)oc * qh * qw;
    for (int l = 1; l < nl; l++) ok &= clcnn_net_layer_fused(net, l) == (l <= fc->fused);
    tap_ok(ok, "%s: %d layer(s), output %dx%dx%d, %s", what, nl, oc, qh, qw,
           fc->fused == 2 ? "relu and pooling run in the conv" : fc->fused ? "relu runs in the conv" : "nothing fused");
  }
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_param_write(net, i, p[i]));
  CALL(cx, what, clcnn_net_forward(net, x, fc->n));
  CALL(cx, what, clcnn_net_read_output(net, y));
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  CALL(cx, what, clcnn_net_read_input_grad(net, dx));
  for (int i = 0; i < np; i++) CALL(cx, what, clcnn_net_grad_read(net, i, g[i]));
  {
    double e[4] = {0, 0, 0, 0};
    int ok = close_f64(y, yref, nout, &e[0]);
    tap_ok(ok, "%s: forward vs reference, max err %.3g (<= 1e-12 + 1e-10*|ref|)", what, e[0]);
    ok = close_f64(dx, dxr, nin, &e[1]);
    for (int i = 0; i < np; i++) ok &= close_f64(g[i], gr[i], pcount[i], &e[2 + i]);
    tap_ok(ok, "%s: every gradient vs the reference's adjoint, max err d input %.3g, d weight %.3g, d bias %.3g",
           what, e[1], e[2], e[3]);
    size_t k;
    int rr = fd_central(ctx64, net, fc->n, x, -1, x, nin, FD_SAMPLE, G, nout, dx, &e[0], &k, what);
    if (rr >= 0)
      tap_ok(rr, "%s: d input vs central differences (%zu of %zu), max err %.3g", what, k, nin, e[0]);
    for (int i = 0; i < np; i++) {
      rr = fd_central(ctx64, net, fc->n, x, i, p[i], pcount[i], FD_SAMPLE, G, nout, g[i], &e[0], &k, what);
      if (rr >= 0)
        tap_ok(rr, "%s: d %s vs central differences (%zu of %zu), max err %.3g", what, pname[i], k, pcount[i],
               e[0]);
    }
  }
  /* the first layer without the input gradient (the training default): the same parameter
   * gradients, bit for bit */
  CALL(cx, what, clcnn_net_set_input_grad(net, 0));
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_forward(net, x, fc->n));
  CALL(cx, what, clcnn_net_backward_from(net, G));
  CALL(cx, what, clcnn_net_grad_read(net, 0, gnodx));
  tap_ok(!memcmp(gnodx, g[0], pcount[0] * sizeof *gnodx) &&
             clcnn_net_read_input_grad(net, dx) == CLCNN_ERR_STATE,
         "%s: without the input gradient, the same weight gradient bit for bit, and no input gradient", what);
  clcnn_net_destroy(net);
  net = NULL;

  cx = ctx32;
  snprintf(what, sizeof what, "%s [f32]", name);
  hx = to_host(cx, x, nin);
  hG = to_host(cx, G, nout);
  hbuf = xcalloc(nout > nin ? nout : nin, sizeof(float));
  CALL(cx, what, clcnn_net_create(cx, fc->max_batch, fc->c, fc->h, fc->w, &net));
  CALL(cx, what, clcnn_net_add_conv2d(net, cp));
  if (fc->relu) CALL(cx, what, clcnn_net_add_relu(net));
  if (fc->pool.kh) CALL(cx, what, clcnn_net_add_maxpool2d(net, &fc->pool));
  for (int i = 0; i < np; i++) {
    hp[i] = to_host(cx, p[i], pcount[i]);
    CALL(cx, what, clcnn_net_param_write(net, i, hp[i]));
  }
  CALL(cx, what, clcnn_net_forward(net, hx, fc->n));
  CALL(cx, what, clcnn_net_zero_grad(net));
  CALL(cx, what, clcnn_net_backward_from(net, hG));
  CALL(cx, what, clcnn_net_read_output(net, hbuf));
  from_host(cx, hbuf, y32, nout);
  CALL(cx, what, clcnn_net_read_input_grad(net, hbuf));
  from_host(cx, hbuf, dx32, nin);
  for (int i = 0; i < np; i++) {
    free(hp[i]);
    hp[i] = xcalloc(pcount[i], sizeof(float));
    CALL(cx, what, clcnn_net_grad_read(net, i, hp[i]));
    from_host(cx, hp[i], g32[i], pcount[i]);
  }
  {
    double e[4] = {0, 0, 0, 0};
    int ok = close_f32(y32, yref, nout, &e[0]) & close_f32(dx32, dxr, nin, &e[1]);
    for (int i = 0; i < np; i++) ok &= close_f32(g32[i], gr[i], pcount[i], &e[2 + i]);
    tap_ok(ok, "%s: output and every gradient vs the double reference, max err %.3g, %.3g, %.3g, %.3g "
           "(<= 1e-5*|ref| + 1e-5*max|ref|)", what, e[0], e[1], e[2], e[3]);
  }
done:
  clcnn_net_destroy(net);
  free(x), free(y0), free(r), free(yref), free(G), free(y), free(dx), free(dxr), free(dr), free(y32), free(dx32);
  free(gnodx), free(am), free(hx), free(hG), free(hbuf);
  for (int i = 0; i < 2; i++) free(p[i]), free(g[i]), free(gr[i]), free(g32[i]), free(hp[i]);
}

/* Max pooling passes NaN on as PyTorch's kernels do: a window holding a NaN outputs NaN and its
 * gradient goes to the NaN, the last one in scan order when there are two (2x2 stride 2, the
 * fast kernels, and 3x3 stride 1, the general ones; a NaN first in its window and a NaN after a
 * larger number). */
static void maxpool_nan(clcnn_ctx *ctx) {
  const int H = 4, W = 4;
  double x[16], g[16], dx[16];
  for (int i = 0; i < 16; i++) x[i] = i % 5 - 2.0;
  x[5] = NAN;  /* window (0,0) of the 2x2 pooling, after x[0], x[1], x[4] */
  x[10] = NAN; /* window (1,1), first in it */
  clcnn_pool2d_params cases[2] = {{.kh = 2, .kw = 2}, {.kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1}};
  for (int t = 0; t < 2; t++) {
    clcnn_net *net = NULL;
    double y[16];
    int oh = 2, ow = 2, ok = !clcnn_net_create(ctx, 1, 1, H, W, &net) &&
                                            !clcnn_net_add_maxpool2d(net, &cases[t]) &&
                                            !clcnn_net_forward(net, x, 1) && !clcnn_net_read_output(net, y);
    for (int i = 0; i < oh * ow; i++) g[i] = i + 1.0;
    ok = ok && !clcnn_net_backward_from(net, g) && !clcnn_net_read_input_grad(net, dx);
    /* 2x2: windows 0 and 3 hold a NaN; 3x3 stride 1: every window holds x[5] or x[10] */
    int want_nan[2][4] = {{1, 0, 0, 1}, {1, 1, 1, 1}}, right = ok;
    for (int i = 0; ok && i < 4; i++) right &= (isnan(y[i]) != 0) == want_nan[t][i];
    /* 2x2: dx[5] gets g[0], dx[10] gets g[3]; 3x3: every window holds both, the later (x[10]) wins */
    double got5 = dx[5], got10 = dx[10], want5 = t ? 0 : g[0], want10 = t ? g[0] + g[1] + g[2] + g[3] : g[3];
    right &= got5 == want5 && got10 == want10;
    tap_ok(right, "maxpool2d %dx%d stride %d passes NaN on (outputs %g %g %g %g; dx[5] %g, dx[10] %g)", cases[t].kh,
           cases[t].kw, t ? 1 : 2, y[0], y[1], y[2], y[3], got5, got10);
    clcnn_net_destroy(net);
  }
}

/* Ties: on data of a few small integers every window holds equal maxima, and the gradient goes
 * to the first in scan order, as PyTorch's kernels and ref_maxpool2d decide: max pooling alone
 * (the 2x2 kernels, the general ones, the non-overlapping backward) and after a conv and relu,
 * where the fused kernel compares the relu's outputs (integer data: the conv's sums are exact). */
static void maxpool_ties(void) {
  static const struct {
    int conv; /* 0: the pooling alone; 1: conv(3x3, pad 1, bias) -> relu -> it */
    int n, c, h, w;
    clcnn_pool2d_params pool;
  } tcases[] = {
      {0, 2, 2, 6, 7, {.kh = 2, .kw = 2}},
      {0, 2, 2, 7, 8, {.kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1}},
      {0, 2, 2, 7, 8, {.kh = 3, .kw = 2}},
      {1, 2, 2, 8, 7, {.kh = 2, .kw = 2}},
  };
  for (size_t t = 0; t < sizeof tcases / sizeof tcases[0]; t++) {
    int n = tcases[t].n, c = tcases[t].c, h = tcases[t].h, w = tcases[t].w, oc = tcases[t].conv ? 3 : c;
    const clcnn_pool2d_params *pp = &tcases[t].pool;
    int kh = pp->kh, kw = pp->kw, sh = pp->stride_h ? pp->stride_h : kh, sw = pp->stride_w ? pp->stride_w : kw;
    int qh = ref_out_dim(h, kh, sh, 0, 1), qw = ref_out_dim(w, kw, sw, 0, 1);
    size_t nin = (size_t)n * c * h * w, ny = (size_t)n * oc * h * w, nout = (size_t)n * oc * qh * qw;
    size_t nwt = (size_t)oc * c * 9;
    double *x = dalloc(nin), *y0 = dalloc(ny), *r = dalloc(ny), *yr = dalloc(nout), *G = dalloc(nout);
    double *y = dalloc(nout), *dx = dalloc(nin), *dxr = dalloc(nin), *dr = dalloc(ny), *wt = dalloc(nwt);
    double *gw = dalloc(nwt), *gwr = dalloc(nwt), bias[3] = {0.5, -1, 1}, gb[3], gbr[3];
    size_t *am = xcalloc(nout, sizeof *am);
    for (size_t i = 0; i < nin; i++) x[i] = ref_rng_int(&rng, 3) - 1.0; /* -1, 0, 1 */
    for (size_t i = 0; i < nwt; i++) wt[i] = ref_rng_int(&rng, 4) == 0; /* few terms: small sums, many ties */
    for (size_t i = 0; i < nout; i++) G[i] = rndf(-1.0, 1.0);
    if (tcases[t].conv) {
      ref_conv2d(x, n, c, h, w, wt, bias, oc, 3, 3, 1, 1, 1, 1, 1, 1, 1, y0);
      ref_activation(REF_RELU, 0, y0, ny, r);
    } else {
      memcpy(r, x, ny * sizeof *r);
    }
    ref_maxpool2d(r, n, oc, h, w, kh, kw, sh, sw, 0, 0, yr, am);
    ref_maxpool2d_backward(G, am, nout, dr, ny);
    if (tcases[t].conv) {
      for (size_t i = 0; i < ny; i++)
        if (!(y0[i] > 0)) dr[i] = 0;
      ref_conv2d_backward(x, n, c, h, w, wt, oc, 3, 3, 1, 1, 1, 1, 1, 1, 1, dr, dxr, gwr, gbr);
    } else {
      memcpy(dxr, dr, nin * sizeof *dxr);
    }
    size_t ties = 0; /* windows whose maximum is not alone: the rule decides them */
    for (size_t o = 0; o < nout; o++) {
      size_t pl = o / ((size_t)qh * qw), oy = o / qw % qh, ox = o % qw, cnt = 0;
      for (int a = 0; a < kh; a++)
        for (int b = 0; b < kw; b++) cnt += r[(pl * h + oy * sh + a) * w + ox * sw + b] == yr[o];
      ties += cnt > 1 && yr[o] != 0; /* a tie of zeros after a relu has no gradient to route */
    }
    char what[200];
    snprintf(what, sizeof what, "%d x %dx%dx%d %smaxpool2d(k %dx%d, s %dx%d) on ties (%zu windows of %zu)", n, c,
             h, w, tcases[t].conv ? "conv2d -> relu -> " : "", kh, kw, sh, sw, ties, nout);
    clcnn_net *net = NULL;
    clcnn_conv2d_params cp = {.out_channels = oc, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
    CALL(ctx64, what, clcnn_net_create(ctx64, n, c, h, w, &net));
    if (tcases[t].conv) {
      CALL(ctx64, what, clcnn_net_add_conv2d(net, &cp));
      CALL(ctx64, what, clcnn_net_add_relu(net));
    }
    CALL(ctx64, what, clcnn_net_add_maxpool2d(net, pp));
    if (tcases[t].conv) {
      CALL(ctx64, what, clcnn_net_param_write(net, 0, wt));
      CALL(ctx64, what, clcnn_net_param_write(net, 1, bias));
    }
    CALL(ctx64, what, clcnn_net_forward(net, x, n));
    CALL(ctx64, what, clcnn_net_read_output(net, y));
    CALL(ctx64, what, clcnn_net_zero_grad(net));
    CALL(ctx64, what, clcnn_net_backward_from(net, G));
    CALL(ctx64, what, clcnn_net_read_input_grad(net, dx));
    if (tcases[t].conv) {
      CALL(ctx64, what, clcnn_net_grad_read(net, 0, gw));
      CALL(ctx64, what, clcnn_net_grad_read(net, 1, gb));
    }
    {
      double e1, e2, e3 = 0, e4 = 0;
      int ok = ties > nout / 8 && close_f64(y, yr, nout, &e1) & close_f64(dx, dxr, nin, &e2);
      if (tcases[t].conv) ok &= close_f64(gw, gwr, nwt, &e3) & close_f64(gb, gbr, 3, &e4);
      tap_ok(ok, "%s: output and gradients vs the reference's first-maximum rule, max err %.3g, %.3g, %.3g, %.3g",
             what, e1, e2, e3, e4);
    }
  done:
    clcnn_net_destroy(net);
    free(x), free(y0), free(r), free(yr), free(G), free(y), free(dx), free(dxr), free(dr), free(wt), free(gw);
    free(gwr), free(am);
  }
}

int main(void) {
  ref_rng_seed(&rng, 0xC1C22024u);
  /* clcnn's own GEMM (the CPU default, pinned so that a GEMM choice file cannot move a shape to
   * CLBlast); tests/test_layers_clblast.sh runs this with CLCNN_GEMM=clblast */
  setenv("CLCNN_GEMM", "clcnn", 0);
  ctx64 = make_ctx_of(CLCNN_DOUBLE, NULL, 1);
  ctx32 = make_ctx_of(CLCNN_FLOAT, ctx64, 1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) /* every third: a partial batch */
    run_case(&cases[i], i % 3 == 2 ? cases[i].n + 2 : cases[i].n);
  for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++)
    run_case(&kcases[i], i % 4 == 3 ? kcases[i].n + 1 : kcases[i].n);
  for (size_t i = 0; i < sizeof fcases / sizeof fcases[0]; i++) run_fused(&fcases[i]);
  for (size_t i = 0; i < sizeof xcases / sizeof xcases[0]; i++) run_xent(&xcases[i]);
  maxpool_nan(ctx64);
  maxpool_ties();
  clcnn_ctx_destroy(ctx32);
  clcnn_ctx_destroy(ctx64);
  return tap_done();
}
