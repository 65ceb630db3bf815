/* tests/fuzz/cmdline_devices.c - clcnn-devices's option parsing, for fuzz_cmdline.c: the tool's source with
 * its main renamed, and a wrapper that returns parse_args's verdict. */
#define main clcnn_devices_main
#include "../../tools/clcnn-devices.c"
#undef main

int fuzz_devices_args(int argc, char **argv, char *msg, size_t msize) {
  struct args a;
  int r = parse_args(argc, argv, &a, msg, msize);
  if (r == ARGS_OK && a.dev_arg && (a.sel.plat < 0 || a.sel.dev < 0)) return -1;
  return r == ARGS_USAGE ? 2 : 0;
}
