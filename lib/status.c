/* lib/status.c - statuses as words: clcnn's own, OpenCL's and CLBlast's. */
#include <stdio.h>

#include "internal.h"

/* OpenCL's error codes (CL/cl.h) and CLBlast's own (clblast_c.h). */
#define CL_STATUS_MAP(X)                                                              \
  X(CL_DEVICE_NOT_FOUND, -1, "no device of that type")                                \
  X(CL_DEVICE_NOT_AVAILABLE, -2, "device not available")                              \
  X(CL_COMPILER_NOT_AVAILABLE, -3, "no compiler available")                           \
  X(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4, "device memory allocation failed")          \
  X(CL_OUT_OF_RESOURCES, -5, "out of device resources")                               \
  X(CL_OUT_OF_HOST_MEMORY, -6, "the OpenCL implementation ran out of host memory")    \
  X(CL_PROFILING_INFO_NOT_AVAILABLE, -7, "profiling information not available")       \
  X(CL_MEM_COPY_OVERLAP, -8, "overlapping copy")                                      \
  X(CL_IMAGE_FORMAT_MISMATCH, -9, "image format mismatch")                            \
  X(CL_IMAGE_FORMAT_NOT_SUPPORTED, -10, "image format not supported")                 \
  X(CL_BUILD_PROGRAM_FAILURE, -11, "program build failed")                            \
  X(CL_MAP_FAILURE, -12, "map failed")                                                \
  X(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13, "misaligned sub-buffer offset")             \
  X(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, -14, "an awaited event failed")     \
  X(CL_COMPILE_PROGRAM_FAILURE, -15, "program compilation failed")                    \
  X(CL_LINKER_NOT_AVAILABLE, -16, "no linker available")                              \
  X(CL_LINK_PROGRAM_FAILURE, -17, "program link failed")                              \
  X(CL_DEVICE_PARTITION_FAILED, -18, "device partition failed")                       \
  X(CL_KERNEL_ARG_INFO_NOT_AVAILABLE, -19, "kernel argument info not available")      \
  X(CL_INVALID_VALUE, -30, "invalid value")                                           \
  X(CL_INVALID_DEVICE_TYPE, -31, "invalid device type")                               \
  X(CL_INVALID_PLATFORM, -32, "invalid platform")                                     \
  X(CL_INVALID_DEVICE, -33, "invalid device")                                         \
  X(CL_INVALID_CONTEXT, -34, "invalid context")                                       \
  X(CL_INVALID_QUEUE_PROPERTIES, -35, "invalid queue properties")                     \
  X(CL_INVALID_COMMAND_QUEUE, -36, "invalid command queue")                           \
  X(CL_INVALID_HOST_PTR, -37, "invalid host pointer")                                 \
  X(CL_INVALID_MEM_OBJECT, -38, "invalid memory object")                              \
  X(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, -39, "invalid image format descriptor")       \
  X(CL_INVALID_IMAGE_SIZE, -40, "invalid image size")                                 \
  X(CL_INVALID_SAMPLER, -41, "invalid sampler")                                       \
  X(CL_INVALID_BINARY, -42, "invalid binary")                                         \
  X(CL_INVALID_BUILD_OPTIONS, -43, "invalid build options")                           \
  X(CL_INVALID_PROGRAM, -44, "invalid program")                                       \
  X(CL_INVALID_PROGRAM_EXECUTABLE, -45, "program not built for the device")           \
  X(CL_INVALID_KERNEL_NAME, -46, "no kernel of that name")                            \
  X(CL_INVALID_KERNEL_DEFINITION, -47, "invalid kernel definition")                   \
  X(CL_INVALID_KERNEL, -48, "invalid kernel")                                         \
  X(CL_INVALID_ARG_INDEX, -49, "invalid argument index")                              \
  X(CL_INVALID_ARG_VALUE, -50, "invalid argument value")                              \
  X(CL_INVALID_ARG_SIZE, -51, "invalid argument size")                                \
  X(CL_INVALID_KERNEL_ARGS, -52, "kernel arguments not all set")                      \
  X(CL_INVALID_WORK_DIMENSION, -53, "invalid work dimension")                         \
  X(CL_INVALID_WORK_GROUP_SIZE, -54, "invalid work-group size")                       \
  X(CL_INVALID_WORK_ITEM_SIZE, -55, "invalid work-item size")                         \
  X(CL_INVALID_GLOBAL_OFFSET, -56, "invalid global offset")                           \
  X(CL_INVALID_EVENT_WAIT_LIST, -57, "invalid event wait list")                       \
  X(CL_INVALID_EVENT, -58, "invalid event")                                           \
  X(CL_INVALID_OPERATION, -59, "invalid operation")                                   \
  X(CL_INVALID_GL_OBJECT, -60, "invalid GL object")                                   \
  X(CL_INVALID_BUFFER_SIZE, -61, "invalid buffer size")                               \
  X(CL_INVALID_MIP_LEVEL, -62, "invalid mip level")                                   \
  X(CL_INVALID_GLOBAL_WORK_SIZE, -63, "invalid global work size")                     \
  X(CL_INVALID_PROPERTY, -64, "invalid property")                                     \
  X(CL_INVALID_IMAGE_DESCRIPTOR, -65, "invalid image descriptor")                     \
  X(CL_INVALID_COMPILER_OPTIONS, -66, "invalid compiler options")                     \
  X(CL_INVALID_LINKER_OPTIONS, -67, "invalid linker options")                         \
  X(CL_INVALID_DEVICE_PARTITION_COUNT, -68, "invalid device partition count")         \
  X(CL_INVALID_PIPE_SIZE, -69, "invalid pipe size")                                   \
  X(CL_INVALID_DEVICE_QUEUE, -70, "invalid device queue")                             \
  X(CL_PLATFORM_NOT_FOUND_KHR, -1001, "no OpenCL platform found (no ICD installed)")  \
  X(CLBlastNotImplemented, -1024, "CLBlast: not implemented")                         \
  X(CLBlastInvalidMatrixA, -1022, "CLBlast: matrix A is not a valid buffer")          \
  X(CLBlastInvalidMatrixB, -1021, "CLBlast: matrix B is not a valid buffer")          \
  X(CLBlastInvalidMatrixC, -1020, "CLBlast: matrix C is not a valid buffer")          \
  X(CLBlastInvalidDimension, -1017, "CLBlast: a dimension is zero")                   \
  X(CLBlastInvalidLeadDimA, -1016, "CLBlast: leading dimension of A too small")       \
  X(CLBlastInvalidLeadDimB, -1015, "CLBlast: leading dimension of B too small")       \
  X(CLBlastInvalidLeadDimC, -1014, "CLBlast: leading dimension of C too small")       \
  X(CLBlastInsufficientMemoryA, -1011, "CLBlast: buffer A too small")                 \
  X(CLBlastInsufficientMemoryB, -1010, "CLBlast: buffer B too small")                 \
  X(CLBlastInsufficientMemoryC, -1009, "CLBlast: buffer C too small")                 \
  X(CLBlastInvalidLocalMemUsage, -2046, "CLBlast: not enough local memory")           \
  X(CLBlastNoDoublePrecision, -2044, "CLBlast: no double precision on the device")    \
  X(CLBlastDatabaseError, -2041, "CLBlast: device not found in its database")         \
  X(CLBlastUnknownError, -2040, "CLBlast: unknown error")                             \
  X(CLBlastUnexpectedError, -2039, "CLBlast: unexpected error")

