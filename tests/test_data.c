/* tests/test_data.c - data sets: IDX (plain and gzip) and CIFAR-10 files written here are read
 * back with the right shapes, scaling and labels; every broken file is refused with words that
 * name the problem; statistics, normalisation, the generator and the shuffle match direct
 * computations; and the real Fashion-MNIST loads whole. */
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

#ifdef __SANITIZE_ADDRESS__ /* gcc */
#define UNDER_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char tmp[] = "/tmp/clcnn-data-XXXXXX";
static char err[1024];

/* ---- writing test files ---- */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* DIR/NAME (NAME may hold a subdirectory that exists), plain or gzip. */
static const char *path_of(const char *dir, const char *name) {
  static char p[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

static void put_le32(FILE *f, uint32_t v) {
  for (int i = 0; i < 4; i++) fputc((int)((v >> (8 * i)) & 0xff), f);
}

/* Gzip written here by hand (RFC 1952 around RFC 1951 stored blocks): the tests link only
 * libclcnn, not zlib, and an independent writer checks the reader against the format. */
static void write_file(const char *path, int gz, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  int ok = f != NULL;
  if (ok && gz) {
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    const unsigned char *p = data;
    fwrite(hdr, 1, sizeof hdr, f);
    size_t off = 0;
    do {
      size_t len = n - off > 65535 ? 65535 : n - off;
      fputc(off + len == n ? 1 : 0, f); /* BFINAL, BTYPE = stored */
      unsigned char l[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)~len,
                            (unsigned char)(~len >> 8)};
      fwrite(l, 1, 4, f);
      if (len) fwrite(p + off, 1, len, f);
      off += len;
    } while (off < n);
    put_le32(f, crc32_of(p, n));
    put_le32(f, (uint32_t)n);
    ok = !ferror(f);
  } else if (ok) {
    ok = fwrite(data, 1, n, f) == n;
  }
  ok = (f && fclose(f) == 0) && ok;
  if (!ok) tap_bail("cannot write a test file");
}

/* An IDX file: magic, dims, then BYTES bytes of payload (fewer than the dims say: truncated). */
static void write_idx(const char *path, int gz, uint32_t magic, int ndim, const uint32_t *dims,
                      const unsigned char *payload, size_t bytes) {
  size_t hdr = 4 + 4 * (size_t)ndim;
  unsigned char *buf = malloc(hdr + bytes + 1);
  if (!buf) tap_bail("out of memory");
  put32(buf, magic);
  for (int i = 0; i < ndim; i++) put32(buf + 4 + 4 * i, dims[i]);
  if (bytes) memcpy(buf + hdr, payload, bytes);
  write_file(path, gz, buf, hdr + bytes);
  free(buf);
}

/* N images of R x C with pixel k of the set = (k * 37 + 11) % 256, and pixel 0 = 0, pixel 1 = 255. */
static unsigned char *pattern(size_t count) {
  unsigned char *p = malloc(count);
  if (!p) tap_bail("out of memory");
  for (size_t k = 0; k < count; k++) p[k] = (unsigned char)((k * 37 + 11) % 256);
  p[0] = 0;
  p[1] = 255;
  return p;
}

static void write_mnist(const char *dir, const char *split, int gz, uint32_t n, uint32_t r,
                        uint32_t c, const unsigned char *pix, const unsigned char *lab) {
  char name[256];
  uint32_t d3[3] = {n, r, c}, d1[1] = {n};
  snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", split, gz ? ".gz" : "");
  write_idx(path_of(dir, name), gz, 0x803, 3, d3, pix, (size_t)n * r * c);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", split, gz ? ".gz" : "");
  write_idx(path_of(dir, name), gz, 0x801, 1, d1, lab, n);
}

static char *subdir(const char *name) {
  static char p[8][1024];
  static int k;
  k = (k + 1) % 8;
  snprintf(p[k], sizeof p[k], "%s/%s", tmp, name);
  if (mkdir(p[k], 0700) != 0) tap_bail("mkdir in the temporary directory failed");
  return p[k];
}

/* A CIFAR-10 batch of N records: record r has label labels[r] and pixel i = (r * 7 + i) % 256. */
static void write_cifar(const char *path, int n, const unsigned char *labels, size_t cut) {
  size_t bytes = (size_t)n * 3073;
  unsigned char *buf = malloc(bytes);
  if (!buf) tap_bail("out of memory");
  for (int r = 0; r < n; r++) {
    buf[(size_t)r * 3073] = labels[r];
    for (int i = 0; i < 3072; i++) buf[(size_t)r * 3073 + 1 + i] = (unsigned char)((r * 7 + i) % 256);
  }
  write_file(path, 0, buf, bytes - cut);
  free(buf);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(p);
}

/* ---- checking refusals ---- */

/* The load failed with ST, *out was set to NULL, and err holds every |-separated word. */
static int refused(clcnn_status got, clcnn_status want, clcnn_dataset *out, const char *words) {
  int ok = got == want && out == NULL;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", words);
  for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|")) ok &= strstr(err, w) != NULL;
  if (!ok)
    tap_diag("got %s (out %s), wanted %s; error: %s", clcnn_status_name(got), out ? "set" : "NULL",
             clcnn_status_name(want), err);
  return ok;
}

static clcnn_dataset sentinel;

static clcnn_status load(const char *dir, int train, clcnn_dataset **out) {
  *out = &sentinel; /* must come back NULL on failure */
  err[0] = '\0';
  return clcnn_dataset_load(dir, train, out, err, sizeof err);
}

static clcnn_status load_idx(const char *im, const char *lb, clcnn_dataset **out) {
  *out = &sentinel;
  err[0] = '\0';
  return clcnn_dataset_load_idx(im, lb, out, err, sizeof err);
}

/* ---- reference generator and shuffle, from the formulas ---- */

static uint64_t ref_splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void ref_shuffle(uint32_t *o, size_t n, uint64_t *s) {
  for (size_t i = n - 1; n > 1 && i > 0; i--) {
    size_t j = (size_t)(((unsigned __int128)ref_splitmix(s) * (i + 1)) >> 64);
    uint32_t t = o[i];
    o[i] = o[j];
    o[j] = t;
  }
}

static int is_permutation(const uint32_t *o, size_t n) {
  unsigned char *seen = calloc(n, 1);
  int ok = seen != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    ok = o[i] < n && !seen[o[i]];
    if (ok) seen[o[i]] = 1;
  }
  free(seen);
  return ok;
}

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void idx_tests(void) {
  clcnn_dataset *ds;
  clcnn_status st;

  /* Plain IDX, train split: 3 images of 2x4, labels 0 2 1. */
  const uint32_t n = 3, r = 2, c = 4;
  unsigned char *pix = pattern((size_t)n * r * c);
  const unsigned char lab[3] = {0, 2, 1};
  char *plain = subdir("plain");
  write_mnist(plain, "train", 0, n, r, c, pix, lab);
  st = load(plain, 1, &ds);
  if (tap_ok(st == CLCNN_SUCCESS && ds, "plain IDX train split loads: %s", err)) {
    tap_ok(ds->n == 3 && ds->c == 1 && ds->h == 2 && ds->w == 4, "shape %d x %dx%dx%d", ds->n, ds->c, ds->h, ds->w);
    tap_ok(ds->x[0] == 0.0f && ds->x[1] == 1.0f, "pixel 0 -> 0.0f, pixel 255 -> 1.0f exactly");
    int same = 1;
    for (size_t k = 0; k < (size_t)n * r * c; k++) same &= ds->x[k] == (float)pix[k] / 255.0f;
    tap_ok(same, "every pixel is x/255 in file order");
    tap_ok(ds->y[0] == 0 && ds->y[1] == 2 && ds->y[2] == 1 && ds->classes == 3, "labels 0 2 1, 3 classes");
    clcnn_dataset_destroy(ds);
  }
  st = load(plain, 0, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "no test data set|t10k-images-idx3-ubyte[.gz]|test_batch.bin"),
         "the test split of a directory holding only train files: %s", err);

  /* Gzip only, test split: the loader finds the .gz files. */
  char *gzd = subdir("gz");
  write_mnist(gzd, "t10k", 1, n, r, c, pix, lab);
  FILE *f = fopen(path_of(gzd, "t10k-images-idx3-ubyte.gz"), "rb");
  unsigned char magic[2] = {0, 0};
  if (f) {
    if (fread(magic, 1, 2, f) != 2) magic[0] = 0;
    fclose(f);
  }
  tap_ok(magic[0] == 0x1f && magic[1] == 0x8b, "the .gz test file really is gzip");
  st = load(gzd, 0, &ds);
  if (tap_ok(st == CLCNN_SUCCESS && ds, "gzip-only IDX test split loads: %s", err)) {
    int same = ds->n == 3 && ds->h == 2 && ds->w == 4;
    for (size_t k = 0; same && k < (size_t)n * r * c; k++) same &= ds->x[k] == (float)pix[k] / 255.0f;
    tap_ok(same && ds->y[1] == 2 && ds->classes == 3, "gzip data, shape and labels equal the plain ones");
    clcnn_dataset_destroy(ds);
  }
  /* clcnn_dataset_load_idx with explicit names, one plain and one compressed. */
  st = load_idx(path_of(plain, "train-images-idx3-ubyte"), path_of(gzd, "t10k-labels-idx1-ubyte.gz"), &ds);
  tap_ok(st == CLCNN_SUCCESS && ds && ds->n == 3 && ds->classes == 3, "load_idx with a plain and a .gz name: %s", err);
  clcnn_dataset_destroy(ds);
  st = load_idx(path_of(plain, "train-images-idx3-ubyte"), path_of(gzd, "t10k-labels-idx1-ubyte"), &ds);
  tap_ok(st == CLCNN_SUCCESS && ds && ds->n == 3, "load_idx adds .gz to a name that does not exist: %s", err);
  clcnn_dataset_destroy(ds);

  /* Refusals. */
  st = load(path_of(tmp, "no-such-dir"), 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "no-such-dir|does not exist"), "a missing directory: %s", err);
  st = load(path_of(plain, "train-labels-idx1-ubyte"), 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "not a directory"), "a file as directory: %s", err);
  char *empty = subdir("empty");
  st = load(empty, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds,
                 "empty|train-images-idx3-ubyte[.gz]|train-labels-idx1-ubyte[.gz]|data_batch_1.bin|cifar-10-batches-bin"),
         "an empty directory lists what was looked for: %s", err);

  char *nolab = subdir("nolabels");
  uint32_t d3[3] = {n, r, c}, d1[1] = {n};
  write_idx(path_of(nolab, "train-images-idx3-ubyte"), 0, 0x803, 3, d3, pix, (size_t)n * r * c);
  st = load(nolab, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "train-labels-idx1-ubyte[.gz]|not found"), "a missing labels file: %s", err);
  st = load_idx(path_of(nolab, "nothing-here"), path_of(plain, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "nothing-here[.gz]|nothing-here.gz"), "a missing images file names both tries: %s", err);

  char *bad = subdir("badmagic");
  write_idx(path_of(bad, "train-images-idx3-ubyte"), 0, 0x12345678, 3, d3, pix, (size_t)n * r * c);
  write_idx(path_of(bad, "train-labels-idx1-ubyte"), 0, 0x801, 1, d1, lab, n);
  st = load(bad, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "badmagic/train-images-idx3-ubyte|bad magic|0x12345678"), "a bad magic number: %s", err);
  st = load_idx(path_of(bad, "train-labels-idx1-ubyte"), path_of(bad, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "bad magic|0x00000801|0x00000803"), "a labels file given as images: %s", err);
  write_idx(path_of(bad, "float-images"), 0, 0x0d03, 3, d3, pix, (size_t)n * r * c);
  st = load_idx(path_of(bad, "float-images"), path_of(bad, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "float-images|dtype 0x0d"), "a float IDX file: %s", err);
  uint32_t zero[3] = {n, 0, c}, huge[3] = {65536, 65536, 65536}, big[3] = {1u << 21, 32, 32};
  write_idx(path_of(bad, "zero-images"), 0, 0x803, 3, zero, pix, 0);
  st = load_idx(path_of(bad, "zero-images"), path_of(bad, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "zero-images|absurd|is 0"), "a zero dimension: %s", err);
  write_idx(path_of(bad, "huge-images"), 0, 0x803, 3, huge, pix, 4);
  st = load_idx(path_of(bad, "huge-images"), path_of(bad, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "huge-images|absurd|65536 x 65536 x 65536"), "2^48 pixels: %s", err);
  write_idx(path_of(bad, "big-images"), 0, 0x803, 3, big, pix, 4);
  st = load_idx(path_of(bad, "big-images"), path_of(bad, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "absurd|2097152 x 32 x 32"), "2^31 pixels, one too many: %s", err);
  /* Found by tests/fuzz/fuzz_idx.c: a 20-byte file whose header claims 2^31-1 pixels (allowed) made
   * the loader take 8 GB before finding it short. It is refused as truncated, and the pixels
   * are stored as they arrive: with the address space capped at 1 GB more than the process
   * has (in a child; not under AddressSanitizer, which maps terabytes), the reason is still
   * "truncated", not "cannot allocate". Likewise for 2^31-1 labels. */
  uint32_t claim[3] = {32767, 32767, 2}, lclaim[1] = {0x7fffffffu};
  write_idx(path_of(bad, "claims-8gb"), 0, 0x803, 3, claim, pix, 4);
  write_idx(path_of(bad, "claims-labels"), 0, 0x801, 1, lclaim, lab, n);
  for (int which = 0; which < 2; which++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
#ifndef UNDER_ASAN
      long pages = 0;
      FILE *sm = fopen("/proc/self/statm", "r");
      if (!sm || fscanf(sm, "%ld", &pages) != 1) _exit(3);
      fclose(sm);
      struct rlimit rl = {.rlim_cur = (rlim_t)pages * sysconf(_SC_PAGESIZE) + (1ul << 30)};
      rl.rlim_max = rl.rlim_cur;
      if (setrlimit(RLIMIT_AS, &rl)) _exit(3);
#endif
      clcnn_dataset *cds;
      clcnn_status cst = which ? load_idx(path_of(plain, "train-images-idx3-ubyte"), path_of(bad, "claims-labels"), &cds)
                               : load_idx(path_of(bad, "claims-8gb"), path_of(bad, "train-labels-idx1-ubyte"), &cds);
      int ok = which ? refused(cst, CLCNN_ERR_INVALID_ARGUMENT, cds, "claims-labels|truncated|expected 2147483647 bytes of labels|file ends after 3")
                     : refused(cst, CLCNN_ERR_INVALID_ARGUMENT, cds, "claims-8gb|truncated|file ends after 4");
      if (!ok) fprintf(stderr, "child: %s\n", err);
      fflush(stdout);
      _exit(ok ? 0 : 1);
    }
    int wst = 0;
    tap_ok(pid > 0 && waitpid(pid, &wst, 0) == pid && WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
           "a header that claims 2^31-1 %s in a short file: refused as truncated, with 1 GB of address space",
           which ? "labels" : "pixels");
  }
  write_file(path_of(bad, "short-header"), 0, "\0\0\x08\x03\0\0", 6);
  st = load_idx(path_of(bad, "short-header"), path_of(bad, "train-labels-idx1-ubyte"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "short-header|truncated IDX header|ends after 6"), "a truncated header: %s", err);

  char *trunc = subdir("truncated");
  write_idx(path_of(trunc, "train-images-idx3-ubyte"), 0, 0x803, 3, d3, pix, 10);
  write_idx(path_of(trunc, "train-labels-idx1-ubyte"), 0, 0x801, 1, d1, lab, n);
  st = load(trunc, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "truncated/train-images-idx3-ubyte|expected 24 bytes of pixels|file ends after 10"),
         "truncated images: %s", err);
  write_idx(path_of(trunc, "t10k-images-idx3-ubyte.gz"), 1, 0x803, 3, d3, pix, 23);
  write_idx(path_of(trunc, "t10k-labels-idx1-ubyte.gz"), 1, 0x801, 1, d1, lab, n);
  st = load(trunc, 0, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "t10k-images-idx3-ubyte.gz|expected 24 bytes of pixels|file ends after 23"),
         "truncated gzip images: %s", err);
  /* A gzip stream cut short (the compressed file itself truncated). */
  {
    FILE *g = fopen(path_of(gzd, "t10k-images-idx3-ubyte.gz"), "rb");
    unsigned char buf[4096];
    size_t len = g ? fread(buf, 1, sizeof buf, g) : 0;
    if (g) fclose(g);
    char *cut = subdir("gzcut");
    write_file(path_of(cut, "t10k-images-idx3-ubyte.gz"), 0, buf, len > 12 ? len - 12 : len);
    write_idx(path_of(cut, "t10k-labels-idx1-ubyte"), 0, 0x801, 1, d1, lab, n);
    st = load(cut, 0, &ds);
    tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "gzcut/t10k-images-idx3-ubyte.gz"),
           "a cut gzip stream is refused: %s", err);
  }
  write_idx(path_of(trunc, "short-labels"), 0, 0x801, 1, d1, lab, 2);
  st = load_idx(path_of(plain, "train-images-idx3-ubyte"), path_of(trunc, "short-labels"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "short-labels|expected 3 bytes of labels|file ends after 2"),
         "truncated labels: %s", err);
  uint32_t d2[1] = {2};
  write_idx(path_of(trunc, "two-labels"), 0, 0x801, 1, d2, lab, 2);
  st = load_idx(path_of(plain, "train-images-idx3-ubyte"), path_of(trunc, "two-labels"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "3 images|2 labels|disagree"), "images and labels counts disagree: %s", err);
  const unsigned char zeros[3] = {0, 0, 0};
  write_idx(path_of(trunc, "zero-labels"), 0, 0x801, 1, d1, zeros, 3);
  st = load_idx(path_of(plain, "train-images-idx3-ubyte"), path_of(trunc, "zero-labels"), &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "zero-labels|at least 2 classes"), "a single class: %s", err);

  /* NULL arguments and small or absent err buffers. */
  st = clcnn_dataset_load(NULL, 1, &ds, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && !ds && strstr(err, "dir is NULL"), "a NULL directory: %s", err);
  st = clcnn_dataset_load(plain, 1, NULL, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && strstr(err, "out is NULL"), "a NULL out pointer: %s", err);
  st = clcnn_dataset_load_idx(NULL, "x", &ds, err, sizeof err);
  tap_ok(st == CLCNN_ERR_NULL_POINTER && !ds && strstr(err, "images is NULL"), "load_idx with NULL images: %s", err);
  st = clcnn_dataset_load(empty, 1, &ds, NULL, 0);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && !ds, "err NULL is allowed");
  char small[8];
  memset(small, 'x', sizeof small);
  st = clcnn_dataset_load(empty, 1, &ds, small, sizeof small);
  tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && small[7] == '\0' && strlen(small) == 7, "a small err is cut and terminated: '%s'", small);
  small[0] = 'x';
  st = clcnn_dataset_load(plain, 1, &ds, small, 1);
  tap_ok(st == CLCNN_SUCCESS && small[0] == '\0', "success leaves err empty");
  clcnn_dataset_destroy(ds);
  clcnn_dataset_destroy(NULL);
  free(pix);
}

