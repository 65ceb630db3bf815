/* tests/fuzz/fuzz_cmdline.c - the tools' command lines: the option parsing of clcnn-train,
 * clcnn-devices, clcnn-bench, clcnn-mkdata and clcnn-gan, which returns a verdict instead of exiting. The
 * input: the first byte picks the tool (mod 5), the rest is its arguments, separated by NUL bytes. A
 * usage error must come with a reason (clcnn-bench's getopt errors excepted: getopt prints
 * those); a command line that parses must hold what the tool then relies on. */
#include "fuzz.h"

int fuzz_train_args(int argc, char **argv, char *msg, size_t msize);
int fuzz_devices_args(int argc, char **argv, char *msg, size_t msize);
int fuzz_bench_args(int argc, char **argv, char *msg, size_t msize);
int fuzz_mkdata_args(int argc, char **argv, char *msg, size_t msize);
int fuzz_gan_args(int argc, char **argv, char *msg, size_t msize);

enum { MAX_ARGS = 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096) return -1;
  int tool = data[0] % 5;
  static const char *const names[] = {"clcnn-train", "clcnn-devices", "clcnn-bench", "clcnn-mkdata", "clcnn-gan"};
  /* each argument its own allocation, so ASan sees a read past any of them */
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = strdup(names[tool]);
  size_t i = 1;
  while (i < size && argc < MAX_ARGS) {
    const uint8_t *end = memchr(data + i, 0, size - i);
    size_t len = end ? (size_t)(end - (data + i)) : size - i;
    char *a = malloc(len + 1);
    if (!a) abort();
    memcpy(a, data + i, len);
    a[len] = 0;
    argv[argc++] = a;
    i += len + 1;
  }
  argv[argc] = NULL;
  char *copy[MAX_ARGS + 2]; /* getopt permutes argv: free what was allocated */
  memcpy(copy, argv, sizeof argv);
  char msg[1024] = "";
  int r = tool == 0   ? fuzz_train_args(argc, argv, msg, sizeof msg)
          : tool == 1 ? fuzz_devices_args(argc, argv, msg, sizeof msg)
          : tool == 2 ? fuzz_bench_args(argc, argv, msg, sizeof msg)
          : tool == 3 ? fuzz_mkdata_args(argc, argv, msg, sizeof msg)
                      : fuzz_gan_args(argc, argv, msg, sizeof msg);
  FUZZ_CHECK(r != -1, "%s: a command line that parsed breaks what the tool relies on", names[tool]);
  if (r == 2 && tool != 2) FUZZ_CHECK(msg[0], "%s: a usage error with no reason", names[tool]);
  for (int k = 0; k < argc; k++) free(copy[k]);
  return 0;
}
