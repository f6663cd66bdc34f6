"""CIFAR-style residual networks: 3x3 stride-1 stem, no max-pool, global average pool + linear.

- ResNet-18: He et al. 2016, BasicBlock [2, 2, 2, 2].
- PreActResNet-18/-50: He et al. 2016 (identity mappings), pre-activation basic [2, 2, 2, 2] and
  bottleneck [3, 4, 6, 3] blocks; PreActResNet-50 is the mollification paper's network.
- PreActResNet-18 / PreActWideResNet-18 (widths x2, 128..1024) as the NFM release builds them
  (erichson/NFM src/cifar_models/preresnet.py): the shortcut, identity or projection, takes the
  activated input relu(bn1(x)); NFM trains the wide one on CIFAR-100.
- WRN-28-10: Zagoruyko & Komodakis 2016, pre-activation blocks, widths 16 x (1, 10, 20, 40).
- small_resnet: a three-stage ResNet-8 (stages at 16, 8, 4 px) for the CPU demo.

Every network is `stem -> stages -> head`, with `stages` an nn.ModuleList, so that methods that
act between stages (manifold mixup, spatial smoothing) hook in without copying a network.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _shortcut(cin: int, cout: int, stride: int, with_bn: bool) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, stride=stride, bias=False)]
    if with_bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Post-activation basic block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride, with_bn=True)
        self.dropout: nn.Module = nn.Identity()  # MC dropout hooks in here (models/smoothing.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv-BN-ReLU-conv + shortcut.

    The shortcut sees the raw input x (the mollification reference's presnet.py); subclasses
    choose otherwise in `shortcut_input`."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.shortcut = _shortcut(cin, cout, stride, with_bn=False)
        self.dropout: nn.Module = nn.Identity()

    def shortcut_input(self, x: torch.Tensor, activated: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        shortcut = self.shortcut(self.shortcut_input(x, activated))
        out = self.conv2(self.dropout(F.relu(self.bn2(self.conv1(activated)))))
        return out + shortcut


class NFMPreActBlock(PreActBlock):
    """The NFM release's pre-activation block: the shortcut, identity and projection alike, takes
    relu(bn1(x))."""

    def shortcut_input(self, x: torch.Tensor, activated: torch.Tensor) -> torch.Tensor:
        return activated


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand x4; shortcut of the raw
    input. MC dropout sits after the 3x3 conv's BN-ReLU, before the last 1x1 (as the spatial-
    smoothing reference's preresnet_mcdo_block.py Bottleneck)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes, stride)
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), nn.Conv2d(planes, cout, 1, bias=False)
        self.shortcut = _shortcut(cin, cout, stride, with_bn=False)
        self.dropout: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(self.dropout(F.relu(self.bn3(out))))
        return out + self.shortcut(x)


class WideBlock(PreActBlock):
    """WRN block (Zagoruyko & Komodakis 2016): a pre-activation block whose 1x1 projection
    shortcut takes the activated input."""

    def shortcut_input(self, x: torch.Tensor, activated: torch.Tensor) -> torch.Tensor:
        return x if isinstance(self.shortcut, nn.Identity) else activated


class ResidualNet(nn.Module):
    """stem -> stages (nn.ModuleList) -> head. Post-activation networks have BN-ReLU in the stem;
    `head_norm` adds a BN-ReLU before pooling (WRN; the mollification reference's PreActResNets
    pool the last block's output directly)."""

    def __init__(self, block: type[nn.Module], depths: list[int], widths: list[int], num_classes: int,
                 stem_width: int, pre_activation: bool, head_norm: bool = False, first_stride: int = 1):
        super().__init__()
        self.stem = nn.Sequential(conv3x3(3, stem_width))
        if not pre_activation:
            self.stem.extend([nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True)])
        cin = stem_width
        stages = []
        for i, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for j in range(depth):
                stride = (2 if i > 0 else first_stride) if j == 0 else 1
                blocks.append(block(cin, width, stride))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        head: list[nn.Module] = [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)] if head_norm else []
        head += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def small_resnet(num_classes: int) -> ResidualNet:
    # the first stage already halves the resolution: ~4x cheaper than a stride-1 ResNet-8 on CPU
    return ResidualNet(BasicBlock, [1, 1, 1], [32, 64, 128], num_classes, stem_width=16, pre_activation=False, first_stride=2)


def resnet18(num_classes: int) -> ResidualNet:
    return ResidualNet(BasicBlock, [2, 2, 2, 2], [64, 128, 256, 512], num_classes, stem_width=64, pre_activation=False)


def preact_resnet18(num_classes: int) -> ResidualNet:
    return ResidualNet(PreActBlock, [2, 2, 2, 2], [64, 128, 256, 512], num_classes, stem_width=64, pre_activation=True)


def preact_resnet18_nfm(num_classes: int) -> ResidualNet:
    return ResidualNet(NFMPreActBlock, [2, 2, 2, 2], [64, 128, 256, 512], num_classes, stem_width=64, pre_activation=True)


def preact_wide_resnet18_nfm(num_classes: int) -> ResidualNet:
    return ResidualNet(NFMPreActBlock, [2, 2, 2, 2], [128, 256, 512, 1024], num_classes, stem_width=128, pre_activation=True)


def preact_resnet50(num_classes: int) -> ResidualNet:
    return ResidualNet(PreActBottleneck, [3, 4, 6, 3], [64, 128, 256, 512], num_classes, stem_width=64, pre_activation=True)


def wrn28_10(num_classes: int) -> ResidualNet:
    return ResidualNet(WideBlock, [4, 4, 4], [160, 320, 640], num_classes, stem_width=16, pre_activation=True, head_norm=True)