static void cifar_tests(void) {
  clcnn_dataset *ds;
  clcnn_status st;
  unsigned char labels[4] = {3, 9, 0, 7};
  char name[64];

  /* The train batches in DIR/cifar-10-batches-bin, the test batch in DIR itself. */
  char *top = subdir("cifar");
  char *sub = subdir("cifar/cifar-10-batches-bin");
  int counts[5] = {2, 3, 1, 2, 4};
  for (int b = 0; b < 5; b++) {
    snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
    write_cifar(path_of(sub, name), counts[b], labels, 0);
  }
  write_cifar(path_of(top, "test_batch.bin"), 3, labels, 0);
  st = load(top, 1, &ds);
  if (tap_ok(st == CLCNN_SUCCESS && ds, "CIFAR-10 train batches in cifar-10-batches-bin load: %s", err)) {
    tap_ok(ds->n == 12 && ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->classes == 10, "shape %d x %dx%dx%d, %d classes",
           ds->n, ds->c, ds->h, ds->w, ds->classes);
    /* Sample 3 is record 1 of batch 2: label 9, pixel i = (7 + i) % 256, CHW as stored. */
    int ok = ds->y[0] == 3 && ds->y[1] == 9 && ds->y[2] == 3 && ds->y[3] == 9 && ds->y[4] == 0;
    for (int i = 0; i < 3072; i++) ok &= ds->x[3 * 3072 + i] == (float)((7 + i) % 256) / 255.0f;
    tap_ok(ok, "labels in file order and pixels in CHW order, scaled by 1/255");
    tap_ok(ds->x[255] == 1.0f && ds->x[256] == 0.0f, "pixel 255 -> 1.0f, 0 -> 0.0f");
    clcnn_dataset_destroy(ds);
  }
  st = load(top, 0, &ds);
  tap_ok(st == CLCNN_SUCCESS && ds && ds->n == 3 && ds->y[2] == 0 && ds->c == 3, "the CIFAR-10 test batch in DIR loads: %s", err);
  clcnn_dataset_destroy(ds);

  /* Refusals. */
  char *bad = subdir("cifar-bad");
  write_cifar(path_of(bad, "test_batch.bin"), 2, labels, 100);
  st = load(bad, 0, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "cifar-bad/test_batch.bin|truncated|6046 bytes|3073"),
         "a truncated CIFAR record: %s", err);
  unsigned char eleven[2] = {1, 11};
  write_cifar(path_of(bad, "data_batch_1.bin"), 2, labels, 0);
  write_cifar(path_of(bad, "data_batch_2.bin"), 2, labels, 0);
  st = load(bad, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "data_batch_3.bin|No such file"), "a missing train batch: %s", err);
  write_cifar(path_of(bad, "data_batch_1.bin"), 2, eleven, 0);
  write_cifar(path_of(bad, "data_batch_3.bin"), 2, labels, 0);
  write_cifar(path_of(bad, "data_batch_4.bin"), 2, labels, 0);
  write_cifar(path_of(bad, "data_batch_5.bin"), 2, labels, 0);
  st = load(bad, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "data_batch_1.bin|record 1|label 11|0..9"), "a CIFAR label of 11: %s", err);
  write_cifar(path_of(bad, "data_batch_1.bin"), 2, labels, 0);
  write_cifar(path_of(bad, "data_batch_5.bin"), 2, eleven, 0);
  st = load(bad, 1, &ds);
  tap_ok(refused(st, CLCNN_ERR_INVALID_ARGUMENT, ds, "data_batch_5.bin|label 11"), "a bad label in the last batch frees the rest: %s", err);
}

