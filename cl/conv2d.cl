/* cl/conv2d.cl - 2-d convolution as whole-batch GEMMs (the GEMMs run in clcnn's GEMM or CLBlast).
 *
 * Shapes: x (N,C,H,W); weight (OC, C/G, KH, KW); y (N,OC,OH,OW). P = OH*OW.
 * col is (C*KH*KW, N*P): row r = (c*KH + kh)*KW + kw, column j = n*P + oh*OW + ow, so each
 * group's rows are contiguous. y2 is (OC, N*P), the GEMM's output, = weight x col per group. */

typedef real real16_c __attribute__((ext_vector_type(16)));

/* col[r][j] = x[n][c][oh*SH - PH + kh*DH][ow*SW - PW + kw*DW], or 0 in the padding. One
 * work-item writes one output row (r, n, oh): the index arithmetic is paid once per row and the
 * inner loop writes contiguous memory. */
__kernel void conv2d_im2col(__global real *col, __global const real *x, int n, int c, int h, int w,
                            int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                            int oh, int ow) {
  int i = get_global_id(0);
  if (i >= c * kh * kw * n * oh) return;
  int y = i % oh, b = (i / oh) % n, r = i / (oh * n);
  int kx = r % kw, ky = (r / kw) % kh, ch = r / (kw * kh);
  __global real *dst = col + (size_t)r * n * oh * ow + ((size_t)b * oh + y) * ow;
  int iy = y * sh - ph + ky * dh;
  if (iy < 0 || iy >= h) {
    for (int xo = 0; xo < ow; xo++) dst[xo] = 0;
    return;
  }
  __global const real *src = x + (((size_t)b * c + ch) * h + iy) * w;
  int ix = kx * dw - pw;
  for (int xo = 0; xo < ow; xo++, ix += sw) dst[xo] = ix >= 0 && ix < w ? src[ix] : 0;
}

/* im2col straight into the panels clcnn's GEMM reads (CPU devices): colp[(p*CKK + r)*64 + cc]
 * = col[r][64p + cc], zero past N*P. One work-item writes one panel row: 64 contiguous values,
 * walking (n, oh, ow) without divisions. */
/* floor(a / b) and ceil(a / b) for b > 0 and any a. */
static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -(-a / b); }

__kernel void conv2d_im2col_packed(__global real *colp, __global const real *x, int n, int c, int h,
                                   int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                                   int dw, int oh, int ow, int npanels) {
  int ckk = c * kh * kw, i = get_global_id(0);
  if (i >= npanels * ckk) return;
  int p = i / ckk, r = i % ckk;
  int kx = r % kw, ky = (r / kw) % kh, ch = r / (kw * kh);
  int pp = oh * ow, np = n * pp, j = p * 64, jend = min(np, j + 64);
  int b = j / pp, y = (j % pp) / ow, xo = j % ow;
  int off = kx * dw - pw; /* ix = xo * sw + off */
  /* the output columns whose input column is inside the image: [xlo, xhi) */
  int xlo = max(0, ceil_div(-off, sw)), xhi = min(ow, floor_div(w - 1 - off, sw) + 1);
  __global real *dst = colp + (size_t)i * 64;
  int cc = 0;
  /* one run per output row that this panel touches: zeros, a strided copy, zeros */
  while (j < jend) {
    int len = min(ow - xo, jend - j), xe = xo + len;
    int iy = y * sh - ph + ky * dh;
    if (iy < 0 || iy >= h) {
      for (int t = 0; t < len; t++) dst[cc + t] = 0;
    } else {
      __global const real *src = x + (((size_t)b * c + ch) * h + iy) * w + off;
      int a0 = clamp(xlo, xo, xe), a1 = clamp(xhi, a0, xe);
      int t = cc;
      for (int q = xo; q < a0; q++) dst[t++] = 0;
      if (sw == 1)
        for (int q = a0; q < a1; q++) dst[t++] = src[q];
      else
        for (int q = a0; q < a1; q++) dst[t++] = src[q * sw];
      for (int q = a1; q < xe; q++) dst[t++] = 0;
    }
    cc += len;
    j += len;
    xo = 0;
    if (++y == oh) y = 0, b++;
  }
  for (; cc < 64; cc++) dst[cc] = 0; /* past N*P */
}

