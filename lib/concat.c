/* lib/concat.c - torch.cat(inputs, dim=1): two or more tensors of the same H and W, their
 * channels one after another. No kernel: forward copies each input into its slice of channels of
 * the output, backward each slice of dy back to its input's gradient, each a rectangular buffer
 * copy of one row per sample (an input's sample is contiguous, and so is its slice of the
 * output's sample), which the driver does at memory speed. */
#include <limits.h>
#include <stdio.h>

#include "graph.h"

static clcnn_status concat_setup(clcnn_ctx *ctx, struct node *nd) {
  const tensor *x0 = nd->in[0];
  long long c = 0;
  for (int i = 0; i < nd->nin; i++) {
    const tensor *x = nd->in[i];
    if (x->h != x0->h || x->w != x0->w)
      return FAIL(ctx, CLCNN_ERR_SHAPE,
                  "%s: input %d (%d,%d,%d) and input 0 (%d,%d,%d) differ in H and W (inputs are joined along channels)",
                  WHERE(nd), i, x->c, x->h, x->w, x0->c, x0->h, x0->w);
    c += x->c;
  }
  if (c > INT_MAX)
    return FAIL(ctx, CLCNN_ERR_SHAPE, "%s: %lld channels in all is too many", WHERE(nd), c);
  nd->out->c = (int)c, nd->out->h = x0->h, nd->out->w = x0->w;
  return CLCNN_SUCCESS;
}

/* Input i's slice of the output: n rows of ci * P elements, at channel coff of rows of C * P. */
static clcnn_status slice_copy(clcnn_ctx *ctx, struct node *nd, int n, int i, int coff, int back) {
  const tensor *x = nd->in[i];
  size_t p = (size_t)x->h * x->w * ctx->esz, part_row = x->c * p, whole_row = nd->out->c * p, at = coff * p;
  if (back) return clcnn__copy_rect(ctx, nd->dx[i], 0, part_row, nd->out->g, at, whole_row, part_row, n, "concat_backward");
  return clcnn__copy_rect(ctx, nd->out->v, at, whole_row, x->v, 0, part_row, part_row, n, "concat_forward");
}

static clcnn_status concat_forward(clcnn_ctx *ctx, struct node *nd, int n) {
  clcnn_status st;
  for (int i = 0, coff = 0; i < nd->nin; coff += nd->in[i]->c, i++)
    if ((st = slice_copy(ctx, nd, n, i, coff, 0))) return st;
  return CLCNN_SUCCESS;
}

static clcnn_status concat_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  clcnn_status st;
  for (int i = 0, coff = 0; i < nd->nin; coff += nd->in[i]->c, i++)
    if (nd->dx[i] && (st = slice_copy(ctx, nd, n, i, coff, 1))) return st;
  return CLCNN_SUCCESS;
}

static void concat_describe(const struct node *nd, char *buf, size_t size) {
  snprintf(buf, size, "concat(%d inputs, %d channels)", nd->nin, nd->out->c);
}

static tensor *concat_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  (void)A;
  return clcnn_concat(net, in, nin, name);
}

const struct op op_concat = {
    .word = "concat", .kind = "concat", .type = CLCNN_LAYER_CONCAT, .flags = OP_NO_BWD_X | OP_NO_BWD_Y, .min_in = 2, .max_in = 0,
    .usage = "concat(A, B, ...)", .parse = concat_parse, .setup = concat_setup, .forward = concat_forward,
    .backward = concat_backward, .describe = concat_describe,
};

CLCNN_API clcnn_tensor *clcnn_concat(clcnn_net *net, clcnn_tensor *const *in, int n, const char *name) {
  if (net && !in && n > 0) return graph_fail(net, CLCNN_ERR_NULL_POINTER, "concat: in is NULL");
  return graph_add(net, &op_concat, in, n, name, NULL, 0);
}
