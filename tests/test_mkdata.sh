#!/bin/sh
# tests/test_mkdata.sh - clcnn-mkdata: the layout and formats (read by a PNG decoder written
# here on zlib alone, not libpng), the rules of the canvases checked on every file, training
# canvases made only from training images, the same flags writing the same bytes, and every
# bad input refused with nothing left behind.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): abs_top_srcdir, abs_top_builddir, PYTHON3.
. "$abs_top_srcdir/tests/lib.sh"
mk="$abs_top_builddir/tools/clcnn-mkdata"
real=/usr/share/datasets/fashion-mnist
py=${PYTHON3:-python3}
tap_tmpdir mkdata
if [ ! -f "$real/train-images-idx3-ubyte.gz" ]; then
  echo "Bail out! $real is missing: apt-get install dataset-fashion-mnist"
  exit 1
fi

cat > "$tmp/check.py" <<'PY'
import os, struct, sys

sys.path.insert(0, os.environ["abs_top_srcdir"] + "/tests")
from pngread import png  # noqa: E402

def check(root, n_train, n_test, lo=None, hi=None):
    names = open(os.path.join(root, "classes.txt")).read().split("\n")
    assert names == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                     "Bag", "Ankle boot", ""], names
    stats = {}
    for split, count in (("train", n_train), ("test", n_test)):
        files = {d: sorted(os.listdir(os.path.join(root, split, d))) for d in ("images", "masks", "labels")}
        stems = ["%05d" % i for i in range(count)]
        assert files["images"] == [s + ".png" for s in stems], split
        assert files["masks"] == [s + ".png" for s in stems], split
        assert files["labels"] == [s + ".txt" for s in stems], split
        longest, brightest, nlabels, seen = [], 0, [], set()
        for s in stems:
            ct, w, h, img, _ = png(os.path.join(root, split, "images", s + ".png"))
            seen.add(img)
            cm, wm, hm, mask, pal = png(os.path.join(root, split, "masks", s + ".png"))
            assert (ct, w, h, cm, wm, hm) == (0, 64, 64, 3, 64, 64), s
            assert len(pal) == 256 and pal[0] == (0, 0, 0) and pal[1] == (128, 0, 0) and pal[2] == (0, 128, 0), s
            assert all((i > 64) == (m > 0) for i, m in zip(img, mask)), "image above 64 <=> mask set: " + s
            assert max(mask) <= 10, s
            brightest = max(brightest, max(img))
            lines = open(os.path.join(root, split, "labels", s + ".txt")).read().splitlines()
            assert 1 <= len(lines) <= 4, (s, lines)
            nlabels.append(len(lines))
            for line in lines:
                f = line.split()
                c, box = int(f[0]), [float(v) for v in f[1:]]
                assert len(f) == 5 and 0 <= c <= 9, line
                x0, x1 = round((box[0] - box[2] / 2) * 64), round((box[0] + box[2] / 2) * 64) - 1
                y0, y1 = round((box[1] - box[3] / 2) * 64), round((box[1] + box[3] / 2) * 64) - 1
                assert 0 <= x0 <= x1 < 64 and 0 <= y0 <= y1 < 64, line
                inside = lambda y, x: mask[y * 64 + x] == c + 1
                # tight: the class's pixels touch each side of the box, none of the item's outside
                assert any(inside(y0, x) for x in range(x0, x1 + 1)) and any(inside(y1, x) for x in range(x0, x1 + 1)), (s, line)
                assert any(inside(y, x0) for y in range(y0, y1 + 1)) and any(inside(y, x1) for y in range(y0, y1 + 1)), (s, line)
            # the last item drawn is never covered: its box is the scaled item's, 20..40 on its longer side
            f = [float(v) for v in lines[-1].split()[1:]]
            longest.append(round(max(f[2], f[3]) * 64))
        assert len(seen) >= 0.95 * count, "%d distinct canvases of %d" % (len(seen), count)
        stats[split] = (min(longest), max(longest), brightest, min(nlabels), max(nlabels))
        if lo is not None:
            assert lo <= min(longest) and max(longest) <= hi, (split, stats[split])
    print(stats)
    return stats


