/* tools/clcnn-train.c - train a CNN described in a model file on a real data set, with
 * torch.optim's math, and keep the result in safetensors files that PyTorch loads.
 *
 *   clcnn-train MODEL [--data DIR] [--epochs N | --steps N] [--batch N] [--optimizer NAME]
 *               [--lr X] [--momentum X] [--nesterov] [--weight-decay X] [--schedule step|cosine]
 *               [--seed N] [--no-shuffle] [--augment SPEC] [--init FILE] [--resume FILE]
 *               [--save FILE]
 *               [--device SEL] [--profile FILE] [--eval] [--predict DIR --out OUTDIR] ...
 *
 * Checkpoints: the tensors are the state_dict of the equivalent torch.nn.Sequential (F32), and
 * the training state lives in the safetensors metadata (strings), so that PyTorch's strict
 * load_state_dict() sees exactly the model's keys. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clcnn.h"
#include "common.h"
#include "dist.h"
#include "size.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_REPLICAS 64 /* devices --device may list */


/* ---- Ctrl-C: the first stops after the current step (with a checkpoint when --save was given),
 * a second exits at once. The handler only sets a flag and writes to stderr, both safe in a
 * signal handler; the training loop looks at the flag after each step. ---- */
static volatile sig_atomic_t interrupted; /* the signal that asked to stop, or 0 */

static void on_interrupt(int sig) {
  static const char first[] = "\nclcnn-train: interrupted: stopping after this step (again to quit at once)\n",
                    again[] = "\nclcnn-train: interrupted again: quitting now\n";
  if (interrupted) {
    ssize_t r = write(STDERR_FILENO, again, sizeof again - 1);
    (void)r;
    _exit(128 + sig);
  }
  interrupted = sig;
  ssize_t r = write(STDERR_FILENO, first, sizeof first - 1);
  (void)r;
}

static void catch_interrupts(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* a blocking read of the device carries on */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* Whether to stop: a signal to this process, or under MPI to any rank. Every rank calls it at the
 * same points, so all stop after the same step. */
static int stop_asked(const struct dist *D) {
  if (D->size == 1) return interrupted != 0;
  /* the ranks' common answer, not this rank's flag: a signal landing after the vote counts at the
   * next one, on every rank alike */
  int any = dist_any(interrupted);
  if (any && !interrupted) interrupted = SIGTERM;
  return any;
}

/* ---- options ---- */
struct opts {
  const char *model, *data, *init, *resume, *save, *device, *profile, *init_rule, *predict, *out, *log, *plot;
  long epochs, steps, batch, seed, step_size, log_every;
  uint64_t mem_limit, alloc_limit; /* --mem-limit, --alloc-limit (0: the device's) */
  int optimizer; /* clcnn_optim_kind */
  double lr, momentum, weight_decay, gamma, dampening, beta1, beta2, eps, alpha;
  int have_lr, have_momentum, have_wd, have_beta1, have_beta2, have_eps, have_alpha;
  int nesterov, no_shuffle, eval_only, normalize, quiet;
  const char *schedule;
  clcnn_augment aug; /* --augment */
  int replicas;      /* devices --device lists (1: one device) */
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s MODEL [options]\n"
          "Train the network described in the model file MODEL (one layer per line) on a data set.\n\n"
          "  --data DIR            IDX (MNIST, Fashion-MNIST) or CIFAR-10 binary files (default %s)\n"
          "  --epochs N            epochs to train (default 5)\n"
          "  --steps N             train N batches instead of whole epochs\n"
          "  --batch N             batch size (default 16)\n"
          "  --optimizer NAME      sgd, adam, adamw or rmsprop (default adam)\n"
          "  --lr X                learning rate (default: torch.optim's; sgd 0.01)\n"
          "  --momentum X          sgd and rmsprop momentum (default 0)\n"
          "  --nesterov            sgd with Nesterov momentum\n"
          "  --dampening X         sgd dampening (default 0)\n"
          "  --weight-decay X      weight decay (default 0; adamw 0.01)\n"
          "  --betas B1,B2         adam/adamw betas (default 0.9,0.999)\n"
          "  --eps X               adam/adamw/rmsprop eps (default 1e-8)\n"
          "  --alpha X             rmsprop smoothing (default 0.99)\n"
          "  --schedule NAME       step (StepLR) or cosine (CosineAnnealingLR over the epochs)\n"
          "  --step-size N         StepLR's step_size in epochs (default 1/3 of the epochs)\n"
          "  --gamma X             StepLR's gamma (default 0.1)\n"
          "  --init-rule NAME      default (torch.nn's), he, xavier or dcgan (N(0, 0.02))\n"
          "  --normalize           scale inputs by the training set's per-channel mean and std\n"
          "  --seed N              seed for initialisation, shuffling and dropout (default 1)\n"
          "  --no-shuffle          keep the data set's order\n"
          "  --augment SPEC        random training augmentation: none (default) or a comma-separated\n"
          "                        list of hflip (RandomHorizontalFlip) and crop=P (RandomCrop with\n"
          "                        padding P, filled with black), drawn from (seed, epoch, sample)\n"
          "  --init FILE           start from the weights in a safetensors file (also PyTorch's)\n"
          "  --resume FILE         continue the training saved in a checkpoint\n"
          "  --save FILE           write a checkpoint after each epoch and at the end\n"
          "  --device SEL          P:D, gpu, cpu or part of a device name (default $CLCNN_DEVICE, else\n"
          "                        the first GPU, else the first device); or several, data parallel: a\n"
          "                        comma-separated list (0:0,0:1), gpu:all, cpu:all or all\n"
          "  --profile FILE        per-layer kernel times as a Chrome trace, and a table of them\n"
          "  --eval                only evaluate the test set with the given weights\n"
          "  --predict DIR         run the net with the given weights on the PNG images in DIR (or\n"
          "                        DIR/images); --out OUTDIR gets, for a segmentation net, masks/NAME.png\n"
          "                        (palette PNG, the index the class) and overlays/NAME.png; for a\n"
          "                        detector, labels/NAME.txt (class cx cy w h score) and boxes/NAME.png\n"
          "  --out OUTDIR          where --predict writes (created when missing)\n"
          "  --mem-limit SIZE      refuse a batch that needs more device memory than SIZE (bytes, or\n"
          "                        with K, M, G or T: KiB..TiB; default: the device's global memory)\n"
          "  --alloc-limit SIZE    the same for the largest buffer (default: the device's largest)\n"
          "  --log-every N         when not on a terminal, a progress line every N batches\n"
          "  --log FILE            append one JSON object a line to FILE: each progress line's step,\n"
          "                        loss, learning rate and images/s, and each epoch's training and\n"
          "                        test loss and metrics\n"
          "  --plot FILE.svg       draw the training and test curves (loss and the task's metric\n"
          "                        against the epoch) as an SVG file, again after each epoch\n"
          "  -q, --quiet           no progress lines, only the epoch lines and the summary\n"
          "  -h, --help            this text;  --version  the version\n",
          prog, DEFAULT_DATA);
}

/* Option parsing returns instead of exiting (the fuzz harness tests/fuzz/fuzz_cmdline.c calls it):
 * ARGS_OK, ARGS_HELP, ARGS_VERSION, or ARGS_USAGE with the reason in msg (tools/common.h). */
/* --mem-limit, --alloc-limit: a size as tools/size.h reads it, at least 1. */
static int parse_size(const char *flag, const char *s, uint64_t *out, char *msg, size_t msize) {
  if (!(*out = parse_size_bytes(s)))
    USAGE_ERROR("%s: '%s' is not a size: a positive number of bytes, or one followed by K, M, G or T", flag, s);
  return ARGS_OK;
}

static int parse_optimizer(const char *s, int *out, char *msg, size_t msize) {
  if (!strcmp(s, "sgd")) *out = CLCNN_OPTIM_SGD;
  else if (!strcmp(s, "adam")) *out = CLCNN_OPTIM_ADAM;
  else if (!strcmp(s, "adamw")) *out = CLCNN_OPTIM_ADAMW;
  else if (!strcmp(s, "rmsprop")) *out = CLCNN_OPTIM_RMSPROP;
  else USAGE_ERROR("--optimizer: '%s' is not one of sgd, adam, adamw, rmsprop", s);
  return ARGS_OK;
}
static const char *optimizer_name(int k) {
  static const char *const n[] = {"sgd", "adam", "adamw", "rmsprop"};
  return k >= 0 && k < 4 ? n[k] : "?";
}

enum {
  O_DATA = 256, O_EPOCHS, O_STEPS, O_BATCH, O_OPT, O_LR, O_MOM, O_NEST, O_WD, O_SCHED, O_SEED,
  O_NOSHUF, O_INIT, O_RESUME, O_SAVE, O_DEVICE, O_PROFILE, O_EVAL, O_PREDICT, O_OUT, O_STEPSIZE, O_GAMMA, O_DAMP,
  O_BETAS, O_EPS, O_ALPHA, O_INITRULE, O_NORM, O_LOGEVERY, O_VERSION, O_MEMLIMIT, O_ALLOCLIMIT, O_AUGMENT, O_LOG, O_PLOT
};

