"""VGAN: the two-stream video generator and the 3D-convolutional video discriminator.

Vondrick, Pirsiavash & Torralba, "Generating Videos with Scene Dynamics", NeurIPS 2016
(arXiv:1609.02612), Section 2.2: from ``z`` (100-d), a 3D-deconvolutional foreground stream gives a
moving foreground ``f`` and a mask ``m``, a 2D-deconvolutional stream gives a static background ``b``,
and the video is ``m * f + (1 - m) * b``. The discriminator is a 3D-convolutional net, the DCGAN
recipe in space-time (4x4x4 kernels, stride 2, batch norm, LeakyReLU 0.2). Weights ~ N(0, 0.02).

The paper generates 32 frames of 64x64. Here any power-of-two frame size works: every stage doubles
the spatial size; the first ``min(stages, 3)`` stages also double time, from ``ceil(T / 8)`` frames,
and the result is cropped to ``num_frames``. Videos are ``(B, T, C, H, W)``; 3D convolutions see
``(B, C, T, H, W)``, the permutation happens inside.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidgen.nets._sizes import power_of_two_stages
from vidgen.nets.dcgan import dcgan_init_


def _init3d_(module: nn.Module) -> None:
    dcgan_init_(module)
    if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm3d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class VGANGenerator(nn.Module):
    """``z (B, latent_dim)`` -> video ``(B, num_frames, channels, image_size, image_size)`` in [-1, 1].

    Args:
        latent_dim: size of z (paper: 100).
        num_frames, image_size, channels: output video shape.
        base_width: channels of the last hidden layer, doubled at each coarser stage (paper: 64).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        num_frames: int = 16,
        image_size: int = 64,
        channels: int = 1,
        base_width: int = 64,
    ):
        super().__init__()
        stages = power_of_two_stages(image_size, "VGANGenerator")
        self.latent_dim, self.num_frames = latent_dim, num_frames
        time_stages = min(stages, 3)
        self.t0 = math.ceil(num_frames / 2**time_stages)
        width = base_width * 2 ** (stages - 1)

        fg: list[nn.Module] = [
            nn.ConvTranspose3d(latent_dim, width, (self.t0, 4, 4), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(True),
        ]
        bg: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, 4, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        w = width
        for s in range(stages - 1):
            kt, st, pt = (4, 2, 1) if s < time_stages else (3, 1, 1)
            fg += [nn.ConvTranspose3d(w, w // 2, (kt, 4, 4), (st, 2, 2), (pt, 1, 1), bias=False),
                   nn.BatchNorm3d(w // 2), nn.ReLU(True)]  # fmt: skip
            bg += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        kt, st, pt = (4, 2, 1) if stages - 1 < time_stages else (3, 1, 1)
        self.foreground = nn.Sequential(*fg)
        self.to_frames = nn.ConvTranspose3d(w, channels, (kt, 4, 4), (st, 2, 2), (pt, 1, 1))
        self.to_mask = nn.ConvTranspose3d(w, 1, (kt, 4, 4), (st, 2, 2), (pt, 1, 1))
        self.background = nn.Sequential(*bg, nn.ConvTranspose2d(w, channels, 4, 2, 1), nn.Tanh())
        self.apply(_init3d_)

    def streams(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Foreground ``(B, C, T, H, W)``, mask ``(B, 1, T, H, W)`` and background ``(B, C, H, W)``."""
        h = self.foreground(z.view(*z.shape, 1, 1, 1))
        fg = torch.tanh(self.to_frames(h))[:, :, : self.num_frames]
        mask = torch.sigmoid(self.to_mask(h))[:, :, : self.num_frames]
        bg = self.background(z.view(*z.shape, 1, 1))
        return fg, mask, bg

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        fg, mask, bg = self.streams(z)
        video = mask * fg + (1 - mask) * bg.unsqueeze(2)
        return video.transpose(1, 2)  # (B, C, T, H, W) -> (B, T, C, H, W)


class VGANDiscriminator(nn.Module):
    """Video ``(B, T, C, H, W)`` -> one logit per video ``(B,)``; 3D DCGAN discriminator.

    Args:
        num_frames, image_size, channels: input video shape.
        base_width: channels of the first layer, doubled at each stage (paper: 64).
    """

    def __init__(self, num_frames: int = 16, image_size: int = 64, channels: int = 1, base_width: int = 64):
        super().__init__()
        stages = power_of_two_stages(image_size, "VGANDiscriminator")
        layers: list[nn.Module] = []
        w_in, w, t = channels, base_width, num_frames
        for s in range(stages):
            kt, st, pt = (4, 2, 1) if s < 3 and t >= 2 else (3, 1, 1)
            layers.append(nn.Conv3d(w_in, w, (kt, 4, 4), (st, 2, 2), (pt, 1, 1), bias=False))
            if s > 0:  # no batch norm on the input layer (DCGAN)
                layers.append(nn.BatchNorm3d(w))
            layers.append(nn.LeakyReLU(0.2, True))
            t = (t + 2 * pt - kt) // st + 1
            w_in, w = w, w * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(w_in * t * 4 * 4, 1)
        self.apply(_init3d_)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(video.transpose(1, 2)).flatten(1)).flatten()
