"""Correctness of the evaluation metrics against hand-computed values and known properties."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from data_files import SHARED, requires_real_data
from vidgen.data.cifar10 import CIFAR10DataModule
from vidgen.data.digits import DigitsDataModule
from vidgen.data.mnist import MNISTDataModule
from vidgen.metrics.feature_spaces import ClassifierSpace, cache_file, feature_space, load_recipe
from vidgen.metrics.frames import frame_metrics
from vidgen.metrics.sample_quality import (
    Given,
    features_of,
    frechet_distance,
    precision_recall,
    sample_quality,
)

from conftest import compose_train

NO_IS = ("fid", "kid", "precision_recall")  # the metrics that need no logits


@pytest.fixture(scope="module")
def digits(data_dir: Path) -> tuple[DigitsDataModule, ClassifierSpace]:
    dm = DigitsDataModule(data_dir=str(data_dir))
    return dm, feature_space(dm)


def _images(dm: DigitsDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = dm.splits[split].tensors
    return x, y


def test_fid_of_a_set_against_itself_is_zero(digits) -> None:
    dm, extractor = digits
    x, _ = _images(dm, "train")
    metrics = sample_quality(extractor, x, x.clone())
    keys = ("fid", "kid_{}_mean", "kid_{}_std", "is", "precision", "recall", "n_real", "n_fake")
    assert set(metrics) == {k.format("digits") if "{}" in k else f"{k}_digits" for k in keys}
    assert metrics["n_real_digits"] == metrics["n_fake_digits"] == len(x)  # every value carries its N
    assert abs(metrics["fid_digits"]) < 1e-2
    assert metrics["precision_digits"] == 1.0 and metrics["recall_digits"] == 1.0


@pytest.mark.parametrize(("n_real", "n_fake"), [(500, 400), (30, 50)], ids=["more-rows", "fewer-rows"])
def test_frechet_distance_equals_torchmetrics_fid(n_real: int, n_fake: int) -> None:
    """Both ways of computing the trace term (fewer rows than features or not) give torchmetrics' value."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    g = torch.Generator().manual_seed(0)
    real = torch.randn(n_real, 64, generator=g, dtype=torch.float64).relu()
    fake = (torch.randn(n_fake, 64, generator=g, dtype=torch.float64) * 1.3 + 0.2).relu()
    fid = FrechetInceptionDistance(feature=Given(64))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    assert frechet_distance(real, fake) == pytest.approx(fid.compute().item(), rel=1e-7)
    assert abs(frechet_distance(real, real)) < 1e-9


def test_fid_between_classes_exceeds_fid_between_halves_of_a_class(digits) -> None:
    dm, extractor = digits
    x, y = _images(dm, "train")
    zeros, ones = x[y == 0], x[y == 1]
    half = len(zeros) // 2
    n = min(len(zeros), len(ones))
    within = sample_quality(extractor, zeros[:half], zeros[half : 2 * half], NO_IS)
    across = sample_quality(extractor, zeros[:n], ones[:n], NO_IS)
    # halves are half as large as the class sets, so their FID carries more small-sample bias: still lower
    assert across["fid_digits"] > 5 * within["fid_digits"] > 0
    assert across["kid_digits_mean"] > within["kid_digits_mean"]
    assert across["precision_digits"] < within["precision_digits"]


def _unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Bińkowski et al. 2018, Eq. 2 with the cubic kernel k(a, b) = (a.b / d + 1)^3, by hand."""
    d, m = x.shape[1], len(x)

    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = 1 - torch.eye(m, dtype=x.dtype)
    return ((kxx * off).sum() / (m * (m - 1)) + (kyy * off).sum() / (m * (m - 1)) - 2 * kxy.mean()).item()


def test_kid_is_the_unbiased_mmd_and_near_zero_on_one_distribution(digits) -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    dm, extractor = digits
    x, _ = _images(dm, "train")
    a, b = x[:200], x[200:400]
    kid = KernelInceptionDistance(feature=extractor, subsets=1, subset_size=200)
    kid.update(a, real=True)
    kid.update(b, real=False)
    mean, _ = kid.compute()
    fa, fb = features_of(extractor, a), features_of(extractor, b)
    assert mean.item() == pytest.approx(_unbiased_mmd2(fa, fb), rel=1e-4)
    # unbiased: two samples of one distribution give ~0 (within the subset spread), unlike FID
    metrics = sample_quality(extractor, a, b, NO_IS, kid_subset_size=100)
    assert abs(metrics["kid_digits_mean"]) < 3 * metrics["kid_digits_std"]
    assert metrics["fid_digits"] > 0


def test_frechet_distance_equals_the_formula_with_scipy_sqrtm() -> None:
    """Heusel et al. 2017, Eq. 6: |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)), with scipy's sqrtm."""
    import numpy as np
    from scipy import linalg

    g = torch.Generator().manual_seed(3)
    for n_real, n_fake, dim in ((300, 250, 16), (20, 30, 40)):
        real = torch.randn(n_real, dim, generator=g, dtype=torch.float64)
        fake = torch.randn(n_fake, dim, generator=g, dtype=torch.float64) * 1.2 + 0.3
        r, f = real.numpy(), fake.numpy()
        s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
        root = linalg.sqrtm(s_r @ s_f).real
        expected = np.sum((r.mean(0) - f.mean(0)) ** 2) + np.trace(s_r + s_f - 2 * root)
        assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)


