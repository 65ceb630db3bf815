/* lib/model.c - model files: a net described one layer per line, built through the
 * clcnn_net_add_* functions. Errors read "FILE:LINE:COL: what was expected".
 *
 *   # comment            (a '#' anywhere ends the line)
 *   input C H W          (first, exactly once)
 *   conv OUT kernel=K ...   linear OUT ...   relu ...   (one torch.nn.Sequential module each)
 *
 * The text is read in place: tokens point into it, so no line has a length limit. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  const char *s;
  int len;
  int col; /* 1-based */
} tok;

/* A token in a message: quoted by the format, cut at 60 characters. */
#define TOKF "'%.*s%s'"
#define TOKA(t) ((t)->len > 60 ? 60 : (t)->len), (t)->s, ((t)->len > 60 ? "..." : "")

enum { MAX_POS = 3, MAX_OPTS = 6 };

struct layerdef {
  const char *word;
  int npos;                      /* numbers before the options */
  const char *pos;               /* what they are */
  const char *opts[MAX_OPTS];    /* option names, NULL-ended when fewer */
  const char *usage;
};

static const struct layerdef defs[] = {
  {"input", 3, "C H W", {NULL}, "input C H W"},
  {"conv", 1, "OUT", {"kernel", "stride", "pad", "dilation", "groups", "bias"},
   "conv OUT kernel=K|KHxKW [stride=S] [pad=P] [dilation=D] [groups=G] [bias=0|1]"},
  {"linear", 1, "OUT", {"bias"}, "linear OUT [bias=0|1]"},
  {"relu", 0, "", {NULL}, "relu"},
  {"leakyrelu", 0, "", {"slope"}, "leakyrelu [slope=A]"},
  {"sigmoid", 0, "", {NULL}, "sigmoid"},
  {"tanh", 0, "", {NULL}, "tanh"},
  {"maxpool", 1, "K", {"stride", "pad"}, "maxpool K|KHxKW [stride=S] [pad=P]"},
  {"avgpool", 1, "K", {"stride", "pad"}, "avgpool K|KHxKW [stride=S] [pad=P]"},
  {"globalavgpool", 0, "", {NULL}, "globalavgpool"},
  {"flatten", 0, "", {NULL}, "flatten"},
  {"batchnorm", 0, "", {"eps", "momentum"}, "batchnorm [eps=E] [momentum=M]"},
  {"dropout", 0, "", {"p"}, "dropout [p=P]"},
};
#define NDEFS ((int)(sizeof defs / sizeof defs[0]))
#define LAYER_WORDS \
  "conv, linear, relu, leakyrelu, sigmoid, tanh, maxpool, avgpool, globalavgpool, flatten, " \
  "batchnorm, dropout"

struct parser {
  clcnn_ctx *ctx;
  const char *file;
  char *err;
  size_t err_size;
  int line;
  tok *t; /* the tokens of the current line */
  int nt, cap;
};

/* Write "FILE:LINE:COL: message" to err and to the context's last error; return st. */
static clcnn_status perr(struct parser *P, int col, clcnn_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static clcnn_status perr(struct parser *P, int col, clcnn_status st, const char *fmt, ...) {
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s:%d:%d: ", P->file, P->line, col);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof msg) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - n, fmt, ap);
    va_end(ap);
  }
  if (P->err && P->err_size) snprintf(P->err, P->err_size, "%s", msg);
  return FAIL(P->ctx, st, "%s", msg);
}

/* "lib/conv2d.c:30: layer 0 conv2d: ..." -> "layer 0 conv2d: ..." */
static const char *strip_source_location(const char *e) {
  const char *c = e;
  while (*c && *c != ':' && *c != ' ') c++;
  if (c == e || *c != ':') return e;
  const char *d = ++c;
  while (isdigit((unsigned char)*c)) c++;
  if (c == d || c[0] != ':' || c[1] != ' ') return e;
  return c + 2;
}

static int tok_is(const tok *t, const char *w) {
  return (size_t)t->len == strlen(w) && !memcmp(t->s, w, t->len);
}

