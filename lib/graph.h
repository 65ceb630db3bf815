/* lib/graph.h - a net as a graph of named tensors and nodes, and the op table: every kind of
 * node is one `struct op`, defined in the kind's own file (lib/X.c, kernels in cl/X.cl) and
 * listed once in lib/ops.c. Nothing outside a kind's files names the kind.
 *
 * A node reads its input tensors and writes its output tensor. Forward writes out->v; backward
 * reads out->g (the gradient of the output, complete by then: backward runs in reverse
 * topological order) and writes each wanted input gradient dx[i] with '=' (the graph sums the
 * gradients of a tensor read by several nodes), accumulating parameter gradients with '+='. */
#ifndef CLCNN_GRAPH_H
#define CLCNN_GRAPH_H

#include "internal.h"

#define NAME_LEN 64 /* names: at most 63 characters */

struct node;
struct margs;

/* A tensor: the output of a node, or the net's input; (n, c, h, w) for a batch of n. */
struct clcnn_tensor {
  char name[NAME_LEN];
  int c, h, w;
  struct node *src;     /* producer; NULL for the net's input */
  int id;               /* position in the net's tensors, = topological order */
  int uses;             /* nodes that read it (an input read twice by one node counts twice) */
  /* set when the graph is finished (plan_graph) */
  int needs_grad;       /* a gradient flows into it (towards a parameter or the wanted input) */
  struct clcnn_tensor *valias, *galias; /* value / gradient kept in that tensor's storage */
  int no_value;         /* nothing reads its value (a fusion writes past it) */
  int kept;             /* its value stays readable after the forward (clcnn_net_keep_tensor) */
  cbuf val;             /* the net input's storage */
  cbuf *vbuf, *gbuf;    /* a root's buffers (the plan's, shared by tensors that do not live at once) */
  cbuf *v, *g;          /* where its value and gradient are */
  int gseen;            /* backward: its gradient has been written in this pass */
};
typedef struct clcnn_tensor tensor;

static inline size_t tensor_size(const tensor *t) { return (size_t)t->c * t->h * t->w; }

/* A parameter (value and gradient) or a buffer (value only) of a node, under PyTorch's name. */
enum { PINIT_WEIGHT, PINIT_BIAS, PINIT_ONE, PINIT_ZERO };
struct param {
  const char *name; /* "weight", "running_mean": static */
  cbuf v, g;
  int ndim, dims[4];
  size_t count;
  int init;               /* PINIT_*: weights and biases take the init rule, the rest a constant */
  double fan_in, fan_out; /* as torch.nn.init computes them */
};
#define NODE_PARAMS 2
#define NODE_BUFFERS 2

struct node {
  const struct op *op;
  clcnn_net *net;       /* the net it is in */
  char name[NAME_LEN];
  int index;            /* among the layer nodes (torch.nn.Sequential's numbering); losses: among
                           the losses */
  tensor **in;
  int nin;
  tensor *out;
  struct param par[NODE_PARAMS];
  int npar;
  struct param buf[NODE_BUFFERS]; /* real buffers; num_batches_tracked below */
  int nbuf;
  int has_nbt;
  int64_t nbt;
  cbuf **dx;            /* backward: where input i's gradient goes, NULL when not wanted */
  int training;         /* the mode of the last forward */
  uint64_t key;         /* this step's key for counter-based random numbers (dropout) */
  int fused;            /* another node does this one's work (set by the fusion pass) */
  double weight;        /* a loss: its weight in the total */
  int have_targets;     /* a loss: targets were given since the last forward */
  evlist prof[2];
  void *priv;           /* the kind's own state */
};

static inline int node_in_size(const struct node *nd) { return (int)tensor_size(nd->in[0]); }

