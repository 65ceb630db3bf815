/* tests/fuzz/cmdline_gan.c - clcnn-gan's option parsing, for fuzz_cmdline.c: the tool's source with
 * its main renamed, and a wrapper that returns parse_args's verdict. */
#define main clcnn_gan_main
#include "../../tools/clcnn-gan.c"
#undef main

int fuzz_gan_args(int argc, char **argv, char *msg, size_t msize) {
  struct gopts o;
  int r = parse_args(argc, argv, &o, msg, msize);
  if (r == ARGS_OK && (!o.gen || !o.disc)) return -1; /* parsed, yet no model files */
  if (r == ARGS_OK && !(o.batch >= 1 && o.batch <= 65536 && o.epochs >= 0 && !(o.steps && o.epochs) && *o.out))
    return -1;
  if (r == ARGS_OK && o.sample && !o.init && !o.resume) return -1; /* nothing to sample from */
  if (r == ARGS_OK && !(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.d_beta1 >= 0 && o.d_beta1 < 1 &&
                        o.d_beta2 >= 0 && o.d_beta2 < 1))
    return -1;
  return r == ARGS_USAGE ? 2 : 0;
}