/* ---- values ---- */

/* A plain decimal integer, optionally negative: 0 ok, 1 not an integer, 2 out of range. */
static int scan_int(const char *s, int len, long *v) {
  int i = 0, neg = 0;
  if (len > 0 && s[0] == '-') neg = 1, i = 1;
  if (i == len) return 1;
  long x = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 1;
    x = x * 10 + (s[i] - '0');
    if (x > INT_MAX) { /* keep scanning so that "99999999999x" reads as not an integer */
      for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return 1;
      return 2;
    }
  }
  *v = neg ? -x : x;
  return 0;
}

static const char *int_kind(int min) {
  return min == 1 ? "a positive integer" : min == 0 ? "a non-negative integer" : "an integer";
}

/* An integer >= min for WHAT ("conv's kernel"). */
static clcnn_status get_int(struct parser *P, const tok *v, const char *what, int min, int *out) {
  long x = 0;
  int r = scan_int(v->s, v->len, &x);
  if (r == 1)
    return perr(P, v->col, CLCNN_ERR_INVALID_ARGUMENT, "expected an integer for %s, got " TOKF,
                what, TOKA(v));
  if (r == 2)
    return perr(P, v->col, CLCNN_ERR_INVALID_ARGUMENT,
                "expected %s for %s, got " TOKF " (too large; at most %d)", int_kind(min), what,
                TOKA(v), INT_MAX);
  if (x < min)
    return perr(P, v->col, CLCNN_ERR_INVALID_ARGUMENT, "expected %s for %s, got " TOKF,
                int_kind(min), what, TOKA(v));
  *out = (int)x;
  return CLCNN_SUCCESS;
}

/* N, or HxW: two integers >= min. */
static clcnn_status get_pair(struct parser *P, const tok *v, const char *what, int min, int *h,
                             int *w) {
  const char *x = memchr(v->s, 'x', v->len);
  if (!x) {
    clcnn_status st = get_int(P, v, what, min, h);
    if (!st) *w = *h;
    return st;
  }
  int hl = (int)(x - v->s);
  tok a = {v->s, hl, v->col}, b = {x + 1, v->len - hl - 1, v->col + hl + 1};
  long t;
  int ra = scan_int(a.s, a.len, &t), rb = scan_int(b.s, b.len, &t);
  if (ra == 1 || rb == 1)
    return perr(P, v->col, CLCNN_ERR_INVALID_ARGUMENT,
                "expected an integer or HxW (e.g. 3x5) for %s, got " TOKF, what, TOKA(v));
  clcnn_status st = get_int(P, &a, what, min, h);
  if (!st) st = get_int(P, &b, what, min, w);
  return st;
}

/* A finite decimal number (digits, '.', exponent; no "inf", "nan" or hex). */
static clcnn_status get_real(struct parser *P, const tok *v, const char *what, double *out) {
  int ok = v->len > 0;
  for (int i = 0; ok && i < v->len; i++) ok = strchr("0123456789.eE+-", v->s[i]) != NULL;
  char *end = NULL;
  double x = 0;
  if (ok) {
    /* the token ends at a blank, '#', a line end or the text's end, none of which strtod
     * takes into a number, and it is not empty, so strtod stays inside it */
    errno = 0;
    x = strtod(v->s, &end);
    ok = end == v->s + v->len && isfinite(x) && errno != ERANGE;
  }
  if (!ok)
    return perr(P, v->col, CLCNN_ERR_INVALID_ARGUMENT, "expected a number for %s, got " TOKF,
                what, TOKA(v));
  *out = x;
  return CLCNN_SUCCESS;
}

/* ---- one line ---- */

/* The numbers and options of the line's layer word (P->t[0]) checked against DEF: pos[] gets
 * the numbers, opt[j] the value of option def->opts[j] (len -1 when absent). */
