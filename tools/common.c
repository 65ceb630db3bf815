/* tools/common.c - what the training tools share: errors, strings, files, and checkpoints
 * (safetensors files that PyTorch's strict load_state_dict() takes, with the training state in
 * their metadata). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

const char *prog = "clcnn";
void (*die_hook)(int code);


void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (die_hook) die_hook(code); /* several processes: stop them all */
  exit(code);
}


double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}


/* ---- base64, for the optimizer's state in the checkpoint's metadata ---- */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const void *data, size_t n) {
  const unsigned char *p = data;
  char *out = malloc(4 * ((n + 2) / 3) + 1), *q = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    *q++ = b64[v >> 18 & 63];
    *q++ = b64[v >> 12 & 63];
    *q++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
    *q++ = i + 2 < n ? b64[v & 63] : '=';
  }
  *q = 0;
  return out;
}

/* Decode exactly n bytes; 0 on success. */
int b64_decode(const char *s, void *data, size_t n) {
  size_t len = strlen(s);
  if (len != 4 * ((n + 2) / 3)) return -1;
  unsigned char *out = data;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    for (int j = 0; j < 4; j++) {
      const char *c = s[i + j] == '=' ? b64 : strchr(b64, s[i + j]);
      if (!c || !s[i + j]) return -1;
      v = v << 6 | (uint32_t)(c - b64);
    }
    for (int j = 0; j < 3 && o < n; j++) out[o++] = v >> (16 - 8 * j) & 255;
  }
  return 0;
}


void *to_f32(const void *src, size_t n, clcnn_precision p) {
  float *f = malloc(n * sizeof *f + 1);
  if (!f) return NULL;
  for (size_t i = 0; i < n; i++) f[i] = p == CLCNN_DOUBLE ? (float)((const double *)src)[i] : ((const float *)src)[i];
  return f;
}

void sl_push(struct strlist *l, char *s) {
  if (!s) die(1, "out of memory");
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (!l->v) die(1, "out of memory");
  }
  l->v[l->n++] = s;
}
void sl_free(struct strlist *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}
char *xstrdup(const char *s) {
  char *d = strdup(s);
  if (!d) die(1, "out of memory");
  return d;
}
char *xprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) die(1, "out of memory");
  va_end(ap);
  return s;
}

void net_check(clcnn_ctx *ctx, clcnn_status st, const char *what) {
  if (st) die(1, "%s: %s (%s)", what, clcnn_ctx_last_error(ctx), clcnn_status_name(st));
}


/* Load the weights (and buffers) of FILE into net; every name, shape and dtype must match, as
 * PyTorch's strict load_state_dict() asks. */