/* The weight gradient of a narrow conv (few output channels), straight from the packed im2col
 * and the output gradient: part[s][o][r] = sum over j in chunk s of dy[o][j] * col[roff + r][j].
 * One work-item per (r, chunk): it streams one im2col row of the chunk against each of the ocg
 * gradient rows, 16 lanes at a time; gemm_reduce then adds the chunks in a fixed order.
 * dy rows start at dyoff and are np long; colp has ckk rows per 64-column panel. */
__kernel void conv2d_wgrad_narrow(__global real *part, __global const real *colp, __global const real *dy,
                                  int ocg, int cgkk, int ckk, int roff, int np, int dyoff, int chunk,
                                  int chunks) {
  int i = get_global_id(0);
  if (i >= cgkk * chunks) return;
  int r = i % cgkk, s = i / cgkk, j0 = s * chunk, j1 = min(np, j0 + chunk);
  /* four gradient rows at a time, so that each load of the im2col row serves four FMAs (rows
   * past ocg repeat row o0 and are not stored); each row's sum is formed as with one row */
  for (int o0 = 0; o0 < ocg; o0 += 4) {
    __global const real *d[4];
    for (int q = 0; q < 4; q++) d[q] = dy + dyoff + (size_t)(o0 + q < ocg ? o0 + q : o0) * np;
    real16_c a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    real tail[4] = {0, 0, 0, 0};
    for (int jb = j0; jb < j1; jb += 64) {
      __global const real *c = colp + ((size_t)(jb / 64) * ckk + roff + r) * 64;
      if (jb + 64 <= j1) {
        for (int v = 0; v < 4; v++) {
          real16_c cv = vload16(v, c);
          a0 = fma(cv, vload16(v, d[0] + jb), a0);
          a1 = fma(cv, vload16(v, d[1] + jb), a1);
          a2 = fma(cv, vload16(v, d[2] + jb), a2);
          a3 = fma(cv, vload16(v, d[3] + jb), a3);
        }
      } else {
        for (int q = 0; q < 4; q++)
          for (int jj = 0; jj < j1 - jb; jj++) tail[q] += c[jj] * d[q][jb + jj];
      }
    }
    real t[4][16];
    vstore16(a0, 0, t[0]), vstore16(a1, 0, t[1]), vstore16(a2, 0, t[2]), vstore16(a3, 0, t[3]);
    for (int q = 0; q < 4 && o0 + q < ocg; q++) {
      real sum = tail[q];
      for (int l = 0; l < 16; l++) sum += t[q][l];
      part[((size_t)s * ocg + o0 + q) * cgkk + r] = sum;
    }
  }
}

/* dx[n][c][iy][ix] = sum of dcol over the (kh, kw, oh, ow) that read x[n][c][iy][ix]: the
 * adjoint of im2col. One work-item owns one input row (n, c, iy) and adds into it from every
 * kernel row that reads it, so no two work-items write one element ('='). */
__kernel void conv2d_col2im(__global real *dx, __global const real *dcol, int n, int c, int h,
                            int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                            int oh, int ow) {
  int i = get_global_id(0);
  if (i >= n * c * h) return;
  int iy = i % h, ch = (i / h) % c, b = i / (h * c);
  int p = oh * ow, np = n * p;
  __global real *dst = dx + (size_t)i * w;
  for (int ix = 0; ix < w; ix++) dst[ix] = 0;
  for (int ky = 0; ky < kh; ky++) {
    int ty = iy + ph - ky * dh; /* = y * sh */
    if (ty < 0 || ty % sh) continue;
    int y = ty / sh;
    if (y >= oh) continue;
    for (int kx = 0; kx < kw; kx++) {
      int r = (ch * kh + ky) * kw + kx;
      __global const real *src = dcol + (size_t)r * np + (size_t)b * p + (size_t)y * ow;
      int ix = kx * dw - pw;
      for (int xo = 0; xo < ow; xo++, ix += sw)
        if (ix >= 0 && ix < w) dst[ix] += src[xo];
    }
  }
}

