/* cl/util.cl - small kernels that several layers share. `real` is float or double
 * (the prelude the library prepends defines it). */

/* y (N,C,P) += b (C) broadcast: a layer's bias. */
__kernel void bias_add(__global real *y, __global const real *b, int n, int c, int p) {
  int i = get_global_id(0);
  if (i >= n * c * p) return;
  y[i] += b[(i / p) % c];
}

/* db (C) += sum over n and p of dy (N,C,P): the bias gradient (accumulates). */
__kernel void bias_grad(__global real *db, __global const real *dy, int n, int c, int p) {
  int ch = get_global_id(0);
  if (ch >= c) return;
  real s = 0;
  for (int i = 0; i < n; i++) {
    __global const real *row = dy + ((size_t)i * c + ch) * p;
    for (int j = 0; j < p; j++) s += row[j];
  }
  db[ch] += s;
}

/* y = x (acc 0) or y += x (acc 1), n reals: the gradient through a view, the second gradient of
 * a tensor that several nodes read, a copy in evaluation. */
__kernel void copy_add(__global real *y, __global const real *x, int n, int acc) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[i] = acc ? y[i] + x[i] : x[i];
}