void load_weights(clcnn_safetensors *f, const char *path, clcnn_ctx *ctx, clcnn_net *net) {
  clcnn_precision prec = clcnn_ctx_precision(ctx);
  int np = clcnn_net_num_params(net), nb = clcnn_net_num_buffers(net);
  char msg[4096] = "";
  size_t used = 0;
#define NOTE(...) used += snprintf(msg + used, used < sizeof msg ? sizeof msg - used : 0, __VA_ARGS__)
  int bad = 0;
  for (int i = 0; i < np + nb; i++) {
    clcnn_param_info info;
    if (i < np) clcnn_net_param_info(net, i, &info);
    else clcnn_net_buffer_info(net, i - np, &info);
    const clcnn_st_tensor *t = clcnn_safetensors_find(f, info.name);
    if (!t) {
      NOTE("\n  missing: %s", info.name);
      bad++;
      continue;
    }
    int same = t->ndim == info.ndim;
    for (int d = 0; same && d < info.ndim; d++) same = t->dims[d] == info.dims[d];
    if (!same) {
      NOTE("\n  %s: shape [", info.name);
      for (int d = 0; d < t->ndim; d++) NOTE("%s%" PRId64, d ? "," : "", t->dims[d]);
      NOTE("] in the file, [");
      for (int d = 0; d < info.ndim; d++) NOTE("%s%d", d ? "," : "", info.dims[d]);
      NOTE("] in the model");
      bad++;
      continue;
    }
    int want_int = info.dtype == CLCNN_DTYPE_INT64;
    if (want_int != (t->dtype == CLCNN_ST_I64)) {
      NOTE("\n  %s: dtype %s in the file, %s expected", info.name,
           t->dtype == CLCNN_ST_I64 ? "I64" : t->dtype == CLCNN_ST_F64 ? "F64" : "F32", want_int ? "I64" : "F32 or F64");
      bad++;
    }
  }
  for (int i = 0; i < clcnn_safetensors_count(f); i++) {
    const clcnn_st_tensor *t = clcnn_safetensors_get(f, i);
    int known = 0;
    for (int j = 0; j < np + nb && !known; j++) {
      clcnn_param_info info;
      if (j < np) clcnn_net_param_info(net, j, &info);
      else clcnn_net_buffer_info(net, j - np, &info);
      known = !strcmp(info.name, t->name);
    }
    if (!known) {
      NOTE("\n  unexpected: %s", t->name);
      bad++;
    }
  }
  if (bad) die(1, "%s does not fit the model (%d difference%s):%s", path, bad, bad == 1 ? "" : "s", msg);
  for (int i = 0; i < np + nb; i++) {
    clcnn_param_info info;
    if (i < np) clcnn_net_param_info(net, i, &info);
    else clcnn_net_buffer_info(net, i - np, &info);
    const clcnn_st_tensor *t = clcnn_safetensors_find(f, info.name);
    void *host = malloc(info.count * 8 + 8);
    if (!host) die(1, "out of memory");
    if (t->dtype == CLCNN_ST_I64) {
      memcpy(host, t->data, 8);
    } else {
      for (size_t k = 0; k < info.count; k++) {
        double v;
        if (t->dtype == CLCNN_ST_F32) {
          float fv;
          memcpy(&fv, (const char *)t->data + 4 * k, 4);
          v = fv;
        } else {
          memcpy(&v, (const char *)t->data + 8 * k, 8);
        }
        if (prec == CLCNN_DOUBLE) ((double *)host)[k] = v;
        else ((float *)host)[k] = (float)v;
      }
    }
    clcnn_status st = i < np ? clcnn_net_param_write(net, i, host) : clcnn_net_buffer_write(net, i - np, host);
    free(host);
    net_check(ctx, st, path);
  }
}

/* ---- the training state ("clcnn.train", written by save_checkpoint) ---- */

/* The state parsed. Checkpoints written before clcnn used jansson hold dropout_seed (above
 * 2^63 for --seed 1) as a bare JSON integer, which jansson refuses as a "too big integer"
 * since its integers are int64, reporting the position just after the number. Such a number
 * is put in quotes and the text parsed again, so that it reaches state_u64() as the decimal
 * string that new checkpoints write, exactly. */
json_t *state_parse(const char *text, const char *path) {
  char *js = xstrdup(text);
  for (int tries = 0;; tries++) {
    json_error_t je;
    json_t *v = json_loads(js, JSON_REJECT_DUPLICATES, &je);
    if (v && !json_is_object(v)) die(1, "%s: the training state is not a JSON object", path);
    if (v) {
      free(js);
      return v;
    }
    size_t end = je.position > 0 && (size_t)je.position <= strlen(js) ? (size_t)je.position : 0, start = end;
    while (start > 0 && isdigit((unsigned char)js[start - 1])) start--;
    if (json_error_code(&je) != json_error_numeric_overflow || start == end || tries >= 8 ||
        (start > 0 && strchr("+-.eE", js[start - 1])))
      die(1, "%s: the training state is not valid JSON: %s at byte %d", path, je.text, je.position);
    char *q = xprintf("%.*s\"%.*s\"%s", (int)start, js, (int)(end - start), js + start, js + end);
    free(js);
    js = q;
  }
}

const json_t *state_get(const json_t *ts, const char *key, const char *path) {
  const json_t *v = json_object_get(ts, key);
  if (!v) die(1, "%s: the training state has no '%s'", path, key);
  return v;
}

/* die() saying that KEY's value is not WHAT. */
void state_bad(const json_t *v, const char *key, const char *what, const char *path) {
  char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  die(1, "%s: the training state's '%s' is not %s (%s)", path, key, what, text ? text : "?");
}

long state_long(const json_t *ts, const char *key, const char *path) {
  const json_t *v = state_get(ts, key, path);
  if (!json_is_integer(v) || json_integer_value(v) < LONG_MIN || json_integer_value(v) > LONG_MAX)
    state_bad(v, key, "an integer", path);
  return (long)json_integer_value(v);
}