/* y[n][oc][q] = y2[oc][n*P + q] (+ bias[oc]). One work-item per (n, oc) plane. */
__kernel void conv2d_unpack(__global real *y, __global const real *y2, __global const real *bias,
                            int n, int oc, int p, int has_bias, int relu) {
  int i = get_global_id(0);
  if (i >= n * oc) return;
  int o = i % oc, b = i / oc;
  real add = has_bias ? bias[o] : 0;
  __global const real *src = y2 + (size_t)o * n * p + (size_t)b * p;
  __global real *dst = y + (size_t)i * p;
  if (relu) /* a relu after the conv, fused: as relu_forward does it */
    for (int q = 0; q < p; q++) {
      real v = src[q] + add;
      dst[q] = v > 0 ? v : 0;
    }
  else
    for (int q = 0; q < p; q++) dst[q] = src[q] + add;
}

/* A fused relu and 2x2 max pooling (stride 2, no padding) after the conv: yp (n,oc,ph,pw) and
 * idx get what maxpool2x2_forward would from the relu's output, which is never stored. One
 * work-item per pooled row (n, oc, py), so that the divisions that locate it are done once a
 * row (a CPU device runs integer division scalar, and it dominated a per-element kernel). */
__kernel void conv2d_unpack_pool(__global real *yp, __global int *idx, __global const real *y2,
                                 __global const real *bias, int rows, int oc, int np, int oh, int ow, int ph,
                                 int pw, int has_bias) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int py = i % ph, plane = i / ph, o = plane % oc, b = plane / oc;
  __global const real *src = y2 + (size_t)o * np + (size_t)b * oh * ow + 2 * py * ow;
  real add = has_bias ? bias[o] : 0;
  __global real *out = yp + (size_t)i * pw;
  __global int *where_out = idx + (size_t)i * pw;
  for (int px = 0; px < pw; px++) {
    int top = 2 * py * ow + 2 * px;
    real a = src[2 * px] + add, bb = src[2 * px + 1] + add, c = src[ow + 2 * px] + add, d = src[ow + 2 * px + 1] + add;
    a = a > 0 ? a : 0, bb = bb > 0 ? bb : 0, c = c > 0 ? c : 0, d = d > 0 ? d : 0;
    real best = a;
    int where = top, t; /* relu leaves no NaN; selects, not branches (they mispredict) */
    t = bb > best, best = t ? bb : best, where = t ? top + 1 : where;
    t = c > best, best = t ? c : best, where = t ? top + ow : where;
    t = d > best, best = t ? d : best, where = t ? top + ow + 1 : where;
    out[px] = best;
    where_out[px] = where;
  }
}

/* Its backward into the GEMM's layout: dy2[oc][n*P + q] = dyp at the pooled element whose
 * maximum q was, if that maximum (the relu's output there) is positive, else 0; rows and
 * columns past the last window (odd oh or ow) get 0. One work-item per pooled row. */
__kernel void conv2d_pack_pool(__global real *dy2, __global const real *dyp, __global const real *yp,
                               __global const int *idx, int rows, int oc, int np, int oh, int ow, int ph, int pw) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int py = i % ph, plane = i / ph, o = plane % oc, b = plane / oc;
  __global real *d0 = dy2 + (size_t)o * np + (size_t)b * oh * ow + 2 * py * ow, *d1 = d0 + ow;
  __global const real *g_in = dyp + (size_t)i * pw, *y_in = yp + (size_t)i * pw;
  __global const int *w_in = idx + (size_t)i * pw;
  for (int px = 0; px < pw; px++) {
    int win = w_in[px] - (2 * py * ow + 2 * px);
    real g = y_in[px] > 0 ? g_in[px] : 0;
    d0[2 * px] = win == 0 ? g : 0;
    d0[2 * px + 1] = win == 1 ? g : 0;
    d1[2 * px] = win == ow ? g : 0;
    d1[2 * px + 1] = win == ow + 1 ? g : 0;
  }
  if (ow & 1) d0[ow - 1] = d1[ow - 1] = 0;
  if ((oh & 1) && py == ph - 1)
    for (int x = 0; x < ow; x++) d1[ow + x] = 0;
}

