"""DCGAN generator and discriminator.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks", ICLR 2016 (arXiv:1511.06434). Architecture guidelines from Section 3: strided
(transposed) convolutions instead of pooling, batch norm in both nets except the generator output and
the discriminator input, ReLU in the generator with tanh output, LeakyReLU(0.2) in the discriminator,
and all weights initialised from N(0, 0.02).

The paper's nets are for 64x64; the same pattern is built for any power-of-two ``image_size`` by
adding or removing one 2x up/down-sampling stage per octave (the pytorch/examples layout).
"""

from __future__ import annotations

import torch
from torch import nn

from vidgen.nets._sizes import power_of_two_stages


def _check_image_size(image_size: int, owner: str) -> int:
    return power_of_two_stages(
        image_size,
        owner,
        why=" (it doubles 4x4 feature maps)",
        fix="data.image_size=32 (or 64), e.g. `vidgen-train data.image_size=32`",
    )


def dcgan_init_(module: nn.Module) -> None:
    """Paper init: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """Maps ``z ~ N(0, I)`` of shape ``(B, latent_dim)`` to images ``(B, channels, size, size)`` in [-1, 1].

    Args:
        latent_dim: size of z (paper: 100).
        image_size: output side, a power of two >= 8.
        channels: output channels (1 for digits/MNIST, 3 for CIFAR-10).
        base_width: channels of the last hidden layer; doubled at each coarser stage (paper's "ngf").
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 32, channels: int = 1, base_width: int = 64):
        super().__init__()
        stages = _check_image_size(image_size, "DCGANGenerator")
        self.latent_dim = latent_dim
        width = base_width * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Maps images ``(B, channels, size, size)`` to one real/fake logit per image, shape ``(B,)``.

    Args:
        image_size: input side, a power of two >= 8.
        channels: input channels.
        base_width: channels of the first layer; doubled at each stage (paper's "ndf").
        batch_norm: batch norm after the inner convolutions, as the paper; false for a critic trained
            with a gradient penalty, whose per-sample gradient norm batch norm would mix across the batch
            (Gulrajani et al. 2017, Sec. 4; the SpecGAN of Donahue et al. 2019 is trained so).
    """

    def __init__(
        self, image_size: int = 32, channels: int = 1, base_width: int = 64, batch_norm: bool = True
    ):
        super().__init__()
        stages = _check_image_size(image_size, "DCGANDiscriminator")
        width = base_width
        # No batch norm on the input layer (paper, Section 3).
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(stages - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm),
                nn.BatchNorm2d(width * 2) if batch_norm else nn.Identity(),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
