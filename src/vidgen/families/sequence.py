"""The sequence family: recurrent frame prediction (observe ``T_in`` frames, predict the next ``T_out``).

The net (``vidgen.nets``: Elman RNN, LSTM autoencoder, ConvLSTM) maps context frames to next-frame
logits; this module owns the data range, the loss, teacher forcing with a scheduled-sampling decay
(Bengio et al. 2015) during training, and free-running autoregressive rollout at evaluation.
Frames are mapped from the data's ``value_range`` to [0, 1] (OpenSTL's convention), and metrics
follow OpenSTL: ``mse_per_frame``/``mae_per_frame`` are errors summed over a frame's pixels and
averaged over frames and sequences; ``mse_per_pixel`` is the per-pixel mean (the training loss scale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import lightning as L
import torch
from torch import nn

from vidgen.losses.frame import FrameLoss

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class FramePredictionModule(L.LightningModule):
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

    family = "sequence"
    data_kind = "video"
    default_callbacks = "prediction"  # the callbacks config made for this family

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
        self.value_range = tuple(value_range)
        self.teacher_forcing = teacher_forcing
        self.scheduled_sampling_steps = scheduled_sampling_steps
        self.reconstruction_weight = reconstruction_weight

    def to_unit(self, video: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        return (video - lo) / (hi - lo)

    def from_unit(self, video: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        return video * (hi - lo) + lo

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
        unit = self.to_unit(video)
        return unit[:, : self.num_input_frames], unit[:, self.num_input_frames : needed]

    def forward(self, context: torch.Tensor, future: int | None = None) -> torch.Tensor:
        """Free-running prediction in [0, 1] for ``context`` in [0, 1]."""
        out = self.net(context, future or self.num_output_frames)
        return torch.sigmoid(out["future"])

    def _losses(self, video: torch.Tensor, teacher_forcing: float) -> dict[str, torch.Tensor]:
        context, target = self._split(video)
        out = self.net(context, target.shape[1], targets=target, teacher_forcing=teacher_forcing)
        losses = {"prediction": self.loss(out["future"], target)}
        if "reconstruction" in out:
            losses["reconstruction"] = self.loss(out["reconstruction"], context.flip(1))
        losses["loss"] = losses["prediction"] + self.reconstruction_weight * losses.get("reconstruction", 0.0)
        return {**losses, "_future": out["future"], "_target": target}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        tf = self.current_teacher_forcing()
        losses = self._losses(batch[0], tf)
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

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> None:
        losses = self._losses(batch[0], teacher_forcing=0.0)  # autoregressive rollout, no ground truth fed
        pred, target = torch.sigmoid(losses["_future"]), losses["_target"]
        frame_dims = (2, 3, 4)
        self.log_dict(
            {
                f"{split}/loss": losses["loss"],
                f"{split}/mse_per_frame": (pred - target).pow(2).sum(frame_dims).mean(),
                f"{split}/mae_per_frame": (pred - target).abs().sum(frame_dims).mean(),
                f"{split}/mse_per_pixel": (pred - target).pow(2).mean(),
            },
            prog_bar=split == "val",
        )

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """OpenSTL's metrics (``vidgen.metrics.generative.frame_metrics``): MSE/MAE per frame, per-pixel
        MSE, PSNR, SSIM; per-time-step sums are kept in ``test_curves`` for the evaluation callback."""
        from vidgen.metrics.generative import frame_metrics

        losses = self._losses(batch[0], teacher_forcing=0.0)
        metrics = frame_metrics(torch.sigmoid(losses["_future"]), losses["_target"])
        self.log("test/loss", losses["loss"])
        self.log_dict({f"test/{k}": v for k, v in metrics.items() if not k.endswith("_per_step")})
        if batch_idx == 0:
            self.test_curves = {"count": 0}
        n = len(batch[0])
        self.test_curves["count"] += n
        for k, v in metrics.items():
            if k.endswith("_per_step"):
                self.test_curves[k] = self.test_curves.get(k, 0) + v.detach().cpu() * n

    @torch.no_grad()
    def sample(
        self, num: int, generator: torch.Generator | None = None, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Context frames followed by predicted frames, ``(num, T_in + T_out, C, H, W)`` in the data range.

        ``condition`` is a batch of real videos whose first ``num_input_frames`` are the context.
        """
        if condition is None:
            raise ValueError(
                "A frame predictor samples from context: pass condition=<videos (B, T, C, H, W)>."
            )
        context = self.to_unit(condition[:num, : self.num_input_frames].to(self.device))
        was_training = self.training
        self.eval()
        try:
            future = self(context)
        finally:
            self.train(was_training)
        return self.from_unit(torch.cat([context, future], dim=1))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())
