/* tests/test_gan.c - what a GAN needs from the library: noise drawn on the device
 * (clcnn_net_forward_noise), one net reading another's output and sending the gradient back
 * (clcnn_net_forward_net, clcnn_net_backward_net), and the Frechet distance (clcnn_frechet_distance).
 *
 *   - noise: every element against a host reference of the same formula (splitmix64's finaliser on
 *     key + golden * (i + 1), Box-Muller on pairs) in double (|a-b| <= 1e-12 + 1e-10|b|) and float
 *     (1e-5|b| + 1e-5 max|b|), on odd and even element counts; a smaller batch with the same key is
 *     the first samples of a larger one, exactly; another key differs; 25,600 draws have mean 0
 *     and variance 1 within 4.5 standard errors;
 *   - a small generator (linear, batch norm, reshape, transposed conv, tanh) and discriminator (conv,
 *     leaky relu, batch norm, flatten, linear, BCE with logits) in double: the discriminator on the
 *     generator's output through forward_net is bit for bit the same as through a host copy, and
 *     backward_net gives the generator bit for bit the gradients of backward_from with a host copy
 *     of the discriminator's input gradient;
 *   - a two-step GAN run (the first step trains both with Adam, as clcnn-gan does): at the second
 *     step the generator's gradients of BCE(D(G(z)), 1) against central differences through the
 *     discriminator (h = 1e-6, |a-n| <= 1e-7 + 1e-6|n|), on every element of each parameter up to 64
 *     and 64 random ones of larger ones;
 *   - misuse: every refusal of the three calls with its words;
 *   - the Frechet distance: zero for equal Gaussians, the closed forms for diagonal and for 2 x 2
 *     covariances that do not commute (tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))), a rotation of both
 *     leaving it unchanged, bad input refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"
#include "testutil.h"

static clcnn_ctx *ctx64, *ctx32;

/* ---- the noise's reference ---- */
static uint64_t fin(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static void ref_noise(uint64_t key, size_t n, double *y) {
  for (size_t i = 0; i < n; i += 2) {
    uint64_t h1 = fin(key + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
    uint64_t h2 = fin(key + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 2));
    double u1 = ((double)(h1 >> 40) + 1) / 16777216.0, u2 = (double)(h2 >> 40) / 16777216.0;
    double r = sqrt(-2 * log(u1)), a = 6.283185307179586 * u2;
    y[i] = r * cos(a);
    if (i + 1 < n) y[i + 1] = r * sin(a);
  }
}

/* the net's input after a forward_noise of n samples */
static int noise_of(clcnn_ctx *cx, clcnn_net *net, int n, uint64_t key, double *y) {
  size_t m = (size_t)n * clcnn_net_input_size(net);
  void *h = xcalloc(m, clcnn_ctx_elem_size(cx));
  int ok = 0;
  CALL(cx, "noise", clcnn_net_forward_noise(net, n, key));
  CALL(cx, "noise", clcnn_net_read_tensor(net, clcnn_net_input(net), h));
  from_host(cx, h, y, m);
  ok = 1;
done:
  free(h);
  return ok;
}

static void test_noise(clcnn_ctx *cx) {
  const char *pn = cx == ctx64 ? "double" : "float";
  clcnn_net *net = NULL;
  char err[512];
  /* 7 inputs: odd and even totals over batches 1..5 */
  if (clcnn_net_from_text(cx, "input 7 1 1\nlinear 3\n", "noise", 64, &net, err, sizeof err)) {
    tap_ok(0, "%s: noise net: %s", pn, err);
    return;
  }
  double *y = dalloc(64 * 7), *want = dalloc(64 * 7), *z = dalloc(64 * 7);
  for (int n = 1; n <= 5; n += 2) {
    uint64_t key = 0x1234567890abcdefull + n;
    if (!noise_of(cx, net, n, key, y)) goto done;
    ref_noise(key, (size_t)n * 7, want);
    double e;
    int ok = cx == ctx64 ? close_all(y, want, (size_t)n * 7, F64_ABS, F64_REL, &e)
                         : close_all(y, want, (size_t)n * 7, F32_SCALE * max_abs(want, (size_t)n * 7), F32_REL, &e);
    tap_ok(ok, "%s: forward_noise, batch %d (%d elements): the reference's N(0,1) draws (max err %.3g)", pn, n, n * 7, e);
  }
  /* a batch is the prefix of a larger one with the same key; another key differs */
  if (!noise_of(cx, net, 5, 99, y) || !noise_of(cx, net, 2, 99, z)) goto done;
  tap_ok(!memcmp(y, z, 14 * sizeof(double)), "%s: 2 samples of key 99 are the first 2 of 5", pn);
  if (!noise_of(cx, net, 2, 100, z)) goto done;
  int differ = 0;
  for (int i = 0; i < 14; i++) differ += y[i] != z[i];
  tap_ok(differ == 14, "%s: key 100 draws other numbers (%d of 14 differ)", pn, differ);
  /* moments of 25,600 draws */
  clcnn_net_destroy(net);
  net = NULL;
  if (clcnn_net_from_text(cx, "input 100 1 1\nlinear 1\n", "noise", 64, &net, err, sizeof err)) {
    tap_ok(0, "%s: noise net: %s", pn, err);
    goto done;
  }
  double *big = dalloc(6400), s1 = 0, s2 = 0;
  for (int k = 0; k < 4; k++) {
    if (!noise_of(cx, net, 64, 1000 + k, big)) {
      free(big);
      goto done;
    }
    for (int i = 0; i < 6400; i++) s1 += big[i], s2 += big[i] * big[i];
  }
  free(big);
  double N = 25600, mean = s1 / N, var = s2 / N - mean * mean;
  tap_ok(fabs(mean) < 4.5 / sqrt(N) && fabs(var - 1) < 4.5 * sqrt(2 / N),
         "%s: 25,600 draws: mean %.4f, variance %.4f (N(0, 1) within 4.5 standard errors)", pn, mean, var);
done:
  clcnn_net_destroy(net);
  free(y), free(want), free(z);
}

/* ---- a generator and a discriminator ---- */
static const char *gen_text = "input 3 1 1\n"
                              "fc = linear 32 bias=0\n"
                              "bn = batchnorm\n"
                              "r = relu\n"
                              "m = reshape 2 4 4\n"
                              "up = convtranspose 1 kernel=4 stride=2 pad=1\n" /* 1 x 8 x 8 */
                              "img = tanh\n";
static const char *disc_text = "input 1 8 8\n"
                               "c = conv 4 kernel=3 stride=2 pad=1\n" /* 4 x 4 x 4 */
                               "a = leakyrelu slope=0.2\n"
                               "n = batchnorm\n"
                               "f = flatten\n"
                               "logit = linear 1\n"
                               "loss = bce(logit)\n";
enum { B = 6 };

static int make_pair(clcnn_ctx *cx, clcnn_net **g, clcnn_net **d) {
  char err[512];
  *g = *d = NULL;
  if (clcnn_net_from_text(cx, gen_text, "gen", B, g, err, sizeof err) ||
      clcnn_net_from_text(cx, disc_text, "disc", B, d, err, sizeof err)) {
    tap_ok(0, "the GAN pair: %s", err);
    return 0;
  }
  clcnn_net_set_input_grad(*g, 0);
  clcnn_net_init_params(*g, 3);
  clcnn_net_init_params(*d, 4);
  return 1;
}

static clcnn_tensor *loss_of(clcnn_net *d) {
  clcnn_loss_info li;
  return clcnn_net_loss_info(d, 0, &li) ? NULL : li.loss;
}

/* every parameter gradient of net, in one array (count in *n) */
static double *all_grads(clcnn_ctx *cx, clcnn_net *net, size_t *n) {
  size_t total = 0;
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info pi;
    clcnn_net_param_info(net, i, &pi);
    total += pi.count;
  }
  double *all = dalloc(total), *p = all;
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info pi;
    clcnn_net_param_info(net, i, &pi);
    void *h = xcalloc(pi.count, clcnn_ctx_elem_size(cx));
    clcnn_net_grad_read(net, i, h);
    from_host(cx, h, p, pi.count);
    free(h);
    p += pi.count;
  }
  *n = total;
  return all;
}