static clcnn_status split_args(struct parser *P, const struct layerdef *def, tok pos[MAX_POS],
                               tok opt[MAX_OPTS]) {
  const tok *word = &P->t[0];
  int np = 0, nopts = 0;
  while (nopts < MAX_OPTS && def->opts[nopts]) nopts++;
  for (int j = 0; j < MAX_OPTS; j++) opt[j] = (tok){NULL, -1, 0};
  for (int i = 1; i < P->nt; i++) {
    const tok *t = &P->t[i];
    const char *eq = memchr(t->s, '=', t->len);
    if (!eq) {
      if (np == def->npos) {
        if (!def->npos && !nopts)
          return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                      "unexpected " TOKF ": %s takes no arguments", TOKA(t), def->word);
        if (!def->npos)
          return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                      "unexpected " TOKF ": %s takes only options (expected '%s')", TOKA(t),
                      def->word, def->usage);
        return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                    "unexpected " TOKF " after %s's %s (expected '%s')", TOKA(t), def->word,
                    def->pos, def->usage);
      }
      pos[np++] = *t;
      continue;
    }
    int klen = (int)(eq - t->s), j = 0;
    while (j < nopts && !((int)strlen(def->opts[j]) == klen && !memcmp(def->opts[j], t->s, klen)))
      j++;
    if (j == nopts) {
      if (!nopts)
        return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                    TOKF ": unknown option for %s (%s takes no options)", TOKA(t), def->word,
                    def->word);
      char list[128] = "";
      for (int k = 0; k < nopts; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "",
                 def->opts[k]);
      return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                  TOKF ": unknown option for %s (expected %s)", TOKA(t), def->word, list);
    }
    if (opt[j].len >= 0)
      return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                  "duplicate option '%s' for %s (first given at column %d)", def->opts[j],
                  def->word, opt[j].col - klen - 1);
    opt[j] = (tok){eq + 1, t->len - klen - 1, t->col + klen + 1};
  }
  if (np < def->npos)
    return perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                "%s needs %s, got %d of %d number%s (expected '%s')", def->word, def->pos, np,
                def->npos, def->npos > 1 ? "s" : "", def->usage);
  return CLCNN_SUCCESS;
}

