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
  /* Which GEMM computes each product (NULL: $CLCNN_GEMM if set, else "auto"):
   *   "auto"    the choice measured for this device, driver and shape when the GEMM file in
   *             the cache directory has one, else clcnn's kernels on CPU devices and CLBlast
   *             on the others;
   *   "measure" as auto, but a shape not in the file yet is timed on both now (the first
   *             step that meets it waits for that) and added to the file;
   *   "clcnn"   clcnn's own kernels (shaped for CPUs) for every product;
   *   "clblast" CLBlast for every product. */
  const char *gemm;
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
/* Device memory in clcnn's buffers: now, the most at any time, and how many buffers were
 * created so far (a training step that allocates nothing leaves it unchanged). */
CLCNN_API clcnn_status clcnn_ctx_memory(const clcnn_ctx *ctx, size_t *now, size_t *peak,
                                        uint64_t *allocations);
/* Start a new peak: the peak becomes the memory in use now. */
CLCNN_API void clcnn_ctx_reset_peak(clcnn_ctx *ctx);
/* The size of the largest buffer clcnn created on ctx so far, in bytes (0: none). */
CLCNN_API size_t clcnn_ctx_largest_buffer(const clcnn_ctx *ctx);
/* The device's memory (CL_DEVICE_GLOBAL_MEM_SIZE) and the largest buffer it can allocate
 * (CL_DEVICE_MAX_MEM_ALLOC_SIZE), in bytes. Either pointer may be NULL. */
CLCNN_API clcnn_status clcnn_ctx_device_memory(const clcnn_ctx *ctx, uint64_t *global_bytes,
                                               uint64_t *max_alloc_bytes);
/* Time the GEMM on C (m x n) = op(A) (m x k) op(B) (k x n), row-major, ta/tb non-zero for
 * transposed operands, as a training step runs it: after a warm-up, reps batches of products
 * queued back to back (up to 20, ~20 MFLOP a batch), each batch waited for; *seconds gets the
 * median time per product. For benchmarks. */
CLCNN_API clcnn_status clcnn_ctx_time_gemm(clcnn_ctx *ctx, int ta, int tb, size_t m, size_t n,
                                           size_t k, int reps, double *seconds);
/* The GEMM choice in force: "auto", "measure", "clcnn" or "clblast". Static string. */
CLCNN_API const char *clcnn_ctx_gemm_backend(const clcnn_ctx *ctx);
/* The GEMM file of this device (see clcnn_ctx_options.gemm): *known gets how many shapes it
 * holds (with those this context measured), *measured how many this context measured, and
 * *clblast_gflops the figure of the tuned CLBlast parameters in force (0: CLBlast's own).
 * Any pointer may be NULL. */
CLCNN_API clcnn_status clcnn_ctx_gemm_stats(const clcnn_ctx *ctx, int *known, int *measured,
                                            double *clblast_gflops);
/* Tune CLBlast's GEMM kernel (Xgemm) for this device at run time, for devices its database does
 * not know: time the parameters it runs with now and up to max_sets (0: all) of clcnn's
 * candidate parameter sets on C (m x n) = A (m x k) B (k x n), drop any set whose product
 * differs from clcnn's GEMM, and, when the fastest beats the parameters in use, apply it and
 * record it in the device's GEMM file, where later contexts find it (shapes measured before
 * are dropped from the file, as stale). CLBlast keeps the last parameters applied for the rest
 * of the process. *before_gflops and *after_gflops (may be NULL) get the two figures. Takes a
 * CLBlast compile per set: seconds to minutes on PoCL. */
/* m, n and k from 16 (smaller products time only the launch). A set the driver cannot build, or
 * whose product is wrong, is skipped; if none is left, CLBlast stays on the last one tried for
 * the rest of the process (CLBlast cannot be given its own parameters back), so the call fails
 * and this context uses clcnn's GEMM from then on; clcnn-devices --tune runs it in a process of
 * its own. */
CLCNN_API clcnn_status clcnn_ctx_tune_clblast(clcnn_ctx *ctx, size_t m, size_t n, size_t k, int max_sets,
                                              double *before_gflops, double *after_gflops);
/* Compile every clcnn kernel program now, for this device and precision, and make CLBlast
 * compile the GEMM kernels the layers use (it does so on its first call in a process). */
CLCNN_API clcnn_status clcnn_ctx_build_all(clcnn_ctx *ctx);
/* How many kernel programs this context built from source (*from_source) and loaded from the
 * disk cache (*from_cache) so far; either pointer may be NULL.
 * The disk cache: a program built from source has its binary kept in $CLCNN_CACHE_DIR, else
 * $XDG_CACHE_HOME/clcnn, else $HOME/.cache/clcnn (made if missing), as <key>.clbin, the key
 * a hash of the source, the build options and the device, vendor, driver and platform
 * versions; a later context, in any process, with the same key loads it instead of
 * compiling. An entry that is damaged or that the driver refuses is removed and the program
 * built from source; a directory that cannot be made or written only means no caching.
 * CLCNN_CACHE_DIR set to "" or "off" turns it off; CLCNN_DEBUG set prints each hit, miss and
 * rejected entry to stderr. */
CLCNN_API clcnn_status clcnn_ctx_build_stats(const clcnn_ctx *ctx, int *from_source,
                                             int *from_cache);
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
  CLCNN_LAYER_FLATTEN,
  CLCNN_LAYER_BATCHNORM,
  CLCNN_LAYER_DROPOUT,
  CLCNN_LAYER_RESHAPE,
  CLCNN_LAYER_ADD,
  CLCNN_LAYER_CONCAT,
  CLCNN_LAYER_CONV_TRANSPOSE2D,
  CLCNN_LAYER_UPSAMPLE,
  /* losses (clcnn_xent_loss ...): nodes too, but not layers */
  CLCNN_LAYER_XENT_LOSS,
  CLCNN_LAYER_BCE_LOSS,
  CLCNN_LAYER_MSE_LOSS,
  CLCNN_LAYER_SMOOTHL1_LOSS,
  CLCNN_LAYER_YOLO_LOSS
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
/* torch.nn.BatchNorm2d on a (C,H,W) input, BatchNorm1d on a flat (C,1,1) one: affine, with
 * running statistics. eps <= 0 or momentum outside (0,1] is refused; pass 1e-5 and 0.1 for
 * PyTorch's defaults. Training normalises with the batch's statistics (biased variance) and
 * updates running_mean/running_var (unbiased variance) with momentum; evaluation uses them. */
CLCNN_API clcnn_status clcnn_net_add_batchnorm(clcnn_net *net, double eps, double momentum);
/* torch.nn.Dropout(p), 0 <= p < 1: in training each element is zeroed with probability p and
 * the rest scaled by 1/(1-p); in evaluation it passes through. The mask comes from a
 * counter-based generator seeded by clcnn_net_set_seed(). */
CLCNN_API clcnn_status clcnn_net_add_dropout(clcnn_net *net, double p);

