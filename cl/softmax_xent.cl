/* cl/softmax_xent.cl - softmax fused with cross-entropy over integer labels, mean over the batch.
 *
 * logits (N,K); labels (N) in [0,K); losses (N); dlogits (N,K) = (softmax - onehot) / N.
 * Stable: exp(z - max z), and loss_n = log(sum exp(z - m)) + m - z[label]. */
__kernel void softmax_xent_forward_backward(__global real *losses, __global real *hits, __global real *dlogits,
                                            __global const real *logits,
                                            __global const int *labels, int n, int k) {
  int i = get_global_id(0);
  if (i >= n) return;
  __global const real *z = logits + (size_t)i * k;
  __global real *dz = dlogits + (size_t)i * k;
  real m = z[0];
  int best = 0; /* the prediction, torch.argmax's: the first NaN, else the first largest logit */
  for (int j = 1; j < k; j++) {
    if (z[j] > z[best] || (isnan(z[j]) && !isnan(z[best]))) best = j;
    m = fmax(m, z[j]);
  }
  real s = 0;
  for (int j = 0; j < k; j++) s += exp(z[j] - m);
  int t = labels[i];
  if (t < 0 || t >= k) { /* checked on the host: only a label changed since */
    losses[i] = hits[i] = NAN;
    for (int j = 0; j < k; j++) dz[j] = NAN;
    return;
  }
  losses[i] = log(s) + m - z[t];
  hits[i] = best == t;
  real inv = 1 / (s * n);
  for (int j = 0; j < k; j++) dz[j] = exp(z[j] - m) * inv - (j == t ? (real)1 / n : 0);
}

/* loss[0] = mean of losses (N); the running sums stats[0] += sum of losses, stats[1] += correct
 * predictions, stats[2] += N. One work-item: N is a batch, small. */
__kernel void softmax_xent_mean(__global real *loss, __global real *stats, __global const real *losses,
                                __global const real *hits, int n) {
  if (get_global_id(0) != 0) return;
  real s = 0, h = 0;
  for (int i = 0; i < n; i++) s += losses[i], h += hits[i];
  loss[0] = s / n;
  stats[0] += s;
  stats[1] += h;
  stats[2] += n;
}

/* Per-position cross-entropy (torch.nn.CrossEntropyLoss with ignore_index, mean reduction):
 * logits (N,C,P), labels (N,P) in [0,C) or equal to ignore. Position i of the N*P: losses[i],
 * 0 where ignored, hits[i] whether the first largest logit (a NaN counts as the largest) is the
 * label, 0 where ignored, and dlogits = scale * (softmax - onehot), 0 where ignored; scale is the
 * loss's weight over the number of positions not ignored (the host counts them). */
__kernel void xent_pixels(__global real *losses, __global real *hits, __global real *dlogits,
                          __global const real *logits, __global const int *labels, int np, int c, int p,
                          int ignore, real scale) {
  int i = get_global_id(0);
  if (i >= np) return;
  size_t base = (size_t)(i / p) * c * p + i % p;
  __global const real *z = logits + base;
  __global real *dz = dlogits + base;
  int t = labels[i];
  if (t != ignore && (t < 0 || t >= c)) { /* checked on the host: only a label changed since */
    losses[i] = hits[i] = NAN;
    for (int j = 0; j < c; j++) dz[(size_t)j * p] = NAN;
    return;
  }
  if (t == ignore) {
    losses[i] = 0;
    hits[i] = 0;
    for (int j = 0; j < c; j++) dz[(size_t)j * p] = 0;
    return;
  }
  real m = z[0], top = z[0];
  int best = 0;
  for (int j = 1; j < c; j++) {
    real v = z[(size_t)j * p];
    if (v > top || (isnan(v) && !isnan(top))) best = j, top = v;
    m = fmax(m, v);
  }
  /* one exp per class: dz holds exp(z - m) until the sum is known (z[t] is read first, so
   * dz may even be z's own buffer) */
  real zt = z[(size_t)t * p], s = 0;
  for (int j = 0; j < c; j++) {
    real e = exp(z[(size_t)j * p] - m);
    dz[(size_t)j * p] = e;
    s += e;
  }
  losses[i] = log(s) + m - zt;
  hits[i] = best == t;
  real r = scale / s;
  for (int j = 0; j < c; j++) dz[(size_t)j * p] = dz[(size_t)j * p] * r - (j == t ? scale : 0);
}

/* loss[0] = the sum of the np losses times inv (one over the positions not ignored). When
 * samples >= 0 (one label per sample), the running sums as softmax_xent_mean's, over the samples
 * not ignored: stats[0] += their losses, stats[1] += their right predictions, stats[2] += samples. */
__kernel void xent_pixels_mean(__global real *loss, __global real *stats, __global const real *losses,
                               __global const real *hits, int np, real inv, int samples) {
  if (get_global_id(0) != 0) return;
  real s = 0, h = 0;
  for (int i = 0; i < np; i++) s += losses[i], h += hits[i];
  loss[0] = s * inv;
  if (samples < 0) return;
  stats[0] += s;
  stats[1] += h;
  stats[2] += samples;
}