def test_inception_score_is_the_mean_and_std_over_ten_splits() -> None:
    """Salimans et al. 2016: IS = exp(E_x KL(p(y|x) || p(y))) per split of the samples, mean ± std over
    10 splits, here by hand with scipy on fixed logits (the samples permuted as vidgen does first)."""
    import numpy as np
    from scipy.special import softmax
    from scipy.stats import entropy

    from vidgen.metrics.sample_quality import SampleQuality

    g = torch.Generator().manual_seed(5)
    logits = torch.randn(200, 10, generator=g, dtype=torch.float64) * 3

    class Logits(torch.nn.Module):  # a "space" whose logits are the given rows
        name, num_features, batch_size = "fixed", 10, 512

        def forward(self, x):
            return x

        def features_and_logits(self, x):
            return x, x

    metric = SampleQuality(Logits(), metrics=("is",), is_splits=10)
    metric.update(logits, real=True)
    metric.update(logits, real=False)
    out = metric.compute()
    torch.manual_seed(1)
    order = torch.randperm(200).numpy()
    probs = softmax(logits.numpy()[order], axis=1)
    scores = [np.exp(np.mean([entropy(p, part.mean(0)) for p in part])) for part in np.split(probs, 10)]
    assert out["is_fixed"] == pytest.approx(np.mean(scores), rel=1e-9)
    assert out["is_fixed_std"] == pytest.approx(np.std(scores, ddof=1), rel=1e-9)
    assert out["n_fake_fixed"] == 200


def test_precision_recall_on_hand_made_points() -> None:
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    # k=1 radii of real: 1 each. Fakes: two inside the real manifold, two far away.
    fake = torch.tensor([[0.5], [3.5], [100.0], [101.0], [102.0]], dtype=torch.float64)
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 5)
    # fake radii (k=1): 3, 3, 1, 1, 1 -> reals within 3 of 0.5 or 3.5: all five
    assert recall == pytest.approx(1.0)


def test_frame_metrics_match_hand_computed_values() -> None:
    b, t, c, h, w = 2, 3, 1, 16, 16
    target = torch.full((b, t, c, h, w), 0.9)
    pred = torch.full((b, t, c, h, w), 1.1)  # out of range: MSE/MAE before clipping, PSNR/SSIM after
    m = frame_metrics(pred, target)
    assert m["mse_per_frame"].item() == pytest.approx(0.04 * h * w, rel=1e-5)
    assert m["mae_per_frame"].item() == pytest.approx(0.2 * h * w, rel=1e-5)
    assert m["mse_per_pixel"].item() == pytest.approx(0.04, rel=1e-5)
    assert m["psnr"].item() == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-4)  # clipped: 1.0 vs 0.9
    c1 = 0.01**2  # constant frames: SSIM is its luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    assert m["ssim"].item() == pytest.approx((2 * 1.0 * 0.9 + c1) / (1.0 + 0.81 + c1), rel=1e-4)
    assert m["psnr_per_step"].shape == (t,)

    # identical frames: SSIM 1, zero errors; one wrong step shows in the per-step curve only
    noise = torch.rand(b, t, c, h, w, generator=torch.Generator().manual_seed(0))
    shifted = noise.clone()
    shifted[:, 1] = (shifted[:, 1] + 0.1).clamp(0, 1)
    m = frame_metrics(shifted, noise)
    assert m["ssim_per_step"][0].item() == pytest.approx(1.0, abs=1e-5)
    assert m["mse_per_frame_per_step"][0].item() == 0 and m["mse_per_frame_per_step"][1].item() > 0
    assert m["ssim_per_step"][1].item() < 1.0


