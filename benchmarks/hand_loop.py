"""The reference vidgen is measured against: a minimal idiomatic PyTorch training loop, nothing extra.

Each step uses the same nets and optimizers as vidgen (built from the same config; the optimizers from the
family's own ``configure_optimizers``) and the same loss, written as pytorch/examples would: no logging,
no checks, no callbacks. ``overhead.py`` times it against vidgen, ``mfu.py`` counts and profiles its
FLOPs, ``variants.py`` times it with channels_last and torch.compile, ``quality_parity.py`` trains with
its GAN step and compares the FID of what it learns with vidgen's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from common import intervals, loader
from vidgen.value_range import to_unit


def hand_gan_step(model) -> Callable[[torch.Tensor], None]:
    """pytorch/examples' dcgan step with the same nets, optimizers and non-saturating loss (softplus)."""
    opt_g, opt_d = model.configure_optimizers()
    return gan_step(model.generator, model.discriminator, opt_g, opt_d, model.latent_dim)


def gan_step(
    g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, latent_dim: int
) -> Callable[[torch.Tensor], None]:
    """One iteration of Goodfellow et al. 2014, Algorithm 1 (k = 1), with the non-saturating G loss, as
    pytorch/examples' dcgan writes it: z ~ N(0, I) for the batch, one D update on the real batch and
    ``G(z).detach()``, then one G update on the same fakes through the updated D. ``quality_parity.py``
    trains with it; the other sections time it."""

    def step(real: torch.Tensor) -> None:
        fake = g(torch.randn(real.shape[0], latent_dim))
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-d(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


def hand_sequence_step(model) -> Callable[[torch.Tensor], None]:
    """Observe T_in frames, predict T_out, MSE of sigmoid(logits) in [0, 1], one Adam step."""
    net, opt = model.net, model.configure_optimizers()
    t_in, t_out = model.num_input_frames, model.num_output_frames

    def step(video: torch.Tensor) -> None:
        unit = to_unit(video, model.value_range)
        context, target = unit[:, :t_in], unit[:, t_in : t_in + t_out]
        loss = F.mse_loss(torch.sigmoid(net(context, t_out, targets=target)["future"]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def hand_vae_step(model) -> Callable[[torch.Tensor], None]:
    """Kingma & Welling's step as pytorch/examples' vae writes it: encode, one reparameterised z, decode,
    the negative ELBO (the family's own ``ELBOLoss``, so the same likelihood and beta), one Adam step."""
    net, loss_fn, opt = model.net, model.loss, model.configure_optimizers()

    def step(x: torch.Tensor) -> None:
        target = to_unit(x, model.value_range).clamp(0, 1)
        mu, logvar = net.encode(target)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        loss = loss_fn(net.decode(z), target, mu, logvar)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def hand_diffusion_step(model) -> Callable[[torch.Tensor], None]:
    """Ho et al. 2020, Algorithm 1 as their code and diffusers' examples write it: t ~ U{0..T-1},
    eps ~ N(0, I), x_t in closed form, MSE of the net's eps (the family's own loss object, so the same
    schedule and objective), one Adam step, then the EMA of the weights the papers sample with (the
    family's ``AveragedModel``, its warmed-up decay)."""
    net, loss_fn, opt = model.net, model.loss, model.configure_optimizers()

    def step(x: torch.Tensor) -> None:
        loss = loss_fn(lambda x_t, t: net(x_t, t), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if model.net_ema is not None:
            model.update_ema()

    return step


# One hand-written step per workload of common.WORKLOADS: an unknown workload fails here, not silently.
HAND_STEPS = {"dcgan": hand_gan_step, "convlstm": hand_sequence_step, "vae": hand_vae_step,
              "diffusion": hand_diffusion_step, "wavegan": hand_gan_step}  # fmt: skip


def hand_step(name: str, model) -> Callable[[torch.Tensor], None]:
    return HAND_STEPS[name](model)


def build_hand_step(
    name: str, cfg: DictConfig, batch: tuple, variant: str = "eager"
) -> tuple[Callable[[torch.Tensor], None], tuple]:
    """The hand loop's step on a freshly built (seeded) model of ``cfg``, and ``batch`` in the memory
    format of ``variant`` (see ``time_hand``)."""
    L.seed_everything(cfg.seed, verbose=False)
    model = instantiate(cfg.model)
    model.train()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = batch[0]
        batch = (x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x, batch[1])
    if variant == "compile":
        for attr in ("generator", "discriminator", "net"):
            if hasattr(model, attr):
                setattr(model, attr, torch.compile(getattr(model, attr)))
    return hand_step(name, model), batch


def time_hand(name: str, cfg: DictConfig, batch: tuple, s: dict, variant: str = "eager") -> list[float]:
    """Seconds of each of ``steps`` steps of the hand-written loop, after ``warmup`` untimed ones.

    ``variant``: ``eager`` (the reference), ``channels_last`` (nets and batches in NHWC memory format), or
    ``compile`` (``torch.compile`` of each net, default inductor backend; compilation is in the warm-up).
    """
    step, batch = build_hand_step(name, cfg, batch, variant)
    ends = []
    for x, _ in loader(batch, s["warmup"] + s["steps"]):
        step(x)
        ends.append(time.perf_counter())
    return intervals(ends, s["warmup"])
