/* tests/test_image.c - PNG reading and writing (lib/image.c).
 *
 * Files made here with libpng's own calls, in every form the reader must take (8-bit grey and
 * RGB, palette images at 1, 2, 4 and 8 bits, interlaced) and every form it must refuse (16-bit,
 * alpha, grey below 8 bits), read back to the pixels they were written from; what the writer
 * writes is read back by libpng's simplified API, a decoder path of its own. Every prefix of a
 * file, a flipped byte under each chunk's CRC, an index past the palette, a side past the limit,
 * a missing file or a directory: each refused with the file's name, nothing kept; a failed
 * write leaves the old file and no temporary. */
#define _GNU_SOURCE
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcnn.h"
#include "tap.h"

static char dir[] = "/tmp/clcnn-image-XXXXXX";
static char err[1024];

static const char *path_of(const char *name) {
  static char p[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

/* Write a PNG with libpng's own calls: pixels at 8 bits a sample (packed for DEPTH < 8), a
 * palette of NPAL entries for palette images, interlaced when asked. 0 on success. */
static int raw_write(const char *path, int w, int h, int type, int depth, int interlace, const unsigned char *px,
                     int npal) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return -1;
  }
  png_init_io(png, f);
  png_set_check_for_invalid_index(png, 0); /* let a test write an index past the palette */
  png_set_IHDR(png, info, w, h, depth, type, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    for (int i = 0; i < npal; i++) pal[i].red = (png_byte)(i * 7), pal[i].green = (png_byte)(255 - i), pal[i].blue = (png_byte)(i * 3);
    png_set_PLTE(png, info, pal, npal);
  }
  png_write_info(png, info);
  if (depth < 8) png_set_packing(png);
  int spp = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
  int bps = depth == 16 ? 2 : 1;
  png_bytep *rows = malloc(sizeof *rows * h);
  for (int y = 0; y < h; y++) rows[y] = (png_bytep)px + (size_t)y * w * spp * bps;
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  return fclose(f);
}

static unsigned char *pattern(size_t n, unsigned mod, unsigned seed) {
  unsigned char *p = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((i * 2654435761u + seed) % mod);
  return p;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static void spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f)) tap_bail("cannot write a test file");
}

