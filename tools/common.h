/* tools/common.h - what the training tools (clcnn-train, clcnn-gan) share; tools/common.c. */
#ifndef CLCNN_TOOLS_COMMON_H
#define CLCNN_TOOLS_COMMON_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "clcnn.h"

extern const char *prog; /* the tool's name, before every message */

/* "PROG: message" on stderr, then exit(code). */
void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* Called by die() before it exits, when set (clcnn-train under MPI: MPI_Abort, so that every rank
 * stops). */
extern void (*die_hook)(int code);
/* die(1) with the context's last error when st is not CLCNN_SUCCESS. */
void net_check(clcnn_ctx *ctx, clcnn_status st, const char *what);
double now(void); /* seconds, monotonic */

/* strings that die() when memory runs out */
char *xstrdup(const char *s);
char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct strlist {
  char **v;
  int n, cap;
};
void sl_push(struct strlist *l, char *s); /* takes s */
void sl_free(struct strlist *l);

char *b64_encode(const void *data, size_t n);    /* malloc'ed, NUL-ended; NULL: out of memory */
int b64_decode(const char *s, void *data, size_t n); /* exactly n bytes; 0 on success */
void *to_f32(const void *src, size_t n, clcnn_precision p);

/* files */
int write_file(const char *path, const void *data, size_t n); /* whole or not at all; 0 or -1 (errno) */
void make_dir(const char *path); /* one level; an existing directory is fine */
char *read_text(const char *path); /* whole, NUL-ended */

/* checkpoints */
void ckpt_save(const char *path, clcnn_ctx *ctx, clcnn_net *net, clcnn_optim *opt, const char *model_text,
               json_t *ts);
void load_weights(clcnn_safetensors *f, const char *path, clcnn_ctx *ctx, clcnn_net *net);
void ckpt_load_optim(clcnn_safetensors *f, const json_t *ts, const char *path, clcnn_ctx *ctx, clcnn_net *net,
                     clcnn_optim *opt);

/* the training state (a checkpoint's "clcnn.train"): each getter die()s naming PATH and the key
 * when the key is missing or of the wrong kind */
json_t *state_parse(const char *text, const char *path);
const json_t *state_get(const json_t *ts, const char *key, const char *path);
void state_bad(const json_t *v, const char *key, const char *what, const char *path) __attribute__((noreturn));
long state_long(const json_t *ts, const char *key, const char *path);
double state_double(const json_t *ts, const char *key, const char *path);
uint64_t state_u64(const json_t *ts, const char *key, const char *path);
/* Option parsing returns instead of exiting (the fuzz harness tests/fuzz/fuzz_cmdline.c calls it):
 * ARGS_OK, ARGS_HELP, ARGS_VERSION, or ARGS_USAGE with the reason in msg. */
enum { ARGS_OK, ARGS_HELP, ARGS_VERSION, ARGS_USAGE };
#define USAGE_ERROR(...) return (snprintf(msg, msize, __VA_ARGS__), ARGS_USAGE)
/* S as a whole number in lo..hi / a finite real in [lo, hi], for FLAG; else ARGS_USAGE */
int parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *msg, size_t msize);
int parse_double(const char *flag, const char *s, double lo, double hi, double *out, char *msg, size_t msize);
/* Curves (--plot): panels side by side, each with its series of y values (NaN: no point) over the
 * n x values (epochs), drawn as an SVG file written whole or not at all; 0, or -1 (errno). */
struct plot_series {
  const char *name, *color;
  const double *y;
};
struct plot_panel {
  const char *title;
  const struct plot_series *s;
  int ns;
};
int plot_svg(const char *path, const char *title, const double *x, int n, const struct plot_panel *panels,
             int npanels);
#endif
