"""LeNet-5, used as a small domain classifier whose penultimate layer is a feature space for FID.

LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document recognition",
Proc. IEEE 86(11), 1998: two 5x5 convolutions with 2x2 pooling, then 120-84-10 fully connected
layers, on 32x32 inputs. ReLU and max-pooling replace the original scaled tanh and trainable
sub-sampling, as in most modern re-implementations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    """Classifies ``(B, channels, H, W)`` images; any ``H, W`` is resized to the paper's 32x32.

    ``features(x)`` returns the 84-d penultimate activations (``num_features``), the space in which
    vidgen's domain FID is computed.
    """

    num_features = 84

    def __init__(self, channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.fc = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        return self.fc(self.conv(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