/* Training (default) or evaluation mode, as torch.nn.Module.train()/eval(). */
CLCNN_API clcnn_status clcnn_net_set_training(clcnn_net *net, int training);
CLCNN_API int clcnn_net_training(const clcnn_net *net);
/* Whether backward computes the gradient of the net's input (default on). Training does not need
 * it (PyTorch's input has requires_grad False): off, the first layer skips it, which for a conv
 * is a GEMM and a col2im. */
CLCNN_API clcnn_status clcnn_net_set_input_grad(clcnn_net *net, int on);
/* The dropout generator: a seed and a counter that each training forward advances. Saving and
 * restoring both resumes the same masks. */
CLCNN_API clcnn_status clcnn_net_set_seed(clcnn_net *net, uint64_t seed, uint64_t counter);
CLCNN_API clcnn_status clcnn_net_get_seed(const clcnn_net *net, uint64_t *seed, uint64_t *counter);

CLCNN_API int clcnn_net_num_layers(const clcnn_net *net);
CLCNN_API clcnn_layer_type clcnn_net_layer_type(const clcnn_net *net, int layer);
/* 1 when layer i runs no commands of its own because the conv2d before it does its work, else
 * 0; -1 for a bad argument. A relu right after a conv2d is applied as the conv writes its output
 * and its mask as the conv reads its gradient; a max pooling with a 2x2 window, stride 2 and no
 * padding right after such a relu is computed by the conv too, from its GEMM's output (the
 * relu's full-size output is then never stored). Results are those of the separate layers. */
CLCNN_API int clcnn_net_layer_fused(const clcnn_net *net, int i);
/* Output shape of layer (layer = -1: the net's input) for a batch of one: dims[0] = 1. */
CLCNN_API clcnn_status clcnn_net_layer_shape(const clcnn_net *net, int layer, int dims[4]);
/* Elements per sample of the net's output (the last layer's), e.g. the class count. */
CLCNN_API size_t clcnn_net_output_size(const clcnn_net *net);
CLCNN_API size_t clcnn_net_input_size(const clcnn_net *net);

/* Parameters, numbered in layer order: weight then bias of each layer that has them.
 * name is PyTorch's state_dict key: the node's name, then the tensor's ("0.weight" in a net
 * built layer by layer, as torch.nn.Sequential names it; "b1c1.weight" for a node named b1c1). */
typedef enum { CLCNN_DTYPE_REAL = 0, CLCNN_DTYPE_INT64 = 1 } clcnn_dtype;
typedef struct {
  char name[96]; /* a node's name (at most 63 characters), '.', PyTorch's name of the tensor */
  int layer;
  int ndim;
  int dims[4];
  size_t count;      /* elements */
  clcnn_dtype dtype; /* REAL (the context's precision), or INT64 for num_batches_tracked */
} clcnn_param_info;

