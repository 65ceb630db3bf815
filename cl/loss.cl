/* cl/loss.cl - elementwise losses with mean reduction (torch.nn.BCEWithLogitsLoss, MSELoss,
 * SmoothL1Loss) over the m = N*C*H*W elements of a batch: x the input, t the targets.
 *
 * Each loss kernel runs `parts` work-items; work-item p takes elements p, p + parts, p + 2 parts,
 * ... (neighbouring work-items read neighbouring elements), writes each element's gradient
 * dx[i] = scale * dl_i/dx_i (scale: the loss's weight over m) and the sum of its elements' losses,
 * in that order, to part[p]. loss_mean then adds the parts in order: the same sum on every run. */

__kernel void bce_loss(__global real *part, __global real *dx, __global const real *x, __global const real *t,
                       int m, int parts, real scale) {
  int p = get_global_id(0);
  if (p >= parts) return;
  real s = 0;
  for (long i = p; i < m; i += parts) {
    real v = x[i], y = t[i];
    real e = exp(-fabs(v)); /* in (0, 1]: never overflows */
    s += fmax(v, (real)0) - v * y + log1p(e);
    real sig = v >= 0 ? 1 / (1 + e) : e / (1 + e);
    dx[i] = scale * (sig - y);
  }
  part[p] = s;
}

__kernel void mse_loss(__global real *part, __global real *dx, __global const real *x, __global const real *t,
                       int m, int parts, real scale) {
  int p = get_global_id(0);
  if (p >= parts) return;
  real s = 0;
  for (long i = p; i < m; i += parts) {
    real d = x[i] - t[i];
    s += d * d;
    dx[i] = scale * 2 * d;
  }
  part[p] = s;
}

/* beta > 0: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; the gradient d / beta between
 * -beta and beta, -1 at and below -beta, 1 at and above beta (PyTorch's rule). beta == 0: |d|,
 * gradient sign(d), 0 at d == 0 (PyTorch computes it as l1_loss). */
__kernel void smoothl1_loss(__global real *part, __global real *dx, __global const real *x, __global const real *t,
                            int m, int parts, real scale, real beta) {
  int p = get_global_id(0);
  if (p >= parts) return;
  real s = 0;
  for (long i = p; i < m; i += parts) {
    real d = x[i] - t[i], a = fabs(d), g;
    if (beta == 0) {
      s += a;
      g = d > 0 ? 1 : d < 0 ? -1 : 0;
    } else {
      s += a < beta ? (real)0.5 * d * d / beta : a - (real)0.5 * beta;
      g = d <= -beta ? -1 : d >= beta ? 1 : d / beta;
    }
    dx[i] = scale * g;
  }
  part[p] = s;
}

/* loss[0] = (part[0] + ... + part[parts-1]) / m, added in that order by one work-item. */
__kernel void loss_mean(__global real *loss, __global const real *part, int parts, int m) {
  if (get_global_id(0) != 0) return;
  real s = 0;
  for (int i = 0; i < parts; i++) s += part[i];
  loss[0] = s / m;
}
