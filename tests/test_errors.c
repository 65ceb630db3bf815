/* tests/test_errors.c - wrong input through the API gets a status and words that say what
 * was wrong; nothing crashes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

static clcnn_ctx *ctx;

/* The status is ST and the last error mentions every word in WORDS (|-separated). */
static int says(clcnn_status got, clcnn_status want, const char *words) {
  const char *err = clcnn_ctx_last_error(ctx);
  int ok = got == want;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|")) ok &= strstr(err, w) != NULL;
  if (!ok) tap_diag("got %s, wanted %s; error: %s", clcnn_status_name(got), clcnn_status_name(want), err);
  return ok;
}

int main(void) {
  char err[512];
  clcnn_status st;

  /* Devices that do not exist. */
  clcnn_ctx *bad = NULL;
  clcnn_ctx_options o = {.device = "7:0"};
  st = clcnn_ctx_create(&bad, &o, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NO_DEVICE && !bad && strstr(err, "7:0") && strstr(err, "does not exist"),
         "device 7:0 -> CLCNN_ERR_NO_DEVICE: %s", err);
  o.device = "0:9";
  st = clcnn_ctx_create(&bad, &o, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NO_DEVICE && !bad && strstr(err, "0:9"), "device 0:9 -> %s: %s", clcnn_status_name(st), err);
  o.device = "no-such-device-name";
  st = clcnn_ctx_create(&bad, &o, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NO_DEVICE && !bad && strstr(err, "no-such-device-name"), "device by a name that matches nothing: %s", err);
  setenv("CLCNN_DEVICE", "3:3", 1);
  st = clcnn_ctx_create(&bad, NULL, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NO_DEVICE && strstr(err, "3:3"), "CLCNN_DEVICE=3:3 is refused the same way: %s", err);
  setenv("CLCNN_DEVICE", "cpu", 1);
  st = clcnn_ctx_create(&bad, NULL, err, sizeof err);
  tap_ok(st == CLCNN_SUCCESS && bad, "CLCNN_DEVICE=cpu picks the CPU device");
  clcnn_ctx_destroy(bad);
  bad = NULL;
  unsetenv("CLCNN_DEVICE");
  o.device = NULL;
  o.precision = (clcnn_precision)7;
  st = clcnn_ctx_create(&bad, &o, err, sizeof err);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "precision"), "a precision that does not exist: %s", err);
  tap_ok(clcnn_ctx_create(NULL, NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER, "NULL out pointer");
  clcnn_ctx_options go = {.gemm = "cublas"};
  st = clcnn_ctx_create(&bad, &go, err, sizeof err);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && !bad && strstr(err, "cublas"), "GEMM backend 'cublas': %s", err);
  setenv("CLCNN_GEMM", "fast", 1);
  st = clcnn_ctx_create(&bad, NULL, err, sizeof err);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && !bad && strstr(err, "CLCNN_GEMM"), "CLCNN_GEMM=fast: %s", err);
  unsetenv("CLCNN_GEMM");
  const char *bad_lws[] = {"abc", "0", "-64", "64x", "99999"};
  for (int i = 0; i < 5; i++) {
    setenv("CLCNN_LWS", bad_lws[i], 1);
    st = clcnn_ctx_create(&bad, NULL, err, sizeof err);
    tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && !bad && strstr(err, "CLCNN_LWS"), "CLCNN_LWS=%s: %s", bad_lws[i], err);
  }
  unsetenv("CLCNN_LWS");

  clcnn_ctx_options d = {.precision = CLCNN_DOUBLE, .device = "0:0"};
  st = clcnn_ctx_create(&ctx, &d, err, sizeof err);
  if (st) {
    printf("Bail out! no OpenCL device 0:0: %s\n", err);
    return 1;
  }
  /* Shapes that do not fit. */
  clcnn_net *net = NULL;
  tap_ok(says(clcnn_net_create(ctx, 0, 1, 8, 8, &net), CLCNN_ERR_INVALID_ARGUMENT, "batch 0") && !net,
         "a batch of 0 is refused");
  tap_ok(says(clcnn_net_create(ctx, 2, 1, -3, 8, &net), CLCNN_ERR_INVALID_ARGUMENT, "positive"),
         "a negative height is refused");
  tap_ok(says(clcnn_net_create(ctx, 2, 1, 8, 8, NULL), CLCNN_ERR_NULL_POINTER, "NULL"), "a NULL net pointer");
  tap_ok(clcnn_net_create(ctx, 2, 3, 6, 5, &net) == CLCNN_SUCCESS, "a 3x6x5 net");

  clcnn_conv2d_params big = {.out_channels = 4, .kh = 9, .kw = 3};
  tap_ok(says(clcnn_net_add_conv2d(net, &big), CLCNN_ERR_SHAPE, "layer 0 conv2d|9x3|larger than the padded input 6x5"),
         "a 9x3 kernel on a 6x5 input: %s", clcnn_ctx_last_error(ctx));
  clcnn_conv2d_params dil = {.out_channels = 4, .kh = 3, .kw = 3, .dilation_h = 3, .pad_h = 0};
  tap_ok(says(clcnn_net_add_conv2d(net, &dil), CLCNN_ERR_SHAPE, "7x3 with dilation"),
         "a dilated kernel larger than the input: %s", clcnn_ctx_last_error(ctx));
  clcnn_conv2d_params grp = {.out_channels = 4, .kh = 3, .kw = 3, .groups = 2};
  tap_ok(says(clcnn_net_add_conv2d(net, &grp), CLCNN_ERR_SHAPE, "groups 2|3"), "groups that do not divide 3 channels");
  clcnn_conv2d_params neg = {.out_channels = 4, .kh = 3, .kw = 3, .pad_h = -1};
  tap_ok(says(clcnn_net_add_conv2d(net, &neg), CLCNN_ERR_INVALID_ARGUMENT, "pad"), "a negative pad");
  tap_ok(says(clcnn_net_add_conv2d(net, NULL), CLCNN_ERR_NULL_POINTER, "NULL"), "NULL conv params");
  tap_ok(says(clcnn_net_add_linear(net, 10, 1), CLCNN_ERR_SHAPE, "flat|flatten"), "linear on a 3-d input asks for flatten");
  clcnn_pool2d_params mp = {.kh = 7, .kw = 2};
  tap_ok(says(clcnn_net_add_maxpool2d(net, &mp), CLCNN_ERR_SHAPE, "maxpool2d|7x2|larger"), "a pool larger than its input");
  clcnn_pool2d_params mpad = {.kh = 2, .kw = 2, .pad_h = 2};
  tap_ok(says(clcnn_net_add_avgpool2d(net, &mpad), CLCNN_ERR_SHAPE, "half the kernel"), "a pool pad over half its kernel");
  tap_ok(clcnn_net_num_layers(net) == 0, "refused layers are not added");

  /* Calls in the wrong state or with NULL tensors. */
  double x[2 * 3 * 6 * 5] = {0}, y[64];
  int32_t labels[2] = {0, 1};
  tap_ok(says(clcnn_net_forward(net, x, 2), CLCNN_ERR_STATE, "no layers"), "forward on an empty net");
  clcnn_net_add_flatten(net);
  clcnn_net_add_linear(net, 4, 1);
  tap_ok(says(clcnn_net_backward(net, labels), CLCNN_ERR_STATE, "no forward"), "backward before forward");
  tap_ok(says(clcnn_net_read_output(net, y), CLCNN_ERR_STATE, "no forward"), "reading an output before forward");
  tap_ok(says(clcnn_net_forward(net, NULL, 2), CLCNN_ERR_NULL_POINTER, "x is NULL"), "a NULL input tensor");
  tap_ok(says(clcnn_net_forward(net, x, 3), CLCNN_ERR_INVALID_ARGUMENT, "batch 3|1..2"), "a batch over max_batch");
  tap_ok(clcnn_net_forward(net, x, 2) == CLCNN_SUCCESS, "then a good forward");
  double loss;
  tap_ok(says(clcnn_net_loss(net, &loss), CLCNN_ERR_STATE, "no clcnn_net_backward"), "a loss before backward");
  tap_ok(says(clcnn_net_backward(net, NULL), CLCNN_ERR_NULL_POINTER, "labels is NULL"), "NULL labels");
  int32_t wrong[2] = {0, 4};
  tap_ok(says(clcnn_net_backward(net, wrong), CLCNN_ERR_LABEL, "label 4 of sample 1|0..3"), "a label out of range");
  tap_ok(says(clcnn_net_backward_from(net, NULL), CLCNN_ERR_NULL_POINTER, "dout is NULL"), "a NULL output gradient");
  tap_ok(says(clcnn_net_read_input_grad(net, y), CLCNN_ERR_STATE, "no backward"), "reading dx before backward");
  tap_ok(says(clcnn_net_param_write(net, 5, x), CLCNN_ERR_RANGE, "parameter 5|has 2"), "a parameter that does not exist");
  tap_ok(says(clcnn_net_param_read(net, 0, NULL), CLCNN_ERR_NULL_POINTER, "NULL"), "reading a parameter into NULL");
  clcnn_param_info info;
  tap_ok(says(clcnn_net_param_info(net, -1, &info), CLCNN_ERR_RANGE, "parameter -1"), "parameter -1");
  uint64_t ns;
  tap_ok(says(clcnn_net_profile(net, 0, 0, &ns), CLCNN_ERR_STATE, "without profiling"), "profiling a context made without it");
  int dims[4];
  tap_ok(says(clcnn_net_layer_shape(net, 9, dims), CLCNN_ERR_RANGE, "layer 9"), "the shape of a layer that does not exist");
  /* zero weights: every logit is 0 and the loss is log(4) */
  loss = -1;
  int trains = clcnn_net_backward(net, labels) == CLCNN_SUCCESS && clcnn_net_loss(net, &loss) == CLCNN_SUCCESS;
  tap_ok(trains && fabs(loss - log(4.0)) < 1e-12, "after the refusals the net still trains (loss %.6f = log 4)", loss);

  /* NULL handles are refused, not dereferenced. */
  tap_ok(clcnn_net_forward(NULL, x, 1) == CLCNN_ERR_NULL_POINTER && clcnn_net_zero_grad(NULL) == CLCNN_ERR_NULL_POINTER &&
         clcnn_net_add_relu(NULL) == CLCNN_ERR_NULL_POINTER && clcnn_net_create(NULL, 1, 1, 1, 1, &net) == CLCNN_ERR_NULL_POINTER,
         "NULL net or context handles give CLCNN_ERR_NULL_POINTER");
  clcnn_net_destroy(NULL);
  clcnn_ctx_destroy(NULL);
  tap_ok(1, "destroying NULL is a no-op");

  /* A kernel source that does not compile reports the file and the compiler's log. */
  char dir[] = "/tmp/clcnn-badcl-XXXXXX";
  if (mkdtemp(dir)) {
    char path[512];
    snprintf(path, sizeof path, "%s/util.cl", dir);
    FILE *f = fopen(path, "w");
    if (f) {
      fputs("__kernel void bias_add(__global real *y) { y[0] = undeclared_thing; }\n", f);
      fclose(f);
    }
    clcnn_ctx *c2 = NULL;
    clcnn_ctx_options bo = {.kernel_path = dir};
    st = clcnn_ctx_create(&c2, &bo, err, sizeof err);
    clcnn_status bst = c2 ? clcnn_ctx_build_all(c2) : st;
    const char *e2 = c2 ? clcnn_ctx_last_error(c2) : err;
    tap_ok(bst == CLCNN_ERR_BUILD && strstr(e2, path) && strstr(e2, "undeclared_thing"),
           "a broken util.cl: CLCNN_ERR_BUILD naming the file and quoting the build log");
    clcnn_ctx_destroy(c2);
    remove(path);
    rmdir(dir);
  } else {
    tap_ok(0, "mkdtemp");
  }

  clcnn_net_destroy(net);
  clcnn_ctx_destroy(ctx);
  return tap_done();
}
