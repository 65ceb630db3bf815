/* cl/upsample.cl - torch.nn.Upsample(scale_factor=s, align_corners=False) for an integer s >= 2
 * (scale 1 is a copy, done by the host): x (N,C,H,W) -> y (N,C,H*s,W*s).
 *
 * nearest: output (oy, ox) reads input (oy / s, ox / s).
 * bilinear: along each axis output o reads inputs i0 and i1 with weights 1 - l and l, where
 * src = (o + 0.5) / s - 0.5 = (2o + 1 - s) / (2s), clamped below at 0, i0 = floor(src),
 * i1 = min(i0 + 1, n - 1), l = src - i0: PyTorch's rule, computed here in integers so that the
 * weights are the exact fractions k / (2s) rounded once.
 *
 * Forward: one work-item per output element. Backward gathers: one work-item per input element
 * sums the gradients of the output elements that read it (the adjoint), in a fixed order, so
 * there are no atomics and the result is the same every run. */

/* Bilinear source of output index o along an axis of n inputs: returns i0, sets *i1 and *l. */
static int bl_src(int o, int s, int n, int *i1, real *l) {
  int num = 2 * o + 1 - s, i0 = 0;
  *l = 0;
  if (num > 0) {
    i0 = num / (2 * s);
    *l = (real)(num - i0 * 2 * s) / (2 * s);
  }
  *i1 = i0 < n - 1 ? i0 + 1 : i0;
  return i0;
}

/* The weight with which output index o reads input index i along an axis; *touch is 0 when o
 * does not read i at all. i0 == i1 at the last input: both weights add up. */
static real bl_weight(int o, int i, int s, int n, int *touch) {
  int i1;
  real l;
  int i0 = bl_src(o, s, n, &i1, &l);
  *touch = i0 == i || i1 == i;
  return (i0 == i ? 1 - l : 0) + (i1 == i ? l : 0);
}

/* n: output elements */
__kernel void upsample_nearest_forward(__global real *y, __global const real *x, int n, int h, int w, int s) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ow = w * s, oh = h * s;
  int ox = i % ow, t = i / ow, oy = t % oh, plane = t / oh;
  y[i] = x[((size_t)plane * h + oy / s) * w + ox / s];
}

/* n: input elements; each sums its s x s block of dy */
__kernel void upsample_nearest_backward(__global real *dx, __global const real *dy, int n, int h, int w, int s) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ow = w * s, oh = h * s;
  int ix = i % w, t = i / w, iy = t % h, plane = t / h;
  __global const real *g = dy + ((size_t)plane * oh + (size_t)iy * s) * ow + (size_t)ix * s;
  real acc = 0;
  for (int a = 0; a < s; a++)
    for (int b = 0; b < s; b++) acc += g[(size_t)a * ow + b];
  dx[i] = acc;
}

/* n: output elements */
__kernel void upsample_bilinear_forward(__global real *y, __global const real *x, int n, int h, int w, int s) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ow = w * s, oh = h * s;
  int ox = i % ow, t = i / ow, oy = t % oh, plane = t / oh;
  int y1, x1;
  real ly, lx;
  int y0 = bl_src(oy, s, h, &y1, &ly), x0 = bl_src(ox, s, w, &x1, &lx);
  __global const real *r0 = x + ((size_t)plane * h + y0) * w, *r1 = x + ((size_t)plane * h + y1) * w;
  y[i] = (1 - ly) * ((1 - lx) * r0[x0] + lx * r0[x1]) + ly * ((1 - lx) * r1[x0] + lx * r1[x1]);
}

/* n: input elements. Output rows that may read input row iy lie in [iy*s - s, iy*s + 2s) (src
 * within one of iy), and the same for columns; bl_weight says which of them do. */
__kernel void upsample_bilinear_backward(__global real *dx, __global const real *dy, int n, int h, int w, int s) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ow = w * s, oh = h * s;
  int ix = i % w, t = i / w, iy = t % h, plane = t / h;
  int ylo = max(0, iy * s - s), yhi = min(oh, iy * s + 2 * s);
  int xlo = max(0, ix * s - s), xhi = min(ow, ix * s + 2 * s);
  __global const real *g = dy + (size_t)plane * oh * ow;
  real acc = 0;
  for (int oy = ylo; oy < yhi; oy++) {
    int ty, tx;
    real wy = bl_weight(oy, iy, s, h, &ty);
    if (!ty) continue;
    real row = 0;
    for (int ox = xlo; ox < xhi; ox++) {
      real wx = bl_weight(ox, ix, s, w, &tx);
      if (tx) row += wx * g[(size_t)oy * ow + ox];
    }
    acc += wy * row;
  }
  dx[i] = acc;
}
