"""The protocol every family implements: the only thing entrypoints and callbacks know of a model.

A family is a ``LightningModule`` holding the training logic of one kind of generator. Code outside
``families/`` never asks which family a model is; it reads these declarations and calls ``sample``:

- ``data_kind``: ``image`` (batches ``(B, C, H, W)``), ``video`` (``(B, T, C, H, W)``) or ``audio``
  (waveforms ``(B, 1, L)`` or spectrograms ``(B, 1, F, T)``) data it trains on. Audio families also give
  ``waveforms(samples, generator=None)`` (the sound of their samples) and ``sample_rate``.
- ``loss_kind``: the ``kind`` of the ``loss=`` classes it trains with (``gan``, ``elbo``, ``frame``).
- ``context_frames``: real frames ``sample`` needs as context (0: it samples from noise alone).
- ``num_classes``: null, or the classes a conditional model's ``sample(labels=...)`` accepts.
- ``test_metrics``: what its test run measures: ``sample_quality`` (FID/KID/IS/precision-recall of its
  samples, by ``vidgen.callbacks.sample_quality``) and/or its own metrics logged in ``test_step``
  (``frames``: OpenSTL's frame metrics, with per-step curves from ``test_curves()``; ``nll``).
- ``default_callbacks``: the ``callbacks=`` option made for it (named in compatibility errors).
- ``value_range``: the pixel range of its samples (the data's).

``sample(num, *, generator=None, labels=None, context=None)`` returns samples in ``value_range``,
drawn in eval mode without gradients; ``generator`` fixes the noise, ``labels`` the classes of a
conditional model, ``context`` the real clips a frame predictor continues. A family implements it by
``draw`` (the base class checks the arguments and sets the mode).
"""

from __future__ import annotations

from typing import ClassVar

import lightning as L
import torch

from vidgen.errors import ConfigError


class GenerativeModule(L.LightningModule):
    """Base class of the families: the declarations above and the checks every ``sample`` shares."""

    data_kind: ClassVar[str] = "image"
    loss_kind: ClassVar[str] = ""
    test_metrics: ClassVar[tuple[str, ...]] = ("sample_quality",)
    default_callbacks: ClassVar[str] = "default"
    context_frames: int = 0
    num_classes: int | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)

    def setup(self, stage: str) -> None:
        """Checks that a conditional model has a class for every label of its data (a label beyond
        ``num_classes`` would index past its embedding). Families that override ``setup`` call this."""
        have = getattr(getattr(self.trainer, "datamodule", None), "num_classes", None)
        if self.num_classes is not None and have is not None and have > self.num_classes:
            raise ConfigError(
                f"model.num_classes={self.num_classes} but the data has {have} classes. "
                f"Fix: model.num_classes={have}."
            )

    def writes_step_logs(self) -> bool:
        """Whether Lightning writes this training step's ``on_step`` values to the loggers: every
        ``trainer.log_every_n_steps`` steps, and every step of a ``fast_dev_run``.

        A family whose per-step values are only for the loggers and the progress bar logs them on these
        steps alone: each ``self.log`` costs 0.5-1 ms in Lightning 2.6 (it moves its result entry to the
        value's device through ``apply_to_collection``, which deep-copies the entry's dataclass), a few per
        cent of a small model's step, while values logged on the other steps are dropped unwritten.
        Lightning's own decision (``should_update_logs``) is read so that both stay in step.
        """
        connector = getattr(self._trainer, "_logger_connector", None)
        if connector is None:
            return True
        return bool(connector.should_update_logs or self.trainer.fast_dev_run)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        *,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``num`` samples in ``value_range``, drawn in eval mode (the module's mode is restored after).

        ``generator`` fixes the noise; ``labels`` are the classes of a conditional model (checked and
        cycled to ``num``; default: all classes in turn); ``context`` the real clips ``(B, T, C, H, W)``
        a model with ``context_frames`` continues. Wrong labels or context are one ``ConfigError``.
        """
        self.check_context(context)
        y = self.sample_labels(num, labels)
        was_training = self.training
        self.eval()
        try:
            # contiguous: callers may .view() the samples whatever memory format the nets use
            return self.draw(num, generator, y, context).contiguous()
        finally:
            self.train(was_training)

    def draw(
        self,
        num: int,
        generator: torch.Generator | None,
        labels: torch.Tensor | None,
        context: torch.Tensor | None,
    ) -> torch.Tensor:
        """The family's sampling, called by ``sample`` in eval mode without gradients, with checked
        ``labels`` (None for an unconditional model) and ``context`` (None without ``context_frames``)."""
        raise NotImplementedError

    def test_curves(self) -> dict[str, torch.Tensor]:
        """Per-time-step test metrics ``{name: (T,)}`` after ``trainer.test`` (empty for most families)."""
        return {}

    def sample_labels(self, num: int, labels: torch.Tensor | None = None) -> torch.Tensor | None:
        """The classes of ``num`` samples: ``labels`` checked and cycled to ``num``, or ``0, 1, ..., K-1,
        0, ...`` (balanced, as FID wants) for a conditional model; None for an unconditional one."""
        if labels is None:
            return (
                None if self.num_classes is None else torch.arange(num, device=self.device) % self.num_classes
            )
        wanted = [int(v) for v in torch.as_tensor(labels).flatten().tolist()]
        if self.num_classes is None:
            raise ConfigError(
                f"labels={wanted} but this model is unconditional (model.num_classes=null). Fix: drop "
                "labels=, or use a conditional model (e.g. model=cgan)."
            )
        if not wanted or not all(0 <= v < self.num_classes for v in wanted):
            raise ConfigError(
                f"labels={wanted}: expected a non-empty list of classes in 0..{self.num_classes - 1}. "
                "Fix: e.g. labels='[0,1,2]'."
            )
        return torch.tensor(wanted, device=self.device)[torch.arange(num) % len(wanted)]

    def check_context(self, context: torch.Tensor | None) -> torch.Tensor | None:
        """``context`` checked against ``context_frames``: required by predictors, refused by the others."""
        if self.context_frames and context is None:
            raise ConfigError(
                f"{type(self).__name__} continues real clips: sample(..., context=<videos (B, T, C, H, W) "
                f"with T >= {self.context_frames}>)."
            )
        if context is not None and not self.context_frames:
            raise ConfigError(f"{type(self).__name__} samples from noise alone: it takes no context.")
        if context is not None and (context.ndim != 5 or context.shape[1] < self.context_frames):
            raise ConfigError(
                f"{type(self).__name__} continues clips of at least {self.context_frames} frames: "
                f"sample(..., context=<videos (B, T, C, H, W)>), got shape {tuple(context.shape)}."
            )
        return context