/* Add the layer of this line to net. */
static clcnn_status add_line(struct parser *P, const struct layerdef *def, clcnn_net *net) {
  tok pos[MAX_POS], opt[MAX_OPTS];
  clcnn_status st = split_args(P, def, pos, opt);
  if (st) return st;
  char what[64];
#define WHAT(name) (snprintf(what, sizeof what, "%s's %s", def->word, (name)), what)
  const char *w = def->word;
  int layer = clcnn_net_num_layers(net);
  if (!strcmp(w, "conv")) {
    clcnn_conv2d_params p = {.bias = 1};
    if ((st = get_int(P, &pos[0], WHAT("output channels"), 1, &p.out_channels))) return st;
    if (opt[0].len < 0)
      return perr(P, P->t[0].col, CLCNN_ERR_INVALID_ARGUMENT,
                  "conv needs kernel=K (or kernel=KHxKW)");
    if ((st = get_pair(P, &opt[0], WHAT("kernel"), 1, &p.kh, &p.kw))) return st;
    p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = p.groups = 1;
    if (opt[1].len >= 0 && (st = get_pair(P, &opt[1], WHAT("stride"), 1, &p.stride_h, &p.stride_w)))
      return st;
    if (opt[2].len >= 0 && (st = get_pair(P, &opt[2], WHAT("pad"), 0, &p.pad_h, &p.pad_w)))
      return st;
    if (opt[3].len >= 0 &&
        (st = get_pair(P, &opt[3], WHAT("dilation"), 1, &p.dilation_h, &p.dilation_w)))
      return st;
    if (opt[4].len >= 0 && (st = get_int(P, &opt[4], WHAT("groups"), 1, &p.groups))) return st;
    if (opt[5].len >= 0 && (st = get_int(P, &opt[5], WHAT("bias"), 0, &p.bias))) return st;
    if (p.bias > 1)
      return perr(P, opt[5].col, CLCNN_ERR_INVALID_ARGUMENT, "expected 0 or 1 for %s, got " TOKF,
                  WHAT("bias"), TOKA(&opt[5]));
    st = clcnn_net_add_conv2d(net, &p);
  } else if (!strcmp(w, "linear")) {
    int out, bias = 1;
    if ((st = get_int(P, &pos[0], WHAT("output features"), 1, &out))) return st;
    if (opt[0].len >= 0 && (st = get_int(P, &opt[0], WHAT("bias"), 0, &bias))) return st;
    if (bias > 1)
      return perr(P, opt[0].col, CLCNN_ERR_INVALID_ARGUMENT, "expected 0 or 1 for %s, got " TOKF,
                  WHAT("bias"), TOKA(&opt[0]));
    st = clcnn_net_add_linear(net, out, bias);
  } else if (!strcmp(w, "relu")) {
    st = clcnn_net_add_relu(net);
  } else if (!strcmp(w, "leakyrelu")) {
    double slope = 0.01; /* torch.nn.LeakyReLU's */
    if (opt[0].len >= 0 && (st = get_real(P, &opt[0], WHAT("slope"), &slope))) return st;
    st = clcnn_net_add_leaky_relu(net, slope);
  } else if (!strcmp(w, "sigmoid")) {
    st = clcnn_net_add_sigmoid(net);
  } else if (!strcmp(w, "tanh")) {
    st = clcnn_net_add_tanh(net);
  } else if (!strcmp(w, "maxpool") || !strcmp(w, "avgpool")) {
    clcnn_pool2d_params p = {0};
    if ((st = get_pair(P, &pos[0], WHAT("kernel"), 1, &p.kh, &p.kw))) return st;
    p.stride_h = p.kh, p.stride_w = p.kw; /* as in PyTorch */
    if (opt[0].len >= 0 && (st = get_pair(P, &opt[0], WHAT("stride"), 1, &p.stride_h, &p.stride_w)))
      return st;
    if (opt[1].len >= 0 && (st = get_pair(P, &opt[1], WHAT("pad"), 0, &p.pad_h, &p.pad_w)))
      return st;
    st = w[0] == 'm' ? clcnn_net_add_maxpool2d(net, &p) : clcnn_net_add_avgpool2d(net, &p);
  } else if (!strcmp(w, "globalavgpool")) {
    st = clcnn_net_add_global_avgpool(net);
  } else if (!strcmp(w, "flatten")) {
    st = clcnn_net_add_flatten(net);
  } else if (!strcmp(w, "batchnorm")) {
    double eps = 1e-5, momentum = 0.1; /* torch.nn.BatchNorm2d's */
    if (opt[0].len >= 0) {
      if ((st = get_real(P, &opt[0], WHAT("eps"), &eps))) return st;
      if (!(eps > 0))
        return perr(P, opt[0].col, CLCNN_ERR_INVALID_ARGUMENT,
                    "expected a positive number for batchnorm's eps, got " TOKF, TOKA(&opt[0]));
    }
    if (opt[1].len >= 0) {
      if ((st = get_real(P, &opt[1], WHAT("momentum"), &momentum))) return st;
      if (!(momentum > 0 && momentum <= 1))
        return perr(P, opt[1].col, CLCNN_ERR_INVALID_ARGUMENT,
                    "expected batchnorm's momentum in (0, 1], got " TOKF, TOKA(&opt[1]));
    }
    st = clcnn_net_add_batchnorm(net, eps, momentum);
  } else if (!strcmp(w, "dropout")) {
    double p = 0.5;
    if (opt[0].len >= 0) {
      if ((st = get_real(P, &opt[0], WHAT("p"), &p))) return st;
      if (!(p >= 0 && p < 1))
        return perr(P, opt[0].col, CLCNN_ERR_INVALID_ARGUMENT,
                    "expected dropout's p in [0, 1), got " TOKF, TOKA(&opt[0]));
    }
    st = clcnn_net_add_dropout(net, p);
  }
#undef WHAT
  if (st) {
    /* the layer does not fit: the add function named it and the shapes */
    const char *e = clcnn_ctx_last_error(P->ctx);
    char why[1024];
    snprintf(why, sizeof why, "%s", *e ? strip_source_location(e) : clcnn_status_str(st));
    if (!strncmp(why, "layer ", 6)) /* the message names the layer already */
      return perr(P, P->t[0].col, st, "%s", why);
    return perr(P, P->t[0].col, st, "layer %d (%s): %s", layer, w, why);
  }
  return CLCNN_SUCCESS;
}

