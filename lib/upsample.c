/* lib/upsample.c - torch.nn.Upsample(scale_factor=S, mode='nearest' | 'bilinear',
 * align_corners=False) for an integer S >= 1: H and W times S. Kernels in cl/upsample.cl; the
 * backward passes gather (each input element sums the output elements that read it), so they
 * need no atomics and give the same sums in the same order every time. Scale 1 is a copy. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "graph.h"

struct upsample_state {
  int scale;
  int mode; /* clcnn_upsample_mode */
};

static const char *const mode_name[] = {"nearest", "bilinear"};

static clcnn_status upsample_setup(clcnn_ctx *ctx, struct node *nd) {
  const struct upsample_state *s = nd->priv;
  const tensor *x = nd->in[0];
  if (s->scale < 1)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: scale %d must be at least 1", WHERE(nd), s->scale);
  if (s->mode != CLCNN_UPSAMPLE_NEAREST && s->mode != CLCNN_UPSAMPLE_BILINEAR)
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: mode %d is not CLCNN_UPSAMPLE_NEAREST (0) or CLCNN_UPSAMPLE_BILINEAR (1)", WHERE(nd), s->mode);
  if ((long long)x->h * s->scale > INT_MAX || (long long)x->w * s->scale > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: input (%d,%d,%d) times %d is too large", WHERE(nd), x->c, x->h, x->w,
                s->scale);
  nd->out->c = x->c, nd->out->h = x->h * s->scale, nd->out->w = x->w * s->scale;
  return CLCNN_SUCCESS;
}

/* forward: one work-item per output element; backward: one per input element */
static clcnn_status run(clcnn_ctx *ctx, struct node *nd, int n, int back) {
  static const char *const names[2][2] = {{"upsample_nearest_forward", "upsample_bilinear_forward"},
                                          {"upsample_nearest_backward", "upsample_bilinear_backward"}};
  const struct upsample_state *s = nd->priv;
  const tensor *x = nd->in[0];
  const char *name = names[back][s->mode];
  cbuf *src = back ? nd->out->g : x->v, *dst = back ? nd->dx[0] : nd->out->v;
  size_t cnt = (size_t)n * tensor_size(back ? x : nd->out);
  if (s->scale == 1) return graph_copy(ctx, dst, src, cnt, 0);
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_UPSAMPLE, name, &k)) ||
      (st = clcnn__args(ctx, k, name, MEM_ARG(dst), MEM_ARG(src), INT_ARG(cnt), INT_ARG(x->h), INT_ARG(x->w),
                        INT_ARG(s->scale), (size_t)0)))
    return st;
  return clcnn__run(ctx, k, name, cnt, &src, 1, &dst, 1);
}

static clcnn_status upsample_forward(clcnn_ctx *ctx, struct node *nd, int n) { return run(ctx, nd, n, 0); }

static clcnn_status upsample_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  return nd->dx[0] ? run(ctx, nd, n, 1) : CLCNN_SUCCESS;
}

static void upsample_describe(const struct node *nd, char *buf, size_t size) {
  const struct upsample_state *s = nd->priv;
  snprintf(buf, size, "upsample(x%d, %s)", s->scale, mode_name[s->mode]);
}

static tensor *upsample_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  (void)nin;
  int scale, len, col, mode = CLCNN_UPSAMPLE_NEAREST;
  if (margs_int(A, 0, NULL, 1, &scale) < 0) return NULL;
  const char *m = margs_str(A, "mode", &len, &col);
  if (m) {
    for (mode = 0; mode < 2; mode++)
      if ((size_t)len == strlen(mode_name[mode]) && !memcmp(m, mode_name[mode], len)) break;
    if (mode == 2) return margs_error(A, "mode", "upsample's mode must be nearest or bilinear");
  }
  return clcnn_upsample(net, in[0], scale, (clcnn_upsample_mode)mode, name);
}

const struct op op_upsample = {
    .word = "upsample", .kind = "upsample", .type = CLCNN_LAYER_UPSAMPLE, .flags = OP_NO_BWD_X | OP_NO_BWD_Y,
    .priv_size = sizeof(struct upsample_state), .min_in = 1, .max_in = 1, .npos = 1, .pos = "S",
    .pos_what = {"scale"}, .opts = {"mode"}, .usage = "upsample S [mode=nearest|bilinear]",
    .parse = upsample_parse, .setup = upsample_setup, .forward = upsample_forward,
    .backward = upsample_backward, .describe = upsample_describe,
};

CLCNN_API clcnn_tensor *clcnn_upsample(clcnn_net *net, clcnn_tensor *x, int scale, clcnn_upsample_mode mode,
                                       const char *name) {
  struct upsample_state s = {scale, (int)mode};
  return graph_add(net, &op_upsample, &x, 1, name, &s, sizeof s);
}
