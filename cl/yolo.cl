/* cl/yolo.cl - the grid detection loss of lib/yolo.c (its header has the formula). x is the
 * net's output, N x (5 + K) x P (P = the grid's cells; channels: objectness logit, x, y, w, h,
 * then K class scores); t the targets, N x 6 x P (has an object, tx, ty, tw, th, class). Work-item q of `parts` takes cells q, q + parts, ... of the N * P, writes each one's
 * gradient dx = scale * dl/dx (scale: the loss's weight over N) and the sum of their losses to
 * part[q], in that order; loss_mean (cl/loss.cl) adds the parts in order. */

__kernel void yolo_loss(__global real *part, __global real *dx, __global const real *x, __global const real *t,
                        int cells, int parts, int p, int k, real scale, real coord, real noobj) {
  int q = get_global_id(0);
  if (q >= parts) return;
  real s = 0;
  for (int i = q; i < cells; i += parts) {
    int n = i / p, c = i % p;
    __global const real *xi = x + (size_t)n * (5 + k) * p + c;
    __global const real *ti = t + (size_t)n * 6 * p + c;
    __global real *di = dx + (size_t)n * (5 + k) * p + c;
    /* objectness: BCE with logits against 1 or 0, weighted 1 or noobj */
    real o = xi[0], obj = ti[0];
    real e = exp(-fabs(o)); /* in (0, 1]: never overflows */
    real sig = o >= 0 ? 1 / (1 + e) : e / (1 + e);
    real lam = obj > 0 ? (real)1 : noobj;
    s += lam * (fmax(o, (real)0) - o * obj + log1p(e));
    di[0] = scale * lam * (sig - obj);
    if (obj > 0) {
      /* the box: squared errors of x, y, w, h against tx, ty, sqrt(tw), sqrt(th), times coord */
      for (int j = 1; j <= 4; j++) {
        real tj = ti[(size_t)j * p];
        real d = xi[(size_t)j * p] - (j > 2 ? sqrt(tj) : tj);
        s += coord * d * d;
        di[(size_t)j * p] = scale * coord * 2 * d;
      }
      /* the class: softmax cross-entropy of the K scores */
      int cls = (int)ti[(size_t)5 * p];
      __global const real *z = xi + (size_t)5 * p;
      __global real *dz = di + (size_t)5 * p;
      real m = z[0];
      for (int j = 1; j < k; j++) m = fmax(m, z[(size_t)j * p]);
      real se = 0;
      for (int j = 0; j < k; j++) se += exp(z[(size_t)j * p] - m);
      s += log(se) + m - z[(size_t)cls * p];
      for (int j = 0; j < k; j++) dz[(size_t)j * p] = scale * (exp(z[(size_t)j * p] - m) / se - (j == cls ? 1 : 0));
    } else {
      for (int j = 1; j < 5 + k; j++) di[(size_t)j * p] = 0;
    }
  }
  part[q] = s;
}
