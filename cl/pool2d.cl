/* cl/pool2d.cl - max, average and global average pooling, forward and backward.
 *
 * Shapes: x (N,C,H,W); y (N,C,OH,OW); idx (N,C,OH,OW) holds, for max pooling, the position
 * iy*W + ix in its plane of the input that won: as PyTorch's kernels, the first maximum in scan
 * order, except that a NaN wins, and a later NaN over an earlier one. Window (oy, ox) covers rows
 * oy*SH - PH .. oy*SH - PH + KH - 1; padding never wins a max and counts in the average
 * (PyTorch's count_include_pad=True). Backward gathers over the windows that cover each
 * input element, so dx is written with '=' and no two work-items touch one element. */

/* The windows that may cover input row iy: oy in [lo, hi]. */
#define WINDOW_RANGE(iy, ph, kh, sh, oh, lo, hi)                  \
  int lo = (iy) + (ph) - (kh) < 0 ? 0 : ((iy) + (ph) - (kh)) / (sh) + 1; \
  int hi = ((iy) + (ph)) / (sh);                                  \
  if (hi > (oh) - 1) hi = (oh) - 1;

/* One work-item per output row (plane, oy). */
__kernel void maxpool2d_forward(__global real *y, __global int *idx, __global const real *x,
                                int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int ph, int pw, int oh, int ow) {
  int i = get_global_id(0);
  if (i >= n * c * oh) return;
  int oy = i % oh, plane = i / oh;
  __global const real *xp = x + (size_t)plane * h * w;
  int y0 = oy * sh - ph, ylo = max(y0, 0), yhi = min(y0 + kh, h);
  for (int ox = 0; ox < ow; ox++) {
    int x0 = ox * sw - pw, xlo = max(x0, 0), xhi = min(x0 + kw, w);
    real best = -INFINITY;
    int where = -1;
    for (int iy = ylo; iy < yhi; iy++)
      for (int ix = xlo; ix < xhi; ix++) {
        real v = xp[iy * w + ix];
        if (where < 0 || v > best || isnan(v)) {
          best = v;
          where = iy * w + ix;
        }
      }
    y[(size_t)i * ow + ox] = best;
    idx[(size_t)i * ow + ox] = where;
  }
}

/* The common 2x2 window with stride 2 and no padding, one work-item per output row (plane, oy):
 * straight-line code per element and no integer division in the loop (a CPU device runs it
 * scalar); the winner as above. */
__kernel void maxpool2x2_forward(__global real *y, __global int *idx, __global const real *x, int rows, int h,
                                 int w, int oh, int ow) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int oy = i % oh, plane = i / oh;
  __global const real *r0 = x + (size_t)plane * h * w + 2 * oy * w, *r1 = r0 + w;
  for (int ox = 0; ox < ow; ox++) {
    int top = 2 * oy * w + 2 * ox;
    real a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1], best = a;
    int where = top;
    /* v != v: v is NaN. Selects, not branches: on random data the branches mispredicted */
    int t;
    t = (b > best) | (b != b), best = t ? b : best, where = t ? top + 1 : where;
    t = (c > best) | (c != c), best = t ? c : best, where = t ? top + w : where;
    t = (d > best) | (d != d), best = t ? d : best, where = t ? top + w + 1 : where;
    y[(size_t)i * ow + ox] = best;
    idx[(size_t)i * ow + ox] = where;
  }
}

/* Its backward, one work-item per output row: each output element writes the four elements of
 * its window (the gradient to the winner, zeros to the rest); with an odd H or W the last row or
 * column belongs to no window and gets zeros. */
__kernel void maxpool2x2_backward(__global real *dx, __global const real *dy, __global const int *idx, int rows,
                                  int h, int w, int oh, int ow) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int oy = i % oh, plane = i / oh;
  __global real *d0 = dx + (size_t)plane * h * w + 2 * oy * w, *d1 = d0 + w;
  for (int ox = 0; ox < ow; ox++) {
    int win = idx[(size_t)i * ow + ox] - (2 * oy * w + 2 * ox);
    real g = dy[(size_t)i * ow + ox];
    d0[2 * ox] = win == 0 ? g : 0;
    d0[2 * ox + 1] = win == 1 ? g : 0;
    d1[2 * ox] = win == w ? g : 0;
    d1[2 * ox + 1] = win == w + 1 ? g : 0;
  }
  if (w & 1) d0[w - 1] = d1[w - 1] = 0;
  if ((h & 1) && oy == oh - 1)
    for (int x = 0; x < w; x++) d1[w + x] = 0;
}

