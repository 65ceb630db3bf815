/* clcnn.h - train convolutional neural networks on any OpenCL device.
 *
 * This header is the whole public interface of libclcnn.
 *
 * Conventions (those of torch.nn):
 *   - tensors are NCHW, contiguous, in the context's precision (float or double);
 *   - conv weights are OIHW = (out_channels, in_channels/groups, kh, kw), linear weights (out, in);
 *   - flatten keeps the C,H,W order;
 *   - the loss is softmax cross-entropy over integer class labels, mean over the batch.
 *
 * Gradient rule: a backward pass overwrites activation gradients ('=') and accumulates
 * parameter gradients ('+='); clcnn_net_zero_grad() clears the latter.
 *
 * Ownership: every clcnn_*_create() has a clcnn_*_destroy() that accepts NULL. Pointers
 * passed in are borrowed for the duration of the call unless a comment says otherwise.
 * Host memory handed to clcnn_net_forward() / clcnn_net_backward*() is read asynchronously:
 * keep it unchanged until the next call that returns a result to the host
 * (clcnn_net_loss, clcnn_net_read_*, clcnn_net_finish).
 *
 * Errors: every function returns a clcnn_status (CLCNN_SUCCESS = 0). OpenCL's own
 * negative codes pass through unchanged, CLBlast's keep their values, and clcnn's own
 * codes live in -4000..-4099. clcnn_status_name() gives "CL_OUT_OF_RESOURCES",
 * clcnn_status_str() a sentence, and clcnn_ctx_last_error() the full story of the last
 * failure on a context ("lib/net.c:120: clEnqueueNDRangeKernel(conv2d_forward):
 * CL_OUT_OF_RESOURCES (-5)"). The library never prints to stdout and never exits.
 */
#ifndef CLCNN_H
#define CLCNN_H

#include <stddef.h>
#include <stdint.h>

#define CLCNN_VERSION_MAJOR 0
#define CLCNN_VERSION_MINOR 1
#define CLCNN_VERSION_PATCH 0
#define CLCNN_VERSION_STRING "0.1.0"

#if defined(_WIN32)
#define CLCNN_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CLCNN_API __attribute__((visibility("default")))
#else
#define CLCNN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ---------------------------------------------------------------------------
 * One list makes the enum, the names and the texts (lib/status.c). X(name, value, text). */
#define CLCNN_STATUS_MAP(X)                                                                  \
  X(CLCNN_SUCCESS, 0, "success")                                                             \
  X(CLCNN_ERR_INVALID_ARGUMENT, -4001, "invalid argument")                                   \
  X(CLCNN_ERR_NULL_POINTER, -4002, "a required pointer is NULL")                             \
  X(CLCNN_ERR_SHAPE, -4003, "shapes do not fit")                                             \
  X(CLCNN_ERR_NO_PLATFORM, -4004, "no OpenCL platform found")                                \
  X(CLCNN_ERR_NO_DEVICE, -4005, "no OpenCL device matches")                                  \
  X(CLCNN_ERR_NO_FP64, -4006, "the device has no double precision (cl_khr_fp64)")            \
  X(CLCNN_ERR_KERNEL_SOURCE, -4007, "kernel source not found or unreadable")                 \
  X(CLCNN_ERR_BUILD, -4008, "kernel build failed")                                           \
  X(CLCNN_ERR_OUT_OF_MEMORY, -4009, "out of host memory")                                    \
  X(CLCNN_ERR_STATE, -4010, "call made in the wrong state")                                  \
  X(CLCNN_ERR_LABEL, -4011, "class label out of range")                                      \
  X(CLCNN_ERR_BLAS, -4012, "CLBlast failed")                                                 \
  X(CLCNN_ERR_RANGE, -4013, "index out of range")

typedef enum {
#define CLCNN_STATUS_ENUM_(name, value, text) name = value,
  CLCNN_STATUS_MAP(CLCNN_STATUS_ENUM_)
#undef CLCNN_STATUS_ENUM_
} clcnn_status_code;

typedef int clcnn_status; /* CLCNN_SUCCESS, a clcnn_status_code, a CL_* or a CLBlast code */

/* "CL_OUT_OF_RESOURCES", "CLCNN_ERR_SHAPE", "CLBlastInvalidDimension"; "UNKNOWN" otherwise.
 * Static strings. */
CLCNN_API const char *clcnn_status_name(clcnn_status s);
/* A short sentence for the status. Static string. */
CLCNN_API const char *clcnn_status_str(clcnn_status s);
CLCNN_API const char *clcnn_version(void);

/* ---- context: one device, one precision, one command queue ---------------------------- */
typedef struct clcnn_ctx clcnn_ctx;

typedef enum { CLCNN_FLOAT = 0, CLCNN_DOUBLE = 1 } clcnn_precision;

