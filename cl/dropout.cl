/* cl/dropout.cl - inverted dropout with a counter-based generator: element i of the mask of a
 * step depends only on (seed, counter, layer, i), so the masks are reproducible and need no
 * generator state on the device. */

static ulong mix64(ulong z) { /* splitmix64's finaliser */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
  return z ^ (z >> 31);
}

/* Training: mask[i] = 0 with probability p, else 1/(1-p); y = x * mask. */
__kernel void dropout_forward(__global real *y, __global real *mask, __global const real *x, int n,
                              real p, real scale, ulong key) {
  int i = get_global_id(0);
  if (i >= n) return;
  ulong h = mix64(key + 0x9e3779b97f4a7c15UL * (ulong)(i + 1));
  real u = (real)(h >> 40) * (real)(1.0 / 16777216.0); /* 24 bits, exact in float */
  real m = u < p ? 0 : scale;
  mask[i] = m;
  y[i] = x[i] * m;
}

__kernel void dropout_backward(__global real *dx, __global const real *dy, __global const real *mask,
                               int n) {
  int i = get_global_id(0);
  if (i < n) dx[i] = dy[i] * mask[i];
}