/* A finite number: a string strtod() reads whole (the hex floats written), or a JSON number. */
double state_double(const json_t *ts, const char *key, const char *path) {
  const json_t *v = state_get(ts, key, path);
  double x = json_number_value(v);
  char *end = NULL;
  if (json_is_string(v)) x = strtod(json_string_value(v), &end);
  if ((!json_is_number(v) && !json_is_string(v)) || (end && (*end || end == json_string_value(v))) || !isfinite(x))
    state_bad(v, key, "a number", path);
  return x;
}

/* A u64: a string of decimal digits (what is written), or a non-negative JSON integer. */
uint64_t state_u64(const json_t *ts, const char *key, const char *path) {
  const json_t *v = state_get(ts, key, path);
  if (json_is_integer(v) && json_integer_value(v) >= 0) return (uint64_t)json_integer_value(v);
  const char *str = json_string_value(v);
  int ok = str && *str && strspn(str, "0123456789") == json_string_length(v);
  errno = 0;
  unsigned long long x = ok ? strtoull(str, NULL, 10) : 0;
  if (!ok || errno) state_bad(v, key, "a count from 0 to 2^64-1", path);
  return x;
}


/* PATH gets N bytes whole or not at all: a temporary file beside it, renamed into place. */
int write_file(const char *path, const void *data, size_t n) {
  char *tmp = xprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  int bad = !f || fwrite(data, 1, n, f) != n;
  if (f) bad |= fclose(f) != 0;
  if (!bad) bad = rename(tmp, path) != 0;
  if (bad) {
    int e = errno;
    unlink(tmp);
    errno = e;
  }
  free(tmp);
  return bad ? -1 : 0;
}

void make_dir(const char *path) {
  struct stat sb;
  if (mkdir(path, 0777) && !(errno == EEXIST && !stat(path, &sb) && S_ISDIR(sb.st_mode)))
    die(1, "%s: %s", path, errno == EEXIST ? "exists and is not a directory" : strerror(errno));
}


char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die(1, "%s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (cap - n < 4096) {
      buf = realloc(buf, cap = cap * 2 + 8192);
      if (!buf) die(1, "out of memory");
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (!r) break;
  }
  fclose(f);
  buf[n] = 0;
  return buf;
}


/* Write NET's weights and buffers to PATH atomically: the state_dict of the torch.nn module the
 * model file makes (F32, int64 counters), the model text and clcnn's version in the metadata;
 * with OPT its state bit for bit (clcnn.optim.NAME.SLOT, base64) and the training state TS
 * (clcnn.train, a JSON object; taken). */