static void stats_tests(void) {
  /* A hand-made set: 5 samples of 3x4x3 with a different offset per channel. */
  clcnn_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) tap_bail("out of memory");
  ds->n = 5, ds->c = 3, ds->h = 4, ds->w = 3, ds->classes = 2;
  size_t plane = 12, total = 5 * 3 * plane;
  ds->x = malloc(total * sizeof *ds->x);
  ds->y = calloc(5, sizeof *ds->y);
  if (!ds->x || !ds->y) tap_bail("out of memory");
  uint64_t s = 42;
  for (size_t k = 0; k < total; k++) {
    size_t c = (k / plane) % 3;
    ds->x[k] = (float)(c * 0.25 + (double)(ref_splitmix(&s) >> 11) / 9007199254740992.0 * (1.0 + c));
  }
  double mean[3], sd[3], rm[3], rs[3];
  for (int c = 0; c < 3; c++) {
    double sum = 0, sq = 0;
    for (int i = 0; i < 5; i++)
      for (size_t k = 0; k < plane; k++) sum += ds->x[((size_t)i * 3 + c) * plane + k];
    rm[c] = sum / 60;
    for (int i = 0; i < 5; i++)
      for (size_t k = 0; k < plane; k++) {
        double d = ds->x[((size_t)i * 3 + c) * plane + k] - rm[c];
        sq += d * d;
      }
    rs[c] = sqrt(sq / 60);
  }
  clcnn_dataset_stats(ds, mean, sd);
  int ok = 1;
  for (int c = 0; c < 3; c++) ok &= fabs(mean[c] - rm[c]) < 1e-12 && fabs(sd[c] - rs[c]) < 1e-12;
  tap_ok(ok, "per-channel population mean/std: %.6f/%.6f %.6f/%.6f %.6f/%.6f", mean[0], sd[0], mean[1], sd[1], mean[2], sd[2]);

  float *before = malloc(total * sizeof *before);
  if (!before) tap_bail("out of memory");
  memcpy(before, ds->x, total * sizeof *before);
  double zero[3] = {mean[0], mean[1], mean[2]}, bads[3] = {sd[0], 0.0, sd[2]};
  tap_ok(clcnn_dataset_normalize(ds, zero, bads) == CLCNN_ERR_INVALID_ARGUMENT, "a std of 0 is refused");
  bads[1] = -1;
  tap_ok(clcnn_dataset_normalize(ds, zero, bads) == CLCNN_ERR_INVALID_ARGUMENT, "a negative std is refused");
  bads[1] = NAN;
  tap_ok(clcnn_dataset_normalize(ds, zero, bads) == CLCNN_ERR_INVALID_ARGUMENT, "a NaN std is refused");
  bads[1] = INFINITY;
  tap_ok(clcnn_dataset_normalize(ds, zero, bads) == CLCNN_ERR_INVALID_ARGUMENT, "an infinite std is refused");
  zero[2] = NAN;
  tap_ok(clcnn_dataset_normalize(ds, zero, sd) == CLCNN_ERR_INVALID_ARGUMENT, "a NaN mean is refused");
  zero[2] = mean[2];
  tap_ok(clcnn_dataset_normalize(NULL, mean, sd) == CLCNN_ERR_NULL_POINTER &&
             clcnn_dataset_normalize(ds, NULL, sd) == CLCNN_ERR_NULL_POINTER &&
             clcnn_dataset_normalize(ds, mean, NULL) == CLCNN_ERR_NULL_POINTER,
         "NULL data set, mean or std: CLCNN_ERR_NULL_POINTER");
  tap_ok(memcmp(before, ds->x, total * sizeof *before) == 0, "refusals leave the data unchanged");
  clcnn_dataset_stats(NULL, mean, sd);
  clcnn_dataset_stats(ds, NULL, NULL);

  tap_ok(clcnn_dataset_normalize(ds, mean, sd) == CLCNN_SUCCESS, "normalize with the set's own stats");
  double worst = 0;
  for (size_t k = 0; k < total; k++) {
    int c = (int)((k / plane) % 3);
    double want = ((double)before[k] - mean[c]) / sd[c];
    worst = fmax(worst, fabs(ds->x[k] - want) / fmax(1.0, fabs(want)));
  }
  tap_ok(worst < 1e-6, "each x became (x - mean[c]) / std[c] (worst relative error %.2g)", worst);
  double m2[3], s2[3];
  clcnn_dataset_stats(ds, m2, s2);
  ok = 1;
  for (int c = 0; c < 3; c++) ok &= fabs(m2[c]) < 1e-6 && fabs(s2[c] - 1) < 1e-6;
  tap_ok(ok, "afterwards every channel has mean 0 and std 1");
  free(before);
  clcnn_dataset_destroy(ds);
}

