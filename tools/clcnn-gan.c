/* tools/clcnn-gan.c - train a DCGAN (Radford et al. 2015): a generator and a discriminator, each a
 * model file, on the images of a data set, with torch.optim's Adam for each net.
 *
 *   clcnn-gan GENERATOR DISCRIMINATOR [--data DIR] [--epochs N | --steps N] [--batch N]
 *             [--lr X] [--betas B1,B2] [--d-lr X] [--d-betas B1,B2] [--seed N] [--out DIR]
 *             [--save PREFIX] [--resume PREFIX] [--init PREFIX] [--sample N] [--judge FILE]
 *
 * One step, as PyTorch's DCGAN example: z ~ N(0, 1) on the device; fake = G(z); the
 * discriminator's loss BCE(D(real), 1) + BCE(D(fake), 0) and its Adam step; then the generator's
 * loss BCE(D(fake), 1) through the updated discriminator, whose input gradient goes into G's
 * backward on the device (clcnn_net_backward_net), and G's Adam step. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcnn.h"
#include "common.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define GRID 64 /* samples in an epoch's picture, 8 x 8 */

/* ---- options ---- */
struct gopts {
  const char *gen, *disc, *data, *out, *save, *resume, *init, *judge, *device, *log, *plot;
  long epochs, steps, batch, seed, sample, judge_n;
  double lr, beta1, beta2, d_lr, d_beta1, d_beta2;
  int have_d_lr, have_d_betas, quiet;
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s GENERATOR DISCRIMINATOR [options]\n"
          "Train a DCGAN: GENERATOR maps noise (its input, N(0, 1)) to images, DISCRIMINATOR ends in one\n"
          "logit (real or generated); both are model files, trained with BCE with logits and Adam.\n\n"
          "  --data DIR            the images: IDX (MNIST, Fashion-MNIST) or CIFAR-10 binary files\n"
          "                        (default %s), scaled to [-1, 1]\n"
          "  --epochs N            passes over the training images (default 5)\n"
          "  --steps N             train N batches instead of whole epochs\n"
          "  --batch N             images per batch (default 64)\n"
          "  --lr X                Adam's learning rate of both nets (default 0.0002)\n"
          "  --betas B1,B2         Adam's betas of both nets (default 0.5,0.999)\n"
          "  --d-lr X, --d-betas B1,B2  the discriminator's, when they differ\n"
          "  --seed N              seed of initialisation, shuffling and noise (default 1)\n"
          "  --out DIR             where the pictures go (default gan-out): OUT/epoch-NNN.png, 64\n"
          "                        samples of one fixed noise batch after each epoch\n"
          "  --save PREFIX         write PREFIX-generator.safetensors and PREFIX-discriminator.safetensors\n"
          "                        after each epoch and at the end\n"
          "  --resume PREFIX       continue the training saved with --save PREFIX\n"
          "  --init PREFIX         start from those weights (PREFIX-generator.safetensors, and\n"
          "                        PREFIX-discriminator.safetensors when training)\n"
          "  --sample N            only draw N images from the generator (--init or --resume) into\n"
          "                        OUT/sample-NNNNN.png, and OUT/grid.png of the first 64\n"
          "  --judge FILE          after training (or alone, with --epochs 0), classify 1000 samples\n"
          "                        with the classifier checkpoint FILE (clcnn-train --save, on [0, 1]\n"
          "                        pixels) and report their confidence, their classes and the Frechet\n"
          "                        distance of its penultimate features to the test images'\n"
          "  --judge-samples N     how many samples --judge draws (default 1000)\n"
          "  --log FILE            append one JSON object a line to FILE for each epoch: both losses,\n"
          "                        D(x), D(G(z)), learning rates, images/s\n"
          "  --plot FILE.svg       draw the losses and the verdicts against the epoch, after each epoch\n"
          "  --device SEL          P:D, gpu, cpu or part of a device name (default $CLCNN_DEVICE)\n"
          "  -q, --quiet           only the epoch lines\n"
          "  -h, --help            this text;  --version  the version\n",
          prog, DEFAULT_DATA);
}

static int parse_betas(const char *flag, const char *s, double *b1, double *b2, char *msg, size_t msize) {
  char *end;
  errno = 0;
  double x = strtod(s, &end), y = 0;
  int ok = !errno && end != s && *end == ',';
  if (ok) {
    const char *t = end + 1;
    y = strtod(t, &end);
    ok = !errno && end != t && !*end;
  }
  if (!ok || !(x >= 0 && x < 1) || !(y >= 0 && y < 1))
    USAGE_ERROR("%s: '%s' is not two numbers in [0, 1) separated by a comma (as 0.5,0.999)", flag, s);
  *b1 = x, *b2 = y;
  return ARGS_OK;
}

enum {
  O_DATA = 256, O_EPOCHS, O_STEPS, O_BATCH, O_LR, O_BETAS, O_DLR, O_DBETAS, O_SEED, O_OUT, O_SAVE, O_RESUME, O_INIT,
  O_SAMPLE, O_JUDGE, O_JUDGEN, O_DEVICE, O_VERSION, O_LOG, O_PLOT
};