def _moving_digit_like(g: torch.Generator, n: int, size: int = 64) -> torch.Tensor:
    """Mostly black frames with a few bright 16x16 blobs, as Moving-MNIST frames are."""
    frames = torch.zeros(n, 1, size, size, dtype=torch.float64)
    for i in range(n):
        for _ in range(2):
            r, c = torch.randint(0, size - 16, (2,), generator=g).tolist()
            frames[i, 0, r : r + 16, c : c + 16] = torch.rand(16, 16, generator=g, dtype=torch.float64).pow(3)
    return frames


@pytest.mark.parametrize("data_range", [1.0, 2.0], ids=["ssim", "ssim_openstl"])
@pytest.mark.parametrize("kind", ["random", "moving_digits", "rgb"])
def test_ssim_equals_scikit_image(kind: str, data_range: float) -> None:
    """scikit-image's structural_similarity with its defaults (uniform 7x7 window, sample covariance,
    border cropped); data range 1 is ``ssim``, 2 what OpenSTL's tables used (``ssim_openstl``)."""
    from skimage.metrics import structural_similarity as skimage_ssim

    from vidgen.metrics.frames import structural_similarity

    g = torch.Generator().manual_seed(0)
    if kind == "moving_digits":
        target = _moving_digit_like(g, 4)
        pred = (target + 0.15 * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    else:
        channels = 3 if kind == "rgb" else 1
        target = torch.rand(4, channels, 32, 32, generator=g, dtype=torch.float64)
        pred = (0.7 * target + 0.3 * torch.rand(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = structural_similarity(pred, target, data_range)
    for i in range(len(pred)):
        reference = skimage_ssim(pred[i].numpy(), target[i].numpy(), data_range=data_range, channel_axis=0)
        assert ours[i].item() == pytest.approx(reference, abs=1e-6)


def test_psnr_mse_mae_follow_openstl_formulas() -> None:
    """OpenSTL (openstl/core/metrics.py): MSE/MAE = mean over batch and time of the sum over C, H, W;
    PSNR per frame 20 log10(1 / sqrt(mse)) with the prediction clipped to [0, 1], averaged."""
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 4, 1, 16, 16, generator=g)
    pred = target + 0.2 * torch.randn(target.shape, generator=g)  # partly outside [0, 1]
    m = frame_metrics(pred, target)
    p, y = pred.double().numpy(), target.double().numpy()
    import numpy as np

    assert m["mse_per_frame"].item() == pytest.approx(np.mean((p - y) ** 2, axis=(0, 1)).sum(), rel=1e-5)
    assert m["mae_per_frame"].item() == pytest.approx(np.mean(np.abs(p - y), axis=(0, 1)).sum(), rel=1e-5)
    clipped = np.clip(p, 0, 1)
    psnr = [
        20 * np.log10(1 / np.sqrt(np.mean((clipped[b, t] - y[b, t]) ** 2)))
        for b in range(3)
        for t in range(4)
    ]
    assert m["psnr"].item() == pytest.approx(float(np.mean(psnr)), rel=1e-5)


def test_importance_sampled_nll_is_below_the_elbo_bound(tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train(["model=vae_mlp", "loss=elbo"], tmp_path, data_dir)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    dm = DigitsDataModule(data_dir=str(data_dir))
    dm.setup()
    x = dm.splits["test"].tensors[0][:32]
    # a few optimisation steps so that q(z|x) is not the prior
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(20):
        loss = model(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        neg_elbo = -torch.stack([model(x)["elbo_nats"] for _ in range(200)]).mean().item()
        nll_1 = model.importance_sampled_nll(x, k=1).mean().item()
        nll_k = model.importance_sampled_nll(x, k=200).mean().item()
    assert 0 < nll_k <= neg_elbo  # Burda et al. 2016, Thm. 1: the IW bound is tighter than the ELBO's
    assert nll_1 == pytest.approx(neg_elbo, rel=0.05)  # k = 1 is the (single-sample) ELBO


def test_digits_space_reports_the_accuracy_its_net_scores_on_the_test_split(digits) -> None:
    """The accuracy stored with the cached LeNet-5 is what that net scores on the test images, counted
    here by hand (no torchmetrics, no Lightning)."""
    dm, space = digits
    x, y = dm.splits["test"].tensors
    with torch.no_grad():
        predicted = space.net(x).argmax(1)
    accuracy = (predicted == y).double().mean().item()
    assert space.test_accuracy == pytest.approx(accuracy, abs=1e-6)
    assert accuracy >= 0.95
    assert space.accuracies() == {"feature_extractor_cached_accuracy_digits": space.test_accuracy}
    # the logits of the Inception Score are that classifier's, the features its penultimate layer
    features, logits = space.features_and_logits(x)
    assert torch.equal(logits.argmax(1), predicted) and features.shape == (len(x), space.num_features)


def test_sample_quality_measures_the_space_on_the_labelled_real_samples(digits) -> None:
    """Real samples given with labels: the share of them the space's logits classify correctly, counted
    here by hand; unlabelled samples (y < 0) and generated ones are not counted; a space whose logits
    are not the data's classes measures nothing."""
    from vidgen.metrics.sample_quality import SampleQuality

    dm, space = digits
    x, y = dm.splits["test"].tensors
    wrong = (y + 1) % 10  # every label of the second half shifted: those all count as misses
    labels = torch.cat([y[:90], wrong[90:150], torch.full((30,), -1)])
    metric = SampleQuality(space, ("fid",))
    for part in (slice(0, 100), slice(100, 180)):  # two batches: the counts add up
        metric.update(x[part], real=True, labels=labels[part])
    metric.update(x.flip(0), real=False)
    out = metric.compute()
    with torch.no_grad():
        predicted = space.net(x).argmax(1)
    expected = int((predicted[:150] == labels[:150]).sum()) / 150
    assert out["n_accuracy_digits"] == 150
    assert out["feature_extractor_accuracy_digits"] == pytest.approx(expected)
    assert expected < 0.75  # the shifted labels count: 90 of 150 right at best, not about 97 %
    assert out["fid_digits"] == pytest.approx(sample_quality(space, x, x.flip(0), ("fid",))["fid_digits"])

    class Unrelated(torch.nn.Module):  # logits that are not the data's classes (as Inception-v3's)
        name, num_features, batch_size, classifies_data = "unrelated", 84, 512, False

        def forward(self, x):
            return space(x)

        def features_and_logits(self, x):
            return space.features_and_logits(x)

    metric = SampleQuality(Unrelated(), ("fid",))
    metric.update(x, real=True, labels=y)
    metric.update(x, real=False)
    assert not any("accuracy" in key for key in metric.compute())


def test_conditional_accuracy_counts_the_requested_class_the_space_sees(digits) -> None:
    """Generated samples given with the classes they were asked for: the share the space assigns to that
    class, counted here by hand; real images posing as fakes with their own labels score the space's own
    accuracy, with shifted labels near 0; ``reset_fakes`` (the untrained baseline) starts the count anew."""
    from vidgen.metrics.sample_quality import SampleQuality

    dm, space = digits
    x, y = dm.splits["test"].tensors
    with torch.no_grad():
        predicted = space.net(x).argmax(1)
    metric = SampleQuality(space, ("fid", "is"))
    metric.update(x, real=True)
    for part in (slice(0, 100), slice(100, 180)):
        metric.update(x[part], real=False, labels=y[part])
    out = metric.compute()
    assert out["n_conditional_digits"] == 180
    assert out["conditional_accuracy_digits"] == pytest.approx(float((predicted == y).double().mean()))
    assert out["conditional_accuracy_digits"] > 0.9
    assert "feature_extractor_accuracy_digits" not in out  # real samples came without labels
    metric.reset_fakes()
    shifted = (y + 1) % 10
    metric.update(x, real=False, labels=shifted)
    out = metric.compute()
    assert out["n_conditional_digits"] == 180
    assert out["conditional_accuracy_digits"] == pytest.approx(float((predicted == shifted).double().mean()))
    assert out["conditional_accuracy_digits"] < 0.1


def test_the_floor_stops_a_space_reading_below_it_with_one_message(digits) -> None:
    from vidgen.errors import FeatureExtractorError

    _, space = digits
    space.check_accuracy(0.9 * space.test_accuracy, 180, None, "test images")  # at the default floor: passes
    space.check_accuracy(0.0, 180, 0.0, "test images")  # 0 turns the check off
    with pytest.raises(FeatureExtractorError) as info:
        space.check_accuracy(0.5, 180, None, "validation images")
    message = str(info.value)
    floor = f"expected at least {0.9 * space.test_accuracy:.1%} (0.9 x the {space.test_accuracy:.1%}"
    for fragment in (f"cache {space.cache}", "classifies 50.0% of the 180 validation images", floor,
                     f"Fix: delete {space.cache}", "min_extractor_accuracy=<value>"):  # fmt: skip
        assert fragment in message, message
    with pytest.raises(FeatureExtractorError, match=r"expected at least 99.0% \(min_extractor_accuracy\)"):
        space.check_accuracy(0.98, 180, 0.99, "test images")


def test_a_digits_space_on_unit_range_data_is_trained_and_measured_in_its_own_range(data_dir: Path) -> None:
    """With data.value_range=[0, 1] (what Bernoulli VAEs use) the space is another cached net, trained on
    those images mapped to [-1, 1], and it reads its own test split as well as the default one does."""
    dm = DigitsDataModule(data_dir=str(data_dir), value_range=[0.0, 1.0])
    space = feature_space(dm)
    x, y = dm.splits["test"].tensors
    assert x.min() >= 0 and x.max() <= 1
    with torch.no_grad():
        accuracy = (space.features_and_logits(x)[1].argmax(1) == y).double().mean().item()
    assert space.test_accuracy == pytest.approx(accuracy, abs=1e-6) and accuracy >= 0.95
    assert space.value_range == (0.0, 1.0)


def _lenet_cache(dm: DigitsDataModule, max_epochs: int | None = None) -> Path:
    recipe = load_recipe("lenet5")
    if max_epochs is not None:
        recipe = OmegaConf.merge(recipe, {"max_epochs": max_epochs})
    dm.setup()  # as trained_feature_net does: the key holds the data's checksum
    return cache_file(dm, "lenet5", recipe)[0]


def test_cache_key_holds_what_decides_the_net_and_nothing_else(digits, data_dir: Path) -> None:
    default = _lenet_cache(DigitsDataModule(data_dir=str(data_dir)))
    # the file the module's space was trained into (or loaded from) is found again by the key
    assert default.is_file() and default.with_suffix(".json").is_file()
    assert default.parent == data_dir / "feature_extractors" and default.name.startswith("lenet5_digits32_")
    other_data = [{"split_seed": 1}, {"value_range": [0, 1]}, {"test_fraction": 0.2}]
    keys = {_lenet_cache(DigitsDataModule(data_dir=str(data_dir), **kw)) for kw in other_data}
    keys.add(_lenet_cache(DigitsDataModule(data_dir=str(data_dir)), max_epochs=1))  # another recipe
    assert len(keys) == 4 and default not in keys
    # where the data is loaded from and how it is batched does not change the trained net
    same = [{"batch_size": 7}, {"num_workers": 1}, {"feature_extractor": "renamed"}]
    assert {_lenet_cache(DigitsDataModule(data_dir=str(data_dir), **kw)) for kw in same} == {default}


@pytest.mark.parametrize("module", [MNISTDataModule, CIFAR10DataModule], ids=["mnist", "cifar10"])
def test_cache_key_of_mnist_and_cifar10_holds_value_range_and_split_seed(module, tmp_path: Path) -> None:
    """Their constructors forward these arguments by ``**kwargs``: the key must hold them all the same."""
    recipe = load_recipe(module.feature_net)

    def cache(**kwargs) -> Path:  # no files needed: the key is made of the datamodule's arguments
        dm = module(data_dir=str(tmp_path), download=False, **kwargs)
        return cache_file(dm, module.feature_net, recipe)[0]

    default = cache()
    assert cache(value_range=(0.0, 1.0)) != default
    assert cache(split_seed=1) != default
    assert cache(batch_size=7, num_workers=1) == default


@pytest.mark.slow
@requires_real_data("mnist")
def test_mnist_extractor_reaches_99_percent(tmp_path: Path) -> None:
    import shutil

    # the cache goes to a scratch data folder, not into the shared one
    shutil.copytree(SHARED / "MNIST" / "raw", tmp_path / "MNIST" / "raw")
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False, num_workers=0)
    space = feature_space(dm)
    assert space.name == "mnist" and space.test_accuracy >= 0.99
    assert list((tmp_path / "feature_extractors").glob("lenet5_mnist32_*.json"))