# ---- a plain reference of the generator, from the rules in clcnn-mkdata(1) ----
from clcnn_rng import M as M64, mix64 as mix, splitmix  # noqa: E402
class Rng:
    def __init__(self, state): self.state = state
    def next(self):
        self.state, z = splitmix(self.state)
        return z
    def uniform(self, lo, hi): return lo + ((self.next() * (hi - lo + 1)) >> 64)

def idx(path, header):
    import gzip
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    return raw[header:]

def reference(root, data, counts, seed):
    for split, prefix, tag in (("train", "train", 1), ("test", "t10k", 2)):
        px = idx(os.path.join(data, prefix + "-images-idx3-ubyte.gz"), 16)
        labels = idx(os.path.join(data, prefix + "-labels-idx1-ubyte.gz"), 8)
        r = Rng(seed ^ 0x6a09e667f3bcc909)
        r = Rng(r.next() ^ tag)
        base = r.next()
        for i in range(counts[split]):
            rng = Rng(Rng((base ^ (i * 0xd1b54a32d192ed03)) & M64).next())
            img, mask, owner = [0] * 4096, [0] * 4096, [-1] * 4096
            n, total, cls = rng.uniform(1, 4), [], []
            for it in range(n):
                while True:
                    k = rng.uniform(0, len(labels) - 1)
                    item = px[k * 784:(k + 1) * 784]
                    on = [q for q in range(784) if item[q] > 64]
                    if on: break
                ys, xs = [q // 28 for q in on], [q % 28 for q in on]
                y0, x0 = min(ys), min(xs)
                ch, cw = max(ys) - y0 + 1, max(xs) - x0 + 1
                cut = [item[(y0 + y) * 28 + x0 + x] for y in range(ch) for x in range(cw)]
                L = rng.uniform(20, 40)
                oh = L if ch >= cw else round(ch * L / cw)
                ow = L if cw >= ch else round(cw * L / ch)
                oh, ow = max(oh, 1), max(ow, 1)
                big = []
                for y in range(oh):  # bilinear, pixel centres aligned, edges clamped
                    sy = max((y + 0.5) * ch / oh - 0.5, 0)
                    a0 = int(sy); a1 = min(a0 + 1, ch - 1); fy = sy - a0
                    for x in range(ow):
                        sx = max((x + 0.5) * cw / ow - 0.5, 0)
                        b0 = int(sx); b1 = min(b0 + 1, cw - 1); fx = sx - b0
                        v = (1 - fy) * ((1 - fx) * cut[a0 * cw + b0] + fx * cut[a0 * cw + b1]) + \
                            fy * ((1 - fx) * cut[a1 * cw + b0] + fx * cut[a1 * cw + b1])
                        big.append(round(v))
                py, pxo = rng.uniform(0, 64 - oh), rng.uniform(0, 64 - ow)
                c = labels[k]
                cls.append(c)
                count = 0
                for y in range(oh):
                    for x in range(ow):
                        if big[y * ow + x] > 64:
                            at = (py + y) * 64 + pxo + x
                            img[at], mask[at], owner[at] = big[y * ow + x], c + 1, it
                            count += 1
                total.append(count)
            text = ""
            for it in range(n):
                vis = [q for q in range(4096) if owner[q] == it]
                if total[it] == 0 or len(vis) < 0.3 * total[it]: continue
                ys, xs = [q // 64 for q in vis], [q % 64 for q in vis]
                text += "%d %.6f %.6f %.6f %.6f\n" % (cls[it], (min(xs) + max(xs) + 1) / 2 / 64, (min(ys) + max(ys) + 1) / 2 / 64,
                                                    (max(xs) - min(xs) + 1) / 64, (max(ys) - min(ys) + 1) / 64)
            name = "%05d" % i
            got = png(os.path.join(root, split, "images", name + ".png"))[3]
            assert got == bytes(img), "%s/%s: the image differs from the reference" % (split, name)
            assert png(os.path.join(root, split, "masks", name + ".png"))[3] == bytes(mask), "%s/%s: mask" % (split, name)
            assert open(os.path.join(root, split, "labels", name + ".txt")).read() == text, "%s/%s: labels" % (split, name)
    print("reference: equal")

if __name__ == "__main__":
    if sys.argv[1] == "reference":  # reference ROOT DATA TRAIN TEST SEED
        reference(sys.argv[2], sys.argv[3], {"train": int(sys.argv[4]), "test": int(sys.argv[5])}, int(sys.argv[6]))
        sys.exit(0)
    root, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    st = check(root, a, b, *(int(v) for v in sys.argv[4:6]))
    if len(sys.argv) > 6:  # the brightest pixel of each split, as the synthetic items were drawn
        assert st["train"][2] == int(sys.argv[6]) and st["test"][2] == int(sys.argv[7]), st
PY

# 1. From Fashion-MNIST: the layout, the formats and the rules on every file.
"$mk" "$tmp/a" --train 300 --test 60 -q > "$tmp/out" 2>&1
check $? "writes 300 training and 60 test canvases"
grep -q "train: 300 canvases" "$tmp/out" && grep -q "test: 60 canvases" "$tmp/out"
check $? "and says how many items and labels"
items=$(sed -n 's/^train: 300 canvases, \([0-9]*\) items, \([0-9]*\) labelled.*/\1/p' "$tmp/out")
labelled=$(sed -n 's/^train: 300 canvases, \([0-9]*\) items, \([0-9]*\) labelled.*/\2/p' "$tmp/out")
if [ -n "$items" ] && [ "$labelled" -lt "$items" ] && [ $((labelled * 100)) -gt $((items * 85)) ] && [ "$items" -ge 600 ] && [ "$items" -le 900 ]; then
  ok "1-4 items a canvas ($items in 300, 2.5 expected each) and most of them labelled ($labelled): covered ones are left out"
else notok "1-4 items a canvas and most labelled ($labelled of $items)"; fi
"$py" "$tmp/check.py" "$tmp/a" 300 60 > "$tmp/out" 2>&1
check $? "every file: 64x64 grey images and palette masks (VOC colours), image above 64 exactly where the mask is set, 1-4 tight YOLO boxes"
[ -z "$(ls "$tmp" | grep '\.tmp-')" ]
check $? "no temporary directory is left"
"$mk" "$tmp/r" --train 40 --test 12 --seed 7 -q > "$tmp/out" 2>&1 && "$py" "$tmp/check.py" reference "$tmp/r" "$real" 40 12 7 > "$tmp/out" 2>&1
check $? "40 training and 12 test canvases (seed 7) equal, pixel for pixel and label for label, a plain Python reference of the rules"

# 2. The same flags write the same bytes; another seed, other canvases; counts change only counts.
"$mk" "$tmp/b" --train 300 --test 60 -q > "$tmp/out" 2>&1 && diff -r "$tmp/a" "$tmp/b" > "$tmp/out" 2>&1
check $? "the same flags write the same bytes (diff -r)"
"$mk" "$tmp/c" --train 300 --test 60 --seed 2 -q > "$tmp/out" 2>&1 && ! cmp -s "$tmp/a/train/images/00000.png" "$tmp/c/train/images/00000.png" &&
  ! cmp -s "$tmp/a/test/masks/00005.png" "$tmp/c/test/masks/00005.png"
check $? "--seed 2 draws other canvases"
"$mk" "$tmp/d" --train 100 --test 10 -q > "$tmp/out" 2>&1 && cmp -s "$tmp/a/train/images/00099.png" "$tmp/d/train/images/00099.png" &&
  cmp -s "$tmp/a/test/labels/00009.txt" "$tmp/d/test/labels/00009.txt"
check $? "a canvas depends on (seed, split, index) alone: fewer canvases, the same first ones"
"$mk" --help > "$tmp/out" 2>&1 && grep -q "default 20000" "$tmp/out" && grep -q "default 2000)" "$tmp/out" && grep -q "default 1)" "$tmp/out"
check $? "--help states the benchmark's defaults: 20000 and 2000 canvases, seed 1"

# 3. Synthetic items (filled rectangles, 250 in training images, 150 in test images): training
#    canvases hold only training items, and the last item's longer side spans 20..40 exactly.
"$py" - "$tmp/syn" <<'PY'
import os, random, struct, sys
d = sys.argv[1]
os.makedirs(d)
rnd = random.Random(5)
for split, n, v in (("train", 60, 250), ("t10k", 20, 150)):
    px = bytearray()
    for i in range(n):
        h, w = rnd.randint(4, 28), rnd.randint(4, 28)
        y, x = rnd.randint(0, 28 - h), rnd.randint(0, 28 - w)
        px += bytes(v if y <= r < y + h and x <= c < x + w else 0 for r in range(28) for c in range(28))
    open(os.path.join(d, split + "-images-idx3-ubyte"), "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + px)
    open(os.path.join(d, split + "-labels-idx1-ubyte"), "wb").write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
PY
"$mk" "$tmp/s" --data "$tmp/syn" --train 400 --test 100 -q > "$tmp/out" 2>&1 && "$py" "$tmp/check.py" "$tmp/s" 400 100 20 40 250 150 > "$tmp/out" 2>&1
check $? "training canvases only from training items (brightest 250), test only from test items (150); last item 20..40 on its longer side"
grep -q "'train': (20, 40, 250, 1, 4)" "$tmp/out"
check $? "over 400 canvases the sizes reach both 20 and 40 and the label counts both 1 and 4 ($(tail -n 1 "$tmp/out"))"

# 4. Bad input: a clear message, nothing written, nothing left.
mkdir "$tmp/exists"
bad 1 "exists: give a directory that does not exist yet" "an existing empty directory" -- "$mk" "$tmp/exists" --train 5 --test 5
[ -z "$(ls -A "$tmp/exists")" ]
check $? "and it is left empty"
echo keep > "$tmp/file"
bad 1 "exists" "an existing file" -- "$mk" "$tmp/file" --train 5 --test 5
[ "$(cat "$tmp/file")" = keep ]
check $? "and it is left as it was"
bad 1 "does not exist" "a data directory that does not exist" -- "$mk" "$tmp/nodata" --data "$tmp/nowhere" --train 5 --test 5
[ ! -e "$tmp/nodata" ] && [ -z "$(ls "$tmp" | grep '\.tmp-')" ]
check $? "and no output or temporary directory appears"
bad 1 "cannot create a directory beside it" "an output directory under a file" -- "$mk" "$tmp/file/sub" --train 5 --test 5
mkdir "$tmp/cifar"
"$py" -c "
import sys
open(sys.argv[1] + '/data_batch_1.bin', 'wb').write(bytes(3073 * 2))
" "$tmp/cifar"
for i in 2 3 4 5; do cp "$tmp/cifar/data_batch_1.bin" "$tmp/cifar/data_batch_$i.bin"; done
cp "$tmp/cifar/data_batch_1.bin" "$tmp/cifar/test_batch.bin"
bad 1 "must be 1x28x28 images" "CIFAR-10 data instead of Fashion-MNIST" -- "$mk" "$tmp/fromcifar" --data "$tmp/cifar" --train 5 --test 5
[ ! -e "$tmp/fromcifar" ] && [ -z "$(ls "$tmp" | grep '\.tmp-')" ]
check $? "and nothing is left"
bad 2 "no output directory given" "no output directory" -- "$mk"
bad 2 "one output directory expected" "two output directories" -- "$mk" "$tmp/x" "$tmp/y"
bad 2 "--train: '0' is not a whole number from 1 to 10000000" "--train 0" -- "$mk" "$tmp/x" --train 0
bad 2 "--test: 'abc' is not a whole number" "--test abc" -- "$mk" "$tmp/x" --test abc
bad 2 "--seed: '-1' is not a whole number from 0" "--seed -1" -- "$mk" "$tmp/x" --seed -1
bad 2 "--train needs a value" "--train without its value" -- "$mk" "$tmp/x" --train
bad 2 "unknown option '--size'" "an unknown flag" -- "$mk" "$tmp/x" --size 32
bad 2 "the output directory is an empty string" "an empty output directory name" -- "$mk" ""
[ ! -e "$tmp/x" ]
check $? "no bad command line wrote anything"
echo "1..$n"
exit $fail
