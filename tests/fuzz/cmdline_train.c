/* tests/fuzz/cmdline_train.c - clcnn-train's option parsing, for fuzz_cmdline.c: the tool's source with
 * its main renamed, and a wrapper that returns parse_args's verdict. */
#define main clcnn_train_main
#include "../../tools/clcnn-train.c"
#undef main

int fuzz_train_args(int argc, char **argv, char *msg, size_t msize) {
  struct opts o;
  int r = parse_args(argc, argv, &o, msg, msize);
  if (r == ARGS_OK && !o.model) return -1; /* parsed, yet no model file */
  if (r == ARGS_OK && !(o.batch >= 1 && o.batch <= 65536 && (o.epochs > 0) != (o.steps > 0)))
    return -1;
  return r == ARGS_USAGE ? 2 : 0;
}
