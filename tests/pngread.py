"""tests/pngread.py - a PNG decoder on Python's zlib alone (not libpng), for the tests that check
what clcnn writes: 8-bit grey, RGB or palette images, not interlaced, every chunk's CRC checked."""
import struct
import zlib


def png(path):
    """8-bit grey, RGB or palette PNG -> (colour type, width, height, pixels as bytes (RGB
    interleaved), palette)"""
    raw = open(path, "rb").read()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", path
    at, idat, pal, hdr = 8, b"", None, None
    while at < len(raw):
        n, kind = struct.unpack(">I4s", raw[at:at + 8])
        body = raw[at + 8:at + 8 + n]
        assert struct.unpack(">I", raw[at + 8 + n:at + 12 + n])[0] == zlib.crc32(kind + body), (path, kind)
        if kind == b"IHDR": hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE": pal = [tuple(body[i:i + 3]) for i in range(0, n, 3)]
        elif kind == b"IDAT": idat += body
        at += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (0, 2, 3) and interlace == 0, (path, hdr)
    ch = 3 if ctype == 2 else 1
    stride = w * ch
    data, out, prev = zlib.decompress(idat), bytearray(), bytearray(stride)
    for y in range(h):
        f, row = data[y * (stride + 1)], bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = row[x - ch] if x >= ch else 0
            b, c = prev[x], prev[x - ch] if x >= ch else 0
            if f == 1: row[x] = (row[x] + a) & 255
            elif f == 2: row[x] = (row[x] + b) & 255
            elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            else: assert f == 0, (path, f)
        out += row
        prev = row
    return ctype, w, h, bytes(out), pal
