#!/usr/bin/python3
"""The lab's Python training loop (C2's setting), on the same Fashion-MNIST files trainlab reads,
for comparing learning curves with trainlab's c2 (tools/seed_table.sh runs both).

Data as trainlab prepares it (plugins/data/fashion_mnist.h): each 28x28 image zero-padded by 2 to
32x32 and copied to 3 channels; then the lab's transforms: RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor, Normalize(mean 0.2190, std 0.3318). The lab's ResNet-18 and its
SGD (lr 0.1, momentum 0.9, weight decay 5e-4), cross-entropy, a shuffling DataLoader, the first
--batches batches of each epoch. Epoch loss = mean of the batch losses; top-1 = correct / seen.

    /usr/bin/python3 tools/lab/train.py --seed 3 --epochs 2 --batches 20 --json out.json

The recipe flags mirror trainlab's (docs/time_to_accuracy.md), with the same formulas as
core/lr_schedule.h, set per batch: --lr, --lr_schedule=constant|step|cosine|onecycle,
--warmup_epochs, --lr_milestones, --lr_gamma, --label_smoothing; --evaluate (eval mode, no
gradients, batches of 512, timed apart from training), --tta=flip, --target_accuracy; and the
fast recipe's other levers: --nesterov (SGD with Nesterov momentum), --channels_last, --amp_bf16
(forward and loss under torch.autocast("cpu", torch.bfloat16), evaluation too, as trainlab's
amp_bf16 strategy does); --compile=MODE (torch.compile, PyTorch >= 2.0). Each epoch's JSON has the
per-batch training times (batch_train_s: zero_grad, forward, loss, backward, step).
Needs Debian's python3-torch and python3-torchvision (1.13 / 0.14).
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet18 import ResNet18  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2190, 0.3318


def read_idx(path, header):
    with gzip.open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=header)


class PaddedFashionMnist(torch.utils.data.Dataset):
    def __init__(self, root, split, transform):
        prefix = "train" if split == "train" else "t10k"
        images = read_idx(os.path.join(root, prefix + "-images-idx3-ubyte.gz"), 16)
        self.labels = read_idx(os.path.join(root, prefix + "-labels-idx1-ubyte.gz"), 8).astype(np.int64)
        images = images.reshape(-1, 28, 28)
        padded = np.zeros((images.shape[0], 32, 32, 3), dtype=np.uint8)
        padded[:, 2:30, 2:30, :] = images[:, :, :, None]
        self.images = padded
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def learning_rate(a, step, steps_per_epoch):
    """The rate of global step `step` (from 0), as core/lr_schedule.h computes it."""
    total = a.epochs * steps_per_epoch
    warmup = math.floor(a.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return a.lr * (step + 1) / warmup
    if a.lr_schedule == "step":
        epoch = step / steps_per_epoch
        return a.lr * a.lr_gamma ** sum(1 for m in a.lr_milestones if epoch >= m)
    if a.lr_schedule == "cosine":
        t = min(1.0, (step - warmup) / max(1.0, total - warmup))
        return a.lr * 0.5 * (1 + math.cos(math.pi * t))
    if a.lr_schedule == "onecycle":
        return a.lr * max(0.0, (total - step) / max(1.0, total - warmup))
    return a.lr


def autocast(bf16):
    """torch.autocast to bfloat16 on the CPU when `bf16`, else nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def evaluate(model, loader, tta_flip, memory_format=torch.contiguous_format, bf16=False):
    """Test loss and top-1 in eval mode without gradients; --tta=flip averages the mirror's logits."""
    model.eval()
    start, loss, correct, seen = time.perf_counter(), 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x = x.contiguous(memory_format=memory_format)
            with autocast(bf16):
                out = model(x).float()
                if tta_flip:
                    out = (out + model(x.flip(3)).float()) / 2
            loss += torch.nn.functional.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            seen += y.numel()
    model.train()
    return {"loss": loss / seen, "top1": 100.0 * correct / seen, "samples": seen,
            "seconds": time.perf_counter() - start}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batches", type=int, default=20, help="batches per epoch (0: every batch)")
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch_norm", type=int, default=1)
    ap.add_argument("--data_dir", default=FASHION_DIR)
    ap.add_argument("--json", help="write the per-epoch results here")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--lr_schedule", choices=["constant", "step", "cosine", "onecycle"], default="constant")
    ap.add_argument("--warmup_epochs", type=float, default=0)
    ap.add_argument("--lr_milestones", type=lambda v: [float(m) for m in v.split(",") if m], default=[])
    ap.add_argument("--lr_gamma", type=float, default=0.1)
    ap.add_argument("--label_smoothing", type=float, default=0)
    ap.add_argument("--evaluate", action="store_true")
    ap.add_argument("--tta", choices=["none", "flip"], default="none")
    ap.add_argument("--target_accuracy", type=float, default=0)
    ap.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum (sgd_nesterov)")
    ap.add_argument("--channels_last", action="store_true", help="model and batches in NHWC (channels_last)")
    ap.add_argument("--amp_bf16", action="store_true", help="forward and loss under bf16 autocast (amp_bf16)")
    ap.add_argument("--compile", choices=["none", "default", "reduce-overhead", "max-autotune"], default="none",
                    help="torch.compile(model, mode=...) (PyTorch >= 2.0; the first batches compile)")
    a = ap.parse_args()
    a.evaluate = a.evaluate or a.target_accuracy > 0

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((MEAN,) * 3, (STD,) * 3)])
    train = PaddedFashionMnist(a.data_dir, "train", transform)
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch_size, shuffle=True, num_workers=0)
    test_loader = None
    if a.evaluate:
        plain = T.Compose([T.ToTensor(), T.Normalize((MEAN,) * 3, (STD,) * 3)])
        test_loader = torch.utils.data.DataLoader(PaddedFashionMnist(a.data_dir, "test", plain),
                                                  batch_size=max(a.batch_size, 512), shuffle=False)
    model = ResNet18(batch_norm=bool(a.batch_norm))
    memory_format = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    step_model = model
    if a.compile != "none":
        if not hasattr(torch, "compile"):
            sys.exit("train.py: --compile needs PyTorch >= 2.0 (this is %s)" % torch.__version__)
        step_model = torch.compile(model, mode=a.compile)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4,
                          nesterov=a.nesterov)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    steps_per_epoch = min(a.batches, len(loader)) if a.batches > 0 else len(loader)
    epochs, target, train_s, wall_s = [], None, 0.0, 0.0
    for epoch in range(a.epochs):
        model.train()
        losses, correct, seen, start, batch_s = [], 0, 0, time.perf_counter(), []
        for i, (x, y) in enumerate(loader):
            if a.batches > 0 and i == a.batches:
                break
            for group in opt.param_groups:
                group["lr"] = learning_rate(a, epoch * steps_per_epoch + i, steps_per_epoch)
            # The training time of the batch, as trainlab's c2 times it: forward, loss, backward and
            # the optimizer's step (the CPU runs them synchronously; the loss is read after).
            t0 = time.perf_counter()
            opt.zero_grad()
            with autocast(a.amp_bf16):
                out = step_model(x.contiguous(memory_format=memory_format))
                loss = criterion(out, y)
            loss.backward()
            opt.step()
            batch_s.append(time.perf_counter() - t0)
            losses.append(loss.item())
            correct += (out.argmax(1) == y).sum().item()
            seen += y.numel()
        e = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "top1": 100.0 * correct / seen,
             "seconds": time.perf_counter() - start, "batch_train_s": batch_s}
        train_s += e["seconds"]
        wall_s += e["seconds"]
        epochs.append(e)
        print("epoch %d: loss %.4f top-1 %.2f%% (%.1f s)" % (e["epoch"], e["loss"], e["top1"], e["seconds"]),
              flush=True)
        if test_loader is not None:
            e["test"] = evaluate(model, test_loader, a.tta == "flip", memory_format, a.amp_bf16)
            wall_s += e["test"]["seconds"]
            print("  test loss %.4f top-1 %.2f%% (%d images, %.1f s)" % (
                e["test"]["loss"], e["test"]["top1"], e["test"]["samples"], e["test"]["seconds"]), flush=True)
            if a.target_accuracy > 0 and e["test"]["top1"] >= a.target_accuracy:
                target = {"top1": a.target_accuracy, "epoch": epoch + 1, "train_s": train_s, "wall_s": wall_s}
                print("target reached after epoch %d: training %.1f s, wall %.1f s" % (epoch + 1, train_s, wall_s))
                break
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"program": "python", "torch": torch.__version__, "seed": a.seed, "epochs": epochs,
                       "settings": vars(a), "target": target}, f)


if __name__ == "__main__":
    main()
