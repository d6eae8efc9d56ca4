#!/usr/bin/python3
"""Checks `--save_model` end to end: Python loads trainlab's saved weights into the lab's
ResNet-18 with `load_state_dict` (strict: every name and shape must match), evaluates the same
Fashion-MNIST test images trainlab evaluated, and compares with trainlab's own numbers.

    bazel-bin/experiments/c2 --dataset=fashion_mnist --epochs=1 --max_batches_per_epoch=5 \\
        --evaluate --save_model=/tmp/w.pt --results_dir=/tmp/r
    /usr/bin/python3 tools/lab/check_saved_model.py /tmp/w.pt /tmp/r/c2.json

Exits 1 when the test loss differs by more than 1e-4 (relative) or top-1 differs at all. Needs
Debian's python3-torch; c2 must have run with --evaluate on Fashion-MNIST (the test images are
read here from the same Debian files, in order, without augmentation).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet18 import ResNet18  # noqa: E402
from train import FASHION_DIR, MEAN, STD, read_idx  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_saved_model.py WEIGHTS.pt RESULTS/c2.json")
    state = torch.load(sys.argv[1])
    results = json.load(open(sys.argv[2]))
    run = results["configs"][0]
    epoch = run["runs"][0]["epochs"][-1]
    if "test" not in epoch:
        sys.exit("check_saved_model.py: %s has no test results (run c2 with --evaluate)" % sys.argv[2])
    want = epoch["test"]
    batch_norm = run.get("model", "resnet18") != "resnet18_no_bn"
    batch_size = results["settings"]["batch_size"]

    model = ResNet18(batch_norm=batch_norm)
    model.load_state_dict(state)  # strict: a missing or unexpected name fails here
    model.eval()
    torch.set_num_threads(os.cpu_count())

    images = read_idx(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28)
    labels = torch.from_numpy(read_idx(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz"), 8).astype("int64"))
    n = want["samples"]
    x = torch.zeros(n, 3, 32, 32)
    x[:, :, 2:30, 2:30] = torch.from_numpy(images[:n].copy()).float().div(255).unsqueeze(1)
    x = (x - MEAN) / STD
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            logits = model(x[i:i + batch_size])
            y = labels[i:i + batch_size]
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    loss, top1 = loss_sum / n, 100.0 * correct / n
    print("trainlab: test loss %.6f, top-1 %.2f%% on %d images" % (want["loss"], want["top1"], n))
    print("python:   test loss %.6f, top-1 %.2f%% (weights from %s, %d tensors, strict load)"
          % (loss, top1, sys.argv[1], len(state)))
    ok = abs(loss - want["loss"]) <= 1e-4 * max(1.0, abs(want["loss"])) and abs(top1 - want["top1"]) < 1e-9
    print("round trip:", "OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