static void test_links(void) {
  clcnn_ctx *cx = ctx64;
  clcnn_net *g, *d;
  if (!make_pair(cx, &g, &d)) return;
  clcnn_tensor *loss = loss_of(d);
  double ones[B], out1[B], out2[B], *img = dalloc(B * 64), *dx = dalloc(B * 64);
  for (int i = 0; i < B; i++) ones[i] = 1;
  double *ga = NULL, *gb = NULL;
  size_t na, nb;
  CALL(cx, "links", clcnn_net_forward_noise(g, 5, 7));
  CALL(cx, "links", clcnn_net_read_output(g, img));
  CALL(cx, "links", clcnn_net_forward_net(d, g));
  CALL(cx, "links", clcnn_net_read_output(d, out1));
  CALL(cx, "links", clcnn_net_forward(d, img, 5));
  CALL(cx, "links", clcnn_net_read_output(d, out2));
  tap_ok(!memcmp(out1, out2, 5 * sizeof(double)), "forward_net: the discriminator's logits are those of a host copy");
  /* the gradient path: backward_from with a host copy of D's input gradient, then backward_net,
   * each after its own forward of the same noise (a backward may reuse the forward's buffers) */
  for (int round = 0; round < 2; round++) {
    CALL(cx, "links", clcnn_net_forward_noise(g, 5, 7));
    CALL(cx, "links", clcnn_net_forward_net(d, g));
    CALL(cx, "links", clcnn_net_set_target(d, loss, ones));
    CALL(cx, "links", clcnn_net_backward_losses(d));
    CALL(cx, "links", clcnn_net_zero_grad(g));
    if (round == 0) {
      CALL(cx, "links", clcnn_net_read_input_grad(d, dx));
      CALL(cx, "links", clcnn_net_backward_from(g, dx));
      gb = all_grads(cx, g, &nb);
    } else {
      CALL(cx, "links", clcnn_net_backward_net(g, d));
      ga = all_grads(cx, g, &na);
    }
  }
  double gmax = max_abs(ga, na);
  double diff = 0;
  for (size_t i = 0; i < na && na == nb; i++) diff = fmax(diff, fabs(ga[i] - gb[i]));
  tap_ok(na == nb && !memcmp(ga, gb, na * sizeof(double)) && gmax > 0,
         "backward_net: the generator's %zu gradients are those of backward_from (largest %.3g, max diff %.3g)", na, gmax, diff);
done:
  free(ga), free(gb), free(img), free(dx);
  clcnn_net_destroy(g), clcnn_net_destroy(d);
}