void ckpt_save(const char *path, clcnn_ctx *ctx, clcnn_net *net, clcnn_optim *opt, const char *model_text,
               json_t *ts) {
  clcnn_precision prec = clcnn_ctx_precision(ctx);
  size_t esz = clcnn_ctx_elem_size(ctx);
  int np = clcnn_net_num_params(net), nb = clcnn_net_num_buffers(net);
  clcnn_st_tensor *t = calloc(np + nb, sizeof *t);
  void **bufs = calloc(np + nb, sizeof *bufs);
  struct strlist meta = {0};
  if (!t || !bufs) die(1, "out of memory");
  for (int i = 0; i < np + nb; i++) {
    clcnn_param_info info;
    int is_buf = i >= np;
    net_check(ctx, is_buf ? clcnn_net_buffer_info(net, i - np, &info) : clcnn_net_param_info(net, i, &info), "checkpoint");
    void *host = malloc(info.count * 8 + 8);
    if (!host) die(1, "out of memory");
    net_check(ctx, is_buf ? clcnn_net_buffer_read(net, i - np, host) : clcnn_net_param_read(net, i, host), "checkpoint");
    snprintf(t[i].name, sizeof t[i].name, "%s", info.name);
    t[i].ndim = info.ndim;
    for (int d = 0; d < info.ndim; d++) t[i].dims[d] = info.dims[d];
    if (info.dtype == CLCNN_DTYPE_INT64) {
      t[i].dtype = CLCNN_ST_I64;
      t[i].bytes = 8 * info.count;
      bufs[i] = host;
    } else {
      t[i].dtype = CLCNN_ST_F32;
      t[i].bytes = 4 * info.count;
      bufs[i] = to_f32(host, info.count, prec);
      free(host);
      if (!bufs[i]) die(1, "out of memory");
    }
    t[i].data = bufs[i];
    if (opt && !is_buf) /* the optimizer's state of this parameter, bit for bit */
      for (int k = 0; k < clcnn_optim_num_slots(opt); k++) {
        void *st = malloc(info.count * esz);
        if (!st) die(1, "out of memory");
        net_check(ctx, clcnn_optim_state_read(opt, i, k, st), "checkpoint");
        sl_push(&meta, xprintf("clcnn.optim.%s.%s", info.name, clcnn_optim_slot_name(opt, k)));
        sl_push(&meta, b64_encode(st, info.count * esz));
        free(st);
      }
  }
  sl_push(&meta, xstrdup("format"));
  sl_push(&meta, xstrdup("pt"));
  sl_push(&meta, xstrdup("clcnn.version"));
  sl_push(&meta, xstrdup(clcnn_version()));
  sl_push(&meta, xstrdup("clcnn.model"));
  sl_push(&meta, xstrdup(model_text));
  if (ts) {
    char *js = json_dumps(ts, JSON_COMPACT);
    json_decref(ts);
    if (!js) die(1, "out of memory");
    sl_push(&meta, xstrdup("clcnn.train"));
    sl_push(&meta, js);
  }
  char err[1024];
  clcnn_status st = clcnn_safetensors_write(path, t, np + nb, (const char *const *)meta.v, meta.n / 2, err, sizeof err);
  for (int i = 0; i < np + nb; i++) free(bufs[i]);
  free(bufs);
  free(t);
  sl_free(&meta);
  /* the file is written beside PATH and renamed over it only when whole: a failed save (a full
   * disk, a write error) leaves the previous checkpoint as it was */
  if (st)
    die(1, "cannot save the checkpoint: %s; %s", err,
        access(path, F_OK) == 0 ? "the previous checkpoint there is kept unchanged" : "no checkpoint was written");
}

/* The optimizer state ckpt_save() wrote for OPT (made on NET), and its step count and learning
 * rate from the training state TS; anything missing or damaged is refused naming PATH. */
void ckpt_load_optim(clcnn_safetensors *f, const json_t *ts, const char *path, clcnn_ctx *ctx, clcnn_net *net,
                     clcnn_optim *opt) {
  long optim_steps = state_long(ts, "optim_steps", path);
  if (optim_steps < 0) die(1, "%s: the training state's 'optim_steps' is negative (%ld)", path, optim_steps);
  net_check(ctx, clcnn_optim_set_steps(opt, optim_steps), path);
  net_check(ctx, clcnn_optim_set_lr(opt, state_double(ts, "lr", path)), path);
  size_t esz = clcnn_ctx_elem_size(ctx);
  for (int i = 0; i < clcnn_net_num_params(net); i++) {
    clcnn_param_info info;
    clcnn_net_param_info(net, i, &info);
    for (int k = 0; k < clcnn_optim_num_slots(opt); k++) {
      char key[128];
      snprintf(key, sizeof key, "clcnn.optim.%s.%s", info.name, clcnn_optim_slot_name(opt, k));
      const char *v = clcnn_safetensors_meta(f, key);
      void *buf = malloc(info.count * esz);
      if (!buf) die(1, "out of memory");
      if (!v || b64_decode(v, buf, info.count * esz))
        die(1, "%s: the optimizer state '%s' is %s", path, key, v ? "damaged" : "missing");
      net_check(ctx, clcnn_optim_state_write(opt, i, k, buf), path);
      free(buf);
    }
  }
}

/* ---- options ---- */
int parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *msg,
                      size_t msize) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    USAGE_ERROR("%s: '%s' is not an integer in %ld..%ld", flag, s, lo, hi);
  *out = v;
  return ARGS_OK;
}

int parse_double(const char *flag, const char *s, double lo, double hi, double *out,
                        char *msg, size_t msize) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
    USAGE_ERROR("%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
  *out = v;
  return ARGS_OK;
}


/* ---- curves ---- */

