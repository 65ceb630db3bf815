/* lib/image.c - PNG images through libpng: 8-bit grey, 8-bit RGB and palette images, whose
 * pixels stay palette indices (a segmentation mask's index is its class).
 *
 * Reading takes the whole file into memory and decodes it from there, the same path a fuzzer
 * drives (clcnn_png_decode). libpng reports errors by longjmp; every one of them becomes a
 * message naming the file, and nothing allocated is kept. Writing encodes into memory and
 * replaces the file atomically (clcnn__write_file), so a failed write leaves the old file. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define fail clcnn__errf
/* The largest file read whole: a 16384 x 16384 RGB image stored uncompressed is ~805 MB,
 * which no data set here comes near. */
#define MAX_FILE ((size_t)1 << 30)

/* libpng's error and warning hooks: the message is kept for the caller; warnings (a bad CRC
 * in an ancillary chunk, an unknown chunk) are not errors and are dropped. */
struct png_io {
  const unsigned char *data;
  size_t size, pos;
  unsigned char *out; /* writing: the encoded bytes */
  size_t out_size, out_cap;
  int out_failed;
  char msg[200];
  char warn[120]; /* the last warning, which often says why the error came */
};

static void on_error(png_structp png, png_const_charp what) {
  struct png_io *io = png_get_error_ptr(png);
  snprintf(io->msg, sizeof io->msg, "%s", what);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp what) {
  struct png_io *io = png_get_error_ptr(png);
  snprintf(io->warn, sizeof io->warn, "%s", what);
}

static void mem_read(png_structp png, png_bytep dst, png_size_t n) {
  struct png_io *io = png_get_io_ptr(png);
  if (n > io->size - io->pos) png_error(png, "the file ends before the image does (truncated?)");
  memcpy(dst, io->data + io->pos, n);
  io->pos += n;
}

static void mem_write(png_structp png, png_bytep src, png_size_t n) {
  struct png_io *io = png_get_io_ptr(png);
  if (n > io->out_cap - io->out_size) {
    size_t cap = io->out_cap ? io->out_cap : 4096;
    while (cap - io->out_size < n) cap *= 2;
    unsigned char *p = realloc(io->out, cap);
    if (!p) {
      io->out_failed = 1;
      png_error(png, "out of memory");
    }
    io->out = p, io->out_cap = cap;
  }
  memcpy(io->out + io->out_size, src, n);
  io->out_size += n;
}

static void mem_flush(png_structp png) { (void)png; }

CLCNN_API void clcnn_image_free(clcnn_image *img) {
  if (!img) return;
  free(img->px);
  img->px = NULL;
}

static const char *color_name(int type) {
  switch (type) {
    case PNG_COLOR_TYPE_GRAY: return "grey";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "grey+alpha";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "unknown";
  }
}

/* A decode in progress: what the error path must free lives here, not in locals that a
 * longjmp could clobber. */
struct decode {
  struct png_io io;
  png_structp png;
  png_infop info;
  clcnn_image img;
  unsigned char *px;
  png_bytep *rows;
};

static void decode_fail(struct decode *d, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void decode_fail(struct decode *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->io.msg, sizeof d->io.msg, fmt, ap);
  va_end(ap);
  png_longjmp(d->png, 1);
}

