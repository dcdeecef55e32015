"""ConvLSTM encoder-forecaster for precipitation nowcasting / frame prediction.

Shi, Chen, Wang, Yeung, Wong & Woo, "Convolutional LSTM Network: A Machine Learning Approach for
Precipitation Nowcasting", NeurIPS 2015 (arXiv:1506.04214). Eq. 3: an LSTM whose input-to-state and
state-to-state maps are convolutions, so hidden states keep the frame's spatial layout. Section 3.2:
stacked ConvLSTM encoder layers read the input frames; forecaster layers start from the encoder
states and their hidden states, concatenated, give each predicted frame through a 1x1 convolution.
As in the paper's Moving-MNIST set-up, frames are cut into non-overlapping ``patch_size`` patches
(64x64 frames become 16x16 maps of 16 channels).

The paper's forecaster is unconditioned (no input); with ``conditional=True`` (default) it is fed the
previous frame, which enables teacher forcing and scheduled sampling. The paper's peephole terms
(W_c o c) are omitted, as in most re-implementations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidgen.nets.rollout import rollout


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer (Shi et al. 2015, Eq. 3 without peepholes).

    ``forward(x, (h, c)) -> (h', c')`` with ``x (B, in_channels, H, W)`` and ``h, c (B, hidden, H, W)``.
    All four gates come from one convolution over ``[x, h]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTMCell kernel_size must be odd to keep the map size, got {kernel_size}.")
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 4 * hidden_channels, kernel_size, padding="same"
        )
        nn.init.xavier_uniform_(self.gates.weight)
        nn.init.zeros_(self.gates.bias)
        # Forget-gate bias 1 (Jozefowicz et al. 2015): remember by default early in training.
        nn.init.ones_(self.gates.bias[hidden_channels : 2 * hidden_channels])

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[-2:])
        return zeros, zeros.clone()

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMEncoderForecaster(nn.Module):
    """Predicts ``future`` frames from ``context (B, T_in, C, H, W)`` in [0, 1]; returns next-frame logits.

    Args:
        channels: frame channels.
        image_size: frame side; must be divisible by ``patch_size``.
        hidden_channels: channels of each stacked ConvLSTM layer (paper's Moving-MNIST best: 3 layers).
        kernel_size: state-to-state and input-to-state kernel (paper: 5x5).
        patch_size: side of the non-overlapping patches frames are folded into (paper: 4 for 64x64).
        conditional: feed the previous frame to the forecaster (see module docstring).
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 64,
        hidden_channels: tuple[int, ...] = (64, 64),
        kernel_size: int = 5,
        patch_size: int = 4,
        conditional: bool = True,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"ConvLSTM patch_size={patch_size} must divide data.image_size={image_size}; "
                "set model.net.patch_size to a divisor of it (e.g. 1, 2 or 4)."
            )
        self.patch_size = patch_size
        self.conditional = conditional
        folded = channels * patch_size**2
        dims = list(hidden_channels)
        self.encoder = nn.ModuleList(
            ConvLSTMCell(folded if i == 0 else dims[i - 1], d, kernel_size) for i, d in enumerate(dims)
        )
        self.forecaster = nn.ModuleList(
            ConvLSTMCell(folded if i == 0 else dims[i - 1], d, kernel_size) for i, d in enumerate(dims)
        )
        self.readout = nn.Conv2d(sum(dims), folded, kernel_size=1)

    def _fold(self, frame: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(frame, self.patch_size)

    def _unfold(self, folded: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(folded, self.patch_size)

    @staticmethod
    def _step(cells: nn.ModuleList, x: torch.Tensor, states: list) -> torch.Tensor:
        for i, cell in enumerate(cells):
            states[i] = cell(x, states[i])
            x = states[i][0]
        return x

    def forward(
        self,
        context: torch.Tensor,
        future: int,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        first = self._fold(context[:, 0])
        states = [cell.init_state(first) for cell in self.encoder]
        for t in range(context.shape[1]):
            self._step(self.encoder, self._fold(context[:, t]), states)

        def step(frame: torch.Tensor) -> torch.Tensor:
            x = self._fold(frame) if self.conditional else torch.zeros_like(first)
            self._step(self.forecaster, x, states)
            return self._unfold(self.readout(torch.cat([h for h, _ in states], dim=1)))

        # The forecaster starts from the encoder's states (paper, Fig. 3), fed the last observed frame.
        return {"future": rollout(step, context[:, -1], future, targets, teacher_forcing)}
