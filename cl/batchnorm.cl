/* cl/batchnorm.cl - batch normalisation over N and the plane P = H*W of each channel
 * (BatchNorm2d; BatchNorm1d is P = 1). x, y, dx, dy are (N,C,P); per-channel vectors are (C).
 *
 * Training: mean and biased variance of the batch, xhat = (x - mean) * invstd,
 * y = gamma * xhat + beta; running statistics move by momentum, with the unbiased variance.
 * Evaluation: the running statistics instead. */

typedef real real16_b __attribute__((ext_vector_type(16)));

/* The sum of the 16 lanes of v, in a fixed order. */
static real lanes(real16_b v) {
  real t[16], s = 0;
  vstore16(v, 0, t);
  for (int l = 0; l < 16; l++) s += t[l];
  return s;
}

/* The statistics are reduced in two steps so that every core (or compute unit) has work: one
 * work-item per (chunk s of the batch, channel) writes partial sums, S = ceil(n / chunk) of
 * them per channel, into part (S x C each section), 16 lanes at a time along the plane; a
 * finishing kernel adds a channel's S parts in a fixed order. Two passes, mean then variance,
 * for accuracy. */
__kernel void batchnorm_part_sum(__global real *part, __global const real *x, int n, int c, int p, int chunk) {
  int i = get_global_id(0), S = (n + chunk - 1) / chunk;
  if (i >= S * c) return;
  int ch = i % c, s = i / c, i1 = min(n, (s + 1) * chunk);
  real16_b acc = 0;
  real tail = 0;
  for (int b = s * chunk; b < i1; b++) {
    __global const real *xp = x + ((size_t)b * c + ch) * p;
    int j = 0;
    for (; j + 16 <= p; j += 16) acc += vload16(0, xp + j);
    for (; j < p; j++) tail += xp[j];
  }
  part[i] = lanes(acc) + tail;
}

/* The mean of channel ch from the first section of part. */
static real part_mean(__global const real *part, int ch, int c, int S, real m) {
  real s = 0;
  for (int t = 0; t < S; t++) s += part[t * c + ch];
  return s / m;
}

__kernel void batchnorm_part_var(__global real *part, __global const real *x, int n, int c, int p, int chunk) {
  int i = get_global_id(0), S = (n + chunk - 1) / chunk;
  if (i >= S * c) return;
  int ch = i % c, s = i / c, i1 = min(n, (s + 1) * chunk);
  real mu = part_mean(part, ch, c, S, (real)n * p);
  real16_b acc = 0;
  real tail = 0;
  for (int b = s * chunk; b < i1; b++) {
    __global const real *xp = x + ((size_t)b * c + ch) * p;
    int j = 0;
    for (; j + 16 <= p; j += 16) {
      real16_b d = vload16(0, xp + j) - mu;
      acc = fma(d, d, acc);
    }
    for (; j < p; j++) tail += (xp[j] - mu) * (xp[j] - mu);
  }
  part[S * c + i] = lanes(acc) + tail;
}

/* One work-item per channel: the batch's mean and invstd, and the running statistics. */
__kernel void batchnorm_stats(__global real *mean, __global real *invstd, __global real *rmean,
                              __global real *rvar, __global const real *part, int n, int c, int p, int chunk,
                              real eps, real momentum) {
  int ch = get_global_id(0), S = (n + chunk - 1) / chunk;
  if (ch >= c) return;
  real m = (real)n * p, mu = part_mean(part, ch, c, S, m), v = 0;
  for (int t = 0; t < S; t++) v += part[(S + t) * c + ch];
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

/* Partial sums for the parameter gradients, one work-item per (chunk of the batch, channel):
 * part[s][ch] = sum dy, part[S + s][ch] = sum dy * xhat. */
__kernel void batchnorm_part_grad(__global real *part, __global const real *dy, __global const real *x,
                                  __global const real *mean, __global const real *invstd, int n, int c, int p,
                                  int chunk) {
  int i = get_global_id(0), S = (n + chunk - 1) / chunk;
  if (i >= S * c) return;
  int ch = i % c, s = i / c, i1 = min(n, (s + 1) * chunk);
  real mu = mean[ch], is = invstd[ch];
  real16_b a1 = 0, a2 = 0;
  real t1 = 0, t2 = 0;
  for (int b = s * chunk; b < i1; b++) {
    size_t off = ((size_t)b * c + ch) * p;
    __global const real *dp = dy + off, *xp = x + off;
    int j = 0;
    for (; j + 16 <= p; j += 16) {
      real16_b d = vload16(0, dp + j);
      a1 += d;
      a2 = fma(d, (vload16(0, xp + j) - mu) * is, a2);
    }
    for (; j < p; j++) t1 += dp[j], t2 += dp[j] * (xp[j] - mu) * is;
  }
  part[i] = lanes(a1) + t1;
  part[S * c + i] = lanes(a2) + t2;
}

/* One work-item per channel: sums[ch] = sum dy, sums[c + ch] = sum dy * xhat, from the parts;
 * the parameter gradients accumulate them (dbeta += sum dy, dgamma += sum dy * xhat). */
__kernel void batchnorm_param_grad(__global real *dgamma, __global real *dbeta, __global real *sums,
                                   __global const real *part, int n, int c, int chunk) {
  int ch = get_global_id(0), S = (n + chunk - 1) / chunk;
  if (ch >= c) return;
  real sdy = 0, sdyx = 0;
  for (int t = 0; t < S; t++) sdy += part[t * c + ch], sdyx += part[(S + t) * c + ch];
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
