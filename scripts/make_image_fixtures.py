#!/usr/bin/python3
"""Writes the small image fixtures of tests/test_formats_image.c into
tests/data/images/: PNG files of every colour type and bit depth (written by
the small encoder below, so 16-bit, palette+tRNS and Adam7-interlaced files
exist, which Pillow cannot all write), JPEG files written by Pillow
(baseline 4:2:0 / 4:4:4 / 4:2:2, progressive, grayscale, CMYK), broken
files, and for every decodable one the pixels Pillow 9.4 gives for
Image.open(f).convert("RGB"), saved as NAME.npy (uint8, H x W x 3). Pillow is
the oracle; orch must equal it byte for byte. Also the processor fixtures'
source images (tests/data/proc_*.npy) as PNG, so the test decodes them from a
file, and the small image set of pipelines/images.lua (pipelines/data/shapes/:
56x56 JPEGs of three shapes, a sub-folder per class for training, a folder
and a CSV for evaluation). Run with Debian's python3-pil / python3-numpy from the repository root:

    /usr/bin/python3 scripts/make_image_fixtures.py

Deterministic (fixed seeds): rerunning gives the same bytes with the same
Pillow / libjpeg-turbo (Debian 12: Pillow 9.4, libjpeg-turbo 2.1.5).
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "images")

# ------------------------------------------------------------ PNG encoder


def chunk(kind, data):
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def pack_rows(samples, depth):
    """samples: (H, W*channels) ints; returns the packed bytes of each row."""
    rows = []
    for r in samples:
        if depth == 16:
            rows.append(np.asarray(r, dtype=">u2").tobytes())
        elif depth == 8:
            rows.append(np.asarray(r, dtype=np.uint8).tobytes())
        else:  # 1, 2, 4: big-endian bit packing within each byte
            per = 8 // depth
            out = bytearray((len(r) + per - 1) // per)
            for i, v in enumerate(r):
                out[i // per] |= int(v) << (8 - depth * (i % per + 1))
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]  # (x0, y0, dx, dy)


def png(name, samples, depth, color_type, plte=None, trns=None, interlace=False):
    """samples: (H, W, channels) array of sample values."""
    h, w, c = samples.shape
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for row in pack_rows(sub.reshape(sub.shape[0], -1), depth):
                raw += b"\x00" + row
    else:
        for row in pack_rows(samples.reshape(h, -1), depth):
            raw += b"\x00" + row
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if plte is not None:
        data += chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9))
    data += chunk(b"IEND", b"")
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def expect(path):
    """Pillow's decoded RGB next to the file: NAME.npy."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    np.save(os.path.splitext(path)[0] + ".npy", rgb)


