"""Independent references for the tests: the papers' and OpenSTL's formulas written with numpy, scipy
and scikit-image, sharing no code with ``vidgen.metrics``."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def frechet_distance_scipy(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Heusel et al. 2017, Eq. 6 on feature rows: ``|mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))``
    with numpy's covariances and scipy's ``sqrtm`` (as the reference TTUR code computes it)."""
    from scipy import linalg

    r, f = real.double().numpy(), fake.double().numpy()
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    with warnings.catch_warnings():
        # with fewer samples than features the covariances are singular and scipy says so; the square
        # root of their product exists all the same (tests compare it with vidgen's other formula)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(s_r @ s_f).real
    return float(np.sum((r.mean(0) - f.mean(0)) ** 2) + np.trace(s_r + s_f - 2 * root))


def openstl_per_step(pred: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    """OpenSTL's frame metrics (openstl/core/metrics.py) of ``pred``/``target`` ``(B, T, C, H, W)`` in
    [0, 1], one value per predicted step ``t``, averaged over the ``B`` sequences by a plain loop:
    MSE/MAE summed over a frame's C x H x W before clipping, per-pixel MSE, and with the prediction
    clipped to [0, 1] PSNR ``20 log10(1 / sqrt(mse))`` and scikit-image's SSIM (data range 1: ``ssim``;
    2, what OpenSTL's tables used: ``ssim_openstl``)."""
    from skimage.metrics import structural_similarity

    p, y = pred.double().numpy(), target.double().numpy()
    clipped = np.clip(p, 0, 1)
    b, t = p.shape[:2]
    names = ("mse_per_frame", "mae_per_frame", "mse_per_pixel", "psnr", "ssim", "ssim_openstl")
    out = {name: np.zeros(t) for name in names}
    for step in range(t):
        for i in range(b):
            error = p[i, step] - y[i, step]
            out["mse_per_frame"][step] += np.sum(error**2) / b
            out["mae_per_frame"][step] += np.sum(np.abs(error)) / b
            out["mse_per_pixel"][step] += np.mean(error**2) / b
            mse = np.mean((clipped[i, step] - y[i, step]) ** 2)
            out["psnr"][step] += 20 * np.log10(1 / np.sqrt(mse)) / b
            for name, data_range in (("ssim", 1.0), ("ssim_openstl", 2.0)):
                value = structural_similarity(
                    clipped[i, step], y[i, step], data_range=data_range, channel_axis=0
                )
                out[name][step] += value / b
    return out


def precision_recall_numpy(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019, Eq. 1-3 by a plain loop: a sample is inside the other set's manifold when
    it lies within the k-th-nearest-neighbour radius of one of that set's samples."""
    r, f = real.double().numpy(), fake.double().numpy()

    def radii(x: np.ndarray) -> np.ndarray:
        distances = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        return np.sort(distances, axis=1)[:, k]  # column 0 is the sample itself

    def inside(points: np.ndarray, support: np.ndarray) -> float:
        support_radii = radii(support)
        hits = [np.any(np.sqrt(((support - p) ** 2).sum(-1)) <= support_radii) for p in points]
        return float(np.mean(hits))

    return inside(f, r), inside(r, f)


def inception_score_scipy(logits: torch.Tensor, splits: int, seed: int) -> tuple[float, float]:
    """Salimans et al. 2016: ``exp(E_x KL(p(y|x) || p(y)))`` in each of ``splits`` parts of the samples
    (permuted by ``torch.randperm`` after ``torch.manual_seed(seed)``, as vidgen does), mean and std."""
    from scipy.special import softmax
    from scipy.stats import entropy

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order = torch.randperm(len(logits)).numpy()
    probs = softmax(logits.double().numpy()[order], axis=1)
    scores = [
        np.exp(np.mean([entropy(p, part.mean(0)) for p in part])) for part in np.array_split(probs, splits)
    ]
    return float(np.mean(scores)), float(np.std(scores, ddof=1))