/* What the buffer plan does with each buffer: make it, or count it into an estimate. */
enum { SHARED_CONV_GEMM, SHARED_CONV_COLGRAD, PLAN_SHARED }; /* the net's shared scratch */
struct plan {
  clcnn_ctx *ctx;
  int count_only;
  clcnn_memory_estimate *m;
  struct scratch_need need;
  size_t shared[PLAN_SHARED]; /* the largest request for each shared buffer */
};
/* Make buffer b of BYTES (count_only: add its size to *part of the estimate). */
clcnn_status plan_buf(struct plan *p, size_t *part, cbuf *b, size_t bytes, const char *what);
/* Ask for BYTES of the net's shared scratch buffer SLOT: for what a node writes and reads again
 * within one of its passes, so that every node can use the same buffer (the event chain orders
 * them). graph_shared() gives it at run time. */
void plan_shared(struct plan *p, int slot, size_t bytes);
cbuf *graph_shared(clcnn_net *net, int slot);
#define PLAN_SCRATCH(p) (&(p)->m->scratch)
#define PLAN_ACT(p) (&(p)->m->activations)

enum {
  OP_VIEW = 1,  /* the output is the input's memory with another shape: no commands */
  OP_LOSS = 2,  /* a loss: reads targets, its output is the loss (1 value) */
  OP_RANDOM = 4,   /* takes a key for random numbers each training forward */
  OP_NO_BWD_X = 8, /* backward does not read the inputs' values (they may be reused after the forward) */
  OP_NO_BWD_Y = 16, /* backward does not read the output's value */
  OP_DEFAULT_LOSS = 32 /* the loss a net without one gets (cross-entropy over class labels) */
};
enum { OP_MAX_OPTS = 8 };

struct op {
  const char *word;           /* the model-file word */
  const char *kind;           /* the kind's name in messages: "conv2d" */
  int type;                   /* clcnn_layer_type */
  size_t priv_size;           /* the kind's state (node->priv) */
  const void *defaults;       /* its state when nothing is given (a net's default loss) */
  unsigned flags;
  int min_in, max_in;         /* how many inputs (max_in 0: any number) */
  /* model file: the numbers before the options, their names, the option names, the usage */
  int npos;
  const char *pos;              /* "OUT", "C H W" */
  const char *pos_what[3];      /* each number in messages: "output channels" */
  const char *opts[OP_MAX_OPTS];
  const char *usage;
  /* a model-file line: read its arguments from A and build the node (through the kind's
   * public builder); NULL on error, with the reason given to A */
  tensor *(*parse)(struct margs *A, clcnn_net *net, tensor **in, int nin, const char *name);
  /* check the arguments against the inputs, set out's shape, add the parameters and buffers
   * (node_param, node_buffer); the graph allocates and zeroes them after */
  clcnn_status (*setup)(clcnn_ctx *ctx, struct node *nd);
  /* the kind's own buffers for batches up to max_batch (through plan_buf), when the graph is
   * finished, and again when memory is estimated */
  clcnn_status (*alloc)(struct plan *p, struct node *nd, int max_batch);
  /* the context's scratch a training step of n samples reserves */
  void (*need)(clcnn_ctx *ctx, const struct node *nd, int n, struct scratch_need *need);
  void (*release)(struct node *nd); /* free the kind's buffers (not priv itself) */
  clcnn_status (*forward)(clcnn_ctx *ctx, struct node *nd, int n);
  clcnn_status (*backward)(clcnn_ctx *ctx, struct node *nd, int n);
  void (*describe)(const struct node *nd, char *buf, size_t size);
  /* the fusion pass: decide what this node does for the nodes after it (and mark them fused,
   * and their tensors' storage as aliases); first undo any earlier decision */
  void (*fuse)(clcnn_net *net, struct node *nd);
  /* losses: take this batch's targets (n samples) from the host, checking them; the loss's value
   * (blocking); the buffer the targets are copied into (for clcnn_net_wait_inputs). backward
   * computes the loss and writes its gradient, times the node's weight, to dx[0]. */
  clcnn_status (*targets)(clcnn_ctx *ctx, struct node *nd, const void *targets, int n);
  clcnn_status (*value)(clcnn_ctx *ctx, struct node *nd, double *value);
  cbuf *(*target_buf)(struct node *nd);
  /* the classes of its labels (0: its targets are reals) and how many targets a sample has */
  void (*target_shape)(const struct node *nd, int *classes, int *per_sample);
};