/* Split [s, end) into tokens at blanks; a '#' ends it. */
static clcnn_status tokenize(struct parser *P, const char *s, const char *end) {
  P->nt = 0;
  const char *line = s;
  while (s < end && *s != '#') {
    if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' || *s == '\f') {
      s++;
      continue;
    }
    const char *b = s;
    while (s < end && *s != '#' && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\v' &&
           *s != '\f')
      s++;
    if (P->nt == P->cap) {
      int cap = P->cap ? 2 * P->cap : 16;
      tok *t = realloc(P->t, cap * sizeof *t);
      if (!t) return perr(P, (int)(b - line) + 1, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
      P->t = t, P->cap = cap;
    }
    if (s - b > INT_MAX / 2 || b - line > INT_MAX / 2)
      return perr(P, 1, CLCNN_ERR_INVALID_ARGUMENT, "line too long");
    P->t[P->nt++] = (tok){b, (int)(s - b), (int)(b - line) + 1};
  }
  return CLCNN_SUCCESS;
}

/* The text [text, text + len), which holds no NUL byte. */
static clcnn_status parse(struct parser *P, const char *text, size_t len, int max_batch,
                          clcnn_net **out) {
  clcnn_net *net = NULL;
  int input_line = 0, input_col = 1;
  clcnn_status st = CLCNN_SUCCESS;
  const char *s = text, *end = text + len;
  if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3; /* a UTF-8 byte order mark */
  for (P->line = 1; s < end && !st; P->line++) {
    const char *eol = memchr(s, '\n', end - s);
    if (!eol) eol = end;
    if ((st = tokenize(P, s, eol))) break;
    s = eol + 1;
    if (!P->nt) continue;
    const tok *word = &P->t[0];
    const struct layerdef *def = NULL;
    for (int i = 0; i < NDEFS && !def; i++)
      if (tok_is(word, defs[i].word)) def = &defs[i];
    if (!def) {
      st = net ? perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                      "unknown layer " TOKF " (expected one of: " LAYER_WORDS ")", TOKA(word))
               : perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                      "unknown word " TOKF " (expected 'input C H W' first, then layers: " LAYER_WORDS ")",
                      TOKA(word));
    } else if (def == &defs[0]) {
      if (net) {
        st = perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                  "second 'input' line (the first is line %d): 'input C H W' must come once, "
                  "before the layers",
                  input_line);
        break;
      }
      tok pos[MAX_POS], opt[MAX_OPTS];
      int c, h, w;
      if ((st = split_args(P, def, pos, opt)) ||
          (st = get_int(P, &pos[0], "input's C (channels)", 1, &c)) ||
          (st = get_int(P, &pos[1], "input's H (height)", 1, &h)) ||
          (st = get_int(P, &pos[2], "input's W (width)", 1, &w)))
        break;
      if ((st = clcnn_net_create(P->ctx, max_batch, c, h, w, &net))) {
        const char *e = clcnn_ctx_last_error(P->ctx);
        char why[1024];
        snprintf(why, sizeof why, "%s", *e ? strip_source_location(e) : clcnn_status_str(st));
        st = perr(P, word->col, st, "input: %s", why);
        break;
      }
      input_line = P->line;
      input_col = word->col;
    } else if (!net) {
      st = perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                "expected 'input C H W' before the first layer, got " TOKF, TOKA(word));
    } else {
      st = add_line(P, def, net);
    }
  }
  if (!st && !net) {
    P->line = 1;
    st = perr(P, 1, CLCNN_ERR_INVALID_ARGUMENT,
              "no 'input C H W' line and no layers: the model is empty");
  } else if (!st && !clcnn_net_num_layers(net)) {
    P->line = input_line;
    st = perr(P, input_col, CLCNN_ERR_INVALID_ARGUMENT,
              "no layers after 'input' (expected lines such as: " LAYER_WORDS ")");
  }
  if (st) {
    clcnn_net_destroy(net);
    return st;
  }
  *out = net;
  return CLCNN_SUCCESS;
}