def make_pngs(rng):
    h, w = 11, 14
    rgb8 = rng.integers(0, 256, (h, w, 3))
    rgb16 = rng.integers(0, 65536, (h, w, 3))
    alpha8 = rng.integers(0, 256, (h, w, 1))
    alpha16 = rng.integers(0, 65536, (h, w, 1))
    gray8 = rng.integers(0, 256, (h, w, 1))
    # 16-bit gray: mostly small values, so Pillow's clip to 255 (mode I ->
    # RGB) and a high-byte rule would differ visibly
    gray16 = rng.integers(0, 600, (h, w, 1))
    gray16[0, :4, 0] = [0, 255, 256, 65535]
    pal = rng.integers(0, 256, (16, 3))
    idx = rng.integers(0, 16, (h, w, 1))
    cases = [
        ("png_rgb8.png", rgb8, 8, 2, {}),
        ("png_rgb16.png", rgb16, 16, 2, {}),
        ("png_rgba8.png", np.concatenate([rgb8, alpha8], 2), 8, 6, {}),
        ("png_rgba16.png", np.concatenate([rgb16, alpha16], 2), 16, 6, {}),
        ("png_gray8.png", gray8, 8, 0, {}),
        ("png_gray16.png", gray16, 16, 0, {}),
        ("png_gray1.png", gray8 & 1, 1, 0, {}),
        ("png_gray2.png", gray8 & 3, 2, 0, {}),
        ("png_gray4.png", gray8 & 15, 4, 0, {}),
        ("png_graya8.png", np.concatenate([gray8, alpha8], 2), 8, 4, {}),
        ("png_graya16.png", np.concatenate([gray16 * 97, alpha16], 2), 16, 4, {}),
        ("png_gray_trns.png", gray8, 8, 0, {"trns": struct.pack(">H", int(gray8[0, 0, 0]))}),
        ("png_rgb_trns.png", rgb8, 8, 2, {"trns": struct.pack(">HHH", *map(int, rgb8[0, 0]))}),
        ("png_pal8.png", idx, 8, 3, {"plte": pal}),
        ("png_pal4.png", idx, 4, 3, {"plte": pal}),
        ("png_pal_trns.png", idx, 8, 3, {"plte": pal, "trns": bytes(range(0, 160, 20))}),
        ("png_interlaced.png", rgb8, 8, 2, {"interlace": True}),
        ("png_interlaced16.png", rgb16, 16, 2, {"interlace": True}),
        ("png_interlaced_pal.png", idx, 4, 3, {"plte": pal, "interlace": True}),
        ("png_1x1.png", rgb8[:1, :1], 8, 2, {}),
    ]
    for name, samples, depth, ct, kw in cases:
        expect(png(name, samples, depth, ct, **kw))
    return rgb8


