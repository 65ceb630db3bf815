/* cl/conv2d.cl - 2-d convolution as whole-batch GEMMs (the GEMMs run in CLBlast).
 *
 * Shapes: x (N,C,H,W); weight (OC, C/G, KH, KW); y (N,OC,OH,OW). P = OH*OW.
 * col is (C*KH*KW, N*P): row r = (c*KH + kh)*KW + kw, column j = n*P + oh*OW + ow, so each
 * group's rows are contiguous. y2 is (OC, N*P), the GEMM's output, = weight x col per group. */

/* col[r][j] = x[n][c][oh*SH - PH + kh*DH][ow*SW - PW + kw*DW], or 0 in the padding. */
__kernel void conv2d_im2col(__global real *col, __global const real *x, int n, int c, int h, int w,
                            int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                            int oh, int ow) {
  int i = get_global_id(0);
  int p = oh * ow, np = n * p;
  if (i >= c * kh * kw * np) return;
  int j = i % np, r = i / np;
  int b = j / p, q = j % p, y = q / ow, xo = q % ow;
  int kx = r % kw, ky = (r / kw) % kh, ch = r / (kw * kh);
  int iy = y * sh - ph + ky * dh, ix = xo * sw - pw + kx * dw;
  real v = 0;
  if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = x[(((size_t)b * c + ch) * h + iy) * w + ix];
  col[i] = v;
}

/* dx[n][c][iy][ix] = sum of dcol over the (kh, kw, oh, ow) that read x[n][c][iy][ix]: the
 * adjoint of im2col, gathered so that no two work-items write one element ('='). */
__kernel void conv2d_col2im(__global real *dx, __global const real *dcol, int n, int c, int h,
                            int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                            int oh, int ow) {
  int i = get_global_id(0);
  if (i >= n * c * h * w) return;
  int ix = i % w, iy = (i / w) % h, ch = (i / (w * h)) % c, b = i / (w * h * c);
  int p = oh * ow, np = n * p;
  real s = 0;
  for (int ky = 0; ky < kh; ky++) {
    int ty = iy + ph - ky * dh; /* = y * sh */
    if (ty < 0 || ty % sh) continue;
    int y = ty / sh;
    if (y >= oh) continue;
    for (int kx = 0; kx < kw; kx++) {
      int tx = ix + pw - kx * dw;
      if (tx < 0 || tx % sw) continue;
      int xo = tx / sw;
      if (xo >= ow) continue;
      int r = (ch * kh + ky) * kw + kx;
      s += dcol[(size_t)r * np + b * p + y * ow + xo];
    }
  }
  dx[i] = s;
}

/* y[n][oc][q] = y2[oc][n*P + q] (+ bias[oc]). */
__kernel void conv2d_unpack(__global real *y, __global const real *y2, __global const real *bias,
                            int n, int oc, int p, int has_bias) {
  int i = get_global_id(0);
  if (i >= n * oc * p) return;
  int q = i % p, o = (i / p) % oc, b = i / (p * oc);
  real v = y2[(size_t)o * n * p + b * p + q];
  if (has_bias) v += bias[o];
  y[i] = v;
}

/* dy2[oc][n*P + q] = dy[n][oc][q]: the output gradient in the GEMM's layout. */
__kernel void conv2d_pack(__global real *dy2, __global const real *dy, int n, int oc, int p) {
  int i = get_global_id(0);
  if (i >= n * oc * p) return;
  int q = i % p, o = (i / p) % oc, b = i / (p * oc);
  dy2[(size_t)o * n * p + b * p + q] = dy[i];
}
