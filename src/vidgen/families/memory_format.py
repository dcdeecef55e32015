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
    ``channels_last_3d``, in place. (``Module.to(memory_format=...)`` takes one format and refuses a
    module that has weights of the other rank.)"""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim in formats:
                p.data = p.data.contiguous(memory_format=formats[p.ndim])
    return module


def channels_last_images(x: torch.Tensor) -> torch.Tensor:
    """4-D images ``(B, C, H, W)`` in channels-last layout (free when they already are); other tensors
    unchanged (video batches are ``(B, T, C, H, W)``, which the nets regroup themselves)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
