"""The U-Net of DDPM: a noise (or velocity) predictor ``(x_t, t[, y]) -> output`` of the shape of ``x_t``.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (arXiv:2006.11239), Sec. 4 and
App. B: a PixelCNN++-like U-Net of wide residual blocks with group normalization (Wu & He 2018) and Swish
(SiLU), the time ``t`` given to every block through the Transformer's sinusoidal position embedding
(Vaswani et al. 2017) and a two-layer MLP, single-head self-attention at the 16x16 resolution, dropout
in the blocks. Their CIFAR-10 net: ``base_width=128, channel_mult=[1, 2, 2, 2], num_res_blocks=2,
attention_resolutions=[16], dropout=0.1`` with 32 groups (35.7M parameters).

Weight init as the authors' released code: the last convolution of every residual block, the output
projection of every attention block and the net's output convolution start at zero, so every block
starts as the identity and the net's first prediction is 0 (the mean of ``eps``); other layers keep
PyTorch's defaults (the released code uses variance-scaling, a different constant).

Class conditioning (``num_classes``): a learned embedding of the label added to the time embedding, with
one extra "null" class (index ``num_classes``) that stands for "no label", for classifier-free guidance
(Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022, arXiv:2207.12598).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of float times ``t`` ``(B,)``: ``[sin(t w_k), cos(t w_k)]`` with
    ``w_k = max_period^(-k / (dim/2))`` (Vaswani et al. 2017, Sec. 3.5; Ho et al. 2020, App. B)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus the projected time embedding, GroupNorm-SiLU-dropout-conv, plus a skip
    (a 1x1 convolution when the width changes)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(2, 3).unbind(1)  # (B, HW, C) each
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(C)) v
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """A stride-2 3x3 convolution (Ho et al.'s ``resamp_with_conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DDPMUNet(nn.Module):
    """Predicts a tensor of the shape of ``x`` ``(B, channels, image_size, image_size)`` from ``x``, the
    time ``t`` (float ``(B,)``: a step index, or a flow time scaled by the loss) and, when conditional,
    the class ``y`` (long ``(B,)``, ``num_classes`` = the null class).

    Args:
        image_size: input side; divisible by ``2^(len(channel_mult) - 1)`` (one halving per extra level).
        channels: image channels (1 grey, 3 RGB).
        base_width: channels of the first level (paper: 128); level i has ``base_width * channel_mult[i]``.
        channel_mult: width multipliers per resolution level (paper, 32x32: [1, 2, 2, 2]).
        num_res_blocks: residual blocks per level on the way down (paper: 2; one more on the way up).
        attention_resolutions: feature-map sides with self-attention after each block (paper: [16]).
        dropout: dropout in the residual blocks (paper: 0.1 on CIFAR-10).
        norm_groups: groups of every GroupNorm (paper: 32); must divide every level's width.
        num_classes: null, or the classes of a class-conditional net (plus the null class for guidance).
        attention: ``(channels, norm_groups) -> module``, the attention block after the residual blocks at
            ``attention_resolutions`` and in the middle (the video U-Net passes factorized space-time
            attention, ``vidgen.nets.video_unet``); not a config key.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        base_width: int = 128,
        channel_mult: Sequence[int] = (1, 2, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        dropout: float = 0.1,
        norm_groups: int = 32,
        num_classes: int | None = None,
        attention: Callable[[int, int], nn.Module] = AttentionBlock,
    ):
        super().__init__()
        levels, name = len(channel_mult), type(self).__name__
        if levels < 1 or image_size < 1 or image_size % 2 ** (levels - 1):
            raise ValueError(
                f"{name} with channel_mult={list(channel_mult)} halves the image {levels - 1} times, so "
                f"image_size must be divisible by {2 ** (levels - 1)}, got {image_size}. Fix: set "
                "data.image_size=32 (or 16), or a shorter model.net.channel_mult."
            )
        widths = [base_width * m for m in channel_mult]
        bad = [w for w in widths if w % norm_groups]
        if bad:
            raise ValueError(
                f"{name}: norm_groups={norm_groups} must divide every level's width {widths}. Fix: "
                "model.net.norm_groups=<a divisor of base_width> (paper: 32 with base_width 128)."
            )
        if num_res_blocks < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name} needs num_res_blocks >= 1 and dropout in [0, 1), got "
                             f"{num_res_blocks} and {dropout}.")  # fmt: skip
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes
        self.base_width = base_width
        emb_dim = 4 * base_width
        self.time_mlp = nn.Sequential(nn.Linear(base_width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes is not None else None
        self.conv_in = nn.Conv2d(channels, base_width, 3, padding=1)

        def block(cin: int, cout: int, side: int) -> nn.ModuleList:
            layers = [ResidualBlock(cin, cout, emb_dim, dropout, norm_groups)]
            if side in attention_resolutions:
                layers.append(attention(cout, norm_groups))
            return nn.ModuleList(layers)

        # down path: remember every output's width, the skips the up path concatenates
        self.down = nn.ModuleList()
        skips, width, side = [base_width], base_width, image_size
        for level, out in enumerate(widths):
            for _ in range(num_res_blocks):
                self.down.append(block(width, out, side))
                width = out
                skips.append(width)
            if level < levels - 1:
                self.down.append(nn.ModuleList([Downsample(width)]))
                skips.append(width)
                side //= 2
        self.middle = nn.ModuleList(
            [
                ResidualBlock(width, width, emb_dim, dropout, norm_groups),
                attention(width, norm_groups),
                ResidualBlock(width, width, emb_dim, dropout, norm_groups),
            ]
        )
        self.up = nn.ModuleList()
        for level, out in reversed(list(enumerate(widths))):
            for _ in range(num_res_blocks + 1):
                self.up.append(block(width + skips.pop(), out, side))
                width = out
            if level > 0:
                self.up.append(nn.ModuleList([Upsample(width)]))
                side *= 2
        self.norm_out = nn.GroupNorm(norm_groups, width)
        self.conv_out = _zero(nn.Conv2d(width, channels, 3, padding=1))

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.base_width))
        if self.class_embedding is not None:
            if y is None:
                raise ValueError("DDPMUNet was built with num_classes: call it with labels y.")
            emb = emb + self.class_embedding(y)
        return emb

    @staticmethod
    def _run(
        layers: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor, **attention_inputs: Any
    ) -> torch.Tensor:
        for layer in layers:
            if isinstance(layer, ResidualBlock):
                h = layer(h, emb)
            elif isinstance(layer, (Downsample, Upsample)):
                h = layer(h)
            else:  # the attention block, with what it needs besides h (the video net's frame count)
                h = layer(h, **attention_inputs)
        return h

    def trunk(self, x: torch.Tensor, emb: torch.Tensor, **attention_inputs: Any) -> torch.Tensor:
        """The U-Net from the input convolution to the output one, on feature maps ``(N, C, H, W)`` with
        their embeddings ``(N, emb_dim)``; ``attention_inputs`` go to every attention block."""
        h = self.conv_in(x)
        hs = [h]
        for layers in self.down:
            h = self._run(layers, h, emb, **attention_inputs)
            hs.append(h)
        h = self._run(self.middle, h, emb, **attention_inputs)
        for layers in self.up:
            if isinstance(layers[0], ResidualBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(layers, h, emb, **attention_inputs)
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.trunk(x, self.embed(t, y))
