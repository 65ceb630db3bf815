/* lib/draw.c - what --predict draws on pictures: an image made RGB and larger, rectangles, and
 * text in a 5 x 7 dot capital font of our own (digits, A-Z, a little punctuation; lower case is
 * drawn as capitals and anything else as a hollow box), clipped at the image's edges. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* each glyph: 7 rows, top first, the row's 5 dots in bits 4 (left) to 0 (right) */
static const struct {
  char c;
  unsigned char rows[7];
} font[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}}, {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}}, {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}}, {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}}, {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}}, {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}}, {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}}, {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}}, {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}}, {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}}, {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}}, {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}}, {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}}, {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}}, {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}}, {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}}, {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
};
static const unsigned char no_glyph[7] = {0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F};

static const unsigned char *glyph(char ch) {
  char c = (char)toupper((unsigned char)ch);
  for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
    if (font[i].c == c) return font[i].rows;
  return no_glyph;
}

static int rgb_image(const clcnn_image *img) { return img && img->px && img->channels == 3 && !img->indexed && img->w > 0 && img->h > 0; }

static void dot(clcnn_image *img, int x, int y, const unsigned char rgb[3]) {
  if (x < 0 || y < 0 || x >= img->w || y >= img->h) return;
  memcpy(img->px + 3 * ((size_t)y * img->w + x), rgb, 3);
}

static void fill(clcnn_image *img, int x0, int y0, int x1, int y1, const unsigned char rgb[3]) {
  x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
  x1 = x1 >= img->w ? img->w - 1 : x1, y1 = y1 >= img->h ? img->h - 1 : y1;
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) dot(img, x, y, rgb);
}

CLCNN_API clcnn_status clcnn_image_to_rgb(const clcnn_image *src, int scale, clcnn_image *dst) {
  if (!src || !dst || !src->px) return CLCNN_ERR_NULL_POINTER;
  int colors = clcnn_image_colors(src);
  if (scale < 1 || scale > 64 || src->w <= 0 || src->h <= 0 || (colors != 1 && colors != 3) ||
      (long long)src->w * scale > CLCNN_IMAGE_MAX_SIDE || (long long)src->h * scale > CLCNN_IMAGE_MAX_SIDE)
    return CLCNN_ERR_INVALID_ARGUMENT;
  clcnn_image out = {.w = src->w * scale, .h = src->h * scale, .channels = 3};
  out.px = malloc((size_t)out.w * out.h * 3);
  if (!out.px) return CLCNN_ERR_OUT_OF_MEMORY;
  for (int y = 0; y < out.h; y++)
    for (int x = 0; x < out.w; x++) {
      size_t p = (size_t)(y / scale) * src->w + x / scale;
      for (int c = 0; c < 3; c++)
        out.px[3 * ((size_t)y * out.w + x) + c] = src->indexed         ? src->palette[src->px[p]][c]
                                                  : src->channels == 3 ? src->px[3 * p + c]
                                                                       : src->px[p];
    }
  *dst = out;
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_image_draw_rect(clcnn_image *img, int x0, int y0, int x1, int y1, int thickness,
                                             const unsigned char rgb[3]) {
  if (!img || !rgb) return CLCNN_ERR_NULL_POINTER;
  if (!rgb_image(img) || thickness < 1 || x1 < x0 || y1 < y0) return CLCNN_ERR_INVALID_ARGUMENT;
  int t = thickness - 1;
  fill(img, x0, y0, x1, y0 + t < y1 ? y0 + t : y1, rgb);   /* top */
  fill(img, x0, y1 - t > y0 ? y1 - t : y0, x1, y1, rgb);   /* bottom */
  fill(img, x0, y0, x0 + t < x1 ? x0 + t : x1, y1, rgb);   /* left */
  fill(img, x1 - t > x0 ? x1 - t : x0, y0, x1, y1, rgb);   /* right */
  return CLCNN_SUCCESS;
}

CLCNN_API clcnn_status clcnn_image_draw_text(clcnn_image *img, int x, int y, const char *text, int scale,
                                             const unsigned char fg[3], const unsigned char *bg, int *width) {
  if (!img || !text || !fg) return CLCNN_ERR_NULL_POINTER;
  if (!rgb_image(img) || scale < 1 || scale > 64) return CLCNN_ERR_INVALID_ARGUMENT;
  size_t n = strlen(text);
  if (n > 4096) return CLCNN_ERR_INVALID_ARGUMENT;
  int w = n ? (int)(6 * n - 1) * scale : 0; /* 5 dots and a gap a character, no gap after the last */
  if (bg && n) fill(img, x - scale, y - scale, x + w + scale - 1, y + 8 * scale - 1, bg);
  for (size_t i = 0; i < n; i++) {
    const unsigned char *g = glyph(text[i]);
    for (int r = 0; r < 7; r++)
      for (int c = 0; c < 5; c++)
        if (g[r] >> (4 - c) & 1)
          fill(img, x + ((int)i * 6 + c) * scale, y + r * scale, x + ((int)i * 6 + c + 1) * scale - 1,
               y + (r + 1) * scale - 1, fg);
  }
  if (width) *width = w;
  return CLCNN_SUCCESS;
}