static void rng_tests(void) {
  uint64_t s = 0;
  uint64_t a = clcnn_rng_next(&s), b = clcnn_rng_next(&s), c = clcnn_rng_next(&s);
  tap_ok(a == 0xe220a8397b1dcdafull && b == 0x6e789e6aa1b965f4ull && c == 0x06c45d188009454full,
         "splitmix64 from seed 0: %016llx %016llx %016llx", (unsigned long long)a, (unsigned long long)b,
         (unsigned long long)c);
  tap_ok(s == 3 * 0x9e3779b97f4a7c15ull, "the state advances by the golden gamma");
  tap_ok(clcnn_rng_next(NULL) == 0, "a NULL state is not dereferenced");

  enum { N = 1000 };
  uint32_t *o1 = malloc(N * sizeof *o1), *o2 = malloc(N * sizeof *o2), *o3 = malloc(N * sizeof *o3),
           *ref = malloc(N * sizeof *ref);
  if (!o1 || !o2 || !o3 || !ref) tap_bail("out of memory");
  for (uint32_t i = 0; i < N; i++) o1[i] = o2[i] = o3[i] = ref[i] = i;
  uint64_t s1 = 12345, s2 = 12345, s3 = 12346, sr = 12345;
  clcnn_shuffle(o1, N, &s1);
  clcnn_shuffle(o2, N, &s2);
  clcnn_shuffle(o3, N, &s3);
  ref_shuffle(ref, N, &sr);
  tap_ok(is_permutation(o1, N), "a shuffle is a permutation of 0..%d", N - 1);
  int moved = 0;
  for (uint32_t i = 0; i < N; i++) moved += o1[i] != i;
  tap_ok(moved > N / 2, "and it moves most elements (%d of %d)", moved, N);
  tap_ok(memcmp(o1, o2, N * sizeof *o1) == 0 && s1 == s2, "the same seed gives the same order");
  tap_ok(memcmp(o1, o3, N * sizeof *o1) != 0 && is_permutation(o3, N), "another seed gives another order");
  tap_ok(memcmp(o1, ref, N * sizeof *o1) == 0 && s1 == sr, "it is Fisher-Yates from the end with multiply-shift indices");
  uint32_t one = 7;
  uint64_t s4 = 5;
  clcnn_shuffle(&one, 1, &s4);
  clcnn_shuffle(NULL, 10, &s4);
  clcnn_shuffle(o1, N, NULL);
  tap_ok(one == 7 && s4 == 5, "n = 1 and NULL arguments do nothing");
  free(o1);
  free(o2);
  free(o3);
  free(ref);
}

