/* lib/model.c - model files: a net described one node per line, each line's word an op of the
 * op table, whose own parse function reads its arguments. Errors read "FILE:LINE:COL: what was
 * expected".
 *
 *   # comment                     (a '#' anywhere ends the line)
 *   input C H W                   (first, exactly once; the tensor named "input")
 *   [NAME =] OP[(IN, ...)] [numbers] [key=value ...]
 *                                 (a node; without parentheses it reads the previous layer
 *                                  line's output; unnamed, it is named by its index among the
 *                                  layer lines, as torch.nn.Sequential numbers its modules)
 *   [NAME =] LOSS(X) [key=value]  (loss lines, after the layer lines)
 *
 * The text is read in place: tokens point into it, so no line has a length limit. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

typedef struct {
  const char *s;
  int len;
  int col; /* 1-based */
} tok;

/* A token in a message: quoted by the format, cut at 60 characters. */
#define TOKF "'%.*s%s'"
#define TOKA(t) ((t)->len > 60 ? 60 : (t)->len), (t)->s, ((t)->len > 60 ? "..." : "")

enum { MAX_POS = 3 };

struct parser {
  clcnn_ctx *ctx;
  clcnn_net *net;
  const char *file;
  char *err;
  size_t err_size;
  int line;
  tok *t; /* the tokens of the current line */
  int nt, cap;
  struct defn *defs; /* every "NAME =" of the file, found before the lines are read */
  int ndefs, capdefs;
  char *warn;        /* warnings, one per line */
  clcnn_status last_st; /* of the last perr() */
};

