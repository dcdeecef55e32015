"""Sample-quality metrics of image generators, all in one feature space, and frame-prediction metrics.

- FID: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", NeurIPS 2017, Eq. 6 (the value of torchmetrics' ``FrechetInceptionDistance``, computed
  faster for 2048-d features, see ``frechet_distance``).
- KID: Bińkowski et al., "Demystifying MMD GANs", ICLR 2018: the unbiased MMD^2 estimator with the
  cubic polynomial kernel, mean ± std over random subsets (torchmetrics' ``KernelInceptionDistance``).
- IS: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, on the classifier's
  logits (torchmetrics' ``InceptionScore``).
- Precision/recall: Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, Eq. 1-3: each set's manifold is the union of balls around its
  features with radius the distance to the k-th nearest neighbour in the same set; precision = share
  of fakes inside the real manifold, recall = share of reals inside the fake manifold.
- Video generators (``video_metrics``): the Fréchet distance of whole clips in the feature space of a
  C3D trained by vidgen (``fd_c3d``; not the I3D FVD of Unterthiner et al. 2018) and the mean per-frame
  FID, see the function.
- Frame prediction (``frame_metrics``): OpenSTL's conventions (Tan et al., "OpenSTL", NeurIPS 2023
  Datasets & Benchmarks), see the function.

The feature extractor names every key it changes: ``fid_<extractor>``, ``kid_<extractor>_mean``, ...
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def features_of(extractor: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``extractor(images)`` in batches, as float64 rows."""
    return torch.cat(
        [extractor(images[i : i + batch_size]).double() for i in range(0, len(images), batch_size)]
    )