static int parse_args(int argc, char **argv, struct gopts *o, char *msg, size_t msize) {
  static const struct option longopts[] = {
      {"data", 1, 0, O_DATA},     {"epochs", 1, 0, O_EPOCHS}, {"steps", 1, 0, O_STEPS},   {"batch", 1, 0, O_BATCH},
      {"lr", 1, 0, O_LR},         {"betas", 1, 0, O_BETAS},   {"d-lr", 1, 0, O_DLR},      {"d-betas", 1, 0, O_DBETAS},
      {"seed", 1, 0, O_SEED},     {"out", 1, 0, O_OUT},       {"save", 1, 0, O_SAVE},     {"resume", 1, 0, O_RESUME},
      {"init", 1, 0, O_INIT},     {"sample", 1, 0, O_SAMPLE}, {"judge", 1, 0, O_JUDGE},   {"judge-samples", 1, 0, O_JUDGEN},
      {"device", 1, 0, O_DEVICE}, {"quiet", 0, 0, 'q'},       {"help", 0, 0, 'h'},        {"version", 0, 0, O_VERSION},
      {"log", 1, 0, O_LOG},       {"plot", 1, 0, O_PLOT},     {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->data = DEFAULT_DATA, o->out = "gan-out", o->batch = 64, o->seed = 1, o->judge_n = 1000;
  o->lr = 0.0002, o->beta1 = 0.5, o->beta2 = 0.999;
  long epochs = -1;
  int c, r = ARGS_OK;
  optind = 0; /* restart getopt (the fuzz harness calls this again and again) */
  opterr = 0;
  while (r == ARGS_OK && (c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (c) {
      case O_DATA: o->data = optarg; break;
      case O_EPOCHS: r = parse_long("--epochs", optarg, 0, 100000, &epochs, msg, msize); break;
      case O_STEPS: r = parse_long("--steps", optarg, 1, 1000000000, &o->steps, msg, msize); break;
      case O_BATCH: r = parse_long("--batch", optarg, 1, 65536, &o->batch, msg, msize); break;
      case O_LR: r = parse_double("--lr", optarg, 0, 1e6, &o->lr, msg, msize); break;
      case O_BETAS: r = parse_betas("--betas", optarg, &o->beta1, &o->beta2, msg, msize); break;
      case O_DLR: r = parse_double("--d-lr", optarg, 0, 1e6, &o->d_lr, msg, msize), o->have_d_lr = 1; break;
      case O_DBETAS: r = parse_betas("--d-betas", optarg, &o->d_beta1, &o->d_beta2, msg, msize), o->have_d_betas = 1; break;
      case O_SEED: r = parse_long("--seed", optarg, 0, LONG_MAX, &o->seed, msg, msize); break;
      case O_OUT: o->out = optarg; break;
      case O_SAVE: o->save = optarg; break;
      case O_RESUME: o->resume = optarg; break;
      case O_INIT: o->init = optarg; break;
      case O_SAMPLE: r = parse_long("--sample", optarg, 1, 1000000, &o->sample, msg, msize); break;
      case O_JUDGE: o->judge = optarg; break;
      case O_JUDGEN: r = parse_long("--judge-samples", optarg, 2, 1000000, &o->judge_n, msg, msize); break;
      case O_DEVICE: o->device = optarg; break;
      case O_LOG: o->log = optarg; break;
      case O_PLOT: o->plot = optarg; break;
      case 'q': o->quiet = 1; break;
      case 'h': return ARGS_HELP;
      case O_VERSION: return ARGS_VERSION;
      case ':': USAGE_ERROR("%s needs a value", argv[optind - 1]);
      default:
        if (optopt) USAGE_ERROR("unknown option -%c", optopt);
        USAGE_ERROR("unknown option %s", argv[optind - 1]);
    }
  }
  if (r != ARGS_OK) return r;
  if (optind + 2 != argc)
    USAGE_ERROR("expected two model files, GENERATOR and DISCRIMINATOR (got %d argument%s)", argc - optind,
                argc - optind == 1 ? "" : "s");
  o->gen = argv[optind], o->disc = argv[optind + 1];
  if (!o->have_d_lr) o->d_lr = o->lr;
  if (!o->have_d_betas) o->d_beta1 = o->beta1, o->d_beta2 = o->beta2;
  if (o->steps && epochs >= 0) USAGE_ERROR("--epochs and --steps exclude each other");
  o->epochs = o->steps ? 0 : epochs >= 0 ? epochs : 5;
  if (o->init && o->resume) USAGE_ERROR("--init and --resume exclude each other");
  if (o->sample && !o->init && !o->resume) USAGE_ERROR("--sample needs a generator: give --init PREFIX or --resume PREFIX");
  if (o->sample && (o->steps || epochs > 0 || o->save || o->judge))
    USAGE_ERROR("--sample only draws images: it takes no --epochs, --steps, --save or --judge");
  if (!*o->out) USAGE_ERROR("--out: an empty directory name");
  if ((o->log && !*o->log) || (o->plot && !*o->plot)) USAGE_ERROR("--log and --plot need a file name");
  if ((o->log || o->plot) && o->sample) USAGE_ERROR("--log and --plot follow a training run: not with --sample");
  if (o->save && !*o->save) USAGE_ERROR("--save: an empty prefix");
  return ARGS_OK;
}

/* ---- the state of a run, kept in both checkpoints ---- */
struct run {
  long epoch, batch, step; /* epochs completed, batches into the current one, batches in all */
};

static char *ckpt_path(const char *prefix, const char *which) { return xprintf("%s-%s.safetensors", prefix, which); }

static uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t s = a * 0x9e3779b97f4a7c15ull ^ b;
  clcnn_rng_next(&s);
  return clcnn_rng_next(&s);
}
/* the noise of training step STEP, the fixed batch of the epoch pictures, and --sample's/--judge's */
static uint64_t step_key(long seed, long step) { return mix((uint64_t)seed, (uint64_t)step * 4 + 0); }
static uint64_t grid_key(long seed, long k) { return mix((uint64_t)seed, (uint64_t)k * 4 + 1); }
static uint64_t sample_key(long seed, long i) { return mix((uint64_t)seed ^ 0x5a5a5a5aull, (uint64_t)i * 4 + 2); }

static void save_pair(const char *prefix, clcnn_ctx *ctx, clcnn_net *g, clcnn_optim *og, const char *gtext,
                      clcnn_net *d, clcnn_optim *od, const char *dtext, const struct run *r, const struct gopts *o) {
  for (int k = 0; k < 2; k++) {
    clcnn_optim *opt = k ? od : og;
    char lr[40], b1[40], b2[40], base[40];
    snprintf(lr, sizeof lr, "%a", clcnn_optim_lr(opt));
    snprintf(base, sizeof base, "%a", k ? o->d_lr : o->lr);
    snprintf(b1, sizeof b1, "%a", k ? o->d_beta1 : o->beta1);
    snprintf(b2, sizeof b2, "%a", k ? o->d_beta2 : o->beta2);
    json_t *ts = json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "task", "gan", "epoch",
                           (json_int_t)r->epoch, "batch", (json_int_t)r->batch, "step", (json_int_t)r->step,
                           "optimizer", "adam", "base_lr", base, "lr", lr, "beta1", b1, "beta2", b2, "optim_steps",
                           (json_int_t)clcnn_optim_steps(opt), "seed", (json_int_t)o->seed, "batch_size",
                           (json_int_t)o->batch);
    if (!ts) die(1, "out of memory");
    char *path = ckpt_path(prefix, k ? "discriminator" : "generator");
    ckpt_save(path, ctx, k ? d : g, opt, k ? dtext : gtext, ts);
    free(path);
  }
}

/* Open PREFIX-WHICH.safetensors into net; its training state when want_state (NULL else). */
static json_t *load_one(const char *prefix, const char *which, clcnn_ctx *ctx, clcnn_net *net, int want_state,
                        clcnn_safetensors **keep) {
  char err[1024];
  char *path = ckpt_path(prefix, which);
  clcnn_safetensors *f = NULL;
  if (clcnn_safetensors_open(path, &f, err, sizeof err)) {
    free(path);
    die(1, "%s", err);
  }
  load_weights(f, path, ctx, net);
  json_t *ts = NULL;
  if (want_state) {
    const char *js = clcnn_safetensors_meta(f, "clcnn.train");
    if (!js) die(1, "%s holds weights but no training state: use --init to start from its weights", path);
    ts = state_parse(js, path);
    const json_t *task = json_object_get(ts, "task");
    if (!json_is_string(task) || strcmp(json_string_value(task), "gan"))
      die(1, "%s was not written by clcnn-gan --save (its training state is not a GAN's)", path);
  }
  free(path);
  *keep = f;
  return ts;
}

/* ---- pictures ---- */
static unsigned char to_byte(float v) { /* [-1, 1] to 0..255 */
  float b = (v + 1.0f) * 127.5f;
  return b <= 0 ? 0 : b >= 255 ? 255 : (unsigned char)lrintf(b);
}

/* n images (c x h x w, [-1, 1]) as one PNG: a grid of `cols` columns with `gap`-pixel black gaps
 * around and between them, each pixel shown as scale x scale. */
static void write_grid(const char *path, const float *x, int n, int c, int h, int w, int cols, int scale, int gap) {
  int rows = (n + cols - 1) / cols, cw = w * scale + gap, ch = h * scale + gap;
  clcnn_image img = {.w = cols * cw + gap, .h = rows * ch + gap, .channels = c == 3 ? 3 : 1};
  img.px = calloc((size_t)img.w * img.h * img.channels, 1);
  if (!img.px) die(1, "out of memory");
  for (int i = 0; i < n; i++)
    for (int y = 0; y < h * scale; y++)
      for (int xx = 0; xx < w * scale; xx++)
        for (int k = 0; k < img.channels; k++) {
          float v = x[(((size_t)i * c + k) * h + y / scale) * w + xx / scale];
          size_t py = gap + (size_t)(i / cols) * ch + y, px = gap + (size_t)(i % cols) * cw + xx;
          img.px[(py * img.w + px) * img.channels + k] = to_byte(v);
        }
  char err[1024];
  if (clcnn_png_write(path, &img, err, sizeof err)) die(1, "%s", err);
  free(img.px);
}

/* n samples into out (n x size floats), in chunks of 64 whose noise keys are key(k) for chunk k, so
 * that sample i is the same whatever the batch: G in evaluation mode (batch norm's running
 * statistics), so a sample depends only on its noise. */
static void draw(clcnn_ctx *ctx, clcnn_net *g, uint64_t (*key)(long seed, long k), long seed, long n, float *out) {
  size_t size = clcnn_net_output_size(g);
  int was = clcnn_net_training(g);
  net_check(ctx, clcnn_net_set_training(g, 0), "generator");
  for (long i = 0; i < n; i += GRID) {
    int b = (int)(n - i < GRID ? n - i : GRID);
    net_check(ctx, clcnn_net_forward_noise(g, b, key(seed, i / GRID)), "generator");
    net_check(ctx, clcnn_net_read_output(g, out + (size_t)i * size), "generator");
  }
  net_check(ctx, clcnn_net_set_training(g, was), "generator");
}

/* ---- --judge: a classifier's verdict on generated images ---- */

struct judge {
  clcnn_net *net;
  clcnn_tensor *feat; /* the last layer's input: the penultimate features */
  int batch, classes, dim;
};

static void judge_open(clcnn_ctx *ctx, const char *path, int batch, const int in_dims[4], struct judge *j) {
  char err[1024];
  clcnn_safetensors *f = NULL;
  if (clcnn_safetensors_open(path, &f, err, sizeof err)) die(1, "%s", err);
  const char *model = clcnn_safetensors_meta(f, "clcnn.model");
  if (!model) die(1, "--judge %s: no model text in it (write the classifier with clcnn-train --save)", path);
  const char *js = clcnn_safetensors_meta(f, "clcnn.train");
  if (js) {
    json_t *ts = state_parse(js, path);
    const json_t *nz = json_object_get(ts, "normalize");
    if (nz && json_is_integer(nz) && json_integer_value(nz))
      die(1, "--judge %s was trained with --normalize: it must read pixels in [0, 1] as they are", path);
    json_decref(ts);
  }
  if (clcnn_net_from_text(ctx, model, path, batch, &j->net, err, sizeof err)) die(1, "--judge %s: %s", path, err);
  int nl = clcnn_net_num_layers(j->net), d[4];
  clcnn_tensor *in[2];
  if (nl < 2 || clcnn_net_layer_inputs(j->net, nl - 1, in, 2) != 1)
    die(1, "--judge %s: the classifier's last layer must read one tensor (its penultimate features)", path);
  j->feat = in[0];
  net_check(ctx, clcnn_net_keep_tensor(j->net, j->feat), "--judge");
  clcnn_net_layer_shape(j->net, -1, d);
  if (d[1] != in_dims[1] || d[2] != in_dims[2] || d[3] != in_dims[3])
    die(1, "--judge %s reads %dx%dx%d images, the generator writes %dx%dx%d", path, d[1], d[2], d[3], in_dims[1],
        in_dims[2], in_dims[3]);
  load_weights(f, path, ctx, j->net);
  clcnn_safetensors_close(f);
  net_check(ctx, clcnn_net_set_training(j->net, 0), "--judge");
  int fd[4];
  clcnn_tensor_shape(j->feat, fd);
  j->dim = fd[1] * fd[2] * fd[3];
  j->classes = (int)clcnn_net_output_size(j->net);
  j->batch = batch;
}

/* Classify n images (x in [0, 1]); per class counts of argmax, the confident ones (softmax >= 0.9),
 * and the features' mean and covariance. */
static void judge_run(clcnn_ctx *ctx, struct judge *j, const float *x, long n, long *count, long *confident,
                      double *mean, double *cov) {
  size_t in = clcnn_net_input_size(j->net);
  float *out = malloc(sizeof(float) * j->batch * j->classes), *f = malloc(sizeof(float) * j->batch * j->dim);
  double *sum = calloc(j->dim, sizeof(double)), *sq = calloc((size_t)j->dim * j->dim, sizeof(double));
  if (!out || !f || !sum || !sq) die(1, "out of memory");
  for (int k = 0; k < j->classes; k++) count[k] = 0;
  *confident = 0;
  for (long i = 0; i < n; i += j->batch) {
    int b = (int)(n - i < j->batch ? n - i : j->batch);
    net_check(ctx, clcnn_net_forward(j->net, x + i * in, b), "--judge");
    net_check(ctx, clcnn_net_read_output(j->net, out), "--judge");
    net_check(ctx, clcnn_net_read_tensor(j->net, j->feat, f), "--judge");
    for (int s = 0; s < b; s++) {
      const float *o = out + (size_t)s * j->classes;
      int best = 0;
      for (int k = 1; k < j->classes; k++)
        if (o[k] > o[best]) best = k;
      double z = 0;
      for (int k = 0; k < j->classes; k++) z += exp((double)o[k] - o[best]);
      count[best]++;
      if (1 / z >= 0.9) (*confident)++;
      const float *fs = f + (size_t)s * j->dim;
      for (int a = 0; a < j->dim; a++) {
        sum[a] += fs[a];
        for (int c = 0; c <= a; c++) sq[a * j->dim + c] += (double)fs[a] * fs[c];
      }
    }
  }
  for (int a = 0; a < j->dim; a++) mean[a] = sum[a] / n;
  for (int a = 0; a < j->dim; a++) /* the unbiased covariance, as numpy.cov */
    for (int c = 0; c <= a; c++)
      cov[a * j->dim + c] = cov[c * j->dim + a] = (sq[a * j->dim + c] - n * mean[a] * mean[c]) / (n - 1);
  free(out), free(f), free(sum), free(sq);
}

static void judge_report(clcnn_ctx *ctx, struct judge *j, clcnn_net *g, const struct gopts *o,
                         const clcnn_dataset *test) {
  size_t size = clcnn_net_output_size(g);
  long n = o->judge_n;
  float *x = malloc(sizeof(float) * size * n);
  long *count = calloc(j->classes, sizeof(long)), *tcount = calloc(j->classes, sizeof(long)), conf = 0, tconf = 0;
  double *m1 = malloc(sizeof(double) * j->dim), *m2 = malloc(sizeof(double) * j->dim),
         *c1 = malloc(sizeof(double) * j->dim * j->dim), *c2 = malloc(sizeof(double) * j->dim * j->dim);
  if (!x || !count || !tcount || !m1 || !m2 || !c1 || !c2) die(1, "out of memory");
  draw(ctx, g, sample_key, o->seed, n, x);
  for (size_t i = 0; i < size * n; i++) x[i] = (x[i] + 1) * 0.5f; /* the classifier's [0, 1] */
  judge_run(ctx, j, x, n, count, &conf, m1, c1);
  judge_run(ctx, j, test->x, test->n, tcount, &tconf, m2, c2);
  int present = 0;
  long largest = 0;
  for (int k = 0; k < j->classes; k++) present += count[k] > 0, largest = count[k] > largest ? count[k] : largest;
  double fd;
  net_check(ctx, clcnn_frechet_distance(m1, c1, m2, c2, j->dim, &fd), "--judge");
  printf("judge: %ld samples: %.1f%% classified with probability >= 0.9, %d of %d classes present, the largest "
         "class %.1f%%\n", n, 100.0 * conf / n, present, j->classes, 100.0 * largest / n);
  printf("judge: per class:");
  for (int k = 0; k < j->classes; k++) printf(" %ld", count[k]);
  printf("\njudge: Frechet distance of the classifier's %d penultimate features to the %d test images: %.3f\n",
         j->dim, test->n, fd);
  printf("judge: the test images themselves: %.1f%% classified with probability >= 0.9\n", 100.0 * tconf / test->n);
  free(x), free(count), free(tcount), free(m1), free(m2), free(c1), free(c2);
}

/* ---- --plot ---- */
static void gan_plot(const char *path, const char *gen, double *const pts[5], int n) {
  struct plot_series loss[2] = {{"discriminator", "#d62728", pts[1]}, {"generator", "#1f77b4", pts[2]}},
                     verdict[2] = {{"D(x), real images", "#2ca02c", pts[3]}, {"D(G(z)), generated", "#9467bd", pts[4]}};
  struct plot_panel p[2] = {{"loss (BCE, mean of the epoch)", loss, 2}, {"the discriminator's verdicts", verdict, 2}};
  static const double none[1] = {0};
  char *title = xprintf("clcnn-gan %s", gen);
  int r = plot_svg(path, title, n ? pts[0] : none, n, p, 2), e = errno;
  free(title);
  if (r) die(1, "--plot %s: %s", path, strerror(e));
}

/* ---- the nets ---- */
static clcnn_net *open_net(clcnn_ctx *ctx, const char *path, const char *text, int batch) {
  char err[2048];
  clcnn_net *net = NULL;
  if (clcnn_net_from_text(ctx, text, path, batch, &net, err, sizeof err)) die(1, "%s", err);
  fputs(clcnn_net_warnings(net), stderr);
  return net;
}

static clcnn_optim *adam(clcnn_ctx *ctx, clcnn_net *net, double lr, double b1, double b2) {
  clcnn_optim_params p;
  clcnn_optim_defaults(CLCNN_OPTIM_ADAM, &p);
  p.lr = lr, p.beta1 = b1, p.beta2 = b2;
  clcnn_optim *opt = NULL;
  if (clcnn_optim_create(net, &p, &opt)) die(1, "optimizer: %s", clcnn_ctx_last_error(ctx));
  return opt;
}

static void fill(void *t, int n, float v) {
  for (int i = 0; i < n; i++) ((float *)t)[i] = v;
}

int main(int argc, char **argv) {
  prog = "clcnn-gan";
  struct gopts o;
  char msg[1024], err[2048];
  switch (parse_args(argc, argv, &o, msg, sizeof msg)) {
    case ARGS_OK: break;
    case ARGS_HELP: usage(stdout); return 0;
    case ARGS_VERSION: printf("clcnn-gan %s\n", clcnn_version()); return 0;
    default: die(2, "%s", msg);
  }
  clcnn_ctx *ctx = NULL;
  clcnn_ctx_options co = {.device = o.device, .precision = CLCNN_FLOAT};
  if (clcnn_ctx_create(&ctx, &co, err, sizeof err)) die(1, "%s", err);

  /* the two nets: G's batch also draws the 64 pictures at once */
  int gmax = o.batch > GRID ? (int)o.batch : GRID;
  char *gtext = read_text(o.gen), *dtext = read_text(o.disc);
  clcnn_net *g = open_net(ctx, o.gen, gtext, gmax), *d = open_net(ctx, o.disc, dtext, (int)o.batch);
  if (clcnn_net_num_losses(g))
    die(1, "%s: a generator has no loss line: it learns from the discriminator's verdict", o.gen);
  clcnn_tensor *dloss = NULL;
  clcnn_loss_info li;
  if (clcnn_net_num_losses(d) > 1 || (clcnn_net_num_losses(d) == 1 && (clcnn_net_loss_info(d, 0, &li),
                                                                        li.type != CLCNN_LAYER_BCE_LOSS)))
    die(1, "%s: a discriminator's loss is one 'bce(...)' line on its logit (or none: clcnn-gan adds it)", o.disc);
  if (clcnn_net_num_losses(d) == 1) dloss = li.loss;
  if (clcnn_net_output_size(d) != 1)
    die(1, "%s: a discriminator ends in one logit, not %zu outputs", o.disc, clcnn_net_output_size(d));
  if (!dloss && !(dloss = clcnn_bce_loss(d, clcnn_net_output(d), 1, "loss")))
    die(1, "%s: %s", o.disc, clcnn_ctx_last_error(ctx));
  if (clcnn_net_loss_info(d, 0, &li) || li.input != clcnn_net_output(d))
    die(1, "%s: the bce loss must read the discriminator's output (its last layer line)", o.disc);
  int gd[4], dd[4];
  clcnn_net_layer_shape(g, clcnn_net_num_layers(g) - 1, gd);
  clcnn_net_layer_shape(d, -1, dd);
  if (gd[1] != dd[1] || gd[2] != dd[2] || gd[3] != dd[3])
    die(1, "%s writes %dx%dx%d images but %s reads %dx%dx%d", o.gen, gd[1], gd[2], gd[3], o.disc, dd[1], dd[2], dd[3]);
  net_check(ctx, clcnn_net_set_input_grad(g, 0), o.gen); /* the noise needs no gradient */

  /* weights and state */
  struct run r = {0};
  json_t *gts = NULL, *dts = NULL;
  clcnn_safetensors *gf = NULL, *df = NULL;
  const char *from = o.resume ? o.resume : o.init;
  int training = !o.sample && (o.epochs > 0 || o.steps > 0);
  if (from) {
    gts = load_one(from, "generator", ctx, g, o.resume != NULL, &gf);
    if (training) dts = load_one(from, "discriminator", ctx, d, o.resume != NULL, &df);
  } else {
    /* the DCGAN paper's N(0, 0.02) weights (batch norm's scale 1, shift 0) */
    net_check(ctx, clcnn_net_init(g, CLCNN_INIT_DCGAN, (uint64_t)o.seed), "initialisation");
    net_check(ctx, clcnn_net_init(d, CLCNN_INIT_DCGAN, (uint64_t)o.seed + 0x100000001ull), "initialisation");
  }
  make_dir(o.out);

  if (o.sample) { /* draw, write, done */
    size_t size = clcnn_net_output_size(g);
    float *x = malloc(sizeof(float) * size * o.sample);
    if (!x) die(1, "out of memory");
    draw(ctx, g, sample_key, o.seed, o.sample, x);
    for (long i = 0; i < o.sample; i++) {
      char *path = xprintf("%s/sample-%05ld.png", o.out, i + 1);
      write_grid(path, x + i * size, 1, gd[1], gd[2], gd[3], 1, 1, 0);
      free(path);
    }
    char *path = xprintf("%s/grid.png", o.out);
    write_grid(path, x, o.sample < GRID ? (int)o.sample : GRID, gd[1], gd[2], gd[3], 8, 2, 2);
    printf("wrote %ld samples to %s/sample-NNNNN.png and %s\n", o.sample, o.out, path);
    free(path), free(x);
    clcnn_safetensors_close(gf);
    json_decref(gts);
    clcnn_net_destroy(g), clcnn_net_destroy(d), clcnn_ctx_destroy(ctx);
    free(gtext), free(dtext);
    return 0;
  }

  /* the data, scaled to [-1, 1] as tanh writes */
  clcnn_dataset *train = NULL, *test = NULL;
  if (training && clcnn_dataset_load(o.data, 1, &train, err, sizeof err)) die(1, "%s", err);
  if (o.judge && clcnn_dataset_load(o.data, 0, &test, err, sizeof err)) die(1, "%s", err);
  const clcnn_dataset *any = train ? train : test;
  if (any && (any->c != dd[1] || any->h != dd[2] || any->w != dd[3]))
    die(1, "the images in %s are %dx%dx%d but %s reads %dx%dx%d", o.data, any->c, any->h, any->w, o.disc, dd[1], dd[2],
        dd[3]);
  for (size_t i = 0; train && i < (size_t)train->n * train->c * train->h * train->w; i++)
    train->x[i] = train->x[i] * 2 - 1; /* (the test images stay in [0, 1]: only --judge reads them) */

  clcnn_optim *og = NULL, *od = NULL;
  int nb = train ? (train->n + (int)o.batch - 1) / (int)o.batch : 0;
  if (training) {
    og = adam(ctx, g, o.lr, o.beta1, o.beta2);
    od = adam(ctx, d, o.d_lr, o.d_beta1, o.d_beta2);
    if (o.resume) {
      r.epoch = state_long(gts, "epoch", o.resume), r.batch = state_long(gts, "batch", o.resume);
      r.step = state_long(gts, "step", o.resume);
      if (state_long(dts, "step", o.resume) != r.step)
        die(1, "%s: the generator's and the discriminator's checkpoints are of different steps (%ld, %ld)", o.resume,
            r.step, state_long(dts, "step", o.resume));
      if (state_long(gts, "batch_size", o.resume) != o.batch)
        die(1, "%s was trained with --batch %ld; resume it with the same batch size", o.resume,
            state_long(gts, "batch_size", o.resume));
      if (state_long(gts, "seed", o.resume) != o.seed)
        die(1, "%s was trained with --seed %ld; resume it with the same seed", o.resume, state_long(gts, "seed", o.resume));
      if (r.epoch < 0 || r.batch < 0 || r.batch >= nb || r.step < 0)
        die(1, "%s: the training state's position (epoch %ld, batch %ld) does not fit this data set", o.resume, r.epoch,
            r.batch);
      char *gp = ckpt_path(o.resume, "generator"), *dp = ckpt_path(o.resume, "discriminator");
      ckpt_load_optim(gf, gts, gp, ctx, g, og);
      ckpt_load_optim(df, dts, dp, ctx, d, od);
      free(gp), free(dp);
    }
  }
  clcnn_safetensors_close(gf), clcnn_safetensors_close(df);
  json_decref(gts), json_decref(dts);

  printf("clcnn-gan %s on %s\n", clcnn_version(), clcnn_ctx_device_name(ctx));
  printf("generator %s: %d layers, %zu noise inputs; discriminator %s: %d layers\n", o.gen, clcnn_net_num_layers(g),
         clcnn_net_input_size(g), o.disc, clcnn_net_num_layers(d));
  if (training)
    printf("Adam: generator lr %g betas %g,%g; discriminator lr %g betas %g,%g; batch %ld, %d batches an epoch\n", o.lr,
           o.beta1, o.beta2, o.d_lr, o.d_beta1, o.d_beta2, o.batch, nb);
  fflush(stdout);

  size_t in = clcnn_net_input_size(d);
  float *xb = malloc(sizeof(float) * o.batch * in), *ones = malloc(sizeof(float) * o.batch),
        *zeros = malloc(sizeof(float) * o.batch), *grid = malloc(sizeof(float) * GRID * in);
  uint32_t *order = train ? malloc(sizeof(uint32_t) * train->n) : NULL;
  if (!xb || !ones || !zeros || !grid || (train && !order)) die(1, "out of memory");
  fill(ones, (int)o.batch, 1), fill(zeros, (int)o.batch, 0);
  long end_step = o.steps ? r.step + o.steps : (long)nb * o.epochs;
  FILE *logf = o.log && training ? fopen(o.log, "a") : NULL;
  if (o.log && training && !logf) die(1, "--log %s: %s", o.log, strerror(errno));
  int np = 0, pcap = 0; /* --plot's points: epoch, D loss, G loss, D(x), D(G(z)) */
  double *pts[5] = {0};
  if (o.plot && training) gan_plot(o.plot, o.gen, pts, 0); /* an unwritable path fails now */
  double t0 = now();
  long steps_run = 0;
  while (training && r.step < end_step) {
    uint64_t rs = (uint64_t)o.seed * 0x9e3779b97f4a7c15ull ^ (uint64_t)r.epoch;
    for (int i = 0; i < train->n; i++) order[i] = (uint32_t)i;
    clcnn_shuffle(order, train->n, &rs); /* depends only on (seed, epoch): a resumed run draws the same */
    double sd = 0, sg = 0, dx = 0, dgz = 0, te = now();
    long cnt = 0;
    for (; r.batch < nb && r.step < end_step; r.batch++, r.step++, steps_run++, cnt++) {
      int b0 = (int)(r.batch * o.batch), n = train->n - b0 < o.batch ? train->n - b0 : (int)o.batch;
      for (int i = 0; i < n; i++) memcpy(xb + (size_t)i * in, train->x + (size_t)order[b0 + i] * in, in * sizeof(float));
      double lr_, lf, lg;
      /* z and G(z) */
      net_check(ctx, clcnn_net_forward_noise(g, n, step_key(o.seed, r.step)), "generator");
      /* the discriminator: real images towards 1, generated ones towards 0 */
      net_check(ctx, clcnn_net_zero_grad(d), "discriminator");
      net_check(ctx, clcnn_net_forward(d, xb, n), "discriminator");
      net_check(ctx, clcnn_net_set_target(d, dloss, ones), "discriminator");
      net_check(ctx, clcnn_net_backward_losses(d), "discriminator");
      net_check(ctx, clcnn_net_loss(d, &lr_), "discriminator");
      net_check(ctx, clcnn_net_forward_net(d, g), "discriminator");
      net_check(ctx, clcnn_net_set_target(d, dloss, zeros), "discriminator");
      net_check(ctx, clcnn_net_backward_losses(d), "discriminator");
      net_check(ctx, clcnn_net_loss(d, &lf), "discriminator");
      net_check(ctx, clcnn_optim_step(od), "discriminator step");
      /* the generator: its images judged real by the updated discriminator */
      net_check(ctx, clcnn_net_zero_grad(g), "generator");
      net_check(ctx, clcnn_net_forward_net(d, g), "discriminator");
      net_check(ctx, clcnn_net_set_target(d, dloss, ones), "discriminator");
      net_check(ctx, clcnn_net_backward_losses(d), "discriminator");
      net_check(ctx, clcnn_net_backward_net(g, d), "generator");
      net_check(ctx, clcnn_optim_step(og), "generator step");
      net_check(ctx, clcnn_net_loss(d, &lg), "discriminator");
      if (!isfinite(lr_ + lf + lg)) die(1, "step %ld: a loss is not finite (D real %g, fake %g, G %g)", r.step + 1, lr_, lf, lg);
      sd += lr_ + lf, sg += lg, dx += exp(-lr_), dgz += exp(-lg);
      if (!o.quiet && isatty(STDOUT_FILENO))
        printf("\r  batch %ld/%d  D loss %.4f  G loss %.4f   ", r.batch + 1, nb, sd / (cnt + 1), sg / (cnt + 1)),
            fflush(stdout);
    }
    if (!o.quiet && isatty(STDOUT_FILENO)) printf("\r%60s\r", "");
    int whole = r.batch == nb;
    if (whole) r.epoch++, r.batch = 0;
    double secs = now() - te;
    char *pic = NULL;
    if (whole) {
      draw(ctx, g, grid_key, o.seed, GRID, grid);
      pic = xprintf("%s/epoch-%03ld.png", o.out, r.epoch);
      write_grid(pic, grid, GRID, gd[1], gd[2], gd[3], 8, 2, 2);
    }
    if (cnt)
      printf("%s %ld%s: D loss %.4f  G loss %.4f  D(x) %.3f  D(G(z)) %.3f  %.0f img/s%s%s\n", whole ? "epoch" : "step",
             whole ? r.epoch : r.step, whole ? "" : " (part of an epoch)", sd / cnt, sg / cnt, dx / cnt, dgz / cnt,
             cnt * o.batch / (secs > 0 ? secs : 1e-9), pic ? "  " : "", pic ? pic : "");
    free(pic);
    fflush(stdout);
    if (logf && cnt) {
      fprintf(logf, "{\"kind\": \"epoch\", \"epoch\": %ld, \"partial\": %s, \"step\": %ld, \"d_loss\": %.6g, "
              "\"g_loss\": %.6g, \"d_x\": %.6g, \"d_g_z\": %.6g, \"lr\": %.6g, \"d_lr\": %.6g, \"images_per_s\": %.1f, "
              "\"seconds\": %.2f}\n", whole ? r.epoch : r.epoch + 1, whole ? "false" : "true", r.step, sd / cnt, sg / cnt,
              dx / cnt, dgz / cnt, clcnn_optim_lr(og), clcnn_optim_lr(od), cnt * o.batch / (secs > 0 ? secs : 1e-9), secs);
      if (fflush(logf)) die(1, "--log %s: %s", o.log, strerror(errno));
    }
    if (o.plot && cnt) {
      if (np == pcap) {
        pcap = pcap ? 2 * pcap : 16;
        for (int k = 0; k < 5; k++)
          if (!(pts[k] = realloc(pts[k], sizeof(double) * pcap))) die(1, "out of memory");
      }
      double v[5] = {whole ? (double)r.epoch : r.epoch + (double)r.batch / nb, sd / cnt, sg / cnt, dx / cnt, dgz / cnt};
      for (int k = 0; k < 5; k++) pts[k][np] = v[k];
      gan_plot(o.plot, o.gen, pts, ++np);
    }
    if (o.save) save_pair(o.save, ctx, g, og, gtext, d, od, dtext, &r, &o);
  }
  if (logf) fclose(logf);
  for (int k = 0; k < 5; k++) free(pts[k]);
  if (training) {
    double secs = now() - t0;
    printf("trained %ld steps in %.0f s (%.0f img/s)%s%s%s\n", steps_run, secs,
           steps_run * o.batch / (secs > 0 ? secs : 1e-9), o.save ? "; saved " : "", o.save ? o.save : "",
           o.save ? "-{generator,discriminator}.safetensors" : "");
  }
  if (o.judge) {
    struct judge j;
    int gin[4] = {0, gd[1], gd[2], gd[3]};
    judge_open(ctx, o.judge, 100, gin, &j);
    judge_report(ctx, &j, g, &o, test);
    clcnn_net_destroy(j.net);
  }
  free(xb), free(ones), free(zeros), free(grid), free(order), free(gtext), free(dtext);
  clcnn_optim_destroy(og), clcnn_optim_destroy(od);
  clcnn_dataset_destroy(train), clcnn_dataset_destroy(test);
  clcnn_net_destroy(g), clcnn_net_destroy(d), clcnn_ctx_destroy(ctx);
  return 0;
}
