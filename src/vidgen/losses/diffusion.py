"""Denoising objectives of the diffusion family: what the network predicts from a noised image.

Every loss takes ``denoise(x_t, t) -> output`` (the network, its time input as a float tensor ``(B,)``) and
clean images ``x_0`` in [-1, 1], draws the time and the noise, and returns the mean squared error of the
output against its target, averaged over pixels and images (Ho et al.'s "simple" loss, their Eq. 14). Each
also turns the network's output back into what samplers use (``predictor``), since only the loss knows what
was predicted, and names the samplers that fit its process (``samplers``; the first is the default).

- ``EpsilonLoss``: ``eps`` (Ho et al. 2020, Eq. 14), the noise in
  ``x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps``.
- ``VelocityLoss``: ``v = sqrt(abar) eps - sqrt(1 - abar) x_0`` (Salimans & Ho 2022, Sec. 4 and App. D).
- ``FlowMatchingLoss``: ``eps - x_0`` on the path ``x_t = (1 - t) x_0 + t eps`` (Lipman et al. 2023;
  Liu et al. 2023), a velocity integrated by an ODE solver.

The forward process (schedule and T) belongs to the objective: ``loss.schedule``/``loss.timesteps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F

from vidgen.diffusion.flow import LinearFlowPath
from vidgen.diffusion.schedules import GaussianDiffusion, Schedule

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _noise(x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(x0)
    return torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype).to(x0.device)


class DiffusionLoss:
    """Interface: ``loss(denoise, x0, generator=None)`` -> scalar loss; ``predictor(denoise)``."""

    kind = "diffusion"  # the loss_kind of the families it trains (DiffusionModule)
    # the sampler names (vidgen.diffusion.samplers.SAMPLERS) that integrate this loss's process
    samplers: ClassVar[tuple[str, ...]] = ()

    def __call__(
        self, denoise: Denoise, x0: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def predictor(self, denoise: Denoise) -> Callable:
        raise NotImplementedError


class GaussianDiffusionLoss(DiffusionLoss):
    """Base of the objectives on the Gaussian process of ``schedule`` with ``timesteps`` steps.

    The time is uniform over the ``timesteps`` indices (Ho et al. Algorithm 1); the network sees the index.

    Args:
        schedule: ``linear`` (Ho et al. 2020) or ``cosine`` (Nichol & Dhariwal 2021).
        timesteps: T (1000 in both papers).
    """

    samplers = ("ddim", "ddpm")

    def __init__(self, schedule: Schedule = "linear", timesteps: int = 1000):
        if timesteps < 1:
            raise ValueError(f"loss.timesteps must be >= 1 (the papers: 1000), got {timesteps}.")
        self.schedule = schedule
        self.diffusion = GaussianDiffusion.from_schedule(schedule, timesteps)

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def x0_eps(
        self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_0, eps)`` implied by the network's ``out`` at ``x_t`` and index ``t``."""
        raise NotImplementedError

    def __call__(
        self, denoise: Denoise, x0: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        device = generator.device if generator is not None else x0.device
        t = torch.randint(0, self.diffusion.timesteps, (len(x0),), generator=generator, device=device)
        t = t.to(x0.device)
        eps = _noise(x0, generator)
        xt = self.diffusion.q_sample(x0, t, eps)
        return F.mse_loss(denoise(xt, t.to(x0.dtype)), self.target(x0, eps, t))

    def predictor(
        self, denoise: Denoise
    ) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``(x_t, t) -> (x_0, eps)``, ``t`` long indices of the training schedule."""

        def predict(xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.x0_eps(denoise(xt, t.to(xt.dtype)), xt, t)

        return predict


class EpsilonLoss(GaussianDiffusionLoss):
    """``||eps - eps_theta(x_t, t)||^2``, Ho et al. 2020, Eq. 14 (``L_simple``)."""

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return eps

    def x0_eps(
        self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.diffusion.x0_from_eps(xt, t, out), out


class VelocityLoss(GaussianDiffusionLoss):
    """``||v - v_theta(x_t, t)||^2`` with ``v = sqrt(abar) eps - sqrt(1 - abar) x_0``, Salimans & Ho 2022:
    well scaled at both ends of the schedule, where predicting ``eps`` (near ``x_0``) or ``x_0`` (near
    noise) is ill-conditioned; needed by the cosine schedule's last steps, where ``abar`` reaches ~0."""

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.diffusion.v_from_x0_eps(x0, t, eps)

    def x0_eps(
        self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.diffusion.x0_eps_from_v(xt, t, out)


class FlowMatchingLoss(DiffusionLoss):
    """Conditional flow matching on the linear path: ``||(eps - x_0) - v_theta(x_t, t)||^2`` with
    ``t ~ U[0, 1]`` (Lipman et al. 2023, Eq. 23 with ``sigma_min = 0``; Liu et al. 2023, Eq. 1).

    Args:
        time_scale: the network sees ``t * time_scale``: 1000 puts ``t in [0, 1]`` on the range of the
            DDPM indices its sinusoidal time embedding was designed for.
    """

    samplers = ("euler", "heun")

    def __init__(self, time_scale: float = 1000.0):
        if time_scale <= 0:
            raise ValueError(f"loss.time_scale must be > 0, got {time_scale}.")
        self.time_scale = time_scale
        self.path = LinearFlowPath()

    def __call__(
        self, denoise: Denoise, x0: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        device = generator.device if generator is not None else x0.device
        t = torch.rand(len(x0), generator=generator, device=device, dtype=x0.dtype).to(x0.device)
        eps = _noise(x0, generator)
        xt = self.path.sample(x0, t, eps)
        return F.mse_loss(denoise(xt, t * self.time_scale), self.path.velocity(x0, eps))

    def predictor(self, denoise: Denoise) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``(x_t, t) -> dx/dt``, ``t`` in [0, 1]."""

        def velocity(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return denoise(xt, t.to(xt) * self.time_scale)

        return velocity