struct defn {
  const char *s;
  int len, line, col;
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
  P->last_st = st;
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

/* The arguments of a line for its op's parse function. */
struct margs {
  struct parser *P;
  const struct op *op;
  const tok *word;
  tok pos[MAX_POS];
  int npos;
  tok opt[OP_MAX_OPTS]; /* by the op's option index; len -1 when absent */
};

const struct op *margs_op(struct margs *A) { return A->op; }

static int opt_index(const struct op *op, const char *name) {
  for (int j = 0; j < OP_MAX_OPTS && op->opts[j]; j++)
    if (!strcmp(op->opts[j], name)) return j;
  return -1;
}

/* The token of number POS or option OPT (NULL when the option is absent); *what its name in
 * messages ("conv's kernel"). */
static const tok *arg_tok(struct margs *A, int pos, const char *opt, char *what, size_t wsize) {
  if (pos >= 0) {
    snprintf(what, wsize, "%s's %s", A->op->word, A->op->pos_what[pos] ? A->op->pos_what[pos] : "number");
    return pos < A->npos ? &A->pos[pos] : NULL;
  }
  snprintf(what, wsize, "%s's %s", A->op->word, opt);
  int j = opt_index(A->op, opt);
  return j >= 0 && A->opt[j].len >= 0 ? &A->opt[j] : NULL;
}

int margs_int(struct margs *A, int pos, const char *opt, int min, int *out) {
  char what[96];
  const tok *t = arg_tok(A, pos, opt, what, sizeof what);
  if (!t) return 0;
  return get_int(A->P, t, what, min, out) ? -1 : 1;
}

int margs_pair(struct margs *A, int pos, const char *opt, int min, int *h, int *w) {
  char what[96];
  const tok *t = arg_tok(A, pos, opt, what, sizeof what);
  if (!t) return 0;
  return get_pair(A->P, t, what, min, h, w) ? -1 : 1;
}

int margs_real(struct margs *A, int pos, const char *opt, double *out) {
  char what[96];
  const tok *t = arg_tok(A, pos, opt, what, sizeof what);
  if (!t) return 0;
  return get_real(A->P, t, what, out) ? -1 : 1;
}

int margs_bool(struct margs *A, const char *opt, int *out) {
  char what[96];
  const tok *t = arg_tok(A, -1, opt, what, sizeof what);
  if (!t) return 0;
  int v;
  if (get_int(A->P, t, what, 0, &v)) return -1;
  if (v > 1) {
    perr(A->P, t->col, CLCNN_ERR_INVALID_ARGUMENT, "expected 0 or 1 for %s, got " TOKF, what, TOKA(t));
    return -1;
  }
  *out = v;
  return 1;
}

const char *margs_str(struct margs *A, const char *opt, int *len, int *col) {
  char what[96];
  const tok *t = arg_tok(A, -1, opt, what, sizeof what);
  if (!t) return NULL;
  *len = t->len, *col = t->col;
  return t->s;
}

tensor *margs_error(struct margs *A, const char *opt, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int j = opt ? opt_index(A->op, opt) : -1;
  if (j >= 0 && A->opt[j].len >= 0)
    perr(A->P, A->opt[j].col, CLCNN_ERR_INVALID_ARGUMENT, "%s, got " TOKF, msg, TOKA(&A->opt[j]));
  else
    perr(A->P, A->word->col, CLCNN_ERR_INVALID_ARGUMENT, "%s", msg);
  return NULL;
}

tensor *margs_missing(struct margs *A, const char *what) {
  perr(A->P, A->word->col, CLCNN_ERR_INVALID_ARGUMENT, "%s", what);
  return NULL;
}

/* The numbers and options of the line (tokens P->t[from..]) checked against OP into A. */
static clcnn_status split_args(struct parser *P, const struct op *op, const tok *word, int from, struct margs *A) {
  int nopts = 0;
  while (nopts < OP_MAX_OPTS && op->opts[nopts]) nopts++;
  A->P = P, A->op = op, A->word = word, A->npos = 0;
  for (int j = 0; j < OP_MAX_OPTS; j++) A->opt[j] = (tok){NULL, -1, 0};
  for (int i = from; i < P->nt; i++) {
    const tok *t = &P->t[i];
    const char *eq = memchr(t->s, '=', t->len);
    if (!eq) {
      if (A->npos == op->npos) {
        if (!op->npos && !nopts)
          return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, "unexpected " TOKF ": %s takes no arguments", TOKA(t),
                      op->word);
        if (!op->npos)
          return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT,
                      "unexpected " TOKF ": %s takes only options (expected '%s')", TOKA(t), op->word, op->usage);
        return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, "unexpected " TOKF " after %s's %s (expected '%s')",
                    TOKA(t), op->word, op->pos, op->usage);
      }
      A->pos[A->npos++] = *t;
      continue;
    }
    int klen = (int)(eq - t->s), j = 0;
    while (j < nopts && !((int)strlen(op->opts[j]) == klen && !memcmp(op->opts[j], t->s, klen))) j++;
    if (j == nopts) {
      if (!nopts)
        return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, TOKF ": unknown option for %s (%s takes no options)",
                    TOKA(t), op->word, op->word);
      char list[160] = "";
      for (int k = 0; k < nopts; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", op->opts[k]);
      return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, TOKF ": unknown option for %s (expected %s)", TOKA(t),
                  op->word, list);
    }
    if (A->opt[j].len >= 0)
      return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, "duplicate option '%s' for %s (first given at column %d)",
                  op->opts[j], op->word, A->opt[j].col - klen - 1);
    A->opt[j] = (tok){eq + 1, t->len - klen - 1, t->col + klen + 1};
  }
  if (A->npos < op->npos)
    return perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT, "%s needs %s, got %d of %d number%s (expected '%s')",
                op->word, op->pos, A->npos, op->npos, op->npos > 1 ? "s" : "", op->usage);
  return CLCNN_SUCCESS;
}

/* The words of the op table, for messages: the layers' or the losses'. */
static void op_words(char *buf, size_t size, int losses) {
  buf[0] = 0;
  for (int i = 0; clcnn__ops[i]; i++)
    if (((clcnn__ops[i]->flags & OP_LOSS) != 0) == losses)
      snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "", clcnn__ops[i]->word);
}

static const struct op *find_op(const tok *w) {
  for (int i = 0; clcnn__ops[i]; i++)
    if (tok_is(w, clcnn__ops[i]->word)) return clcnn__ops[i];
  return NULL;
}

static int is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_ident(char c) { return isalnum((unsigned char)c) || c == '_'; }
static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* The head of a line: "[NAME =] WORD[(IN, ...)]". Fills name (len 0: none), word and the inputs;
 * *rest points past it. */
