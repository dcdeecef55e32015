"""Frame-prediction metrics as OpenSTL computes them (Tan et al., "OpenSTL", NeurIPS 2023 Datasets &
Benchmarks), per frame and per predicted time step, as a ``torchmetrics.Metric`` that sums over DDP ranks.

For predictions and targets ``(B, T, C, H, W)`` in [0, 1]:

- ``mse_per_frame``/``mae_per_frame``: squared/absolute error summed over a frame's C x H x W pixels,
  averaged over samples and frames; before clipping (OpenSTL's ``MSE``/``MAE``).
- ``mse_per_pixel``: the per-pixel mean squared error (the training loss's scale).
- ``psnr``: per frame ``10 log10(1 / mse)`` with that frame's per-pixel MSE after clipping both to
  [0, 1], averaged over samples and frames (OpenSTL computes it on float32 frames too).
- ``ssim``: per frame (Wang et al. 2004) with a uniform 7x7 window, K1 = 0.01, K2 = 0.03, data range 1,
  after clipping, averaged over samples and frames, through torchmetrics (float64: float32 loses ~2e-4
  of SSIM on near-constant frames).

``FrameMetrics.compute()`` gives the means and, as ``<name>_per_step``, the same metrics averaged over
sequences only, one value per predicted frame (the curves of OpenSTL's papers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

FRAME_METRICS = ("mse_per_frame", "mae_per_frame", "mse_per_pixel", "psnr", "ssim")


def per_frame_metrics(
    pred: torch.Tensor, target: torch.Tensor, metrics: Sequence[str] = FRAME_METRICS
) -> dict[str, torch.Tensor]:
    """Each metric of ``metrics`` for every frame: ``{name: (B, T)}``."""
    b, t = pred.shape[:2]
    dims = (2, 3, 4)
    error = pred - target
    out: dict[str, torch.Tensor] = {}
    if "mse_per_frame" in metrics:
        out["mse_per_frame"] = error.pow(2).sum(dims)
    if "mae_per_frame" in metrics:
        out["mae_per_frame"] = error.abs().sum(dims)
    if "mse_per_pixel" in metrics:
        out["mse_per_pixel"] = error.pow(2).mean(dims)
    p, y = pred.clamp(0, 1), target.clamp(0, 1)
    if "psnr" in metrics:
        out["psnr"] = 10 * torch.log10(1.0 / (p - y).pow(2).mean(dims).clamp_min(1e-10))
    if "ssim" in metrics:
        from torchmetrics.functional.image import structural_similarity_index_measure

        ssim = structural_similarity_index_measure(
            p.flatten(0, 1).double(), y.flatten(0, 1).double(), gaussian_kernel=False, kernel_size=7,
            data_range=1.0, reduction="none",
        )  # fmt: skip
        out["ssim"] = ssim.view(b, t).to(pred.dtype)
    return out


class FrameMetrics(Metric):
    """Sums of the per-frame metrics for each predicted time step over all sequences seen (all ranks).

    Args:
        metrics: which of ``FRAME_METRICS`` (validation skips SSIM and PSNR, which cost more).
    """

    full_state_update = False

    def __init__(self, metrics: Sequence[str] = FRAME_METRICS):
        super().__init__()
        unknown = set(metrics) - set(FRAME_METRICS)
        if unknown:
            raise ValueError(f"unknown frame metrics {sorted(unknown)}; known: {', '.join(FRAME_METRICS)}.")
        self.metrics = tuple(metrics)
        for name in self.metrics:
            # float64 sums: the means do not depend on how sequences are batched or spread over ranks
            self.add_state(name, default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        for name, values in per_frame_metrics(pred, target, self.metrics).items():
            sums = values.detach().double().sum(0)
            current = getattr(self, name)
            setattr(self, name, sums if current.numel() == 0 else current + sums)
        self.count += len(pred)

    def compute(self) -> dict[str, torch.Tensor]:
        """``{name: mean}`` and ``{name_per_step: (T,)}``, the metric averaged over sequences only."""
        out = {}
        for name in self.metrics:
            curve = getattr(self, name) / self.count
            out[name], out[f"{name}_per_step"] = curve.mean(), curve
        return out


def frame_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """OpenSTL's metrics of one batch: the means and ``<name>_per_step`` curves ``(T,)``."""
    metric = FrameMetrics()
    metric.update(pred, target)
    return {k: v.to(pred.dtype) for k, v in metric.compute().items()}
