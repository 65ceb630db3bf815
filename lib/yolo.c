/* lib/yolo.c - the grid detection loss in the style of YOLO v1 (Redmon et al., 2016), a loss node:
 * `yolo(X) [coord=5] [noobj=0.5] [weight=W]` in a model file. X is N x (5 + K) x GH x GW: each
 * cell of the GH x GW grid predicts one box - an objectness logit o, the box's centre (x, y) as
 * offsets within the cell, the square roots (w, h) of its width and height relative to the image
 * - and K class scores z. The targets are N x 6 x GH x GW: per cell, whether an object is
 * assigned to it (1 or 0), its centre's offsets (tx, ty) in the cell, its size (tw, th) relative
 * to the image and its class c (clcnn_yolo_targets makes them from a list of boxes). Then
 *
 *   loss = 1/N * sum over the cells of
 *            cells with an object:    bce(o, 1) + coord * ((x - tx)^2 + (y - ty)^2
 *                                       + (w - sqrt(tw))^2 + (h - sqrt(th))^2) + ce(z, c)
 *            cells without:           noobj * bce(o, 0)
 *
 * with bce(o, t) = max(o, 0) - o t + log(1 + exp(-|o|)) (BCE with logits) and
 * ce(z, c) = log(sum_j exp(z_j)) - z_c (softmax cross-entropy). coord and noobj default to
 * YOLO v1's 5 and 0.5. A prediction's box is centred at ((col + x) / GW, (row + y) / GH), w^2 by
 * h^2 in size; its score is sigmoid(o) times its class's softmax probability. The kernel is in
 * cl/yolo.cl. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph.h"

#define YOLO_PARTS 1024 /* as cl/loss.cl: the sum's split depends on the cell count only */

struct yolo_state {
  double coord, noobj;
  int k, p; /* classes, grid cells */
  cbuf targets, part, loss;
};

static size_t parts_of(size_t m) { return m < YOLO_PARTS ? m : YOLO_PARTS; }

static clcnn_status yolo_setup(clcnn_ctx *ctx, struct node *nd) {
  struct yolo_state *s = nd->priv;
  const tensor *x = nd->in[0];
  if (!(nd->weight >= 0) || !isfinite(nd->weight))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: weight %g must be finite and non-negative", WHERE(nd), nd->weight);
  if (!(s->coord >= 0) || !isfinite(s->coord) || !(s->noobj >= 0) || !isfinite(s->noobj))
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: coord %g and noobj %g must be finite and non-negative", WHERE(nd),
                s->coord, s->noobj);
  if (x->c < 6)
    return FAIL(ctx, CLCNN_ERR_SHAPE,
                "%s: its input has %d channels: a detection grid has 5 + classes (objectness, x, y, w, h, then a "
                "score per class), at least 6", WHERE(nd), x->c);
  s->k = x->c - 5, s->p = x->h * x->w;
  return CLCNN_SUCCESS;
}

static clcnn_status yolo_alloc(struct plan *pl, struct node *nd, int B) {
  struct yolo_state *s = nd->priv;
  size_t e = pl->ctx->esz, cells = (size_t)B * s->p;
  clcnn_status st;
  if ((st = plan_buf(pl, PLAN_ACT(pl), &s->targets, 6 * cells * e, "targets")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->part, parts_of(cells) * e, "loss parts")) ||
      (st = plan_buf(pl, PLAN_ACT(pl), &s->loss, e, "loss")))
    return st;
  return CLCNN_SUCCESS;
}

static void yolo_release(struct node *nd) {
  struct yolo_state *s = nd->priv;
  cbuf_free(&s->targets), cbuf_free(&s->part), cbuf_free(&s->loss);
}

/* Each cell's targets: the flag 0 or 1; with an object, offsets and sizes in [0, 1] and a class
 * in 0..K-1; without, anything finite (unread). */
static clcnn_status yolo_targets(clcnn_ctx *ctx, struct node *nd, const void *targets, int n) {
  struct yolo_state *s = nd->priv;
  int dbl = ctx->prec == CLCNN_DOUBLE;
#define T(i) (dbl ? ((const double *)targets)[i] : (double)((const float *)targets)[i])
  static const char *const what[] = {"object flag", "x offset", "y offset", "width", "height", "class"};
  for (int b = 0; b < n; b++)
    for (int c = 0; c < s->p; c++) {
      size_t at = (size_t)b * 6 * s->p + c;
      double obj = T(at);
      if (obj != 0 && obj != 1)
        return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: sample %d, cell %d: the object flag is %g, not 0 or 1",
                    WHERE(nd), b, c, obj);
      for (int j = 1; j < 6; j++) {
        double v = T(at + (size_t)j * s->p);
        if (!isfinite(v))
          return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: sample %d, cell %d: the %s %g is not finite", WHERE(nd), b,
                      c, what[j], v);
        if (obj == 1 && j < 5 && !(v >= 0 && v <= 1))
          return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: sample %d, cell %d: the %s %g is outside [0, 1]", WHERE(nd),
                      b, c, what[j], v);
        if (obj == 1 && j == 5 && !(v >= 0 && v < s->k && v == floor(v)))
          return FAIL(ctx, CLCNN_ERR_LABEL, "%s: sample %d, cell %d: the class %g is not one of 0..%d", WHERE(nd), b, c,
                      v, s->k - 1);
      }
    }
#undef T
  clcnn_status st = clcnn__write(ctx, &s->targets, 0, (size_t)n * 6 * s->p * ctx->esz, targets, "targets");
  if (st) return st;
  nd->have_targets = 1;
  return CLCNN_SUCCESS;
}

