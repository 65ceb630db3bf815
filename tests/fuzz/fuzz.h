/* tests/fuzz/fuzz.h - what the libFuzzer harnesses share: a scratch directory for the files
 * the parsers read by path, and a check that stops the run with a message. */
#ifndef CLCNN_FUZZ_H
#define CLCNN_FUZZ_H
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcnn.h"

/* A broken promise of the code under test: print it and abort, which libFuzzer reports as a
 * crash and saves the input. */
#define FUZZ_CHECK(cond, ...)                                                    \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                      \
      abort();                                                                  \
    }                                                                           \
  } while (0)

static char fuzz_dir[PATH_MAX];

static inline void fuzz_rmdir(void) {
  char cmd[PATH_MAX + 16];
  if (!fuzz_dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_dir);
}

/* A fresh directory for this process's files, removed at exit. */
static inline const char *fuzz_scratch(void) {
  if (fuzz_dir[0]) return fuzz_dir;
  const char *t = getenv("TMPDIR");
  snprintf(fuzz_dir, sizeof fuzz_dir, "%s/clcnn-fuzz-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(fuzz_dir)) {
    perror("mkdtemp");
    abort();
  }
  atexit(fuzz_rmdir);
  return fuzz_dir;
}

/* NAME in the scratch directory, holding exactly data[0..size); its path (static). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
  static char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", fuzz_scratch(), name);
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
  return path;
}

/* One context for the whole run (a device for every input would cost seconds each); its
 * buffers capped so that a model of absurd size meets a clear allocation error, not the
 * fuzzer's memory limit. */
#ifdef CLCNN_INTERNAL_H
static inline clcnn_ctx *fuzz_ctx(size_t mem_cap) {
  char err[1024];
  clcnn_ctx *ctx = NULL;
  if (clcnn_ctx_create(&ctx, NULL, err, sizeof err)) {
    fprintf(stderr, "no OpenCL context: %s\n", err);
    abort();
  }
  ctx->mem_cap = mem_cap;
  return ctx;
}
#endif
#endif