/* D's loss BCE(D(G(z)), targets) for noise key (blocking) */
static int gan_loss(clcnn_ctx *cx, clcnn_net *g, clcnn_net *d, uint64_t key, const double *targets, double *l) {
  CALL(cx, "gan loss", clcnn_net_forward_noise(g, B, key));
  CALL(cx, "gan loss", clcnn_net_forward_net(d, g));
  CALL(cx, "gan loss", clcnn_net_set_target(d, loss_of(d), targets));
  CALL(cx, "gan loss", clcnn_net_backward_losses(d));
  CALL(cx, "gan loss", clcnn_net_loss(d, l));
  return 1;
done:
  return 0;
}

static void test_fd(void) {
  clcnn_ctx *cx = ctx64;
  clcnn_net *g, *d;
  clcnn_optim *og = NULL, *od = NULL;
  if (!make_pair(cx, &g, &d)) return;
  clcnn_tensor *loss = loss_of(d);
  double ones[B], zeros[B], *real = dalloc(B * 64), l;
  for (int i = 0; i < B; i++) ones[i] = 1, zeros[i] = 0;
  for (int i = 0; i < B * 64; i++) real[i] = rndf(-1, 1);
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.lr = 0.01, p.beta1 = 0.5;
  CALL(cx, "fd", clcnn_optim_create(g, &p, &og));
  CALL(cx, "fd", clcnn_optim_create(d, &p, &od));
  /* step 1, as clcnn-gan takes it */
  CALL(cx, "fd", clcnn_net_forward_noise(g, B, 11));
  CALL(cx, "fd", clcnn_net_zero_grad(d));
  CALL(cx, "fd", clcnn_net_forward(d, real, B));
  CALL(cx, "fd", clcnn_net_set_target(d, loss, ones));
  CALL(cx, "fd", clcnn_net_backward_losses(d));
  CALL(cx, "fd", clcnn_net_forward_net(d, g));
  CALL(cx, "fd", clcnn_net_set_target(d, loss, zeros));
  CALL(cx, "fd", clcnn_net_backward_losses(d));
  CALL(cx, "fd", clcnn_optim_step(od));
  CALL(cx, "fd", clcnn_net_zero_grad(g));
  CALL(cx, "fd", clcnn_net_forward_net(d, g));
  CALL(cx, "fd", clcnn_net_set_target(d, loss, ones));
  CALL(cx, "fd", clcnn_net_backward_losses(d));
  CALL(cx, "fd", clcnn_net_backward_net(g, d));
  CALL(cx, "fd", clcnn_optim_step(og));
  /* step 2: the generator's gradients */
  CALL(cx, "fd", clcnn_net_zero_grad(g));
  if (!gan_loss(cx, g, d, 12, ones, &l)) goto done;
  CALL(cx, "fd", clcnn_net_backward_net(g, d));
  for (int i = 0; i < clcnn_net_num_params(g); i++) {
    clcnn_param_info pi;
    clcnn_net_param_info(g, i, &pi);
    double *w = dalloc(pi.count), *ana = dalloc(pi.count), *hw = NULL;
    size_t *idx = xcalloc(pi.count, sizeof *idx);
    void *h = xcalloc(pi.count, sizeof(double));
    clcnn_net_param_read(g, i, h);
    from_host(cx, h, w, pi.count);
    clcnn_net_grad_read(g, i, h);
    from_host(cx, h, ana, pi.count);
    size_t k = pick(idx, pi.count);
    int ok = 1;
    double m = 0, amax = max_abs(ana, pi.count);
    for (size_t s = 0; s < k && ok >= 0; s++) {
      size_t j = idx[s];
      double keep = w[j], lp, lm;
      w[j] = keep + FD_H;
      hw = to_host(cx, w, pi.count);
      if (clcnn_net_param_write(g, i, hw) || !gan_loss(cx, g, d, 12, ones, &lp)) ok = -1;
      free(hw);
      w[j] = keep - FD_H;
      hw = to_host(cx, w, pi.count);
      if (ok >= 0 && (clcnn_net_param_write(g, i, hw) || !gan_loss(cx, g, d, 12, ones, &lm))) ok = -1;
      free(hw);
      w[j] = keep;
      if (ok < 0) break;
      double num = (lp - lm) / (2 * FD_H), e = fabs(ana[j] - num);
      if (!(e <= FD_ABS + FD_REL * fabs(num))) {
        if (ok) tap_diag("%s: first miss at %zu: analytic %.12g, numeric %.12g", pi.name, j, ana[j], num);
        ok = 0;
      }
      if (isnan(e) || e > m) m = e;
    }
    hw = to_host(cx, w, pi.count);
    clcnn_net_param_write(g, i, hw);
    free(hw);
    tap_ok(ok == 1 && amax > 0, "step 2 of a GAN: the generator's %s gradient (%zu of %zu checked, largest %.3g) "
           "against central differences through the discriminator (max err %.3g)", pi.name, k, pi.count, amax, m);
    free(w), free(ana), free(idx), free(h);
  }
done:
  free(real);
  clcnn_optim_destroy(og), clcnn_optim_destroy(od);
  clcnn_net_destroy(g), clcnn_net_destroy(d);
}

