"""The fully connected encoder/decoder of the variational auto-encoder.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (arXiv:1312.6114), Appendix C: one
tanh hidden layer in each of the Gaussian encoder ``q(z|x) = N(mu(x), diag(sigma^2(x)))`` and the
decoder (500 units for MNIST), parameters initialised from N(0, 0.01^2) (Section 5).
"""

from __future__ import annotations

import torch
from torch import nn


class MLPVAE(nn.Module):
    """``encode``: images ``(B, C, H, W)`` in [0, 1] -> ``(mu, logvar)``, each ``(B, latent_dim)``;
    ``decode``: ``z`` -> unconstrained outputs ``(B, C, H, W)`` (logits or pre-sigmoid means).

    Args:
        image_size, channels: image shape.
        latent_dim: size of z (paper: 2 to 200; 20 for its MNIST figures).
        hidden_dim: units of the tanh hidden layer (paper: 500 for MNIST).
    """

    def __init__(self, image_size: int = 32, channels: int = 1, latent_dim: int = 20, hidden_dim: int = 500):
        super().__init__()
        if latent_dim < 1 or hidden_dim < 1:
            raise ValueError(f"MLPVAE needs latent_dim, hidden_dim >= 1, got {latent_dim}, {hidden_dim}.")
        self.latent_dim = latent_dim
        self.shape = (channels, image_size, image_size)
        pixels = channels * image_size * image_size
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden_dim), nn.Tanh())
        self.to_stats = nn.Linear(hidden_dim, 2 * latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, pixels)
        )
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(z.shape[0], *self.shape)