static clcnn_status yolo_backward(clcnn_ctx *ctx, struct node *nd, int n) {
  struct yolo_state *s = nd->priv;
  cbuf *x = nd->in[0]->v, *d = nd->dx[0];
  size_t cells = (size_t)n * s->p, parts = parts_of(cells);
  cl_kernel k;
  clcnn_status st;
  if ((st = clcnn__kernel(ctx, KP_YOLO, "yolo_loss", &k)) ||
      (st = clcnn__args(ctx, k, "yolo_loss", MEM_ARG(&s->part), MEM_ARG(d), MEM_ARG(x), MEM_ARG(&s->targets),
                        INT_ARG(cells), INT_ARG(parts), INT_ARG(s->p), INT_ARG(s->k), REAL_ARG(ctx, nd->weight / n),
                        REAL_ARG(ctx, s->coord), REAL_ARG(ctx, s->noobj), (size_t)0)) ||
      (st = clcnn__run(ctx, k, "yolo_loss", parts, (cbuf *[]){x, &s->targets}, 2, (cbuf *[]){&s->part, d}, 2)) ||
      (st = clcnn__kernel(ctx, KP_LOSS, "loss_mean", &k)) ||
      (st = clcnn__args(ctx, k, "loss_mean", MEM_ARG(&s->loss), MEM_ARG(&s->part), INT_ARG(parts), INT_ARG(n),
                        (size_t)0)))
    return st;
  return clcnn__run(ctx, k, "loss_mean", 1, (cbuf *[]){&s->part}, 1, (cbuf *[]){&s->loss}, 1);
}

static clcnn_status yolo_value(clcnn_ctx *ctx, struct node *nd, double *v) {
  return graph_read_loss(ctx, &((struct yolo_state *)nd->priv)->loss, v);
}

static cbuf *yolo_target_buf(struct node *nd) { return &((struct yolo_state *)nd->priv)->targets; }

static void yolo_target_shape(const struct node *nd, int *classes, int *per_sample) {
  const struct yolo_state *s = nd->priv;
  *classes = 0, *per_sample = 6 * s->p;
}

static void yolo_describe(const struct node *nd, char *buf, size_t size) {
  const struct yolo_state *s = nd->priv;
  snprintf(buf, size, "yolo(%s, %d classes on %dx%d cells, coord %g, noobj %g, weight %g)", nd->in[0]->name, s->k,
           nd->in[0]->h, nd->in[0]->w, s->coord, s->noobj, nd->weight);
}

static tensor *yolo_parse(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name) {
  (void)nin;
  double weight = 1, coord = 5, noobj = 0.5;
  if (margs_real(A, -1, "weight", &weight) < 0 || margs_real(A, -1, "coord", &coord) < 0 ||
      margs_real(A, -1, "noobj", &noobj) < 0)
    return NULL;
  return clcnn_yolo_loss(net, in[0], coord, noobj, weight, name);
}

const struct op op_yolo = {
    .word = "yolo", .kind = "yolo", .type = CLCNN_LAYER_YOLO_LOSS, .flags = OP_LOSS,
    .priv_size = sizeof(struct yolo_state), .min_in = 1, .max_in = 1, .opts = {"coord", "noobj", "weight"},
    .usage = "yolo(X) [coord=C] [noobj=N] [weight=W]", .parse = yolo_parse, .setup = yolo_setup,
    .alloc = yolo_alloc, .release = yolo_release, .backward = yolo_backward, .describe = yolo_describe,
    .targets = yolo_targets, .value = yolo_value, .target_buf = yolo_target_buf, .target_shape = yolo_target_shape,
};

CLCNN_API clcnn_tensor *clcnn_yolo_loss(clcnn_net *net, clcnn_tensor *x, double coord, double noobj, double weight,
                                        const char *name) {
  struct yolo_state s = {.coord = coord, .noobj = noobj};
  return graph_add_loss(net, &op_yolo, x, weight, name, &s, sizeof s);
}

CLCNN_API clcnn_status clcnn_yolo_targets(const clcnn_box *boxes, int n, int classes, int gh, int gw,
                                          float *targets) {
  if ((!boxes && n > 0) || !targets) return CLCNN_ERR_NULL_POINTER;
  if (n < 0 || classes < 1 || gh < 1 || gw < 1 || (long long)gh * gw > (1 << 24)) return CLCNN_ERR_INVALID_ARGUMENT;
  for (int i = 0; i < n; i++) {
    const clcnn_box *b = &boxes[i];
    if (b->cls < 0 || b->cls >= classes) return CLCNN_ERR_LABEL;
    if (!(b->cx >= 0 && b->cx <= 1 && b->cy >= 0 && b->cy <= 1 && b->w > 0 && b->w <= 1 && b->h > 0 && b->h <= 1))
      return CLCNN_ERR_INVALID_ARGUMENT;
  }
  size_t p = (size_t)gh * gw;
  memset(targets, 0, 6 * p * sizeof *targets);
  for (int i = 0; i < n; i++) {
    const clcnn_box *b = &boxes[i];
    /* the cell holding the centre; a centre on the right or bottom edge is in the last cell */
    int col = (int)(b->cx * gw), row = (int)(b->cy * gh);
    col = col < gw ? col : gw - 1, row = row < gh ? row : gh - 1;
    size_t c = (size_t)row * gw + col;
    if (targets[c] == 1 && (double)targets[3 * p + c] * targets[4 * p + c] >= (double)(float)b->w * (float)b->h)
      continue; /* the cell keeps the larger box (the first of two equal ones) */
    targets[c] = 1;
    targets[p + c] = (float)(b->cx * gw - col);
    targets[2 * p + c] = (float)(b->cy * gh - row);
    targets[3 * p + c] = (float)b->w;
    targets[4 * p + c] = (float)b->h;
    targets[5 * p + c] = (float)b->cls;
  }
  return CLCNN_SUCCESS;
}
