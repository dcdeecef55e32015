"""An Elman recurrent network over flattened frames: the simplest frame predictor.

Elman, "Finding Structure in Time", Cognitive Science 14(2), 1990. The state update is the seed's
``h_t = tanh(W h_{t-1} + U x_t + b)``, which is exactly ``torch.nn.RNNCell`` with tanh (its two biases
sum to ``b``); a linear read-out maps ``h_t`` to the logits of frame ``t + 1``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidgen.nets.rollout import rollout


class ElmanFramePredictor(nn.Module):
    """Reads ``context (B, T_in, C, H, W)`` frame by frame and predicts ``future`` frames (logits).

    Args:
        channels, image_size: frame shape.
        hidden_size: size of ``h_t``.
    """

    def __init__(self, channels: int = 1, image_size: int = 64, hidden_size: int = 512):
        super().__init__()
        self.frame_shape = (channels, image_size, image_size)
        pixels = channels * image_size * image_size
        self.cell = nn.RNNCell(pixels, hidden_size, nonlinearity="tanh")
        self.readout = nn.Linear(hidden_size, pixels)

    def forward(
        self,
        context: torch.Tensor,
        future: int,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        h = None
        for t in range(context.shape[1] - 1):
            h = self.cell(context[:, t].flatten(1), h)

        def step(frame: torch.Tensor) -> torch.Tensor:
            nonlocal h
            h = self.cell(frame.flatten(1), h)
            return self.readout(h).view(-1, *self.frame_shape)

        # The last observed frame is the first input of the rollout; its output is the first prediction.
        return {"future": rollout(step, context[:, -1], future, targets, teacher_forcing)}
