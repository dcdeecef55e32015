"""The GAN family: adversarial training of an image generator against a discriminator.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), Algorithm 1:
alternate ``n_critic`` discriminator updates with one generator update. The architectures (``nn.Module``)
and the loss (``vidgen.losses.gan``) are chosen by config; this module only holds the training loop.
Two optimizers need Lightning's manual optimization.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import lightning as L
import torch
from torch import nn

from vidgen.losses.gan import GANLoss

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class GANModule(L.LightningModule):
    """Trains ``generator`` (z -> image) against ``discriminator`` (image -> logit) with ``loss``.

    Batches are ``(images, labels)`` with images ``(B, C, H, W)`` in [-1, 1].

    Args:
        generator: module with attribute ``latent_dim``, mapping ``(B, latent_dim)`` to images.
        discriminator: module mapping images to logits ``(B,)``.
        loss: a ``GANLoss`` (``loss=`` config group).
        optimizer_g, optimizer_d: optimizer factories (``_partial_: true`` configs).
        n_critic: discriminator updates per generator update (1 in Goodfellow 2014 and DCGAN).
    """

    family = "gan"
    data_kind = "image"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        n_critic: int = 1,
    ):
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"model.n_critic must be >= 1, got {n_critic}.")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.n_critic = n_critic

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` images from the generator in eval mode; ``generator`` fixes the noise."""
        z = torch.randn(num, self.latent_dim, generator=generator).to(self.device)
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z)
        finally:
            self.generator.train(was_training)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real = batch[0]
        opt_g, opt_d = self.optimizers()
        fake = self.generator(torch.randn(real.shape[0], self.latent_dim, device=self.device))

        d_loss = self.loss.discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.log("train/d_loss", d_loss, prog_bar=True, on_epoch=True)

        # Every batch trains D; every n_critic-th also trains G, so each critic step sees fresh real data.
        if (batch_idx + 1) % self.n_critic == 0:
            g_loss = self.loss.generator_loss(self.discriminator(fake))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.log("train/g_loss", g_loss, prog_bar=True, on_epoch=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real = batch[0]
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device)
        fake_logits = self.discriminator(self.generator(z))
        d_loss = self.loss.discriminator_loss(self.discriminator(real), fake_logits)
        self.log_dict({"val/d_loss": d_loss, "val/g_loss": self.loss.generator_loss(fake_logits)})

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # Order matters: training_step unpacks (opt_g, opt_d).
        return [
            self.optimizer_g(self.generator.parameters()),
            self.optimizer_d(self.discriminator.parameters()),
        ]