static int temps_left(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

/* the reader on what libpng itself wrote */
static void read_forms(void) {
  static const struct {
    int w, h, type, depth, interlace, npal;
    const char *what;
  } forms[] = {{5, 3, PNG_COLOR_TYPE_GRAY, 8, 0, 0, "8-bit grey 5x3"},
               {1, 1, PNG_COLOR_TYPE_GRAY, 8, 0, 0, "8-bit grey 1x1"},
               {7, 4, PNG_COLOR_TYPE_RGB, 8, 0, 0, "8-bit RGB 7x4"},
               {33, 9, PNG_COLOR_TYPE_GRAY, 8, 1, 0, "interlaced 8-bit grey 33x9"},
               {10, 11, PNG_COLOR_TYPE_RGB, 8, 1, 0, "interlaced 8-bit RGB 10x11"},
               {9, 5, PNG_COLOR_TYPE_PALETTE, 8, 0, 200, "8-bit palette of 200, 9x5"},
               {9, 5, PNG_COLOR_TYPE_PALETTE, 4, 0, 11, "4-bit palette of 11, 9x5 (odd width: a half-filled byte)"},
               {13, 3, PNG_COLOR_TYPE_PALETTE, 2, 0, 4, "2-bit palette, 13x3"},
               {17, 2, PNG_COLOR_TYPE_PALETTE, 1, 1, 2, "interlaced 1-bit palette, 17x2"}};
  for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
    int spp = forms[i].type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    size_t n = (size_t)forms[i].w * forms[i].h * spp;
    unsigned mod = forms[i].type == PNG_COLOR_TYPE_PALETTE ? (unsigned)forms[i].npal : 256;
    unsigned char *px = pattern(n, mod, (unsigned)i);
    const char *p = path_of("form.png");
    if (raw_write(p, forms[i].w, forms[i].h, forms[i].type, forms[i].depth, forms[i].interlace, px, forms[i].npal))
      tap_bail("libpng could not write a test file");
    clcnn_image im;
    memset(&im, 0, sizeof im);
    clcnn_status st = clcnn_png_read(p, &im, err, sizeof err);
    int good = st == CLCNN_SUCCESS && im.w == forms[i].w && im.h == forms[i].h && im.channels == spp &&
               im.indexed == (forms[i].type == PNG_COLOR_TYPE_PALETTE) && !memcmp(im.px, px, n) && !err[0];
    if (good && im.indexed) {
      good = im.npalette == forms[i].npal;
      for (int k = 0; good && k < im.npalette; k++)
        good = im.palette[k][0] == (unsigned char)(k * 7) && im.palette[k][1] == (unsigned char)(255 - k) &&
               im.palette[k][2] == (unsigned char)(k * 3);
    }
    tap_ok(good, "reads %s: shape, pixels%s as written %s", forms[i].what, im.indexed ? ", indices and palette" : "",
           err);
    clcnn_image_free(&im);
    tap_ok(im.px == NULL, "clcnn_image_free clears the pixels");
    free(px);
  }
  clcnn_image_free(NULL);

  static const struct {
    int type, depth;
    const char *words;
  } refused[] = {{PNG_COLOR_TYPE_GRAY, 16, "a 16-bit grey PNG"},     {PNG_COLOR_TYPE_RGB, 16, "a 16-bit RGB PNG"},
                 {PNG_COLOR_TYPE_RGB_ALPHA, 8, "an 8-bit RGBA PNG"},   {PNG_COLOR_TYPE_GRAY_ALPHA, 8, "an 8-bit grey+alpha PNG"},
                 {PNG_COLOR_TYPE_GRAY, 4, "a 4-bit grey PNG"},       {PNG_COLOR_TYPE_GRAY, 1, "a 1-bit grey PNG"}};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    int spp = refused[i].type == PNG_COLOR_TYPE_RGB ? 3 : refused[i].type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
              : refused[i].type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    unsigned char *px = pattern((size_t)4 * 3 * spp * 2, refused[i].depth >= 8 ? 256 : 1u << refused[i].depth, 1);
    const char *p = path_of("refused.png");
    if (raw_write(p, 4, 3, refused[i].type, refused[i].depth, 0, px, 0)) tap_bail("libpng could not write a test file");
    clcnn_image im = {.w = -5};
    clcnn_status st = clcnn_png_read(p, &im, err, sizeof err);
    tap_ok(st == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, p) && strstr(err, refused[i].words) &&
               strstr(err, "clcnn reads 8-bit grey, 8-bit RGB and palette (indexed) images") && im.w == -5 && !im.px,
           "refuses %s naming the file, out untouched: %s", refused[i].words, err);
    free(px);
  }
}

