"""Sample quality of generators in a feature space: one ``torchmetrics.Metric`` for validation and test.

- FID: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", NeurIPS 2017, Eq. 6 (the value of torchmetrics' ``FrechetInceptionDistance``, computed
  faster for 2048-d features, see ``frechet_distance``).
- KID: Bińkowski et al., "Demystifying MMD GANs", ICLR 2018: the unbiased MMD^2 estimator with the
  cubic polynomial kernel, mean ± std over random subsets (torchmetrics' ``KernelInceptionDistance``).
- IS: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, on the space's logits
  (torchmetrics' ``InceptionScore``).
- Precision/recall: Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019, Eq. 1-3: each set's manifold is the union of balls around its
  features with radius the distance to the k-th nearest neighbour in the same set; precision = share
  of fakes inside the real manifold, recall = share of reals inside the fake manifold.
- Clips (``(N, T, C, H, W)``, in the C3D space of ``vidgen.metrics.feature_spaces``): ``fd_c3d``, the
  Fréchet distance of whole clips (FVD-style, but NOT the I3D FVD of Unterthiner et al. 2018 and not
  comparable to it), and ``fid_frames_<name>_mean``, the mean over time steps of the FID between frame
  t of the real and of the fake clips, each frame encoded as a still clip (see ``still_frames``).

``SampleQuality`` keeps only feature rows (states gathered across DDP ranks by concatenation), so every
sample is encoded once whatever metrics are asked; keys carry the space's name (``fid_<name>``, ...).
Beside them it measures the space itself: given the labels of the real samples, the share its logits
classify correctly (``feature_extractor_accuracy_<name>`` over ``n_accuracy_<name>`` labelled samples,
counts summed over ranks), for spaces whose logits are the data's classes (``FeatureSpace.classifies_data``).
Generated samples of a conditional model given with the classes they were asked for give
``conditional_accuracy_<name>`` (over ``n_conditional_<name>``): the share the same classifier assigns to the
requested class (the "accuracy with which the classifier hears the requested digit" of issue 18; chance is
1 / classes, and the space's accuracy on real samples is the ceiling).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torchmetrics import Metric

from vidgen.metrics.feature_spaces import FeatureSpace

IMAGE_METRICS = ("fid", "kid", "is", "precision_recall")
VIDEO_METRICS = ("fd_c3d", "fid_frames")


@torch.no_grad()
def features_of(space: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """``space(x)`` in batches of ``space.batch_size``, as float64 rows."""
    batch_size = batch_size or getattr(space, "batch_size", 512)
    return torch.cat([space(x[i : i + batch_size]).double() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def features_and_logits_of(space: FeatureSpace, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and class logits of ``x`` (float64 rows), one pass of ``space.features_and_logits``."""
    parts = [
        space.features_and_logits(x[i : i + space.batch_size]) for i in range(0, len(x), space.batch_size)
    ]
    return torch.cat([f.double() for f, _ in parts]), torch.cat([z.double() for _, z in parts])