/* Append printf-style text to a growing buffer (die() when memory runs out). */
struct sbuf {
  char *s;
  size_t n, cap;
};
static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) die(1, "cannot format the plot");
    if (b->s && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    b->cap = (b->cap + (size_t)k + 1) * 2;
    if (!(b->s = realloc(b->s, b->cap))) die(1, "out of memory");
  }
}

/* XML-safe copy of s into the buffer */
static void sb_text(struct sbuf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '<') sb_printf(b, "&lt;");
    else if (*s == '>') sb_printf(b, "&gt;");
    else if (*s == '&') sb_printf(b, "&amp;");
    else if (*s == '"') sb_printf(b, "&quot;");
    else sb_printf(b, "%c", *s);
  }
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` ticks over span. */
static double nice_step(double span, int want) {
  double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

int plot_svg(const char *path, const char *title, const double *x, int n, const struct plot_panel *panels,
             int npanels) {
  const int pw = 460, ph = 300, ml = 64, mr = 16, mt = 44, mb = 48; /* a panel and its margins */
  struct sbuf b = {0};
  int width = npanels * (pw + ml + mr), height = ph + mt + mb;
  sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
  sb_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n<title>", width, height);
  sb_text(&b, title);
  sb_printf(&b, "</title>\n<text x=\"%d\" y=\"18\" font-size=\"14\" text-anchor=\"middle\">", width / 2);
  sb_text(&b, title);
  sb_printf(&b, "</text>\n");
  double x0 = n ? x[0] : 0, x1 = n ? x[n - 1] : 1;
  if (x1 <= x0) x0 -= 0.5, x1 += 0.5;
  for (int p = 0; p < npanels; p++) {
    const struct plot_panel *P = &panels[p];
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < P->ns; s++)
      for (int i = 0; i < n; i++)
        if (isfinite(P->s[s].y[i])) lo = fmin(lo, P->s[s].y[i]), hi = fmax(hi, P->s[s].y[i]);
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * (fabs(hi) + 1)) lo -= 0.5 * (fabs(lo) + 1e-3), hi += 0.5 * (fabs(hi) + 1e-3);
    double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
    int ox = p * (pw + ml + mr) + ml, oy = mt;
#define PX(v) (ox + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (oy + ph - ((v) - lo) / (hi - lo) * ph)
    sb_printf(&b, "<g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", ox, oy,
              pw, ph);
    double ys = nice_step(hi - lo, 5);
    for (double t = ceil(lo / ys) * ys; t <= hi; t += ys)
      sb_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
                    "text-anchor=\"end\">%.4g</text>\n",
                ox, ox + pw, PY(t), PY(t), ox - 6, PY(t) + 4, fabs(t) < 1e-12 * ys ? 0.0 : t);
    double xs = nice_step(x1 - x0, 8);
    if (xs < 1) xs = 1; /* epochs are whole */
    for (double t = ceil(x0 / xs) * xs; t <= x1 + 1e-9; t += xs)
      sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", PX(t), oy + ph + 16, t);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", ox + pw / 2, oy + ph + 36);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"13\">", ox, oy - 8);
    sb_text(&b, P->title);
    sb_printf(&b, "</text>\n");
    for (int s = 0; s < P->ns; s++) {
      const struct plot_series *S = &P->s[s];
      sb_printf(&b, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", S->color);
      for (int i = 0; i < n; i++)
        if (isfinite(S->y[i])) sb_printf(&b, "%.1f,%.1f ", PX(x[i]), PY(S->y[i]));
      sb_printf(&b, "\"><title>");
      sb_text(&b, S->name);
      sb_printf(&b, "</title></polyline>\n");
      for (int i = 0; i < n; i++)
        if (isfinite(S->y[i]))
          sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(x[i]), PY(S->y[i]), S->color);
      int ly = oy + 16 + 16 * s; /* the legend, top right */
      sb_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/><text x=\"%d\" "
                    "y=\"%d\">",
                ox + pw - 150, ox + pw - 130, ly - 4, ly - 4, S->color, ox + pw - 124, ly);
      sb_text(&b, S->name);
      sb_printf(&b, "</text>\n");
    }
    sb_printf(&b, "</g>\n");
#undef PX
#undef PY
  }
  sb_printf(&b, "</svg>\n");
  int r = write_file(path, b.s, b.n);
  free(b.s);
  return r;
}
