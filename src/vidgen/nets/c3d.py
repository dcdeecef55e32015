"""A small C3D, the 3D-convolutional video classifier whose penultimate layer is vidgen's video feature space.

Tran, Bourdev, Fergus, Torresani & Paluri, "Learning Spatiotemporal Features with 3D Convolutional
Networks", ICCV 2015: homogeneous 3x3x3 convolutions (stride 1, padding 1) with max-pooling that keeps
time in the first pool (1x2x2) and halves it after (2x2x2), then fully connected layers whose
activations ("fc6"/"fc7") are the clip's features.

Scaled down for 20-frame 32x32 clips on a CPU: 4 convolutions of 8-16-32-64 channels instead of 8 of
64-512, one 128-d fully connected layer instead of two of 4096 (the features), global average pooling
instead of a fixed 16x112x112 input (so any T, H, W works), and batch normalisation after every
convolution (not in the paper; it makes a few epochs of training enough). Two heads share the features:
``order`` (is the clip as recorded, time-reversed or frame-shuffled; see ``vidgen.metrics.video_features``)
and ``classes`` (the content class, e.g. a digit).

Videos are ``(B, T, C, H, W)`` (the project-wide layout); ``nn.Conv3d`` sees ``(B, C, T, H, W)``, the
permutation happens inside.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _block(cin: int, cout: int, pool: tuple[int, int, int]) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(True),
            nn.MaxPool3d(pool, ceil_mode=True)]  # fmt: skip


class C3D(nn.Module):
    """Classifies videos ``(B, T, channels, H, W)`` of any size (T, H, W >= 1).

    ``features(x)`` returns the ``num_features``-d penultimate activations; ``forward(x)`` the logits of
    the two heads, ``(order_logits (B, num_orders), class_logits (B, num_classes))``.

    Args:
        channels: input channels.
        num_classes: classes of the content head.
        num_orders: classes of the temporal-order head.
        widths: channels of the 3x3x3 convolutions (paper: 64, 128, 256, 256, 512, 512, 512, 512).
        num_features: size of the fully connected feature layer (paper: 4096).
    """

    def __init__(
        self,
        channels: int = 1,
        num_classes: int = 10,
        num_orders: int = 3,
        widths: Sequence[int] = (8, 16, 32, 64),
        num_features: int = 128,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for i, w in enumerate(widths):
            # C3D: pool1 keeps time (1x2x2), later pools halve it too (2x2x2); the last pool is global.
            pool = (1, 2, 2) if i == 0 else (2, 2, 2)
            layers += _block(cin, w, pool) if i < len(widths) - 1 else _block(cin, w, (1, 1, 1))[:-1]
            cin = w
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(cin, num_features), nn.ReLU(True))
        self.order = nn.Linear(num_features, num_orders)
        self.classes = nn.Linear(num_features, num_classes)
        self.num_features, self.num_classes, self.num_orders = num_features, num_classes, num_orders
        # oneDNN's 3-D convolutions and batch norm run about 1.6x faster on channels-last-3d weights on
        # this CPU (docs/PERFORMANCE.md); activations follow the weights' layout.
        self.to(memory_format=torch.channels_last_3d)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"C3D expects videos (B, T, C, H, W), got shape {tuple(x.shape)}")
        h = self.conv(x.transpose(1, 2))  # (B, C, T, H, W)
        return self.fc(h.mean(dim=(2, 3, 4)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.order(f), self.classes(f)
