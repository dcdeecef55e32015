"""The convolutional encoder/decoder of beta-VAE.

Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
ICLR 2017, and its architecture as specified by Burgess et al., "Understanding disentangling in
beta-VAE" (arXiv:1804.03599), Section 3: 4x4 convolutions with stride 2 and 32 channels, ReLU, two
fully connected layers of 256 units, a Gaussian latent of 10 dimensions; the decoder is the transpose.
The paper's 64x64 input uses four down-sampling convolutions; this builds one per octave down to 4x4
(three for 32x32). Init: Kaiming-normal for the ReLU layers, biases 0.
"""

from __future__ import annotations

import torch
from torch import nn

from vidgen.nets._sizes import power_of_two_stages


class ConvVAE(nn.Module):
    """``encode``: images ``(B, C, H, W)`` in [0, 1] -> ``(mu, logvar)``, each ``(B, latent_dim)``;
    ``decode``: ``z`` -> unconstrained outputs ``(B, C, H, W)`` (logits or pre-sigmoid means).

    Args:
        image_size: side, a power of two >= 8.
        channels: image channels.
        latent_dim: size of z (paper: 10).
        base_width: channels of every convolution (paper: 32).
        hidden_dim: units of the fully connected layers (paper: 256).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        latent_dim: int = 10,
        base_width: int = 32,
        hidden_dim: int = 256,
    ):
        super().__init__()
        stages = power_of_two_stages(image_size, "ConvVAE")
        self.latent_dim, self.base_width = latent_dim, base_width
        flat = base_width * 4 * 4
        down: list[nn.Module] = []
        for i in range(stages):
            down += [
                nn.Conv2d(channels if i == 0 else base_width, base_width, 4, 2, 1),
                nn.ReLU(inplace=True),
            ]
        self.encoder = nn.Sequential(
            *down,
            nn.Flatten(),
            nn.Linear(flat, hidden_dim),
            nn.ReLU(True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(True),
        )
        self.to_stats = nn.Linear(hidden_dim, 2 * latent_dim)
        self.decoder_fc = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(True),
            nn.Linear(hidden_dim, flat),
            nn.ReLU(True),
        )
        up: list[nn.Module] = []
        for i in range(stages):
            last = i == stages - 1
            up.append(nn.ConvTranspose2d(base_width, channels if last else base_width, 4, 2, 1))
            if not last:
                up.append(nn.ReLU(inplace=True))
        self.decoder_conv = nn.Sequential(*up)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.to_stats.weight)  # linear read-out of mu and log-variance

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_fc(z).view(z.shape[0], self.base_width, 4, 4)
        return self.decoder_conv(h)
