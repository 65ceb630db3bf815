/* tests/tap.h - a minimal TAP producer for clcnn's tests.
 * Each check prints "ok N - what" or "not ok N - what"; tap_done() prints the plan and
 * returns the exit status (non-zero when any check failed). */
#ifndef CLCNN_TAP_H
#define CLCNN_TAP_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n_, tap_failed_;

static inline int tap_ok(int cond, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n_);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  if (!cond) tap_failed_++;
  fflush(stdout);
  return cond;
}

/* A diagnostic line, shown by the TAP driver in the log. */
static inline void tap_diag(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("# ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
}

/* Stop the whole test: prints "Bail out!", which the driver counts as an error. */
static inline void tap_bail(const char *why) {
  printf("Bail out! %s\n", why);
  fflush(stdout);
  exit(1);
}

static inline int tap_done(void) {
  printf("1..%d\n", tap_n_);
  fflush(stdout); /* before exit's sanitizer checks, which may end the process without flushing */
  return tap_failed_ ? 1 : 0;
}
#endif
