"""The ResNet generator and discriminator of WGAN-GP and SNGAN for 32x32 images (CIFAR-10).

Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017 (arXiv:1704.00028), Appendix F,
and Miyato et al., "Spectral Normalization for GANs", ICLR 2018 (arXiv:1802.05957), Table 4 (the same
nets): G maps ``z (128)`` to a 4x4x256 map and three up-sampling residual blocks (BN, ReLU, nearest 2x
up, 3x3 conv, BN, ReLU, 3x3 conv; 1x1-conv shortcut) to 32x32, then BN, ReLU, 3x3 conv, tanh. D is
four residual blocks of 128 channels (the first two down-sample by average pooling, the first is the
"optimized" block without a leading ReLU), ReLU, global sum pooling and a linear logit. Neither net
has batch norm in D, as the gradient penalty and spectral norm require; spectral norm itself is applied
by the GAN family (``model.spectral_norm``).

Class conditioning (``num_classes``) follows Miyato & Koyama, "cGANs with Projection Discriminator",
ICLR 2018 (arXiv:1802.05637): conditional batch norm in G (per-class scale and shift, de Vries et al.
2017) and the projection ``<embed(y), phi(x)>`` added to D's logit.

Other power-of-two sizes >= 8 add or remove one up/down-sampling stage per octave.
Init as in the authors' code: Xavier-uniform with gain sqrt(2) in residual branches, 1 elsewhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidgen.nets._sizes import power_of_two_stages


def _stages(image_size: int, owner: str) -> int:
    return power_of_two_stages(image_size, owner, why=" (32 in the paper)", fix="data.image_size=32")


def _check_classes(num_classes: int | None, owner: str) -> None:
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"{owner} needs num_classes >= 2 or null (unconditional), got {num_classes}.")


def _conv(cin: int, cout: int, kernel: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (plain affine batch norm without classes)."""

    def __init__(self, features: int, num_classes: int | None):
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(features, affine=num_classes is None)
        if num_classes is not None:
            self.scale = nn.Embedding(num_classes, features)
            self.shift = nn.Embedding(num_classes, features)
            nn.init.ones_(self.scale.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if self.num_classes is None:
            return h
        return h * self.scale(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv, plus an up-sampled 1x1-conv shortcut."""

    def __init__(self, cin: int, cout: int, num_classes: int | None):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = _conv(cin, cout, 3, math.sqrt(2))
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = _conv(cout, cout, 3, math.sqrt(2))
        self.shortcut = _conv(cin, cout, 1, 1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscriminatorBlock(nn.Module):
    """(ReLU)-conv-ReLU-conv(-avgpool), plus a (1x1-conv, avgpool) shortcut when shape changes."""

    def __init__(self, cin: int, cout: int, downsample: bool, first: bool):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = _conv(cin, cout, 3, math.sqrt(2))
        self.conv2 = _conv(cout, cout, 3, math.sqrt(2))
        self.shortcut = _conv(cin, cout, 1, 1.0) if downsample or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        s = x
        if self.first:  # "optimized" block: pool before the shortcut conv (Miyato's code)
            h, s = F.avg_pool2d(h, 2), self.shortcut(F.avg_pool2d(x, 2))
        else:
            if self.shortcut is not None:
                s = self.shortcut(x)
            if self.downsample:
                h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResNetGenerator(nn.Module):
    """``z (B, latent_dim)`` [and labels ``y``] -> images ``(B, channels, size, size)`` in [-1, 1].

    Args:
        latent_dim: size of z (paper: 128).
        image_size: output side, a power of two >= 8 (paper: 32).
        channels: output channels.
        base_width: channels of every residual block (paper: 128 for WGAN-GP, 256 for SNGAN).
        num_classes: null for an unconditional G; the classes of conditional batch norm otherwise.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        image_size: int = 32,
        channels: int = 3,
        base_width: int = 256,
        num_classes: int | None = None,
    ):
        super().__init__()
        stages = _stages(image_size, "ResNetGenerator")
        _check_classes(num_classes, "ResNetGenerator")
        self.latent_dim, self.num_classes, self.base_width = latent_dim, num_classes, base_width
        self.linear = nn.Linear(latent_dim, 4 * 4 * base_width)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.blocks = nn.ModuleList(
            GeneratorBlock(base_width, base_width, num_classes) for _ in range(stages)
        )
        self.bn = nn.BatchNorm2d(base_width)
        self.out = _conv(base_width, channels, 3, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if (self.num_classes is None) != (y is None):
            raise ValueError(f"ResNetGenerator(num_classes={self.num_classes}) called with y={y is not None}")
        h = self.linear(z).view(z.shape[0], self.base_width, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(nn.Module):
    """Images [and labels ``y``] -> one logit per image ``(B,)``; projection discriminator if conditional.

    Args:
        image_size: input side, a power of two >= 8 (paper: 32; down-sampled to 8x8).
        channels: input channels.
        base_width: channels of every residual block (paper: 128).
        num_classes: null for an unconditional D; the classes of the projection otherwise.
    """

    def __init__(
        self, image_size: int = 32, channels: int = 3, base_width: int = 128, num_classes: int | None = None
    ):
        super().__init__()
        stages = _stages(image_size, "ResNetDiscriminator")
        _check_classes(num_classes, "ResNetDiscriminator")
        self.num_classes = num_classes
        downs = max(1, stages - 1)  # 32x32 -> 8x8 as in the paper
        blocks = [DiscriminatorBlock(channels, base_width, downsample=True, first=True)]
        blocks += [DiscriminatorBlock(base_width, base_width, True, False) for _ in range(downs - 1)]
        blocks += [DiscriminatorBlock(base_width, base_width, False, False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(base_width, 1)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        if num_classes is not None:
            self.embed = nn.Embedding(num_classes, base_width)
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if (self.num_classes is None) != (y is None):
            raise ValueError(
                f"ResNetDiscriminator(num_classes={self.num_classes}) called with y={y is not None}"
            )
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        logit = self.linear(h).flatten()
        if self.num_classes is not None:
            logit = logit + (self.embed(y) * h).sum(dim=1)
        return logit
