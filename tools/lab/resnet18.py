"""The lab's ResNet-18 for CIFAR, as the lab's Python code defines it (the common CIFAR form of
He et al. 2016, as in kuangliu/pytorch-cifar): 3x3 stem without max-pool, BasicBlocks 64/128/256/
512, 1x1 conv + BN shortcuts, global average pool, linear 512 -> 10. Parameter names are the ones
trainlab's C++ model uses (conv1, bn1, layer1.0.conv1, ..., layer2.0.shortcut.0, linear), so
`load_state_dict` takes what `--save_model` writes.

`batch_norm=False` leaves every BatchNorm out (the lab's C7), as trainlab's resnet18_no_bn does.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, batch_norm=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes) if batch_norm else nn.Identity()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            layers = [nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(planes))
            self.shortcut = nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes=10, batch_norm=True):
        super().__init__()
        self.in_planes = 64
        self.batch_norm = batch_norm
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64) if batch_norm else nn.Identity()
        self.layer1 = self._make_layer(64, 1)
        self.layer2 = self._make_layer(128, 2)
        self.layer3 = self._make_layer(256, 2)
        self.layer4 = self._make_layer(512, 2)
        self.linear = nn.Linear(512, num_classes)

    def _make_layer(self, planes, stride):
        layers = []
        for s in [stride, 1]:
            layers.append(BasicBlock(self.in_planes, planes, s, self.batch_norm))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
