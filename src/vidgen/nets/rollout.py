"""The autoregressive loop shared by the frame-prediction nets (no learnable parts).

At each future step the net predicts the next frame from its state; the frame fed back in is the
ground truth with probability ``teacher_forcing`` (per sequence) and the net's own prediction
otherwise: teacher forcing at 1, free-running rollout at 0, and scheduled sampling (Bengio et al.,
"Scheduled Sampling for Sequence Prediction with Recurrent Neural Networks", NeurIPS 2015) in between.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def feed_back(
    predicted_logits: torch.Tensor, target: torch.Tensor | None, teacher_forcing: float
) -> torch.Tensor:
    """The frame (in [0, 1]) to feed to the next step, shape ``(B, C, H, W)``."""
    predicted = torch.sigmoid(predicted_logits)
    if target is None or teacher_forcing <= 0.0:
        return predicted
    if teacher_forcing >= 1.0:
        return target
    use_truth = torch.rand(target.shape[0], 1, 1, 1, device=target.device) < teacher_forcing
    return torch.where(use_truth, target, predicted)


def rollout(
    step: Callable[[torch.Tensor], torch.Tensor],
    first_input: torch.Tensor,
    future: int,
    targets: torch.Tensor | None,
    teacher_forcing: float,
) -> torch.Tensor:
    """Runs ``step(frame) -> next-frame logits`` ``future`` times; returns logits ``(B, future, C, H, W)``."""
    frame, outputs = first_input, []
    for t in range(future):
        logits = step(frame)
        outputs.append(logits)
        truth = targets[:, t] if targets is not None else None
        frame = feed_back(logits, truth, teacher_forcing)
    return torch.stack(outputs, dim=1)