static int parse_args(int argc, char **argv, struct opts *o, char *msg, size_t msize) {
  static const struct option longopts[] = {
      {"data", 1, 0, O_DATA},         {"epochs", 1, 0, O_EPOCHS},     {"steps", 1, 0, O_STEPS},
      {"batch", 1, 0, O_BATCH},       {"optimizer", 1, 0, O_OPT},     {"lr", 1, 0, O_LR},
      {"momentum", 1, 0, O_MOM},      {"nesterov", 0, 0, O_NEST},     {"weight-decay", 1, 0, O_WD},
      {"schedule", 1, 0, O_SCHED},    {"seed", 1, 0, O_SEED},         {"no-shuffle", 0, 0, O_NOSHUF},
      {"init", 1, 0, O_INIT},         {"resume", 1, 0, O_RESUME},     {"save", 1, 0, O_SAVE},
      {"device", 1, 0, O_DEVICE},     {"profile", 1, 0, O_PROFILE},   {"eval", 0, 0, O_EVAL},
      {"step-size", 1, 0, O_STEPSIZE}, {"gamma", 1, 0, O_GAMMA},      {"dampening", 1, 0, O_DAMP},
      {"betas", 1, 0, O_BETAS},       {"eps", 1, 0, O_EPS},           {"alpha", 1, 0, O_ALPHA},
      {"init-rule", 1, 0, O_INITRULE}, {"normalize", 0, 0, O_NORM},   {"log-every", 1, 0, O_LOGEVERY},
      {"quiet", 0, 0, 'q'},           {"help", 0, 0, 'h'},            {"version", 0, 0, O_VERSION},
      {"mem-limit", 1, 0, O_MEMLIMIT}, {"alloc-limit", 1, 0, O_ALLOCLIMIT}, {"augment", 1, 0, O_AUGMENT},
      {"predict", 1, 0, O_PREDICT},   {"out", 1, 0, O_OUT},           {"log", 1, 0, O_LOG},
      {"plot", 1, 0, O_PLOT},         {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->data = DEFAULT_DATA;
  o->batch = 16;
  o->seed = 1;
  o->optimizer = CLCNN_OPTIM_ADAM;
  o->gamma = 0.1;
  o->init_rule = "default";
  int have_epochs = 0, c, r = ARGS_OK;
  opterr = 0;
  optind = 0; /* a fresh scan, also when called again */
  while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    const char *flag = optind > 1 ? argv[optind - 1] : "?";
    switch (c) {
      case O_DATA: o->data = optarg; break;
      case O_EPOCHS: r = parse_long("--epochs", optarg, 1, 1000000, &o->epochs, msg, msize), have_epochs = 1; break;
      case O_STEPS: r = parse_long("--steps", optarg, 1, 1000000000, &o->steps, msg, msize); break;
      case O_BATCH: r = parse_long("--batch", optarg, 1, 65536, &o->batch, msg, msize); break;
      case O_OPT: r = parse_optimizer(optarg, &o->optimizer, msg, msize); break;
      case O_LR: r = parse_double("--lr", optarg, 0, 1e6, &o->lr, msg, msize), o->have_lr = 1; break;
      case O_MOM: r = parse_double("--momentum", optarg, 0, 1e6, &o->momentum, msg, msize), o->have_momentum = 1; break;
      case O_NEST: o->nesterov = 1; break;
      case O_WD: r = parse_double("--weight-decay", optarg, 0, 1e6, &o->weight_decay, msg, msize), o->have_wd = 1; break;
      case O_DAMP: r = parse_double("--dampening", optarg, 0, 1, &o->dampening, msg, msize); break;
      case O_SCHED:
        if (strcmp(optarg, "step") && strcmp(optarg, "cosine") && strcmp(optarg, "none"))
          USAGE_ERROR("--schedule: '%s' is not one of step, cosine, none", optarg);
        o->schedule = strcmp(optarg, "none") ? optarg : NULL;
        break;
      case O_STEPSIZE: r = parse_long("--step-size", optarg, 1, 1000000, &o->step_size, msg, msize); break;
      case O_GAMMA: r = parse_double("--gamma", optarg, 0, 1e6, &o->gamma, msg, msize); break;
      case O_BETAS: {
        char *comma = strchr(optarg, ',');
        if (!comma) USAGE_ERROR("--betas: '%s' is not B1,B2", optarg);
        *comma = 0;
        if (!(r = parse_double("--betas", optarg, 0, 0.999999999999, &o->beta1, msg, msize)))
          r = parse_double("--betas", comma + 1, 0, 0.999999999999, &o->beta2, msg, msize);
        o->have_beta1 = o->have_beta2 = 1;
        break;
      }
      case O_EPS: r = parse_double("--eps", optarg, 0, 1, &o->eps, msg, msize), o->have_eps = 1; break;
      case O_ALPHA: r = parse_double("--alpha", optarg, 0, 1, &o->alpha, msg, msize), o->have_alpha = 1; break;
      case O_INITRULE:
        if (strcmp(optarg, "default") && strcmp(optarg, "he") && strcmp(optarg, "xavier") && strcmp(optarg, "dcgan"))
          USAGE_ERROR("--init-rule: '%s' is not one of default, he, xavier, dcgan", optarg);
        o->init_rule = optarg;
        break;
      case O_NORM: o->normalize = 1; break;
      case O_SEED: r = parse_long("--seed", optarg, 0, LONG_MAX, &o->seed, msg, msize); break;
      case O_NOSHUF: o->no_shuffle = 1; break;
      case O_INIT: o->init = optarg; break;
      case O_RESUME: o->resume = optarg; break;
      case O_SAVE: o->save = optarg; break;
      case O_DEVICE: o->device = optarg; break;
      case O_PROFILE: o->profile = optarg; break;
      case O_EVAL: o->eval_only = 1; break;
      case O_PREDICT: o->predict = optarg; break;
      case O_OUT: o->out = optarg; break;
      case O_LOG: o->log = optarg; break;
      case O_PLOT: o->plot = optarg; break;
      case O_LOGEVERY: r = parse_long("--log-every", optarg, 1, 1000000000, &o->log_every, msg, msize); break;
      case O_MEMLIMIT: r = parse_size("--mem-limit", optarg, &o->mem_limit, msg, msize); break;
      case O_ALLOCLIMIT: r = parse_size("--alloc-limit", optarg, &o->alloc_limit, msg, msize); break;
      case O_AUGMENT: {
        char why[200];
        if (clcnn_augment_parse(optarg, &o->aug, why, sizeof why)) USAGE_ERROR("--augment %s: %s", optarg, why);
        break;
      }
      case 'q': o->quiet = 1; break;
      case 'h': return ARGS_HELP;
      case O_VERSION: return ARGS_VERSION;
      case ':': USAGE_ERROR("%s needs a value (see --help)", flag);
      default: USAGE_ERROR("unknown option '%s' (see --help)", flag);
    }
    if (r) return r;
  }
  if (optind != argc - 1)
    USAGE_ERROR(optind >= argc ? "no model file given (usage: clcnn-train MODEL [options]; see --help)"
                          : "one model file expected, got '%s' and more (see --help)",
        argv[optind]);
  o->model = argv[optind];
  if (o->steps && have_epochs) USAGE_ERROR("--epochs and --steps exclude each other");
  if (!o->steps && !have_epochs) o->epochs = 5;
  if (o->init && o->resume) USAGE_ERROR("--init and --resume exclude each other");
  if (o->eval_only && (o->save || o->steps || have_epochs))
    USAGE_ERROR("--eval only evaluates: it takes no --save, --epochs or --steps");
  if (o->eval_only && (o->aug.hflip || o->aug.crop_pad)) USAGE_ERROR("--eval only evaluates: --augment is for training");
  if (o->eval_only && !o->init && !o->resume) USAGE_ERROR("--eval needs weights: give --init FILE or --resume FILE");
  if (o->out && !o->predict) USAGE_ERROR("--out is where --predict writes: give --predict DIR too");
  if (o->predict && !o->out) USAGE_ERROR("--predict needs --out OUTDIR for the masks it writes");
  if (o->predict && (o->eval_only || o->save || o->steps || have_epochs || o->aug.hflip || o->aug.crop_pad))
    USAGE_ERROR("--predict only predicts: it takes no --eval, --save, --epochs, --steps or --augment");
  if (o->predict && !o->init && !o->resume) USAGE_ERROR("--predict needs weights: give --init FILE or --resume FILE");
  if ((o->log || o->plot) && (o->eval_only || o->predict))
    USAGE_ERROR("--log and --plot follow a training run: not with --eval or --predict");
  if ((o->log && !*o->log) || (o->plot && !*o->plot)) USAGE_ERROR("--log and --plot need a file name");
  if (o->nesterov && o->optimizer != CLCNN_OPTIM_SGD) USAGE_ERROR("--nesterov is for --optimizer sgd");
  if (o->nesterov && !(o->momentum > 0)) USAGE_ERROR("--nesterov needs --momentum > 0");
  return ARGS_OK;
}

/* --augment's settings as clcnn_augment_parse() reads them back */
static void augment_spec(const clcnn_augment *a, char *buf, size_t size) {
  if (!a->hflip && !a->crop_pad) snprintf(buf, size, "none");
  else if (!a->crop_pad) snprintf(buf, size, "hflip");
  else snprintf(buf, size, "%scrop=%d", a->hflip ? "hflip," : "", a->crop_pad);
}

/* The key of sample INDEX's augmentation in EPOCH: a function of (seed, epoch, index) alone, so
 * that a resumed run, and any batch size, draws the same crop and flip for it. */
static uint64_t augment_key(long seed, long epoch, uint32_t index) {
  uint64_t st = (uint64_t)seed ^ 0x243f6a8885a308d3ull; /* pi's digits: not the shuffle's stream */
  st = clcnn_rng_next(&st) ^ (uint64_t)epoch;
  return clcnn_rng_next(&st) ^ index;
}

/* ---- the training state ---- */
struct state {
  long epoch;        /* epochs completed */
  long batch;        /* batches done in the current epoch */
  long step;         /* batches done in all */
  double base_lr;
};

/* Write weights, buffers and (when opt) the optimizer and the training state to path, atomically. */
static void save_checkpoint(const char *path, clcnn_ctx *ctx, clcnn_net *net, clcnn_optim *opt,
                            const struct state *s, const struct opts *o, const char *model_text) {
  json_t *ts = NULL;
  if (opt) {
    clcnn_precision prec = clcnn_ctx_precision(ctx);
    uint64_t dseed, dcounter;
    clcnn_net_get_seed(net, &dseed, &dcounter);
    /* The training state, a JSON object in a metadata string. The learning rates are hex
     * floats and the dropout generator's u64s decimal strings, so that every value comes
     * back exactly (jansson's integers are int64). */
    char base_lr[40], lr[40], ds[24], dc[24];
    snprintf(base_lr, sizeof base_lr, "%a", s->base_lr);
    snprintf(lr, sizeof lr, "%a", clcnn_optim_lr(opt));
    snprintf(ds, sizeof ds, "%" PRIu64, dseed);
    snprintf(dc, sizeof dc, "%" PRIu64, dcounter);
    ts = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:i, s:i}",
                   "epoch", (json_int_t)s->epoch, "batch", (json_int_t)s->batch, "step", (json_int_t)s->step,
                   "optimizer", optimizer_name(o->optimizer), "precision", prec == CLCNN_DOUBLE ? "double" : "float",
                   "base_lr", base_lr, "lr", lr, "optim_steps", (json_int_t)clcnn_optim_steps(opt),
                   "seed", (json_int_t)o->seed, "dropout_seed", ds, "dropout_counter", dc,
                   "batch_size", (json_int_t)o->batch, "shuffle", !o->no_shuffle, "normalize", o->normalize);
    char aug[32];
    augment_spec(&o->aug, aug, sizeof aug);
    /* written only when augmenting: without, the state is what it was before --augment */
    if (ts && (o->aug.hflip || o->aug.crop_pad) && json_object_set_new(ts, "augment", json_string(aug)))
      json_decref(ts), ts = NULL;
    /* and the number of replicas only when there are several */
    if (ts && o->replicas > 1 && json_object_set_new(ts, "replicas", json_integer(o->replicas)))
      json_decref(ts), ts = NULL;
    if (!ts) die(1, "out of memory");
  }
  ckpt_save(path, ctx, net, opt, model_text, ts);
}

/* ---- profile ---- */
struct kstat {
  const char *name;
  double ns;
  long count;
};
struct profile {
  int nl;
  double *sum[2]; /* per layer, ns */
  long steps;
  FILE *trace;      /* PATH.tmp, opened at the start so that a bad path fails early */
  json_t *events;   /* the Chrome trace's events, written at the end */
  uint64_t t0; /* device time of the first command, ns */
  struct kstat k[64];
  int nk;
};

static void profile_step(struct profile *p, clcnn_net *net, clcnn_ctx *ctx) {
  char desc[128];
  clcnn_profile_cmd cmds[64];
  for (int d = 0; d < 2; d++)
    for (int l = 0; l <= p->nl; l++) {
      int layer = d == 0 ? l : p->nl - l; /* forward in order, then the loss and backward */
      uint64_t ns = 0;
      if (layer == p->nl && d == 0) continue;
      net_check(ctx, clcnn_net_profile(net, layer, d, &ns), "profile");
      p->sum[d][layer] += ns;
      int nc = clcnn_net_profile_cmds(net, layer, d, cmds, 64);
      if (layer == p->nl) snprintf(desc, sizeof desc, "loss (softmax cross-entropy)");
      else clcnn_net_layer_describe(net, layer, desc, sizeof desc);
      for (int c = 0; c < nc && c < 64; c++) {
        double dur = (double)(cmds[c].end_ns - cmds[c].start_ns);
        int kk = 0;
        while (kk < p->nk && strcmp(p->k[kk].name, cmds[c].name)) kk++;
        if (kk == p->nk && p->nk < 64) p->k[p->nk++] = (struct kstat){cmds[c].name, 0, 0};
        if (kk < p->nk) p->k[kk].ns += dur, p->k[kk].count++;
        if (!p->t0) p->t0 = cmds[c].start_ns;
        if (p->events && p->steps < 500 && cmds[c].start_ns >= p->t0) {
          json_t *e = json_pack("{s:s, s:s, s:s, s:f, s:f, s:i, s:i, s:{s:I, s:i, s:s}}", "name", cmds[c].name,
                                "cat", d ? "backward" : "forward", "ph", "X", "ts", (cmds[c].start_ns - p->t0) / 1000.0,
                                "dur", dur / 1000.0, "pid", 1, "tid", layer + 1, "args", "step", (json_int_t)p->steps,
                                "layer", layer, "what", desc);
          if (!e || json_array_append_new(p->events, e)) die(1, "--profile: cannot add an event to the trace");
        }
      }
    }
  p->steps++;
}

/* ---- evaluation ---- */
/* Samples b0..b0+n of DS into XBUF in the context's precision, as they are (no augmentation). */
static void test_batch(const clcnn_dataset *ds, int b0, int n, size_t in, size_t esz, void *xbuf) {
  for (size_t i = 0; i < (size_t)n * in; i++) {
    float v = ds->x[(size_t)b0 * in + i];
    if (esz == 8) ((double *)xbuf)[i] = v;
    else ((float *)xbuf)[i] = v;
  }
}

/* ---- segmentation ---- */
/* The one loss of a segmentation net: a per-pixel cross-entropy of an output that is a score map
 * of the input's h x w. Anything else dies, after WHO (what asked for a segmentation net). */