@torch.no_grad()
def features_and_logits_of(
    extractor: nn.Module, images: torch.Tensor, batch_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (float64 rows) and class logits of ``images``, one pass of
    ``extractor.features_and_logits``."""
    features, logits = [], []
    for i in range(0, len(images), batch_size):
        f, z = extractor.features_and_logits(images[i : i + batch_size])
        features.append(f.double())
        logits.append(z.double())
    return torch.cat(features), torch.cat(logits)


class Given(nn.Module):
    """Features computed beforehand, passed through unchanged: lets torchmetrics' FID/KID/IS (which call
    their feature network on what they are given) work on features, so each image is encoded once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


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
    real_features: torch.Tensor | None = None,
) -> dict[str, float]:
    """FID, KID (mean, std), IS and precision/recall of ``fake`` against ``real`` image batches.

    ``extractor`` maps images (as the data gives them) to features and, when ``inception_score``, has
    ``features_and_logits`` (both in one pass). Every image is encoded once (batches of
    ``extractor.batch_size``, default 512); the metrics share the features. ``real_features``: those of
    ``real``, when the caller has already computed them (``features_of``), so they are not again. Keys:
    ``fid_<name>``, ``kid_<name>_mean``, ``kid_<name>_std``, ``is_<name>``, ``precision_<name>``,
    ``recall_<name>`` (without the ``split/`` prefix).
    """
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = torch.cat(list(real)), torch.cat(list(fake))
    batch_size = getattr(extractor, "batch_size", 512)
    real_f = features_of(extractor, real, batch_size) if real_features is None else real_features
    if inception_score:
        fake_f, fake_logits = features_and_logits_of(extractor, fake, batch_size)
    else:
        fake_f = features_of(extractor, fake, batch_size)
    subset = min(kid_subset_size, len(real), len(fake))
    kid = KernelInceptionDistance(feature=Given(real_f.shape[1]), subset_size=subset, subsets=50)
    kid.update(real_f, real=True)
    kid.update(fake_f, real=False)
    kid_mean, kid_std = kid.compute()
    out = {
        f"fid_{name}": frechet_distance(real_f, fake_f),
        f"kid_{name}_mean": kid_mean.item(),
        f"kid_{name}_std": kid_std.item(),
    }
    if inception_score:
        score = InceptionScore(feature=Given(fake_logits.shape[1]), splits=1)
        score.update(fake_logits)
        out[f"is_{name}"] = score.compute()[0].item()
    precision, recall = precision_recall(real_f, fake_f, pr_k)
    out[f"precision_{name}"], out[f"recall_{name}"] = precision, recall
    return out


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance (Heusel et al. 2017, Eq. 6) between the Gaussians fitted to two sets of feature
    rows ``(N, D)``: ``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))``, float64.

    The value of torchmetrics' ``FrechetInceptionDistance`` (``tests/test_metrics.py`` checks it to
    1e-7 relative), computed differently because its ``torch.linalg.eigvals`` of the non-symmetric ``D x D``
    product ``S_r S_f`` takes 1-2 minutes for Inception's D = 2048 on this 2-core CPU. Here the trace
    term comes from symmetric matrices in the smaller of the two spaces: with centred rows ``A``, ``B``
    (``S_r = A'A/n``, ``S_f = B'B/m``), the non-zero eigenvalues of ``S_r S_f`` are the squared singular
    values of ``A B' / sqrt(nm)``, so when there are fewer samples than features the term is the nuclear
    norm of that ``N x M`` matrix; otherwise ``sum sqrt(eigvalsh(R S_f R))`` with ``R = S_r^(1/2)``.
    """
    real, fake = real.double(), fake.double()
    a, b = real - real.mean(0), fake - fake.mean(0)
    n, m = len(a) - 1, len(b) - 1
    if n < 1 or m < 1:
        raise ValueError(f"the Fréchet distance needs at least 2 rows per set, got {len(a)} and {len(b)}")
    if min(len(a), len(b)) < a.shape[1]:
        cross = torch.linalg.matrix_norm(a @ b.T, ord="nuc") / (n * m) ** 0.5
    else:
        w, v = torch.linalg.eigh(a.T @ a / n)
        root = (v * w.clamp(min=0).sqrt()) @ v.T
        cross = torch.linalg.eigvalsh(root @ (b.T @ b / m) @ root).clamp(min=0).sqrt().sum()
    means = (real.mean(0) - fake.mean(0)).square().sum()
    return float(means + a.square().sum() / n + b.square().sum() / m - 2 * cross)


def still_frames(videos: torch.Tensor, length: int) -> torch.Tensor:
    """Every frame of ``videos`` ``(N, T, C, H, W)`` as a still clip, the frame repeated ``length``
    times: ``(N * T, length, C, H, W)``, clip ``n * T + t`` showing frame ``t`` of video ``n`` (a view)."""
    n, t = videos.shape[:2]
    return videos.flatten(0, 1).unsqueeze(1).expand(n * t, length, *videos.shape[2:])


def video_metrics(
    extractor: nn.Module,
    real: torch.Tensor | Iterable[torch.Tensor],
    fake: torch.Tensor | Iterable[torch.Tensor],
    name: str,
    still_length: int = 8,
) -> dict[str, float]:
    """Sample quality of generated clips ``fake`` against ``real`` (tensors ``(N, T, C, H, W)`` or
    iterables of such batches) in the feature space of a video network ``extractor`` (the C3D of
    ``vidgen.metrics.video_features``, which maps clips of any length to feature rows). Keys:

    - ``fd_c3d_<name>``: the Fréchet distance between the features of the real and of the fake clips.
      FVD-style, but NOT the Fréchet Video Distance of Unterthiner et al. 2018 (arXiv:1812.01717, an
      I3D trained on Kinetics-400, whose weights cannot be downloaded offline) and not comparable to it,
      nor across datasets, clip shapes or extractors: the space is a small C3D vidgen trained on this
      dataset's clips.
    - ``fid_frames_<name>_mean``: the mean over time steps ``t`` of the FID between frame ``t`` of the
      real and frame ``t`` of the fake clips: image quality, step by step, without the motion. Each frame
      is encoded by the same C3D as a still clip, the frame repeated ``still_length`` times (8: as good as
      longer still clips in the measurement below, at a fraction of their cost).

    Why still clips and not one-frame clips (``T = 1``, which the C3D also accepts): with zero padding
    in time, a one-frame clip reaches only the middle temporal slice of every 3x3x3 kernel, far from the
    batch-norm statistics of the moving clips the C3D was trained on, while a still clip is close to
    them. Measured with the C3D of ``vidgen-features data=moving_digits`` (``vidgen.metrics.
    video_features``), its class head on 1,000 test frames read as clips of 1, 2, 3, 4, 8 and 20 equal
    frames: 15%, 29%, 39%, 36%, 43% and 40% accuracy (chance 10%; moving clips: 47%, of which about half
    is the ceiling as the label is one of two digits). The other offline image feature space, the data's
    LeNet-5 domain classifier (``vidgen.metrics.features``), is trained on single centred 8x8 digits,
    not on frames of two 16x16 digits anywhere in 32x32.

    Every clip and every frame is encoded once (batches of ``extractor.batch_size``, default 512); the
    per-frame FID costs about ``still_length`` times the clip FD.
    """

    def clips(videos: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
        return videos if isinstance(videos, torch.Tensor) else torch.cat(list(videos))

    real, fake = clips(real), clips(fake)
    if real.ndim != 5 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"video_metrics needs real and fake clips (N, T, C, H, W) of one shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}."
        )
    batch_size = getattr(extractor, "batch_size", 512)
    out = {
        f"fd_c3d_{name}": frechet_distance(
            features_of(extractor, real, batch_size), features_of(extractor, fake, batch_size)
        )
    }
    steps = real.shape[1]
    real_frames, fake_frames = (
        features_of(extractor, still_frames(v, still_length), batch_size).view(len(v), steps, -1)
        for v in (real, fake)
    )
    per_step = [frechet_distance(real_frames[:, t], fake_frames[:, t]) for t in range(steps)]
    out[f"fid_frames_{name}_mean"] = sum(per_step) / steps
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
    ssim = (
        structural_similarity_index_measure(
            p.flatten(0, 1).double(),  # float32 loses ~2e-4 of SSIM on near-constant frames
            y.flatten(0, 1).double(),
            gaussian_kernel=False,
            kernel_size=7,
            data_range=1.0,
            reduction="none",
        )
        .view(b, t)
        .to(pred.dtype)
    )
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