/* ---- misuse ---- */
static void refused(clcnn_ctx *cx, clcnn_status got, clcnn_status want, const char *words, const char *what) {
  const char *msg = clcnn_ctx_last_error(cx);
  tap_ok(got == want && has_words(msg, words), "%s: refused with %s (got %s: %s)", what, clcnn_status_name(want),
         clcnn_status_name(got), msg);
}

static void test_misuse(void) {
  clcnn_ctx *cx = ctx64;
  clcnn_net *g, *d, *g32 = NULL, *other = NULL;
  char err[512];
  if (!make_pair(cx, &g, &d)) return;
  double ones[B];
  for (int i = 0; i < B; i++) ones[i] = 1;
  refused(cx, clcnn_net_forward_noise(g, 0, 1), CLCNN_ERR_INVALID_ARGUMENT, "batch 0|outside 1..6", "forward_noise(n 0)");
  refused(cx, clcnn_net_forward_noise(g, B + 1, 1), CLCNN_ERR_INVALID_ARGUMENT, "batch 7|max_batch", "forward_noise(n 7)");
  tap_ok(clcnn_net_forward_noise(NULL, 1, 1) == CLCNN_ERR_NULL_POINTER, "forward_noise(NULL net)");
  refused(cx, clcnn_net_forward_net(d, NULL), CLCNN_ERR_NULL_POINTER, "src is NULL", "forward_net(NULL src)");
  refused(cx, clcnn_net_forward_net(d, d), CLCNN_ERR_INVALID_ARGUMENT, "own output", "forward_net(itself)");
  refused(cx, clcnn_net_forward_net(d, g), CLCNN_ERR_STATE, "no forward", "forward_net before src's forward");
  if (clcnn_net_from_text(ctx32, gen_text, "gen32", B, &g32, err, sizeof err) ||
      clcnn_net_from_text(cx, "input 1 8 4\nflatten\nlinear 1\n", "other", B, &other, err, sizeof err)) {
    tap_ok(0, "misuse nets: %s", err);
    goto done;
  }
  CALL(ctx32, "misuse", clcnn_net_forward_noise(g32, 2, 1));
  refused(cx, clcnn_net_forward_net(d, g32), CLCNN_ERR_INVALID_ARGUMENT, "different contexts", "forward_net(other context)");
  CALL(cx, "misuse", clcnn_net_forward_noise(g, 3, 1));
  refused(cx, clcnn_net_forward_net(other, g), CLCNN_ERR_SHAPE, "1x8x8|1x8x4", "forward_net(shape 1x8x4 from 1x8x8)");
  refused(cx, clcnn_net_backward_net(g, NULL), CLCNN_ERR_NULL_POINTER, "next is NULL", "backward_net(NULL next)");
  refused(cx, clcnn_net_backward_net(g, g), CLCNN_ERR_INVALID_ARGUMENT, "itself", "backward_net(itself)");
  refused(cx, clcnn_net_backward_net(g, d), CLCNN_ERR_STATE, "no backward", "backward_net before next's backward");
  CALL(cx, "misuse", clcnn_net_forward_net(d, g));
  CALL(cx, "misuse", clcnn_net_set_target(d, loss_of(d), ones));
  CALL(cx, "misuse", clcnn_net_backward_losses(d));
  CALL(cx, "misuse", clcnn_net_forward_noise(g, 2, 1));
  refused(cx, clcnn_net_backward_net(g, d), CLCNN_ERR_INVALID_ARGUMENT, "3 samples|2", "backward_net(batch 2 after 3)");
  refused(ctx32, clcnn_net_backward_net(g32, d), CLCNN_ERR_INVALID_ARGUMENT, "different contexts", "backward_net(other context)");
  CALL(cx, "misuse", clcnn_net_set_input_grad(d, 0));
  CALL(cx, "misuse", clcnn_net_forward_noise(g, 3, 1));
  CALL(cx, "misuse", clcnn_net_forward_net(d, g));
  CALL(cx, "misuse", clcnn_net_set_target(d, loss_of(d), ones));
  CALL(cx, "misuse", clcnn_net_backward_losses(d));
  refused(cx, clcnn_net_backward_net(g, d), CLCNN_ERR_STATE, "input gradient is off", "backward_net(next without input grad)");
done:
  clcnn_net_destroy(g), clcnn_net_destroy(d), clcnn_net_destroy(g32), clcnn_net_destroy(other);
}

