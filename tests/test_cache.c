/* tests/test_cache.c - the disk cache of built kernel programs: a second context (and a second
 * process) compiles nothing, float and double are separate entries, damaged entries are
 * rebuilt and rewritten, an unusable or disabled cache still builds, and a net built from
 * cached programs computes what one built from source does, bit for bit.
 *
 * With the argument --child it only builds everything and prints "from_source from_cache". */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

#define MAXF 64
#define HEADER 64 /* the entry's header, as lib/ctx.c writes it */

static clcnn_ctx *make_ctx(clcnn_precision p) {
  clcnn_ctx *ctx = NULL;
  char err[512];
  clcnn_ctx_options o = {.precision = p};
  clcnn_status st = clcnn_ctx_create(&ctx, &o, err, sizeof err);
  if (st) {
    printf("Bail out! no OpenCL device for the test: %s: %s\n", clcnn_status_name(st), err);
    exit(1);
  }
  return ctx;
}

/* A new context of precision P builds everything; its counts into *src and *hit. Returns
 * whether build_all succeeded. */
static int build(clcnn_precision p, int *src, int *hit) {
  clcnn_ctx *ctx = make_ctx(p);
  clcnn_status st = clcnn_ctx_build_all(ctx);
  if (st) tap_diag("clcnn_ctx_build_all: %s: %s", clcnn_status_name(st), clcnn_ctx_last_error(ctx));
  *src = *hit = -1;
  clcnn_ctx_build_stats(ctx, src, hit);
  clcnn_ctx_destroy(ctx);
  return st == CLCNN_SUCCESS;
}

/* The names of the files in DIR (ending in SUFFIX, or all when NULL), sorted, into names;
 * returns how many. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int list(const char *dir, const char *suffix, char *names[MAXF]) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (suffix && (l < sl || strcmp(e->d_name + l - sl, suffix))) continue;
    if (n < MAXF) names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  return n;
}
static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
}

static int in_list(char **names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], s)) return 1;
  return 0;
}

static char *path_of(const char *dir, const char *name) {
  static char buf[4][8192];
  static int k;
  char *p = buf[k++ & 3];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) ? -1 : (long)sb.st_size;
}

static char *read_all(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  *n = file_size(path);
  if (!f || *n < 0) {
    if (f) fclose(f);
    return NULL;
  }
  char *b = malloc(*n + 1);
  if (b && fread(b, 1, *n, f) != (size_t)*n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  return b;
}

static int write_all(const char *path, const void *b, long n) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(b, 1, n, f) == (size_t)n;
  return fclose(f) == 0 && ok;
}

static uint64_t fnv1a64(const unsigned char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}

/* Is the entry at PATH whole: header, key = its name, length = the rest? */
static int entry_ok(const char *path, const char *name) {
  long n;
  unsigned char *b = (unsigned char *)read_all(path, &n);
  int ok = b && n > HEADER && !memcmp(b, "CLCNNBIN", 8) && !memcmp(b + 16, name, 32);
  if (ok) {
    unsigned long long len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | b[48 + i];
    ok = len == (unsigned long long)(n - HEADER);
  }
  free(b);
  return ok;
}

static void rm_rf(const char *dir) {
  char *names[MAXF];
  int n = list(dir, NULL, names);
  for (int i = 0; i < n; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    if (unlink(p) != 0 && (errno == EISDIR || errno == EPERM)) rm_rf(p); /* a directory */
  }
  free_names(names, n);
  rmdir(dir);
}

/* Run this program again with --child: its from_source and from_cache. */
static int child(const char *self, int *src, int *hit) {
  int fd[2];
  *src = *hit = -1;
  if (pipe(fd) != 0) return 0;
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execl(self, self, "--child", (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  char out[256] = "";
  size_t got = 0;
  ssize_t r;
  while (got < sizeof out - 1 && (r = read(fd[0], out + got, sizeof out - 1 - got)) > 0) got += r;
  out[got] = 0;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    tap_diag("the child (%s --child) failed, status 0x%x: %s", self, status, out);
    return 0;
  }
  return sscanf(out, "%d %d", src, hit) == 2;
}

/* A small net's forward output on a fixed input (float). */
static int forward(clcnn_ctx *ctx, float *out, size_t nout) {
  clcnn_net *net = NULL;
  clcnn_conv2d_params c1 = {.out_channels = 3, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = 1};
  clcnn_pool2d_params mp = {.kh = 2, .kw = 2};
  float x[2 * 2 * 6 * 6];
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)((i * 37 % 23) - 11) / 7.0f;
  int ok = !clcnn_net_create(ctx, 2, 2, 6, 6, &net) && !clcnn_net_add_conv2d(net, &c1) &&
           !clcnn_net_add_relu(net) && !clcnn_net_add_maxpool2d(net, &mp) &&
           !clcnn_net_add_flatten(net) && !clcnn_net_add_linear(net, 5, 1) &&
           !clcnn_net_init_params(net, 3) && clcnn_net_output_size(net) * 2 == nout &&
           !clcnn_net_forward(net, x, 2) && !clcnn_net_read_output(net, out);
  if (!ok) tap_diag("the net: %s", clcnn_ctx_last_error(ctx));
  clcnn_net_destroy(net);
  return ok;
}

