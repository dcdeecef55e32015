"""Per-pixel losses between predicted frames and true frames.

Predictions arrive as logits; the predicted frame is ``sigmoid(logits)`` in [0, 1], the range the
sequence family maps every dataset to. All losses are means over pixels, frames and sequences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FrameLoss:
    """Interface: ``loss(logits, target)`` with ``target`` in [0, 1], both ``(B, T, C, H, W)``."""

    kind = "frame"  # the loss_kind of the families it trains (FramePredictionModule)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FrameMSELoss(FrameLoss):
    """Mean squared error of ``sigmoid(logits)`` (OpenSTL's training loss for Moving MNIST)."""

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(torch.sigmoid(logits), target)


class FrameL1Loss(FrameLoss):
    """Mean absolute error of ``sigmoid(logits)``; less blurry than MSE under multi-modal futures."""

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(torch.sigmoid(logits), target)


class FrameBCELoss(FrameLoss):
    """Bernoulli cross-entropy per pixel, the loss of Srivastava et al. 2015 for binary-ish digits."""

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)