/* dy2[oc][n*P + q] = dy[n][oc][q]: the output gradient in the GEMM's layout; with relu, the
 * gradient through a fused relu, whose output y (n,oc,P) is the conv's: as relu_backward. */
__kernel void conv2d_pack(__global real *dy2, __global const real *dy, __global const real *y, int n, int oc, int p,
                          int relu) {
  int i = get_global_id(0);
  if (i >= n * oc) return;
  int o = i % oc, b = i / oc;
  __global const real *src = dy + (size_t)i * p, *yr = y + (size_t)i * p;
  __global real *dst = dy2 + (size_t)o * n * p + (size_t)b * p;
  if (relu)
    for (int q = 0; q < p; q++) dst[q] = yr[q] > 0 ? src[q] : 0;
  else
    for (int q = 0; q < p; q++) dst[q] = src[q];
}

/* part[s][o] = sum over the columns j of chunk s of dy2[o][j], dy2 (oc, np) as conv2d_pack
 * leaves it: the bias gradient in chunks, which gemm_reduce adds in a fixed order. */
__kernel void conv2d_bias_grad(__global real *part, __global const real *dy2, int oc, int np, int chunk,
                               int chunks) {
  int i = get_global_id(0);
  if (i >= oc * chunks) return;
  int o = i % oc, s = i / oc, j0 = s * chunk, j1 = min(np, j0 + chunk);
  __global const real *row = dy2 + (size_t)o * np;
  real16_c acc16 = 0;
  int j = j0;
  for (; j + 16 <= j1; j += 16) acc16 += vload16(0, row + j);
  real t[16], acc = 0;
  vstore16(acc16, 0, t);
  for (int l = 0; l < 16; l++) acc += t[l];
  for (; j < j1; j++) acc += row[j];
  part[i] = acc;
}

/* ---- the direct convolution (CPU devices): stride 1, no dilation, one group ----
 * Both the forward product and the input gradient of such a conv are a stride-1 convolution of
 * a zero-padded image: y[o][oy][ox] = sum over c, ky, kx of w[o][c][ky][kx] xp[c][oy+ky][ox+kx];
 * for the input gradient the image is dy padded by K-1-P and the weight has its two channel
 * dimensions swapped and its kernel turned by 180 degrees. No im2col matrix (KH*KW copies of
 * the image) goes through memory. */

/* xp[b][ch][yy][xx] = x[b][ch][yy - ph][xx - pw], 0 outside x (a negative pad crops); x's sample
 * and channel strides are xbs and xcs (an NCHW tensor, or a GEMM output's (C, N*P) rows). One
 * work-item per padded row; rows = n * c * hp. */
__kernel void conv2d_pad(__global real *xp, __global const real *x, int rows, int c, int h, int w, int ph,
                         int pw, int hp, int wp, int xbs, int xcs) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int yy = i % hp, ch = (i / hp) % c, b = i / (hp * c), y = yy - ph;
  __global real *dst = xp + (size_t)i * wp;
  int t = 0;
  if (y >= 0 && y < h) {
    __global const real *src = x + (size_t)b * xbs + (size_t)ch * xcs + (size_t)y * w - pw;
    for (; t < min(pw, wp); t++) dst[t] = 0;
    for (; t < min(pw + w, wp); t++) dst[t] = src[t];
  }
  for (; t < wp; t++) dst[t] = 0;
}

/* The direct kernel's weights in blocks of 8 output channels: wt[ob][c][q][j] is the weight of
 * output channel o = 8 ob + j, input channel c, kernel position q (of kk), 0 for o >= oc. The
 * forward (flip 0) takes w[o][c][q]; the input gradient (flip 1), whose outputs are the conv's
 * inputs, w[c][o][kk - 1 - q]. total = ceil(oc / 8) * ic * kk * 8. */
__kernel void conv2d_direct_weights(__global real *wt, __global const real *w, int oc, int ic, int kk, int flip,
                                    int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int j = i % 8, q = (i / 8) % kk, ch = (i / (8 * kk)) % ic, o = i / (8 * kk * ic) * 8 + j;
  real v = 0;
  if (o < oc) v = flip ? w[((size_t)ch * oc + o) * kk + kk - 1 - q] : w[((size_t)o * ic + ch) * kk + q];
  wt[i] = v;
}

