#!/usr/bin/python3
"""make_shard_fixtures.py - the .npy set of the shapes images
(pipelines/data/shapes/train) as the Hugging Face processor makes it, for
tests/test_shards.c's folder / shards / .npy bit-identity test.

Run with Debian's python3 (PIL 9.4, numpy), from the repository root:
    /usr/bin/python3 scripts/make_shard_fixtures.py
Writes tests/data/shards/shapes_{pv,grid,labels}.npy.

Each image is decoded by Pillow (Image.open(f).convert("RGB")), resized by
smart_resize (factor P*m = 4, min_pixels 16, max_pixels 64: 56 x 56 becomes
8 x 8) with Pillow's bicubic, then rescaled, normalized and cut into patches
by the reference of scripts/make_format_fixtures.py (transformers' own
formulas; P 2, tp 2, m 2: the tiny tower). The images are in the order of
torchvision's ImageFolder (classes sorted, files sorted); the labels are the
class indices.
"""
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_format_fixtures import P, M, hf_pixel_values, pil_resize, smart_resize  # noqa: E402

SRC = "pipelines/data/shapes/train"
OUT = "tests/data/shards"
MIN_PIXELS, MAX_PIXELS = 16, 64


def main():
    os.makedirs(OUT, exist_ok=True)
    pvs, grids, labels = [], [], []
    classes = sorted(d for d in os.listdir(SRC) if not d.startswith("."))
    for label, cls in enumerate(classes):
        for name in sorted(os.listdir(os.path.join(SRC, cls))):
            img = np.asarray(Image.open(os.path.join(SRC, cls, name)).convert("RGB"))
            h, w = smart_resize(img.shape[0], img.shape[1], P * M, MIN_PIXELS, MAX_PIXELS)
            pv, grid = hf_pixel_values(pil_resize(img, h, w))
            pvs.append(pv)
            grids.append(grid[0])
            labels.append(label)
    np.save(os.path.join(OUT, "shapes_pv.npy"), np.concatenate(pvs).astype(np.float32))
    np.save(os.path.join(OUT, "shapes_grid.npy"), np.array(grids, dtype=np.int64))
    np.save(os.path.join(OUT, "shapes_labels.npy"), np.array(labels, dtype=np.int64))


if __name__ == "__main__":
    main()
