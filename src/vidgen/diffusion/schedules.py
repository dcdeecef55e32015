"""The Gaussian forward process of a denoising diffusion model, in closed form.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (arXiv:2006.11239):
``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)`` for ``t = 1..T``, hence (their Eq. 4)
``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with ``abar_t = prod_{s<=t} (1 - beta_s)``, and the
posterior (Eq. 6-7) ``q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I)``,
``mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t``,
``beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t``.

Index convention: tensors are indexed ``0..T-1``; index ``i`` is the paper's step ``t = i + 1`` (so index
0 is the first, least noisy step and ``abar`` "before" it is 1). The network sees the index.

Tables are float64 (``abar_T`` of the linear schedule is about 4e-5, and float32 products of 1000 factors
lose digits); they are cast to the dtype and device of the tensors they scale when used.

Prediction targets (Salimans & Ho, "Progressive Distillation", ICLR 2022, Sec. 4): with
``x_t = a x_0 + s eps`` (``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)``, ``a^2 + s^2 = 1``) the velocity is
``v = a eps - s x_0``, and ``x_0 = a x_t - s v``, ``eps = s x_t + a v``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

Schedule = Literal["linear", "cosine"]


def linear_betas(timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. 2020, Sec. 4: ``beta_t`` rising linearly from 1e-4 to 0.02 over T = 1000 steps."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal, "Improved DDPM", ICML 2021, Eq. 17: ``abar_t = f(t) / f(0)`` with
    ``f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2)``, ``beta_t = 1 - abar_t / abar_{t-1}`` clipped at 0.999
    so that the last steps (where ``abar`` reaches 0) stay finite."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def make_betas(schedule: Schedule, timesteps: int) -> torch.Tensor:
    """The ``beta`` table of a named schedule."""
    if schedule == "linear":
        return linear_betas(timesteps)
    if schedule == "cosine":
        return cosine_betas(timesteps)
    raise ValueError(f"loss.schedule must be linear or cosine, got {schedule!r}.")


def timestep_subsequence(timesteps: int, steps: int) -> torch.Tensor:
    """``steps`` indices of ``0..timesteps-1``, evenly spaced, ascending, always with the last (noisiest)
    index: the sub-sequence ``tau`` a short sampler visits (Song et al. 2021, Sec. 4.2 and App. D.2)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(
            f"sampling steps must be in 1..{timesteps} (the training schedule's T), got {steps}."
        )
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long().flip(0)


class GaussianDiffusion:
    """The forward process of ``betas`` (a float64 table of length T) and its closed forms.

    ``respaced(tau)`` is the process that only visits the indices ``tau``: its ``abar`` are the originals at
    ``tau``, its ``beta_i = 1 - abar_{tau_i} / abar_{tau_{i-1}}`` (Nichol & Dhariwal 2021, Sec. 4), so a
    DDPM or DDIM sampler runs on it unchanged; ``net_timesteps[i]`` is the index the network was trained
    with for its step ``i``.
    """

    def __init__(self, betas: torch.Tensor, net_timesteps: torch.Tensor | None = None):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a 1-D table of values in (0, 1).")
        self.betas = betas
        self.timesteps = len(betas)
        self.net_timesteps = torch.arange(len(betas)) if net_timesteps is None else net_timesteps.long()
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # Ho et al. Eq. 7; zero at index 0, where x_0 is reached
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef_x0 = betas * self.alphas_cumprod_prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef_xt = (
            (1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1.0 - self.alphas_cumprod)
        )

    @classmethod
    def from_schedule(cls, schedule: Schedule = "linear", timesteps: int = 1000) -> GaussianDiffusion:
        return cls(make_betas(schedule, timesteps))

    def respaced(self, indices: Sequence[int] | torch.Tensor) -> GaussianDiffusion:
        """The process restricted to ``indices`` (ascending) of this one."""
        indices = torch.as_tensor(indices).long()
        abar = self.alphas_cumprod[indices]
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        return GaussianDiffusion(1.0 - abar / abar_prev, self.net_timesteps[indices])

    @staticmethod
    def gather(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` shaped ``(B, 1, ..., 1)`` to broadcast over ``like``, in its dtype and device."""
        values = table[t.cpu().long()].to(device=like.device, dtype=like.dtype)
        return values.view(-1, *([1] * (like.ndim - 1)))

    def signal_noise(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sqrt(abar_t), sqrt(1 - abar_t))``, the scales of ``x_0`` and ``eps`` in ``x_t``."""
        return (
            self.gather(self.alphas_cumprod.sqrt(), t, like),
            self.gather((1.0 - self.alphas_cumprod).sqrt(), t, like),
        )

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A draw of ``q(x_t | x_0)`` (Ho et al. Eq. 4) with the standard normal ``noise``."""
        a, s = self.signal_noise(t, x0)
        return a * x0 + s * noise

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance (broadcastable) of ``q(x_{t-1} | x_t, x_0)``, Ho et al. Eq. 6-7."""
        mean = (
            self.gather(self.posterior_mean_coef_x0, t, xt) * x0
            + self.gather(self.posterior_mean_coef_xt, t, xt) * xt
        )
        return mean, self.gather(self.posterior_variance, t, xt)

    def x0_from_eps(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        a, s = self.signal_noise(t, xt)
        return (xt - s * eps) / a

    def eps_from_x0(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        a, s = self.signal_noise(t, xt)
        return (xt - a * x0) / s

    def v_from_x0_eps(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``v = sqrt(abar) eps - sqrt(1 - abar) x_0`` (Salimans & Ho 2022, Sec. 4)."""
        a, s = self.signal_noise(t, x0)
        return a * eps - s * x0

    def x0_eps_from_v(
        self, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_0, eps)`` of ``x_t`` and its velocity ``v``: ``x_0 = a x_t - s v``, ``eps = s x_t + a v``."""
        a, s = self.signal_noise(t, xt)
        return a * xt - s * v, s * xt + a * v
