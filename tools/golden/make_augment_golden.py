#!/usr/bin/python3
"""Writes tests/testdata/golden/augment_golden.json: torchvision's output for the lab's training
transform on one formula-made image, for given crop offsets and flips, for trainlab's
augmentation golden test (plugins/data/augment_golden_test.cc) to match.

Run with Debian's python3-torchvision (0.14.1), from the repository root, on the portable kernels
(tools/golden/kernels.py; the file records the set in use):
    ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 \
      /usr/bin/python3 tools/golden/make_augment_golden.py > tests/testdata/golden/augment_golden.json

The transform is the lab's RandomCrop(32, padding=4) + RandomHorizontalFlip() + ToTensor() +
Normalize(CIFAR-10 mean, std), with the random choices fixed: torchvision's RandomCrop pads by 4
with zeros and takes the 32x32 window at (top=dy, left=dx); the flip mirrors left-right. The
functional forms below are exactly what those transforms call once their choices are drawn.
Image (HWC uint8): v[h][w][c] = (7 h + 13 w + 29 c + 3 h w) mod 256.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernels import kernels  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)
CASES = [(4, 4, False), (4, 4, True), (0, 8, False), (8, 0, True), (2, 7, True), (8, 8, False)]


def image():
    h, w, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return ((7 * h + 13 * w + 29 * c + 3 * h * w) % 256).astype(np.uint8)


def main():
    img = Image.fromarray(image())
    cases = []
    for dx, dy, flip in CASES:
        t = TF.crop(TF.pad(img, 4, fill=0), top=dy, left=dx, height=32, width=32)
        if flip:
            t = TF.hflip(t)
        out = TF.normalize(TF.to_tensor(t), MEAN, STD)  # (3, 32, 32) float32
        cases.append({"dx": dx, "dy": dy, "flip": flip,
                      "values": [float("%.8g" % v) for v in out.flatten().tolist()]})
    json.dump({"generator": "tools/golden/make_augment_golden.py", "torchvision": torchvision.__version__,
               "kernels": kernels(),
               "image": "v[h][w][c] = (7h + 13w + 29c + 3hw) mod 256", "mean": MEAN, "std": STD,
               "cases": cases}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
