"""Samplers: from noise to images with a trained denoiser, chosen at sampling time.

A sampler is an object apart from the network and its training (as diffusers' schedulers are): the same
checkpoint samples with any sampler its objective allows (``loss.samplers``), with any number of steps.
Each is called as ``sampler(loss, denoise, noise, generator)``: ``loss`` turns the network's output into
what the sampler needs (``loss.predictor``) and holds the process, ``noise`` is the start ``x_T``, and
``generator`` draws the noise a stochastic sampler adds on the way.

- ``DDPMSampler``: ancestral sampling, Ho et al. 2020, Algorithm 2, with the posterior variance
  ``beta~_t`` (their "sigma_t^2 = beta~_t" choice); fewer than T steps run on the respaced process
  (Nichol & Dhariwal 2021, Sec. 4).
- ``DDIMSampler``: Song, Meng & Ermon, "Denoising Diffusion Implicit Models", ICLR 2021, Eq. 12 on a
  sub-sequence of the steps, with ``sigma(eta)`` of their Eq. 16: ``eta = 0`` is deterministic, ``eta = 1``
  has DDPM's posterior variance.
- ``EulerSampler``, ``HeunSampler``: first- and second-order integration of the flow-matching ODE
  ``dx/dt = v(x, t)`` from ``t = 1`` to 0 (Heun's method as in Karras et al. 2022, Algorithm 1, without
  its noise schedule), ``steps`` steps of equal length (Heun: 2 network evaluations per step).

The predicted ``x_0`` is clipped to [-1, 1] at each Gaussian step when ``clip_denoised`` (Ho et al.'s
released sampler does so); the implied ``eps`` is then recomputed from the clipped ``x_0``, so that the
DDIM step stays the DDPM posterior mean at ``eta = 1``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import ClassVar, Protocol

import torch
from tqdm.auto import tqdm

from vidgen.diffusion.schedules import GaussianDiffusion, timestep_subsequence

log = logging.getLogger(__name__)

# the network as samplers call it: (x_t, t as a float tensor (B,)) -> its output
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Objective(Protocol):
    """What a sampler needs of a training objective (``vidgen.losses.diffusion``): the network's output
    turned into ``(x_0, eps)`` at step indices (Gaussian) or into a velocity at times in [0, 1] (flow)."""

    def predictor(self, denoise: Denoise) -> Callable: ...


class GaussianObjective(Objective, Protocol):
    diffusion: GaussianDiffusion


# steps from which a sampler shows a progress bar (on a terminal) and logs what it runs
LONG = 100


def _progress(steps: Iterable[int], total: int, name: str) -> Iterable[int]:
    if total >= LONG:
        log.info(f"sampling with {name}: {total} steps")
    # disable=None: a bar on a terminal, nothing in log files and captured output
    return tqdm(steps, total=total, desc=name, leave=False, disable=True if total < LONG else None)


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


class Sampler:
    """Interface of the samplers; ``name`` is the value of ``model.sampler`` that selects it."""

    name: ClassVar[str] = ""

    def __init__(self, steps: int):
        if steps < 1:
            raise ValueError(f"model.sampling_steps must be >= 1, got {steps}.")
        self.steps = steps

    def __call__(
        self, loss: Objective, denoise: Denoise, noise: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


class GaussianSampler(Sampler):
    """Base of the samplers of a Gaussian diffusion: the respaced process and the clipped prediction."""

    def __init__(self, steps: int = 1000, clip_denoised: bool = True):
        super().__init__(steps)
        self.clip_denoised = clip_denoised

    def process(self, loss: GaussianObjective) -> GaussianDiffusion:
        """The training process restricted to ``steps`` evenly spaced steps (all of them when equal)."""
        full = loss.diffusion
        return full.respaced(timestep_subsequence(full.timesteps, self.steps))

    def denoised(
        self, predict: Callable, process: GaussianDiffusion, x: torch.Tensor, i: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(t, x_0, eps)`` predicted at step ``i`` of ``process`` (``t``: that step, per image)."""
        t = torch.full((len(x),), i, dtype=torch.long)
        x0, eps = predict(x, process.net_timesteps[t].to(x.device))
        if self.clip_denoised:
            x0 = x0.clamp(-1.0, 1.0)
            eps = process.eps_from_x0(x, t, x0)
        return t, x0, eps