CLCNN_API int clcnn_net_num_params(const clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_param_info(const clcnn_net *net, int i, clcnn_param_info *info);
/* host holds info.count elements of the context's precision. Blocking. */
CLCNN_API clcnn_status clcnn_net_param_write(clcnn_net *net, int i, const void *host);
CLCNN_API clcnn_status clcnn_net_param_read(clcnn_net *net, int i, void *host);
CLCNN_API clcnn_status clcnn_net_grad_read(clcnn_net *net, int i, void *host);
/* Buffers: the state that is not trained but saved (PyTorch's register_buffer): for each
 * batchnorm layer running_mean, running_var (REAL, C) and num_batches_tracked (INT64, a 0-d
 * tensor: ndim 0, count 1), named "4.running_mean" etc. Blocking reads and writes of host
 * arrays of info.count elements of info.dtype. */
CLCNN_API int clcnn_net_num_buffers(const clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_buffer_info(const clcnn_net *net, int i, clcnn_param_info *info);
CLCNN_API clcnn_status clcnn_net_buffer_read(clcnn_net *net, int i, void *host);
CLCNN_API clcnn_status clcnn_net_buffer_write(clcnn_net *net, int i, const void *host);

typedef enum {
  CLCNN_INIT_DEFAULT = 0, /* torch.nn's: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias */
  CLCNN_INIT_HE = 1,      /* kaiming_normal_(fan_in, relu): N(0, 2/fan_in); bias 0 */
  CLCNN_INIT_XAVIER = 2,  /* xavier_uniform_: U(+-sqrt(6/(fan_in+fan_out))); bias 0 */
  CLCNN_INIT_DCGAN = 3    /* the DCGAN paper's: N(0, 0.02^2) (normal_(0, 0.02)); bias 0 */
} clcnn_init;
/* Initialise every parameter with RULE from a generator seeded with seed; batchnorm gets
 * weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0. */
CLCNN_API clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init rule, uint64_t seed);
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
/* Two nets on one context, one feeding the other (a GAN's generator and discriminator), with no
 * host copy between them. clcnn_net_forward_net() enqueues NET's forward on the last forward's
 * output of SRC (same shape as NET's input; the batch is SRC's). clcnn_net_backward_net()
 * enqueues NET's backward from NEXT's input gradient of NEXT's last backward (NEXT read NET's
 * output: NEXT's input has the shape of NET's output, the same batch, and its gradient on). */
CLCNN_API clcnn_status clcnn_net_forward_net(clcnn_net *net, clcnn_net *src);
CLCNN_API clcnn_status clcnn_net_backward_net(clcnn_net *net, clcnn_net *next);
/* Enqueue the forward pass of n samples of noise drawn on the device, each element N(0, 1) and a
 * function of (key, its index) only: the same key gives the same batch on any device and batch
 * split (element i of an n-sample batch is element i of a larger one). */
CLCNN_API clcnn_status clcnn_net_forward_noise(clcnn_net *net, int n, uint64_t key);
/* The mean loss of the last clcnn_net_backward(). Blocks until it is known. */
CLCNN_API clcnn_status clcnn_net_loss(clcnn_net *net, double *loss);
/* Running sums over every clcnn_net_backward() with labels since the net was made or since
 * clcnn_net_train_stats_reset(): of the samples' losses, of the samples whose first largest
 * output (torch.argmax's: a NaN counts as the largest) is their label, and of the samples, kept
 * on the device so that a training loop can show its loss and accuracy without a blocking read
 * per step. This read blocks; any pointer may be NULL. In float contexts the sums are floats (exact counts up to 2^24 samples). */
CLCNN_API clcnn_status clcnn_net_train_stats(clcnn_net *net, double *loss_sum, double *correct, double *seen);
/* Wait until the host memory given to the last clcnn_net_forward(), clcnn_net_backward() and
 * clcnn_net_backward_from() has been copied to the device, so that the caller may fill it
 * again. On an in-order queue that copy follows everything enqueued before it, so a training
 * loop with two input buffers calls this before enqueueing step b (it waits for step b-1's
 * copy, which ran after step b-2) and then refills step b-1's buffer: the device never waits
 * for the host. */
CLCNN_API clcnn_status clcnn_net_wait_inputs(clcnn_net *net);
/* Enqueue zeroing those sums. Non-blocking. */
CLCNN_API clcnn_status clcnn_net_train_stats_reset(clcnn_net *net);
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
/* The commands behind clcnn_net_profile(layer, dir): up to max of them, in enqueue order, with
 * the kernel's (or CLBlast routine's) name and the device's start and end times in ns. Returns
 * how many there are (which may exceed max), or -1 when profiling is off or an argument is
 * wrong. Blocks until they are done. */
typedef struct {
  const char *name; /* static string */
  uint64_t start_ns, end_ns;
} clcnn_profile_cmd;
CLCNN_API int clcnn_net_profile_cmds(clcnn_net *net, int layer, int dir, clcnn_profile_cmd *out,
                                     int max);
/* Scheduling counters since the last clcnn_net_forward(), for tests and tools: commands
 * enqueued, and host waits (blocking calls: reads, finishes) the library made. A forward
 * plus backward makes none; clcnn_net_loss() makes one. */
CLCNN_API clcnn_status clcnn_net_step_stats(const clcnn_net *net, int *commands,
                                            int *host_waits);
/* "conv2d(6, kernel 5x5, stride 1x1, pad 2x2)" etc. into buf; returns buf. */
CLCNN_API const char *clcnn_net_layer_describe(const clcnn_net *net, int layer, char *buf,
                                               size_t size);

/* ---- networks as graphs ------------------------------------------------------------------
 * A net is a graph of tensors: its input, and the output of each node. Each builder below adds
 * a node reading the tensors it is given and returns the node's output, so any graph can be
 * wired: y = clcnn_conv2d(net, x, &p, "c1"); s = clcnn_add(net, y, x, NULL). The clcnn_net_add_*
 * functions above are builders that read the last layer's output (clcnn_net_output).
 *
 * name: the node's name, as a model file's "NAME =": a letter or '_', then letters, digits or
 * '_', at most 63 characters, unique in the net, and not a name torch.nn.Module keeps for itself
 * (train, eval, forward, to, ...), so that checkpoints load into PyTorch strictly. NULL: the
 * node's index among the layers ("0", "1", ... as torch.nn.Sequential), or "loss0", "loss1"...
 * among the losses. Parameters are named after their node: "c1.weight".
 *
 * On failure a builder returns NULL, says why in clcnn_ctx_last_error() and
 * clcnn_net_build_status() gives the status; the net is as before. A NULL input makes a builder
 * return NULL and leaves the first failure's reason in place, so a chain of builders may be
 * checked once, at its end.
 *
 * The graph is finished by clcnn_net_finalize() or by the first forward: then the fusion pass
 * runs (a conv's relu and 2x2 max pooling are done by the conv where the tensors between them
 * have no other reader and are not outputs), every buffer is made, and no node can be added.
 * Backward runs the nodes in reverse; a tensor read by several nodes gets the sum of their
 * gradients. */
typedef struct clcnn_tensor clcnn_tensor;
CLCNN_API clcnn_tensor *clcnn_net_input(clcnn_net *net);
/* The last layer's output (the net's output); the input when there are no layers yet. */
CLCNN_API clcnn_tensor *clcnn_net_output(clcnn_net *net);
/* The tensor of that name ("input" or a node's name), NULL when there is none. */
CLCNN_API clcnn_tensor *clcnn_net_tensor(clcnn_net *net, const char *name);
CLCNN_API const char *clcnn_tensor_name(const clcnn_tensor *t);
/* (1, C, H, W): the shape of one sample. */
CLCNN_API clcnn_status clcnn_tensor_shape(const clcnn_tensor *t, int dims[4]);
/* The status of the last builder called on the net (0: it made its node). */
CLCNN_API clcnn_status clcnn_net_build_status(const clcnn_net *net);
/* A layer's name (static while the net lives). */
CLCNN_API const char *clcnn_net_layer_name(const clcnn_net *net, int layer);
/* The tensors layer reads: up to max of them into in; returns how many there are (-1 for a bad
 * argument). */
CLCNN_API int clcnn_net_layer_inputs(const clcnn_net *net, int layer, clcnn_tensor **in, int max);
/* Finish the graph (see above); a net without a loss gets the default one: cross-entropy over
 * the whole output of each sample against class labels (clcnn_net_backward). */
CLCNN_API clcnn_status clcnn_net_finalize(clcnn_net *net);

CLCNN_API clcnn_tensor *clcnn_conv2d(clcnn_net *net, clcnn_tensor *x, const clcnn_conv2d_params *p, const char *name);
CLCNN_API clcnn_tensor *clcnn_linear(clcnn_net *net, clcnn_tensor *x, int out_features, int bias, const char *name);
CLCNN_API clcnn_tensor *clcnn_relu(clcnn_net *net, clcnn_tensor *x, const char *name);
CLCNN_API clcnn_tensor *clcnn_leaky_relu(clcnn_net *net, clcnn_tensor *x, double negative_slope, const char *name);
CLCNN_API clcnn_tensor *clcnn_sigmoid(clcnn_net *net, clcnn_tensor *x, const char *name);
CLCNN_API clcnn_tensor *clcnn_tanh(clcnn_net *net, clcnn_tensor *x, const char *name);
CLCNN_API clcnn_tensor *clcnn_maxpool2d(clcnn_net *net, clcnn_tensor *x, const clcnn_pool2d_params *p, const char *name);
CLCNN_API clcnn_tensor *clcnn_avgpool2d(clcnn_net *net, clcnn_tensor *x, const clcnn_pool2d_params *p, const char *name);
CLCNN_API clcnn_tensor *clcnn_global_avgpool(clcnn_net *net, clcnn_tensor *x, const char *name);
CLCNN_API clcnn_tensor *clcnn_flatten(clcnn_net *net, clcnn_tensor *x, const char *name);
CLCNN_API clcnn_tensor *clcnn_batchnorm(clcnn_net *net, clcnn_tensor *x, double eps, double momentum, const char *name);
CLCNN_API clcnn_tensor *clcnn_dropout(clcnn_net *net, clcnn_tensor *x, double p, const char *name);
/* Each sample seen as (c, h, w): the same elements, as Tensor.view(N, c, h, w). */
CLCNN_API clcnn_tensor *clcnn_reshape(clcnn_net *net, clcnn_tensor *x, int c, int h, int w, const char *name);

/* torch.nn.ConvTranspose2d(in, out_channels, (kh,kw), stride, padding, output_padding, groups,
 * bias, dilation): the adjoint of a conv2d. Zero stride/dilation/groups mean 1; output padding
 * must be smaller than the stride or the dilation (as PyTorch requires). Output size
 * (in - 1) * stride - 2 * pad + dilation * (k - 1) + outpad + 1. Weight (in, out/groups, kh, kw). */
typedef struct {
  int out_channels;
  int kh, kw;
  int stride_h, stride_w;
  int pad_h, pad_w;
  int outpad_h, outpad_w;
  int dilation_h, dilation_w;
  int groups;
  int bias; /* non-zero: with bias */
} clcnn_conv_transpose2d_params;
CLCNN_API clcnn_tensor *clcnn_conv_transpose2d(clcnn_net *net, clcnn_tensor *x, const clcnn_conv_transpose2d_params *p,
                                               const char *name);
/* a + b, of the same shape. */
CLCNN_API clcnn_tensor *clcnn_add(clcnn_net *net, clcnn_tensor *a, clcnn_tensor *b, const char *name);
/* torch.cat(in, dim=1): n >= 2 tensors of the same H and W, their channels one after another. */
CLCNN_API clcnn_tensor *clcnn_concat(clcnn_net *net, clcnn_tensor *const *in, int n, const char *name);
/* torch.nn.Upsample(scale_factor=scale, mode, align_corners=False): H and W times scale >= 1. */
typedef enum { CLCNN_UPSAMPLE_NEAREST = 0, CLCNN_UPSAMPLE_BILINEAR = 1 } clcnn_upsample_mode;
CLCNN_API clcnn_tensor *clcnn_upsample(clcnn_net *net, clcnn_tensor *x, int scale, clcnn_upsample_mode mode,
                                       const char *name);

/* Losses: nodes whose output is one number, the mean over the batch as PyTorch's losses with
 * reduction='mean'. A net's total loss is the sum of its losses times their weights (>= 0). */
/* torch.nn.CrossEntropyLoss(ignore_index): logits (N, K, 1, 1) with one class label per sample,
 * or (N, C, H, W) with one per position (labels N x H x W); labels equal to ignore_index count
 * for nothing (a batch with none left has a NaN loss, as PyTorch's). Targets: int32. */
CLCNN_API clcnn_tensor *clcnn_xent_loss(clcnn_net *net, clcnn_tensor *logits, int ignore_index, double weight,
                                        const char *name);
/* torch.nn.BCEWithLogitsLoss: x any shape, targets one real per element (probabilities). */
CLCNN_API clcnn_tensor *clcnn_bce_loss(clcnn_net *net, clcnn_tensor *x, double weight, const char *name);
/* torch.nn.MSELoss: targets one real per element. */
CLCNN_API clcnn_tensor *clcnn_mse_loss(clcnn_net *net, clcnn_tensor *x, double weight, const char *name);
/* torch.nn.SmoothL1Loss(beta): beta >= 0 (0: L1); targets one real per element. */
CLCNN_API clcnn_tensor *clcnn_smoothl1_loss(clcnn_net *net, clcnn_tensor *x, double beta, double weight,
                                            const char *name);
/* The grid detection loss of YOLO v1: X is N x (5 + K) x GH x GW, each cell's objectness logit,
 * box (x, y offsets in the cell, w, h the square roots of the size relative to the image) and K
 * class scores; the targets N x 6 x GH x GW (clcnn_yolo_targets). Per sample, summed over the
 * cells: with an object, BCE-with-logits(o, 1) + coord * ((x - tx)^2 + (y - ty)^2 +
 * (w - sqrt(tw))^2 + (h - sqrt(th))^2) + softmax cross-entropy of the class; without,
 * noobj * BCE-with-logits(o, 0); the loss is the mean over the samples. YOLO v1's weights:
 * coord 5, noobj 0.5. */
CLCNN_API clcnn_tensor *clcnn_yolo_loss(clcnn_net *net, clcnn_tensor *x, double coord, double noobj, double weight,
                                        const char *name);
/* A labelled box, as a YOLO label line gives it: class, centre and size relative to the image. */
typedef struct {
  int cls;
  double cx, cy, w, h;
} clcnn_box;
/* One sample's yolo targets (6 x GH x GW floats: has an object, tx, ty, tw, th, class) from its
 * n boxes: a box goes to the cell holding its centre (one on the right or bottom edge to the
 * last cell), tx, ty its centre's offsets in that cell; when two fall in one cell the larger
 * (w*h) is kept, the first of two equal ones. Boxes need cx, cy in [0, 1], w, h in (0, 1] and a
 * class in 0..classes-1 (else CLCNN_ERR_INVALID_ARGUMENT or CLCNN_ERR_LABEL, targets untouched). */
CLCNN_API clcnn_status clcnn_yolo_targets(const clcnn_box *boxes, int n, int classes, int gh, int gw,
                                          float *targets);
/* A detection: a box with its class, its score and the index of its image. */
typedef struct {
  clcnn_box box;
  double score;
  int image;
} clcnn_detection;
/* Intersection over union of two boxes (centre and size; continuous coordinates, no +1 pixel):
 * 0 for boxes that only touch, NaN for a NULL. */
CLCNN_API double clcnn_box_iou(const clcnn_box *a, const clcnn_box *b);
/* The detections of n samples of a yolo loss's input (out: n x (5 + classes) x gh x gw, floats
 * for esz 4, doubles for 8): one per cell, its class the first largest score, its score
 * sigmoid(objectness) times that class's softmax probability, its box centred at
 * ((col + x) / gw, (row + y) / gh), w^2 by h^2 (clamped to [0, 1]); only those scoring at least
 * min_score, images numbered from image0. At most max are written (n * gh * gw always suffice);
 * *count says how many. */
CLCNN_API clcnn_status clcnn_yolo_decode(const void *out, size_t esz, int n, int classes, int gh, int gw,
                                         double min_score, int image0, clcnn_detection *dets, int max, int *count);
/* Non-maximum suppression, in place: by score, highest first (ties in their order), a detection
 * is dropped when a kept one of its image and class overlaps it by IoU > iou_threshold. Returns
 * how many are kept (now dets[0..]), -1 when out of memory. */
CLCNN_API int clcnn_nms(clcnn_detection *dets, int n, double iou_threshold);
/* Pascal VOC's average precision of each class (ap[classes], NaN for a class without an object)
 * and their mean over the classes with objects (*map): detections ranked by score (ties in their
 * order); one is a true positive when the object of its class and image it overlaps most has
 * IoU > iou_threshold (0.5: VOC's) and no higher-ranked detection took it; AP is the area under
 * the precision-recall curve with each precision raised to the highest at any larger recall
 * (VOC 2010's all-point interpolation). truth[i] lies in image truth_image[i]. ap or map may be
 * NULL. */
CLCNN_API clcnn_status clcnn_voc_ap(const clcnn_detection *dets, int ndets, const clcnn_box *truth,
                                    const int *truth_image, int ntruth, int classes, double iou_threshold, double *ap,
                                    double *map);
/* A YOLO label file's text (LEN bytes; NAME names it in err): one object a line, "class cx cy w
 * h" separated by spaces or tabs, the class an integer (below classes when classes > 0), cx, cy
 * in [0, 1], w, h in (0, 1], the box's edges inside the image within 0.001; blank lines and CRLF
 * endings are fine. *out (malloc'd, the caller frees; NULL when there are none) gets the *count
 * boxes in file order; anything else is refused with err naming NAME:LINE and why. */
CLCNN_API clcnn_status clcnn_yolo_labels_parse(const char *text, size_t len, const char *name, int classes,
                                               clcnn_box **out, int *count, char *err, size_t err_size);
/* The net's losses, in the order they were added (a net without any gets its default one when
 * it is finished). */
typedef struct {
  clcnn_tensor *loss;   /* the loss node's output: pass it to clcnn_net_set_target */
  clcnn_tensor *input;  /* what it reads */
  clcnn_layer_type type; /* CLCNN_LAYER_XENT_LOSS ... */
  double weight;
  int classes;           /* cross-entropy: the classes (labels are in [0, classes) or the ignore
                            index); 0 for the losses over reals */
  int targets;           /* targets per sample: labels (1, or H*W per position), or reals */
} clcnn_loss_info;
CLCNN_API int clcnn_net_num_losses(const clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_loss_info(const clcnn_net *net, int i, clcnn_loss_info *info);
/* Give loss node LOSS its targets for the last forward's n samples (int32 class labels for
 * cross-entropy; reals of the context's precision, one per element of its input, for the
 * others), checked on the host and copied on the event chain: keep them unchanged until
 * clcnn_net_wait_inputs() (a label changed after the check gives a NaN loss). */
CLCNN_API clcnn_status clcnn_net_set_target(clcnn_net *net, clcnn_tensor *loss, const void *targets);
/* Enqueue every loss (each must have its targets for this batch) and the backward pass from
 * their weighted sum. clcnn_net_loss() then gives that sum, clcnn_net_loss_value() each loss. */
CLCNN_API clcnn_status clcnn_net_backward_losses(clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_loss_value(clcnn_net *net, clcnn_tensor *loss, double *value);
/* Memory: a tensor's buffer is shared with tensors that do not live at the same time (a value
 * that backward does not need is free once its readers ran; a gradient once its producer's
 * backward ran). The net's output stays readable; keep any other tensor whose values you want to
 * read after a forward with this call, before the graph is finished. */
CLCNN_API clcnn_status clcnn_net_keep_tensor(clcnn_net *net, clcnn_tensor *t);
/* The last forward's values of tensor t (n * its size, blocking): the input, the output or a
 * kept tensor; a tensor a fused node writes past (a conv's output when the conv also does the
 * relu and pooling after it) is refused. */
CLCNN_API clcnn_status clcnn_net_read_tensor(clcnn_net *net, clcnn_tensor *t, void *out);

/* ---- optimizers: torch.optim's update rules, run on the device ------------------------- */
typedef struct clcnn_optim clcnn_optim;

typedef enum {
  CLCNN_OPTIM_SGD = 0,     /* torch.optim.SGD (momentum, dampening, nesterov, weight_decay) */
  CLCNN_OPTIM_ADAM = 1,    /* torch.optim.Adam (weight_decay as L2 added to the gradient) */
  CLCNN_OPTIM_ADAMW = 2,   /* torch.optim.AdamW (decoupled weight decay) */
  CLCNN_OPTIM_RMSPROP = 3  /* torch.optim.RMSprop (alpha, eps, momentum, not centered) */
} clcnn_optim_kind;

typedef struct {
  clcnn_optim_kind kind;
  double lr;
  double momentum;     /* SGD, RMSprop */
  double dampening;    /* SGD */
  int nesterov;        /* SGD: needs momentum > 0 and dampening 0 */
  double weight_decay;
  double beta1, beta2; /* Adam, AdamW */
  double eps;          /* Adam, AdamW, RMSprop */
  double alpha;        /* RMSprop */
} clcnn_optim_params;

/* torch.optim's defaults for KIND (SGD, whose lr PyTorch requires, gets 0.01). */
CLCNN_API void clcnn_optim_defaults(clcnn_optim_kind kind, clcnn_optim_params *p);
/* An optimizer over every parameter of net; net must outlive it. Values torch.optim refuses
 * (negative lr, betas outside [0,1), nesterov without momentum...) are refused here too. */
CLCNN_API clcnn_status clcnn_optim_create(clcnn_net *net, const clcnn_optim_params *p,
                                          clcnn_optim **out);
CLCNN_API void clcnn_optim_destroy(clcnn_optim *opt);
/* Enqueue one update of every parameter from its gradient (optimizer.step()). Non-blocking. */
CLCNN_API clcnn_status clcnn_optim_step(clcnn_optim *opt);
CLCNN_API clcnn_status clcnn_optim_set_lr(clcnn_optim *opt, double lr);
CLCNN_API double clcnn_optim_lr(const clcnn_optim *opt);
/* Steps taken (PyTorch's state['step']); set when resuming. */
CLCNN_API int64_t clcnn_optim_steps(const clcnn_optim *opt);
CLCNN_API clcnn_status clcnn_optim_set_steps(clcnn_optim *opt, int64_t steps);
/* Per-parameter state tensors, PyTorch's names: SGD with momentum "momentum_buffer"; Adam and
 * AdamW "exp_avg", "exp_avg_sq"; RMSprop "square_avg" and, with momentum, "momentum_buffer".
 * Each has the shape of its parameter. Blocking reads and writes. */
CLCNN_API int clcnn_optim_num_slots(const clcnn_optim *opt);
CLCNN_API const char *clcnn_optim_slot_name(const clcnn_optim *opt, int slot); /* static */
CLCNN_API clcnn_status clcnn_optim_state_read(clcnn_optim *opt, int param, int slot, void *host);
CLCNN_API clcnn_status clcnn_optim_state_write(clcnn_optim *opt, int param, int slot,
                                               const void *host);

/* ---- data parallel: one replica of a net per device ---------------------------------------
 * A group of n nets of one graph (the same parameters in the same shapes and precision), each on
 * its own context, trains as one net on a global batch split among them. Each step: replica i
 * takes its share (clcnn_replicas_split), calls clcnn_net_set_batch_offset(net_i, first) so that
 * dropout draws the masks one net would draw for those samples, and runs its forward and backward;
 * clcnn_replicas_reduce() then makes every replica's parameter gradients the gradient of the mean
 * loss over the global batch, sum_i (n_i / N) g_i, and each replica's optimizer takes the same
 * step. Each replica's gradients are read to the host layer by layer, every read waiting on that
 * layer's backward events only, so the reduction of the last layers overlaps the backward of the
 * first; the sum runs on the host in double, in replica order: the same inputs give the same bits.
 * Batch norm keeps per-replica batch statistics and running statistics (PyTorch's
 * DistributedDataParallel without SyncBatchNorm); checkpoints take replica 0's. */
typedef struct clcnn_replicas clcnn_replicas;
/* nets[0..n), 1 <= n <= 4096, distinct and in no other group, borrowed (destroy the group before
 * them; a net destroyed first leaves the group unusable). The nets' values are not touched: make
 * them equal with clcnn_replicas_broadcast() or by initialising each alike. On failure err says why. */
CLCNN_API clcnn_status clcnn_replicas_create(clcnn_net *const *nets, int n, clcnn_replicas **out, char *err,
                                             size_t err_size);
CLCNN_API void clcnn_replicas_destroy(clcnn_replicas *g);
CLCNN_API int clcnn_replicas_count(const clcnn_replicas *g);
/* The reason for the group's last failure ("" if none). Owned by the group. */
CLCNN_API const char *clcnn_replicas_last_error(const clcnn_replicas *g);
/* Replica i's share (i counted in this group) of a global batch of BATCH samples: samples
 * *first .. *first + *count - 1, in the order of all replicas (clcnn_replicas_set_world), as even as can be (the first BATCH % n replicas take one more); *count is 0 for a
 * replica left without a sample (BATCH < n), which then sits the step out until the reduce. */
CLCNN_API clcnn_status clcnn_replicas_split(const clcnn_replicas *g, int batch, int i, int *first, int *count);
/* Replicas in several processes (MPI ranks, one group each): this group's replicas are replicas
 * first .. first + n - 1 of WORLD in all, which clcnn_replicas_split then shares batches among,
 * and clcnn_replicas_reduce sums through FN: fn(buf, count, user) must replace buf[0..count) by
 * the sum over the processes of their buf, adding them in an order fixed by the processes alone
 * (rank order: an MPI_Allgather and a loop, not MPI_Allreduce, whose order MPI leaves open), so
 * that every process gets the same bits. reduce calls it in the same order in every process: once
 * with the sample count (count 1), then once a parameter, last parameter first, each as soon as
 * this process's replicas have that gradient. FN returns 0, or a status that the reduce returns.
 * A process whose replicas have no share of a batch still calls reduce (with no backward). */
typedef int (*clcnn_allreduce_fn)(double *buf, size_t count, void *user);
CLCNN_API clcnn_status clcnn_replicas_set_world(clcnn_replicas *g, int world, int first, clcnn_allreduce_fn fn,
                                                void *user);
/* Copy replica 0's parameters and buffers (batch norm's running statistics) to the others. Blocking. */
CLCNN_API clcnn_status clcnn_replicas_broadcast(clcnn_replicas *g);
/* Combine the gradients of the backward passes since the last reduce (a replica without one
 * counts for nothing but receives the result, so that its optimizer steps alike): the result is
 * (sum_i n_i g_i) / N, the sum in double in replica order. Blocks until every gradient is on the
 * host, then enqueues the result's writes, which the optimizer steps enqueued next follow.
 * CLCNN_ERR_STATE when no replica ran a backward. */
CLCNN_API clcnn_status clcnn_replicas_reduce(clcnn_replicas *g);
/* Host seconds spent in clcnn_replicas_reduce() so far waiting for the replicas' gradients
 * (mostly the backward still running) and summing and enqueueing the writes, and the number of
 * reductions; any pointer may be NULL. */
CLCNN_API clcnn_status clcnn_replicas_times(const clcnn_replicas *g, double *wait_s, double *reduce_s,
                                            long *reductions);
/* The index in the global batch of the next forward's first sample (0 by default): dropout's mask
 * element for sample s is that of sample first + s, whichever replica runs it. */
CLCNN_API clcnn_status clcnn_net_set_batch_offset(clcnn_net *net, int64_t first);
/* The devices SPEC names, each as "P:D" (clinfo's platform:device indices) into ids[0..max):
 * SPEC is a comma-separated list whose items are P:D, gpu:all, cpu:all, accelerator:all, all
 * (every device), or one selector as clcnn_ctx_options.device takes it (the device it picks). A
 * device named twice, an item that matches nothing and more than max devices are refused with
 * the reason in err. */
CLCNN_API clcnn_status clcnn_device_list(const char *spec, char (*ids)[16], int max, int *count, char *err,
                                         size_t err_size);

/* ---- memory: will a net fit on the device ---------------------------------------------
 * Device memory a net needs to train with batches of `batch` samples, computed without
 * allocating them: what clcnn_ctx_memory() reports as the peak after a training step
 * (clcnn_net_forward, clcnn_net_backward, clcnn_optim_step) of a net built with max_batch =
 * batch, with the net's input-gradient setting, on a context that holds nothing else. Buffers
 * are made when the net is built and, for the scratch, by the first step; the scratch of a
 * context is shared by its nets and only grows. Drivers and CLBlast keep some memory of their
 * own that is not in these figures. */
typedef struct {
  size_t parameters;  /* weights, biases and batchnorm's running statistics */
  size_t gradients;   /* of the parameters */
  size_t optimizer;   /* the optimizer's state: none for SGD without momentum, one tensor per
                         parameter with momentum (or RMSprop), two for Adam and AdamW */
  size_t activations; /* the input, each layer's output and input gradient, labels, losses */
  size_t scratch;     /* im2col and its gradient, GEMM panels and split-K sums, pooling
                         indices, dropout masks, batchnorm statistics */
  size_t total;       /* the most in use at once: the sum of the above, or more while the net
                         is built (its output gradient follows each new layer's output) */
  size_t largest;     /* the largest single buffer (compare with CL_DEVICE_MAX_MEM_ALLOC_SIZE) */
} clcnn_memory_estimate;
/* optim: the optimizer the step uses (its kind and momentum count), NULL for none. A batch the
 * net could not be built with (a buffer past the kernels' int indices) gives CLCNN_ERR_SHAPE;
 * when the GEMM choice is "measure" and a product is not measured yet, the figure bounds both
 * GEMMs and the measurement's operands. */
CLCNN_API clcnn_status clcnn_net_memory_estimate(clcnn_net *net, int batch,
                                                 const clcnn_optim_params *optim,
                                                 clcnn_memory_estimate *out);
/* The largest batch from 1 to max_batch whose estimate fits: total at most global_bytes and
 * largest at most max_alloc_bytes (clcnn_ctx_device_memory's figures, or less); *batch = 0 when
 * not even 1 does. A batch the net could not be built with does not fit. Allocates nothing. */
CLCNN_API clcnn_status clcnn_net_largest_batch(clcnn_net *net, const clcnn_optim_params *optim,
                                               uint64_t global_bytes, uint64_t max_alloc_bytes,
                                               int max_batch, int *batch);

/* ---- learning-rate schedules: torch.optim.lr_scheduler's, stepped once an epoch ---------- */
typedef enum {
  CLCNN_LR_CONSTANT = 0, /* base_lr in every epoch */
  CLCNN_LR_STEP = 1,     /* StepLR: base_lr * gamma^floor(epoch / step_size) */
  CLCNN_LR_COSINE = 2    /* CosineAnnealingLR: eta_min + (base_lr - eta_min) (1 + cos(pi epoch /
                            t_max)) / 2; past t_max it rises again, as PyTorch's does */
} clcnn_lr_kind;

typedef struct {
  clcnn_lr_kind kind;
  int64_t step_size; /* StepLR: >= 1 */
  double gamma;      /* StepLR: finite, >= 0 (PyTorch's default 0.1) */
  int64_t t_max;     /* CosineAnnealingLR: >= 1 */
  double eta_min;    /* CosineAnnealingLR: finite (PyTorch's default 0) */
} clcnn_lr_schedule_params;

/* *lr gets the learning rate of epoch EPOCH (0: the first), the value PyTorch's scheduler holds
 * after EPOCH calls of scheduler.step() from base_lr. Refuses (CLCNN_ERR_INVALID_ARGUMENT, *lr
 * untouched) a negative epoch, a base_lr that is negative or not finite, and the values the
 * comments above exclude. */
CLCNN_API clcnn_status clcnn_lr_schedule(const clcnn_lr_schedule_params *s, double base_lr,
                                         int64_t epoch, double *lr);

/* ---- model files ----------------------------------------------------------------------
 * One node per line, '#' starts a comment, the first line is "input C H W" (the tensor named
 * "input"); then lines "[NAME =] OP[(IN, ...)] [numbers] [key=value ...]", where OP is one of
 *   conv OUT kernel=K [stride=S] [pad=P] [dilation=D] [groups=G] [bias=0|1]
 *   convtranspose OUT kernel=K [stride=S] [pad=P] [outpad=Q] [dilation=D] [groups=G] [bias=0|1]
 *   linear OUT [bias=0|1]      relu      leakyrelu [slope=A]      sigmoid      tanh
 *   maxpool K [stride=S] [pad=P]      avgpool K [stride=S] [pad=P]      globalavgpool
 *   flatten      batchnorm [eps=E] [momentum=M]      dropout [p=P]      reshape C H W
 *   upsample S [mode=nearest|bilinear]      add(A, B)      concat(A, B, ...)
 * where every kernel, stride, pad, outpad and dilation is N or HxW (e.g. kernel=3x2). Without
 * parentheses a line reads the line before it; a line without a name is named by its index
 * among the layer lines; the net's output is the last layer line. Loss lines come last:
 *   xent(X) [ignore=I] [weight=W]   bce(X) [weight=W]   mse(X) [weight=W]   smoothl1(X) [beta=B] [weight=W]
 * On error err reads "FILE:LINE:COL: what was expected" or names the layer and the shapes. */
CLCNN_API clcnn_status clcnn_net_from_text(clcnn_ctx *ctx, const char *text, const char *filename,
                                           int max_batch, clcnn_net **out, char *err,
                                           size_t err_size);
CLCNN_API clcnn_status clcnn_net_from_file(clcnn_ctx *ctx, const char *path, int max_batch,
                                           clcnn_net **out, char *err, size_t err_size);
/* The warnings of the model file the net was read from ("FILE:LINE:COL: warning: ..." lines,
 * e.g. a line whose output nothing reads); "" when none. */
CLCNN_API const char *clcnn_net_warnings(const clcnn_net *net);

/* ---- data sets -------------------------------------------------------------------------- */
typedef struct {
  int n;           /* samples */
  int c, h, w;     /* shape of one sample */
  int classes;     /* labels are in [0, classes) */
  float *x;        /* n*c*h*w, NCHW, pixels scaled to [0,1]; owned */
  int32_t *y;      /* n labels (classification sets); owned; NULL for a segmentation set */
  unsigned char *mask; /* n*h*w per-pixel classes, 255 ignore (segmentation sets); owned; else NULL */
  /* a detection set (DIR/SPLIT/labels): image i's labelled boxes are boxes[box_start[i]] up to
   * boxes[box_start[i + 1]] (box_start has n + 1 entries), their classes 0..box_classes-1; owned;
   * else NULL and 0 */
  clcnn_box *boxes;
  int *box_start;
  int box_classes;
} clcnn_dataset;

/* The train (train != 0) or test split of the data set in DIR: IDX files as MNIST and
 * Fashion-MNIST ship them (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-..., each
 * optionally .gz), or CIFAR-10's binary batches (data_batch_1..5.bin, test_batch.bin, in DIR or
 * DIR/cifar-10-batches-bin). A missing, truncated or inconsistent file is refused with the
 * reason in err. */
CLCNN_API clcnn_status clcnn_dataset_load(const char *dir, int train, clcnn_dataset **out,
                                          char *err, size_t err_size);
/* A segmentation or detection set (also what clcnn_dataset_load reads when DIR/train/images or
 * DIR/test/images is a directory): DIR/SPLIT/images/NAME.png (grey, RGB, or palette images
 * taken as their colours; one shape for all), SPLIT train or test, in the order of the names,
 * with DIR/SPLIT/masks/NAME.png (grey or palette, the image's size, the value the class, 255
 * ignore), DIR/SPLIT/labels/NAME.txt (YOLO label files, clcnn_yolo_labels_parse; an image
 * without one has no object), or both. With DIR/classes.txt (one class name a line, background
 * not among them) a mask's values are 0..names (0 background) and classes = names + 1, a box's
 * class is below names and box_classes = names; without, the largest value or class + 1. A set
 * with labels only has classes = box_classes and no mask. Any bad file is refused with its name
 * in err. */
CLCNN_API clcnn_status clcnn_segset_load(const char *dir, int train, clcnn_dataset **out, char *err,
                                         size_t err_size);
CLCNN_API clcnn_status clcnn_dataset_load_idx(const char *images, const char *labels,
                                              clcnn_dataset **out, char *err, size_t err_size);
CLCNN_API void clcnn_dataset_destroy(clcnn_dataset *ds);
/* Per-channel mean and standard deviation (population) of the pixels; arrays of ds->c. */
CLCNN_API void clcnn_dataset_stats(const clcnn_dataset *ds, double *mean, double *std);
/* x = (x - mean[c]) / std[c]; a std <= 0 is refused. */
CLCNN_API clcnn_status clcnn_dataset_normalize(clcnn_dataset *ds, const double *mean,
                                               const double *std);
/* A seeded generator (splitmix64) and a Fisher-Yates shuffle of order[0..n) with it. */
CLCNN_API uint64_t clcnn_rng_next(uint64_t *state);
CLCNN_API void clcnn_shuffle(uint32_t *order, size_t n, uint64_t *state);

/* Random augmentation of one CxHxW sample, as torchvision's RandomCrop(size=(H, W),
 * padding=crop_pad, fill) followed, when hflip, by RandomHorizontalFlip(p=0.5): dst is a window
 * of src's own size taken at a uniform offset from src padded by crop_pad on every side with
 * fill[ch] (0 when fill is NULL), mirrored left to right with probability 1/2. The draw depends
 * only on key (a splitmix64 state): the same key gives the same result, so keys made from
 * (seed, epoch, sample index) make a resumed run draw what the uninterrupted one drew. src and
 * dst must not overlap; crop_pad is 0..CLCNN_AUGMENT_MAX_PAD, hflip 0 or 1. */
#define CLCNN_AUGMENT_MAX_PAD 64
typedef struct {
  int hflip;    /* 1: flip left to right with probability 1/2 */
  int crop_pad; /* 0: no crop */
} clcnn_augment;
CLCNN_API clcnn_status clcnn_augment_sample(const clcnn_augment *aug, const float *src, float *dst,
                                            int c, int h, int w, const float *fill, uint64_t key);
/* The same draw for a segmentation mask (h x w class indices): given the key its image got,
 * the mask moves with the image; pixels from outside the image get fill (255, "ignore", as
 * torchvision's segmentation references pad masks). */
CLCNN_API clcnn_status clcnn_augment_mask(const clcnn_augment *aug, const unsigned char *src, unsigned char *dst,
                                          int h, int w, unsigned char fill, uint64_t key);
/* SPEC is "none" or a comma-separated list of "hflip" and "crop=P", each at most once (as
 * clcnn-train's --augment takes it); on error err says what is wrong. */
CLCNN_API clcnn_status clcnn_augment_parse(const char *spec, clcnn_augment *out, char *err,
                                           size_t err_size);

/* ---- PNG images (libpng) ------------------------------------------------------------- */
/* An 8-bit image: grey (channels 1), RGB (channels 3, interleaved), or a palette image
 * (indexed 1, channels 1) whose pixels are indices into palette[0..npalette) - a segmentation
 * mask's index is its class. Rows are stored top to bottom, w * channels bytes each. */
#define CLCNN_IMAGE_MAX_SIDE 16384
typedef struct {
  int w, h, channels, indexed, npalette;
  unsigned char palette[256][3];
  unsigned char *px; /* owned: clcnn_image_free() */
} clcnn_image;
/* Read PATH: 8-bit grey, 8-bit RGB and palette images (any bit depth, interlaced or not);
 * 16-bit, alpha or grey below 8 bits, an index past the palette, a file cut short or a bad
 * CRC are refused with err naming the file and the reason; out is set only on success. */
CLCNN_API clcnn_status clcnn_png_read(const char *path, clcnn_image *out, char *err, size_t err_size);
/* The same, on SIZE bytes in memory; NAME names them in err. */
CLCNN_API clcnn_status clcnn_png_decode(const void *data, size_t size, const char *name, clcnn_image *out,
                                        char *err, size_t err_size);
/* Write IMG to PATH as an 8-bit PNG at a fixed compression (the same image gives the same
 * bytes): to a temporary file, flushed and renamed, so that PATH is the old file or the new. */
CLCNN_API clcnn_status clcnn_png_write(const char *path, const clcnn_image *img, char *err, size_t err_size);
/* The same PNG bytes in memory: *out (malloc'd, the caller frees) of *size bytes; PATH only
 * names the image in err (NULL: "(memory)"). */
CLCNN_API clcnn_status clcnn_png_encode(const clcnn_image *img, const char *path, unsigned char **out, size_t *size,
                                        char *err, size_t err_size);
CLCNN_API void clcnn_image_free(clcnn_image *img);
/* The colours an image has as a network's input: 1 grey, 3 RGB or palette (a palette image is
 * its colours); 0 for NULL. */
CLCNN_API int clcnn_image_colors(const clcnn_image *img);
/* IMG as clcnn_image_colors(img) planes of h x w floats (CHW), each value / 255 - what
 * clcnn_segset_load makes of an image. */
CLCNN_API clcnn_status clcnn_image_to_float(const clcnn_image *img, float *dst);
/* IMG as an RGB image SCALE times as large (each pixel a SCALE x SCALE square; grey copied to
 * the three channels, a palette index to its colour): *dst gets a new image (clcnn_image_free).
 * SCALE is 1..64 and the result at most CLCNN_IMAGE_MAX_SIDE a side. */
CLCNN_API clcnn_status clcnn_image_to_rgb(const clcnn_image *src, int scale, clcnn_image *dst);
/* Draw on an RGB image: the outline of the rectangle (x0, y0)-(x1, y1), corners included,
 * THICKNESS pixels wide inside it; and TEXT in a 5 x 7 dot capital font (lower case drawn as
 * capitals, characters without a glyph as a hollow box), each dot SCALE x SCALE pixels, each
 * character 6 dots wide, its top left at (x, y), on a filled background one dot around it when
 * bg is not NULL; *width (may be NULL) gets the text's width in pixels. Both clip at the image's
 * edges. */
CLCNN_API clcnn_status clcnn_image_draw_rect(clcnn_image *img, int x0, int y0, int x1, int y1, int thickness,
                                             const unsigned char rgb[3]);
CLCNN_API clcnn_status clcnn_image_draw_text(clcnn_image *img, int x, int y, const char *text, int scale,
                                             const unsigned char fg[3], const unsigned char *bg, int *width);
/* Pascal VOC's colour map, the palette of its masks: class 0 black, 1 dark red, 2 dark green,
 * ..., 255 (ignore) cream. */
CLCNN_API void clcnn_voc_palette(unsigned char pal[256][3]);

/* The Frechet distance between the Gaussians N(m1, c1) and N(m2, c2) in d dimensions (c1, c2
 * d x d covariances, symmetric positive semi-definite): |m1 - m2|^2 + tr(c1 + c2 - 2 (c1 c2)^(1/2)),
 * the figure FID reports for a network's features of two image sets. Host double, by Jacobi
 * eigen-decompositions; a non-finite input is refused. */
CLCNN_API clcnn_status clcnn_frechet_distance(const double *m1, const double *c1, const double *m2, const double *c2,
                                              int d, double *out);

/* ---- segmentation metrics ------------------------------------------------------------ */
/* Add to confusion (classes x classes int64, row the true class, column the predicted one) the
 * per-pixel predictions of n samples: logits n x classes x hw (NCHW; esz 4 float or 8 double),
 * the prediction the first class with the largest score (a NaN counts as largest, as
 * torch.argmax), truth n x hw class indices, pixels equal to ignore skipped. A truth value that
 * is neither ignore nor below classes gives CLCNN_ERR_LABEL and adds nothing. */
CLCNN_API clcnn_status clcnn_seg_confusion(const void *logits, size_t esz, const unsigned char *truth, int n,
                                           int classes, int hw, int ignore, int64_t *confusion);
/* From a confusion matrix: pixel accuracy (the diagonal over the total), each class's IoU
 * (TP / (TP + FP + FN); NaN for a class in neither truth nor prediction) into iou[classes], their
 * mean over the classes that have one (miou) and over those other than class 0, background
 * (miou_fg). Any output may be NULL; NaN where nothing was counted. */
CLCNN_API clcnn_status clcnn_seg_scores(const int64_t *confusion, int classes, double *pixel_acc, double *miou,
                                        double *miou_fg, double *iou);

/* ---- safetensors files ----------------------------------------------------------------- */
typedef enum { CLCNN_ST_F32 = 0, CLCNN_ST_F64 = 1, CLCNN_ST_I64 = 2 } clcnn_st_dtype;
typedef struct {
  char name[128];
  clcnn_st_dtype dtype;
  int ndim;          /* 0..8; 0 is a scalar */
  int64_t dims[8];
  const void *data;  /* little-endian elements; borrowed */
  size_t bytes;
} clcnn_st_tensor;
typedef struct clcnn_safetensors clcnn_safetensors;

/* Write tensors and nmeta pairs of string metadata (meta[2i] = key, meta[2i+1] = value) to
 * PATH: to a
 * temporary file in the same directory, flushed, then renamed into place, so that PATH is
 * either the old file or the whole new one. */
CLCNN_API clcnn_status clcnn_safetensors_write(const char *path, const clcnn_st_tensor *t, int n,
                                               const char *const *meta, int nmeta, char *err,
                                               size_t err_size);
/* Read and check a whole file (header, dtypes, shapes, offsets, sizes). */
CLCNN_API clcnn_status clcnn_safetensors_open(const char *path, clcnn_safetensors **out, char *err,
                                              size_t err_size);
CLCNN_API void clcnn_safetensors_close(clcnn_safetensors *f);
CLCNN_API int clcnn_safetensors_count(const clcnn_safetensors *f);
/* Tensor i (file order) or by name; NULL when absent. data points into f. */
CLCNN_API const clcnn_st_tensor *clcnn_safetensors_get(const clcnn_safetensors *f, int i);
CLCNN_API const clcnn_st_tensor *clcnn_safetensors_find(const clcnn_safetensors *f,
                                                        const char *name);
/* A metadata value, NULL when absent. Owned by f. */
CLCNN_API const char *clcnn_safetensors_meta(const clcnn_safetensors *f, const char *key);

#ifdef __cplusplus
}
#endif
#endif /* CLCNN_H */
