"""The GAN family: adversarial training of an image generator against a discriminator.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), Algorithm 1:
alternate ``n_critic`` discriminator updates with one generator update. The architectures (``nn.Module``)
and the loss (``vidgen.losses.gan``) are chosen by config; this module holds the training loop and the
options that apply to any pair of nets:

- ``spectral_norm``: every conv/linear/embedding weight of D divided by its largest singular value
  (Miyato et al., "Spectral Normalization for GANs", ICLR 2018), with torch's parametrization.
- ``num_classes``: a class-conditional GAN; G and D are called with the labels ``y`` (the nets choose
  how they use them: concatenation, conditional batch norm, projection) and ``sample`` cycles the classes.
- ``ema_decay``: an exponential moving average of G's weights (Yazici et al., "The Unusual
  Effectiveness of Averaging in GAN Training", ICLR 2019), used by ``sample`` (so by the sample grids and
  FID) and saved in checkpoints as ``generator_ema``.
- ``aux_class_weight``: AC-GAN's auxiliary classifier (Odena, Olah & Shlens, "Conditional Image Synthesis
  with Auxiliary Classifier GANs", ICML 2017) for a conditional GAN whose D has a class head: D also
  learns to tell the class of real samples (cross-entropy), G to make samples D's head reads as the
  requested class, both weighted by ``aux_class_weight``. D's head learns from real samples only; the
  paper also trains it on fakes, which rewards G for samples that only D's head can read.
- ``channels_last``, ``compile``: speed only; values equal up to float rounding (docs/PERFORMANCE.md).

Two optimizers need Lightning's manual optimization.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from vidgen.errors import ConfigError
from vidgen.families.base import GenerativeModule
from vidgen.families.ema import check_ema_decay, weight_average
from vidgen.families.memory_format import channels_last_images, to_channels_last
from vidgen.losses.gan import GANLoss

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Puts spectral normalization (one power iteration per forward, as in the paper) on every weight
    of ``module``'s conv, linear and embedding layers."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding)):
            add_spectral_norm(layer)
    return module


class GANModule(GenerativeModule):
    """Trains ``generator`` (z [, y] -> image) against ``discriminator`` (image [, y] -> logit) with ``loss``.

    Batches are ``(images, labels)`` with images ``(B, C, H, W)`` in [-1, 1].

    Args:
        generator: module with attribute ``latent_dim``, mapping ``(B, latent_dim)`` to images.
        discriminator: module mapping images to logits ``(B,)``.
        loss: a ``GANLoss`` (``loss=`` config group); its ``penalty`` is added to D's loss.
        optimizer_g, optimizer_d: optimizer factories (``_partial_: true`` configs).
        n_critic: discriminator updates per generator update (1 in Goodfellow 2014 and DCGAN, 5 in WGAN-GP).
        spectral_norm: apply spectral normalization to D's weights.
        num_classes: null for an unconditional GAN; the number of classes of a conditional one. Both
            nets must be built with the same ``num_classes``.
        ema_decay: null, or the decay of the generator's weight average used for sampling (e.g. 0.999).
        channels_last: keep the conv weights and the image batches in channels-last memory format,
            which oneDNN's CPU convolutions run faster on (``vidgen.families.memory_format``).
        compile: ``torch.compile`` G and D in place when fitting (``nn.Module.compile``, so checkpoint keys
            do not change). The first steps compile (speed-up: docs/PERFORMANCE.md). Not
            with a gradient-penalty loss: compiled graphs have no double backward.
        aux_class_weight: 0, or the weight of the AC-GAN class losses (conditional GANs whose
            discriminator has ``forward_with_class_logits`` and a class head, e.g. WaveGAN's
            ``class_head: true``).
    """

    data_kind = "image"
    loss_kind = "adversarial"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        n_critic: int = 1,
        spectral_norm: bool = False,
        num_classes: int | None = None,
        ema_decay: float | None = None,
        channels_last: bool = False,
        compile: bool = False,
        aux_class_weight: float = 0.0,
    ):
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"model.n_critic must be >= 1, got {n_critic}.")
        check_ema_decay(ema_decay, example=0.999)
        for role, net in (("generator", generator), ("discriminator", discriminator)):
            if getattr(net, "num_classes", None) != num_classes:
                raise ValueError(
                    f"model.num_classes={num_classes} but model.{role} ({type(net).__name__}) has "
                    f"num_classes={getattr(net, 'num_classes', None)}. Fix: build both nets with "
                    "num_classes: ${model.num_classes} (class-conditional nets: mlp_gan, resnet_gan)."
                )
        if compile and type(loss).penalty is not GANLoss.penalty:
            raise ConfigError(
                f"model.compile=true cannot train with {type(loss).__name__}: its gradient penalty needs a "
                "double backward, which torch.compile does not support. Fix: model.compile=false."
            )
        if aux_class_weight < 0:
            raise ValueError(f"model.aux_class_weight must be >= 0, got {aux_class_weight}.")
        if aux_class_weight and (num_classes is None or getattr(discriminator, "class_head", None) is None):
            raise ConfigError(
                f"model.aux_class_weight={aux_class_weight} needs a conditional model whose discriminator "
                f"has a class head; {type(discriminator).__name__} has none (num_classes={num_classes}). "
                "Fix: model.discriminator.class_head=true on a conditional WaveGAN (model=cwavegan), or "
                "model.aux_class_weight=0."
            )
        self.automatic_optimization = False
        self.aux_class_weight = aux_class_weight
        self.generator = generator
        self.discriminator = apply_spectral_norm(discriminator) if spectral_norm else discriminator
        self.loss = loss
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.n_critic = n_critic
        self.num_classes = num_classes
        self.generator_ema = weight_average(generator, ema_decay)
        self.channels_last = channels_last
        self.compile_nets = compile
        if channels_last:
            to_channels_last(self)

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # Compiled for fitting only (as lightning-hydra-template does): sampling and eval start fast.
        if stage == "fit" and self.compile_nets:
            self.generator.compile()
            self.discriminator.compile()

    def generate(self, z: torch.Tensor, y: torch.Tensor | None, net: nn.Module | None = None) -> torch.Tensor:
        net = self.generator if net is None else net
        return net(z) if self.num_classes is None else net(z, y)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        # Real batches arrive NCHW from the loader; G's fakes are channels-last already (a no-op then).
        x = channels_last_images(x) if self.channels_last else x
        return self.discriminator(x) if self.num_classes is None else self.discriminator(x, y)

    def logits_and_class_loss(self, x: Any, y: torch.Tensor, key: str) -> tuple[torch.Tensor, Any]:
        """D's real/fake logits of ``x`` and, with the auxiliary classifier, the cross-entropy of its class
        head against ``y`` from the same pass (logged as ``key``); 0 without it."""
        if not self.aux_class_weight:
            return self.discriminate(x, y), 0.0
        x = channels_last_images(x) if self.channels_last else x
        logits, classes = self.discriminator.forward_with_class_logits(x, y)
        class_loss = F.cross_entropy(classes, y)
        self.log(key, class_loss, on_epoch=True)
        return logits, class_loss

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generate(z, y)

    def draw(self, num: int, generator: torch.Generator | None, labels: torch.Tensor | None,
             context: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """The generator's images (its EMA when enabled) of ``z ~ N(0, I)``."""
        z = torch.randn(num, self.latent_dim, generator=generator).to(self.device)
        net = self.generator if self.generator_ema is None else self.generator_ema.module
        return self.generate(z, labels, net)

    def split_batch(self, batch: tuple[torch.Tensor, ...]) -> tuple[Any, torch.Tensor]:
        """The real samples of a batch, as ``discriminate`` takes them, and their labels: ``(x, y)`` here;
        a family whose batches hold more (the audio-visual pairs) overrides this, not the GAN step."""
        return batch[0], batch[1]

    def penalty(self, real: Any, fake: Any, y: torch.Tensor) -> torch.Tensor:
        """The loss's penalty on D (WGAN-GP's gradient penalty; 0 for the others) between real and fake."""
        return self.loss.penalty(partial(self.discriminate, y=y), real, fake)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        real, y = self.split_batch(batch)
        opt_g, opt_d = self.optimizers()
        fake = self.generate(torch.randn(len(batch[0]), self.latent_dim, device=self.device), y)

        real_logits, d_class_loss = self.logits_and_class_loss(real, y, "train/d_class_loss")
        d_loss = self.loss.discriminator_loss(real_logits, self.discriminate(fake.detach(), y))
        penalty = self.penalty(real, fake, y)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss + penalty + self.aux_class_weight * d_class_loss)
        opt_d.step()
        self.log("train/d_loss", d_loss, prog_bar=True, on_epoch=True)
        if penalty.requires_grad:
            self.log("train/d_penalty", penalty, on_epoch=True)

        # Every batch trains D; every n_critic-th also trains G, so each critic step sees fresh real data.
        if (batch_idx + 1) % self.n_critic == 0:
            fake_logits, g_class_loss = self.logits_and_class_loss(fake, y, "train/g_class_loss")
            g_loss = self.loss.generator_loss(fake_logits)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss + self.aux_class_weight * g_class_loss)
            opt_g.step()
            self.log("train/g_loss", g_loss, prog_bar=True, on_epoch=True)
            if self.generator_ema is not None:
                self.update_ema()

    @torch.no_grad()
    def update_ema(self) -> None:
        """Averages G's parameters; copies its buffers (batch-norm statistics) as they are."""
        self.generator_ema.update_parameters(self.generator)
        for averaged, live in zip(self.generator_ema.module.buffers(), self.generator.buffers(), strict=True):
            averaged.copy_(live)

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        real, y = self.split_batch(batch)
        z = torch.randn(len(batch[0]), self.latent_dim, device=self.device)
        fake_logits = self.discriminate(self.generate(z, y), y)
        d_loss = self.loss.discriminator_loss(self.discriminate(real, y), fake_logits)
        self.log_dict({"val/d_loss": d_loss, "val/g_loss": self.loss.generator_loss(fake_logits)})

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Nothing per batch: sample quality is measured by ``vidgen.callbacks.sample_quality``."""

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # Order matters: training_step unpacks (opt_g, opt_d).
        return [
            self.optimizer_g(self.generator.parameters()),
            self.optimizer_d(self.discriminator.parameters()),
        ]
