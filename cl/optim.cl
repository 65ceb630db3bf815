/* cl/optim.cl - torch.optim's update rules (single-tensor, foreach=False), one work-item per
 * element of one parameter p of n elements. g is p's gradient, only read; the state tensors are
 * updated in place. Every scalar that depends only on the hyperparameters and the step count
 * (1 - beta, bias corrections, step sizes, AdamW's decay factor) is computed by the host in
 * double, as PyTorch computes it in Python, and arrives in the context's precision.
 *
 * Contraction into fused multiply-adds is off so that each operation rounds as PyTorch's (and
 * the tests' C reference) do; these kernels are bound by memory traffic, not arithmetic. */
#pragma OPENCL FP_CONTRACT OFF

/* SGD without momentum: d = g + wd p; p -= lr d. */
__kernel void optim_sgd(__global real *p, __global const real *g, int n, real lr, real wd) {
  int i = get_global_id(0);
  if (i >= n) return;
  real x = p[i], d = g[i];
  if (wd != 0) d = d + wd * x;
  p[i] = x - lr * d;
}

/* SGD with momentum: d = g + wd p; buf = first ? d : momentum buf + (1 - dampening) d;
 * d = nesterov ? d + momentum buf : buf; p -= lr d. first: no step taken yet. */
__kernel void optim_sgd_momentum(__global real *p, __global const real *g, __global real *buf,
                                 int n, real lr, real wd, real momentum, real one_minus_dampening,
                                 int nesterov, int first) {
  int i = get_global_id(0);
  if (i >= n) return;
  real x = p[i], d = g[i];
  if (wd != 0) d = d + wd * x;
  real b = first ? d : momentum * buf[i] + one_minus_dampening * d;
  buf[i] = b;
  d = nesterov ? d + momentum * b : b;
  p[i] = x - lr * d;
}

/* Adam and AdamW: p *= decay (AdamW's 1 - lr wd; 1 for Adam); d = g + l2 p (Adam's wd; 0 for
 * AdamW); m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d d;
 * p -= step_size m / (sqrt(v) / bc2_sqrt + eps), step_size = lr / (1 - beta1^t),
 * bc2_sqrt = sqrt(1 - beta2^t). */
__kernel void optim_adam(__global real *p, __global const real *g, __global real *m,
                         __global real *v, int n, real decay, real l2, real beta1,
                         real one_minus_beta1, real beta2, real one_minus_beta2, real step_size,
                         real bc2_sqrt, real eps) {
  int i = get_global_id(0);
  if (i >= n) return;
  real x = p[i], d = g[i];
  if (decay != 1) x = x * decay;
  if (l2 != 0) d = d + l2 * x;
  real mi = beta1 * m[i] + one_minus_beta1 * d;
  real vi = beta2 * v[i] + one_minus_beta2 * d * d;
  m[i] = mi;
  v[i] = vi;
  real denom = sqrt(vi) / bc2_sqrt + eps;
  p[i] = x - step_size * mi / denom;
}

/* RMSprop, not centered: d = g + wd p; sq = alpha sq + (1 - alpha) d d; avg = sqrt(sq) + eps;
 * without momentum p -= lr d / avg. */
/* The step both variants share: d (with weight decay), square_avg updated, avg returned. */
static real rmsprop_avg(__global const real *g, __global real *sq, int i, real x, real wd, real alpha,
                        real one_minus_alpha, real eps, real *d_out) {
  real d = g[i];
  if (wd != 0) d = d + wd * x;
  real s = alpha * sq[i] + one_minus_alpha * d * d;
  sq[i] = s;
  *d_out = d;
  return sqrt(s) + eps;
}

__kernel void optim_rmsprop(__global real *p, __global const real *g, __global real *sq, int n,
                            real lr, real wd, real alpha, real one_minus_alpha, real eps) {
  int i = get_global_id(0);
  if (i >= n) return;
  real x = p[i], d;
  real avg = rmsprop_avg(g, sq, i, x, wd, alpha, one_minus_alpha, eps, &d);
  p[i] = x - lr * d / avg;
}

/* ... with momentum: buf = momentum buf + d / avg; p -= lr buf. */
__kernel void optim_rmsprop_momentum(__global real *p, __global const real *g, __global real *sq,
                                     __global real *buf, int n, real lr, real wd, real alpha,
                                     real one_minus_alpha, real eps, real momentum) {
  int i = get_global_id(0);
  if (i >= n) return;
  real x = p[i], d;
  real avg = rmsprop_avg(g, sq, i, x, wd, alpha, one_minus_alpha, eps, &d);
  real b = momentum * buf[i] + d / avg;
  buf[i] = b;
  p[i] = x - lr * b;
}
