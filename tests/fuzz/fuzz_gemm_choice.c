/* tests/fuzz/fuzz_gemm_choice.c - the GEMM choice file (lib/gemm_choice.c): its text parsed into a
 * context made once, for the device key "0123456789abcdef0123456789abcdef" (the seeds hold it,
 * so the fuzzer reaches the lines after the header). The loader refuses text with a NUL byte
 * before parsing, so the text stops at the first one here. */
#include "internal.h"
#include "fuzz.h"

static clcnn_ctx *ctx;
#define KEY "0123456789abcdef0123456789abcdef"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  ctx = fuzz_ctx(0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;
  ctx->nchoices = 0;
  ctx->xgemm_gflops[0] = ctx->xgemm_gflops[1] = 0;
  char why[256] = "";
  int r = clcnn__gemm_choices_parse(ctx, s, KEY, why, sizeof why);
  free(s);
  if (r) {
    FUZZ_CHECK(r == -1 && why[0], "refused (%d) with no reason", r);
    FUZZ_CHECK(ctx->nchoices == 0, "a refused file left %d shapes", ctx->nchoices);
    return 0;
  }
  FUZZ_CHECK(!why[0], "accepted with a reason: %s", why);
  for (int i = 0; i < ctx->nchoices; i++) {
    const struct gemm_choice *c = &ctx->choices[i];
    FUZZ_CHECK(c->m && c->n && c->k && c->m <= 1u << 30 && c->n <= 1u << 30 && c->k <= 1u << 30,
               "shape %zu x %zu x %zu", c->m, c->n, c->k);
    FUZZ_CHECK(c->us_own > 0 && c->us_clblast > 0, "times %g, %g", c->us_own, c->us_clblast);
  }
  for (int d = 0; d < 2; d++)
    FUZZ_CHECK(ctx->xgemm_gflops[d] >= 0 && ctx->xgemm_gflops[d] < 1e9, "GFLOP/s %g",
               ctx->xgemm_gflops[d]);
  return 0;
}
