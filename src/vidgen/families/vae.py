"""The VAE family: a Gaussian-latent auto-encoder trained by maximising the (beta-)ELBO.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (arXiv:1312.6114): the encoder gives
``q(z|x) = N(mu, diag(exp(logvar)))``, one ``z = mu + sigma * eps`` per image (the reparameterisation
trick, Eq. 10 with L = 1) is decoded, and the loss (``vidgen.losses.elbo``) scores the decoder's output
under the chosen likelihood. Images are mapped from the data's ``value_range`` to [0, 1] here (the
Bernoulli likelihood needs it), and ``sample`` maps the decoder's mean back, so any image datamodule and
the sample-grid and FID callbacks work unchanged.

Logged, in nats per image: ``recon_nats`` (``-E_q[log p(x|z)]``), ``kl_nats`` (``KL(q(z|x) || p(z))``) and
``elbo_nats`` (their negated sum, the ELBO itself; higher is better), for ``train/``, ``val/`` and
``test/``, the trained objective ``train/loss`` (``recon + beta KL``), and the test NLL of the likelihood
papers, ``test/nll_iwae_k<k>_nats`` (``importance_sampled_nll``; k = 5000 by default, as Burda et al. 2016),
beside ``test/nll_iwae_k<k>_nats_pixel_marginal``, the exact NLL of the trivial baseline every likelihood
model must beat (independent pixels with the training images' mean intensities), and ``test/n_images``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, SumMetric

from vidgen.families.base import GenerativeModule
from vidgen.families.memory_format import channels_last_images, to_channels_last
from vidgen.losses.elbo import ELBOLoss
from vidgen.value_range import check_value_range, from_unit, to_unit

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class VAEModule(GenerativeModule):
    """Trains ``net`` (``encode`` -> ``(mu, logvar)``, ``decode`` -> outputs) with ``loss``.

    Args:
        net: module with ``latent_dim``, ``encode(x)`` and ``decode(z)`` (``vidgen.nets.vae_*``).
        loss: an ``ELBOLoss`` (``loss=elbo``).
        optimizer: optimizer factory (``_partial_: true``).
        value_range: pixel range of the data (``${data.value_range}``).
        nll_samples: importance samples k of the test NLL, ``test/nll_iwae_k<k>_nats``
            (``importance_sampled_nll``); 5000, as Burda et al. 2016 evaluated their models.
        channels_last: keep the conv weights and the image batches in channels-last memory format, which
            oneDNN's CPU convolutions run faster on (``vidgen.families.memory_format``); speed only.
    """

    data_kind = "image"
    loss_kind = "elbo"
    test_metrics = ("sample_quality", "nll")

    def __init__(
        self,
        net: nn.Module,
        loss: ELBOLoss,
        optimizer: OptimizerFactory,
        value_range: tuple[float, float] = (-1.0, 1.0),
        nll_samples: int = 5000,
        channels_last: bool = False,
    ):
        super().__init__()
        self.value_range = check_value_range(value_range, "model.value_range")
        if nll_samples < 1:
            raise ValueError(f"model.nll_samples must be >= 1 (Burda et al. 2016: 5000), got {nll_samples}.")
        self.net = net
        self.loss = loss
        self.optimizer = optimizer
        self.nll_samples = nll_samples
        # the key names k: NLLs estimated with different k are different numbers
        self.nll_key = f"nll_iwae_k{nll_samples}_nats"
        # Test means as torchmetrics objects: weighted by batch size and reduced over DDP ranks, which
        # self.log of per-batch means is not. Their states are not saved in checkpoints.
        means = ("recon_nats", "kl_nats", "elbo_nats", self.nll_key, f"{self.nll_key}_pixel_marginal")
        self.test_means = nn.ModuleDict({k: MeanMetric() for k in means})
        self.test_count = SumMetric()
        self.pixel_marginal_logits: torch.Tensor | None = None
        self.channels_last = channels_last
        if channels_last:
            to_channels_last(self)

    @property
    def latent_dim(self) -> int:
        return self.net.latent_dim

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` mapped from ``value_range`` to [0, 1], in the layout the net is kept in."""
        x = channels_last_images(x) if self.channels_last else x
        return to_unit(x, self.value_range, clamp=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encodes ``x`` (in ``value_range``), decodes one reparameterised z; returns the loss terms."""
        target = self.to_unit(x)
        mu, logvar = self.net.encode(target)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.loss(self.net.decode(z), target, mu, logvar)

    def draw(self, num: int, generator: torch.Generator | None, labels: torch.Tensor | None,
             context: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """Decoder means of ``z ~ N(0, I)``, in the data's ``value_range``."""
        z = torch.randn(num, self.latent_dim, generator=generator).to(self.device)
        return from_unit(self.loss.mean(self.net.decode(z)), self.value_range)

    def _log_terms(self, split: str, terms: dict[str, torch.Tensor]) -> None:
        # Epoch means under their plain names (train/recon_nats, ...); train/loss also per step.
        self.log_dict(
            {f"{split}/{k}": v for k, v in terms.items() if k != "loss"}, on_step=False, on_epoch=True
        )

    def on_train_epoch_start(self) -> None:
        self._train_sums: dict[str, torch.Tensor] = {}
        self._train_count = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self(batch[0])
        # The step loss only on the steps the loggers write, and the epoch means summed here and logged once
        # at the epoch's end instead of self.log(..., on_epoch=True) per step: each self.log costs 0.5-1 ms
        # in Lightning 2.6, several per cent of a conv-VAE step at batch 128 (docs/PERFORMANCE.md,
        # overhead). FiniteLossCheck reads the returned loss, so divergence is still caught every step.
        if self.writes_step_logs():
            self.log("train/loss_step", terms["loss"], prog_bar=True)
        n = len(batch[0])
        for key, value in terms.items():
            total = value.detach() * n
            self._train_sums[key] = self._train_sums[key] + total if key in self._train_sums else total
        self._train_count += n
        return terms["loss"]

    def on_train_epoch_end(self) -> None:
        if not self._train_count:
            return
        # the same keys as on_epoch logging gives (train/loss_epoch, train/recon_nats, ...); under DDP the
        # ranks' means are averaged, which is the global mean since every rank sees as many images
        names = {k: "train/loss_epoch" if k == "loss" else f"train/{k}" for k in self._train_sums}
        self.log_dict({names[k]: v / self._train_count for k, v in self._train_sums.items()}, sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        terms = self(batch[0])
        self.log("val/loss", terms["loss"])
        self._log_terms("val", terms)

    @torch.no_grad()
    def importance_sampled_nll(
        self,
        x: torch.Tensor,
        k: int = 5000,
        chunk: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``-log p(x)`` per image in nats, estimated with ``k`` importance samples from ``q(z|x)``.

        Burda et al., "Importance Weighted Autoencoders", ICLR 2016, Eq. 8:
        ``log p(x) ~ L_k = log (1/k) sum_i w_i``, ``w_i = p(x|z_i) p(z_i) / q(z_i|x)``, ``z_i ~ q(z|x)``.
        ``E[L_k]`` is a lower bound of ``log p(x)`` that never decreases as k grows (their Theorem 1), so
        the returned NLL ``-L_k`` is, on average, at most the ELBO's ``-ELBO``; at k = 1 it is the
        single-sample ELBO estimate ``-(log p(x|z) + log p(z) - log q(z|x))`` of the same ``z``.

        ``chunk`` samples are decoded per pass (default: about 4096 decoded images a pass, whatever the
        batch size); ``generator`` fixes the draws of ``z``. The log-weights are summed in float64.
        """
        target = self.to_unit(x)
        mu, logvar = self.net.encode(target)
        std = torch.exp(0.5 * logvar)
        chunk = chunk or max(1, 4096 // len(x))
        log_weights = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            device = mu.device if generator is None else generator.device
            eps = torch.randn(n, *mu.shape, generator=generator, device=device).to(mu.device)
            z = mu + eps * std  # (n, B, D)
            out = self.net.decode(z.flatten(0, 1))
            targets = target.expand(n, *target.shape).flatten(0, 1)
            log_px = self.loss.log_likelihood(out, targets).view(n, -1)
            log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
            log_qz = -0.5 * (eps.pow(2) + math.log(2 * math.pi) + logvar).sum(-1)
            log_weights.append((log_px + log_pz - log_qz).double())
        return -(torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k)).float()

    @torch.no_grad()
    def fit_pixel_marginal(self, images: Iterable[torch.Tensor]) -> torch.Tensor:
        """Decoder-output logits of the independent-pixels model fitted to ``images`` (batches in
        ``value_range``): each pixel's mean intensity, the maximum-likelihood Bernoulli parameter of
        binarized draws of them. Kept within [1e-4, 1 - 1e-4] so that a pixel never lit in training
        costs 9.2 nats in a test image where it is lit, not infinity."""
        total, count = None, 0
        for x in images:
            unit = to_unit(x.to(self.device), self.value_range, clamp=True).double()
            total = unit.sum(0) if total is None else total + unit.sum(0)
            count += len(unit)
        if total is None:
            raise ValueError("the training split has no images to fit the independent-pixels baseline to")
        return torch.logit((total / count).clamp(1e-4, 1 - 1e-4)).float()

    def on_test_start(self) -> None:
        # The baseline's pixel means come from the training split the datamodule defines; a datamodule
        # without vidgen's ``splits`` gets no baseline rather than one fitted to other data.
        splits = getattr(self.trainer.datamodule, "splits", None) or {}
        if "train" in splits and self.pixel_marginal_logits is None:
            # its own generator: iterating a DataLoader draws a seed from the generator it is given, and
            # the global one would shift every later draw of the test (the IWAE samples, the fakes)
            loader = DataLoader(splits["train"], batch_size=1024, shuffle=False, generator=torch.Generator())
            self.pixel_marginal_logits = self.fit_pixel_marginal(batch[0] for batch in loader)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Test ELBO terms and ``test/nll_iwae_k<k>_nats``, the IWAE estimate of the NLL with
        ``nll_samples`` samples (Burda et al. 2016's protocol on binarized MNIST: k = 5000), and the
        independent-pixels baseline's exact NLL of the same images."""
        x = batch[0]
        terms = {k: v for k, v in self(x).items() if k != "loss"}
        terms[self.nll_key] = self.importance_sampled_nll(x, self.nll_samples).mean()
        if self.pixel_marginal_logits is not None:
            target = self.to_unit(x)
            logits = self.pixel_marginal_logits.to(target).expand_as(target)
            terms[f"{self.nll_key}_pixel_marginal"] = -self.loss.log_likelihood(logits, target).mean()
        for key, value in terms.items():
            self.test_means[key].update(value.detach(), weight=len(x))
            self.log(f"test/{key}", self.test_means[key], on_step=False, on_epoch=True)
        self.test_count.update(torch.tensor(float(len(x)), device=self.device))
        self.log("test/n_images", self.test_count, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.net.parameters())
