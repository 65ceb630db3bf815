/* cl/dropout.cl - the counter-based generator's kernels: inverted dropout, whose mask element i
 * of a step depends only on (seed, counter, layer, i), and normal noise, whose element i depends
 * only on (key, i); both reproducible and with no generator state on the device. */

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

/* y[i] ~ N(0, 1), by Box-Muller on the pair (2j, 2j+1) (work-item j writes both): u1 in (0, 1]
 * and u2 in [0, 1) from 24 bits each of mix64(key + G * (i + 1)) for i = 2j and 2j+1, then
 * y[2j] = r cos(2 pi u2), y[2j+1] = r sin(2 pi u2), r = sqrt(-2 log u1). */
__kernel void normal_fill(__global real *y, int n, ulong key) {
  int j = get_global_id(0), i = 2 * j;
  if (i >= n) return;
  ulong h1 = mix64(key + 0x9e3779b97f4a7c15UL * (ulong)(i + 1));
  ulong h2 = mix64(key + 0x9e3779b97f4a7c15UL * (ulong)(i + 2));
  real u1 = ((real)(h1 >> 40) + 1) * (real)(1.0 / 16777216.0);
  real u2 = (real)(h2 >> 40) * (real)(1.0 / 16777216.0);
  real r = sqrt((real)-2 * log(u1)), a = (real)6.283185307179586 * u2;
  y[i] = r * cos(a);
  if (i + 1 < n) y[i + 1] = r * sin(a);
}