typedef struct {
  /* Device: "P:D" (clinfo's platform:device index), "gpu", "cpu", or a case-insensitive
   * substring of the device name. NULL: $CLCNN_DEVICE if set, else the first GPU, else the
   * first device. */
  const char *device;
  clcnn_precision precision; /* CLCNN_DOUBLE needs cl_khr_fp64 */
  /* Directory holding the .cl sources; NULL: $CLCNN_KERNEL_PATH, the installed
   * $(pkgdatadir), then the copy embedded in the library. A file missing from one place is
   * looked for in the next. */
  const char *kernel_path;
  int profiling; /* non-zero: profile every command, see clcnn_net_profile() */
} clcnn_ctx_options;

/* opt may be NULL (all defaults). On failure *out is NULL and, when err is not NULL, the
 * reason is written to err (err_size bytes, NUL-terminated). */
CLCNN_API clcnn_status clcnn_ctx_create(clcnn_ctx **out, const clcnn_ctx_options *opt,
                                        char *err, size_t err_size);
CLCNN_API void clcnn_ctx_destroy(clcnn_ctx *ctx);
/* The last failure on ctx, "" if none. Owned by ctx, valid until the next call on ctx. */
CLCNN_API const char *clcnn_ctx_last_error(const clcnn_ctx *ctx);
CLCNN_API const char *clcnn_ctx_device_name(const clcnn_ctx *ctx); /* owned by ctx */
CLCNN_API clcnn_precision clcnn_ctx_precision(const clcnn_ctx *ctx);
/* Bytes per element of host arrays exchanged with ctx: 4 (float) or 8 (double). */
CLCNN_API size_t clcnn_ctx_elem_size(const clcnn_ctx *ctx);
/* Compile every clcnn kernel program now, for this device and precision. */
CLCNN_API clcnn_status clcnn_ctx_build_all(clcnn_ctx *ctx);
/* Where the kernel file NAME (e.g. "conv2d.cl") is loaded from: "explicit", "env",
 * "installed" or "embedded"; NULL if it is not found. Static string. */
CLCNN_API const char *clcnn_ctx_kernel_origin(clcnn_ctx *ctx, const char *name);

/* ---- sequential networks --------------------------------------------------------------- */
typedef struct clcnn_net clcnn_net;

typedef enum {
  CLCNN_LAYER_CONV2D,
  CLCNN_LAYER_LINEAR,
  CLCNN_LAYER_RELU,
  CLCNN_LAYER_LEAKY_RELU,
  CLCNN_LAYER_SIGMOID,
  CLCNN_LAYER_TANH,
  CLCNN_LAYER_MAXPOOL2D,
  CLCNN_LAYER_AVGPOOL2D,
  CLCNN_LAYER_GLOBAL_AVGPOOL,
  CLCNN_LAYER_FLATTEN
} clcnn_layer_type;

/* torch.nn.Conv2d(in, out_channels, (kh,kw), stride, padding, dilation, groups, bias).
 * Zero stride/dilation/groups mean 1. */
typedef struct {
  int out_channels;
  int kh, kw;
  int stride_h, stride_w;
  int pad_h, pad_w;
  int dilation_h, dilation_w;
  int groups;
  int bias; /* non-zero: with bias */
} clcnn_conv2d_params;

/* torch.nn.MaxPool2d / AvgPool2d (count_include_pad=True, ceil_mode=False).
 * Zero stride means stride = kernel, as in PyTorch. pad <= kernel/2. */
typedef struct {
  int kh, kw;
  int stride_h, stride_w;
  int pad_h, pad_w;
} clcnn_pool2d_params;

/* A network whose input is (N, c, h, w) with N <= max_batch. For an input of plain
 * vectors use c = features, h = w = 1. */
CLCNN_API clcnn_status clcnn_net_create(clcnn_ctx *ctx, int max_batch, int c, int h, int w,
                                        clcnn_net **out);
CLCNN_API void clcnn_net_destroy(clcnn_net *net);

/* Layers, appended in order; each checks that it fits the current output shape and
 * says why not in clcnn_ctx_last_error(). A new layer's parameters and their gradients are
 * zero: call clcnn_net_init_params() for PyTorch's initialisation. */