/* One FMA step of the 8 x 32 tile: the 32 inputs v0 v1 times the 8 channels' weights wr[0..7]. */
#define DIRECT_STEP(wr, v0, v1)                                                                   \
  a00 = fma((real16_c)((wr)[0]), v0, a00), a01 = fma((real16_c)((wr)[0]), v1, a01);                   \
  a10 = fma((real16_c)((wr)[1]), v0, a10), a11 = fma((real16_c)((wr)[1]), v1, a11);                   \
  a20 = fma((real16_c)((wr)[2]), v0, a20), a21 = fma((real16_c)((wr)[2]), v1, a21);                   \
  a30 = fma((real16_c)((wr)[3]), v0, a30), a31 = fma((real16_c)((wr)[3]), v1, a31);                   \
  a40 = fma((real16_c)((wr)[4]), v0, a40), a41 = fma((real16_c)((wr)[4]), v1, a41);                   \
  a50 = fma((real16_c)((wr)[5]), v0, a50), a51 = fma((real16_c)((wr)[5]), v1, a51);                   \
  a60 = fma((real16_c)((wr)[6]), v0, a60), a61 = fma((real16_c)((wr)[6]), v1, a61);                   \
  a70 = fma((real16_c)((wr)[7]), v0, a70), a71 = fma((real16_c)((wr)[7]), v1, a71);

/* Row oy, columns 32 seg .. 32 seg + 31 of output channel o (those inside the row). */
static void direct_store(__global real *y, int ybs, int ycs, int b, int o, int oc, int oy, int ow, int seg,
                         real16_c v0, real16_c v1) {
  if (o >= oc) return;
  int x0 = seg * 32;
  __global real *dst = y + (size_t)b * ybs + (size_t)o * ycs + (size_t)oy * ow + x0;
  if (x0 + 32 <= ow) {
    vstore16(v0, 0, dst), vstore16(v1, 0, dst + 16);
    return;
  }
  real t[32];
  vstore16(v0, 0, t), vstore16(v1, 0, t + 16);
  for (int l = 0; l < 32 && x0 + l < ow; l++) dst[l] = t[l];
}

/* y[b][o][oy][ox] (strides ybs, ycs; rows ow long) = the direct convolution of xp (n x ic x hp x
 * wp, padded by conv2d_pad with wp >= 32 nseg + kw - 1) with wt (conv2d_direct_weights). One
 * work-item: 8 output channels x 32 columns of one output row, 16 vector accumulators; the
 * work-items of one row's segments and one block's rows follow each other, so that they share
 * the block's weights and the padded rows in cache. */
__kernel void conv2d_direct(__global real *y, __global const real *xp, __global const real *wt, int n, int ic,
                            int hp, int wp, int kh, int kw, int oc, int oh, int ow, int ybs, int ycs, int nseg) {
  int i = get_global_id(0), ocb = (oc + 7) / 8;
  if (i >= n * ocb * oh * nseg) return;
  int seg = i % nseg, oy = (i / nseg) % oh, ob = (i / (nseg * oh)) % ocb, b = i / (nseg * oh * ocb);
  __global const real *xr = xp + ((size_t)b * ic * hp + oy) * wp + seg * 32;
  __global const real *wr = wt + (size_t)ob * ic * kh * kw * 8;
  real16_c a00 = 0, a01 = 0, a10 = 0, a11 = 0, a20 = 0, a21 = 0, a30 = 0, a31 = 0;
  real16_c a40 = 0, a41 = 0, a50 = 0, a51 = 0, a60 = 0, a61 = 0, a70 = 0, a71 = 0;
  for (int ch = 0; ch < ic; ch++, xr += (size_t)hp * wp)
    for (int ky = 0; ky < kh; ky++) {
      __global const real *r = xr + (size_t)ky * wp;
      for (int kx = 0; kx < kw; kx++, wr += 8) {
        real16_c v0 = vload16(0, r + kx), v1 = vload16(0, r + kx + 16);
        DIRECT_STEP(wr, v0, v1)
      }
    }
  int o = ob * 8;
  direct_store(y, ybs, ycs, b, o + 0, oc, oy, ow, seg, a00, a01);
  direct_store(y, ybs, ycs, b, o + 1, oc, oy, ow, seg, a10, a11);
  direct_store(y, ybs, ycs, b, o + 2, oc, oy, ow, seg, a20, a21);
  direct_store(y, ybs, ycs, b, o + 3, oc, oy, ow, seg, a30, a31);
  direct_store(y, ybs, ycs, b, o + 4, oc, oy, ow, seg, a40, a41);
  direct_store(y, ybs, ycs, b, o + 5, oc, oy, ow, seg, a50, a51);
  direct_store(y, ybs, ycs, b, o + 6, oc, oy, ow, seg, a60, a61);
  direct_store(y, ybs, ycs, b, o + 7, oc, oy, ow, seg, a70, a71);
}