/* Everything that may longjmp (libpng's calls and decode_fail), run under decode_guarded's setjmp. */
static void __attribute__((noinline)) decode_body(struct decode *d) {
  png_structp png = d->png;
  png_infop info = d->info;
  clcnn_image *img = &d->img;
  png_set_read_fn(png, &d->io, mem_read);
  png_set_user_limits(png, CLCNN_IMAGE_MAX_SIDE, CLCNN_IMAGE_MAX_SIDE);
  /* a chunk's claimed length is allocated before it is read: no more than a chunk of any image
   * here needs (IDAT is streamed, not held), and no more ancillary chunks than a real file has */
  png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20);
  png_set_chunk_cache_max(png, 1000);
  png_read_info(png, info);
  png_uint_32 w, h;
  int depth, type, interlace;
  png_get_IHDR(png, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
  if (!((type == PNG_COLOR_TYPE_GRAY && depth == 8) || (type == PNG_COLOR_TYPE_RGB && depth == 8) ||
        type == PNG_COLOR_TYPE_PALETTE))
    decode_fail(d, "a%s %d-bit %s PNG: clcnn reads 8-bit grey, 8-bit RGB and palette (indexed) images",
                depth == 8 ? "n" : "", depth, color_name(type));
  img->w = (int)w, img->h = (int)h;
  img->channels = type == PNG_COLOR_TYPE_RGB ? 3 : 1;
  img->indexed = type == PNG_COLOR_TYPE_PALETTE;
  if (img->indexed) {
    png_colorp pal = NULL;
    int npal = 0;
    if (!png_get_PLTE(png, info, &pal, &npal) || npal < 1 || npal > 256)
      decode_fail(d, "a palette image without a usable palette");
    img->npalette = npal;
    for (int i = 0; i < npal; i++)
      img->palette[i][0] = pal[i].red, img->palette[i][1] = pal[i].green, img->palette[i][2] = pal[i].blue;
    if (depth < 8) png_set_packing(png); /* one byte per index */
  }
  if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t stride = (size_t)img->w * img->channels;
  if (png_get_rowbytes(png, info) != stride)
    decode_fail(d, "unexpected row size %zu for a %dx%d image", (size_t)png_get_rowbytes(png, info), img->w, img->h);
  if (!(d->px = malloc(stride * img->h)) || !(d->rows = malloc(sizeof *d->rows * img->h)))
    decode_fail(d, "out of memory for a %dx%d image", img->w, img->h);
  for (int y = 0; y < img->h; y++) d->rows[y] = d->px + (size_t)y * stride;
  png_read_image(png, d->rows);
  png_read_end(png, NULL);
  if (img->indexed) /* an index past the palette is an error in the file, not a colour */
    for (size_t i = 0; i < stride * img->h; i++)
      if (d->px[i] >= img->npalette)
        decode_fail(d, "pixel (%zu, %zu) has palette index %d but the palette has %d entries", i % stride,
                    i / stride, d->px[i], img->npalette);
}

static int decode_guarded(struct decode *d) {
  if (setjmp(png_jmpbuf(d->png))) return -1;
  decode_body(d);
  return 0;
}

/* The decoder, on bytes in memory; NAME names them in messages. out is written only on success. */
CLCNN_API clcnn_status clcnn_png_decode(const void *data, size_t size, const char *name, clcnn_image *out,
                                        char *err, size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!name) name = "(memory)";
  if (!out) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "%s: the output image is NULL", name);
  if (!data && size) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "%s: the data is NULL", name);
  if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8))
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: not a PNG file (%s)", name,
                size < 8 ? "shorter than the 8-byte signature" : "no PNG signature");
  struct decode *d = calloc(1, sizeof *d);
  if (!d) return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
  d->io.data = data, d->io.size = size;
  d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d->io, on_error, on_warning);
  d->info = d->png ? png_create_info_struct(d->png) : NULL;
  clcnn_status st = CLCNN_SUCCESS;
  if (!d->info)
    st = fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
  else if (decode_guarded(d))
    st = fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s%s%s%s", name, d->io.msg[0] ? d->io.msg : "bad PNG data",
              d->io.warn[0] ? " (" : "", d->io.warn, d->io.warn[0] ? ")" : "");
  if (d->png) png_destroy_read_struct(&d->png, d->info ? &d->info : NULL, NULL);
  free(d->rows);
  if (st) free(d->px);
  else d->img.px = d->px, *out = d->img;
  free(d);
  return st;
}

CLCNN_API clcnn_status clcnn_png_read(const char *path, clcnn_image *out, char *err, size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!path) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_png_read: path is NULL");
  if (!out) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "%s: the output image is NULL", path);
  FILE *f = fopen(path, "rb");
  if (!f) return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(f);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: not a regular file", path);
  }
  if ((size_t)sb.st_size > MAX_FILE) {
    fclose(f);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: %lld bytes: larger than any image clcnn reads",
                path, (long long)sb.st_size);
  }
  size_t n = (size_t)sb.st_size;
  unsigned char *buf = malloc(n ? n : 1);
  if (!buf) {
    fclose(f);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  size_t got = fread(buf, 1, n, f);
  int rerr = ferror(f);
  fclose(f);
  if (got != n || rerr) {
    free(buf);
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: read error", path);
  }
  clcnn_status st = clcnn_png_decode(buf, n, path, out, err, err_size);
  free(buf);
  return st;
}

