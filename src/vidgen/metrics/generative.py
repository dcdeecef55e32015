"""Sample-quality metrics of image generators, all in one feature space, and frame-prediction metrics.

- FID: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", NeurIPS 2017, Eq. 6 (torchmetrics' ``FrechetInceptionDistance``).
- KID: Bińkowski et al., "Demystifying MMD GANs", ICLR 2018: the unbiased MMD^2 estimator with the
  cubic polynomial kernel, mean ± std over random subsets (torchmetrics' ``KernelInceptionDistance``).
- IS: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, on the classifier's
  logits (torchmetrics' ``InceptionScore``).
- Precision/recall: Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, Eq. 1-3: each set's manifold is the union of balls around its
  features with radius the distance to the k-th nearest neighbour in the same set; precision = share
  of fakes inside the real manifold, recall = share of reals inside the fake manifold.
- Frame prediction (``frame_metrics``): OpenSTL's conventions (Tan et al., "OpenSTL", NeurIPS 2023
  Datasets & Benchmarks), see the function.

The feature extractor names every key it changes: ``fid_<extractor>``, ``kid_<extractor>_mean``, ...
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class LogitsOf(nn.Module):
    """The classifier's logits, the input InceptionScore expects from a custom feature network."""

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractor.classifier(x)


@torch.no_grad()
def features_of(extractor: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``extractor(images)`` in batches, as float64 rows."""
    return torch.cat(
        [extractor(images[i : i + batch_size]).double() for i in range(0, len(images), batch_size)]
    )


def manifold_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row (Kynkäänniemi et al. 2019, Sec. 2)."""
    distances = torch.cdist(features, features)
    # column 0 of the sorted distances is the point itself (distance 0)
    return distances.kthvalue(k + 1, dim=1).values


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, Eq. 1-3) of feature rows; ``k=3`` as in
    the paper."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and fake samples.")
    real_radii, fake_radii = manifold_radii(real, k), manifold_radii(fake, k)
    cross = torch.cdist(fake, real)  # (num_fake, num_real)
    precision = (cross <= real_radii[None, :]).any(dim=1).double().mean().item()
    recall = (fake_radii[None, :] >= cross.T).any(dim=1).double().mean().item()
    return precision, recall


def image_metrics(
    extractor: nn.Module,
    real: Iterable[torch.Tensor],
    fake: Iterable[torch.Tensor],
    name: str,
    kid_subset_size: int = 100,
    pr_k: int = 3,
    inception_score: bool = True,
) -> dict[str, float]:
    """FID, KID (mean, std), IS and precision/recall of ``fake`` against ``real`` image batches.

    ``extractor`` maps images (as the data gives them) to features and, when ``inception_score``, has a
    ``classifier`` giving logits. Keys: ``fid_<name>``, ``kid_<name>_mean``, ``kid_<name>_std``,
    ``is_<name>``, ``precision_<name>``, ``recall_<name>`` (without the ``split/`` prefix).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = torch.cat(list(real)), torch.cat(list(fake))
    subset = min(kid_subset_size, len(real), len(fake))
    fid = FrechetInceptionDistance(feature=extractor)
    kid = KernelInceptionDistance(feature=extractor, subset_size=subset, subsets=50)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    kid_mean, kid_std = kid.compute()
    out = {
        f"fid_{name}": fid.compute().item(),
        f"kid_{name}_mean": kid_mean.item(),
        f"kid_{name}_std": kid_std.item(),
    }
    if inception_score:
        score = InceptionScore(feature=LogitsOf(extractor), splits=1)
        score.update(fake)
        out[f"is_{name}"] = score.compute()[0].item()
    precision, recall = precision_recall(features_of(extractor, real), features_of(extractor, fake), pr_k)
    out[f"precision_{name}"], out[f"recall_{name}"] = precision, recall
    return out


def frame_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """OpenSTL's frame-prediction metrics of ``pred``/``target`` videos ``(B, T, C, H, W)`` in [0, 1].

    - ``mse_per_frame``/``mae_per_frame``: squared/absolute error summed over a frame's C x H x W
      pixels, averaged over samples and frames; computed before clipping (OpenSTL's ``MSE``/``MAE``).
    - ``mse_per_pixel``: the per-pixel mean squared error.
    - ``psnr``: per frame ``10 log10(1 / mse)`` with that frame's per-pixel MSE, after clipping both to
      [0, 1], averaged over samples and frames (OpenSTL quantises to uint8 first; we do not).
    - ``ssim``: per frame (Wang et al. 2004) with a uniform 7x7 window, K1 = 0.01, K2 = 0.03, data range
      1 (skimage's defaults, which OpenSTL calls), after clipping, averaged over samples and frames.

    Also ``*_per_step`` curves ``(T,)``: each metric averaged over samples only, one value per time step.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    b, t = pred.shape[:2]
    error = pred - target
    frame_dims = (2, 3, 4)
    mse_frame = error.pow(2).sum(frame_dims)  # (B, T)
    mae_frame = error.abs().sum(frame_dims)
    p, y = pred.clamp(0, 1), target.clamp(0, 1)
    mse_pixel_clipped = (p - y).pow(2).mean(frame_dims)
    psnr = 10 * torch.log10(1.0 / mse_pixel_clipped.clamp_min(1e-10))
    ssim = structural_similarity_index_measure(
        p.flatten(0, 1).double(),  # float32 loses ~2e-4 of SSIM on near-constant frames
        y.flatten(0, 1).double(),
        gaussian_kernel=False,
        kernel_size=7,
        data_range=1.0,
        reduction="none",
    ).view(b, t).to(pred.dtype)
    per_frame = {
        "mse_per_frame": mse_frame,
        "mae_per_frame": mae_frame,
        "mse_per_pixel": error.pow(2).mean(frame_dims),
        "psnr": psnr,
        "ssim": ssim,
    }
    out = {k: v.mean() for k, v in per_frame.items()}
    out.update({f"{k}_per_step": v.mean(0) for k, v in per_frame.items()})
    return out