static clcnn_tensor *seg_loss_of(clcnn_net *net, int h, int w, const char *model, const char *who) {
  int od[4];
  clcnn_net_layer_shape(net, clcnn_net_num_layers(net) - 1, od);
  if (od[2] != h || od[3] != w)
    die(1, "%s %s's input is %dx%d but its output is %dx%dx%d: a segmentation net ends in a score map of the "
        "image's size", who, model, h, w, od[1], od[2], od[3]);
  clcnn_tensor *loss = NULL;
  clcnn_loss_info li;
  for (int i = 0; i < clcnn_net_num_losses(net); i++)
    if (!clcnn_net_loss_info(net, i, &li) && li.type == CLCNN_LAYER_XENT_LOSS && li.targets == h * w) {
      if (loss) die(1, "%s has two per-pixel cross-entropy losses: clcnn-train trains one", model);
      loss = li.loss;
    }
  if (!loss || clcnn_net_num_losses(net) != 1)
    die(1, "%s %s needs one loss line, a per-pixel cross-entropy of its output with masks' ignore value, e.g. "
        "'xent(%s) ignore=255'", who, model, clcnn_net_layer_name(net, clcnn_net_num_layers(net) - 1));
  return loss;
}

static int png_name(const struct dirent *e) {
  size_t len = strlen(e->d_name);
  return len > 4 && !strcmp(e->d_name + len - 4, ".png") && e->d_name[0] != '.';
}

/* The boxes of n samples of a detector's output (their images numbered from image0), as the
 * evaluation and --predict keep them: every cell scoring at least 0.005, then non-maximum
 * suppression at IoU 0.45 per image and class (darknet's habits). Returns how many, in dets. */
static int kept_boxes(const void *out, size_t esz, int n, int k, int gh, int gw, int image0, clcnn_detection *dets,
                      int max) {
  int got = 0;
  if (clcnn_yolo_decode(out, esz, n, k, gh, gw, 0.005, image0, dets, max, &got)) die(1, "decoding boxes");
  if ((got = clcnn_nms(dets, got, 0.45)) < 0) die(1, "out of memory");
  return got;
}

/* Class names for --predict's pictures: the first classes.txt of DIR, DIR/.., and --data's
 * directory (one name a line, blank lines skipped); NULL when none. names[i] for class i. */
static char **class_names(const struct opts *o, int classes) {
  const char *where[3] = {o->predict, NULL, o->data};
  char up[PATH_MAX + 8], path[PATH_MAX + 32];
  snprintf(up, sizeof up, "%s/..", o->predict);
  where[1] = up;
  for (int w = 0; w < 3; w++) {
    snprintf(path, sizeof path, "%s/classes.txt", where[w]);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    char **names = calloc((size_t)classes, sizeof *names), line[256];
    int n = 0;
    while (names && n < classes && fgets(line, sizeof line, f)) {
      line[strcspn(line, "\r\n")] = 0;
      if (line[strspn(line, " \t")]) names[n++] = xstrdup(line);
    }
    fclose(f);
    return names;
  }
  return NULL;
}

/* --predict DIR --out OUTDIR: every PNG image in DIR (or DIR/images) through the net, in name
 * order and batches of the net's batch size. Inputs are scaled as training scaled them (x/255,
 * then --normalize's mean and std when given).
 *   a segmentation net: OUTDIR/masks/NAME.png gets each pixel's class (the first largest score,
 *   as torch.argmax) as a palette PNG in Pascal VOC's colours, and OUTDIR/overlays/NAME.png the
 *   image with every pixel not of class 0 mixed half and half with its class's colour;
 *   a detector (det, its grid gh x gw): OUTDIR/labels/NAME.txt its boxes as the evaluation keeps
 *   them (score at least 0.005, NMS at 0.45), one "class cx cy w h score" line each, by score;
 *   OUTDIR/boxes/NAME.png the image, enlarged to at least 256 pixels a side, with those scoring
 *   at least 0.25 drawn in their class's VOC colour (the colour of mask value class + 1) and
 *   named. */
static void predict(clcnn_ctx *ctx, clcnn_net *net, const struct opts *o, int classes, int det, const double *mean,
                    const double *sd, void *xbuf) {
  char dir[PATH_MAX], path[2 * PATH_MAX];
  struct stat sb;
  if (snprintf(dir, sizeof dir, "%s/images", o->predict) >= (int)sizeof dir || stat(dir, &sb) || !S_ISDIR(sb.st_mode))
    snprintf(dir, sizeof dir, "%s", o->predict);
  struct dirent **names = NULL;
  int count = scandir(dir, &names, png_name, alphasort);
  if (count < 0) die(1, "--predict %s: %s", dir, strerror(errno));
  if (count == 0) die(1, "--predict: %s holds no .png image", dir);
  make_dir(o->out);
  char mdir[PATH_MAX + 16], odir[PATH_MAX + 16];
  snprintf(mdir, sizeof mdir, "%s/%s", o->out, det ? "labels" : "masks");
  snprintf(odir, sizeof odir, "%s/%s", o->out, det ? "boxes" : "overlays");
  make_dir(mdir);
  make_dir(odir);

  int dims[4], od[4], batch = (int)o->batch;
  clcnn_net_layer_shape(net, -1, dims);
  clcnn_net_layer_shape(net, clcnn_net_num_layers(net) - 1, od);
  size_t plane = (size_t)dims[2] * dims[3], in = clcnn_net_input_size(net), esz = clcnn_ctx_elem_size(ctx);
  size_t k = clcnn_net_output_size(net), cells = (size_t)od[2] * od[3];
  float *x = malloc(in * sizeof *x);
  void *out = malloc(batch * k * esz);
  clcnn_image *imgs = calloc((size_t)batch, sizeof *imgs);
  clcnn_image mask = {.w = dims[3], .h = dims[2], .channels = 1, .indexed = 1, .npalette = 256};
  clcnn_image over = {.w = dims[3], .h = dims[2], .channels = 3};
  clcnn_detection *dets = det ? malloc(cells * sizeof *dets) : NULL;
  mask.px = malloc(plane);
  over.px = malloc(3 * plane);
  if (!x || !out || !imgs || !mask.px || !over.px || (det && !dets)) die(1, "out of memory");
  clcnn_voc_palette(mask.palette);
  char **cname = det ? class_names(o, classes) : NULL;
  int scale = (255 + (dims[2] > dims[3] ? dims[2] : dims[3])) / (dims[2] > dims[3] ? dims[2] : dims[3]);
  scale = scale < 1 ? 1 : scale > 8 ? 8 : scale;
  clcnn_net_set_training(net, 0);
  char err[PATH_MAX + 256];
  double t0 = now();
  long drawn = 0;
  for (int b0 = 0; b0 < count; b0 += batch) {
    int n = count - b0 < batch ? count - b0 : batch;
    for (int i = 0; i < n; i++) {
      clcnn_image *im = &imgs[i];
      snprintf(path, sizeof path, "%s/%s", dir, names[b0 + i]->d_name);
      if (clcnn_png_read(path, im, err, sizeof err)) die(1, "--predict: %s", err);
      if (clcnn_image_colors(im) != dims[1] || im->h != dims[2] || im->w != dims[3])
        die(1, "--predict: %s is %dx%dx%d but %s's input is %dx%dx%d", path, clcnn_image_colors(im), im->h, im->w,
            o->model, dims[1], dims[2], dims[3]);
      clcnn_image_to_float(im, x);
      for (size_t j = 0; j < in; j++) {
        double v = mean ? (x[j] - mean[j / plane]) * (1.0 / sd[j / plane]) : x[j];
        if (esz == 8) ((double *)xbuf)[i * in + j] = v;
        else ((float *)xbuf)[i * in + j] = (float)v;
      }
    }
    net_check(ctx, clcnn_net_forward(net, xbuf, n), "prediction forward");
    net_check(ctx, clcnn_net_read_output(net, out), "prediction");
    for (int i = 0; i < n; i++) {
      const clcnn_image *im = &imgs[i];
      const char *name = names[b0 + i]->d_name;
      if (det) {
        int got = kept_boxes((const char *)out + (size_t)i * k * esz, esz, 1, classes, od[2], od[3], 0, dets, (int)cells);
        char *txt = NULL;
        size_t tlen = 0;
        FILE *mf = open_memstream(&txt, &tlen);
        if (!mf) die(1, "out of memory");
        for (int d = 0; d < got; d++)
          fprintf(mf, "%d %.6f %.6f %.6f %.6f %.6f\n", dets[d].box.cls, dets[d].box.cx, dets[d].box.cy, dets[d].box.w,
                  dets[d].box.h, dets[d].score);
        fclose(mf);
        snprintf(path, sizeof path, "%s/%.*s.txt", mdir, (int)strlen(name) - 4, name);
        if (write_file(path, txt, tlen)) die(1, "--predict: %s: %s", path, strerror(errno));
        free(txt);
        clcnn_image pic;
        if (clcnn_image_to_rgb(im, scale, &pic)) die(1, "out of memory");
        for (int d = got - 1; d >= 0; d--) { /* the best drawn last, on top */
          const clcnn_detection *dt = &dets[d];
          if (dt->score < 0.25) continue;
          const unsigned char *col = mask.palette[(dt->box.cls + 1) & 255];
          int x0 = (int)lround((dt->box.cx - dt->box.w / 2) * pic.w), x1 = (int)lround((dt->box.cx + dt->box.w / 2) * pic.w) - 1;
          int y0 = (int)lround((dt->box.cy - dt->box.h / 2) * pic.h), y1 = (int)lround((dt->box.cy + dt->box.h / 2) * pic.h) - 1;
          if (x1 < x0) x1 = x0;
          if (y1 < y0) y1 = y0;
          clcnn_image_draw_rect(&pic, x0, y0, x1, y1, 2, col);
          char label[160];
          snprintf(label, sizeof label, "%s %.2f", cname && cname[dt->box.cls] ? cname[dt->box.cls] : "", dt->score);
          if (!cname || !cname[dt->box.cls]) snprintf(label, sizeof label, "%d %.2f", dt->box.cls, dt->score);
          static const unsigned char white[3] = {255, 255, 255};
          int ty = y0 - 9 >= 1 ? y0 - 9 : y1 + 3 <= pic.h - 8 ? y1 + 3 : y0 + 2;
          clcnn_image_draw_text(&pic, x0 + 1, ty, label, 1, white, col, NULL);
          drawn++;
        }
        snprintf(path, sizeof path, "%s/%s", odir, name);
        if (clcnn_png_write(path, &pic, err, sizeof err)) die(1, "--predict: %s", err);
        clcnn_image_free(&pic);
        clcnn_image_free(&imgs[i]);
        continue;
      }
      for (size_t p = 0; p < plane; p++) {
        int best = 0;
        double bz = 0;
        for (int c = 0; c < classes; c++) {
          size_t at = ((size_t)i * classes + c) * plane + p;
          double z = esz == 8 ? ((double *)out)[at] : ((float *)out)[at];
          if (c == 0 || z > bz || (isnan(z) && !isnan(bz))) best = c, bz = z;
        }
        mask.px[p] = (unsigned char)best;
        for (int ch = 0; ch < 3; ch++) {
          int v = im->indexed ? im->palette[im->px[p]][ch] : im->px[p * im->channels + (im->channels == 3 ? ch : 0)];
          over.px[3 * p + ch] = (unsigned char)(best ? (v + mask.palette[best][ch] + 1) / 2 : v);
        }
      }
      snprintf(path, sizeof path, "%s/%s", mdir, name);
      if (clcnn_png_write(path, &mask, err, sizeof err)) die(1, "--predict: %s", err);
      snprintf(path, sizeof path, "%s/%s", odir, name);
      if (clcnn_png_write(path, &over, err, sizeof err)) die(1, "--predict: %s", err);
      clcnn_image_free(&imgs[i]);
    }
  }
  if (det)
    printf("--predict: %d images from %s: boxes in %s, pictures in %s (%ld boxes drawn, score >= 0.25) (%.1f s)\n", count,
           dir, mdir, odir, drawn, now() - t0);
  else
    printf("--predict: %d images from %s: masks in %s, overlays in %s (%.1f s)\n", count, dir, mdir, odir, now() - t0);
  for (int i = 0; i < count; i++) free(names[i]);
  for (int i = 0; cname && i < classes; i++) free(cname[i]);
  free(cname);
  free(names), free(x), free(out), free(imgs), free(mask.px), free(over.px), free(dets);
}

