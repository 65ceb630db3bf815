/* examples/gan.c - a DCGAN trained through libclcnn's public API: what clcnn-gan does, without its
 * options, checkpoints and pictures.
 *
 *   cc gan.c $(pkg-config --cflags --libs clcnn) -lm -o gan
 *   ./gan dcgan-gen.txt dcgan-disc.txt [DATA_DIR [STEPS]]
 *
 * DATA_DIR holds IDX images (default /usr/share/datasets/fashion-mnist); STEPS batches of 64 are
 * trained (default 100), each printing both losses. One step: noise z drawn on the device;
 * fake = G(z); the discriminator's BCE towards 1 on real images and towards 0 on fake ones, and
 * its Adam step; then the generator's BCE towards 1 through the updated discriminator, whose input
 * gradient runs into the generator's backward on the device, and its Adam step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn.h"

#define BATCH 64

static clcnn_ctx *ctx;

static int check(clcnn_status st, const char *what) {
  if (st) fprintf(stderr, "gan: %s: %s\n", what, clcnn_ctx_last_error(ctx));
  return st != CLCNN_SUCCESS;
}

static clcnn_optim *adam(clcnn_net *net) { /* the DCGAN paper's settings */
  clcnn_optim_params p;
  clcnn_optim *opt = NULL;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.lr = 0.0002, p.beta1 = 0.5, p.beta2 = 0.999;
  return check(clcnn_optim_create(net, &p, &opt), "optimizer") ? NULL : opt;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s GENERATOR DISCRIMINATOR [DATA_DIR [STEPS]]\n", argv[0]);
    return 2;
  }
  const char *data = argc > 3 ? argv[3] : "/usr/share/datasets/fashion-mnist";
  long steps = argc > 4 ? strtol(argv[4], NULL, 10) : 100;
  char err[1024];
  clcnn_ctx_options co = {.precision = CLCNN_FLOAT};
  if (clcnn_ctx_create(&ctx, &co, err, sizeof err)) {
    fprintf(stderr, "gan: %s\n", err);
    return 1;
  }
  clcnn_net *g = NULL, *d = NULL;
  clcnn_dataset *ds = NULL;
  clcnn_optim *og = NULL, *od = NULL;
  float *real = NULL, ones[BATCH], zeros[BATCH];
  int rc = 1;
  if (clcnn_net_from_file(ctx, argv[1], BATCH, &g, err, sizeof err) ||
      clcnn_net_from_file(ctx, argv[2], BATCH, &d, err, sizeof err) || clcnn_dataset_load(data, 1, &ds, err, sizeof err)) {
    fprintf(stderr, "gan: %s\n", err);
    goto done;
  }
  clcnn_loss_info li;
  if (clcnn_net_num_losses(d) != 1 || clcnn_net_loss_info(d, 0, &li) || li.type != CLCNN_LAYER_BCE_LOSS) {
    fprintf(stderr, "gan: %s must end in one logit read by a bce(...) loss line\n", argv[2]);
    goto done;
  }
  size_t in = clcnn_net_input_size(d);
  if (clcnn_net_output_size(g) != in || (size_t)ds->c * ds->h * ds->w != in) {
    fprintf(stderr, "gan: the generator's images, the discriminator's input and the data differ in size\n");
    goto done;
  }
  if (check(clcnn_net_set_input_grad(g, 0), "generator") || check(clcnn_net_init(g, CLCNN_INIT_DCGAN, 1), "init") ||
      check(clcnn_net_init(d, CLCNN_INIT_DCGAN, 2), "init") || !(og = adam(g)) || !(od = adam(d)))
    goto done;
  if (!(real = malloc(sizeof(float) * BATCH * in))) goto done;
  for (int i = 0; i < BATCH; i++) ones[i] = 1, zeros[i] = 0;
  uint64_t pick = 7;
  for (long step = 0; step < steps; step++) {
    for (int i = 0; i < BATCH; i++) { /* random real images, scaled to tanh's [-1, 1] */
      const float *x = ds->x + (clcnn_rng_next(&pick) % (uint64_t)ds->n) * in;
      for (size_t k = 0; k < in; k++) real[i * in + k] = 2 * x[k] - 1;
    }
    double l_real, l_fake, l_gen;
    if (check(clcnn_net_forward_noise(g, BATCH, 1000 + (uint64_t)step), "G forward") ||
        /* the discriminator: real towards 1, fake towards 0 */
        check(clcnn_net_zero_grad(d), "D") || check(clcnn_net_forward(d, real, BATCH), "D forward") ||
        check(clcnn_net_set_target(d, li.loss, ones), "D") || check(clcnn_net_backward_losses(d), "D backward") ||
        check(clcnn_net_loss(d, &l_real), "D") || check(clcnn_net_forward_net(d, g), "D forward") ||
        check(clcnn_net_set_target(d, li.loss, zeros), "D") || check(clcnn_net_backward_losses(d), "D backward") ||
        check(clcnn_net_loss(d, &l_fake), "D") || check(clcnn_optim_step(od), "D step") ||
        /* the generator: fake towards 1, through the updated discriminator */
        check(clcnn_net_zero_grad(g), "G") || check(clcnn_net_forward_net(d, g), "D forward") ||
        check(clcnn_net_set_target(d, li.loss, ones), "D") || check(clcnn_net_backward_losses(d), "D backward") ||
        check(clcnn_net_backward_net(g, d), "G backward") || check(clcnn_optim_step(og), "G step") ||
        check(clcnn_net_loss(d, &l_gen), "D"))
      goto done;
    if (!isfinite(l_real + l_fake + l_gen)) {
      fprintf(stderr, "gan: step %ld: a loss is not finite\n", step + 1);
      goto done;
    }
    printf("step %ld: D loss %.4f (real %.4f, fake %.4f)  G loss %.4f\n", step + 1, l_real + l_fake, l_real, l_fake,
           l_gen);
  }
  rc = 0;
done:
  free(real);
  clcnn_optim_destroy(og), clcnn_optim_destroy(od);
  clcnn_net_destroy(g), clcnn_net_destroy(d);
  clcnn_dataset_destroy(ds);
  clcnn_ctx_destroy(ctx);
  return rc;
}