/* ---- augmentation ---- */

/* The (oy, ox, flip) with which dst is src cropped and mirrored as clcnn_augment_sample()
 * documents it, searched over every candidate; returns how many candidates fit (1 when src's
 * values are distinct and differ from the fill). */
static int aug_explain(const float *src, const float *dst, int c, int h, int w, int pad, const float *fill,
                       int *oy_out, int *ox_out, int *flip_out) {
  int fits = 0;
  for (int oy = -pad; oy <= pad; oy++)
    for (int ox = -pad; ox <= pad; ox++)
      for (int flip = 0; flip < 2; flip++) {
        int good = 1;
        for (int ch = 0; good && ch < c; ch++)
          for (int y = 0; good && y < h; y++)
            for (int x = 0; good && x < w; x++) {
              int sy = y + oy, sx = (flip ? w - 1 - x : x) + ox;
              float want = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[(ch * h + sy) * w + sx] : fill[ch];
              good = dst[(ch * h + y) * w + x] == want;
            }
        if (good) fits++, *oy_out = oy, *ox_out = ox, *flip_out = flip;
      }
  return fits;
}

static void augment_tests(void) {
  enum { C = 2, H = 5, W = 7, N = C * H * W, KEYS = 6000 };
  float src[N], dst[N], dst2[N], fill[C] = {-0.5f, -1.5f};
  for (int i = 0; i < N; i++) src[i] = (float)(i + 1);

  /* every draw is a crop and a flip of src, the same for every channel; offsets and flips are
   * uniform (each count within 5 standard deviations of its mean) */
  for (int pad = 0; pad <= 3; pad++)
    for (int hflip = 0; hflip < 2; hflip++) {
      clcnn_augment a = {hflip, pad};
      int span = 2 * pad + 1, explained = 1, oy = 0, ox = 0, flip = 0;
      long cy[7] = {0}, cx[7] = {0}, flips = 0;
      for (uint64_t k = 0; k < KEYS; k++) {
        if (clcnn_augment_sample(&a, src, dst, C, H, W, fill, k * 0x9e3779b97f4a7c15ull + 17) ||
            aug_explain(src, dst, C, H, W, pad, fill, &oy, &ox, &flip) != 1) {
          explained = 0;
          break;
        }
        cy[oy + pad]++, cx[ox + pad]++, flips += flip;
      }
      int uniform = explained;
      double p = 1.0 / span, m = KEYS * p, tol = 5 * sqrt(KEYS * p * (1 - p));
      for (int i = 0; i < span; i++) uniform &= fabs(cy[i] - m) <= tol && fabs(cx[i] - m) <= tol;
      int flips_ok = hflip ? fabs(flips - KEYS / 2.0) <= 5 * sqrt(KEYS / 4.0) : flips == 0;
      tap_ok(explained, "crop=%d%s: every one of %d draws is src padded with the fill, cropped and %s", pad,
             hflip ? ",hflip" : "", KEYS, hflip ? "maybe mirrored" : "never mirrored");
      tap_ok(uniform && flips_ok, "crop=%d%s: offsets uniform over [-%d, %d] in y and x, %ld flips of %d", pad,
             hflip ? ",hflip" : "", pad, pad, flips, KEYS);
    }

  /* the same key gives the same sample; crop=0 without hflip copies; a NULL fill is black */
  clcnn_augment a = {1, 2};
  clcnn_augment_sample(&a, src, dst, C, H, W, fill, 42);
  clcnn_augment_sample(&a, src, dst2, C, H, W, fill, 42);
  tap_ok(!memcmp(dst, dst2, sizeof dst), "the same key draws the same crop and flip");
  int differ = 0;
  for (uint64_t k = 43; k < 53; k++) {
    clcnn_augment_sample(&a, src, dst2, C, H, W, fill, k);
    differ += memcmp(dst, dst2, sizeof dst) != 0;
  }
  tap_ok(differ >= 7, "other keys draw other ones (%d of 10 differ)", differ);
  clcnn_augment none = {0, 0};
  tap_ok(clcnn_augment_sample(&none, src, dst, C, H, W, fill, 99) == CLCNN_SUCCESS && !memcmp(src, dst, sizeof dst),
         "no flip and crop=0 copy the sample");
  clcnn_augment big = {0, 3};
  float zero[C] = {0, 0};
  int oy, ox, flip, found = 0;
  for (uint64_t k = 0; k < 200 && !found; k++) {
    clcnn_augment_sample(&big, src, dst, C, H, W, NULL, k);
    found = aug_explain(src, dst, C, H, W, 3, zero, &oy, &ox, &flip) == 1 && (oy || ox);
  }
  tap_ok(found, "a NULL fill pads with 0");

  /* the key's stream: y offset, x offset, then the flip bit (the top bit of the third draw), so
   * that checkpoints keep drawing what they drew */
  uint64_t st = 7;
  int ry = (int)(((unsigned __int128)ref_splitmix(&st) * 5) >> 64) - 2;
  int rx = (int)(((unsigned __int128)ref_splitmix(&st) * 5) >> 64) - 2;
  int rf = (int)(ref_splitmix(&st) >> 63);
  clcnn_augment_sample(&a, src, dst, C, H, W, fill, 7);
  int fits = aug_explain(src, dst, C, H, W, 2, fill, &oy, &ox, &flip);
  tap_ok(fits == 1 && oy == ry && ox == rx && flip == rf,
         "key 7 at crop=2,hflip: offsets (%d, %d) flip %d, as splitmix64 draws them (%d, %d) %d", oy, ox, flip, ry, rx, rf);

  /* bad arguments: refused, dst untouched */
  for (int i = 0; i < N; i++) dst[i] = -7;
  memcpy(dst2, dst, sizeof dst);
  clcnn_augment bad_pad = {0, CLCNN_AUGMENT_MAX_PAD + 1}, neg_pad = {0, -1}, bad_flip = {2, 0};
  tap_ok(clcnn_augment_sample(NULL, src, dst, C, H, W, fill, 1) == CLCNN_ERR_NULL_POINTER &&
             clcnn_augment_sample(&a, NULL, dst, C, H, W, fill, 1) == CLCNN_ERR_NULL_POINTER &&
             clcnn_augment_sample(&a, src, NULL, C, H, W, fill, 1) == CLCNN_ERR_NULL_POINTER,
         "NULL settings, source or destination: CLCNN_ERR_NULL_POINTER");
  tap_ok(clcnn_augment_sample(&a, src, dst, 0, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_augment_sample(&a, src, dst, C, -1, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_augment_sample(&a, src, dst, C, H, 0, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT,
         "a shape with a dimension <= 0: CLCNN_ERR_INVALID_ARGUMENT");
  tap_ok(clcnn_augment_sample(&bad_pad, src, dst, C, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_augment_sample(&neg_pad, src, dst, C, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_augment_sample(&bad_flip, src, dst, C, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT,
         "padding -1 or %d, hflip 2: CLCNN_ERR_INVALID_ARGUMENT", CLCNN_AUGMENT_MAX_PAD + 1);
  tap_ok(!memcmp(dst, dst2, sizeof dst), "and dst is untouched");
  tap_ok(clcnn_augment_sample(&a, src, src, C, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_augment_sample(&a, src, src + N / 2, C, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_augment_sample(&a, src + 1, src, C, H, W, fill, 1) == CLCNN_ERR_INVALID_ARGUMENT,
         "overlapping source and destination: CLCNN_ERR_INVALID_ARGUMENT");
  tap_ok(src[0] == 1 && src[N - 1] == N, "and the source is untouched");

  /* a segmentation mask moves with its image: for every key and setting, the mask's draw is the
   * image's (the mask's values as a one-channel image, filled with 255) */
  {
    enum { MH = 6, MW = 9, MN = MH * MW };
    unsigned char m[MN], md[MN], md2[MN];
    float mf[MN], mfd[MN], f255 = 255;
    for (int i = 0; i < MN; i++) m[i] = (unsigned char)(i % 11 == 10 ? 255 : i % 11), mf[i] = m[i];
    int same = 1, moved = 0, filled = 0;
    for (int pad = 0; pad <= 3; pad++)
      for (int hflip = 0; hflip < 2; hflip++)
        for (uint64_t k = 0; k < 500; k++) {
          clcnn_augment ma = {hflip, pad};
          uint64_t key = k * 0x9e3779b97f4a7c15ull + 3;
          if (clcnn_augment_mask(&ma, m, md, MH, MW, 255, key) || clcnn_augment_sample(&ma, mf, mfd, 1, MH, MW, &f255, key)) {
            same = 0;
            break;
          }
          for (int i = 0; i < MN; i++) same &= md[i] == mfd[i];
          moved += memcmp(md, m, MN) != 0;
          for (int i = 0; i < MN; i++) filled += md[i] == 255 && (i % MW < pad || i / MW < pad); /* some fill */
        }
    tap_ok(same && moved > 2000 && filled > 0,
           "a mask's draw is its image's under every key, crop and flip (%d of 4000 moved, fill 255 seen %d times)", moved,
           filled);
    clcnn_augment ma = {1, 2};
    memset(md, 7, MN);
    memcpy(md2, md, MN);
    tap_ok(clcnn_augment_mask(NULL, m, md, MH, MW, 255, 1) == CLCNN_ERR_NULL_POINTER &&
               clcnn_augment_mask(&ma, NULL, md, MH, MW, 255, 1) == CLCNN_ERR_NULL_POINTER &&
               clcnn_augment_mask(&ma, m, NULL, MH, MW, 255, 1) == CLCNN_ERR_NULL_POINTER &&
               clcnn_augment_mask(&ma, m, md, 0, MW, 255, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_augment_mask(&ma, m, md, MH, -2, 255, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_augment_mask(&bad_pad, m, md, MH, MW, 255, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_augment_mask(&bad_flip, m, md, MH, MW, 255, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
               clcnn_augment_mask(&ma, m, m + 3, MH, MW, 255, 1) == CLCNN_ERR_INVALID_ARGUMENT &&
               !memcmp(md, md2, MN),
           "clcnn_augment_mask: NULLs, shapes <= 0, bad settings and overlap refused, dst untouched");
  }

  /* the spec parser */
  static const struct {
    const char *spec;
    int hflip, pad;
  } good[] = {{"none", 0, 0}, {"hflip", 1, 0}, {"crop=2", 0, 2}, {"crop=0", 0, 0}, {"hflip,crop=4", 1, 4},
              {"crop=64,hflip", 1, 64}, {"crop=007", 0, 7}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    clcnn_augment g = {5, 5};
    clcnn_status st2 = clcnn_augment_parse(good[i].spec, &g, err, sizeof err);
    tap_ok(st2 == CLCNN_SUCCESS && g.hflip == good[i].hflip && g.crop_pad == good[i].pad && !err[0],
           "'%s' reads as hflip %d crop %d", good[i].spec, good[i].hflip, good[i].pad);
  }
  static const struct {
    const char *spec, *words;
  } badspec[] = {{"", "'' is not an augmentation"},
                 {"flip", "'flip' is not an augmentation: expected 'none' or a comma-separated list"},
                 {"hflip,", "'' is not an augmentation"},
                 {",hflip", "'' is not an augmentation"},
                 {"hflip,hflip", "'hflip' is given twice"},
                 {"crop=1,crop=2", "'crop' is given twice"},
                 {"crop=", "crop= needs a padding"},
                 {"crop=65", "crop's padding must be a whole number from 0 to 64, not '65'"},
                 {"crop=-1", "not '-1'"},
                 {"crop=2x", "not '2x'"},
                 {"crop=99999999999999999999999", "from 0 to 64"},
                 {"none,hflip", "'none' is not an augmentation"},
                 {"HFLIP", "'HFLIP' is not an augmentation"},
                 {"hflip crop=2", "'hflip crop=2' is not an augmentation"}};
  for (size_t i = 0; i < sizeof badspec / sizeof *badspec; i++) {
    clcnn_augment g = {1, 9};
    clcnn_status st2 = clcnn_augment_parse(badspec[i].spec, &g, err, sizeof err);
    tap_ok(st2 == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, badspec[i].words) && g.hflip == 1 && g.crop_pad == 9,
           "'%s' is refused, out untouched: %s", badspec[i].spec, err);
  }
  clcnn_augment g;
  tap_ok(clcnn_augment_parse(NULL, &g, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_augment_parse("hflip", NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_augment_parse("flip", &g, NULL, 0) == CLCNN_ERR_INVALID_ARGUMENT,
         "NULL spec or out: CLCNN_ERR_NULL_POINTER; a NULL err is not written");
}

static void fashion_tests(void) {
  struct stat sb;
  if (stat(FASHION_DIR, &sb) != 0) {
    tap_ok(0, "Fashion-MNIST is not installed at " FASHION_DIR ": install Debian's dataset-fashion-mnist package "
              "(apt-get install dataset-fashion-mnist)");
    return;
  }
  clcnn_dataset *ds;
  double t0 = cpu_seconds();
  clcnn_status st = load(FASHION_DIR, 1, &ds);
  double t = cpu_seconds() - t0;
  if (!tap_ok(st == CLCNN_SUCCESS && ds, "Fashion-MNIST train split loads from " FASHION_DIR ": %s", err)) return;
  const char *pre = getenv("LD_PRELOAD");
  if (pre && strstr(pre, "vgpreload"))
    tap_diag("under valgrind: load took %.2f s of CPU, not timed", t);
  else
    tap_ok(t < 2.0, "60000 images load in %.3f s of CPU (limit 2 s)", t);
  tap_ok(ds->n == 60000 && ds->c == 1 && ds->h == 28 && ds->w == 28 && ds->classes == 10, "train: %d x %dx%dx%d, %d classes",
         ds->n, ds->c, ds->h, ds->w, ds->classes);
  int hist[10] = {0}, inrange = 1;
  for (int i = 0; i < ds->n; i++) {
    if (ds->y[i] < 0 || ds->y[i] > 9) inrange = 0;
    else hist[ds->y[i]]++;
  }
  int even = inrange;
  for (int k = 0; k < 10; k++) even &= hist[k] == 6000;
  tap_ok(even, "every class appears 6000 times in train");
  double mean, sd;
  clcnn_dataset_stats(ds, &mean, &sd);
  tap_ok(fabs(mean - 0.2860) < 5e-4 && fabs(sd - 0.3530) < 5e-4, "train pixel mean %.4f std %.4f (published 0.2860, 0.3530)",
         mean, sd);
  clcnn_dataset_destroy(ds);

  st = load(FASHION_DIR, 0, &ds);
  if (tap_ok(st == CLCNN_SUCCESS && ds, "Fashion-MNIST test split loads: %s", err)) {
    int h2[10] = {0}, ok = ds->n == 10000 && ds->c == 1 && ds->h == 28 && ds->w == 28 && ds->classes == 10;
    for (int i = 0; ok && i < ds->n; i++) {
      if (ds->y[i] < 0 || ds->y[i] > 9) ok = 0;
      else h2[ds->y[i]]++;
    }
    for (int k = 0; k < 10; k++) ok &= h2[k] == 1000;
    tap_ok(ok, "test: 10000 x 1x28x28, 10 classes of 1000");
    clcnn_dataset_destroy(ds);
  }
}

int main(void) {
  if (!mkdtemp(tmp)) tap_bail("mkdtemp failed");
  idx_tests();
  cifar_tests();
  stats_tests();
  rng_tests();
  augment_tests();
  fashion_tests();
  tap_ok(nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 && access(tmp, F_OK) != 0, "the temporary directory is removed");
  return tap_done();
}