struct evalres {
  double loss, acc;
  long *confusion; /* classes x classes, row = truth */
  /* a segmentation set: per-pixel counts and scores (acc is the pixel accuracy) */
  int64_t *seg_confusion;
  double miou, miou_fg, iou[256];
  /* a detection set: mean average precision at IoU 0.5 and each class's AP */
  double map, ap[256];
};

/* A detection set's test split: the net's boxes (every cell scoring at least 0.005, after
 * non-maximum suppression at IoU 0.45 per image and class, as darknet evaluates) against the
 * labelled ones, Pascal VOC's AP at IoU 0.5 per class and their mean. */
static void evaluate_det(clcnn_ctx *ctx, clcnn_net *net, const clcnn_dataset *ds, int batch, int k, void *xbuf,
                         struct evalres *r) {
  size_t kout = clcnn_net_output_size(net), in = clcnn_net_input_size(net), esz = clcnn_ctx_elem_size(ctx);
  int od[4];
  clcnn_net_layer_shape(net, clcnn_net_num_layers(net) - 1, od);
  int cells = od[2] * od[3];
  void *out = malloc(batch * kout * esz);
  clcnn_detection *part = malloc((size_t)batch * cells * sizeof *part), *all = NULL;
  int *timg = malloc(((size_t)ds->box_start[ds->n] + 1) * sizeof *timg);
  size_t nall = 0, cap = 0;
  if (!out || !part || !timg) die(1, "out of memory");
  int was_training = clcnn_net_training(net);
  clcnn_net_set_training(net, 0);
  for (int b0 = 0; b0 < ds->n; b0 += batch) {
    int n = ds->n - b0 < batch ? ds->n - b0 : batch;
    test_batch(ds, b0, n, in, esz, xbuf);
    net_check(ctx, clcnn_net_forward(net, xbuf, n), "evaluation forward");
    net_check(ctx, clcnn_net_read_output(net, out), "evaluation");
    int got = kept_boxes(out, esz, n, k, od[2], od[3], b0, part, batch * cells);
    if (nall + (size_t)got > cap) {
      cap = 2 * (nall + (size_t)got);
      clcnn_detection *g = realloc(all, cap * sizeof *g);
      if (!g) die(1, "out of memory");
      all = g;
    }
    memcpy(all + nall, part, (size_t)got * sizeof *part);
    nall += (size_t)got;
  }
  clcnn_net_set_training(net, was_training);
  for (int i = 0; i < ds->n; i++)
    for (int j = ds->box_start[i]; j < ds->box_start[i + 1]; j++) timg[j] = i;
  if (nall > INT_MAX || clcnn_voc_ap(all, (int)nall, ds->boxes, timg, ds->box_start[ds->n], k, 0.5, r->ap, &r->map))
    die(1, "a test box's class is past the model's %d", k);
  r->loss = NAN;
  free(out), free(part), free(all), free(timg);
}

static void print_aps(const struct evalres *r, int classes) {
  printf("AP at IoU 0.5 of each class on the test set:\n");
  for (int c = 0; c < classes; c++) {
    if (isnan(r->ap[c])) printf("  %3d      -\n", c);
    else printf("  %3d  %.4f\n", c, r->ap[c]);
  }
}

/* A segmentation set's test split: the mean per-pixel cross-entropy over the pixels that are not
 * ignored (255), the confusion of per-pixel predictions, pixel accuracy and IoU. */
static void evaluate_seg(clcnn_ctx *ctx, clcnn_net *net, const clcnn_dataset *ds, int batch, int classes,
                         void *xbuf, struct evalres *r) {
  size_t k = clcnn_net_output_size(net), in = clcnn_net_input_size(net), esz = clcnn_ctx_elem_size(ctx);
  size_t hw = (size_t)ds->h * ds->w;
  void *out = malloc(batch * k * esz);
  if (!out) die(1, "out of memory");
  int was_training = clcnn_net_training(net);
  clcnn_net_set_training(net, 0);
  double loss = 0;
  long pixels = 0;
  memset(r->seg_confusion, 0, sizeof(int64_t) * classes * classes);
  for (int b0 = 0; b0 < ds->n; b0 += batch) {
    int n = ds->n - b0 < batch ? ds->n - b0 : batch;
    test_batch(ds, b0, n, in, esz, xbuf);
    net_check(ctx, clcnn_net_forward(net, xbuf, n), "evaluation forward");
    net_check(ctx, clcnn_net_read_output(net, out), "evaluation");
    const unsigned char *truth = ds->mask + (size_t)b0 * hw;
    if (clcnn_seg_confusion(out, esz, truth, n, classes, (int)hw, 255, r->seg_confusion))
      die(1, "a test mask holds a class past the model's %d outputs", classes);
    for (int s = 0; s < n; s++)
      for (size_t p = 0; p < hw; p++) {
        int t = truth[s * hw + p];
        if (t == 255) continue;
        double m = -INFINITY, sum = 0, zt = 0;
        for (int c = 0; c < classes; c++) {
          size_t at = ((size_t)s * classes + c) * hw + p;
          double z = esz == 8 ? ((double *)out)[at] : ((float *)out)[at];
          m = fmax(m, z);
          if (c == t) zt = z;
        }
        for (int c = 0; c < classes; c++) {
          size_t at = ((size_t)s * classes + c) * hw + p;
          sum += exp((esz == 8 ? ((double *)out)[at] : ((float *)out)[at]) - m);
        }
        loss += log(sum) + m - zt;
        pixels++;
      }
  }
  clcnn_net_set_training(net, was_training);
  r->loss = pixels ? loss / pixels : NAN;
  clcnn_seg_scores(r->seg_confusion, classes, &r->acc, &r->miou, &r->miou_fg, r->iou);
  free(out);
}

static void print_ious(const struct evalres *r, int classes) {
  printf("IoU of each class on the test set (0 is background):\n");
  for (int c = 0; c < classes; c++) {
    if (isnan(r->iou[c])) printf("  %3d      -\n", c);
    else printf("  %3d  %.4f\n", c, r->iou[c]);
  }
}

static void evaluate(clcnn_ctx *ctx, clcnn_net *net, const clcnn_dataset *ds, int batch, int classes,
                     void *xbuf, struct evalres *r) {
  size_t k = clcnn_net_output_size(net), in = clcnn_net_input_size(net), esz = clcnn_ctx_elem_size(ctx);
  double *out = malloc(batch * k * sizeof(double));
  float *outf = malloc(batch * k * sizeof(float));
  if (!out || !outf) die(1, "out of memory");
  int was_training = clcnn_net_training(net);
  clcnn_net_set_training(net, 0);
  double loss = 0;
  long correct = 0;
  memset(r->confusion, 0, sizeof(long) * classes * classes);
  for (int b0 = 0; b0 < ds->n; b0 += batch) {
    int n = ds->n - b0 < batch ? ds->n - b0 : batch;
    test_batch(ds, b0, n, in, esz, xbuf);
    net_check(ctx, clcnn_net_forward(net, xbuf, n), "evaluation forward");
    net_check(ctx, clcnn_net_read_output(net, esz == 8 ? (void *)out : (void *)outf), "evaluation");
    for (int s = 0; s < n; s++) {
      const double *z = out + s * k;
      double zs[1024] = {0};
      if (esz == 4) {
        for (size_t j = 0; j < k && j < 1024; j++) zs[j] = outf[s * k + j];
        z = zs;
      }
      size_t best = 0;
      double m = z[0], sum = 0;
      for (size_t j = 1; j < k; j++) {
        if (z[j] > z[best] || (isnan(z[j]) && !isnan(z[best]))) best = j; /* torch.argmax's rule */
        m = fmax(m, z[j]);
      }
      for (size_t j = 0; j < k; j++) sum += exp(z[j] - m);
      int y = ds->y[b0 + s];
      loss += log(sum) + m - z[y];
      correct += (int)best == y;
      if ((int)best < classes) r->confusion[y * classes + best]++;
    }
  }
  clcnn_net_set_training(net, was_training);
  r->loss = loss / ds->n;
  r->acc = (double)correct / ds->n;
  free(out);
  free(outf);
}

static void print_confusion(const struct evalres *r, int classes) {
  printf("confusion matrix of the test set (rows: true class, columns: predicted):\n      ");
  for (int j = 0; j < classes; j++) printf("%6d", j);
  printf("\n");
  for (int i = 0; i < classes; i++) {
    printf("%6d", i);
    for (int j = 0; j < classes; j++) printf("%6ld", r->confusion[i * classes + j]);
    printf("\n");
  }
}

static double lr_at(const struct opts *o, double base, long epoch, long total_epochs) {
  clcnn_lr_schedule_params sp = {.kind = CLCNN_LR_CONSTANT};
  if (o->schedule && !strcmp(o->schedule, "step")) {
    sp.kind = CLCNN_LR_STEP;
    sp.step_size = o->step_size ? o->step_size : (total_epochs >= 3 ? total_epochs / 3 : 1);
    sp.gamma = o->gamma;
  } else if (o->schedule) { /* CosineAnnealingLR(T_max = total epochs, eta_min = 0) */
    sp.kind = CLCNN_LR_COSINE;
    sp.t_max = total_epochs;
  }
  double lr;
  clcnn_status st = clcnn_lr_schedule(&sp, base, epoch, &lr);
  if (st)
    die(1, "--schedule %s: no learning rate for epoch %ld of %ld from %g (%s)", o->schedule, epoch,
        total_epochs, base, clcnn_status_name(st));
  return lr;
}

/* "1.5 GiB" */
static const char *fmt_bytes(uint64_t b, char *buf, size_t size) {
  static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
  return buf;
}

/* Will it fit: build the net for one sample, estimate a training step at --batch, and refuse
 * a batch that needs more than the device's memory or a buffer larger than it allocates
 * (or --mem-limit, --alloc-limit) before allocating it. */
static void check_fit(clcnn_ctx *ctx, const char *model_text, const struct opts *o) {
  char err[2048], a[32], b[32];
  clcnn_net *net = NULL;
  if (clcnn_net_from_text(ctx, model_text, o->model, 1, &net, err, sizeof err)) die(1, "%s", err);
  clcnn_net_set_input_grad(net, 0);
  clcnn_optim_params op;
  clcnn_optim_defaults((clcnn_optim_kind)o->optimizer, &op);
  op.momentum = o->momentum;
  const clcnn_optim_params *opp = o->eval_only ? NULL : &op;
  clcnn_memory_estimate e;
  uint64_t global = 0, maxalloc = 0;
  clcnn_status st = clcnn_ctx_device_memory(ctx, &global, &maxalloc);
  if (!st) st = clcnn_net_memory_estimate(net, (int)o->batch, opp, &e);
  if (st) die(1, "--batch %ld: %s", o->batch, clcnn_ctx_last_error(ctx));
  const char *gwhy = "the device's global memory", *awhy = "the largest buffer the device allocates";
  if (o->mem_limit && o->mem_limit < global) global = o->mem_limit, gwhy = "--mem-limit";
  if (o->alloc_limit && o->alloc_limit < maxalloc) maxalloc = o->alloc_limit, awhy = "--alloc-limit";
  int fits = 0;
  if (e.total > global || e.largest > maxalloc)
    st = clcnn_net_largest_batch(net, opp, global, maxalloc, (int)o->batch, &fits);
  clcnn_net_destroy(net);
  if (st) die(1, "--batch %ld: %s", o->batch, clcnn_ctx_last_error(ctx));
  char hint[96] = "";
  if (fits) snprintf(hint, sizeof hint, "; the largest batch that fits is %d", fits);
  else snprintf(hint, sizeof hint, "; not even a batch of 1 fits");
  if (e.total > global)
    die(1, "--batch %ld does not fit on %s: a training step needs an estimated %s (%zu bytes) of device memory, "
           "more than %s of %s (%" PRIu64 " bytes)%s",
        o->batch, clcnn_ctx_device_name(ctx), fmt_bytes(e.total, a, sizeof a), e.total, gwhy,
        fmt_bytes(global, b, sizeof b), global, hint);
  if (e.largest > maxalloc)
    die(1, "--batch %ld does not fit on %s: its largest buffer is an estimated %s (%zu bytes), more than %s, "
           "%s (%" PRIu64 " bytes)%s",
        o->batch, clcnn_ctx_device_name(ctx), fmt_bytes(e.largest, a, sizeof a), e.largest, awhy,
        fmt_bytes(maxalloc, b, sizeof b), maxalloc, hint);
}

