"""What every frame predictor logs at test, whatever predicts the frames (a recurrent net, a diffusion model).

OpenSTL's metrics (Tan et al. 2023; ``vidgen.metrics.frames``) of the model's predicted frames: MSE/MAE per
frame, per-pixel MSE, PSNR, SSIM (``test/<metric>``), their per-time-step curves (``test_curves``) and the
number of test sequences; and the same metrics of two trivial predictors on the same sequences, the
baselines a trained model must beat: ``test/<metric>_copy_last`` repeats the last context frame,
``test/<metric>_context_mean`` predicts the mean of the context frames.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vidgen.metrics.frames import FRAME_METRICS, FrameMetrics


def _copy_last(context: torch.Tensor, steps: int) -> torch.Tensor:
    return context[:, -1:].expand(-1, steps, -1, -1, -1)


def _context_mean(context: torch.Tensor, steps: int) -> torch.Tensor:
    return context.mean(dim=1, keepdim=True).expand(-1, steps, -1, -1, -1)


# trivial predictors, (context, steps) -> frames, scored at test beside the model
BASELINES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "copy_last": _copy_last,
    "context_mean": _context_mean,
}


class FramePredictionTesting:
    """Test-time frame metrics of a ``GenerativeModule`` that predicts frames after context frames.

    A family mixes it in before ``GenerativeModule``, calls ``init_frame_test_metrics()`` in its
    ``__init__`` and ``score_test_batch(predicted, context, target)`` (clips in [0, 1]) in its
    ``test_step``; this class resets, logs and keeps the curves. The metrics are torchmetrics objects:
    exact means over all sequences and DDP ranks; their states are not checkpointed.
    """

    def init_frame_test_metrics(self) -> None:
        self.test_frames = FrameMetrics(FRAME_METRICS)
        self.test_baselines = nn.ModuleDict({name: FrameMetrics(FRAME_METRICS) for name in BASELINES})

    def log_frame_means(self, split: str, frames: FrameMetrics) -> None:
        """``<split>/<metric>`` means of ``frames`` (not the per-step curves), then resets it."""
        means = {f"{split}/{k}": v for k, v in frames.compute().items() if not k.endswith("_per_step")}
        self.log_dict(means, prog_bar=split == "val")
        frames.reset()

    def on_test_epoch_start(self) -> None:
        self.test_frames.reset()
        for metric in self.test_baselines.values():
            metric.reset()
        self._curves: dict[str, torch.Tensor] = {}

    def score_test_batch(self, predicted: torch.Tensor, context: torch.Tensor, target: torch.Tensor) -> None:
        """Adds one batch: the model's ``predicted`` frames and each baseline's, against ``target``."""
        self.test_frames.update(predicted, target)
        for name, predict in BASELINES.items():
            self.test_baselines[name].update(predict(context, target.shape[1]), target)

    def on_test_epoch_end(self) -> None:
        values = self.test_frames.compute()
        self._curves = {k.removesuffix("_per_step"): v for k, v in values.items() if k.endswith("_per_step")}
        # the count outside compute() is this rank's (torchmetrics restores local states): summed over ranks
        self.log("test/n_sequences", self.test_frames.count.float(), reduce_fx="sum", sync_dist=True)
        self.log_frame_means("test", self.test_frames)
        for name, metric in self.test_baselines.items():
            values = metric.compute()
            self.log_dict({f"test/{k}_{name}": v for k, v in values.items() if not k.endswith("_per_step")})
            metric.reset()

    def test_curves(self) -> dict[str, torch.Tensor]:
        """Per-predicted-frame means of the test metrics (over all ranks) of the last ``trainer.test``."""
        return dict(getattr(self, "_curves", {}))
