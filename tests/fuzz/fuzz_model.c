/* tests/fuzz/fuzz_model.c - model files (lib/model.c) through clcnn_net_from_file, on one context
 * made once. Every input either builds a net of at least one layer with no error text, or is
 * refused with "FILE:LINE:COL: ..." (or "FILE: ...") and no net. */
#include "internal.h"
#include "fuzz.h"

static clcnn_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  ctx = fuzz_ctx((size_t)64 << 20);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("model.txt", data, size);
  clcnn_net *net = (clcnn_net *)1;
  char err[2048];
  int max_batch = 1 + (int)(size % 3);
  clcnn_status st = clcnn_net_from_file(ctx, path, max_batch, &net, err, sizeof err);
  if (st) {
    FUZZ_CHECK(!net, "a refused model left a net");
    FUZZ_CHECK(!strncmp(err, path, strlen(path)) && err[strlen(path)] == ':',
               "the error does not start with the file name: '%s'", err);
    FUZZ_CHECK(strlen(err) > strlen(path) + 2, "an empty reason: '%s'", err);
    return 0;
  }
  FUZZ_CHECK(net && !err[0], "success with error text '%s'", err);
  int nl = clcnn_net_num_layers(net);
  FUZZ_CHECK(nl > 0, "a net of %d layers", nl);
  char desc[256];
  int dims[4];
  for (int i = 0; i < nl; i++) {
    FUZZ_CHECK(clcnn_net_layer_describe(net, i, desc, sizeof desc) != NULL, "layer %d", i);
    FUZZ_CHECK(clcnn_net_layer_shape(net, i, dims) == CLCNN_SUCCESS, "layer %d", i);
    FUZZ_CHECK(dims[0] > 0 && dims[1] > 0 && dims[2] > 0 && dims[3] > 0,
               "layer %d of '%s' has output (%d,%d,%d,%d)", i, desc, dims[0], dims[1], dims[2],
               dims[3]);
  }
  FUZZ_CHECK(clcnn_net_output_size(net) > 0, "no output");
  /* the graph: every layer named, its inputs tensors of the net; the fusion and liveness passes
   * run when it is finished (a plan past the context's cap is refused, not a crash) */
  for (int i = 0; i < nl; i++) {
    const char *name = clcnn_net_layer_name(net, i);
    FUZZ_CHECK(name && name[0] && strlen(name) < 64 && clcnn_net_tensor(net, name), "layer %d's name", i);
    clcnn_tensor *in[4];
    int nin = clcnn_net_layer_inputs(net, i, in, 4);
    FUZZ_CHECK(nin >= 1, "layer %d reads %d tensors", i, nin);
    for (int j = 0; j < nin && j < 4; j++)
      FUZZ_CHECK(clcnn_net_tensor(net, clcnn_tensor_name(in[j])) == in[j], "layer %d's input %d", i, j);
  }
  FUZZ_CHECK(clcnn_net_warnings(net) != NULL, "warnings");
  clcnn_status fs = clcnn_net_finalize(net);
  FUZZ_CHECK(fs == CLCNN_SUCCESS || fs == CL_MEM_OBJECT_ALLOCATION_FAILURE || fs == CLCNN_ERR_SHAPE,
             "finishing the graph: %s", clcnn_ctx_last_error(ctx));
  for (int i = 0; !fs && i < nl; i++) FUZZ_CHECK(clcnn_net_layer_fused(net, i) >= 0, "layer %d", i);
  clcnn_net_destroy(net);
  return 0;
}