class Given(nn.Module):
    """Features computed beforehand, passed through unchanged: lets torchmetrics' KID and IS (which call
    their feature network on what they are given) work on features, so each sample is encoded once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance (Heusel et al. 2017, Eq. 6) between the Gaussians fitted to two sets of feature
    rows ``(N, D)``: ``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))``, float64.

    The value of torchmetrics' ``FrechetInceptionDistance`` (``tests/test_metrics.py`` checks it),
    computed differently because its ``torch.linalg.eigvals`` of the non-symmetric ``D x D`` product
    ``S_r S_f`` is slow for Inception's D = 2048 (docs/PERFORMANCE.md). Here the trace term comes from
    symmetric matrices in the smaller of the two spaces: with centred rows ``A``, ``B`` (``S_r = A'A/n``,
    ``S_f = B'B/m``), the non-zero eigenvalues of ``S_r S_f`` are the squared singular values of
    ``A B' / sqrt(nm)``, so with fewer samples than features the term is the nuclear norm of that
    ``N x M`` matrix; otherwise ``sum sqrt(eigvalsh(R S_f R))`` with ``R = S_r^(1/2)``.
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


def still_frames(videos: torch.Tensor, length: int) -> torch.Tensor:
    """Every frame of ``videos`` ``(N, T, C, H, W)`` as a still clip, the frame repeated ``length``
    times: ``(N * T, length, C, H, W)``, clip ``n * T + t`` showing frame ``t`` of video ``n`` (a view).

    Why still clips and not one-frame clips (which the C3D also accepts): with zero padding in time, a
    one-frame clip reaches only the middle temporal slice of every 3x3x3 kernel, far from the batch-norm
    statistics of the moving clips the C3D was trained on, while a still clip is close to them (measured
    in docs/PERFORMANCE.md: class accuracy of frames as clips of 1..20 equal frames). 8 frames are as
    good as longer still clips at a fraction of their cost.
    """
    n, t = videos.shape[:2]
    return videos.flatten(0, 1).unsqueeze(1).expand(n * t, length, *videos.shape[2:])


class SampleQuality(Metric):
    """Real and generated samples in ``space``; ``compute()`` -> ``{key: value}`` without a split prefix.

    ``update(x, real=True|False)`` takes batches in the data's value range (images, or clips for a C3D
    space). Images: ``metrics`` of ``IMAGE_METRICS`` -> ``fid_<name>``, ``kid_<name>_mean``/``_std``,
    ``is_<name>``, ``precision_<name>``/``recall_<name>``. Clips: ``fd_c3d_<name>`` and
    ``fid_frames_<name>_mean``. Real samples given with their ``labels`` also give
    ``feature_extractor_accuracy_<name>`` and ``n_accuracy_<name>`` (labels < 0, unlabelled, are skipped);
    generated samples given with their requested ``labels`` give ``conditional_accuracy_<name>`` and
    ``n_conditional_<name>``.

    Args:
        space: the feature space (``vidgen.metrics.feature_spaces.feature_space``).
        metrics: which metrics to compute (validation asks for ``fid`` only).
        kid_subset_size: KID subset size (capped at the sample sizes), 50 subsets.
        pr_k: the k of the k-NN radii of precision/recall (3 in the paper).
        is_splits: Inception Score splits: the score is the mean over them, ``is_<name>_std`` their std
            (10 in Salimans et al. 2016 and the papers that report IS).
        still_length: frames of the still clips of ``fid_frames``.
    """

    full_state_update = False

    def __init__(
        self,
        space: FeatureSpace,
        metrics: Sequence[str] = IMAGE_METRICS,
        kid_subset_size: int = 100,
        pr_k: int = 3,
        is_splits: int = 1,
        still_length: int = 8,
    ):
        super().__init__()
        unknown = set(metrics) - set(IMAGE_METRICS) - set(VIDEO_METRICS)
        if unknown:
            raise ValueError(f"unknown sample-quality metrics {sorted(unknown)}; known: "
                             f"{', '.join(IMAGE_METRICS + VIDEO_METRICS)}.")  # fmt: skip
        self.space = space
        self.metrics = tuple(metrics)
        self.kid_subset_size, self.pr_k, self.is_splits, self.still_length = (
            kid_subset_size, pr_k, is_splits, still_length)  # fmt: skip
        states = (
            "real_features",
            "fake_features",
            "fake_logits",
            "real_frames",
            "fake_frames",
            "reference_features",
        )
        for state in states:
            self.add_state(state, default=[], dist_reduce_fx="cat")
        # the space's accuracy on the labelled real samples: counts, summed over ranks (exact under DDP)
        for state in ("accuracy_hits", "accuracy_count", "conditional_hits", "conditional_count"):
            self.add_state(state, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(
        self, x: torch.Tensor, real: bool, reference: bool = False, labels: torch.Tensor | None = None
    ) -> None:
        """Adds a batch of real or generated samples; ``reference=True``: real samples of another split
        (training images), whose FID against the real ones is reported as ``fid_<name>_real_floor``;
        ``labels``: the classes of real samples, to measure the space's accuracy on them, or the classes
        generated samples were asked for, to measure how often the space sees the requested class."""
        side = "reference" if reference else "real" if real else "fake"
        b, clip = len(x), x.ndim == 5
        classifies = getattr(self.space, "classifies_data", False)  # its logits are the data's classes
        measure = real and not reference and labels is not None and classifies
        conditional = not real and labels is not None and classifies
        if b == 0:  # a DDP rank that drew no samples still takes part in the gather, with no rows
            getattr(self, f"{side}_features").append(
                torch.zeros(0, self.space.num_features, dtype=torch.double)
            )
            if clip:
                frames = torch.zeros(0, x.shape[1], self.space.num_features, dtype=torch.double)
                getattr(self, f"{side}_frames").append(frames)
            elif not real and "is" in self.metrics:
                self.fake_logits.append(torch.zeros(0, self._num_logits(x), dtype=torch.double))
            return
        if (not real and not clip and "is" in self.metrics) or measure or conditional:
            features, logits = features_and_logits_of(self.space, x)
            if not real and not clip and "is" in self.metrics:
                self.fake_logits.append(logits)
            if measure or conditional:
                labels = labels.to(logits.device)
                labelled = labels >= 0
                hits = int((logits[labelled].argmax(1) == labels[labelled]).sum())
                prefix = "accuracy" if measure else "conditional"
                setattr(self, f"{prefix}_hits", getattr(self, f"{prefix}_hits") + hits)
                setattr(self, f"{prefix}_count", getattr(self, f"{prefix}_count") + int(labelled.sum()))
        else:
            features = features_of(self.space, x)
        getattr(self, f"{side}_features").append(features)
        if clip and "fid_frames" in self.metrics:
            frames = features_of(self.space, still_frames(x, self.still_length)).view(b, x.shape[1], -1)
            getattr(self, f"{side}_frames").append(frames)

    def reset_fakes(self) -> None:
        """Forgets the generated samples and keeps the real ones, to score another generator against the
        same real features (the untrained baseline) without encoding them again."""
        self.fake_features, self.fake_logits, self.fake_frames = [], [], []
        self.conditional_hits.zero_()
        self.conditional_count.zero_()
        self._computed = None

    def _num_logits(self, x: torch.Tensor) -> int:
        probe = torch.zeros(1, *x.shape[1:], dtype=x.dtype, device=x.device)
        return self.space.features_and_logits(probe)[1].shape[1]

    @staticmethod
    def _rows(state: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        if isinstance(state, list):
            return torch.cat(state) if state else torch.zeros(0, 0, dtype=torch.double)
        return state

    def compute(self) -> dict[str, float]:
        name = self.space.name
        real, fake = self._rows(self.real_features), self._rows(self.fake_features)
        if len(real) < 2 or len(fake) < 2:
            raise ValueError(
                f"sample-quality metrics need >= 2 real and fake samples, got {len(real)} and {len(fake)}"
            )
        out: dict[str, float] = {}
        if "fd_c3d" in self.metrics:
            out[f"fd_c3d_{name}"] = frechet_distance(real, fake)
        if "fid_frames" in self.metrics:
            real_t, fake_t = self._rows(self.real_frames), self._rows(self.fake_frames)
            steps = real_t.shape[1]
            out[f"fid_frames_{name}_mean"] = (
                sum(frechet_distance(real_t[:, t], fake_t[:, t]) for t in range(steps)) / steps
            )
        if "fid" in self.metrics:
            out[f"fid_{name}"] = frechet_distance(real, fake)
        # KID's subsets and IS's splits are drawn from a generator of their own: the values depend on the
        # samples only, not on how much randomness the run used before
        with torch.random.fork_rng(devices=[]):
            if "kid" in self.metrics:
                torch.manual_seed(0)
                from torchmetrics.image.kid import KernelInceptionDistance

                subset = min(self.kid_subset_size, len(real), len(fake))
                kid = KernelInceptionDistance(feature=Given(real.shape[1]), subset_size=subset, subsets=50)
                kid.update(real, real=True)
                kid.update(fake, real=False)
                kid_mean, kid_std = kid.compute()
                out[f"kid_{name}_mean"], out[f"kid_{name}_std"] = kid_mean.item(), kid_std.item()
            if "is" in self.metrics:
                from torchmetrics.image.inception import InceptionScore

                torch.manual_seed(1)  # the permutation before the splits
                logits = self._rows(self.fake_logits)
                score = InceptionScore(feature=Given(logits.shape[1]), splits=self.is_splits)
                score.update(logits)
                mean, std = score.compute()
                out[f"is_{name}"] = mean.item()
                if self.is_splits > 1:
                    out[f"is_{name}_std"] = std.item()
        reference = self._rows(self.reference_features)
        if len(reference):
            out[f"fid_{name}_real_floor"] = frechet_distance(real, reference)
        if "precision_recall" in self.metrics:
            out[f"precision_{name}"], out[f"recall_{name}"] = precision_recall(real, fake, self.pr_k)
        # the sample sizes every value above was computed from (a FID of 180 vs 180 is not one of 10,000)
        out[f"n_real_{name}"], out[f"n_fake_{name}"] = float(len(real)), float(len(fake))
        if len(reference):
            out[f"n_reference_{name}"] = float(len(reference))
        out.update(self._accuracy())
        return out

    def _accuracy(self) -> dict[str, float]:
        """``feature_extractor_accuracy_<name>`` / ``n_accuracy_<name>`` of the labelled real samples and
        ``conditional_accuracy_<name>`` / ``n_conditional_<name>`` of the generated ones (all ranks); each
        pair only when such samples were given."""
        name, out = self.space.name, {}
        count = int(self.accuracy_count)
        if count:
            out[f"feature_extractor_accuracy_{name}"] = int(self.accuracy_hits) / count
            out[f"n_accuracy_{name}"] = float(count)
        count = int(self.conditional_count)
        if count:
            out[f"conditional_accuracy_{name}"] = int(self.conditional_hits) / count
            out[f"n_conditional_{name}"] = float(count)
        return out


def sample_quality(
    space: FeatureSpace,
    real: torch.Tensor | Iterable[torch.Tensor],
    fake: torch.Tensor | Iterable[torch.Tensor],
    metrics: Sequence[str] | None = None,
    **options: int,
) -> dict[str, float]:
    """``SampleQuality`` of two sets at once (tensors or iterables of batches); ``metrics`` defaults to
    the image or the clip metrics by the samples' shape."""

    def batches(x: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
        return [x] if isinstance(x, torch.Tensor) else list(x)

    real, fake = batches(real), batches(fake)
    if metrics is None:
        metrics = VIDEO_METRICS if real[0].ndim == 5 else IMAGE_METRICS
    metric = SampleQuality(space, metrics, **options)
    for x in real:
        metric.update(x, real=True)
    for x in fake:
        metric.update(x, real=False)
    return metric.compute()
