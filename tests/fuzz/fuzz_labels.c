/* tests/fuzz/fuzz_labels.c - YOLO label files (lib/detect.c) through clcnn_yolo_labels_parse:
 * any input is refused with a message naming the file and a line, with nothing handed out, or
 * read into boxes that keep every rule the parser states (class in range, centre in [0, 1],
 * size in (0, 1], edges inside the image within 0.001), as many as the lines that hold one. The
 * first byte, when there is one, picks the class count (0: no limit). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int classes = size ? data[0] % 12 : 3;
  const char *text = size ? (const char *)data + 1 : "";
  size_t len = size ? size - 1 : 0;
  clcnn_box *boxes = (clcnn_box *)&classes;
  int n = -1;
  char err[1024];
  clcnn_status st = clcnn_yolo_labels_parse(text, len, "fuzz.txt", classes, &boxes, &n, err, sizeof err);
  if (st) {
    FUZZ_CHECK(!boxes && n == 0, "a refused file handed out boxes");
    FUZZ_CHECK(!strncmp(err, "fuzz.txt:", 9), "the error names no file and line: '%s'", err);
    return 0;
  }
  FUZZ_CHECK(!err[0], "success with error text '%s'", err);
  size_t lines = 0;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  FUZZ_CHECK(n >= 0 && (size_t)n <= lines + 1 && (n == 0) == (boxes == NULL), "%d boxes from %zu lines", n, lines + 1);
  for (int i = 0; i < n; i++) {
    const clcnn_box *b = &boxes[i];
    FUZZ_CHECK(b->cls >= 0 && (classes == 0 || b->cls < classes), "class %d of %d", b->cls, classes);
    FUZZ_CHECK(b->cx >= 0 && b->cx <= 1 && b->cy >= 0 && b->cy <= 1 && b->w > 0 && b->w <= 1 && b->h > 0 && b->h <= 1,
               "box %g %g %g %g", b->cx, b->cy, b->w, b->h);
    FUZZ_CHECK(b->cx - b->w / 2 >= -1.001e-3 && b->cx + b->w / 2 <= 1 + 1.001e-3 && b->cy - b->h / 2 >= -1.001e-3 &&
                   b->cy + b->h / 2 <= 1 + 1.001e-3,
               "box %g %g %g %g passes the edge", b->cx, b->cy, b->w, b->h);
  }
  free(boxes);
  return 0;
}
