"""Frame-prediction metrics as OpenSTL computes them (Tan et al., "OpenSTL", NeurIPS 2023 Datasets &
Benchmarks), per frame and per predicted time step, as a ``torchmetrics.Metric`` that sums over DDP ranks.

For predictions and targets ``(B, T, C, H, W)`` in [0, 1]:

- ``mse_per_frame``/``mae_per_frame``: squared/absolute error summed over a frame's C x H x W pixels,
  averaged over samples and frames; before clipping (OpenSTL's ``MSE``/``MAE``).
- ``mse_per_pixel``: the per-pixel mean squared error (the training loss's scale).
- ``psnr``: per frame ``10 log10(1 / mse)`` with that frame's per-pixel MSE after clipping the
  prediction to [0, 1], averaged over samples and frames, as OpenSTL's ``PSNR`` (on float frames).
  Identical frames give OpenSTL infinity; here the MSE is floored at 1e-10 (100 dB) so means stay finite.
- ``ssim``: per frame, scikit-image's ``structural_similarity`` with its defaults (Wang et al. 2004
  with a uniform 7x7 window, K1 = 0.01, K2 = 0.03, sample covariances, the 3-pixel border of the SSIM
  map cropped, channels averaged) and data range 1, after clipping, averaged over samples and frames.
- ``ssim_openstl``: the same with data range 2: OpenSTL calls ``structural_similarity`` without
  ``data_range``, and scikit-image <= 0.19.3, which its published tables used, then takes the float
  dtype's range [-1, 1]. Its larger constants C1, C2 give higher values than ``ssim``; compare OpenSTL's
  tables with this key.

``FrameMetrics.compute()`` gives the means and, as ``<name>_per_step``, the same metrics averaged over
sequences only, one value per predicted frame (the curves of OpenSTL's papers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

FRAME_METRICS = ("mse_per_frame", "mae_per_frame", "mse_per_pixel", "psnr", "ssim", "ssim_openstl")


def structural_similarity(
    x: torch.Tensor, y: torch.Tensor, data_range: float, win_size: int = 7, k1: float = 0.01, k2: float = 0.03
) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004, Eq. 13) of each image pair ``(N, C, H, W)`` -> ``(N,)``, float64, as
    scikit-image's ``structural_similarity`` computes it with ``gaussian_weights=False``: local means and
    sample (co)variances (``win_size**2 - 1`` in the denominator) over a uniform window, the SSIM map
    averaged over the pixels whose window lies inside the image (skimage crops ``(win_size - 1) // 2``
    pixels at each border) and over channels.

    Written out because torchmetrics' SSIM averages the map over the reflect-padded image with
    population covariances, which gives other values than the papers' tables (tested against
    scikit-image in tests/test_metrics.py).
    """
    import torch.nn.functional as F

    x, y = x.double(), y.double()
    if min(x.shape[-2:]) < win_size:
        raise ValueError(
            f"SSIM needs frames of at least {win_size}x{win_size} pixels, got {tuple(x.shape[-2:])}"
        )
    mean = lambda a: F.avg_pool2d(a, win_size, stride=1)  # noqa: E731 - the valid (uncropped) part only
    ux, uy = mean(x), mean(y)
    cov_norm = win_size**2 / (win_size**2 - 1)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(1, 2, 3))


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
    # OpenSTL clips the prediction to [0, 1] for PSNR and SSIM; targets are in [0, 1] already
    p, y = pred.clamp(0, 1), target
    if "psnr" in metrics:
        out["psnr"] = 10 * torch.log10(1.0 / (p - y).pow(2).mean(dims).clamp_min(1e-10))
    for name, data_range in (("ssim", 1.0), ("ssim_openstl", 2.0)):
        if name in metrics:
            ssim = structural_similarity(p.flatten(0, 1), y.flatten(0, 1), data_range)
            out[name] = ssim.view(b, t).to(pred.dtype)
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