/* The op table (lib/ops.c), ended by NULL. */
extern const struct op *const clcnn__ops[];

/* ---- for the kinds' files ---- */
/* Add a node of OP reading IN to the net, with the kind's state PRIV (moved in: freed by the
 * graph, also on failure; copied from PRIV_SIZE bytes). Returns the output, or NULL with the
 * reason in the context (a NULL among IN returns NULL and keeps the earlier reason). */
tensor *graph_add(clcnn_net *net, const struct op *op, tensor *const *in, int nin, const char *name,
                  const void *priv, size_t priv_size);
/* A builder's own failure: the reason to the context, the status for graph_status; NULL. */
tensor *graph_fail(clcnn_net *net, clcnn_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The status of the last graph_add() on the net: 0 when it made its node. */
clcnn_status graph_status(const clcnn_net *net);
/* A loss node of OP on X with WEIGHT (its weight in the total loss); as graph_add. */
tensor *graph_add_loss(clcnn_net *net, const struct op *op, tensor *x, double weight, const char *name,
                       const void *priv, size_t priv_size);
/* Set up parameter or buffer i of a node (in setup). */
void node_param(struct node *nd, const char *name, int ndim, const int *dims, int init, double fan_in,
                double fan_out);
void node_buffer(struct node *nd, const char *name, int ndim, const int *dims, int init);
/* The node's position in messages: "layer 3 (conv 'b1c1')". */
const char *node_where(const struct node *nd, char *buf, size_t size);
#define WHERE(nd) node_where((nd), (char[160]){0}, 160)
/* The node that alone reads t (no other node or loss does) when t is not the net's output: what
 * a fusion may join; NULL otherwise. */
struct node *graph_sole_reader(clcnn_net *net, const tensor *t);
/* Whether t is the net's output or read by a loss */
int graph_is_output(clcnn_net *net, const tensor *t);
/* The net's op-independent pieces for kinds that need them */
clcnn_ctx *graph_ctx(clcnn_net *net);
/* Hand the net the model file's warnings (a string it frees). */
void graph_set_warnings(clcnn_net *net, char *text);
/* The global index of the batch's first sample (clcnn_net_set_batch_offset): random numbers
 * keyed by it are the same however a global batch is split among replicas. */
int64_t graph_batch_offset(const clcnn_net *net);
/* The net's running sums of the losses, right predictions and samples (3 reals). */
cbuf *graph_train_stats(clcnn_net *net);
/* util.cl: y = x (n reals) and y += x. */
clcnn_status graph_copy(clcnn_ctx *ctx, cbuf *y, cbuf *x, size_t n, int accumulate);
/* a loss node's value: the one real of the context's precision in LOSS, read (blocking) */
clcnn_status graph_read_loss(clcnn_ctx *ctx, cbuf *loss, double *v);

/* ---- model-file arguments (lib/model.c), for the ops' parse functions ---- */
/* Number i (0-based) of the line, or option NAME: 1 when given (and *out read), 0 when absent
 * (*out untouched), -1 on a bad value (the reason is given). */
int margs_int(struct margs *A, int pos, const char *opt, int min, int *out);
int margs_pair(struct margs *A, int pos, const char *opt, int min, int *h, int *w);
int margs_real(struct margs *A, int pos, const char *opt, double *out);
/* The op of the line being read. */
const struct op *margs_op(struct margs *A);
/* Option NAME as 0 or 1 (bias=0|1). */
int margs_bool(struct margs *A, const char *opt, int *out);
/* The option's raw value (NULL when absent); *col its column. */
const char *margs_str(struct margs *A, const char *opt, int *len, int *col);
/* An error at the option (NULL: the op's word): "FILE:LINE:COL: ..."; returns NULL for parse. */
tensor *margs_error(struct margs *A, const char *opt, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A required option that is absent. */
tensor *margs_missing(struct margs *A, const char *what);

#endif
