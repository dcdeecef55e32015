"""Adversarial losses on discriminator logits.

Every loss takes raw logits (no sigmoid) so that the log-sigmoid terms are computed stably with
``softplus``: ``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)`` for ``D = sigmoid(l)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class GANLoss:
    """Interface of a GAN loss: what D minimises and what G minimises."""

    family = "gan"

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MinimaxGANLoss(GANLoss):
    """The original two-player game, Goodfellow et al. 2014 (arXiv:1406.2661), Eq. 1.

    ``min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]``. D minimises ``-V``; G minimises the
    second term exactly as written. Its gradient vanishes when D confidently rejects samples, which is
    why the paper itself recommends the non-saturating variant in practice.
    """

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()


class NonSaturatingGANLoss(MinimaxGANLoss):
    """Goodfellow et al. 2014, Section 3: G maximises ``log D(G(z))`` instead of minimising
    ``log(1 - D(G(z)))``; same fixed point, strong gradients early in training. D's loss is unchanged.
    """

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()
