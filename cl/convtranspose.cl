/* cl/convtranspose.cl - the transposed convolution's own kernels (torch.nn.ConvTranspose2d).
 * The rest of its work is conv2d.cl's: its forward is a conv's input gradient (a GEMM into
 * columns, then conv2d_col2im), its backward a conv's forward (conv2d_im2col of the output
 * gradient, then GEMMs); conv2d_pack and conv2d_unpack move x and dx between (N,C,P) and the
 * GEMMs' (C, N*P).
 *
 * y and dy are (N, OC, P), P = OH*OW; b and db (OC). */

/* y[n][o][q] += b[o]: the bias, after col2im has written y. One work-item per (n, o) plane. */
__kernel void convt_bias_add(__global real *y, __global const real *b, int n, int oc, int p) {
  int i = get_global_id(0);
  if (i >= n * oc) return;
  real add = b[i % oc];
  __global real *row = y + (size_t)i * p;
  for (int q = 0; q < p; q++) row[q] += add;
}

/* db[o] += the sum over n and q of dy[n][o][q]. One work-item per output channel, summing in
 * a fixed order (two backward passes give exactly twice one). */
__kernel void convt_bias_grad(__global real *db, __global const real *dy, int n, int oc, int p) {
  int o = get_global_id(0);
  if (o >= oc) return;
  real s = 0;
  for (int b = 0; b < n; b++) {
    __global const real *row = dy + ((size_t)b * oc + o) * p;
    for (int q = 0; q < p; q++) s += row[q];
  }
  db[o] += s;
}
