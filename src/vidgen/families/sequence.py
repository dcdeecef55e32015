"""The sequence family: recurrent frame prediction (observe ``T_in`` frames, predict the next ``T_out``).

The net (``vidgen.nets``: Elman RNN, LSTM autoencoder, ConvLSTM) maps context frames to next-frame
logits; this module owns the data range, the loss, teacher forcing with a scheduled-sampling decay
(Bengio et al. 2015) during training, and free-running autoregressive rollout at evaluation.
Frames are mapped from the data's ``value_range`` to [0, 1] (OpenSTL's convention), and metrics
follow OpenSTL (``vidgen.metrics.frames``): validation logs ``mse_per_frame``/``mae_per_frame`` (errors
summed over a frame's pixels, averaged over frames and sequences) and ``mse_per_pixel``; test adds PSNR
and SSIM, their per-time-step curves (``test_curves``), and the same metrics of two trivial predictors on
the same sequences, the baselines a trained model must beat (``vidgen.families.prediction_metrics``, shared
with the frame-conditioned diffusion model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from vidgen.families.base import GenerativeModule
from vidgen.families.prediction_metrics import FramePredictionTesting
from vidgen.losses.frame import FrameLoss
from vidgen.metrics.frames import FrameMetrics
from vidgen.value_range import check_value_range, from_unit, to_unit

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class FramePredictionModule(FramePredictionTesting, GenerativeModule):
    """Trains ``net`` to predict ``num_output_frames`` frames after ``num_input_frames`` frames.

    Batches are ``(video, label)`` with ``video (B, T, C, H, W)`` in ``value_range`` and
    ``T >= num_input_frames + num_output_frames``.

    Args:
        net: module with ``forward(context, future, targets=None, teacher_forcing=0.0)`` returning
            ``{"future": logits}`` (and optionally ``"reconstruction"``: logits of the context reversed).
        loss: a ``FrameLoss`` (``loss=frame_mse|frame_l1|frame_bce``).
        optimizer: optimizer factory (``_partial_: true``).
        num_input_frames, num_output_frames: the context/target split (10 -> 10 on Moving MNIST).
        value_range: pixel range of the data.
        teacher_forcing: probability of feeding the true previous frame at the start of training.
        scheduled_sampling_steps: steps over which that probability decays linearly to 0; null keeps it.
        reconstruction_weight: weight of the reconstruction loss of nets that return one.
    """

    data_kind = "video"
    loss_kind = "frame"
    test_metrics = ("frames",)
    default_callbacks = "prediction"

    def __init__(
        self,
        net: nn.Module,
        loss: FrameLoss,
        optimizer: OptimizerFactory,
        num_input_frames: int = 10,
        num_output_frames: int = 10,
        value_range: tuple[float, float] = (-1.0, 1.0),
        teacher_forcing: float = 0.0,
        scheduled_sampling_steps: int | None = None,
        reconstruction_weight: float = 1.0,
    ):
        super().__init__()
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"model.teacher_forcing must be in [0, 1], got {teacher_forcing}.")
        self.net = net
        self.loss = loss
        self.optimizer = optimizer
        self.num_input_frames = num_input_frames
        self.num_output_frames = num_output_frames
        self.value_range = check_value_range(value_range, "model.value_range")
        self.context_frames = num_input_frames
        # torchmetrics objects: exact means over all sequences and DDP ranks; states not checkpointed
        self.val_frames = FrameMetrics(("mse_per_frame", "mae_per_frame", "mse_per_pixel"))
        self.init_frame_test_metrics()
        self.teacher_forcing = teacher_forcing
        self.scheduled_sampling_steps = scheduled_sampling_steps
        self.reconstruction_weight = reconstruction_weight

    def current_teacher_forcing(self) -> float:
        if not self.scheduled_sampling_steps:
            return self.teacher_forcing
        done = min(self.global_step / self.scheduled_sampling_steps, 1.0)
        return self.teacher_forcing * (1.0 - done)

    def _split(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        needed = self.num_input_frames + self.num_output_frames
        if video.shape[1] < needed:
            raise ValueError(
                f"Sequences have {video.shape[1]} frames but the model needs {self.num_input_frames} input + "
                f"{self.num_output_frames} output = {needed}; set data.seq_len >= {needed}."
            )
        unit = to_unit(video, self.value_range)
        return unit[:, : self.num_input_frames], unit[:, self.num_input_frames : needed]

    def forward(self, context: torch.Tensor, future: int | None = None) -> torch.Tensor:
        """Free-running prediction in [0, 1] for ``context`` in [0, 1]."""
        out = self.net(context, future or self.num_output_frames)
        return torch.sigmoid(out["future"])

    def _losses(
        self, video: torch.Tensor, teacher_forcing: float
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The loss terms, the predicted frames' logits and the target frames (in [0, 1])."""
        context, target = self._split(video)
        out = self.net(context, target.shape[1], targets=target, teacher_forcing=teacher_forcing)
        losses = {"prediction": self.loss(out["future"], target)}
        if "reconstruction" in out:
            losses["reconstruction"] = self.loss(out["reconstruction"], context.flip(1))
        losses["loss"] = losses["prediction"] + self.reconstruction_weight * losses.get("reconstruction", 0.0)
        return losses, out["future"], target

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        tf = self.current_teacher_forcing()
        losses, _, _ = self._losses(batch[0], tf)
        self.log("train/loss", losses["loss"], prog_bar=True, on_epoch=True)
        if "reconstruction" in losses:
            self.log_dict(
                {
                    "train/prediction_loss": losses["prediction"],
                    "train/reconstruction_loss": losses["reconstruction"],
                }
            )
        if self.scheduled_sampling_steps:
            self.log("train/teacher_forcing", tf)
        return losses["loss"]

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        """Logs the loss of free-running prediction (no ground truth fed); returns the frames in [0, 1]."""
        losses, logits, _ = self._losses(batch[0], teacher_forcing=0.0)
        self.log(f"{split}/loss", losses["loss"], prog_bar=split == "val", sync_dist=True)
        return torch.sigmoid(logits)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.val_frames.update(self._evaluate(batch, "val"), self._split(batch[0])[1])

    def on_validation_epoch_end(self) -> None:
        self.log_frame_means("val", self.val_frames)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """OpenSTL's metrics of the predicted frames and of the trivial predictors
        (``vidgen.families.prediction_metrics``)."""
        context, target = self._split(batch[0])
        self.score_test_batch(self._evaluate(batch, "test"), context, target)

    def draw(self, num: int, generator: torch.Generator | None, labels: torch.Tensor | None,
             context: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """The first ``num`` clips of ``context`` (real videos in the data range): their
        ``num_input_frames`` context frames followed by the predicted frames, in the data range.
        Deterministic given the context (``generator`` is unused)."""
        unit = to_unit(context[:num, : self.num_input_frames].to(self.device), self.value_range)
        return from_unit(torch.cat([unit, self(unit)], dim=1), self.value_range)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())
