"""LSTM encoder with a reconstruction decoder and a future predictor (the "composite model").

Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning of Video Representations using LSTMs",
ICML 2015 (arXiv:1502.04681), Section 2.4: an encoder LSTM reads the input frames; its final state
initialises two decoder LSTMs, one reconstructing the input frames in reverse order, one predicting
the future frames. Decoders can be "conditional" (fed the previous output frame) or unconditioned
(Section 2.3); ``conditional`` chooses. Frames are flattened (the paper's "raw patches" model) and
read out through a linear layer as logits.
"""

from __future__ import annotations

import torch
from torch import nn

from vidgen.nets.rollout import rollout


class LSTMAutoencoder(nn.Module):
    """Composite LSTM model; ``forward`` returns ``{"future": logits, "reconstruction": logits}``.

    ``reconstruction[:, t]`` targets ``context[:, T_in - 1 - t]`` (reverse order, paper Section 2.2).

    Args:
        channels, image_size: frame shape.
        hidden_size: LSTM state size (paper: 2048 for Moving MNIST).
        conditional: feed decoders their previous output (paper reports little difference).
    """

    def __init__(
        self, channels: int = 1, image_size: int = 64, hidden_size: int = 1024, conditional: bool = False
    ):
        super().__init__()
        self.frame_shape = (channels, image_size, image_size)
        pixels = channels * image_size * image_size
        self.conditional = conditional
        self.encoder = nn.LSTMCell(pixels, hidden_size)
        self.reconstructor = nn.LSTMCell(pixels, hidden_size)
        self.predictor = nn.LSTMCell(pixels, hidden_size)
        self.recon_readout = nn.Linear(hidden_size, pixels)
        self.future_readout = nn.Linear(hidden_size, pixels)

    def _decode(
        self,
        cell: nn.LSTMCell,
        readout: nn.Linear,
        state: tuple[torch.Tensor, torch.Tensor],
        first: torch.Tensor,
        steps: int,
        targets: torch.Tensor | None,
        teacher_forcing: float,
    ) -> torch.Tensor:
        def step(frame: torch.Tensor) -> torch.Tensor:
            nonlocal state
            x = frame.flatten(1) if self.conditional else torch.zeros_like(frame.flatten(1))
            state = cell(x, state)
            return readout(state[0]).view(-1, *self.frame_shape)

        return rollout(step, first, steps, targets, teacher_forcing)

    def forward(
        self,
        context: torch.Tensor,
        future: int,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        state = None
        for t in range(context.shape[1]):
            state = self.encoder(context[:, t].flatten(1), state)
        reversed_context = context.flip(1)
        zeros = torch.zeros_like(context[:, 0])
        # Both decoders start from a copy of the encoder's final state (paper, Fig. 3).
        recon = self._decode(
            self.reconstructor,
            self.recon_readout,
            state,
            zeros,
            context.shape[1],
            reversed_context,
            teacher_forcing,
        )
        pred = self._decode(
            self.predictor, self.future_readout, state, context[:, -1], future, targets, teacher_forcing
        )
        return {"future": pred, "reconstruction": recon}