/* ---- the Frechet distance ---- */
static void rotate(const double *c, double th, double *out) { /* R c R^T in 2-d */
  double R[4] = {cos(th), -sin(th), sin(th), cos(th)}, t[4];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) t[i * 2 + j] = R[i * 2] * c[j] + R[i * 2 + 1] * c[2 + j];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) out[i * 2 + j] = t[i * 2] * R[j * 2] + t[i * 2 + 1] * R[j * 2 + 1];
}

static void test_frechet(void) {
  double fd = -1;
  /* equal Gaussians */
  double m[3] = {0.5, -1, 2}, c[9] = {2, 0.3, 0.1, 0.3, 1, -0.2, 0.1, -0.2, 0.5};
  clcnn_status st = clcnn_frechet_distance(m, c, m, c, 3, &fd);
  tap_ok(!st && fabs(fd) < 1e-10, "Frechet: equal Gaussians: %.3g", fd);
  /* diagonal: |dm|^2 + sum (sqrt a - sqrt b)^2 */
  double m2[3] = {1.5, -1, 0}, a[9] = {4, 0, 0, 0, 1, 0, 0, 0, 9}, b[9] = {1, 0, 0, 0, 1, 0, 0, 0, 0.25};
  double want = 1 + 4 + (2 - 1) * (2 - 1) + 0 + (3 - 0.5) * (3 - 0.5);
  st = clcnn_frechet_distance(m, a, m2, b, 3, &fd);
  tap_ok(!st && fabs(fd - want) < 1e-10, "Frechet: diagonal: %.12g (want %.12g)",
         fd, want);
  /* 2 x 2, not commuting: tr sqrt(c1 c2) = sqrt(tr(c1 c2) + 2 sqrt(det(c1 c2))) */
  double c1[4] = {2, 0.7, 0.7, 1}, c2[4] = {0.5, -0.2, -0.2, 3}, z[2] = {0, 0}, mm[2] = {0.3, -0.4};
  double tr = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3];
  double det = (c1[0] * c1[3] - c1[1] * c1[2]) * (c2[0] * c2[3] - c2[1] * c2[2]);
  want = 0.09 + 0.16 + c1[0] + c1[3] + c2[0] + c2[3] - 2 * sqrt(tr + 2 * sqrt(det));
  st = clcnn_frechet_distance(z, c1, mm, c2, 2, &fd);
  tap_ok(!st && fabs(fd - want) < 1e-10,
         "Frechet: 2x2 covariances that do not commute: %.12g (want %.12g)", fd, want);
  double r1[4], r2[4], fr = -1;
  rotate(c1, 0.7, r1), rotate(c2, 0.7, r2);
  st = clcnn_frechet_distance(z, r1, mm, r2, 2, &fr);
  tap_ok(!st && fabs(fr - fd) < 1e-10,
         "Frechet: both covariances rotated alike: the same %.12g", fr);
  double bad[4] = {1, NAN, NAN, 1};
  tap_ok(clcnn_frechet_distance(z, bad, mm, c2, 2, &fd) == CLCNN_ERR_INVALID_ARGUMENT, "Frechet: a NaN is refused");
  tap_ok(clcnn_frechet_distance(z, c1, mm, c2, 0, &fd) == CLCNN_ERR_INVALID_ARGUMENT, "Frechet: d 0 is refused");
  tap_ok(clcnn_frechet_distance(z, c1, NULL, c2, 2, &fd) == CLCNN_ERR_NULL_POINTER, "Frechet: NULL is refused");
}

int main(void) {
  ref_rng_seed(&rng, 20261207);
  ctx64 = make_ctx_of(CLCNN_DOUBLE, NULL, 1);
  ctx32 = make_ctx_of(CLCNN_FLOAT, ctx64, 0);
  test_noise(ctx64);
  test_noise(ctx32);
  test_links();
  test_fd();
  test_misuse();
  test_frechet();
  clcnn_ctx_destroy(ctx64);
  clcnn_ctx_destroy(ctx32);
  return tap_done();
}
