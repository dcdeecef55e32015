"""Adversarial losses on discriminator outputs.

Every loss takes raw outputs (logits, no sigmoid). The log-sigmoid terms of the original game are
computed stably with ``softplus``: ``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)`` for
``D = sigmoid(l)``. Hinge, least-squares and Wasserstein losses use the raw output as it is.

Losses that regularise the discriminator (WGAN-GP) do so through ``penalty``, which the GAN family adds
to the discriminator loss on every critic step; it is zero for the others.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]


class GANLoss:
    """Interface of a GAN loss: what D minimises, what G minimises, and an optional penalty on D."""

    kind = "adversarial"  # the loss_kind of the families it trains (GANModule, VideoGANModule)

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalty(self, discriminator: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """A regulariser of ``discriminator`` (images -> outputs) added to D's loss; none by default."""
        return real.new_zeros(())


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


class HingeGANLoss(GANLoss):
    """Hinge loss, Lim & Ye 2017 (arXiv:1705.02894) as used by SNGAN (Miyato et al. 2018, Eq. 16-17).

    ``L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]``, ``L_G = -E_z[D(G(z))]``.
    """

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresGANLoss(GANLoss):
    """LSGAN, Mao et al. 2017 (arXiv:1611.04076), Eq. 2 with the 0-1 coding ``a = 0, b = c = 1``.

    ``L_D = 1/2 E_x[(D(x) - 1)^2] + 1/2 E_z[D(G(z))^2]``, ``L_G = 1/2 E_z[(D(G(z)) - 1)^2]``, on the
    discriminator's raw (linear) output.
    """

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (real_logits - 1.0).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake_logits - 1.0).pow(2).mean()


class WassersteinGPLoss(GANLoss):
    """WGAN-GP, Gulrajani et al. 2017 (arXiv:1704.00028), Algorithm 1.

    The critic minimises ``E_z[D(G(z))] - E_x[D(x)] + lambda E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2]`` with
    ``xhat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` per sample; G minimises ``-E_z[D(G(z))]``. Paper:
    ``lambda = 10`` and ``n_critic = 5`` critic steps per generator step (``model.n_critic=5``), Adam
    ``lr = 1e-4, betas = (0, 0.9)``, and no batch norm in the critic (the penalty is per sample).

    Args:
        gp_weight: the penalty coefficient lambda.
    """

    def __init__(self, gp_weight: float = 10.0):
        if gp_weight < 0:
            raise ValueError(f"loss.gp_weight must be >= 0, got {gp_weight}.")
        self.gp_weight = gp_weight

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def penalty(self, discriminator: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
        xhat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(discriminator(xhat).sum(), xhat, create_graph=True)
        norm = grad.flatten(1).norm(2, dim=1)
        return self.gp_weight * (norm - 1.0).pow(2).mean()