struct head {
  tok name, word;
  tok in[64];
  int nin, parens;
};

static clcnn_status read_head(struct parser *P, const char *line, const char *end, struct head *h, const char **rest) {
  const char *s = line;
  memset(h, 0, sizeof *h);
#define COL(p) ((int)((p) - line) + 1)
  while (s < end && is_blank(*s)) s++;
  const char *a = s;
  while (s < end && is_ident(*s)) s++;
  tok first = {a, (int)(s - a), COL(a)};
  const char *t = s;
  while (t < end && is_blank(*t)) t++;
  if (first.len && t < end && *t == '=') { /* NAME = */
    if (!is_ident_start(first.s[0]))
      return perr(P, first.col, CLCNN_ERR_INVALID_ARGUMENT,
                  "bad name " TOKF ": a name is a letter or '_' followed by letters, digits or '_'", TOKA(&first));
    h->name = first;
    s = t + 1;
    while (s < end && is_blank(*s)) s++;
    a = s;
    while (s < end && is_ident(*s)) s++;
    first = (tok){a, (int)(s - a), COL(a)};
    if (!first.len) {
      const char *e = a;
      while (e < end && !is_blank(*e)) e++;
      tok bad = {a, (int)(e - a), COL(a)};
      return perr(P, COL(a), CLCNN_ERR_INVALID_ARGUMENT, "expected an op after '%.*s =', got " TOKF,
                  h->name.len > 60 ? 60 : h->name.len, h->name.s, TOKA(&bad));
    }
  }
  if (!first.len || (s < end && !is_blank(*s) && *s != '(')) { /* a word with odd characters: the whole token */
    const char *e = a;
    while (e < end && !is_blank(*e)) e++;
    first = (tok){a, (int)(e - a), COL(a)};
    h->word = first;
    *rest = e;
    return CLCNN_SUCCESS;
  }
  h->word = first;
  t = s;
  while (t < end && is_blank(*t)) t++;
  if (t < end && *t == '(') {
    h->parens = 1;
    s = t + 1;
    for (;;) {
      while (s < end && is_blank(*s)) s++;
      a = s;
      while (s < end && is_ident(*s)) s++;
      if (s == a) {
        if (s < end && *s == ')' && !h->nin)
          return perr(P, COL(s), CLCNN_ERR_INVALID_ARGUMENT, "%.*s(): expected the names of its inputs", first.len,
                      first.s);
        return perr(P, COL(s), CLCNN_ERR_INVALID_ARGUMENT, "expected the name of an input of %.*s%s", first.len,
                    first.s, s >= end ? ", got the end of the line" : "");
      }
      if (h->nin == 64)
        return perr(P, COL(a), CLCNN_ERR_INVALID_ARGUMENT, "%.*s: more than 64 inputs", first.len, first.s);
      h->in[h->nin++] = (tok){a, (int)(s - a), COL(a)};
      while (s < end && is_blank(*s)) s++;
      if (s < end && *s == ',') {
        s++;
        continue;
      }
      if (s < end && *s == ')') {
        s++;
        break;
      }
      return perr(P, COL(s), CLCNN_ERR_INVALID_ARGUMENT, "expected ',' or ')' in the inputs of %.*s%s", first.len,
                  first.s, s >= end ? ", got the end of the line" : "");
    }
  }
#undef COL
  *rest = s;
  return CLCNN_SUCCESS;
}

static const struct defn *find_def(struct parser *P, const tok *t) {
  for (int i = 0; i < P->ndefs; i++)
    if (P->defs[i].len == t->len && !memcmp(P->defs[i].s, t->s, t->len)) return &P->defs[i];
  return NULL;
}