/* the writer, read back by libpng's simplified API and by the reader */
static void write_forms(void) {
  clcnn_image g = {.w = 6, .h = 4, .channels = 1}, c = {.w = 3, .h = 5, .channels = 3},
              m = {.w = 8, .h = 3, .channels = 1, .indexed = 1, .npalette = 12};
  g.px = pattern(24, 256, 3), c.px = pattern(45, 256, 4), m.px = pattern(24, 12, 5);
  for (int k = 0; k < 12; k++) m.palette[k][0] = (unsigned char)(k * 20), m.palette[k][1] = (unsigned char)k, m.palette[k][2] = 200;
  clcnn_image *all[] = {&g, &c, &m};
  const char *names[] = {"grey", "RGB", "palette"};
  for (int i = 0; i < 3; i++) {
    const char *p = path_of("w.png");
    tap_ok(clcnn_png_write(p, all[i], err, sizeof err) == CLCNN_SUCCESS && !err[0], "writes a %s image: %s", names[i], err);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    int good = png_image_begin_read_from_file(&pi, p) && (int)pi.width == all[i]->w && (int)pi.height == all[i]->h;
    size_t n = (size_t)all[i]->w * all[i]->h;
    unsigned char *rgb = malloc(n * 3);
    pi.format = PNG_FORMAT_RGB;
    good = good && png_image_finish_read(&pi, NULL, rgb, 0, NULL);
    for (size_t q = 0; good && q < n; q++)
      for (int ch = 0; ch < 3; ch++) {
        unsigned char want = all[i]->indexed ? all[i]->palette[all[i]->px[q]][ch]
                             : all[i]->channels == 3 ? all[i]->px[q * 3 + ch] : all[i]->px[q];
        good &= rgb[q * 3 + ch] == want;
      }
    png_image_free(&pi);
    free(rgb);
    tap_ok(good, "libpng's simplified API reads the %s image back to its colours", names[i]);
    clcnn_image back;
    good = clcnn_png_read(p, &back, err, sizeof err) == CLCNN_SUCCESS && back.w == all[i]->w && back.h == all[i]->h &&
           back.channels == all[i]->channels && back.indexed == all[i]->indexed &&
           !memcmp(back.px, all[i]->px, n * all[i]->channels) &&
           (!back.indexed || (back.npalette == 12 && !memcmp(back.palette, m.palette, 12 * 3)));
    tap_ok(good, "the reader reads the %s image back exactly%s", names[i], all[i]->indexed ? " (indices and palette)" : "");
    if (good) clcnn_image_free(&back);
    size_t n1, n2;
    unsigned char *b1 = slurp(p, &n1);
    clcnn_png_write(path_of("w2.png"), all[i], err, sizeof err);
    unsigned char *b2 = slurp(path_of("w2.png"), &n2);
    tap_ok(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1), "the same %s image gives the same %zu bytes", names[i], n1);
    free(b1);
    free(b2);
  }
  struct stat sb;
  mode_t mask = umask(0);
  umask(mask);
  unlink(path_of("fresh.png"));
  clcnn_png_write(path_of("fresh.png"), &g, err, sizeof err);
  int st_ok = stat(path_of("fresh.png"), &sb) == 0;
  tap_ok(st_ok && (sb.st_mode & 0777) == (0666 & ~mask), "a new file gets 0666 less the umask (%o)", sb.st_mode & 0777);

  /* bad images to write: refused, nothing written */
  unlink(path_of("bad.png"));
  clcnn_image b = g;
  b.w = 0;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "0x4 image"),
         "a width of 0 is refused: %s", err);
  b = g, b.h = CLCNN_IMAGE_MAX_SIDE + 1;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "1..16384"),
         "a side of 16385 is refused: %s", err);
  b = g, b.channels = 2;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "2 channels"),
         "2 channels are refused: %s", err);
  b = c, b.indexed = 1, b.npalette = 5;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "3 channels in a palette image"), "a 3-channel palette image is refused: %s", err);
  b = m, b.npalette = 0;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "palette of 0"),
         "an empty palette is refused: %s", err);
  b = m, b.npalette = 257;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "palette of 257"),
         "a palette of 257 is refused: %s", err);
  b = m, b.npalette = 11; /* the pattern holds index 11 somewhere */
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "is index 11 but the palette has 11 entries"), "an index past the palette is refused: %s", err);
  b = g, b.px = NULL;
  tap_ok(clcnn_png_write(path_of("bad.png"), &b, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_png_write(path_of("bad.png"), NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_png_write(NULL, &g, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
         "NULL pixels, image or path: CLCNN_ERR_NULL_POINTER");
  tap_ok(access(path_of("bad.png"), F_OK) != 0 && temps_left() == 0, "none of them left a file or a temporary");

  /* a failed write keeps the old file */
  size_t n0, n1;
  unsigned char *before = slurp(path_of("w.png"), &n0);
  tap_ok(clcnn_png_write("/nonexistent-dir/x.png", &g, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "/nonexistent-dir/x.png"), "a directory that does not exist: %s", err);
  if (geteuid() != 0) {
    chmod(dir, 0555);
    tap_ok(clcnn_png_write(path_of("w.png"), &c, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT,
           "a directory without write permission: %s", err);
    chmod(dir, 0755);
  } else { /* root writes anywhere: a path through a file fails for everyone */
    tap_ok(clcnn_png_write(path_of("w.png/x.png"), &c, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT,
           "a path through a file: %s", err);
  }
  unsigned char *after = slurp(path_of("w.png"), &n1);
  tap_ok(before && after && n0 == n1 && !memcmp(before, after, n0) && temps_left() == 0,
         "the old file is whole and no temporary is left");
  free(before);
  free(after);
  free(g.px), free(c.px), free(m.px);
}

/* malformed files: every one refused with the file's name, nothing kept */
/* An image as a network's input: its colours as CHW planes / 255; VOC's palette. */
static void as_input(void) {
  clcnn_image g = {.w = 5, .h = 3, .channels = 1}, c = {.w = 4, .h = 2, .channels = 3},
              m = {.w = 3, .h = 3, .channels = 1, .indexed = 1, .npalette = 4};
  g.px = pattern(15, 256, 7), c.px = pattern(24, 256, 8), m.px = pattern(9, 4, 9);
  for (int k = 0; k < 4; k++) m.palette[k][0] = (unsigned char)(60 * k), m.palette[k][1] = (unsigned char)(255 - k), m.palette[k][2] = 9;
  clcnn_image *all[] = {&g, &c, &m};
  const char *names[] = {"grey", "RGB", "palette"};
  for (int i = 0; i < 3; i++) {
    clcnn_image *im = all[i];
    int colors = clcnn_image_colors(im);
    size_t plane = (size_t)im->w * im->h;
    float *x = malloc(plane * 3 * sizeof *x);
    int good = colors == (i ? 3 : 1) && clcnn_image_to_float(im, x) == CLCNN_SUCCESS;
    for (size_t p = 0; good && p < plane; p++)
      for (int ch = 0; ch < colors; ch++) {
        unsigned char v = im->indexed ? im->palette[im->px[p]][ch] : im->px[p * im->channels + ch];
        good &= x[ch * plane + p] == (float)v / 255.0f;
      }
    tap_ok(good, "a %s image is %d plane(s) of its colours / 255", names[i], colors);
    free(x);
  }
  float x[64];
  clcnn_image two = {.w = 2, .h = 2, .channels = 2, .px = g.px}, ind3 = m;
  ind3.channels = 3;
  tap_ok(clcnn_image_colors(NULL) == 0 && clcnn_image_to_float(NULL, x) == CLCNN_ERR_NULL_POINTER &&
             clcnn_image_to_float(&g, NULL) == CLCNN_ERR_NULL_POINTER &&
             clcnn_image_to_float(&two, x) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_to_float(&ind3, x) == CLCNN_ERR_INVALID_ARGUMENT,
         "clcnn_image_to_float refuses NULL, two channels and a three-channel palette image");
  free(g.px), free(c.px), free(m.px);
  unsigned char pal[256][3];
  clcnn_voc_palette(pal);
  /* VOC's colours of background, aeroplane, bicycle, bird, boat, person and the 255 border */
  static const struct { int c; unsigned char rgb[3]; } voc[] = {
      {0, {0, 0, 0}}, {1, {128, 0, 0}}, {2, {0, 128, 0}}, {3, {128, 128, 0}}, {4, {0, 0, 128}},
      {15, {192, 128, 128}}, {255, {224, 224, 192}}};
  int good = 1;
  for (size_t i = 0; i < sizeof voc / sizeof voc[0]; i++) good &= !memcmp(pal[voc[i].c], voc[i].rgb, 3);
  tap_ok(good, "clcnn_voc_palette: Pascal VOC's colours (0 black, 1 dark red, 15 person, 255 cream)");
}

/* Pictures: an image made RGB and larger, rectangles and text, checked pixel by pixel against
 * what the rules say (the digit 0 spelled out below as the font's specification). */
static int px_is(const clcnn_image *im, int x, int y, const unsigned char *rgb) {
  return !memcmp(im->px + 3 * ((size_t)y * im->w + x), rgb, 3);
}
static void drawing(void) {
  static const unsigned char red[3] = {255, 0, 0}, blue[3] = {0, 0, 255}, black[3] = {0, 0, 0};
  clcnn_image g = {.w = 3, .h = 2, .channels = 1}, pal = {.w = 2, .h = 1, .channels = 1, .indexed = 1, .npalette = 2}, big;
  g.px = pattern(6, 256, 11);
  pal.px = pattern(2, 2, 0);
  pal.palette[0][0] = 10, pal.palette[0][1] = 20, pal.palette[0][2] = 30, pal.palette[1][0] = 40, pal.palette[1][1] = 50,
  pal.palette[1][2] = 60;
  int good = clcnn_image_to_rgb(&g, 3, &big) == CLCNN_SUCCESS && big.w == 9 && big.h == 6 && big.channels == 3 && !big.indexed;
  for (int y = 0; good && y < 6; y++)
    for (int x = 0; x < 9; x++)
      for (int c = 0; c < 3; c++) good &= big.px[3 * (y * 9 + x) + c] == g.px[(y / 3) * 3 + x / 3];
  tap_ok(good, "clcnn_image_to_rgb: a grey 3x2 image x3 is 9x6 RGB, each pixel a 3x3 square of its grey");
  clcnn_image_free(&big);
  good = clcnn_image_to_rgb(&pal, 1, &big) == CLCNN_SUCCESS && big.px[0] == pal.palette[pal.px[0]][0] &&
         big.px[5] == pal.palette[pal.px[1]][2];
  tap_ok(good, "a palette image becomes its colours");
  clcnn_image_free(&big);
  tap_ok(clcnn_image_to_rgb(&g, 0, &big) == CLCNN_ERR_INVALID_ARGUMENT && clcnn_image_to_rgb(&g, 65, &big) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_to_rgb(NULL, 2, &big) == CLCNN_ERR_NULL_POINTER && clcnn_image_to_rgb(&g, 2, NULL) == CLCNN_ERR_NULL_POINTER,
         "clcnn_image_to_rgb refuses scale 0 and 65 and NULLs");

  clcnn_image im = {.w = 12, .h = 10, .channels = 3};
  im.px = calloc(12 * 10 * 3, 1);
  good = clcnn_image_draw_rect(&im, 2, 1, 8, 6, 2, red) == CLCNN_SUCCESS;
  for (int y = 0; y < 10; y++)
    for (int x = 0; x < 12; x++) {
      int in = x >= 2 && x <= 8 && y >= 1 && y <= 6, inner = x >= 4 && x <= 6 && y >= 3 && y <= 4;
      good &= px_is(&im, x, y, in && !inner ? red : black);
    }
  tap_ok(good, "a rectangle (2,1)-(8,6) two pixels thick: its ring painted, inside and outside untouched");
  memset(im.px, 0, 12 * 10 * 3);
  good = clcnn_image_draw_rect(&im, -5, 8, 20, 30, 1, blue) == CLCNN_SUCCESS;
  for (int y = 0; y < 10; y++)
    for (int x = 0; x < 12; x++) good &= px_is(&im, x, y, y == 8 ? blue : black);
  tap_ok(good, "a rectangle past the edges: only its top inside the image is drawn");
  /* the digit 0 at scale 1, at (1, 1) on a blue background one dot around */
  static const char *zero[7] = {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."};
  memset(im.px, 0, 12 * 10 * 3);
  int w = -1;
  good = clcnn_image_draw_text(&im, 1, 1, "0", 1, red, blue, &w) == CLCNN_SUCCESS && w == 5;
  for (int y = 0; y < 10; y++)
    for (int x = 0; x < 12; x++) {
      int gx = x - 1, gy = y - 1;
      const unsigned char *want = black;
      if (x <= 6 && y <= 8) want = blue;
      if (gx >= 0 && gx < 5 && gy >= 0 && gy < 7 && zero[gy][gx] == '#') want = red;
      good &= px_is(&im, x, y, want);
    }
  tap_ok(good, "the text '0': the 5x7 glyph (a slashed zero) on its background from (0, 0) to (6, 8), width 5");
  clcnn_image a = {.w = 40, .h = 12, .channels = 3}, b = a;
  a.px = calloc(40 * 12 * 3, 1), b.px = calloc(40 * 12 * 3, 1);
  int wa, wb;
  clcnn_image_draw_text(&a, 2, 2, "Shirt 0.9", 1, red, NULL, &wa);
  clcnn_image_draw_text(&b, 2, 2, "SHIRT 0.9", 1, red, NULL, &wb);
  tap_ok(!memcmp(a.px, b.px, 40 * 12 * 3) && wa == 53 && wb == 53, "lower case is drawn as capitals; 9 characters are 53 pixels");
  memset(a.px, 0, 40 * 12 * 3);
  clcnn_image_draw_text(&a, 0, 0, "~", 1, red, NULL, NULL);
  good = 1;
  for (int y = 0; y < 7; y++)
    for (int x = 0; x < 5; x++) good &= px_is(&a, x, y, (y == 0 || y == 6 || x == 0 || x == 4) ? red : black);
  tap_ok(good, "a character without a glyph is a hollow box");
  memset(a.px, 0, 40 * 12 * 3);
  good = clcnn_image_draw_text(&a, -30, -3, "CLIPPED TEXT", 2, red, blue, NULL) == CLCNN_SUCCESS &&
         clcnn_image_draw_text(&a, 38, 10, "X", 3, red, blue, NULL) == CLCNN_SUCCESS;
  tap_ok(good, "text partly or mostly outside the image is clipped (no write outside: ASan)");
  tap_ok(clcnn_image_draw_text(&g, 0, 0, "A", 1, red, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_draw_rect(&g, 0, 0, 1, 1, 1, red) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_draw_rect(&im, 5, 0, 4, 1, 1, red) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_draw_rect(&im, 0, 0, 4, 1, 0, red) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_draw_text(&im, 0, 0, "A", 0, red, NULL, NULL) == CLCNN_ERR_INVALID_ARGUMENT &&
             clcnn_image_draw_text(&im, 0, 0, NULL, 1, red, NULL, NULL) == CLCNN_ERR_NULL_POINTER &&
             clcnn_image_draw_rect(NULL, 0, 0, 1, 1, 1, red) == CLCNN_ERR_NULL_POINTER,
         "drawing refuses a grey image, an empty rectangle, thickness 0, scale 0, NULLs");
  free(a.px), free(b.px), free(im.px), free(g.px), free(pal.px);
}

static void malformed(void) {
  clcnn_image g = {.w = 12, .h = 7, .channels = 1};
  g.px = pattern(84, 256, 9);
  char good[600];
  snprintf(good, sizeof good, "%s", path_of("good.png"));
  if (clcnn_png_write(good, &g, err, sizeof err)) tap_bail(err);
  size_t n;
  unsigned char *b = slurp(good, &n);
  int all = 1, named = 1;
  for (size_t cut = 0; cut < n; cut++) {
    clcnn_image im = {.w = -1};
    clcnn_status st = clcnn_png_decode(b, cut, "cut.png", &im, err, sizeof err);
    all &= st == CLCNN_ERR_INVALID_ARGUMENT && im.w == -1 && !im.px;
    named &= !strncmp(err, "cut.png: ", 9);
  }
  tap_ok(all && named, "each of the %zu prefixes of a %zu-byte PNG is refused, out untouched, naming it", n, n);
  spit(path_of("cut.png"), b, n - 20);
  clcnn_image im = {.w = -1};
  tap_ok(clcnn_png_read(path_of("cut.png"), &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "cut.png") &&
             im.w == -1, "a file cut short: %s", err);
  /* a flipped byte inside each chunk (past its length and type): the CRC no longer holds */
  int chunks = 0, caught = 0;
  for (size_t at = 8; at + 12 <= n;) {
    size_t len = (size_t)b[at] << 24 | (size_t)b[at + 1] << 16 | (size_t)b[at + 2] << 8 | b[at + 3];
    char type[5] = {0};
    memcpy(type, b + at + 4, 4);
    if (len > 0) {
      unsigned char *c = malloc(n);
      memcpy(c, b, n);
      c[at + 8 + len / 2] ^= 0x10;
      clcnn_image out = {.w = -1};
      clcnn_status st = clcnn_png_decode(c, n, "crc.png", &out, err, sizeof err);
      chunks++;
      if (st == CLCNN_ERR_INVALID_ARGUMENT && out.w == -1 && strstr(err, "crc.png")) caught++;
      else tap_diag("a flipped byte in %s was not refused: %s", type, err);
      free(c);
    }
    at += 12 + len;
  }
  tap_ok(chunks >= 2 && caught == chunks, "a flipped byte in each of the %d chunks with data is refused (CRC)", chunks);
  free(b);

  /* an index past the palette, written by libpng (which does not check it) */
  unsigned char px[12] = {0, 1, 2, 3, 3, 2, 1, 0, 0, 7, 0, 0};
  raw_write(path_of("pal.png"), 4, 3, PNG_COLOR_TYPE_PALETTE, 8, 0, px, 4);
  tap_ok(clcnn_png_read(path_of("pal.png"), &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "pixel (1, 2) has palette index 7 but the palette has 4 entries"), "an index past the palette: %s", err);
  /* a side past the limit, in the header alone: refused before any pixel is allocated */
  unsigned char *wide = pattern(CLCNN_IMAGE_MAX_SIDE + 1, 256, 1);
  raw_write(path_of("wide.png"), CLCNN_IMAGE_MAX_SIDE + 1, 1, PNG_COLOR_TYPE_GRAY, 8, 0, wide, 0);
  free(wide);
  tap_ok(clcnn_png_read(path_of("wide.png"), &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "wide.png") &&
             strstr(err, "width exceeds user limit"),
         "a 16385-pixel-wide image: %s", err);
  spit(path_of("text.png"), "hello, not a png at all", 23);
  tap_ok(clcnn_png_read(path_of("text.png"), &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "no PNG signature"),
         "a text file: %s", err);
  spit(path_of("empty.png"), "", 0);
  tap_ok(clcnn_png_read(path_of("empty.png"), &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "shorter than the 8-byte signature"), "an empty file: %s", err);
  tap_ok(clcnn_png_read(path_of("nothere.png"), &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT &&
             strstr(err, "nothere.png: No such file"), "a missing file: %s", err);
  tap_ok(clcnn_png_read(dir, &im, err, sizeof err) == CLCNN_ERR_INVALID_ARGUMENT && strstr(err, "not a regular file"),
         "a directory: %s", err);
  tap_ok(clcnn_png_read(NULL, &im, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_png_read(good, NULL, err, sizeof err) == CLCNN_ERR_NULL_POINTER &&
             clcnn_png_decode(NULL, 10, "x", &im, err, sizeof err) == CLCNN_ERR_NULL_POINTER,
         "NULL path, out or data: CLCNN_ERR_NULL_POINTER");
  tap_ok(im.w == -1 && !im.px, "no refusal wrote the output");
  tap_ok(clcnn_png_read(good, &im, NULL, 0) == CLCNN_SUCCESS && im.w == 12, "a NULL err is allowed");
  clcnn_image_free(&im);
  free(g.px);
}

static int rm_all(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') unlink(path_of(e->d_name));
  if (d) closedir(d);
  return rmdir(dir);
}

int main(void) {
  as_input();
  drawing();
  if (!mkdtemp(dir)) tap_bail("mkdtemp failed");
  read_forms();
  write_forms();
  malformed();
  tap_ok(rm_all() == 0, "the temporary directory is removed");
  return tap_done();
}