class DDPMSampler(GaussianSampler):
    """``x_{t-1} = mu~(x_0_hat, x_t) + sqrt(beta~_t) z`` (Ho et al. 2020, Algorithm 2 written with the
    posterior of Eq. 7), no noise at the last step."""

    name = "ddpm"

    def __call__(
        self,
        loss: GaussianObjective,
        denoise: Denoise,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        process, predict, x = self.process(loss), loss.predictor(denoise), noise
        for i in _progress(reversed(range(process.timesteps)), process.timesteps, self.name):
            t, x0, _ = self.denoised(predict, process, x, i)
            mean, variance = process.q_posterior(x0, x, t)
            x = mean + variance.sqrt() * _randn(x, generator) if i > 0 else mean
        return x


class DDIMSampler(GaussianSampler):
    """Song et al. 2021, Eq. 12: ``x_prev = sqrt(abar_prev) x_0_hat + sqrt(1 - abar_prev - sigma^2) eps_hat
    + sigma z`` with ``sigma^2 = eta^2 beta~`` of the respaced process (their Eq. 16).

    Args:
        steps: length S of the sub-sequence (50 in their CIFAR-10 row of Table 1 that this repo cites).
        eta: 0 = DDIM (deterministic given ``x_T``), 1 = DDPM's variance.
        clip_denoised: clip the predicted ``x_0`` to [-1, 1].
    """

    name = "ddim"

    def __init__(self, steps: int = 50, eta: float = 0.0, clip_denoised: bool = True):
        super().__init__(steps, clip_denoised)
        if eta < 0:
            raise ValueError(f"model.eta must be >= 0 (0 = DDIM, 1 = DDPM variance), got {eta}.")
        self.eta = eta

    def variances(self, process: GaussianDiffusion) -> torch.Tensor:
        """``sigma_i^2 = eta^2 (1 - abar_prev) / (1 - abar) (1 - abar / abar_prev)``, float64, per step."""
        return self.eta**2 * process.posterior_variance

    def __call__(
        self,
        loss: GaussianObjective,
        denoise: Denoise,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        process, predict, x = self.process(loss), loss.predictor(denoise), noise
        variances = self.variances(process)
        for i in _progress(reversed(range(process.timesteps)), process.timesteps, self.name):
            _, x0, eps = self.denoised(predict, process, x, i)
            abar_prev = process.alphas_cumprod_prev[i]
            variance = variances[i]
            x = abar_prev.sqrt().item() * x0 + (1.0 - abar_prev - variance).clamp(min=0).sqrt().item() * eps
            if variance > 0:
                x = x + variance.sqrt().item() * _randn(x, generator)
        return x


class EulerSampler(Sampler):
    """``x <- x + (t_next - t) v(x, t)`` on ``steps`` equal steps from ``t = 1`` to 0."""

    name = "euler"

    def __call__(
        self, loss: Objective, denoise: Denoise, noise: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        velocity, x = loss.predictor(denoise), noise
        times = torch.linspace(1.0, 0.0, self.steps + 1, dtype=torch.float64)
        for k in _progress(range(self.steps), self.steps, self.name):
            t = times[k].expand(len(x))
            x = x + (times[k + 1] - times[k]).item() * velocity(x, t)
        return x


class HeunSampler(Sampler):
    """Heun's method (explicit trapezoid): an Euler step, then the mean of the velocities at both ends."""

    name = "heun"

    def __call__(
        self, loss: Objective, denoise: Denoise, noise: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        velocity, x = loss.predictor(denoise), noise
        times = torch.linspace(1.0, 0.0, self.steps + 1, dtype=torch.float64)
        for k in _progress(range(self.steps), self.steps, self.name):
            dt = (times[k + 1] - times[k]).item()
            v = velocity(x, times[k].expand(len(x)))
            v_next = velocity(x + dt * v, times[k + 1].expand(len(x)))
            x = x + dt * 0.5 * (v + v_next)
        return x


# model.sampler -> class: the options a family offers (each objective names those that fit it)
SAMPLERS: dict[str, type[Sampler]] = {
    s.name: s for s in (DDPMSampler, DDIMSampler, EulerSampler, HeunSampler)
}


def make_sampler(name: str, steps: int, eta: float = 0.0, clip_denoised: bool = True) -> Sampler:
    """The sampler ``name`` with ``steps`` steps (``eta`` for DDIM, ``clip_denoised`` for DDPM/DDIM)."""
    if name == "ddim":
        return DDIMSampler(steps, eta, clip_denoised)
    if name == "ddpm":
        return DDPMSampler(steps, clip_denoised)
    if name in SAMPLERS:
        return SAMPLERS[name](steps)
    raise ValueError(f"model.sampler must be one of {', '.join(SAMPLERS)}, got {name!r}.")
