"""The evidence lower bound of a VAE, with its two terms kept apart for logging.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (arXiv:1312.6114), Eq. 10:
``ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))`` with ``q = N(mu, diag(sigma^2))`` and
``p(z) = N(0, I)``, whose KL is analytic (Appendix B). Higgins et al. 2017 (beta-VAE, ICLR) weight the
KL by ``beta``; the trained objective is ``-E_q[log p(x|z)] + beta KL``, and ``beta = 1`` is the ELBO.

All quantities are in nats per image (summed over pixels and latent dimensions, not averaged).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per row, summed over the last dimension (K&W, App. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


class ELBOLoss:
    """Negative (beta-)ELBO of decoder outputs ``out`` for images ``x`` in [0, 1].

    The decoder's output is unconstrained; the likelihood gives it a meaning:

    - ``bernoulli``: ``out`` are logits, ``p(x|z) = prod_i p_i^x_i (1 - p_i)^(1 - x_i)`` with
      ``p = sigmoid(out)`` (K&W's MNIST decoder; grey values act as soft targets).
    - ``gaussian``: ``p(x|z) = N(x; sigmoid(out), sigma^2 I)`` with a fixed ``sigma``.

    Args:
        likelihood: ``bernoulli`` or ``gaussian``.
        beta: weight of the KL term (1 = the ELBO; > 1 = beta-VAE).
        sigma: standard deviation of the Gaussian likelihood (ignored for Bernoulli).
    """

    kind = "elbo"  # the loss_kind of the families it trains (VAEModule)

    def __init__(
        self,
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli",
        beta: float = 1.0,
        sigma: float = 0.1,
    ):
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"loss.likelihood must be bernoulli or gaussian, got {likelihood!r}.")
        if beta < 0:
            raise ValueError(f"loss.beta must be >= 0, got {beta}.")
        if sigma <= 0:
            raise ValueError(f"loss.sigma must be > 0, got {sigma}.")
        self.likelihood = likelihood
        self.beta = beta
        self.sigma = sigma

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image in [0, 1]: ``sigmoid(out)`` for both likelihoods."""
        return torch.sigmoid(out)

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log p(x|z)`` per image, shape ``(B,)``."""
        if self.likelihood == "bernoulli":
            per_pixel = -F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            per_pixel = -0.5 * math.log(2 * math.pi * self.sigma**2) - (x - self.mean(out)).pow(2) / (
                2 * self.sigma**2
            )
        return per_pixel.flatten(1).sum(dim=1)

    def __call__(
        self, out: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss`` (to minimise), ``recon_nats`` (``-E_q[log p(x|z)]``), ``kl_nats`` and ``elbo_nats``
        (``E_q[log p(x|z)] - KL``, one sample of z), each averaged over the batch."""
        recon = -self.log_likelihood(out, x).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {
            "loss": recon + self.beta * kl,
            "recon_nats": recon,
            "kl_nats": kl,
            "elbo_nats": -(recon + kl),
        }
