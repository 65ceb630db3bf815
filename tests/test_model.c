/* tests/test_model.c - model files: LeNet-5 and every option give the right layers, shapes and
 * parameters; comments, blank lines and CRLF are read; every mistake is refused with
 * "file:line:col" and words that say what was expected, never a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcnn.h"
#include "testutil.h"

static clcnn_ctx *ctx;
static char err[1024];

static const char *lenet =
    "# LeNet-5 for 28x28 grey images\n"
    "input 1 28 28\n"
    "conv 6 kernel=5 pad=2\n"
    "relu\n"
    "maxpool 2\n"
    "conv 16 kernel=5\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "linear 120\n"
    "relu\n"
    "linear 84\n"
    "relu\n"
    "linear 10\n";

static clcnn_net *parse(const char *text) {
  clcnn_net *net = NULL;
  clcnn_status st = clcnn_net_from_text(ctx, text, "t.txt", 4, &net, err, sizeof err);
  if (st) tap_diag("%s: %s", clcnn_status_name(st), err);
  return st ? NULL : net;
}

/* Layer I's output shape is (1,c,h,w); I = -1: the input. */
static int shape_is(const clcnn_net *net, int i, int c, int h, int w) {
  int d[4] = {0};
  if (clcnn_net_layer_shape(net, i, d)) return 0;
  if (d[0] == 1 && d[1] == c && d[2] == h && d[3] == w) return 1;
  tap_diag("layer %d: (%d,%d,%d,%d), wanted (1,%d,%d,%d)", i, d[0], d[1], d[2], d[3], c, h, w);
  return 0;
}

/* The parameter named NAME has dims d0..d3 (ndim given); 0 when absent or different. */
static int param_is(const clcnn_net *net, const char *name, int ndim, int d0, int d1, int d2,
                    int d3) {
  int want[4] = {d0, d1, d2, d3};
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info info;
    if (clcnn_net_param_info(net, i, &info) || strcmp(info.name, name)) continue;
    int ok = info.ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = info.dims[d] == want[d];
    if (!ok)
      tap_diag("%s: ndim %d (%d,%d,%d,%d)", name, info.ndim, info.dims[0], info.dims[1],
               info.dims[2], info.dims[3]);
    return ok;
  }
  tap_diag("no parameter %s", name);
  return 0;
}

static int has_param(const clcnn_net *net, const char *name) {
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info info;
    if (!clcnn_net_param_info(net, i, &info) && !strcmp(info.name, name)) return 1;
  }
  return 0;
}

/* TEXT is refused with status WANT (0: any failure), no net, and an error with WORDS, which is
 * also the context's last error. */
static void bad(const char *what, const char *text, clcnn_status want, const char *words) {
  int ok = model_refused(ctx, text, 4, want, words, err, sizeof err) && strstr(clcnn_ctx_last_error(ctx), err) != NULL;
  tap_ok(ok, "%s: %s", what, err);
}

static char *write_tmp(const char *text, size_t len) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/clcnn-test-model-XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len) tap_bail("cannot write a temporary file");
  close(fd);
  return path;
}