static clcnn_status from_text(clcnn_ctx *ctx, const char *text, size_t len, const char *filename,
                              int max_batch, clcnn_net **out, char *err, size_t err_size) {
  struct parser P = {.ctx = ctx, .file = filename ? filename : "<text>", .err = err,
                     .err_size = err_size, .line = 1};
  clcnn_status st;
  if (max_batch <= 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: max_batch %d must be positive", P.file, max_batch);
    if (err && err_size) snprintf(err, err_size, "%s", msg);
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s", msg);
  }
  const char *nul = memchr(text, 0, len);
  if (nul) {
    const char *bol = text;
    for (const char *c = text; c < nul; c++)
      if (*c == '\n') P.line++, bol = c + 1;
    st = perr(&P, (int)(nul - bol) + 1, CLCNN_ERR_INVALID_ARGUMENT,
              "a NUL byte: a model file is text");
  } else {
    st = parse(&P, text, len, max_batch, out);
  }
  free(P.t);
  return st;
}

/* A NULL pointer argument: the reason to err (and to ctx when there is one). */
static clcnn_status null_arg(clcnn_ctx *ctx, const char *fn, const char *arg, char *err,
                             size_t err_size) {
  if (err && err_size) snprintf(err, err_size, "%s: %s is NULL", fn, arg);
  return FAIL(ctx, CLCNN_ERR_NULL_POINTER, "%s: %s is NULL", fn, arg);
}

CLCNN_API clcnn_status clcnn_net_from_text(clcnn_ctx *ctx, const char *text, const char *filename,
                                           int max_batch, clcnn_net **out, char *err,
                                           size_t err_size) {
  if (out) *out = NULL;
  if (err && err_size) err[0] = 0;
  if (!out) return null_arg(ctx, "clcnn_net_from_text", "out", err, err_size);
  if (!ctx) return null_arg(ctx, "clcnn_net_from_text", "ctx", err, err_size);
  if (!text) return null_arg(ctx, "clcnn_net_from_text", "text", err, err_size);
  clcnn__clear_error(ctx);
  return from_text(ctx, text, strlen(text), filename, max_batch, out, err, err_size);
}

CLCNN_API clcnn_status clcnn_net_from_file(clcnn_ctx *ctx, const char *path, int max_batch,
                                           clcnn_net **out, char *err, size_t err_size) {
  if (out) *out = NULL;
  if (err && err_size) err[0] = 0;
  if (!out) return null_arg(ctx, "clcnn_net_from_file", "out", err, err_size);
  if (!ctx) return null_arg(ctx, "clcnn_net_from_file", "ctx", err, err_size);
  if (!path) return null_arg(ctx, "clcnn_net_from_file", "path", err, err_size);
  clcnn__clear_error(ctx);
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int e = 0;
  if (!f) {
    e = errno;
  } else {
    for (;;) {
      if (cap - len < 4096) {
        size_t ncap = cap ? 2 * cap : 8192;
        char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
        if (!nb) {
          free(buf);
          fclose(f);
          if (err && err_size) snprintf(err, err_size, "%s: out of host memory", path);
          return FAIL(ctx, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
        }
        buf = nb, cap = ncap;
      }
      size_t n = fread(buf + len, 1, cap - len, f);
      len += n;
      if (n == 0) {
        if (ferror(f)) e = errno ? errno : EIO;
        break;
      }
    }
    fclose(f);
  }
  if (!f || e) {
    free(buf);
    const char *why = strerror(e);
    if (err && err_size) snprintf(err, err_size, "%s: cannot read: %s", path, why);
    return FAIL(ctx, CLCNN_ERR_INVALID_ARGUMENT, "%s: cannot read: %s", path, why);
  }
  clcnn_status st = from_text(ctx, buf, len, path, max_batch, out, err, err_size);
  free(buf);
  return st;
}
