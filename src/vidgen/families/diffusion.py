"""The diffusion family: a denoising network trained on noised images, sampled by iterative denoising.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (arXiv:2006.11239),
Algorithm 1 (training) and 2 (sampling). What varies is chosen by config and kept apart:

- the objective and its forward process, ``loss=``: ``diffusion_eps`` (Ho et al.), ``diffusion_v``
  (Salimans & Ho 2022), ``flow_matching`` (Lipman et al. 2023; Liu et al. 2023), ``vidgen.losses.diffusion``;
- the network, ``model.net`` (``vidgen.nets.unet.DDPMUNet``);
- the sampler, ``model.sampler`` with ``model.sampling_steps``/``model.eta`` (``vidgen.diffusion.samplers``),
  which ``vidgen-sample sampler=ddim steps=50`` changes for one sampling run without retraining.

Options that apply to any network:

- ``ema_decay``: samples come from an exponential moving average of the weights (Ho et al.: 0.9999),
  ``torch.optim.swa_utils.AveragedModel``; its decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after
  n updates (the ``num_updates`` warm-up of TensorFlow's ``ExponentialMovingAverage``), so that a short
  run's average is not dominated by its random initial weights. Kept in checkpoints (``net_ema``).
- ``num_classes``: class-conditional denoising; labels are replaced by the null class with probability
  ``p_uncond`` in training, and sampling mixes the two predictions with ``guidance_scale`` s:
  ``out = out_uncond + s (out_cond - out_uncond)`` (Ho & Salimans 2022, Eq. 6 with ``s = 1 + w``).
  s = 0 is the unconditional model, s = 1 the conditional one, s > 1 guides beyond it.

Images are mapped from the data's ``value_range`` to [-1, 1], the range the processes are defined on, and
samples back; the predicted image is clipped to [-1, 1] (``clip_denoised``), and so are the samples.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from vidgen.diffusion.samplers import Sampler, make_sampler
from vidgen.errors import ConfigError
from vidgen.families.base import GenerativeModule
from vidgen.families.ema import check_ema_decay, weight_average
from vidgen.families.prediction_metrics import FramePredictionTesting
from vidgen.losses.diffusion import DiffusionLoss
from vidgen.metrics.frames import FrameMetrics
from vidgen.value_range import CANONICAL, check_value_range, from_unit, to_canonical, to_unit

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]
SamplerName = Literal["ddpm", "ddim", "euler", "heun"]


class DiffusionModule(GenerativeModule):
    """Trains ``net`` (``(x_t, t[, y]) -> output``) with a diffusion ``loss``; samples with ``sampler``.

    Batches are ``(images, labels)`` with images ``(B, C, H, W)`` in ``value_range``.

    Args:
        net: the denoiser, with ``channels``, ``image_size`` and ``num_classes`` (``DDPMUNet``).
        loss: a ``DiffusionLoss`` (``loss=diffusion_eps|diffusion_v|flow_matching``).
        optimizer: optimizer factory (``_partial_: true``; Ho et al.: Adam, lr 2e-4 on CIFAR-10).
        lr_scheduler: null, or a scheduler factory stepped every optimizer step (Ho et al.: a linear
            warm-up over 5000 steps).
        value_range: pixel range of the data (``${data.value_range}``).
        num_classes: null (unconditional), or the classes of a class-conditional model.
        p_uncond: probability that a training label is replaced by the null class (Ho & Salimans: 0.1-0.2).
        sampler: ``ddpm``, ``ddim`` (Gaussian objectives), ``euler`` or ``heun`` (flow matching); null =
            the objective's first choice (ddim, or euler for flow matching).
        sampling_steps: steps of the sampler (network evaluations; Heun: twice as many).
        eta: DDIM's noise scale (0 = deterministic DDIM, 1 = DDPM's variance).
        guidance_scale: s above; only for a conditional model (1 = plain conditional sampling).
        clip_denoised: clip each predicted ``x_0`` to [-1, 1] during Gaussian sampling (Ho et al. do).
        ema_decay: null, or the decay of the weight average used for sampling.
    """

    data_kind = "image"
    loss_kind = "diffusion"
    test_metrics = ("sample_quality",)

    def __init__(
        self,
        net: nn.Module,
        loss: DiffusionLoss,
        optimizer: OptimizerFactory,
        lr_scheduler: SchedulerFactory | None = None,
        value_range: tuple[float, float] = (-1.0, 1.0),
        num_classes: int | None = None,
        p_uncond: float = 0.1,
        sampler: SamplerName | None = None,
        sampling_steps: int = 50,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        clip_denoised: bool = True,
        ema_decay: float | None = 0.999,
    ):
        super().__init__()
        self.value_range = check_value_range(value_range, "model.value_range")
        if getattr(net, "num_classes", None) != num_classes:
            raise ValueError(
                f"model.num_classes={num_classes} but model.net ({type(net).__name__}) has num_classes="
                f"{getattr(net, 'num_classes', None)}. "
                "Fix: build the net with num_classes: ${model.num_classes}."
            )
        video_net = getattr(net, "num_frames", None) is not None
        if video_net != (self.data_kind == "video"):
            have, fix = ("clips", "model=video_ddpm_unet") if video_net else ("images", "model=ddpm_unet")
            raise ConfigError(
                f"model.net ({type(net).__name__}) denoises {have} but {type(self).__name__} models "
                f"{self.data_kind}s. Fix: {fix}, which pairs them, or a model.net._target_ of that kind."
            )
        if not 0.0 <= p_uncond < 1.0:
            raise ValueError(f"model.p_uncond must be in [0, 1) (Ho & Salimans: 0.1 or 0.2), got {p_uncond}.")
        check_ema_decay(ema_decay, example=0.9999)
        self.net = net
        self.loss = loss
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.num_classes = num_classes
        self.p_uncond = p_uncond
        self.ema_decay = ema_decay
        self.net_ema = weight_average(net, ema_decay)
        self.configure_sampling(sampler, sampling_steps, eta, guidance_scale, clip_denoised)

    def configure_sampling(
        self,
        sampler: SamplerName | None = None,
        sampling_steps: int = 50,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        clip_denoised: bool = True,
    ) -> Sampler:
        """Sets the sampler ``sample`` uses (also after loading: samplers need no training)."""
        name = sampler or self.loss.samplers[0]
        if name not in self.loss.samplers:
            raise ConfigError(
                f"model.sampler={name} cannot sample a model trained with {type(self.loss).__name__}, "
                f"whose process is integrated by {' or '.join(self.loss.samplers)}. "
                f"Fix: model.sampler={'|'.join(self.loss.samplers)} (or null for {self.loss.samplers[0]})."
            )
        if guidance_scale != 1.0 and self.num_classes is None:
            raise ConfigError(
                f"model.guidance_scale={guidance_scale} guides a class-conditional model, but this one is "
                "unconditional (model.num_classes=null). Fix: model.guidance_scale=1.0, or train "
                "model=ddpm_unet_cond."
            )
        if guidance_scale < 0:
            raise ConfigError(f"model.guidance_scale must be >= 0 (0 = unconditional), got {guidance_scale}.")
        self.sampler = make_sampler(name, sampling_steps, eta, clip_denoised)
        self.guidance_scale = guidance_scale
        return self.sampler

    # -- the denoiser: the (averaged) net, with the labels and the guidance -----------------------------
    def denoise(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor | None,
        net: nn.Module | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The net's output at ``x``; ``context`` (clean frames, frame-conditioned nets only) goes with it."""
        net = self.net if net is None else net
        given = {} if context is None else {"context": context}
        return net(x, t, **given) if self.num_classes is None else net(x, t, y, **given)

    def guided(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor | None,
        net: nn.Module,
        scale: float,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``out_u + s (out_c - out_u)``; at s = 0 and s = 1 only the one prediction needed is computed."""
        if y is None or scale == 1.0:
            return self.denoise(x, t, y, net, context)
        null = torch.full_like(y, self.num_classes)
        if scale == 0.0:
            return self.denoise(x, t, null, net, context)
        twice = None if context is None else torch.cat([context, context])
        both = self.denoise(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]), net, twice)
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    def drop_labels(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` with each label replaced by the null class with probability ``p_uncond``."""
        drop = torch.rand(y.shape, device=y.device) < self.p_uncond
        return torch.where(drop, torch.full_like(y, self.num_classes), y)

    # -- training ----------------------------------------------------------------------------------------
    def to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        return to_canonical(x, self.value_range)

    def clean_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x_0, context)`` of a batch's data ``x`` in [-1, 1]: what is noised and denoised, and the clean
        frames the net is given with it (None: images, unconditional video)."""
        return self.to_model_range(x), None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        (x, context), y = self.clean_inputs(batch[0]), batch[1]
        y = self.drop_labels(y) if self.num_classes is not None else None
        loss = self.loss(partial(self.denoise, y=y, context=context), x)
        self.log("train/loss", loss, prog_bar=True, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.net_ema is not None:
            self.update_ema()

    @torch.no_grad()
    def update_ema(self) -> None:
        """One step of the average with the warmed-up decay ``min(decay, (1 + n) / (10 + n))``."""
        n = int(self.net_ema.n_averaged)
        decay = min(self.ema_decay, (1.0 + n) / (10.0 + n))
        self.net_ema.multi_avg_fn = get_ema_multi_avg_fn(decay)
        self.net_ema.update_parameters(self.net)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """The objective on validation images with noise and times seeded by the batch index: the same
        draws every epoch (comparable values), and the training random stream is left untouched."""
        (x, context), y = self.clean_inputs(batch[0]), batch[1]
        y = y if self.num_classes is not None else None
        noise = torch.Generator(device=x.device).manual_seed(batch_idx)
        self.log("val/loss", self.loss(partial(self.denoise, y=y, context=context), x, noise))

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Nothing per batch: sample quality is measured by ``vidgen.callbacks.sample_quality``."""

    def configure_optimizers(self):
        optimizer = self.optimizer(self.net.parameters())
        if self.lr_scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.lr_scheduler(optimizer), "interval": "step"},
        }

    # -- sampling ----------------------------------------------------------------------------------------
    def sample_shape(self, num: int) -> tuple[int, ...]:
        """The shape of ``num`` samples, that of the noise ``x_T``."""
        return (num, self.net.channels, self.net.image_size, self.net.image_size)

    def draw(self, num: int, generator: torch.Generator | None, labels: torch.Tensor | None,
             context: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """``num`` samples of the configured sampler from ``x_T ~ N(0, I)`` drawn with ``generator``."""
        noise = torch.randn(self.sample_shape(num), generator=generator).to(self.device)
        return self.generate(noise, generator, labels, context)

    def generate(
        self,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Samples from ``noise`` (``x_T``), with the averaged weights when ``ema_decay`` is set, in
        ``value_range``; ``generator`` draws the noise a stochastic sampler adds on the way, ``context``
        (clean frames in ``value_range``) conditions a frame-conditioned net."""
        net = self.net if self.net_ema is None else self.net_ema.module
        given = None if context is None else self.to_model_range(context.to(self.device))
        denoise = partial(self.guided, y=labels, net=net, scale=self.guidance_scale, context=given)
        x = self.sampler(self.loss, denoise, noise, generator).clamp(*CANONICAL)
        return from_unit(to_unit(x, CANONICAL), self.value_range)


class VideoDiffusionModule(DiffusionModule):
    """``DiffusionModule`` for clips: unconditional video generation (Ho et al. 2022, "Video Diffusion
    Models", arXiv:2204.03458), the Gaussian diffusion of the image family on ``(T, C, H, W)`` tensors, with
    the factorized space-time U-Net ``vidgen.nets.video_unet.VideoUNet``. Objectives, samplers, EMA and
    guidance are the image family's: only the shape of the data and of the noise change.

    Batches are ``(videos, labels)`` with videos ``(B, T, C, H, W)``, ``T >= net.num_frames``; the first
    ``net.num_frames`` frames of each clip are modelled. Test: sample quality in the C3D space
    (``vidgen.callbacks.sample_quality``: ``fd_c3d``, ``fid_frames``), as for the video GANs.
    """

    data_kind = "video"
    default_callbacks = "video"

    def frames_needed(self) -> int:
        """Frames of a data clip the model reads."""
        return self.net.num_frames

    def setup(self, stage: str) -> None:
        super().setup(stage)
        seq_len = getattr(getattr(self.trainer, "datamodule", None), "seq_len", None)
        if seq_len is not None:
            self.check_frames(seq_len)

    def check_frames(self, have: int) -> None:
        if have < self.frames_needed():
            raise ConfigError(
                f"The clips have {have} frames but {type(self).__name__} reads {self.frames_needed()} "
                f"(model.net.context_frames={self.net.context_frames} + model.net.num_frames="
                f"{self.net.num_frames}). Fix: data.seq_len >= {self.frames_needed()}, or a smaller "
                "model.net.num_frames."
            )

    def clean_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.check_frames(x.shape[1])
        return self.to_model_range(x[:, : self.net.num_frames]), None

    def sample_shape(self, num: int) -> tuple[int, ...]:
        side = self.net.image_size
        return (num, self.net.num_frames, self.net.channels, side, side)


def content_seed(clip: torch.Tensor) -> int:
    """A seed computed from the values of ``clip``: the same clip gets the same noise however the clips
    are batched or spread over DDP ranks (CRC-32 of its bytes, which Python's ``hash`` randomizes)."""
    return zlib.crc32(clip.detach().cpu().float().contiguous().numpy().tobytes())


class FrameConditionedDiffusionModule(FramePredictionTesting, VideoDiffusionModule):
    """Video prediction by diffusion: ``net.context_frames`` clean frames in, ``net.num_frames`` future
    frames denoised from noise (the frame-conditioned ``VideoUNet``: context concatenated along time with a
    flag channel, as RaMViD, Höppe et al. 2022; the explicit conditional model of Ho et al. 2022, Sec. 3.1,
    without their reconstruction guidance). The loss is the objective's on the future frames only.

    ``sample(num, context=clips)`` returns the given context frames unchanged followed by the generated
    ones. Validation logs the objective and OpenSTL's ``mse_per_frame``/``mae_per_frame``/``mse_per_pixel``
    of sampled futures; test logs every OpenSTL metric with the copy-last and context-mean baselines, as
    the frame predictors of the sequence family (``vidgen.families.prediction_metrics``). The noise of each
    evaluated clip is seeded by its context (``content_seed``): with a deterministic sampler (DDIM with
    ``eta=0``, Euler, Heun) the metrics do not depend on batching or DDP ranks.
    """

    test_metrics = ("frames",)
    default_callbacks = "prediction"

    def __init__(self, net: nn.Module, *args: Any, **kwargs: Any):
        """The arguments of ``DiffusionModule``; ``net`` a ``VideoUNet`` with ``context_frames > 0``."""
        super().__init__(net, *args, **kwargs)
        if not getattr(net, "context_frames", 0):
            raise ConfigError(
                f"{type(self).__name__} continues context frames, but model.net ({type(net).__name__}) takes "
                "none (context_frames=0). Fix: model=video_ddpm_unet_pred, or model.net.context_frames=<n>."
            )
        self.context_frames = net.context_frames
        self.val_frames = FrameMetrics(("mse_per_frame", "mae_per_frame", "mse_per_pixel"))
        self.init_frame_test_metrics()

    def frames_needed(self) -> int:
        return self.net.context_frames + self.net.num_frames

    def clean_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.check_frames(x.shape[1])
        clips = self.to_model_range(x[:, : self.frames_needed()])
        return clips[:, self.context_frames :], clips[:, : self.context_frames]

    def draw(self, num: int, generator: torch.Generator | None, labels: torch.Tensor | None,
             context: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """The first ``num`` clips of ``context``: their ``context_frames`` first frames, as given, then the
        generated future (in the data range)."""
        given = context[:num, : self.context_frames].to(self.device)
        noise = torch.randn(self.sample_shape(len(given)), generator=generator).to(self.device)
        labels = None if labels is None else labels[: len(given)]
        return torch.cat([given, self.generate(noise, generator, labels, given).to(given)], dim=1)

    def predict_unit(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(predicted, context, target)`` in [0, 1] for a batch of clips: the future sampled from noise
        seeded by each clip's context, with the batch's labels for a class-conditional model."""
        video = batch[0][:, : self.frames_needed()]
        self.check_frames(video.shape[1])
        context = video[:, : self.context_frames]
        noise = torch.stack(
            [torch.randn(self.sample_shape(1)[1:], generator=torch.Generator().manual_seed(content_seed(c)))
             for c in context]
        ).to(self.device)  # fmt: skip
        labels = batch[1] if self.num_classes is not None else None
        generator = torch.Generator().manual_seed(content_seed(context[0]))  # a stochastic sampler's steps
        predicted = self.generate(noise, generator, labels, context)
        unit = lambda v: to_unit(v, self.value_range)  # noqa: E731 - OpenSTL's metrics are on [0, 1]
        return unit(predicted), unit(context), unit(video[:, self.context_frames :])

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        predicted, _, target = self.predict_unit(batch)
        self.val_frames.update(predicted, target)

    def on_validation_epoch_end(self) -> None:
        self.log_frame_means("val", self.val_frames)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """OpenSTL's metrics of the sampled futures and of the trivial predictors."""
        self.score_test_batch(*self.predict_unit(batch))