/* The direct convolution's weight gradient, in chunks of output rows: part[s][o][ch*kk + q] = the
 * sum over the rows r = (b, oy) of chunk s (rchunk each) of dy[o][b][oy][ox] xp[b][ch][oy+ky][ox+kx],
 * q = ky*kw + kx; dy is in the GEMM's (OC, N*P) layout (row o at o * np), xp padded by conv2d_pad.
 * One work-item per (8-channel block, ch, q, s), its neighbours sharing the block's dy rows: 16
 * columns at a time, one load of xp and eight of dy; channels past oc repeat the last and are not
 * stored. clcnn__reduce then adds the chunks in a fixed order. */
__kernel void conv2d_direct_wgrad(__global real *part, __global const real *xp, __global const real *dy, int ic,
                                  int hp, int wp, int kh, int kw, int oc, int oh, int ow, int np, int rows,
                                  int rchunk, int chunks) {
  int kk = kh * kw, ocb = (oc + 7) / 8, i = get_global_id(0);
  if (i >= ocb * ic * kk * chunks) return;
  int q = i % kk, ch = (i / kk) % ic, ob = (i / (kk * ic)) % ocb, s = i / (kk * ic * ocb);
  int ky = q / kw, kx = q % kw, r0 = s * rchunk, r1 = min(rows, r0 + rchunk), p = oh * ow;
  __global const real *d[8];
  for (int j = 0; j < 8; j++) d[j] = dy + (size_t)min(ob * 8 + j, oc - 1) * np;
  real16_c a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  real t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int r = r0; r < r1; r++) {
    int b = r / oh, oy = r % oh;
    __global const real *xr = xp + (((size_t)b * ic + ch) * hp + oy + ky) * wp + kx;
    size_t off = (size_t)b * p + (size_t)oy * ow;
    int x0 = 0;
    for (; x0 + 16 <= ow; x0 += 16) {
      real16_c xv = vload16(0, xr + x0);
      size_t o2 = off + x0;
      a0 = fma(vload16(0, d[0] + o2), xv, a0), a1 = fma(vload16(0, d[1] + o2), xv, a1);
      a2 = fma(vload16(0, d[2] + o2), xv, a2), a3 = fma(vload16(0, d[3] + o2), xv, a3);
      a4 = fma(vload16(0, d[4] + o2), xv, a4), a5 = fma(vload16(0, d[5] + o2), xv, a5);
      a6 = fma(vload16(0, d[6] + o2), xv, a6), a7 = fma(vload16(0, d[7] + o2), xv, a7);
    }
    for (; x0 < ow; x0++)
      for (int j = 0; j < 8; j++) t[j] += d[j][off + x0] * xr[x0];
  }
  real l[8][16];
  vstore16(a0, 0, l[0]), vstore16(a1, 0, l[1]), vstore16(a2, 0, l[2]), vstore16(a3, 0, l[3]);
  vstore16(a4, 0, l[4]), vstore16(a5, 0, l[5]), vstore16(a6, 0, l[6]), vstore16(a7, 0, l[7]);
  for (int j = 0; j < 8 && ob * 8 + j < oc; j++) {
    real sum = t[j];
    for (int v = 0; v < 16; v++) sum += l[j][v];
    part[((size_t)s * oc + ob * 8 + j) * ic * kk + (size_t)ch * kk + q] = sum;
  }
}
