/* tests/fuzz/cmdline_bench.c - clcnn-bench's option parsing, for fuzz_cmdline.c: the tool's source with
 * its main renamed, and a wrapper that returns parse_args's verdict. */
#define main clcnn_bench_main
#include "../../tools/clcnn-bench.c"
#undef main

int fuzz_bench_args(int argc, char **argv, char *msg, size_t msize) {
  struct args a;
  opterr = 0; /* getopt's own messages are the tool's; not wanted here */
  int r = parse_args(argc, argv, &a, msg, msize);
  if (r == ARGS_OK && !(optind < argc && a.steps >= 1 && a.warmup >= 0)) return -1;
  return r == ARGS_USAGE ? 2 : 0;
}
