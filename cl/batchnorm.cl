/* cl/batchnorm.cl - batch normalisation over N and the plane P = H*W of each channel
 * (BatchNorm2d; BatchNorm1d is P = 1). x, y, dx, dy are (N,C,P); per-channel vectors are (C).
 *
 * Training: mean and biased variance of the batch, xhat = (x - mean) * invstd,
 * y = gamma * xhat + beta; running statistics move by momentum, with the unbiased variance.
 * Evaluation: the running statistics instead. */

/* One work-item per channel: two passes (mean, then variance) for accuracy. */
__kernel void batchnorm_stats(__global real *mean, __global real *invstd, __global real *rmean,
                              __global real *rvar, __global const real *x, int n, int c, int p,
                              real eps, real momentum) {
  int ch = get_global_id(0);
  if (ch >= c) return;
  real m = n * p, s = 0, v = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p; j++) s += x[((size_t)i * c + ch) * p + j];
  real mu = s / m;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p; j++) {
      real d = x[((size_t)i * c + ch) * p + j] - mu;
      v += d * d;
    }
  real var = v / m;
  mean[ch] = mu;
  invstd[ch] = 1 / sqrt(var + eps);
  rmean[ch] = (1 - momentum) * rmean[ch] + momentum * mu;
  rvar[ch] = (1 - momentum) * rvar[ch] + momentum * (m > 1 ? v / (m - 1) : var);
}

/* y = gamma * (x - mean) * invstd + beta, with the batch's (training) or the running
 * (evaluation: mean = running_mean, invstd computed from running_var) statistics. One
 * work-item per (n, c) plane. */
__kernel void batchnorm_forward(__global real *y, __global const real *x, __global const real *mean,
                                __global const real *invstd, __global const real *gamma,
                                __global const real *beta, int n, int c, int p) {
  int i = get_global_id(0);
  if (i >= n * c) return;
  int ch = i % c;
  real g = gamma[ch] * invstd[ch], off = beta[ch] - g * mean[ch];
  __global const real *src = x + (size_t)i * p;
  __global real *dst = y + (size_t)i * p;
  for (int j = 0; j < p; j++) dst[j] = g * src[j] + off;
}

/* invstd = 1 / sqrt(running_var + eps), for evaluation. */
__kernel void batchnorm_eval_invstd(__global real *invstd, __global const real *rvar, int c, real eps) {
  int ch = get_global_id(0);
  if (ch < c) invstd[ch] = 1 / sqrt(rvar[ch] + eps);
}

/* One work-item per channel: sums[ch] = sum dy, sums[c + ch] = sum dy * xhat; the parameter
 * gradients accumulate them (dbeta += sum dy, dgamma += sum dy * xhat). */
__kernel void batchnorm_param_grad(__global real *dgamma, __global real *dbeta, __global real *sums,
                                   __global const real *dy, __global const real *x,
                                   __global const real *mean, __global const real *invstd, int n,
                                   int c, int p) {
  int ch = get_global_id(0);
  if (ch >= c) return;
  real sdy = 0, sdyx = 0, mu = mean[ch], is = invstd[ch];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p; j++) {
      size_t k = ((size_t)i * c + ch) * p + j;
      sdy += dy[k];
      sdyx += dy[k] * (x[k] - mu) * is;
    }
  sums[ch] = sdy;
  sums[c + ch] = sdyx;
  dbeta[ch] += sdy;
  dgamma[ch] += sdyx;
}

/* Training: dx = gamma * invstd / M * (M * dy - sum dy - xhat * sum dy * xhat), M = N*P.
 * Evaluation (training == 0): the statistics are constants, dx = gamma * invstd * dy.
 * One work-item per (n, c) plane. */
__kernel void batchnorm_backward(__global real *dx, __global const real *dy, __global const real *x,
                                 __global const real *mean, __global const real *invstd,
                                 __global const real *gamma, __global const real *sums, int n,
                                 int c, int p, int training) {
  int i = get_global_id(0);
  if (i >= n * c) return;
  int ch = i % c;
  real g = gamma[ch] * invstd[ch], m = n * p, mu = mean[ch], is = invstd[ch];
  real s1 = training ? sums[ch] / m : 0, s2 = training ? sums[c + ch] / m : 0;
  __global const real *d = dy + (size_t)i * p, *xs = x + (size_t)i * p;
  __global real *o = dx + (size_t)i * p;
  for (int j = 0; j < p; j++) o[j] = g * (d[j] - s1 - (xs[j] - mu) * is * s2);
}
