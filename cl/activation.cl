/* cl/activation.cl - elementwise activations, forward and backward, over n elements.
 * Backward writes dx with '='. relu, sigmoid and tanh differentiate through their output y
 * (as PyTorch does); leaky relu through its input x. */

__kernel void relu_forward(__global real *y, __global const real *x, int n) {
  int i = get_global_id(0);
  if (i < n) y[i] = x[i] > 0 ? x[i] : 0;
}
__kernel void relu_backward(__global real *dx, __global const real *dy, __global const real *y,
                            int n) {
  int i = get_global_id(0);
  if (i < n) dx[i] = y[i] > 0 ? dy[i] : 0;
}

__kernel void leaky_relu_forward(__global real *y, __global const real *x, int n, real slope) {
  int i = get_global_id(0);
  if (i < n) y[i] = x[i] > 0 ? x[i] : x[i] * slope;
}
__kernel void leaky_relu_backward(__global real *dx, __global const real *dy,
                                  __global const real *x, int n, real slope) {
  int i = get_global_id(0);
  if (i < n) dx[i] = x[i] > 0 ? dy[i] : dy[i] * slope;
}

/* sigmoid(x) = 1 / (1 + exp(-x)), written so that neither branch overflows. */
__kernel void sigmoid_forward(__global real *y, __global const real *x, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  real v = x[i];
  if (v >= 0) {
    y[i] = 1 / (1 + exp(-v));
  } else {
    real e = exp(v);
    y[i] = e / (1 + e);
  }
}
__kernel void sigmoid_backward(__global real *dx, __global const real *dy, __global const real *y,
                               int n) {
  int i = get_global_id(0);
  if (i < n) dx[i] = dy[i] * y[i] * (1 - y[i]);
}

__kernel void tanh_forward(__global real *y, __global const real *x, int n) {
  int i = get_global_id(0);
  if (i < n) y[i] = tanh(x[i]);
}
__kernel void tanh_backward(__global real *dx, __global const real *dy, __global const real *y,
                            int n) {
  int i = get_global_id(0);
  if (i < n) dx[i] = dy[i] * (1 - y[i] * y[i]);
}
