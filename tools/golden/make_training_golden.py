#!/usr/bin/python3
"""Writes tests/testdata/golden/training_golden.json: what PyTorch itself does with the lab's
ResNet-18 (tools/lab/resnet18.py) for a given seed, for trainlab's training golden test
(plugins/models/training_golden_test.cc) to match.

Run with Debian's python3-torch (1.13.1), from the repository root, on the portable kernels
(core/kernels.h: AVX2, which any x86-64 machine of this project has) so that the file does not
depend on the machine that makes it:
    ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 \
      /usr/bin/python3 tools/golden/make_training_golden.py > tests/testdata/golden/training_golden.json
The file records the kernel set that was in use ("kernels", read back from ATen and oneDNN), and
the golden test pins the same set before it compares.

For each of {with, without batch norm} x {SGD, Adadelta}, with torch.manual_seed(SEED) and one
intra-op thread:
  init     per parameter: CRC-32 of its float32 bytes (exact equality), sum, L2 norm
  loss     cross-entropy of each of STEPS training steps on one fixed batch
  grad     per parameter: L2 norm of the first step's gradient
  buffers  per BatchNorm buffer after the first step: sum and L2 norm
The batch is made by a formula both languages compute exactly (integer arithmetic, one IEEE
division): x.flat[i] = ((37 i + 11) mod 101) / 50 - 1 for a (BATCH, 3, 32, 32) batch,
label[b] = (3 b + 1) mod 10. Settings are the lab's: lr 0.1, weight decay 5e-4, momentum 0.9.
"""
import json
import os
import sys
import zlib

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from resnet18 import ResNet18  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernels import kernels  # noqa: E402

SEED = 7
BATCH = 8
STEPS = 8
LR, WD, MOM = 0.1, 5e-4, 0.9
OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=LR, momentum=MOM, weight_decay=WD),
    "adadelta": lambda p: torch.optim.Adadelta(p, lr=LR, weight_decay=WD),
}


def batch():
    i = torch.arange(BATCH * 3 * 32 * 32, dtype=torch.int64)
    x = (((i * 37 + 11) % 101).double() / 50.0 - 1.0).float().reshape(BATCH, 3, 32, 32)
    y = (torch.arange(BATCH, dtype=torch.int64) * 3 + 1) % 10
    return x, y


def crc(t):
    return zlib.crc32(t.detach().contiguous().numpy().tobytes())


def run(batch_norm, optimizer):
    torch.manual_seed(SEED)
    model = ResNet18(batch_norm=batch_norm)
    init = [{"name": n, "crc32": crc(p), "sum": p.double().sum().item(), "norm": p.double().norm().item()}
            for n, p in model.named_parameters()]
    opt = OPTIMIZERS[optimizer](model.parameters())
    x, y = batch()
    model.train()
    losses, grads, buffers = [], [], []
    for step in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if step == 0:
            grads = [{"name": n, "norm": p.grad.double().norm().item()} for n, p in model.named_parameters()]
        opt.step()
        if step == 0:
            buffers = [{"name": n, "sum": b.double().sum().item(), "norm": b.double().norm().item()}
                       for n, b in model.named_buffers() if b.is_floating_point()]
        losses.append(loss.item())
    return {"batch_norm": batch_norm, "optimizer": optimizer, "init": init, "loss": losses,
            "grad_norm": grads, "buffers": buffers}


def main():
    torch.set_num_threads(1)
    runs = [run(bn, opt) for bn in (True, False) for opt in OPTIMIZERS]
    json.dump({"generator": "tools/golden/make_training_golden.py", "torch": torch.__version__,
               "seed": SEED, "batch": BATCH, "steps": STEPS, "threads": 1, "kernels": kernels(),
               "lr": LR, "weight_decay": WD, "momentum": MOM, "runs": runs}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