/* clcnn_png_encode with a name that is never changed (setjmp below) */
static clcnn_status encode(const clcnn_image *img, const char *path, unsigned char **out, size_t *size, char *err,
                           size_t err_size) {
  if (!out || !size) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "%s: the output pointers are NULL", path);
  if (!img || !img->px) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "%s: the image or its pixels are NULL", path);
  if (img->w < 1 || img->h < 1 || img->w > CLCNN_IMAGE_MAX_SIDE || img->h > CLCNN_IMAGE_MAX_SIDE)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: a %dx%d image: each side must be 1..%d", path,
                img->w, img->h, CLCNN_IMAGE_MAX_SIDE);
  if (img->indexed ? img->channels != 1 : img->channels != 1 && img->channels != 3)
    return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                "%s: %d channels%s: PNGs are written as grey (1), RGB (3) or palette (1, indexed) images", path,
                img->channels, img->indexed ? " in a palette image" : "");
  size_t stride = (size_t)img->w * img->channels;
  if (img->indexed) {
    if (img->npalette < 1 || img->npalette > 256)
      return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT, "%s: a palette of %d entries: 1..256", path,
                  img->npalette);
    for (size_t i = 0; i < stride * img->h; i++)
      if (img->px[i] >= img->npalette)
        return fail(err, err_size, CLCNN_ERR_INVALID_ARGUMENT,
                    "%s: pixel (%zu, %zu) is index %d but the palette has %d entries", path, i % stride, i / stride,
                    img->px[i], img->npalette);
  }
  struct png_io io = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(png ? &png : NULL, NULL);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  png_bytep *volatile rows = malloc(sizeof *rows * img->h);
  if (!rows) {
    png_destroy_write_struct(&png, &info);
    return fail(err, err_size, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  if (setjmp(png_jmpbuf(png))) {
    free(rows);
    free(io.out);
    png_destroy_write_struct(&png, &info);
    return fail(err, err_size, io.out_failed ? CLCNN_ERR_OUT_OF_MEMORY : CLCNN_ERR_INVALID_ARGUMENT, "%s: %s", path,
                io.msg);
  }
  png_set_write_fn(png, &io, mem_write, mem_flush);
  png_set_compression_level(png, 6); /* fixed, so that the same image gives the same bytes */
  int type = img->indexed ? PNG_COLOR_TYPE_PALETTE : img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY;
  png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (img->indexed) {
    png_color pal[256];
    for (int i = 0; i < img->npalette; i++)
      pal[i].red = img->palette[i][0], pal[i].green = img->palette[i][1], pal[i].blue = img->palette[i][2];
    png_set_PLTE(png, info, pal, img->npalette);
  }
  for (int y = 0; y < img->h; y++) rows[y] = img->px + (size_t)y * stride;
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  *out = io.out;
  *size = io.out_size;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_png_encode(const clcnn_image *img, const char *name, unsigned char **out, size_t *size,
                                        char *err, size_t err_size) {
  if (err && err_size) err[0] = 0;
  return encode(img, name ? name : "(memory)", out, size, err, err_size);
}

CLCNN_API clcnn_status clcnn_png_write(const char *path, const clcnn_image *img, char *err, size_t err_size) {
  if (err && err_size) err[0] = 0;
  if (!path) return fail(err, err_size, CLCNN_ERR_NULL_POINTER, "clcnn_png_write: path is NULL");
  unsigned char *buf = NULL;
  size_t n = 0;
  clcnn_status st = clcnn_png_encode(img, path, &buf, &n, err, err_size);
  if (!st) st = clcnn__write_file(path, &(struct clcnn__piece){buf, n}, 1, err, err_size);
  free(buf);
  return st;
}

CLCNN_API void clcnn_voc_palette(unsigned char pal[256][3]) {
  /* class c's colour: its bits spread over the high bits, red from bits 0, 3, 6, green 1, 4, 7,
   * blue 2, 5 (Pascal VOC's colour map) */
  for (int c = 0; c < 256; c++) {
    int r = 0, g = 0, b = 0, v = c;
    for (int j = 7; j >= 0; j--, v >>= 3) {
      r |= (v & 1) << j;
      g |= ((v >> 1) & 1) << j;
      b |= ((v >> 2) & 1) << j;
    }
    pal[c][0] = (unsigned char)r, pal[c][1] = (unsigned char)g, pal[c][2] = (unsigned char)b;
  }
}

CLCNN_API int clcnn_image_colors(const clcnn_image *img) {
  return !img ? 0 : img->indexed ? 3 : img->channels;
}

CLCNN_API clcnn_status clcnn_image_to_float(const clcnn_image *img, float *dst) {
  if (!img || !dst || !img->px) return CLCNN_ERR_NULL_POINTER;
  int c = clcnn_image_colors(img);
  if (img->w <= 0 || img->h <= 0 || (c != 1 && c != 3) || (img->indexed && img->channels != 1))
    return CLCNN_ERR_INVALID_ARGUMENT;
  size_t plane = (size_t)img->w * img->h;
  for (size_t p = 0; p < plane; p++)
    for (int ch = 0; ch < c; ch++) {
      unsigned char v = img->indexed ? img->palette[img->px[p]][ch] : img->px[p * img->channels + ch];
      dst[ch * plane + p] = (float)v / 255.0f;
    }
  return CLCNN_SUCCESS;
}