static const struct {
  int value;
  const char *name, *text;
} status_table[] = {
#define ROW_(name, value, text) {value, #name, text},
    CLCNN_STATUS_MAP(ROW_) CL_STATUS_MAP(ROW_)
#undef ROW_
};

static int find(clcnn_status s) {
  for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
    if (status_table[i].value == s) return (int)i;
  return -1;
}

CLCNN_API const char *clcnn_status_name(clcnn_status s) {
  int i = find(s);
  return i < 0 ? "UNKNOWN" : status_table[i].name;
}

CLCNN_API const char *clcnn_status_str(clcnn_status s) {
  int i = find(s);
  return i < 0 ? "unknown status" : status_table[i].text;
}

CLCNN_API const char *clcnn_version(void) { return CLCNN_VERSION_STRING; }

clcnn_status clcnn__fail(clcnn_ctx *ctx, const char *file, int line, clcnn_status st,
                         const char *fmt, ...) {
  if (!ctx) return st;
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(ctx->err, sizeof ctx->err, "%s:%d: ", file, line);
  if (n > 0 && (size_t)n < sizeof ctx->err) vsnprintf(ctx->err + n, sizeof ctx->err - n, fmt, ap);
  va_end(ap);
  return st;
}

clcnn_status clcnn__errf(char *err, size_t err_size, clcnn_status st, const char *fmt, ...) {
  if (err && err_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return st;
}

void clcnn__clear_error(clcnn_ctx *ctx) {
  if (ctx) ctx->err[0] = 0;
}