/* Every "NAME =" of the text with its line, so that a use before the definition says so. */
static clcnn_status scan_defs(struct parser *P, const char *s, const char *end) {
  for (int line = 1; s < end; line++) {
    const char *eol = memchr(s, '\n', end - s);
    if (!eol) eol = end;
    const char *c = s;
    while (c < eol && is_blank(*c)) c++;
    const char *a = c;
    while (c < eol && is_ident(*c)) c++;
    const char *b = c;
    while (c < eol && is_blank(*c)) c++;
    if (b > a && c < eol && *c == '=' && is_ident_start(*a) && b - a < INT_MAX / 2) {
      if (P->ndefs == P->capdefs) {
        int cap = P->capdefs ? 2 * P->capdefs : 16;
        struct defn *d = realloc(P->defs, cap * sizeof *d);
        if (!d) return perr(P, 1, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        P->defs = d, P->capdefs = cap;
      }
      P->defs[P->ndefs++] = (struct defn){a, (int)(b - a), line, (int)(a - s) + 1};
    }
    s = eol + 1;
  }
  return CLCNN_SUCCESS;
}

static void warn(struct parser *P, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void warn(struct parser *P, int line, int col, const char *fmt, ...) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%s:%d:%d: warning: ", P->file, line, col);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - n, fmt, ap);
  va_end(ap);
  size_t old = P->warn ? strlen(P->warn) : 0, add = strlen(msg) + 2;
  char *w = realloc(P->warn, old + add);
  if (!w) return; /* a warning lost to a full memory */
  P->warn = w;
  snprintf(w + old, add, "%s\n", msg);
}

/* Build the node of this line into P->net. */
static clcnn_status add_line(struct parser *P, const struct head *h, const struct op *op, int from, int is_loss) {
  clcnn_net *net = P->net;
  char name[NAME_LEN] = "";
  if (h->name.len) {
    if (h->name.len >= NAME_LEN)
      return perr(P, h->name.col, CLCNN_ERR_INVALID_ARGUMENT, "name " TOKF " is longer than %d characters",
                  TOKA(&h->name), NAME_LEN - 1);
    memcpy(name, h->name.s, h->name.len);
    const struct defn *d = find_def(P, &h->name);
    if (d && d->line < P->line)
      return perr(P, h->name.col, CLCNN_ERR_INVALID_ARGUMENT, "name '%s' is defined twice (first on line %d)", name,
                  d->line);
  }
  tensor *in[64];
  int nin = 0;
  if (h->parens) {
    for (int i = 0; i < h->nin; i++) {
      const tok *t = &h->in[i];
      char nm[NAME_LEN];
      tensor *x = NULL;
      if (t->len < NAME_LEN) {
        memcpy(nm, t->s, t->len), nm[t->len] = 0;
        x = clcnn_net_tensor(net, nm);
      }
      if (x && x->src && (x->src->op->flags & OP_LOSS))
        return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, TOKF " is a loss: nothing reads a loss", TOKA(t));
      if (!x) {
        const struct defn *d = find_def(P, t);
        if (d && d->line >= P->line)
          return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, TOKF " is used before its definition on line %d",
                      TOKA(t), d->line);
        return perr(P, t->col, CLCNN_ERR_INVALID_ARGUMENT, "unknown name " TOKF " (no line above defines it)",
                    TOKA(t));
      }
      in[nin++] = x;
    }
  } else {
    in[nin++] = clcnn_net_output(net); /* the previous layer line's output */
  }
  if (nin < op->min_in || (op->max_in && nin > op->max_in)) {
    if (op->min_in == op->max_in)
      return perr(P, h->word.col, CLCNN_ERR_INVALID_ARGUMENT, "%s takes %d input%s, got %d (expected '%s')", op->word,
                  op->min_in, op->min_in > 1 ? "s" : "", nin, op->usage);
    return perr(P, h->word.col, CLCNN_ERR_INVALID_ARGUMENT, "%s takes at least %d inputs, got %d (expected '%s')",
                op->word, op->min_in, nin, op->usage);
  }
  struct margs A;
  clcnn_status st = split_args(P, op, &h->word, from, &A);
  if (st) return st;
  int layer = clcnn_net_num_layers(net);
  clcnn__clear_error(P->ctx);
  P->last_st = CLCNN_SUCCESS;
  if (op->parse(&A, net, in, nin, name[0] ? name : NULL)) return CLCNN_SUCCESS;
  /* a bad argument, which the parse function reported, or a node that does not fit: the builder
   * named it and the shapes */
  if (P->last_st) return P->last_st;
  st = graph_status(net);
  if (!st) st = CLCNN_ERR_INVALID_ARGUMENT;
  const char *e = clcnn_ctx_last_error(P->ctx);
  char why[1024];
  snprintf(why, sizeof why, "%s", *e ? strip_source_location(e) : clcnn_status_str(st));
  if (!strncmp(why, "layer ", 6) || !strncmp(why, "loss ", 5)) /* the message names the node already */
    return perr(P, h->word.col, st, "%s", why);
  if (!strncmp(why, "name ", 5)) return perr(P, h->name.len ? h->name.col : h->word.col, st, "%s", why);
  if (is_loss) return perr(P, h->word.col, st, "loss (%s): %s", op->word, why);
  return perr(P, h->word.col, st, "layer %d (%s): %s", layer, op->word, why);
}

