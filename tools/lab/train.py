#!/usr/bin/python3
"""The lab's Python training loop (C2's setting), on the same Fashion-MNIST files trainlab reads,
for comparing learning curves with trainlab's c2 (tools/seed_table.sh runs both).

Data as trainlab prepares it (plugins/data/fashion_mnist.h): each 28x28 image zero-padded by 2 to
32x32 and copied to 3 channels; then the lab's transforms: RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor, Normalize(mean 0.2190, std 0.3318). The lab's ResNet-18 and its
SGD (lr 0.1, momentum 0.9, weight decay 5e-4), cross-entropy, a shuffling DataLoader, the first
--batches batches of each epoch. Epoch loss = mean of the batch losses; top-1 = correct / seen.

    /usr/bin/python3 tools/lab/train.py --seed 3 --epochs 2 --batches 20 --json out.json
Needs Debian's python3-torch and python3-torchvision (1.13 / 0.14).
"""
import argparse
import gzip
import json
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batches", type=int, default=20, help="batches per epoch")
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch_norm", type=int, default=1)
    ap.add_argument("--data_dir", default=FASHION_DIR)
    ap.add_argument("--json", help="write the per-epoch results here")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((MEAN,) * 3, (STD,) * 3)])
    train = PaddedFashionMnist(a.data_dir, "train", transform)
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch_size, shuffle=True, num_workers=0)
    model = ResNet18(batch_norm=bool(a.batch_norm))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()
    epochs = []
    for epoch in range(a.epochs):
        model.train()
        losses, correct, seen, start = [], 0, 0, time.perf_counter()
        for i, (x, y) in enumerate(loader):
            if i == a.batches:
                break
            opt.zero_grad()
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            correct += (out.argmax(1) == y).sum().item()
            seen += y.numel()
        e = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "top1": 100.0 * correct / seen,
             "seconds": time.perf_counter() - start}
        epochs.append(e)
        print("epoch %d: loss %.4f top-1 %.2f%% (%.1f s)" % (e["epoch"], e["loss"], e["top1"], e["seconds"]),
              flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"program": "python", "torch": torch.__version__, "seed": a.seed, "epochs": epochs}, f)


if __name__ == "__main__":
    main()