static void fmt_time(double s, char *buf, size_t size) {
  if (s < 0 || !isfinite(s)) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* ---- --plot: the run's curves, one point an epoch ---- */
struct curves {
  const char *plot, *task;
  double *x, *train_loss, *test_loss, *train_metric, *test_metric;
  int n, cap;
};

static void curves_add(struct curves *c, double epoch, double trl, double tel, double trm, double tem) {
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 16;
    double **arr[] = {&c->x, &c->train_loss, &c->test_loss, &c->train_metric, &c->test_metric};
    for (int i = 0; i < 5; i++)
      if (!(*arr[i] = realloc(*arr[i], c->cap * sizeof(double)))) die(1, "out of memory");
  }
  c->x[c->n] = epoch, c->train_loss[c->n] = trl, c->test_loss[c->n] = tel;
  c->train_metric[c->n] = trm, c->test_metric[c->n++] = tem;
}

static void curves_draw(const struct curves *c, const char *model) {
  int cls = !strcmp(c->task, "classification"), det = !strcmp(c->task, "detection");
  struct plot_series loss[2] = {{"training (last batch)", "#1f77b4", c->train_loss}, {"test", "#d62728", c->test_loss}},
                     metric[2] = {{"test", "#d62728", c->test_metric}, {"training", "#1f77b4", c->train_metric}};
  if (cls) loss[0].name = "training";
  struct plot_panel p[2] = {{"loss", loss, det ? 1 : 2},
                            {cls ? "accuracy" : det ? "mAP@0.5" : "mean IoU (11 classes)", metric, cls ? 2 : 1}};
  char *title = xprintf("clcnn-train %s (%s)", model, c->task);
  static const double none[1] = {0};
  int r = plot_svg(c->plot, title, c->n ? c->x : none, c->n, p, 2), e = errno;
  free(title);
  if (r) die(1, "--plot %s: %s", c->plot, strerror(e));
}

static void curves_free(struct curves *c) {
  free(c->x), free(c->train_loss), free(c->test_loss), free(c->train_metric), free(c->test_metric);
}

