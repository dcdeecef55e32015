"""The ``model.channels_last`` option: convolution weights and image batches in channels-last layout.

oneDNN, which runs PyTorch's convolutions on CPU, is often faster when the channel dimension is the
innermost one in memory (NHWC) than on PyTorch's default NCHW; the option is on by default in the
model configs where it measured faster per training step (docs/PERFORMANCE.md). Only the strides
change: shapes, values (up to float rounding) and ``state_dict`` keys are the same, so checkpoints load
into either layout. See https://pytorch.org/tutorials/intermediate/memory_format_tutorial.html.
"""

from __future__ import annotations

import torch
from torch import nn


def to_channels_last(module: nn.Module) -> nn.Module:
    """Puts ``module``'s 4-D weights (Conv2d) in ``channels_last`` and 5-D ones (Conv3d) in
    ``channels_last_3d``, in place, with the strides ``Module.to(memory_format=...)`` gives (which takes
    one format and refuses a module that has weights of the other rank).

    The copy is made by ``empty_like(memory_format=...)``, not ``contiguous(memory_format=...)``: a weight
    with one input or output channel (the first conv of a discriminator of grey images, the last
    transposed conv of its generator) is contiguous in both layouts, so ``contiguous`` keeps its NCHW
    strides, and oneDNN then runs that layer with NCHW kernels and reorders its activations each step
    (about 10 % of a DCGAN step on 1-channel images, docs/PERFORMANCE.md)."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim in formats:
                p.data = torch.empty_like(p.data, memory_format=formats[p.ndim]).copy_(p.data)
    return module


def channels_last_images(x: torch.Tensor) -> torch.Tensor:
    """4-D images ``(B, C, H, W)`` in channels-last layout (free when they already are); other tensors
    unchanged (video batches are ``(B, T, C, H, W)``, which the nets regroup themselves)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
