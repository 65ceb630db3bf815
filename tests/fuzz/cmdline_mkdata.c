/* tests/fuzz/cmdline_mkdata.c - clcnn-mkdata's option parsing, for fuzz_cmdline.c: the tool's
 * source with its main renamed, and a wrapper that returns parse_args's verdict. */
#define main clcnn_mkdata_main
#include "../../tools/clcnn-mkdata.c"
#undef main

int fuzz_mkdata_args(int argc, char **argv, char *msg, size_t msize) {
  struct opts o;
  opterr = 0; /* getopt's own messages are the tool's; not wanted here */
  int r = parse_args(argc, argv, &o, msg, msize);
  if (r == ARGS_OK && !(o.out && o.out[0] && o.data && o.train >= 1 && o.test >= 1 && o.seed >= 0)) return -1;
  return r == ARGS_USAGE ? 2 : 0;
}