/* Split [s, end) into tokens at blanks; a '#' ends it. */
static clcnn_status tokenize(struct parser *P, const char *line, const char *s, const char *end) {
  P->nt = 0;
  while (s < end && *s != '#') {
    if (is_blank(*s)) {
      s++;
      continue;
    }
    const char *b = s;
    while (s < end && *s != '#' && !is_blank(*s)) s++;
    if (P->nt == P->cap) {
      int cap = P->cap ? 2 * P->cap : 16;
      tok *t = realloc(P->t, cap * sizeof *t);
      if (!t) return perr(P, (int)(b - line) + 1, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
      P->t = t, P->cap = cap;
    }
    if (s - b > INT_MAX / 2 || b - line > INT_MAX / 2) return perr(P, 1, CLCNN_ERR_INVALID_ARGUMENT, "line too long");
    P->t[P->nt++] = (tok){b, (int)(s - b), (int)(b - line) + 1};
  }
  return CLCNN_SUCCESS;
}

/* Warn about each layer line whose output nothing reads (it is not the net's output either). */
static void warn_unused(struct parser *P, const int *lines, const int *cols) {
  clcnn_net *net = P->net;
  int n = clcnn_net_num_layers(net);
  for (int i = 0; i < n - 1; i++) {
    tensor *t = clcnn_net_tensor(net, clcnn_net_layer_name(net, i));
    if (t && !t->uses)
      warn(P, lines[i], cols[i], "the output of layer %d ('%s') is not used", i, t->name);
  }
}

/* The text [text, text + len), which holds no NUL byte. */
static clcnn_status parse(struct parser *P, const char *text, size_t len, int max_batch, clcnn_net **out) {
  int input_line = 0, input_col = 1, loss_line = 0;
  clcnn_status st = CLCNN_SUCCESS;
  const char *s = text, *end = text + len;
  int *lines = NULL, *cols = NULL, caplines = 0;
  if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3; /* a UTF-8 byte order mark */
  if ((st = scan_defs(P, s, end))) return st;
  char words[512], losses[128];
  op_words(words, sizeof words, 0);
  op_words(losses, sizeof losses, 1);
  for (P->line = 1; s < end && !st; P->line++) {
    const char *eol = memchr(s, '\n', end - s);
    if (!eol) eol = end;
    const char *line = s, *hash = memchr(s, '#', eol - s);
    const char *stop = hash ? hash : eol;
    s = eol + 1;
    if ((st = tokenize(P, line, line, stop))) break;
    if (!P->nt) continue;
    struct head h;
    const char *rest = NULL;
    if ((st = read_head(P, line, stop, &h, &rest))) break;
    const tok *word = &h.word;
    if (tok_is(word, "input") && !h.name.len && !h.parens) {
      if (P->net) {
        st = perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                  "second 'input' line (the first is line %d): 'input C H W' must come once, before the layers",
                  input_line);
        break;
      }
      static const struct op input_op = {.word = "input", .npos = 3, .pos = "C H W",
                                         .pos_what = {"C (channels)", "H (height)", "W (width)"},
                                         .usage = "input C H W"};
      struct margs A;
      int c, hh, w;
      if ((st = split_args(P, &input_op, word, 1, &A)) ||
          (margs_int(&A, 0, NULL, 1, &c) < 0 || margs_int(&A, 1, NULL, 1, &hh) < 0 || margs_int(&A, 2, NULL, 1, &w) < 0)) {
        if (!st) st = CLCNN_ERR_INVALID_ARGUMENT;
        break;
      }
      if ((st = clcnn_net_create(P->ctx, max_batch, c, hh, w, &P->net))) {
        const char *e = clcnn_ctx_last_error(P->ctx);
        char why[1024];
        snprintf(why, sizeof why, "%s", *e ? strip_source_location(e) : clcnn_status_str(st));
        st = perr(P, word->col, st, "input: %s", why);
        break;
      }
      input_line = P->line;
      input_col = word->col;
      continue;
    }
    const struct op *op = find_op(word);
    if (!op) {
      st = P->net ? perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                         "unknown layer " TOKF " (expected one of: %s; or a loss: %s)", TOKA(word), words, losses)
                  : perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                         "unknown word " TOKF " (expected 'input C H W' first, then layers: %s)", TOKA(word), words);
      break;
    }
    if (!P->net) {
      st = perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT, "expected 'input C H W' before the first layer, got " TOKF,
                TOKA(word));
      break;
    }
    int is_loss = (op->flags & OP_LOSS) != 0;
    if (!is_loss && loss_line) {
      st = perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT,
                "a layer after the loss on line %d: loss lines come after the layer lines", loss_line);
      break;
    }
    if (is_loss && !clcnn_net_num_layers(P->net)) {
      st = perr(P, word->col, CLCNN_ERR_INVALID_ARGUMENT, "a loss before any layer");
      break;
    }
    /* the tokens after the head are the arguments */
    int from = 0;
    while (from < P->nt && P->t[from].s < rest) from++;
    if (from && P->t[from - 1].s + P->t[from - 1].len > rest) {
      st = perr(P, (int)(rest - line) + 1, CLCNN_ERR_INVALID_ARGUMENT, "expected a blank after %.*s%s",
                word->len > 60 ? 60 : word->len, word->s, h.parens ? "(...)" : "");
      break;
    }
    int layer = clcnn_net_num_layers(P->net);
    if (!is_loss && layer == caplines) {
      caplines = caplines ? 2 * caplines : 16;
      int *nl = realloc(lines, caplines * sizeof *nl), *nc = nl ? realloc(cols, caplines * sizeof *nc) : NULL;
      if (nl) lines = nl;
      if (nc) cols = nc;
      if (!nl || !nc) {
        st = perr(P, word->col, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        break;
      }
    }
    if ((st = add_line(P, &h, op, from, is_loss))) break;
    if (is_loss && !loss_line) loss_line = P->line;
    if (!is_loss) lines[layer] = P->line, cols[layer] = h.name.len ? h.name.col : word->col;
  }
  if (!st && !P->net) {
    P->line = 1;
    st = perr(P, 1, CLCNN_ERR_INVALID_ARGUMENT, "no 'input C H W' line and no layers: the model is empty");
  } else if (!st && !clcnn_net_num_layers(P->net)) {
    P->line = input_line;
    st = perr(P, input_col, CLCNN_ERR_INVALID_ARGUMENT, "no layers after 'input' (expected lines such as: %s)", words);
  }
  if (!st) warn_unused(P, lines, cols);
  free(lines);
  free(cols);
  if (st) {
    clcnn_net_destroy(P->net);
    P->net = NULL;
    return st;
  }
  if (P->warn) graph_set_warnings(P->net, P->warn), P->warn = NULL;
  *out = P->net;
  return CLCNN_SUCCESS;
}

static clcnn_status from_text(clcnn_ctx *ctx, const char *text, size_t len, const char *filename, int max_batch,
                              clcnn_net **out, char *err, size_t err_size) {
  struct parser P = {.ctx = ctx, .file = filename ? filename : "<text>", .err = err, .err_size = err_size, .line = 1};
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
    st = perr(&P, (int)(nul - bol) + 1, CLCNN_ERR_INVALID_ARGUMENT, "a NUL byte: a model file is text");
  } else {
    st = parse(&P, text, len, max_batch, out);
  }
  free(P.t);
  free(P.defs);
  free(P.warn);
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