int main(int argc, char **argv) {
  prog = "clcnn-train";
  /* a rank of an MPI job (mpirun, srun) or a process alone */
  struct dist D;
  dist_init(&argc, &argv, &D);
  static char rank_prog[64];
  if (D.size > 1) snprintf(rank_prog, sizeof rank_prog, "clcnn-train (rank %d of %d)", D.rank, D.size), prog = rank_prog;
  struct opts o;
  char msg[1024];
  switch (parse_args(argc, argv, &o, msg, sizeof msg)) {
    case ARGS_OK: break;
    case ARGS_HELP: if (!D.rank) usage(stdout); dist_finish(); return 0;
    case ARGS_VERSION: if (!D.rank) printf("clcnn-train %s\n", clcnn_version()); dist_finish(); return 0;
    default: die(2, "%s", msg);
  }
  if (D.size > 1) {
    /* rank 0 prints, evaluates and writes the files; every rank trains its share */
    if (D.rank && (o.eval_only || o.predict)) {
      dist_finish();
      return 0;
    }
    if (D.rank) {
      if (!freopen("/dev/null", "w", stdout)) die(1, "/dev/null: %s", strerror(errno));
      o.save = o.log = o.plot = NULL;
    }
  }
  /* over a file size limit (ulimit -f) a write fails with EFBIG and is reported, instead of
   * the signal ending the process */
  signal(SIGXFSZ, SIG_IGN);
  double t_start = now();

  /* the device, or several: a list (a comma, or TYPE:all) trains one replica of the net on each */
  char err[2048];
  clcnn_status st;
  static char devids[MAX_REPLICAS][16];
  int ndev = 1;
  size_t dl = o.device ? strlen(o.device) : 0;
  int is_list = o.device && (strchr(o.device, ',') || !strcasecmp(o.device, "all") ||
                             (dl > 4 && !strcasecmp(o.device + dl - 4, ":all")));
  if (is_list) {
    if ((st = clcnn_device_list(o.device, devids, MAX_REPLICAS, &ndev, err, sizeof err))) die(1, "--device: %s", err);
    if (D.size > 1) { /* a rank takes one device of the list: the host's ranks take them in turn */
      if (D.local_rank >= ndev)
        die(1, "--device %s lists %d device%s but this host runs %d ranks: one device a rank", o.device, ndev,
            ndev == 1 ? "" : "s", D.local_size);
      memmove(devids[0], devids[D.local_rank], sizeof devids[0]);
      ndev = 1;
    }
    if (ndev > 1 && o.profile) die(1, "--profile times one device: give --device one device");
  }
  /* replicas in all: this process's devices times the ranks (evaluation and prediction: the first) */
  o.replicas = o.eval_only || o.predict ? 1 : ndev * D.size;
  if (o.replicas > 1 && o.batch < o.replicas)
    die(1, "--batch %ld is smaller than the %d replicas (devices%s)", o.batch, o.replicas, D.size > 1 ? " of all ranks" : "");
  clcnn_ctx *ctx = NULL;
  clcnn_ctx_options co = {.device = is_list ? devids[0] : o.device, .precision = CLCNN_FLOAT, .profiling = o.profile != NULL};
  if ((st = clcnn_ctx_create(&ctx, &co, err, sizeof err))) die(1, "%s", err);

  /* the model */
  char *model_text = read_text(o.model);
  check_fit(ctx, model_text, &o);
  clcnn_net *net = NULL;
  st = clcnn_net_from_text(ctx, model_text, o.model, (int)o.batch, &net, err, sizeof err);
  if (st) die(1, "%s", err);
  fputs(clcnn_net_warnings(net), stderr); /* lines whose output nothing reads */
  int dims[4];
  clcnn_net_layer_shape(net, -1, dims);
  int classes_out = (int)clcnn_net_output_size(net);

  /* the data: --predict reads its own images (and the training split only for --normalize's
   * statistics, as training took them); --eval the test split */
  clcnn_dataset *train = NULL, *test = NULL;
  if (((!o.eval_only && !o.predict) || o.normalize) && (st = clcnn_dataset_load(o.data, 1, &train, err, sizeof err))) die(1, "%s", err);
  if (!o.predict && (st = clcnn_dataset_load(o.data, 0, &test, err, sizeof err))) die(1, "%s", err);
  const clcnn_dataset *any = train ? train : test;
  if (any && (any->c != dims[1] || any->h != dims[2] || any->w != dims[3]))
    die(1, "the data in %s is %dx%dx%d but %s's input is %dx%dx%d", o.data, any->c, any->h, any->w, o.model,
        dims[1], dims[2], dims[3]);
  /* a segmentation set (or --predict): the net's output is a score map of the image's size, and a
   * per-pixel cross-entropy loss line reads it */
  /* a yolo loss line: detection on the set's labelled boxes */
  clcnn_tensor *det_loss = NULL;
  clcnn_loss_info dli;
  for (int i = 0; i < clcnn_net_num_losses(net); i++)
    if (!clcnn_net_loss_info(net, i, &dli) && dli.type == CLCNN_LAYER_YOLO_LOSS) {
      if (det_loss) die(1, "%s has two yolo losses: clcnn-train trains one", o.model);
      det_loss = dli.loss;
    }
  int det = det_loss != NULL, det_cells = 0, det_gh = 0, det_gw = 0;
  if (det) {
    if (!o.predict && (!test->boxes || (train && !train->boxes)))
      die(1, "%s trains a detector (its yolo loss line) but %s has no labels%s: a detection set holds "
          "DIR/SPLIT/labels/NAME.txt beside DIR/SPLIT/images/NAME.png", o.model, o.data,
          test->boxes ? " for its training split" : train && train->boxes ? " for its test split" : "");
    if (clcnn_net_num_losses(net) != 1) die(1, "%s: a detector trains on its yolo loss line alone", o.model);
    clcnn_loss_info li;
    clcnn_net_loss_info(net, 0, &li);
    clcnn_tensor *in = li.input;
    int d[4];
    clcnn_tensor_shape(in, d);
    classes_out = d[1] - 5, det_gh = d[2], det_gw = d[3], det_cells = d[2] * d[3];
    if (in != clcnn_net_tensor(net, clcnn_net_layer_name(net, clcnn_net_num_layers(net) - 1)))
      die(1, "%s: the yolo loss must read the net's output (its last layer line)", o.model);
    int bc = o.predict ? 0 : (train ? train->box_classes : 0) > test->box_classes ? train->box_classes : test->box_classes;
    if (bc > classes_out)
      die(1, "the boxes of %s have %d classes but %s's grid has %d class scores (5 + classes channels)", o.data, bc,
          o.model, classes_out);
    if (classes_out > 255) die(1, "%s has %d classes: at most 255 are supported for detection", o.model, classes_out);
    if (o.aug.hflip || o.aug.crop_pad) die(1, "--augment: not for detection yet (the boxes would need the same crop)");
  } else if (any && any->boxes && !any->mask)
    die(1, "%s is a detection set: %s needs a loss line 'yolo(%s)' on a grid of 5 + classes channels", o.data, o.model,
        clcnn_net_layer_name(net, clcnn_net_num_layers(net) - 1));
  int seg = !det && (o.predict || any->mask != NULL);
  clcnn_tensor *seg_loss = NULL;
  if (seg) {
    char who[PATH_MAX + 64];
    if (o.predict) snprintf(who, sizeof who, "--predict draws segmentation masks:");
    else snprintf(who, sizeof who, "%s is a segmentation set:", o.data);
    seg_loss = seg_loss_of(net, dims[2], dims[3], o.model, who);
    int od[4];
    clcnn_net_layer_shape(net, clcnn_net_num_layers(net) - 1, od);
    classes_out = od[1];
  }
  int classes = o.predict || det ? classes_out : test->classes > (train ? train->classes : 0) ? test->classes : train->classes;
  if (!det && classes > classes_out)
    die(1, "the data has %d classes but %s's %s has %d outputs", classes, o.model, seg ? "score map" : "last layer",
        classes_out);
  if (!det && classes_out > (seg ? 255 : 1024))
    die(1, "%s has %d outputs: at most %d classes are supported", o.model, classes_out, seg ? 255 : 1024);
  int loss_index = 0; /* the task's loss among the net's (each replica's is its namesake) */
  for (int i = 0; i < clcnn_net_num_losses(net); i++) {
    clcnn_loss_info li;
    if (!clcnn_net_loss_info(net, i, &li) && li.loss == (det ? det_loss : seg_loss)) loss_index = i;
  }
  /* --augment's crop fills with black: 0, or what normalisation makes of 0 */
  float *fill = calloc((size_t)dims[1], sizeof *fill);
  if (!fill) die(1, "out of memory");
  double mean[16], sd[16];
  if (o.normalize) {
    if (dims[1] > 16) die(1, "--normalize: at most 16 channels");
    clcnn_dataset_stats(train, mean, sd); /* the training split's, also for --eval and --predict */
    if (clcnn_dataset_normalize(train, mean, sd) || (test && clcnn_dataset_normalize(test, mean, sd)))
      die(1, "--normalize: a channel of the data is constant");
    for (int c = 0; c < dims[1]; c++) fill[c] = (float)((0.0 - mean[c]) * (1.0 / sd[c]));
    if (o.eval_only || o.predict) clcnn_dataset_destroy(train), train = NULL; /* only its statistics */
  }

  /* the weights and the training state */
  struct state s = {0};
  clcnn_optim_params op;
  clcnn_optim_defaults((clcnn_optim_kind)o.optimizer, &op);
  if (o.have_lr) op.lr = o.lr;
  if (o.have_momentum) op.momentum = o.momentum;
  if (o.have_wd) op.weight_decay = o.weight_decay;
  if (o.have_beta1) op.beta1 = o.beta1, op.beta2 = o.beta2;
  if (o.have_eps) op.eps = o.eps;
  if (o.have_alpha) op.alpha = o.alpha;
  op.nesterov = o.nesterov;
  op.dampening = o.dampening;
  s.base_lr = op.lr;
  clcnn_safetensors *ck = NULL;
  json_t *state = NULL; /* the training state, when resuming */
  const char *wfile = o.resume ? o.resume : o.init;
  if (wfile) {
    if ((st = clcnn_safetensors_open(wfile, &ck, err, sizeof err))) die(1, "%s", err);
    load_weights(ck, wfile, ctx, net);
    const char *train_json = clcnn_safetensors_meta(ck, "clcnn.train");
    if (o.resume && !train_json)
      die(1, "%s holds weights but no training state (it was not written by clcnn-train --save): use --init to "
             "start from its weights", o.resume);
    if (o.resume) state = state_parse(train_json, o.resume);
  } else {
    clcnn_init rule = !strcmp(o.init_rule, "he") ? CLCNN_INIT_HE : !strcmp(o.init_rule, "dcgan") ? CLCNN_INIT_DCGAN
                      : !strcmp(o.init_rule, "xavier") ? CLCNN_INIT_XAVIER
                                                                                                  : CLCNN_INIT_DEFAULT;
    net_check(ctx, clcnn_net_init(net, rule, (uint64_t)o.seed), "initialisation");
  }
  clcnn_net_set_seed(net, (uint64_t)o.seed * 0x9e3779b97f4a7c15ull + 1, 0);
  clcnn_net_set_input_grad(net, 0);

  int nbatches_epoch = train ? (train->n + (int)o.batch - 1) / (int)o.batch : 0;
  long total_epochs = o.epochs;
  clcnn_optim *opt = NULL;
  if (!o.eval_only) {
    if (o.resume) {
      /* the saved run's settings win over the defaults; flags given now must agree */
      const json_t *name = state_get(state, "optimizer", o.resume);
      if (!json_is_string(name)) state_bad(name, "optimizer", "a string", o.resume);
      if (strcmp(json_string_value(name), optimizer_name(o.optimizer)))
        die(1, "%s was trained with --optimizer %s; resume it with the same optimizer", o.resume, json_string_value(name));
      s.epoch = state_long(state, "epoch", o.resume);
      s.batch = state_long(state, "batch", o.resume);
      s.step = state_long(state, "step", o.resume);
      s.base_lr = state_double(state, "base_lr", o.resume);
      if (!o.have_lr) op.lr = s.base_lr;
      else s.base_lr = op.lr;
      if (state_long(state, "batch_size", o.resume) != o.batch)
        die(1, "%s was trained with --batch %ld; resume it with the same batch size", o.resume,
            state_long(state, "batch_size", o.resume));
      /* checkpoints from before --augment have no 'augment': they trained without */
      const json_t *aj = json_object_get(state, "augment");
      clcnn_augment saved = {0, 0};
      char why[200], want[32], have[32];
      if (aj && (!json_is_string(aj) || clcnn_augment_parse(json_string_value(aj), &saved, why, sizeof why)))
        state_bad(aj, "augment", "an augmentation as --augment takes it", o.resume);
      if (saved.hflip != o.aug.hflip || saved.crop_pad != o.aug.crop_pad) {
        augment_spec(&saved, have, sizeof have);
        augment_spec(&o.aug, want, sizeof want);
        die(1, "%s was trained with --augment %s; resume it with the same augmentation (not %s)", o.resume, have, want);
      }
      if (state_long(state, "seed", o.resume) != o.seed && o.seed == 1) o.seed = state_long(state, "seed", o.resume);
      if (s.epoch < 0 || s.batch < 0 || s.batch > nbatches_epoch || s.step < 0)
        die(1, "%s: the training state's position (epoch %ld, batch %ld) does not fit this data set", o.resume, s.epoch,
            s.batch);
      clcnn_net_set_seed(net, state_u64(state, "dropout_seed", o.resume), state_u64(state, "dropout_counter", o.resume));
      /* the replicas' dropout and batch norm statistics depend on their number: an exact resume
       * needs the same (checkpoints without 'replicas' trained on one device) */
      const json_t *rj = json_object_get(state, "replicas");
      long saved_rep = rj ? state_long(state, "replicas", o.resume) : 1;
      if (saved_rep != o.replicas)
        die(1, "%s was trained on %ld device%s; resume it on as many (--device with %ld device%s, not %d)", o.resume,
            saved_rep, saved_rep == 1 ? "" : "s", saved_rep, saved_rep == 1 ? "" : "s", o.replicas);
    }
    /* the schedule's length in epochs: --epochs, or what --steps reaches from here */
    if (o.steps) total_epochs = (s.step + o.steps + nbatches_epoch - 1) / (nbatches_epoch ? nbatches_epoch : 1);
    op.lr = lr_at(&o, s.base_lr, s.epoch, total_epochs);
    if ((st = clcnn_optim_create(net, &op, &opt))) die(1, "optimizer: %s", clcnn_ctx_last_error(ctx));
    if (o.resume) ckpt_load_optim(ck, state, o.resume, ctx, net, opt);
  }
  clcnn_safetensors_close(ck);
  json_decref(state);

  /* data parallel: replica 0 is the net above; each other device gets the same graph, replica 0's
   * weights, buffers, dropout generator and optimizer state, and a share of each batch */
  static clcnn_ctx *rctx[MAX_REPLICAS];
  static clcnn_net *rnet[MAX_REPLICAS];
  static clcnn_optim *ropt[MAX_REPLICAS];
  clcnn_replicas *grp = NULL;
  int nrep = o.replicas / D.size; /* this process's */
  rctx[0] = ctx, rnet[0] = net, ropt[0] = opt;
  if (o.replicas > 1) {
    int share = (int)((o.batch + nrep - 1) / nrep);
    uint64_t dseed, dcounter;
    clcnn_net_get_seed(net, &dseed, &dcounter);
    for (int r = 1; r < nrep; r++) {
      co.device = devids[r];
      if ((st = clcnn_ctx_create(&rctx[r], &co, err, sizeof err))) die(1, "--device %s: %s", devids[r], err);
      if ((st = clcnn_net_from_text(rctx[r], model_text, o.model, share, &rnet[r], err, sizeof err))) die(1, "%s", err);
      net_check(rctx[r], clcnn_net_set_input_grad(rnet[r], 0), "replica");
      net_check(rctx[r], clcnn_net_set_seed(rnet[r], dseed, dcounter), "replica");
      if (clcnn_optim_create(rnet[r], &op, &ropt[r])) die(1, "optimizer: %s", clcnn_ctx_last_error(rctx[r]));
      net_check(rctx[r], clcnn_optim_set_lr(ropt[r], clcnn_optim_lr(opt)), "replica");
      net_check(rctx[r], clcnn_optim_set_steps(ropt[r], clcnn_optim_steps(opt)), "replica");
    }
    if (clcnn_replicas_create(rnet, nrep, &grp, err, sizeof err)) die(1, "%s", err);
    /* over MPI: every rank holds the same weights already (the same seed, or the same checkpoint) */
    if (D.size > 1 && clcnn_replicas_set_world(grp, o.replicas, D.rank * nrep, dist_sum, NULL))
      die(1, "%s", clcnn_replicas_last_error(grp));
    if (clcnn_replicas_broadcast(grp)) die(1, "--device %s: %s", o.device, clcnn_replicas_last_error(grp));
    size_t most = 0;
    for (int p = 0; p < clcnn_net_num_params(net); p++) {
      clcnn_param_info pi;
      clcnn_net_param_info(net, p, &pi);
      if (pi.count > most) most = pi.count;
    }
    void *tmp = malloc(most * clcnn_ctx_elem_size(ctx) + 8);
    if (!tmp) die(1, "out of memory");
    for (int p = 0; p < clcnn_net_num_params(net); p++)
      for (int k = 0; k < clcnn_optim_num_slots(opt); k++) {
        net_check(ctx, clcnn_optim_state_read(opt, p, k, tmp), "optimizer state");
        for (int r = 1; r < nrep; r++) net_check(rctx[r], clcnn_optim_state_write(ropt[r], p, k, tmp), "optimizer state");
      }
    free(tmp);
  }

  size_t in = clcnn_net_input_size(net), esz = clcnn_ctx_elem_size(ctx);
  void *xbuf[2] = {malloc(o.batch * in * esz), malloc(o.batch * in * esz)};
  size_t per = seg ? (size_t)dims[2] * dims[3] : 1; /* targets per sample */
  int32_t *ybuf[2] = {malloc(o.batch * per * sizeof(int32_t)), malloc(o.batch * per * sizeof(int32_t))};
  if (seg) classes = classes_out; /* the confusion is over the model's classes */
  uint32_t *order = train ? malloc(train->n * sizeof *order) : NULL;
  int augment = o.aug.hflip || o.aug.crop_pad;
  float *aug_tmp = malloc(in * sizeof(float)); /* one augmented sample, before a double copy */
  unsigned char *mask_tmp = malloc(per); /* its augmented mask */
  /* a detector's targets: 6 reals per cell and sample, made from the boxes as batches are gathered */
  void *tbuf[2] = {det ? malloc(o.batch * 6 * det_cells * esz) : NULL, det ? malloc(o.batch * 6 * det_cells * esz) : NULL};
  float *cell_tmp = det ? malloc(6 * det_cells * sizeof(float)) : NULL;
  if (det && (!tbuf[0] || !tbuf[1] || !cell_tmp)) die(1, "out of memory");
  struct evalres er = {.confusion = calloc((size_t)classes * classes, sizeof(long))};
  er.seg_confusion = seg ? calloc((size_t)classes * classes, sizeof(int64_t)) : NULL;
  if (seg && !er.seg_confusion) die(1, "out of memory");
  if (!xbuf[0] || !xbuf[1] || !ybuf[0] || !ybuf[1] || (train && !order) || !er.confusion || !aug_tmp || !mask_tmp)
    die(1, "out of memory");

  char desc[128];
  if (nrep > 1) {
    printf("clcnn-train %s on %d devices, one replica each, the batch split among them:", clcnn_version(), nrep);
    for (int r = 0; r < nrep; r++) printf("%s %s (%s)", r ? "," : "", devids[r], clcnn_ctx_device_name(rctx[r]));
    printf("\n");
  } else if (D.size > 1) {
    printf("clcnn-train %s on %d MPI ranks, one replica each, the batch split among them; rank 0 on %s\n",
           clcnn_version(), D.size, clcnn_ctx_device_name(ctx));
  } else {
    printf("clcnn-train %s on %s\n", clcnn_version(), clcnn_ctx_device_name(ctx));
  }
  printf("model %s: %d layers, %d parameter tensors\n", o.model, clcnn_net_num_layers(net), clcnn_net_num_params(net));
  if (!o.quiet)
    for (int l = 0; l < clcnn_net_num_layers(net); l++) {
      int d[4];
      clcnn_net_layer_shape(net, l, d);
      /* a graph's layers: their names, and their inputs where they are not the line before */
      char who[200] = "", from[300] = "";
      const char *name = clcnn_net_layer_name(net, l);
      if (strcmp(name, (snprintf(who, sizeof who, "%d", l), who))) snprintf(who, sizeof who, "%s = ", name);
      else who[0] = 0;
      clcnn_tensor *in[8];
      int nin = clcnn_net_layer_inputs(net, l, in, 8);
      clcnn_tensor *prev = l ? clcnn_net_tensor(net, clcnn_net_layer_name(net, l - 1)) : clcnn_net_input(net);
      if (nin != 1 || in[0] != prev)
        for (int j = 0; j < nin && j < 8; j++)
          snprintf(from + strlen(from), sizeof from - strlen(from), "%s%s", j ? ", " : " <- ", clcnn_tensor_name(in[j]));
      char line[600];
      snprintf(line, sizeof line, "%s%s%s", who, clcnn_net_layer_describe(net, l, desc, sizeof desc), from);
      printf("  %2d  %-48s -> %dx%dx%d\n", l, line, d[1], d[2], d[3]);
    }

  /* what main releases on the way out (destroying the context also writes its programs to the
   * disk cache) */
  FILE *logf = NULL;    /* --log */
  struct curves cv = {0}; /* --plot */
#define FREE_ALL()                                                                                    \
  do {                                                                                                \
    if (logf) fclose(logf);                                                                           \
    curves_free(&cv);                                                                                 \
    free(xbuf[0]), free(xbuf[1]), free(ybuf[0]), free(ybuf[1]), free(order), free(er.confusion);      \
    free(er.seg_confusion);                                                                           \
    free(model_text), free(fill), free(aug_tmp), free(mask_tmp), free(tbuf[0]), free(tbuf[1]), free(cell_tmp); \
    clcnn_replicas_destroy(grp);                                                                      \
    for (int r_ = 1; r_ < nrep; r_++)                                                                 \
      clcnn_optim_destroy(ropt[r_]), clcnn_net_destroy(rnet[r_]), clcnn_ctx_destroy(rctx[r_]);        \
    clcnn_optim_destroy(opt);                                                                         \
    clcnn_net_destroy(net);                                                                           \
    clcnn_dataset_destroy(train);                                                                     \
    clcnn_dataset_destroy(test);                                                                      \
    clcnn_ctx_destroy(ctx);                                                                           \
    dist_finish();                                                                                    \
  } while (0)
  if (o.predict) {
    predict(ctx, net, &o, classes_out, det, o.normalize ? mean : NULL, o.normalize ? sd : NULL, xbuf[0]);
    FREE_ALL();
    return 0;
  }
  if (o.eval_only) {
    double t0 = now();
    if (det) {
      evaluate_det(ctx, net, test, (int)o.batch, classes, xbuf[0], &er);
      printf("test mAP@0.5 %.4f (%d classes, %d images, %.1f s)\n", er.map, classes, test->n, now() - t0);
      print_aps(&er, classes);
    } else if (seg) {
      evaluate_seg(ctx, net, test, (int)o.batch, classes, xbuf[0], &er);
      printf("test loss %.4f  pixel accuracy %.2f%%  mean IoU %.4f (%d classes), %.4f without background  (%d images, "
             "%.1f s)\n", er.loss, 100 * er.acc, er.miou, classes, er.miou_fg, test->n, now() - t0);
      print_ious(&er, classes);
    } else {
      evaluate(ctx, net, test, (int)o.batch, classes, xbuf[0], &er);
      printf("test loss %.4f  accuracy %.2f%%  (%d images, %.1f s)\n", er.loss, 100 * er.acc, test->n, now() - t0);
      print_confusion(&er, classes);
    }
    FREE_ALL();
    return 0;
  }
  printf("data %s: %d training and %d test images of %dx%dx%d, %d classes\n", o.data, train->n, test->n, train->c,
         train->h, train->w, classes);
  printf("optimizer %s lr %g", optimizer_name(o.optimizer), op.lr);
  if (op.momentum) printf(" momentum %g%s", op.momentum, op.nesterov ? " nesterov" : "");
  if (op.weight_decay) printf(" weight decay %g", op.weight_decay);
  char augs[32];
  augment_spec(&o.aug, augs, sizeof augs);
  printf(", batch %ld, %s %ld%s%s%s%s\n", o.batch, o.steps ? "steps" : "epochs", o.steps ? o.steps : o.epochs,
         o.schedule ? ", schedule " : "", o.schedule ? o.schedule : "", augment ? ", augment " : "",
         augment ? augs : "");

  struct profile prof = {0};
  if (o.profile) {
    prof.nl = clcnn_net_num_layers(net);
    prof.sum[0] = calloc(prof.nl + 1, sizeof(double));
    prof.sum[1] = calloc(prof.nl + 1, sizeof(double));
    char *tmp = xprintf("%s.tmp", o.profile);
    prof.trace = fopen(tmp, "w");
    if (!prof.trace) die(1, "--profile %s: %s", o.profile, strerror(errno));
    free(tmp);
    prof.events = json_array();
    if (!prof.events) die(1, "out of memory");
  }

  /* --log: JSON lines, appended (a resumed run continues the file); --plot: this run's epochs */
  if (o.log && !(logf = fopen(o.log, "a"))) die(1, "--log %s: %s", o.log, strerror(errno));
  cv.plot = o.plot, cv.task = det ? "detection" : seg ? "segmentation" : "classification";
  if (o.plot) curves_draw(&cv, o.model); /* an unwritable path fails now, not after the first epoch */

  int tty = isatty(STDOUT_FILENO);
  long log_every = o.log_every ? o.log_every : (nbatches_epoch >= 10 ? nbatches_epoch / 10 : 1);
  long steps_left = o.steps ? o.steps : -1;
  double t_first_step = 0;
  catch_interrupts();
  long images_total = 0;
  double train_time = 0;
  int stop = 0;
  while (!stop && !stop_asked(&D) && (o.steps ? steps_left > 0 : s.epoch < o.epochs)) {
    /* this epoch's order depends only on (seed, epoch): a resumed run draws the same one */
    for (int i = 0; i < train->n; i++) order[i] = i;
    if (!o.no_shuffle) {
      uint64_t rs = (uint64_t)o.seed ^ ((uint64_t)(s.epoch + 1) * 0xd1b54a32d192ed03ull);
      clcnn_shuffle(order, train->n, &rs);
    }
    net_check(ctx, clcnn_optim_set_lr(opt, lr_at(&o, s.base_lr, s.epoch, total_epochs)), "schedule");
    double t0 = now(), ep_loss = 0, t_shown = 0;
    long ep_correct = 0, ep_seen = 0, ep_enq = 0;
    for (int r = 0; r < nrep; r++) net_check(rctx[r], clcnn_net_train_stats_reset(rnet[r]), "training sums");
    /* gather batch B into staging buffer SLOT */
#define GATHER(B, SLOT)                                                                  \
  do {                                                                                   \
    int b0_ = (int)(B) * (int)o.batch, n_ = train->n - b0_ < o.batch ? train->n - b0_ : (int)o.batch; \
    int g0_ = 0, g1_ = n_; /* a rank gathers only its replicas' share */                 \
    if (grp && D.size > 1) {                                                             \
      int f0_, c0_, fl_, cl_;                                                            \
      clcnn_replicas_split(grp, n_, 0, &f0_, &c0_);                                      \
      clcnn_replicas_split(grp, n_, nrep - 1, &fl_, &cl_);                               \
      g0_ = f0_, g1_ = fl_ + cl_;                                                        \
    }                                                                                    \
    for (int i_ = g0_; i_ < g1_; i_++) {                                                 \
      const float *src_ = train->x + (size_t)order[b0_ + i_] * in;                       \
      float *f32_ = esz == 8 ? aug_tmp : (float *)xbuf[SLOT] + i_ * in;                  \
      if (augment) {                                                                     \
        if (clcnn_augment_sample(&o.aug, src_, f32_, train->c, train->h, train->w, fill, \
                                 augment_key(o.seed, s.epoch, order[b0_ + i_])))         \
          die(1, "--augment: cannot augment a %dx%dx%d sample", train->c, train->h, train->w); \
        src_ = f32_;                                                                     \
      } else if (esz == 4)                                                               \
        memcpy(f32_, src_, in * sizeof(float));                                          \
      if (esz == 8)                                                                      \
        for (size_t j_ = 0; j_ < in; j_++) ((double *)xbuf[SLOT])[i_ * in + j_] = src_[j_]; \
      if (det) { /* the boxes of the sample, assigned to their cells */                 \
        int lo_ = train->box_start[order[b0_ + i_]], hi_ = train->box_start[order[b0_ + i_] + 1]; \
        if (clcnn_yolo_targets(train->boxes + lo_, hi_ - lo_, classes_out, det_gh, det_gw, cell_tmp)) \
          die(1, "a training image's boxes do not fit the grid");                       \
        for (int j_ = 0; j_ < 6 * det_cells; j_++) {                                     \
          if (esz == 8) ((double *)tbuf[SLOT])[(size_t)i_ * 6 * det_cells + j_] = cell_tmp[j_]; \
          else ((float *)tbuf[SLOT])[(size_t)i_ * 6 * det_cells + j_] = cell_tmp[j_];   \
        }                                                                                \
      } else if (seg) {                                                                  \
        const unsigned char *m_ = train->mask + (size_t)order[b0_ + i_] * per;           \
        if (augment) { /* the mask moves with its image; what comes from outside is 255 */ \
          clcnn_augment_mask(&o.aug, m_, mask_tmp, train->h, train->w, 255,              \
                             augment_key(o.seed, s.epoch, order[b0_ + i_]));             \
          m_ = mask_tmp;                                                                 \
        }                                                                                \
        for (size_t p_ = 0; p_ < per; p_++) ybuf[SLOT][i_ * per + p_] = m_[p_];          \
      } else                                                                             \
        ybuf[SLOT][i_] = train->y[order[b0_ + i_]];                                      \
    }                                                                                    \
  } while (0)
    long b = s.batch;
    if (b < nbatches_epoch) GATHER(b, b & 1);
    for (; b < nbatches_epoch; b++) {
      int slot = b & 1, n = train->n - (int)b * (int)o.batch < o.batch ? train->n - (int)b * (int)o.batch : (int)o.batch;
      /* one step, enqueued as a chain on each replica (one, without --device lists): upload of
       * its share, forward, loss, backward */
      for (int r = 0; r < nrep; r++) {
        int first = 0, cnt = n;
        if (grp) clcnn_replicas_split(grp, n, r, &first, &cnt);
        /* the other buffer fed step b-1: wait for its copy (which follows step b-2), so that it
         * can be refilled below while steps b-1 and b run */
        net_check(rctx[r], clcnn_net_wait_inputs(rnet[r]), "inputs");
        if (!cnt) continue; /* a last batch smaller than the replicas */
        net_check(rctx[r], clcnn_net_zero_grad(rnet[r]), "zero_grad");
        net_check(rctx[r], clcnn_net_set_batch_offset(rnet[r], first), "batch offset");
        net_check(rctx[r], clcnn_net_forward(rnet[r], (char *)xbuf[slot] + first * in * esz, cnt), "forward");
        if (seg || det) {
          clcnn_loss_info li;
          clcnn_net_loss_info(rnet[r], loss_index, &li);
          const void *tg = det ? (const void *)((char *)tbuf[slot] + (size_t)first * 6 * det_cells * esz)
                               : (const void *)(ybuf[slot] + (size_t)first * per);
          net_check(rctx[r], clcnn_net_set_target(rnet[r], li.loss, tg), det ? "boxes" : "masks");
          net_check(rctx[r], clcnn_net_backward_losses(rnet[r]), "backward");
        } else {
          net_check(rctx[r], clcnn_net_backward(rnet[r], ybuf[slot] + first), "backward");
        }
      }
      /* while it runs, the next batch is gathered into the other buffer */
      if (b + 1 < nbatches_epoch) GATHER(b + 1, slot ^ 1);
      /* several replicas: their gradients become the global batch's (this waits for the backward
       * passes, reading each layer's gradients as soon as it is done); then every replica takes
       * the same step */
      if (grp && clcnn_replicas_reduce(grp)) die(1, "combining the replicas' gradients: %s", clcnn_replicas_last_error(grp));
      for (int r = 0; r < nrep; r++) net_check(rctx[r], clcnn_optim_step(ropt[r]), "optimizer step");
      if (!t_first_step) { /* the first step may wait; the others run ahead of the host */
        net_check(ctx, clcnn_net_finish(net), "first step");
        t_first_step = now() - t_start;
      }
      if (o.profile) profile_step(&prof, net, ctx);
      ep_enq += n;
      s.batch = b + 1;
      s.step++;
      double el = now() - t0, ips = ep_enq / (el > 0 ? el : 1e-9);
      long todo = o.steps ? (steps_left - 1 < nbatches_epoch - b - 1 ? steps_left - 1 : nbatches_epoch - b - 1)
                          : nbatches_epoch - b - 1;
      int last = todo == 0 || (o.steps && steps_left == 1);
      int show = !o.quiet && (tty ? now() - t_shown >= 0.2 || last : (b + 1) % log_every == 0 || last);
      if (show || last) {
        /* the loss and accuracy are summed on the device: one read now and then, none per step */
        double sum = 0, right = 0, seen = 0;
        if (seg || det) { /* per-pixel and yolo losses keep no sums: the last batch's loss (this waits for it),
                             the replicas' weighted by their shares */
          double l = 0, ln = 0; /* under MPI: this rank's share's */
          for (int r = 0; r < nrep; r++) {
            int first = 0, cnt = n;
            double lr_;
            if (grp) clcnn_replicas_split(grp, n, r, &first, &cnt);
            if (cnt) net_check(rctx[r], clcnn_net_loss(rnet[r], &lr_), "loss"), l += lr_ * cnt, ln += cnt;
          }
          l = ln ? l / ln : 0;
          sum = l * ep_enq, seen = ep_enq, right = 0;
        } else {
          for (int r = 0; r < nrep; r++) {
            double s_, r_, n_;
            net_check(rctx[r], clcnn_net_train_stats(rnet[r], &s_, &r_, &n_), "training sums");
            sum += s_, right += r_, seen += n_;
          }
        }
        if (!isfinite(sum)) {
          fprintf(stderr, "\n%s: the loss became %s by step %ld (epoch %ld, batch %ld; it is read every %s): stopping.%s%s%s\n",
                  prog, isnan(sum) ? "NaN" : "infinite", s.step, s.epoch + 1, b + 1,
                  tty ? "0.2 s" : "tenth of an epoch", o.save ? " The last good checkpoint, " : "", o.save ? o.save : "",
                  o.save ? ", is kept." : "");
          if (o.profile) { /* no half-written trace is left */
            char *tmp = xprintf("%s.tmp", o.profile);
            fclose(prof.trace), unlink(tmp), free(tmp), free(prof.sum[0]), free(prof.sum[1]);
            json_decref(prof.events);
          }
          FREE_ALL();
          return 1;
        }
        ep_loss = sum, ep_correct = (long)right, ep_seen = (long)seen;
        if (logf && (show || last)) {
          fprintf(logf, "{\"kind\": \"step\", \"epoch\": %ld, \"step\": %ld, \"loss\": %.6g", s.epoch + 1, s.step,
                  ep_loss / ep_seen);
          if (!seg && !det) fprintf(logf, ", \"accuracy\": %.6g", (double)ep_correct / ep_seen);
          fprintf(logf, ", \"lr\": %.6g, \"images_per_s\": %.1f}\n", clcnn_optim_lr(opt), ips);
          if (fflush(logf)) die(1, "--log %s: %s", o.log, strerror(errno));
        }
      }
      if (show) {
        t_shown = now();
        char eta[32];
        fmt_time(todo * o.batch / (ips > 0 ? ips : 1), eta, sizeof eta);
        int width = 30, fill = (int)((b + 1) * width / nbatches_epoch);
        if (tty) {
          printf("\repoch %ld [", s.epoch + 1);
          for (int i = 0; i < width; i++) putchar(i < fill ? '=' : i == fill ? '>' : ' ');
          if (seg || det) printf("] %ld/%d loss %.4f %.0f img/s ETA %s   ", b + 1, nbatches_epoch, ep_loss / ep_seen, ips, eta);
          else
            printf("] %ld/%d loss %.4f acc %.2f%% %.0f img/s ETA %s   ", b + 1, nbatches_epoch, ep_loss / ep_seen,
                   100.0 * ep_correct / ep_seen, ips, eta);
        } else {
          if (seg || det)
            printf("epoch %ld batch %ld/%d loss %.4f %.0f img/s ETA %s\n", s.epoch + 1, b + 1, nbatches_epoch,
                   ep_loss / ep_seen, ips, eta);
          else
            printf("epoch %ld batch %ld/%d loss %.4f acc %.2f%% %.0f img/s ETA %s\n", s.epoch + 1, b + 1, nbatches_epoch,
                   ep_loss / ep_seen, 100.0 * ep_correct / ep_seen, ips, eta);
        }
        fflush(stdout);
      }
      if ((o.steps && --steps_left == 0) || stop_asked(&D)) {
        b++;
        break;
      }
    }
    double el = now() - t0;
    train_time += el;
    images_total += ep_enq; /* all ranks' */
    if (tty && !o.quiet) printf("\n");
    int epoch_done = s.batch >= nbatches_epoch;
    if (epoch_done) {
      s.epoch++;
      s.batch = 0;
    } else {
      stop = 1;
    }
    if (stop_asked(&D)) { /* no evaluation: the checkpoint, and out */
      net_check(ctx, clcnn_net_finish(net), "last step");
      fprintf(stderr, "%s: %s after step %ld (epoch %ld, batch %ld)%s%s\n", prog,
              interrupted == SIGINT ? "interrupted" : "terminated", s.step, epoch_done ? s.epoch : s.epoch + 1,
              epoch_done ? nbatches_epoch : s.batch, o.save ? ": saving " : "", o.save ? o.save : "");
      if (o.save) save_checkpoint(o.save, ctx, net, opt, &s, &o, model_text);
      if (o.save) fprintf(stderr, "%s: saved %s: --resume %s continues the run\n", prog, o.save, o.save);
      /* the other ranks leave only once rank 0 saved: mpirun ends a job whose rank exits non-zero */
      if (D.size > 1) dist_any(0);
      if (o.profile) { /* no half-written trace is left */
        char *tmp = xprintf("%s.tmp", o.profile);
        fclose(prof.trace), unlink(tmp), free(tmp), free(prof.sum[0]), free(prof.sum[1]);
      }
      int code = 128 + interrupted;
      FREE_ALL();
      return code;
    }
    double te = now();
    if (det) {
      evaluate_det(ctx, net, test, (int)o.batch, classes, xbuf[0], &er);
      printf("epoch %ld%s: train loss %.4f (last batch) | test mAP@0.5 %.4f | %.1f s, %.0f img/s (test %.1f s)\n",
             epoch_done ? s.epoch : s.epoch + 1, epoch_done ? "" : " (partial)", ep_seen ? ep_loss / ep_seen : 0, er.map,
             el, ep_enq / (el > 0 ? el : 1e-9), now() - te);
    } else if (seg) {
      evaluate_seg(ctx, net, test, (int)o.batch, classes, xbuf[0], &er);
      printf("epoch %ld%s: train loss %.4f (last batch) | test loss %.4f pixel acc %.2f%% mIoU %.4f (%.4f without "
             "background) | %.1f s, %.0f img/s (test %.1f s)\n",
             epoch_done ? s.epoch : s.epoch + 1, epoch_done ? "" : " (partial)", ep_seen ? ep_loss / ep_seen : 0, er.loss,
             100 * er.acc, er.miou, er.miou_fg, el, ep_enq / (el > 0 ? el : 1e-9), now() - te);
    } else {
      evaluate(ctx, net, test, (int)o.batch, classes, xbuf[0], &er);
      printf("epoch %ld%s: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s, %.0f img/s (test %.1f s)\n",
             epoch_done ? s.epoch : s.epoch + 1, epoch_done ? "" : " (partial)", ep_seen ? ep_loss / ep_seen : 0,
             ep_seen ? 100.0 * ep_correct / ep_seen : 0, er.loss, 100 * er.acc, el, ep_enq / (el > 0 ? el : 1e-9),
             now() - te);
    }
    fflush(stdout);
    double train_loss = ep_seen ? ep_loss / ep_seen : NAN, ips_epoch = ep_enq / (el > 0 ? el : 1e-9);
    double metric = det ? er.map : seg ? er.miou : er.acc, train_metric = seg || det || !ep_seen ? NAN : (double)ep_correct / ep_seen;
    if (logf) {
      fprintf(logf, "{\"kind\": \"epoch\", \"epoch\": %ld, \"partial\": %s, \"step\": %ld, \"train_loss\": %.6g",
              epoch_done ? s.epoch : s.epoch + 1, epoch_done ? "false" : "true", s.step, train_loss);
      if (!seg && !det) fprintf(logf, ", \"train_accuracy\": %.6g", train_metric);
      if (det) fprintf(logf, ", \"test_map50\": %.6g", er.map);
      else if (seg)
        fprintf(logf, ", \"test_loss\": %.6g, \"test_pixel_accuracy\": %.6g, \"test_miou\": %.6g, \"test_miou_fg\": %.6g",
                er.loss, er.acc, er.miou, er.miou_fg);
      else fprintf(logf, ", \"test_loss\": %.6g, \"test_accuracy\": %.6g", er.loss, er.acc);
      fprintf(logf, ", \"lr\": %.6g, \"images_per_s\": %.1f, \"seconds\": %.2f}\n", clcnn_optim_lr(opt), ips_epoch, el);
      if (fflush(logf)) die(1, "--log %s: %s", o.log, strerror(errno));
    }
    if (o.plot) {
      curves_add(&cv, epoch_done ? (double)s.epoch : s.epoch + (double)s.batch / nbatches_epoch, train_loss,
                 det ? NAN : er.loss, train_metric, metric);
      curves_draw(&cv, o.model);
    }
    if (o.save) save_checkpoint(o.save, ctx, net, opt, &s, &o, model_text);
  }

  if (interrupted) { /* between epochs: the last epoch's checkpoint is written already */
    fprintf(stderr, "%s: %s after step %ld, at the end of epoch %ld%s%s\n", prog,
            interrupted == SIGINT ? "interrupted" : "terminated", s.step, s.epoch, o.save ? ": saved " : "",
            o.save ? o.save : "");
    if (o.profile) {
      char *tmp = xprintf("%s.tmp", o.profile);
      fclose(prof.trace), unlink(tmp), free(tmp), free(prof.sum[0]), free(prof.sum[1]);
    }
    int code = 128 + interrupted;
    FREE_ALL();
    return code;
  }
  printf("done: %ld steps, %ld images in %.1f s of training (%.0f img/s); first step finished %.2f s after start\n",
         s.step, images_total, train_time, images_total / (train_time > 0 ? train_time : 1e-9), t_first_step);
  if (grp) {
    double wait_s, red_s;
    long nred;
    clcnn_replicas_times(grp, &wait_s, &red_s, &nred);
    printf("gradients combined over %d replicas in %ld steps: %.1f ms a step summing and writing back, %.1f ms waiting "
           "for the backward passes\n", o.replicas, nred, nred ? 1e3 * red_s / nred : 0, nred ? 1e3 * wait_s / nred : 0);
  }
  if (det) {
    printf("final test mAP@0.5 %.4f (%d classes)\n", er.map, classes);
    print_aps(&er, classes);
  } else if (seg) {
    printf("final test mean IoU %.4f (%d classes), %.4f without background, pixel accuracy %.2f%%, loss %.4f\n", er.miou,
           classes, er.miou_fg, 100 * er.acc, er.loss);
    print_ious(&er, classes);
  } else {
    printf("final test accuracy %.2f%%, loss %.4f\n", 100 * er.acc, er.loss);
    print_confusion(&er, classes);
  }
  if (o.save) printf("saved %s\n", o.save);
  if (o.profile) {
    /* times in microseconds; 15 significant digits keep the nanoseconds */
    json_t *trace = json_pack("{s:s, s:o}", "displayTimeUnit", "ms", "traceEvents", prof.events);
    int bad = !trace || json_dumpf(trace, prof.trace, JSON_COMPACT | JSON_REAL_PRECISION(15)) || fputc('\n', prof.trace) == EOF;
    json_decref(trace);
    bad |= ferror(prof.trace);
    bad |= fclose(prof.trace) != 0;
    char *tmp = xprintf("%s.tmp", o.profile);
    if (bad || rename(tmp, o.profile)) die(1, "--profile %s: %s", o.profile, strerror(errno));
    free(tmp);
    printf("kernel time per step (mean of %ld steps), from the OpenCL events:\n", prof.steps);
    printf("  %-4s %-48s %12s %12s\n", "", "layer", "forward us", "backward us");
    double tf = 0, tb = 0;
    for (int l = 0; l <= prof.nl; l++) {
      if (l == prof.nl) snprintf(desc, sizeof desc, "loss");
      else clcnn_net_layer_describe(net, l, desc, sizeof desc);
      double f = prof.sum[0][l] / 1000.0 / prof.steps, bk = prof.sum[1][l] / 1000.0 / prof.steps;
      tf += f, tb += bk;
      printf("  %-4d %-48s %12.1f %12.1f\n", l, desc, f, bk);
    }
    printf("  %-4s %-48s %12.1f %12.1f\n", "", "total", tf, tb);
    printf("by kernel (mean per step):\n");
    for (int i = 0; i < prof.nk; i++)
      printf("  %-40s %10.1f us  %5.1f calls\n", prof.k[i].name, prof.k[i].ns / 1000.0 / prof.steps,
             (double)prof.k[i].count / prof.steps);
    printf("trace written to %s (open it in chrome://tracing or Perfetto)\n", o.profile);
    free(prof.sum[0]);
    free(prof.sum[1]);
  }
  FREE_ALL();
  return 0;
}