/* One work-item per input row (plane, iy): each element gathers the gradient of the windows
 * whose maximum it was. */
__kernel void maxpool2d_backward(__global real *dx, __global const real *dy,
                                 __global const int *idx, int n, int c, int h, int w, int kh,
                                 int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
  int i = get_global_id(0);
  if (i >= n * c * h) return;
  int iy = i % h, plane = i / h;
  size_t base = (size_t)plane * oh * ow;
  if (sh == kh && sw == kw && ph == 0 && pw == 0) {
    /* windows that do not overlap: each element is in at most one */
    int oy = iy / kh;
    for (int ix = 0; ix < w; ix++) {
      int ox = ix / kw;
      size_t o = base + (size_t)oy * ow + ox;
      dx[(size_t)i * w + ix] = oy < oh && ox < ow && idx[o] == iy * w + ix ? dy[o] : 0;
    }
    return;
  }
  WINDOW_RANGE(iy, ph, kh, sh, oh, ylo, yhi)
  for (int ix = 0; ix < w; ix++) {
    int here = iy * w + ix;
    WINDOW_RANGE(ix, pw, kw, sw, ow, xlo, xhi)
    real s = 0;
    for (int oy = ylo; oy <= yhi; oy++)
      for (int ox = xlo; ox <= xhi; ox++)
        if (idx[base + oy * ow + ox] == here) s += dy[base + oy * ow + ox];
    dx[(size_t)i * w + ix] = s;
  }
}

/* The divisor of window (oy, ox): its size clipped to the padded input, as in PyTorch. */
static int avg_divisor(int oy, int ox, int h, int w, int kh, int kw, int sh, int sw, int ph,
                       int pw) {
  int y0 = oy * sh - ph, x0 = ox * sw - pw;
  int y1 = min(y0 + kh, h + ph), x1 = min(x0 + kw, w + pw);
  return (y1 - y0) * (x1 - x0);
}

__kernel void avgpool2d_forward(__global real *y, __global const real *x, int n, int c, int h,
                                int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh,
                                int ow) {
  int i = get_global_id(0);
  if (i >= n * c * oh * ow) return;
  int ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
  __global const real *xp = x + (size_t)plane * h * w;
  int y0 = oy * sh - ph, x0 = ox * sw - pw;
  real s = 0;
  for (int iy = max(y0, 0); iy < min(y0 + kh, h); iy++)
    for (int ix = max(x0, 0); ix < min(x0 + kw, w); ix++) s += xp[iy * w + ix];
  y[i] = s / avg_divisor(oy, ox, h, w, kh, kw, sh, sw, ph, pw);
}

__kernel void avgpool2d_backward(__global real *dx, __global const real *dy, int n, int c, int h,
                                 int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh,
                                 int ow) {
  int i = get_global_id(0);
  if (i >= n * c * h * w) return;
  int ix = i % w, iy = (i / w) % h, plane = i / (w * h);
  WINDOW_RANGE(iy, ph, kh, sh, oh, ylo, yhi)
  WINDOW_RANGE(ix, pw, kw, sw, ow, xlo, xhi)
  real s = 0;
  size_t base = (size_t)plane * oh * ow;
  for (int oy = ylo; oy <= yhi; oy++)
    for (int ox = xlo; ox <= xhi; ox++)
      s += dy[base + oy * ow + ox] / avg_divisor(oy, ox, h, w, kh, kw, sh, sw, ph, pw);
  dx[i] = s;
}

/* y (N,C) = mean of each plane of x (N,C,P). */
__kernel void global_avgpool_forward(__global real *y, __global const real *x, int planes, int p) {
  int i = get_global_id(0);
  if (i >= planes) return;
  real s = 0;
  for (int j = 0; j < p; j++) s += x[(size_t)i * p + j];
  y[i] = s / p;
}

__kernel void global_avgpool_backward(__global real *dx, __global const real *dy, int planes,
                                      int p) {
  int i = get_global_id(0);
  if (i >= planes * p) return;
  dx[i] = dy[i / p] / p;
}
