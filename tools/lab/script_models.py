#!/usr/bin/python3
"""Writes TorchScript models for trainlab's `--model=torchscript --model_path=FILE`.

    /usr/bin/python3 tools/lab/script_models.py fixtures tests/testdata/models
        the small test fixtures checked in under tests/testdata/models/:
          tiny_cnn.pt       conv3x3 3->8 + BN + ReLU, conv1x1 8->8, pool, linear 8->10 (trains)
          wrong_classes.pt  the same with 5 outputs (trainlab must refuse it for 10 classes)
          no_forward.pt     a scripted module with an exported method but no forward()
          tiny_dropout.pt   tiny_cnn with dropout (p=0.5) before the linear layer: a resumed run
                            gives the uninterrupted one's bits only if LibTorch's generator is
                            in the checkpoint
    /usr/bin/python3 tools/lab/script_models.py resnet18 OUT.pt [--no_bn] [--seed N]
        the lab's ResNet-18 (tools/lab/resnet18.py), scripted: q1_q4 --model=torchscript on it
        answers 20 / 512 / 11,173,962, and c2 trains it.
Needs Debian's python3-torch (1.13).
"""
import argparse
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet18 import ResNet18  # noqa: E402


class TinyCnn(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.mix = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.mix(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TinyDropout(TinyCnn):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.mix(x))
        return self.fc(self.drop(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))


class NoForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 10)

    @torch.jit.export
    def predict(self, x):
        return self.fc(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["fixtures", "resnet18"])
    ap.add_argument("out")
    ap.add_argument("--no_bn", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    if a.what == "resnet18":
        torch.jit.script(ResNet18(batch_norm=not a.no_bn)).save(a.out)
        print("wrote", a.out)
        return
    os.makedirs(a.out, exist_ok=True)
    torch.jit.script(TinyCnn()).save(os.path.join(a.out, "tiny_cnn.pt"))
    torch.jit.script(TinyCnn(num_classes=5)).save(os.path.join(a.out, "wrong_classes.pt"))
    torch.jit.script(NoForward()).save(os.path.join(a.out, "no_forward.pt"))
    torch.jit.script(TinyDropout()).save(os.path.join(a.out, "tiny_dropout.pt"))
    print("wrote tiny_cnn.pt, wrong_classes.pt, no_forward.pt, tiny_dropout.pt to", a.out)


if __name__ == "__main__":
    main()