int main(int argc, char **argv) {
  int src, hit;
  if (argc == 2 && !strcmp(argv[1], "--child")) {
    if (!build(CLCNN_FLOAT, &src, &hit)) return 1;
    printf("%d %d\n", src, hit);
    return 0;
  }
  const char *tmpdir = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/clcnn-test-cache.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(dir)) tap_bail("mkdtemp failed");
  char cache[4200];
  snprintf(cache, sizeof cache, "%s/cache", dir); /* made by clcnn: it does mkdir -p */
  setenv("CLCNN_CACHE_DIR", cache, 1);
  clcnn_ctx_destroy(make_ctx(CLCNN_FLOAT)); /* bails out when there is no device */

  /* 1: a fresh cache: everything from source, one entry per program */
  int ok = build(CLCNN_FLOAT, &src, &hit);
  const int all = src;
  char *f[MAXF];
  int nf = list(cache, ".clbin", f);
  tap_ok(ok && all > 0 && hit == 0, "a fresh cache: %d programs built from source, %d from the cache", src, hit);
  tap_ok(nf == all, "%d .clbin entries in the new directory %s, one per program", nf, cache);
  char *tmp[MAXF];
  int nt = list(cache, NULL, tmp);
  tap_ok(nt == nf, "no temporary file left behind (%d files)", nt);
  free_names(tmp, nt);
  int whole = 1;
  for (int i = 0; i < nf; i++) whole &= strlen(f[i]) == 32 + 6 && entry_ok(path_of(cache, f[i]), f[i]);
  tap_ok(whole, "every entry is <32 hex digits>.clbin, with a header naming its key and length");

  /* 2: a second context compiles nothing */
  ok = build(CLCNN_FLOAT, &src, &hit);
  tap_ok(ok && src == 0 && hit == all, "a second context: %d from source, %d of %d from the cache", src, hit, all);

  /* 3: double precision: separate entries */
  clcnn_ctx *d = NULL;
  clcnn_ctx_options dopt = {.precision = CLCNN_DOUBLE};
  if (clcnn_ctx_create(&d, &dopt, NULL, 0) == CLCNN_SUCCESS) {
    clcnn_ctx_destroy(d);
    ok = build(CLCNN_DOUBLE, &src, &hit);
    char *g[MAXF];
    int ng = list(cache, ".clbin", g);
    tap_ok(ok && src == all && hit == 0 && ng == 2 * all,
           "double precision builds its own %d entries (%d from source, %d from the cache, %d entries now)", all, src,
           hit, ng);
    free_names(g, ng);
    ok = build(CLCNN_DOUBLE, &src, &hit);
    tap_ok(ok && src == 0 && hit == all, "a second double context: %d from source, %d from the cache", src, hit);
  } else {
    tap_diag("the device has no fp64: the double checks are left out");
  }

  /* 4: damaged entries are rebuilt from source and rewritten */
  if (nf >= 6) {
    long n0, n1, n5;
    char *b0 = read_all(path_of(cache, f[0]), &n0), *b1 = read_all(path_of(cache, f[1]), &n1),
         *b5 = read_all(path_of(cache, f[5]), &n5);
    int damaged = b0 && b1 && b5 && n0 > HEADER + 16 && n5 > HEADER + 16;
    if (damaged) {
      for (int i = 0; i < 8; i++) b0[HEADER + (n0 - HEADER) / 2 + i] ^= 0x5a; /* the payload */
      damaged &= write_all(path_of(cache, f[0]), b0, n0);
      damaged &= truncate(path_of(cache, f[1]), HEADER + (n1 - HEADER) / 2) == 0; /* truncated */
      damaged &= write_all(path_of(cache, f[2]), b1, n1); /* another entry: its key is not the name */
      memcpy(b1, "NOTCLCNN", 8);
      damaged &= write_all(path_of(cache, f[3]), b1, n1); /* bad magic */
      damaged &= write_all(path_of(cache, f[4]), "", 0);  /* empty */
      /* a whole entry (checksum right) whose binary the driver refuses: its first bytes,
       * the binary format's own magic on every driver we know, are garbage */
      for (int i = 0; i < 8; i++) b5[HEADER + i] ^= 0xff;
      uint64_t sum = fnv1a64((unsigned char *)b5 + HEADER, n5 - HEADER);
      for (int i = 0; i < 8; i++) b5[56 + i] = (char)(sum >> (8 * i));
      damaged &= write_all(path_of(cache, f[5]), b5, n5);
    }
    free(b0);
    free(b1);
    free(b5);
    tap_ok(damaged, "damaged 6 entries: payload, truncated, foreign key, bad magic, empty, refused by the driver");
    ok = build(CLCNN_FLOAT, &src, &hit);
    tap_ok(ok && src == 6 && hit == all - 6, "a new context rebuilds exactly those: %d from source, %d from the cache",
           src, hit);
    int rewritten = 1;
    for (int i = 0; i < 6; i++) rewritten &= entry_ok(path_of(cache, f[i]), f[i]);
    char *g[MAXF];
    int ng = list(cache, ".clbin", g);
    for (int i = 0; i < nf; i++) rewritten &= in_list(g, ng, f[i]);
    tap_ok(rewritten, "and rewrites them whole, under the same names");
    free_names(g, ng);
    ok = build(CLCNN_FLOAT, &src, &hit);
    tap_ok(ok && src == 0 && hit == all, "then a further context has all from the cache: %d, %d", src, hit);
  } else {
    tap_ok(0, "need at least 6 programs to damage, have %d", nf);
  }

  /* 5: a second process compiles nothing */
  const char *self = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];
  ok = child(self, &src, &hit);
  tap_ok(ok && src == 0 && hit == all, "a second process: %d from source, %d from the cache", src, hit);

  /* 6: the same forward output, bit for bit, from cached programs and from source */
  {
    float a[10], b[10];
    clcnn_ctx *cached = make_ctx(CLCNN_FLOAT);
    int ok1 = forward(cached, a, 10);
    clcnn_ctx_build_stats(cached, &src, &hit);
    tap_ok(ok1 && src == 0 && hit > 0, "a net on cached programs runs (%d from source, %d from the cache)", src, hit);
    setenv("CLCNN_CACHE_DIR", "off", 1);
    clcnn_ctx *fresh = make_ctx(CLCNN_FLOAT);
    int ok2 = forward(fresh, b, 10);
    clcnn_ctx_build_stats(fresh, &src, &hit);
    tap_ok(ok2 && hit == 0 && src > 0, "the same net built from source runs (%d from source, %d from the cache)", src, hit);
    tap_ok(ok1 && ok2 && !memcmp(a, b, sizeof a), "their forward outputs are bitwise equal");
    clcnn_ctx_destroy(cached);
    clcnn_ctx_destroy(fresh);
    setenv("CLCNN_CACHE_DIR", cache, 1);
  }

  /* 7: a cache directory that cannot be made: still builds */
  setenv("CLCNN_CACHE_DIR", "/proc/nonexistent/x", 1);
  ok = build(CLCNN_FLOAT, &src, &hit);
  tap_ok(ok && src == all && hit == 0, "CLCNN_CACHE_DIR=/proc/nonexistent/x: builds all %d from source", src);

  /* 8: "off" and "" write nothing, anywhere (not ./off, $HOME or $XDG_CACHE_HOME either) */
  char home[4200], cwd[4096];
  snprintf(home, sizeof home, "%s/home", dir);
  mkdir(home, 0700);
  const char *old_home = getenv("HOME");
  char *saved_home = old_home ? strdup(old_home) : NULL;
  setenv("HOME", home, 1);
  setenv("XDG_CACHE_HOME", home, 1);
  if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
  if (chdir(home) != 0) tap_diag("chdir %s: %s", home, strerror(errno));
  const char *offs[] = {"off", ""};
  for (int i = 0; i < 2; i++) {
    setenv("CLCNN_CACHE_DIR", offs[i], 1);
    ok = build(CLCNN_FLOAT, &src, &hit);
    char *g[MAXF];
    int ng = list(home, NULL, g);
    tap_ok(ok && src == all && hit == 0 && ng == 0, "CLCNN_CACHE_DIR='%s': all %d from source, %d files written",
           offs[i], src, ng);
    free_names(g, ng);
  }
  /* and with no CLCNN_CACHE_DIR: $XDG_CACHE_HOME/clcnn */
  unsetenv("CLCNN_CACHE_DIR");
  ok = build(CLCNN_FLOAT, &src, &hit);
  char xdg[4300];
  snprintf(xdg, sizeof xdg, "%s/clcnn", home);
  char *g[MAXF];
  int ng = list(xdg, ".clbin", g);
  tap_ok(ok && src == all && ng == all, "no CLCNN_CACHE_DIR: %d entries in $XDG_CACHE_HOME/clcnn", ng);
  free_names(g, ng);
  if (cwd[0] && chdir(cwd) != 0) tap_diag("chdir back: %s", strerror(errno));
  if (saved_home) setenv("HOME", saved_home, 1);
  else unsetenv("HOME");
  free(saved_home);
  unsetenv("XDG_CACHE_HOME");

  free_names(f, nf);
  rm_rf(dir);
  tap_ok(access(dir, F_OK) != 0, "the temporary directory is removed");
  return tap_done();
}
