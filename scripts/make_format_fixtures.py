#!/usr/bin/python3
"""Regenerates the small committed fixtures in tests/data/ used by
tests/test_formats_*.c. Needs Debian's python3-numpy, python3-torch (bf16
bits) and python3-pil (bicubic reference); run it with /usr/bin/python3 from
the repository root:

    /usr/bin/python3 scripts/make_format_fixtures.py

The build and the tests never run Python; they only read these files.
Everything is deterministic (fixed seeds), so rerunning gives identical bytes
with the same numpy/Pillow versions (written with numpy 1.24, Pillow 9.4).
"""
import json
import math
import os
import struct

import numpy as np
import torch
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")

# --------------------------------------------------------------- safetensors


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw little-endian bytes).
    Lays the file out like the reference writer: "__metadata__" first,
    tensors sorted by (dtype size descending, name), header padded with
    spaces to a multiple of 8."""
    size = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1}
    order = sorted(tensors, key=lambda t: (-size[t[1]], t[0]))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in order:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in order:
            f.write(raw)


def make_safetensors():
    conv = (np.arange(48, dtype=np.float32) * 0.25 - 6.0).reshape(2, 3, 2, 2, 2)
    bf16 = torch.tensor([1.0, -2.5, 3.140625, 2.0 ** -10], dtype=torch.bfloat16)
    f16 = np.array([0.5, -65504.0, 2.0 ** -24], dtype="<f2")
    i8 = np.array([1, -2], dtype=np.int8)
    write_safetensors(
        os.path.join(OUT, "st_small.safetensors"),
        [
            ("model.visual.patch_embed.proj.weight", "F32", conv.shape, conv.astype("<f4").tobytes()),
            ("visual.blocks.0.norm1.weight", "BF16", (4,), bf16.view(torch.int16).numpy().astype("<i2").tobytes()),
            ("visual.merger.mlp.2.bias", "F16", (3,), f16.tobytes()),
            ("lm_head.int_scale", "I8", (2,), i8.tobytes()),
        ],
        {"format": "pt", "producer": "make_format_fixtures.py"},
    )

# ----------------------------------------------------------------------- npy


def make_npy():
    def save(name, arr, version=None):
        path = os.path.join(OUT, name)
        if version is None:
            np.save(path, arr)
        else:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, arr, version=version)

    save("npy_f4_2x3.npy", (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3))
    save("npy_f8.npy", np.array([0.1, -2.5, 1e30], dtype=np.float64))
    save("npy_i8_grid.npy", np.array([[1, 2, 4], [1, 4, 2]], dtype=np.int64))
    save("npy_i4.npy", np.array([3, -1, 7], dtype=np.int32))
    save("npy_u1.npy", np.array([[0, 255], [7, 128]], dtype=np.uint8))
    save("npy_v2.npy", np.array([[1.5, -2.0], [0.25, 8.0]], dtype=np.float32), version=(2, 0))
    save("npy_scalar.npy", np.array(3.5, dtype=np.float32))
    save("npy_empty.npy", np.zeros((0, 3), dtype=np.float32))
    # refused ones
    save("npy_fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    save("npy_be.npy", np.array([1.0, 2.0], dtype=">f4"))
    save("npy_f2.npy", np.array([1.0, 2.0], dtype="<f2"))

# ----------------------------------------------------------------- processor

# the tiny model's processor: P 2, tp 2, m 2 (factor 4); CLIP mean/std
P, TP, M = 2, 2, 2
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
RESCALE = 0.00392156862745098


def smart_resize(height, width, factor, min_pixels, max_pixels):
    """transformers' Qwen2-VL smart_resize (the version in the spec)."""
    if height < factor or width < factor:
        raise ValueError("too small")
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def hf_pixel_values(img_u8):
    """transformers' rescale(), normalize() and the reshape/transpose of
    Qwen2VLImageProcessor._preprocess, for one HxWx3 uint8 image."""
    image = (img_u8.astype(np.float64) * RESCALE).astype(np.float32)
    mean = np.array(MEAN, dtype=image.dtype)
    std = np.array(STD, dtype=image.dtype)
    image = (image - mean) / std                 # channels last
    image = image.transpose(2, 0, 1)             # to channels first
    patches = np.array([image])
    if patches.shape[0] % TP != 0:
        repeats = np.repeat(patches[-1][np.newaxis], TP - 1, axis=0)
        patches = np.concatenate([patches, repeats], axis=0)
    channel = patches.shape[1]
    grid_t = patches.shape[0] // TP
    grid_h, grid_w = image.shape[1] // P, image.shape[2] // P
    patches = patches.reshape(grid_t, TP, channel, grid_h // M, M, P, grid_w // M, M, P)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channel * TP * P * P)
    return flat.astype(np.float32), np.array([[grid_t, grid_h, grid_w]], dtype=np.int64)


def pil_resize(img_u8, h, w):
    return np.asarray(Image.fromarray(img_u8, "RGB").resize((w, h), resample=Image.BICUBIC))


def make_processor():
    rng = np.random.default_rng(20240611)
    # 1. an image already at a valid size: resize is the identity
    img = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    np.save(os.path.join(OUT, "proc_img_8x12.npy"), img)
    pv, _ = hf_pixel_values(img)
    np.save(os.path.join(OUT, "proc_pv_8x12.npy"), pv)
    # 2. PIL bicubic: down, up, mixed, one axis only
    src = rng.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)
    np.save(os.path.join(OUT, "proc_src_13x17.npy"), src)
    for h, w in [(8, 12), (20, 24), (8, 24), (8, 17), (13, 12)]:
        np.save(os.path.join(OUT, "proc_pil_%dx%d.npy" % (h, w)), pil_resize(src, h, w))
    # 3. the whole processor: smart_resize (min 16, max 96) + PIL + HF math
    h, w = smart_resize(13, 17, P * M, 16, 96)
    pv, grid = hf_pixel_values(pil_resize(src, h, w))
    np.save(os.path.join(OUT, "proc_full_pv.npy"), pv)
    np.save(os.path.join(OUT, "proc_full_grid.npy"), grid)


def main():
    os.makedirs(OUT, exist_ok=True)
    make_safetensors()
    make_npy()
    make_processor()


if __name__ == "__main__":
    main()