static void test_lenet(void) {
  clcnn_net *net = parse(lenet);
  if (!tap_ok(net != NULL, "LeNet-5 parses")) return;
  tap_ok(clcnn_net_num_layers(net) == 12, "12 layers (got %d)", clcnn_net_num_layers(net));
  tap_ok(clcnn_net_output_size(net) == 10, "output size 10");
  tap_ok(clcnn_net_input_size(net) == 784 && shape_is(net, -1, 1, 28, 28), "input (1,28,28)");
  static const clcnn_layer_type types[12] = {
      CLCNN_LAYER_CONV2D, CLCNN_LAYER_RELU,   CLCNN_LAYER_MAXPOOL2D, CLCNN_LAYER_CONV2D,
      CLCNN_LAYER_RELU,   CLCNN_LAYER_MAXPOOL2D, CLCNN_LAYER_FLATTEN, CLCNN_LAYER_LINEAR,
      CLCNN_LAYER_RELU,   CLCNN_LAYER_LINEAR, CLCNN_LAYER_RELU,      CLCNN_LAYER_LINEAR};
  static const int shapes[12][3] = {{6, 28, 28}, {6, 28, 28}, {6, 14, 14}, {16, 10, 10},
                                    {16, 10, 10}, {16, 5, 5}, {400, 1, 1}, {120, 1, 1},
                                    {120, 1, 1}, {84, 1, 1}, {84, 1, 1}, {10, 1, 1}};
  int ok = 1;
  for (int i = 0; i < 12; i++) {
    if (clcnn_net_layer_type(net, i) != types[i]) {
      tap_diag("layer %d has type %d, wanted %d", i, clcnn_net_layer_type(net, i), types[i]);
      ok = 0;
    }
    ok &= shape_is(net, i, shapes[i][0], shapes[i][1], shapes[i][2]);
  }
  tap_ok(ok, "LeNet-5 layer types and shapes");
  tap_ok(clcnn_net_num_params(net) == 10, "10 parameters (got %d)", clcnn_net_num_params(net));
  tap_ok(param_is(net, "0.weight", 4, 6, 1, 5, 5) && param_is(net, "0.bias", 1, 6, 0, 0, 0),
         "0.weight (6,1,5,5), 0.bias (6)");
  tap_ok(param_is(net, "3.weight", 4, 16, 6, 5, 5), "3.weight (16,6,5,5)");
  tap_ok(param_is(net, "7.weight", 2, 120, 400, 0, 0), "7.weight (120,400)");
  tap_ok(param_is(net, "9.weight", 2, 84, 120, 0, 0), "9.weight (84,120)");
  tap_ok(param_is(net, "11.weight", 2, 10, 84, 0, 0) && param_is(net, "11.bias", 1, 10, 0, 0, 0),
         "11.weight (10,84), 11.bias (10)");

  /* the net works: a forward pass of two images gives finite outputs */
  float x[2 * 784], y[2 * 10];
  for (int i = 0; i < 2 * 784; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
  int fin = clcnn_net_init_params(net, 1) == 0 && clcnn_net_forward(net, x, 2) == 0 &&
            clcnn_net_read_output(net, y) == 0;
  for (int i = 0; fin && i < 20; i++) fin = isfinite(y[i]);
  tap_ok(fin, "LeNet-5 from text runs forward: %s", clcnn_ctx_last_error(ctx));
  clcnn_net_destroy(net);

  /* the same from a file */
  char *path = write_tmp(lenet, strlen(lenet));
  net = NULL;
  clcnn_status st = clcnn_net_from_file(ctx, path, 2, &net, err, sizeof err);
  tap_ok(st == 0 && net && clcnn_net_num_layers(net) == 12 && clcnn_net_output_size(net) == 10 &&
             shape_is(net, 5, 16, 5, 5),
         "LeNet-5 from a file: %s", err);
  clcnn_net_destroy(net);
  unlink(path);
}

static void test_options(void) {
  clcnn_net *net;
  /* conv with every option, in HxW form, and no bias */
  net = parse("input 3 10 12\nconv 4 kernel=3x5 stride=2x1 pad=1x2 dilation=1x2 groups=1 bias=0\n");
  tap_ok(net && shape_is(net, 0, 4, 5, 8) && clcnn_net_num_params(net) == 1 &&
             param_is(net, "0.weight", 4, 4, 3, 3, 5) && !has_param(net, "0.bias"),
         "conv kernel=3x5 stride=2x1 pad=1x2 dilation=1x2 bias=0: (4,5,8), weight (4,3,3,5), no bias");
  clcnn_net_destroy(net);
  net = parse("input 2 8 8\nconv 3 kernel=3 stride=2 pad=1 dilation=2 bias=1\n");
  tap_ok(net && shape_is(net, 0, 3, 3, 3) && param_is(net, "0.bias", 1, 3, 0, 0, 0),
         "conv stride=2 pad=1 dilation=2 bias=1 on 8x8: (3,3,3) with bias");
  clcnn_net_destroy(net);
  net = parse("input 4 8 8\nconv 6 kernel=3 groups=2\n");
  tap_ok(net && shape_is(net, 0, 6, 6, 6) && param_is(net, "0.weight", 4, 6, 2, 3, 3) &&
             has_param(net, "0.bias"),
         "conv groups=2: weight (6,2,3,3), bias by default");
  clcnn_net_destroy(net);

  /* pooling */
  net = parse("input 2 8 6\navgpool 2\n");
  tap_ok(net && clcnn_net_layer_type(net, 0) == CLCNN_LAYER_AVGPOOL2D && shape_is(net, 0, 2, 4, 3),
         "avgpool 2: stride defaults to the kernel, (2,4,3)");
  clcnn_net_destroy(net);
  net = parse("input 2 8 6\navgpool 3 stride=1 pad=1\n");
  tap_ok(net && shape_is(net, 0, 2, 8, 6), "avgpool 3 stride=1 pad=1: (2,8,6)");
  clcnn_net_destroy(net);
  net = parse("input 2 8 6\nmaxpool 2x3\n");
  tap_ok(net && clcnn_net_layer_type(net, 0) == CLCNN_LAYER_MAXPOOL2D && shape_is(net, 0, 2, 4, 2),
         "maxpool 2x3: (2,4,2)");
  clcnn_net_destroy(net);
  net = parse("input 2 8 6\nmaxpool 3 stride=2 pad=1\n");
  tap_ok(net && shape_is(net, 0, 2, 4, 3), "maxpool 3 stride=2 pad=1: (2,4,3)");
  clcnn_net_destroy(net);

  /* globalavgpool, flatten, linear without bias, activations */
  net = parse("input 5 7 3\nglobalavgpool\nflatten\nlinear 3 bias=0\nsigmoid\ntanh\nlinear 2\n");
  tap_ok(net && clcnn_net_num_layers(net) == 6 &&
             clcnn_net_layer_type(net, 0) == CLCNN_LAYER_GLOBAL_AVGPOOL && shape_is(net, 0, 5, 1, 1) &&
             clcnn_net_layer_type(net, 1) == CLCNN_LAYER_FLATTEN && shape_is(net, 1, 5, 1, 1) &&
             param_is(net, "2.weight", 2, 3, 5, 0, 0) && !has_param(net, "2.bias") &&
             clcnn_net_layer_type(net, 3) == CLCNN_LAYER_SIGMOID &&
             clcnn_net_layer_type(net, 4) == CLCNN_LAYER_TANH && param_is(net, "5.bias", 1, 2, 0, 0, 0) &&
             clcnn_net_num_params(net) == 3,
         "globalavgpool, flatten, linear bias=0, sigmoid, tanh, linear");
  clcnn_net_destroy(net);

  /* leakyrelu's slope: given, and torch's default 0.01 */
  char d[64] = "";
  net = parse("input 1 1 4\nleakyrelu slope=0.2\nleakyrelu\nleakyrelu slope=-1.5e-1\n");
  int ok = net && clcnn_net_layer_type(net, 0) == CLCNN_LAYER_LEAKY_RELU;
  if (ok) ok = strstr(clcnn_net_layer_describe(net, 0, d, sizeof d), "0.2") != NULL;
  if (ok) ok = strstr(clcnn_net_layer_describe(net, 1, d, sizeof d), "0.01") != NULL;
  if (ok) ok = strstr(clcnn_net_layer_describe(net, 2, d, sizeof d), "-0.15") != NULL;
  tap_ok(ok, "leakyrelu slope=0.2, default 0.01, slope=-1.5e-1 (%s)", d);
  /* and the slope is used */
  float x[4] = {-1, 2, -3, 0.5f}, y[4] = {0};
  ok = net && clcnn_net_forward(net, x, 1) == 0 && clcnn_net_read_output(net, y) == 0;
  float want[4] = {-1 * 0.2f * 0.01f * -0.15f, 2, -3 * 0.2f * 0.01f * -0.15f, 0.5f};
  for (int i = 0; ok && i < 4; i++) ok = fabsf(y[i] - want[i]) <= 1e-6f + 1e-5f * fabsf(want[i]);
  tap_ok(ok, "leakyrelu slopes in a forward pass: %g %g %g %g", y[0], y[1], y[2], y[3]);
  clcnn_net_destroy(net);
}

static void test_layout(void) {
  /* LeNet-5 again, with comments everywhere, blank lines, tabs, indentation and CRLF */
  const char *text =
      "\r\n"
      "   # a comment line, indented\r\n"
      "\r\n"
      "input\t1 28   28   # the input\r\n"
      "\tconv 6 kernel=5 pad=2#no space before the comment\r\n"
      "relu\r\n"
      "maxpool 2 \t \r\n"
      "# conv 99 kernel=1 (commented out)\r\n"
      "conv 16 kernel=5\r\n"
      "relu\r\n"
      "\r\n"
      "maxpool 2\r\n"
      "flatten\r\n"
      "linear 120\r\n"
      "relu\r\n"
      "linear 84\r\n"
      "relu\r\n"
      "linear 10"; /* no final newline */
  clcnn_net *net = parse(text);
  tap_ok(net && clcnn_net_num_layers(net) == 12 && clcnn_net_output_size(net) == 10 &&
             shape_is(net, 3, 16, 10, 10) && param_is(net, "7.weight", 2, 120, 400, 0, 0),
         "comments, blank lines, tabs and CRLF: the same LeNet-5");
  clcnn_net_destroy(net);
  /* line numbers count CRLF lines and columns count from the line's start */
  bad("an error after CRLF lines", "# x\r\ninput 1 8 8\r\n\r\n  conv 6 kernal=5\r\n", CLCNN_ERR_INVALID_ARGUMENT,
      "t.txt:4:10: 'kernal=5': unknown option for conv");
  /* a very long line: no fixed buffer */
  size_t n = 200000;
  char *big = malloc(n + 64);
  if (!big) tap_bail("out of memory");
  strcpy(big, "input 1 4 4\n");
  size_t at = strlen(big);
  memset(big + at, ' ', n);
  strcpy(big + at + n, "relu # end\n");
  net = parse(big);
  tap_ok(net && clcnn_net_num_layers(net) == 1, "a 200000-column line");
  clcnn_net_destroy(net);
  memset(big + at, 'z', n);
  bad("a 200000-character unknown word", big, CLCNN_ERR_INVALID_ARGUMENT, "t.txt:2:1: unknown layer 'zzzz|...'");
  free(big);
}

static void test_errors(void) {
  const clcnn_status INV = CLCNN_ERR_INVALID_ARGUMENT;
  bad("a typo in a layer word", "input 1 8 8\nrelu\nconv2 6 kernel=3\n", INV,
      "t.txt:3:1: unknown layer 'conv2' (expected one of: conv, linear, relu");
  bad("a layer word in capitals", "input 1 8 8\nReLU\n", INV, "t.txt:2:1: unknown layer 'ReLU'");
  bad("an unknown option", "input 1 8 8\nconv 6 kernal=5\n", INV,
      "t.txt:2:8: 'kernal=5': unknown option for conv (expected kernel, stride, pad, dilation, groups, bias)");
  bad("an option for a layer without options", "input 1 8 8\nrelu inplace=1\n", INV,
      "t.txt:2:6: 'inplace=1': unknown option for relu");
  bad("an argument for a layer without arguments", "input 1 8 8\nrelu 3\n", INV,
      "t.txt:2:6: unexpected '3'|relu takes no arguments");
  bad("a second number for conv", "input 1 8 8\nconv 6 5\n", INV, "t.txt:2:8: unexpected '5'|conv OUT kernel=K");
  bad("a word for an integer", "input 1 8 8\nmaxpool two\n", INV,
      "t.txt:2:9: expected an integer for maxpool's kernel, got 'two'");
  bad("'5x' for a kernel", "input 1 8 8\nconv 6 kernel=5x\n", INV, "t.txt:2:15: expected an integer or HxW|'5x'");
  bad("'x5' for a kernel", "input 1 8 8\nconv 6 kernel=x5\n", INV, "t.txt:2:15:|'x5'");
  bad("'3x3x3' for a kernel", "input 1 8 8\nconv 6 kernel=3x3x3\n", INV, "t.txt:2:15:|'3x3x3'");
  bad("'1e3' for an integer", "input 1 8 8\nflatten\nlinear 1e3\n", INV,
      "t.txt:3:8: expected an integer for linear's output features, got '1e3'");
  bad("'+3' for an integer", "input 1 8 8\nflatten\nlinear +3\n", INV, "t.txt:3:8: expected an integer|'+3'");
  bad("a float where an integer is expected", "input 1 8 8\nconv 6 kernel=2.5\n", INV,
      "t.txt:2:15: expected an integer for conv's kernel, got '2.5'");
  bad("an empty option value", "input 1 8 8\nconv 6 kernel=\n", INV, "t.txt:2:15: expected an integer|got ''");
  bad("an integer that overflows", "input 1 8 8\nflatten\nlinear 99999999999\n", INV,
      "t.txt:3:8:|too large");
  bad("an integer that overflows int by one", "input 1 8 8\nflatten\nlinear 2147483648\n", INV, "t.txt:3:8:|too large");
  bad("a missing kernel", "input 1 8 8\nconv 6 stride=2\n", INV, "t.txt:2:1: conv needs kernel=K");
  bad("a missing OUT", "input 1 8 8\nconv kernel=3\n", INV, "t.txt:2:1: conv needs OUT");
  bad("a duplicate option", "input 1 8 8\nconv 6 kernel=3 kernel=5\n", INV,
      "t.txt:2:17: duplicate option 'kernel' for conv|column 8");
  bad("a zero kernel", "input 1 8 8\nmaxpool 0\n", INV, "t.txt:2:9: expected a positive integer for maxpool's kernel, got '0'");
  bad("a zero conv kernel", "input 1 8 8\nconv 6 kernel=3x0\n", INV, "t.txt:2:17: expected a positive integer|'0'");
  bad("a zero stride", "input 1 8 8\nconv 6 kernel=3 stride=0\n", INV, "t.txt:2:24: expected a positive integer for conv's stride");
  bad("a negative pad", "input 1 8 8\nconv 6 kernel=3 pad=-1\n", INV, "t.txt:2:21: expected a non-negative integer for conv's pad");
  bad("a negative out", "input 1 8 8\nconv -4 kernel=3\n", INV,
      "t.txt:2:6: expected a positive integer for conv's output channels, got '-4'");
  bad("zero groups", "input 1 8 8\nconv 4 kernel=3 groups=0\n", INV, "t.txt:2:24: expected a positive integer for conv's groups");
  bad("bias=2", "input 1 8 8\nflatten\nlinear 3 bias=2\n", INV, "t.txt:3:15: expected 0 or 1 for linear's bias, got '2'");
  bad("bias=yes", "input 1 8 8\nconv 3 kernel=1 bias=yes\n", INV, "t.txt:2:22: expected an integer for conv's bias");
  bad("a word for a slope", "input 1 8 8\nleakyrelu slope=abc\n", INV, "t.txt:2:17: expected a number for leakyrelu's slope, got 'abc'");
  bad("nan for a slope", "input 1 8 8\nleakyrelu slope=nan\n", INV, "t.txt:2:17: expected a number|'nan'");
  bad("an infinite slope", "input 1 8 8\nleakyrelu slope=1e999\n", INV, "t.txt:2:17: expected a number|'1e999'");
  bad("a slope with trailing junk", "input 1 8 8\nleakyrelu slope=0.1.2\n", INV, "t.txt:2:17: expected a number|'0.1.2'");
  bad("a missing input line", "# no input\n\nconv 6 kernel=5\n", INV,
      "t.txt:3:1: expected 'input C H W' before the first layer, got 'conv'");
  bad("an unknown first word", "inptu 1 8 8\n", INV, "t.txt:1:1: unknown word 'inptu'|input C H W");
  bad("input given twice", "input 1 8 8\nrelu\ninput 1 8 8\n", INV, "t.txt:3:1: second 'input' line (the first is line 1)");
  bad("input with two numbers", "input 1 28\nrelu\n", INV, "t.txt:1:1: input needs C H W|got 2 of 3");
  bad("input with four numbers", "input 1 28 28 28\nrelu\n", INV, "t.txt:1:15: unexpected '28'");
  bad("input with a zero size", "input 1 0 28\nrelu\n", INV, "t.txt:1:9: expected a positive integer for input's H");
  bad("input with an option", "input 1 8 8 batch=3\nrelu\n", INV, "t.txt:1:13: 'batch=3': unknown option for input");
  bad("no layers", "# just the input\ninput 1 28 28\n\n# nothing else\n", INV, "t.txt:2:1: no layers after 'input'");
  bad("an empty text", "", INV, "t.txt:1:1:|empty");
  bad("only comments", "# a\n\n   # b\n", INV, "t.txt:1:1:|empty");
  bad("a conv kernel larger than the input", "input 1 5 5\nconv 4 kernel=9\n", CLCNN_ERR_SHAPE,
      "t.txt:2:1: layer 0 conv2d: |layer 0|9x9|5x5");
  bad("a layer that does not fit, deeper in", "input 1 8 8\nconv 4 kernel=3\nrelu\nmaxpool 2\nconv 2 kernel=5\n",
      CLCNN_ERR_SHAPE, "t.txt:5:1: layer 3 conv2d: |5x5|3x3");
  bad("groups that do not divide the channels", "input 3 8 8\nconv 4 kernel=3 groups=2\n", CLCNN_ERR_SHAPE,
      "t.txt:2:1: layer 0 conv2d: |groups 2");
  bad("linear on a non-flat input", "input 1 4 4\nlinear 10\n", CLCNN_ERR_SHAPE,
      "t.txt:2:1: layer 0 linear: |flatten|(1,4,4)");
  bad("a pool pad over half the kernel", "input 1 8 8\nmaxpool 2 pad=2\n", CLCNN_ERR_SHAPE,
      "t.txt:2:1: layer 0 maxpool2d: |pad 2x2|half the kernel");

  /* the file name comes out as given, and NULL reads "<text>" */
  clcnn_net *net = (clcnn_net *)&net;
  clcnn_status st = clcnn_net_from_text(ctx, "relu\n", NULL, 2, &net, err, sizeof err);
  tap_ok(st == INV && !net && strstr(err, "<text>:1:1:"), "no file name: %s", err);
  /* max_batch */
  st = clcnn_net_from_text(ctx, lenet, "t.txt", 0, &net, err, sizeof err);
  tap_ok(st == INV && !net && strstr(err, "max_batch 0"), "max_batch 0: %s", err);
  /* a tiny err buffer is NUL-terminated, and a NULL one is fine */
  char small[8];
  memset(small, 'x', sizeof small);
  st = clcnn_net_from_text(ctx, "input 1 8 8\nconv2\n", "t.txt", 2, &net, small, sizeof small);
  tap_ok(st == INV && !net && small[7] == 0 && !strcmp(small, "t.txt:2"), "an 8-byte err buffer: '%s'", small);
  st = clcnn_net_from_text(ctx, "input 1 8 8\nconv2\n", "t.txt", 2, &net, NULL, 0);
  tap_ok(st == INV && !net && strstr(clcnn_ctx_last_error(ctx), "t.txt:2:1: unknown layer"),
         "a NULL err buffer: the context has the message");

  /* NULL arguments */
  net = (clcnn_net *)&net;
  st = clcnn_net_from_text(NULL, lenet, "t.txt", 2, &net, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && !net && strstr(err, "ctx"), "NULL ctx: %s", err);
  net = (clcnn_net *)&net;
  st = clcnn_net_from_text(ctx, NULL, "t.txt", 2, &net, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && !net && strstr(err, "text"), "NULL text: %s", err);
  st = clcnn_net_from_text(ctx, lenet, "t.txt", 2, NULL, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && strstr(err, "out"), "NULL out: %s", err);
  net = (clcnn_net *)&net;
  st = clcnn_net_from_file(NULL, "x.txt", 2, &net, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && !net, "from_file, NULL ctx: %s", err);
  net = (clcnn_net *)&net;
  st = clcnn_net_from_file(ctx, NULL, 2, &net, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && !net && strstr(err, "path"), "from_file, NULL path: %s", err);
  st = clcnn_net_from_file(ctx, "x.txt", 2, NULL, NULL, 0);
  tap_ok(st == CLCNN_ERR_NULL_POINTER, "from_file, NULL out and NULL err");

  /* files */
  net = (clcnn_net *)&net;
  st = clcnn_net_from_file(ctx, "/nonexistent/clcnn/model.txt", 2, &net, err, sizeof err);
  tap_ok(st != 0 && !net && strstr(err, "/nonexistent/clcnn/model.txt") && strstr(err, "No such file"),
         "a missing file: %s", err);
  net = (clcnn_net *)&net;
  st = clcnn_net_from_file(ctx, "/tmp", 2, &net, err, sizeof err);
  tap_ok(st != 0 && !net && strstr(err, "/tmp") && strstr(err, "directory"), "a directory: %s", err);
  const char nul[] = "input 1 8 8\nre\0lu\n";
  char *path = write_tmp(nul, sizeof nul - 1);
  net = (clcnn_net *)&net;
  st = clcnn_net_from_file(ctx, path, 2, &net, err, sizeof err);
  char want[128];
  snprintf(want, sizeof want, "%s:2:3:", path);
  tap_ok(st == INV && !net && strstr(err, want) && strstr(err, "NUL"), "a file with a NUL byte: %s", err);
  unlink(path);
  const char *two = "input 1 8 8\n\nrelu\nconv 3 kernel=two\n";
  path = write_tmp(two, strlen(two));
  net = (clcnn_net *)&net;
  st = clcnn_net_from_file(ctx, path, 2, &net, err, sizeof err);
  snprintf(want, sizeof want, "%s:4:15: expected an integer for conv's kernel, got 'two'", path);
  tap_ok(st == INV && !net && strstr(err, want), "an error in a file names the file: %s", err);
  unlink(path);
}

static void test_bn_dropout(void) {
  clcnn_net *net = parse("input 3 8 8\n"
                         "conv 4 kernel=3\n"
                         "batchnorm\n"
                         "relu\n"
                         "dropout p=0.25\n"
                         "flatten\n"
                         "linear 10\n"
                         "batchnorm eps=1e-3 momentum=0.2\n"
                         "dropout\n");
  tap_ok(net && clcnn_net_num_layers(net) == 8 &&
             clcnn_net_layer_type(net, 1) == CLCNN_LAYER_BATCHNORM && shape_is(net, 1, 4, 6, 6) &&
             clcnn_net_layer_type(net, 3) == CLCNN_LAYER_DROPOUT && shape_is(net, 3, 4, 6, 6) &&
             clcnn_net_layer_type(net, 6) == CLCNN_LAYER_BATCHNORM && shape_is(net, 6, 10, 1, 1) &&
             clcnn_net_layer_type(net, 7) == CLCNN_LAYER_DROPOUT && clcnn_net_output_size(net) == 10,
         "batchnorm and dropout: types and shapes");
  tap_ok(net && param_is(net, "1.weight", 1, 4, 0, 0, 0) && param_is(net, "1.bias", 1, 4, 0, 0, 0) &&
             param_is(net, "6.weight", 1, 10, 0, 0, 0),
         "batchnorm parameters 1.weight (4), 1.bias (4), 6.weight (10)");
  char d1[96] = "", d2[96] = "", d3[96] = "", d4[96] = "";
  if (net) {
    clcnn_net_layer_describe(net, 1, d1, sizeof d1);
    clcnn_net_layer_describe(net, 3, d2, sizeof d2);
    clcnn_net_layer_describe(net, 6, d3, sizeof d3);
    clcnn_net_layer_describe(net, 7, d4, sizeof d4);
  }
  tap_ok(strstr(d1, "1e-05") && strstr(d1, "0.1") && strstr(d2, "0.25") && strstr(d3, "0.001") &&
             strstr(d3, "0.2") && strstr(d4, "0.5"),
         "batchnorm and dropout options and defaults: %s; %s; %s; %s", d1, d2, d3, d4);
  int nb = net ? clcnn_net_num_buffers(net) : 0;
  clcnn_param_info bi;
  memset(&bi, 0, sizeof bi);
  tap_ok(nb == 6 && !clcnn_net_buffer_info(net, 0, &bi) && !strcmp(bi.name, "1.running_mean"),
         "batchnorm buffers: %d, the first %s", nb, bi.name);
  clcnn_net_destroy(net);
  const clcnn_status INV = CLCNN_ERR_INVALID_ARGUMENT;
  bad("dropout p=1", "input 1 8 8\ndropout p=1\n", INV, "t.txt:2:11: expected dropout's p in [0, 1), got '1'");
  bad("dropout p=-0.1", "input 1 8 8\ndropout p=-0.1\n", INV, "t.txt:2:11: expected dropout's p in [0, 1)");
  bad("dropout with a number", "input 1 8 8\ndropout 0.5\n", INV, "t.txt:2:9: unexpected '0.5'|dropout [p=P]");
  bad("batchnorm eps=0", "input 1 8 8\nbatchnorm eps=0\n", INV, "t.txt:2:15: expected a positive number for batchnorm's eps");
  bad("batchnorm momentum=0", "input 1 8 8\nbatchnorm momentum=0\n", INV, "t.txt:2:20: expected batchnorm's momentum in (0, 1]");
  bad("batchnorm momentum=x", "input 1 8 8\nbatchnorm momentum=x\n", INV, "t.txt:2:20: expected a number for batchnorm's momentum");
  bad("batchnorm with an unknown option", "input 1 8 8\nbatchnorm affine=0\n", INV,
      "t.txt:2:11: 'affine=0': unknown option for batchnorm (expected eps, momentum)");
  bad("a duplicate dropout p", "input 1 8 8\ndropout p=0.1 p=0.2\n", INV, "t.txt:2:15: duplicate option 'p'");
}

/* Graph lines: names, inputs, losses; their errors at the right line and column. */
static void test_graph_syntax(void) {
  static const char res[] =
      "input 2 6 6\n"
      "stem = conv 4 kernel=3 pad=1 bias=0\n"
      "stem_bn = batchnorm\n"
      "a=relu\n"
      "b = conv( a ) 4 kernel=3 pad=1\n"
      "c = conv(input) 4 kernel=1 stride=1   # reads the net's input\n"
      "relu(c)\n"
      "flatten\n"
      "out = linear 3\n"
      "xent(out) ignore=7\n";
  clcnn_net *net = parse(res);
  if (tap_ok(net != NULL, "a graph with names, explicit inputs and a loss line parses: %s", err)) {
    int n = clcnn_net_num_layers(net);
    const char *want[] = {"stem", "stem_bn", "a", "b", "c", "5", "6", "out"};
    int ok = n == 8;
    for (int i = 0; ok && i < n; i++) ok = !strcmp(clcnn_net_layer_name(net, i), want[i]);
    tap_ok(ok, "layers are named as their lines, unnamed ones by their index among the layer lines");
    tap_ok(has_param(net, "stem.weight") && !has_param(net, "stem.bias") && has_param(net, "stem_bn.running_var") == 0 &&
               has_param(net, "b.bias") && has_param(net, "out.weight"),
           "parameters are named NAME.weight, NAME.bias");
    clcnn_param_info info;
    int found = 0;
    for (int i = 0; i < clcnn_net_num_buffers(net); i++)
      if (!clcnn_net_buffer_info(net, i, &info) && !strcmp(info.name, "stem_bn.num_batches_tracked")) found = 1;
    tap_ok(found, "buffers too: stem_bn.num_batches_tracked");
    int d[4];
    clcnn_tensor *c = clcnn_net_tensor(net, "c"), *x = clcnn_net_tensor(net, "input");
    tap_ok(c && x == clcnn_net_input(net) && !clcnn_tensor_shape(c, d) && d[1] == 4 && d[2] == 6 && d[3] == 6 &&
               !strcmp(clcnn_tensor_name(c), "c") && clcnn_net_tensor(net, "loss0") != NULL &&
               clcnn_net_tensor(net, "nothing") == NULL,
           "tensors are found by name: the input, a layer, the loss (loss0)");
    tap_ok(strstr(clcnn_net_warnings(net), "t.txt:5:1: warning: the output of layer 3 ('b') is not used") != NULL &&
               !strstr(clcnn_net_warnings(net), "'a'"),
           "a line that nothing reads is warned about: %s", clcnn_net_warnings(net));
    clcnn_net_destroy(net);
  }
  net = parse("input 1 4 4\nflatten\nlinear 3\n");
  tap_ok(net && !strcmp(clcnn_net_warnings(net), ""), "a chain has no warnings");
  clcnn_net_destroy(net);

  const clcnn_status INV = CLCNN_ERR_INVALID_ARGUMENT;
  bad("an unknown input", "input 1 8 8\na = relu\nb = relu(zz)\n", INV, "t.txt:3:10: unknown name 'zz' (no line above defines it)");
  bad("a use before the definition", "input 1 8 8\na = relu(b)\nb = relu\n", INV,
      "t.txt:2:10: 'b' is used before its definition on line 3");
  bad("a name defined twice", "input 1 8 8\na = relu\na = sigmoid\n", INV, "t.txt:3:1: name 'a' is defined twice (first on line 2)");
  bad("a name that is the input's", "input 1 8 8\ninput = relu\n", INV, "t.txt:2:1:|input");
  bad("a reserved name", "input 1 8 8\ntrain = relu\n", INV, "t.txt:2:1: name 'train' is reserved|torch.nn.Module");
  bad("another reserved name", "input 1 8 8\nforward = relu\n", INV, "t.txt:2:1: name 'forward' is reserved");
  bad("a 64-character name", "input 1 8 8\na123456789012345678901234567890123456789012345678901234567890123 = relu\n", INV,
      "t.txt:2:1: name|longer than 63 characters");
  bad("a name that starts with a digit", "input 1 8 8\n1a = relu\n", INV, "t.txt:2:1: bad name '1a'");
  bad("a name and no op", "input 1 8 8\na =\n", INV, "t.txt:2:4: expected an op after 'a ='");
  bad("a name and a bad op token", "input 1 8 8\na = +relu\n", INV, "t.txt:2:5: expected an op after 'a =', got '+relu'");
  bad("an unclosed input list", "input 1 8 8\na = relu(input\n", INV, "t.txt:2:15: expected ',' or ')' in the inputs of relu");
  bad("an empty input list", "input 1 8 8\na = relu()\n", INV, "t.txt:2:10: relu(): expected the names of its inputs");
  bad("a trailing comma", "input 1 8 8\na = relu(input,)\n", INV, "t.txt:2:16: expected the name of an input of relu");
  bad("two inputs to relu", "input 1 8 8\na = relu\nb = relu(a, input)\n", INV, "t.txt:3:5: relu takes 1 input, got 2");
  bad("text glued to the inputs", "input 1 8 8\na = relu(input)x\n", INV, "t.txt:2:16: expected a blank after relu(...)");
  bad("an unknown op after a name", "input 1 8 8\na = relux\n", INV, "t.txt:2:5: unknown layer 'relux'|or a loss: xent");
  bad("a layer after a loss", "input 4 1 1\nlinear 3\nxent\nrelu\n", INV,
      "t.txt:4:1: a layer after the loss on line 3: loss lines come after the layer lines");
  bad("a loss before any layer", "input 4 1 1\nxent(input)\n", INV, "t.txt:2:1: a loss before any layer");
  bad("a loss reading a loss", "input 4 1 1\nl = linear 3\ne = xent(l)\nxent(e)\n", INV,
      "t.txt:4:6: 'e' is a loss: nothing reads a loss");
  bad("a loss with a bad weight", "input 4 1 1\nl = linear 3\nxent(l) weight=-1\n", INV,
      "t.txt:3:1: loss 'loss0' (cross_entropy): weight -1 must be finite and non-negative");
  bad("a loss with an unknown option", "input 4 1 1\nl = linear 3\nxent(l) beta=2\n", INV,
      "t.txt:3:9: 'beta=2': unknown option for xent (expected ignore, weight)");
  bad("a loss name used twice", "input 4 1 1\nl = linear 3\nl = xent(l)\n", INV, "t.txt:3:1: name 'l' is defined twice");
  bad("a shape error names the node", "input 1 8 8\nstem = conv 4 kernel=9\n", CLCNN_ERR_SHAPE,
      "t.txt:2:8: layer 0 conv2d 'stem': kernel 9x9 is larger than the padded input 8x8");
  bad("reshape to another element count", "input 1 4 4\nreshape 2 3 3\n", CLCNN_ERR_SHAPE,
      "t.txt:2:1: layer 0 reshape: (2,3,3) has 18 elements, its input (1,4,4) 16");
  bad("reshape with two numbers", "input 1 4 4\nreshape 2 8\n", INV, "t.txt:2:1: reshape needs C H W, got 2 of 3");
}

int main(void) {
  char e[512];
  clcnn_status st = clcnn_ctx_create(&ctx, NULL, e, sizeof e); /* defaults: float */
  if (st) {
    printf("Bail out! no OpenCL device: %s: %s\n", clcnn_status_name(st), e);
    return 1;
  }
  test_lenet();
  test_options();
  test_layout();
  test_errors();
  test_bn_dropout();
  test_graph_syntax();
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