CLCNN_API clcnn_status clcnn_net_add_conv2d(clcnn_net *net, const clcnn_conv2d_params *p);
CLCNN_API clcnn_status clcnn_net_add_linear(clcnn_net *net, int out_features, int bias);
CLCNN_API clcnn_status clcnn_net_add_relu(clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_add_leaky_relu(clcnn_net *net, double negative_slope);
CLCNN_API clcnn_status clcnn_net_add_sigmoid(clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_add_tanh(clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_add_maxpool2d(clcnn_net *net, const clcnn_pool2d_params *p);
CLCNN_API clcnn_status clcnn_net_add_avgpool2d(clcnn_net *net, const clcnn_pool2d_params *p);
CLCNN_API clcnn_status clcnn_net_add_global_avgpool(clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_add_flatten(clcnn_net *net);

CLCNN_API int clcnn_net_num_layers(const clcnn_net *net);
CLCNN_API clcnn_layer_type clcnn_net_layer_type(const clcnn_net *net, int layer);
/* Output shape of layer (layer = -1: the net's input) for a batch of one: dims[0] = 1. */
CLCNN_API clcnn_status clcnn_net_layer_shape(const clcnn_net *net, int layer, int dims[4]);
/* Elements per sample of the net's output (the last layer's), e.g. the class count. */
CLCNN_API size_t clcnn_net_output_size(const clcnn_net *net);
CLCNN_API size_t clcnn_net_input_size(const clcnn_net *net);

/* Parameters, numbered in layer order: weight then bias of each layer that has them.
 * name is PyTorch's state_dict key for the equivalent torch.nn.Sequential ("0.weight"). */
typedef struct {
  char name[32];
  int layer;
  int ndim;
  int dims[4];
  size_t count; /* elements */
} clcnn_param_info;

CLCNN_API int clcnn_net_num_params(const clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_param_info(const clcnn_net *net, int i, clcnn_param_info *info);
/* host holds info.count elements of the context's precision. Blocking. */
CLCNN_API clcnn_status clcnn_net_param_write(clcnn_net *net, int i, const void *host);
CLCNN_API clcnn_status clcnn_net_param_read(clcnn_net *net, int i, void *host);
CLCNN_API clcnn_status clcnn_net_grad_read(clcnn_net *net, int i, void *host);
/* PyTorch's default initialisation (kaiming_uniform_(a=sqrt(5)) for weights, U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) for biases) from a generator seeded with seed. */
CLCNN_API clcnn_status clcnn_net_init_params(clcnn_net *net, uint64_t seed);

/* Enqueue the upload of x (n samples, NCHW) and the forward pass. Non-blocking. */
CLCNN_API clcnn_status clcnn_net_forward(clcnn_net *net, const void *x, int n);
/* Enqueue softmax cross-entropy on the last forward's outputs against labels (n int32 class
 * indices, each in [0, output_size)), then the backward pass of the whole net. Non-blocking;
 * labels are checked on the host before anything is enqueued. */
CLCNN_API clcnn_status clcnn_net_backward(clcnn_net *net, const int32_t *labels);
/* Enqueue the backward pass from a given gradient of the net's output (n * output_size
 * elements), for custom losses and for checking gradients. Non-blocking. */
CLCNN_API clcnn_status clcnn_net_backward_from(clcnn_net *net, const void *dout);
/* The mean loss of the last clcnn_net_backward(). Blocks until it is known. */
CLCNN_API clcnn_status clcnn_net_loss(clcnn_net *net, double *loss);
/* Blocking reads: the last forward's outputs (n * output_size elements) and the gradient of
 * the loss with respect to the input (n * input_size elements). */
CLCNN_API clcnn_status clcnn_net_read_output(clcnn_net *net, void *out);
CLCNN_API clcnn_status clcnn_net_read_input_grad(clcnn_net *net, void *dx);
/* Enqueue zeroing of every parameter gradient. Non-blocking. */
CLCNN_API clcnn_status clcnn_net_zero_grad(clcnn_net *net);
/* Wait for everything enqueued on the net. */
CLCNN_API clcnn_status clcnn_net_finish(clcnn_net *net);

/* Profiling (context made with profiling = 1): kernel time in nanoseconds, from the OpenCL
 * events, that layer spent in the last forward (dir 0) and backward (dir 1), summed over its
 * commands. Blocks until those commands are done. layer = clcnn_net_num_layers(): the loss. */
CLCNN_API clcnn_status clcnn_net_profile(clcnn_net *net, int layer, int dir, uint64_t *ns);
/* Scheduling counters since the last clcnn_net_forward(), for tests and tools: commands
 * enqueued, and host waits (blocking calls: reads, finishes) the library made. A forward
 * plus backward makes none; clcnn_net_loss() makes one. */
CLCNN_API clcnn_status clcnn_net_step_stats(const clcnn_net *net, int *commands,
                                            int *host_waits);
/* "conv2d(6, kernel 5x5, stride 1x1, pad 2x2)" etc. into buf; returns buf. */
CLCNN_API const char *clcnn_net_layer_describe(const clcnn_net *net, int layer, char *buf,
                                               size_t size);

#ifdef __cplusplus
}
#endif
#endif /* CLCNN_H */
