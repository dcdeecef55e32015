"""The CIFAR-10 ResNet of He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
Sec. 4.2, used as the domain classifier whose pooled penultimate layer is the FID space of RGB data.

The paper's CIFAR family has 6n+2 weighted layers: a 3x3 convolution with 16 filters, then three stages
of n basic blocks (two 3x3 convolutions each) with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps
(the first convolution of stages 2 and 3 has stride 2), global average pooling and a linear layer.
Batch normalisation follows every convolution; shortcuts are identities, and where the shape changes
"option A": the input sub-sampled by 2 and zero-padded to the new width, so that shortcuts add no
parameters (Sec. 4.2). The paper reports 8.75 % test error for n=3 (ResNet-20) after 64k iterations of
batch 128 (about 180 epochs), 7.51 % for n=5 and 6.97 % for n=9.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a parameter-free shortcut (He et al. 2016, Fig. 2 and option A)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.extra_channels = stride, out_channels - in_channels

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # zero channels appended
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for ``(B, channels, H, W)`` images; other sizes than ``input_size`` are resized to it.

    ``features(x)`` is the globally pooled 64-d output of the last stage (``num_features``), ``forward``
    the class logits (``head`` applied to the features).

    Args:
        channels: input channels (3 for RGB, 1 for grey).
        num_classes: outputs of the linear head.
        n: blocks per stage; depth 6n+2 (the paper's smallest is n=3, ResNet-20). vidgen's feature
            extractor uses n=1 (ResNet-8) because training time on a CPU grows steeply with depth; see
            ``vidgen.metrics.features`` for the measured cost.
        input_size: the side the network runs at (the paper's 32); larger data is downsampled, which
            bounds the CPU cost of training and of every evaluation.
    """

    num_features = 64

    def __init__(self, channels: int = 3, num_classes: int = 10, n: int = 2, input_size: int = 32):
        super().__init__()
        if n < 1:
            raise ValueError(f"CifarResNet needs n >= 1 blocks per stage, got {n}.")
        self.n, self.input_size = n, input_size
        self.stem = nn.Sequential(nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, width = [], 16
        for stage, out in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(BasicBlock(width, out, stride=2 if stage > 0 and i == 0 else 1))
                width = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # He et al. 2015

    @property
    def depth(self) -> int:
        return 6 * self.n + 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        size = (self.input_size, self.input_size)
        if x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return self.blocks(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