def make_jpegs(rng):
    # a smooth picture with edges, 33 x 45: odd sizes exercise the partial MCUs
    y, x = np.mgrid[0:33, 0:45]
    img = np.stack([x * 5 + y, 200 - y * 4 + (x // 7) * 9, (x * y) % 256], 2)
    img = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(img, "RGB")
    cases = [
        ("jpg_baseline.jpg", im, {"quality": 85}),  # 4:2:0
        ("jpg_444.jpg", im, {"quality": 90, "subsampling": 0}),
        ("jpg_422.jpg", im, {"quality": 90, "subsampling": 1}),
        ("jpg_progressive.jpg", im, {"quality": 80, "progressive": True}),
        ("jpg_gray.jpg", im.convert("L"), {"quality": 85}),
    ]
    for name, src, kw in cases:
        path = os.path.join(OUT, name)
        src.save(path, "JPEG", **kw)
        expect(path)
    im.convert("CMYK").save(os.path.join(OUT, "bad_cmyk.jpg"), "JPEG", quality=80)
    return os.path.join(OUT, "jpg_baseline.jpg")


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def make_broken(png_path, jpg_path):
    good_png = open(png_path, "rb").read()
    good_jpg = open(jpg_path, "rb").read()
    write("bad_empty.png", b"")
    write("bad_text.png", b"this is not an image\n")
    write("bad_truncated.png", good_png[: len(good_png) // 2])
    write("bad_truncated.jpg", good_jpg[: len(good_jpg) // 2])
    write("bad_header_only.jpg", good_jpg[:20])
    # a flipped byte inside the IDAT data: libpng reports a CRC error
    corrupt = bytearray(good_png)
    corrupt[len(good_png) - 30] ^= 0xFF
    write("bad_crc.png", bytes(corrupt))
    # huge dimensions: IHDR says 20000 x 20000 (400 Mpixels), no pixel data
    huge = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    huge += chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    write("bad_huge.png", huge)
    # a JPEG whose SOF says 30000 x 30000
    sof = good_jpg.find(b"\xff\xc0")
    big = bytearray(good_jpg)
    big[sof + 5: sof + 9] = struct.pack(">HH", 30000, 30000)
    write("bad_huge.jpg", bytes(big))
    # corrupt entropy-coded data in the middle of a JPEG: libjpeg warns
    # ("Corrupt JPEG data"), Pillow decodes garbage; orch refuses
    garbled = bytearray(good_jpg)
    for i in range(len(good_jpg) // 2, len(good_jpg) // 2 + 40):
        garbled[i] = 0xFF if i % 2 else 0xD9
    write("bad_garbled.jpg", bytes(garbled))


def make_processor_sources():
    """The processor fixtures' source images as PNG (8-bit RGB)."""
    for name in ("proc_src_13x17", "proc_img_8x12"):
        src = np.load(os.path.join(ROOT, "tests", "data", name + ".npy")).astype(np.uint8)
        png(name + ".png", src, 8, 2)


def make_example():
    """pipelines/data/shapes: train/<class>/NN.jpg (ImageFolder) and
    eval/NN.jpg + eval.csv (names as labels). 56 x 56 is the tiny tower's
    default size (3136 pixels, the hub's min_pixels): no resize."""
    from PIL import ImageDraw

    base = os.path.join(ROOT, "pipelines", "data", "shapes")
    rng = np.random.default_rng(56)
    classes = ["disc", "square", "triangle"]

    def draw(kind):
        bg = tuple(int(v) for v in rng.integers(0, 90, 3))
        fg = tuple(int(v) for v in rng.integers(150, 256, 3))
        im = Image.new("RGB", (56, 56), bg)
        d = ImageDraw.Draw(im)
        r = int(rng.integers(10, 20))
        cx, cy = (int(v) for v in rng.integers(r + 2, 56 - r - 2, 2))
        if kind == "disc":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
        elif kind == "square":
            d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
        else:
            d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
        noise = rng.integers(-10, 11, (56, 56, 3))
        return Image.fromarray(np.clip(np.asarray(im, dtype=np.int64) + noise, 0, 255).astype(np.uint8))

    for c in classes:
        os.makedirs(os.path.join(base, "train", c), exist_ok=True)
        for i in range(16):
            draw(c).save(os.path.join(base, "train", c, "%02d.jpg" % i), "JPEG", quality=90)
    os.makedirs(os.path.join(base, "eval"), exist_ok=True)
    rows = ["file,label"]
    for i in range(12):
        c = classes[i % 3]
        draw(c).save(os.path.join(base, "eval", "%02d.jpg" % i), "JPEG", quality=90)
        rows.append("%02d.jpg,%s" % (i, c))
    with open(os.path.join(base, "eval.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


# (fixture, min_pixels, max_pixels): downscaled, upscaled, rounded only
PROCESSED = [("jpg_baseline.jpg", 16, 400), ("png_rgb8.png", 256, 1024),
             ("jpg_progressive.jpg", 16, 12845056)]


def make_processed():
    """The whole path from a file: Pillow's decode, then the Hugging Face
    processor's math as scripts/make_format_fixtures.py replicates it
    (smart_resize, PIL bicubic, rescale/normalize, patches) for the tiny
    tower (patch 2, merge 2, temporal 2): proc_NAME_MIN_MAX_{pv,grid}.npy."""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_format_fixtures as hf

    for name, lo, hi in PROCESSED:
        with Image.open(os.path.join(OUT, name)) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        h, w = hf.smart_resize(rgb.shape[0], rgb.shape[1], hf.P * hf.M, lo, hi)
        pv, grid = hf.hf_pixel_values(hf.pil_resize(rgb, h, w))
        stem = "proc_%s_%d_%d" % (os.path.splitext(name)[0], lo, hi)
        np.save(os.path.join(OUT, stem + "_pv.npy"), pv)
        np.save(os.path.join(OUT, stem + "_grid.npy"), grid)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(12)
    make_pngs(rng)
    jpg = make_jpegs(rng)
    make_broken(os.path.join(OUT, "png_rgb8.png"), jpg)
    make_processor_sources()
    make_processed()
    make_example()


if __name__ == "__main__":
    main()
