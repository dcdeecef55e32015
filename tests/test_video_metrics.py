"""The video metrics: the C3D feature space (trained, cached, reloaded), the Fréchet distances in its
space, and ``vidgen-eval`` of a video GAN through the real entrypoint."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from references import frechet_distance_scipy
from vidgen.cli.train import train
from vidgen.data.moving_mnist import MovingDigitsDataModule
from vidgen.metrics import feature_spaces
from vidgen.metrics.feature_nets import ORDERS, reorder
from vidgen.metrics.feature_spaces import C3DSpace, cache_file, feature_space
from vidgen.metrics.sample_quality import Given, features_of, frechet_distance, sample_quality
from vidgen.nets.c3d import C3D

from conftest import CONF, compose_train, model_and_data

# Short clips and few of them: the real code path at a size that trains in seconds on 2 cores. The vgan
# run below uses the same data settings and recipe, so that vidgen-eval finds this C3D in the cache.
SMALL = {"image_size": 16, "digit_size": 8, "step_length": 0.2, "seq_len": 8, "num_input_frames": 4,
         "num_output_frames": 4, "num_train": 256, "num_val": 16, "num_test": 64,
         "batch_size": 16}  # fmt: skip
EPOCHS = 5  # of 8 batches of 32 clips, instead of the recipe's 15
REAL_RECIPE = feature_spaces.load_recipe


def short_recipe(name: str, epochs: int = EPOCHS) -> DictConfig:
    """``conf/features/<name>.yaml`` with ``epochs`` epochs (a recipe of its own: another cache key)."""
    return OmegaConf.merge(REAL_RECIPE(name), {"max_epochs": epochs})


def eval_with_short_c3d(ckpt: Path, tmp_path: Path, data_dir: Path, *overrides: str) -> tuple[dict, Path]:
    """``vidgen-eval ckpt_path=<ckpt>`` as a user runs it, from ``tmp_path``, with a copy of ``conf/`` whose
    C3D recipe is the short one (vidgen-eval reads recipes from its config tree); its metrics and folder."""
    shutil.copytree(CONF, tmp_path / "conf", ignore=shutil.ignore_patterns("__pycache__"))
    OmegaConf.save(short_recipe("c3d"), tmp_path / "conf" / "features" / "c3d.yaml")
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir), "VIDGEN_CONF_DIR": str(tmp_path / "conf")}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("vidgen-eval")), f"ckpt_path={ckpt}", "logger=csv",
         "trainer.enable_progress_bar=false", *overrides],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    return json.loads((run / "metrics.json").read_text()), run


def small_digits(data_dir: Path) -> MovingDigitsDataModule:
    return MovingDigitsDataModule(data_dir=str(data_dir), **SMALL)


@pytest.fixture(scope="module")
def trained(data_dir: Path) -> tuple[MovingDigitsDataModule, C3DSpace, float]:
    dm = small_digits(data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feature_spaces, "load_recipe", short_recipe)
        start = time.perf_counter()
        space = feature_space(dm)
        return dm, space, time.perf_counter() - start


def clips(dm: MovingDigitsDataModule, split: str) -> torch.Tensor:
    return torch.stack([dm.splits[split][i][0] for i in range(len(dm.splits[split]))])


SHAPES = [(1, 1, 8, 8), (4, 3, 17, 9), (8, 1, 32, 32), (20, 3, 32, 32), (3, 1, 64, 64)]  # T, C, H, W


@pytest.mark.parametrize("shape", SHAPES)
def test_c3d_takes_clips_of_any_length_and_size(shape: tuple[int, int, int, int]) -> None:
    t, c, h, w = shape
    net = C3D(channels=c, num_classes=10).eval()
    x = torch.randn(2, t, c, h, w)
    order_logits, class_logits = net(x)
    assert net.features(x).shape == (2, net.num_features)
    assert order_logits.shape == (2, len(ORDERS)) and class_logits.shape == (2, 10)
    with pytest.raises(ValueError, match=r"C3D expects videos \(B, T, C, H, W\)"):
        net(x[:, 0])


def test_reorder_reverses_and_shuffles_each_clip() -> None:
    x = torch.arange(3 * 5).view(3, 5, 1, 1, 1).float()
    out = reorder(x, torch.tensor([0, 1, 2]), torch.Generator().manual_seed(0))
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], x[1].flip(0))
    shuffled = out[2].flatten()
    assert sorted(shuffled.tolist()) == x[2].flatten().tolist()  # the same frames
    assert not torch.equal(shuffled, x[2].flatten()) and not torch.equal(shuffled, x[2].flatten().flip(0))


def test_c3d_is_trained_once_cached_and_reloaded(trained, data_dir: Path, monkeypatch) -> None:
    dm, space, _ = trained
    recipe = short_recipe("c3d")
    cache, identity = cache_file(dm, "c3d", recipe)
    assert cache.parent == data_dir / "feature_extractors" and cache.is_file()
    assert cache.name.startswith(f"c3d_{dm.dataset_id}_")
    meta = json.loads(cache.with_suffix(".json").read_text())
    assert meta["test_accuracy"] == space.order_accuracy and meta["class_accuracy"] == space.class_accuracy
    assert meta["architecture"] == "C3D" and meta["identity"] == json.loads(json.dumps(identity, default=str))
    assert meta["identity"]["recipe"]["max_epochs"] == EPOCHS
    assert meta["identity"]["data"]["checksum"] == dm.checksum
    stamp = cache.stat().st_mtime_ns

    monkeypatch.setattr(feature_spaces, "load_recipe", short_recipe)
    again = feature_space(small_digits(data_dir))
    assert cache.stat().st_mtime_ns == stamp  # loaded, not trained again
    assert isinstance(again, C3DSpace) and again.name == "digits"
    assert again.accuracies() == {
        "feature_extractor_cached_order_accuracy_digits": space.order_accuracy,
        "feature_extractor_cached_class_accuracy_digits": space.class_accuracy,
    }
    assert again.cache == cache and again.trained_accuracy == space.class_accuracy
    x = clips(dm, "test")[:4]
    assert torch.equal(again(x), space(x))
    again.train()
    assert not again.net.training  # a frozen instrument: batch norm stays in eval mode
    # another recipe (one more epoch) is another network: it gets a file of its own
    assert cache_file(dm, "c3d", short_recipe("c3d", EPOCHS + 1))[0] != cache


TINY = {**SMALL, "num_train": 32, "num_test": 8}  # one epoch of two batches: a net in seconds


def test_training_is_seeded_by_the_recipe_and_leaves_the_runs_random_stream_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feature_spaces, "load_recipe", lambda name: short_recipe(name, epochs=1))
    torch.manual_seed(123)
    first = feature_space(MovingDigitsDataModule(data_dir=str(tmp_path / "a"), **TINY))
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))
    # the same recipe and data (the same cache key) give the same net whatever the run's seed
    torch.manual_seed(7)
    other = feature_space(MovingDigitsDataModule(data_dir=str(tmp_path / "b"), **TINY))
    for name, value in first.net.state_dict().items():
        assert torch.equal(value, other.net.state_dict()[name]), name


def test_a_torn_cache_is_trained_again_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(feature_spaces, "load_recipe", lambda name: short_recipe(name, epochs=1))
    dm = MovingDigitsDataModule(data_dir=str(tmp_path), **TINY)
    feature_space(dm)
    (cache,) = (tmp_path / "feature_extractors").glob("c3d_*.pt")
    cache.write_bytes(cache.read_bytes()[:100])  # a write cut short
    caplog.set_level(logging.INFO, logger="vidgen.metrics.feature_spaces")
    again = feature_space(dm)
    assert "does not load" in caplog.text and "Training feature net C3D" in caplog.text
    assert torch.load(cache, weights_only=True)["test_accuracy"] == again.order_accuracy
    caplog.clear()
    loaded = feature_space(dm)  # the replaced file loads: the retrained net, not trained a third time
    assert "Training" not in caplog.text
    x = clips(dm, "test")
    assert torch.equal(loaded(x), again(x))


def test_order_and_class_accuracy_are_what_the_c3d_scores_and_above_chance(trained) -> None:
    dm, space, seconds = trained
    test = dm.splits["test"]
    x, y = clips(dm, "test"), torch.stack([test[i][1] for i in range(len(test))])
    # counted by hand as ClipOrderTraining.test_step draws them: one batch, shuffles seeded by the recipe
    assert len(test) <= 256
    shuffles = torch.Generator().manual_seed(int(short_recipe("c3d").seed))
    hits, class_hits = 0, None
    with torch.no_grad():
        for k in range(len(ORDERS)):
            order_logits, class_logits = space.net(reorder(x, torch.full((len(x),), k), shuffles))
            hits += int((order_logits.argmax(1) == k).sum())
            if k == 0:
                class_hits = (class_logits.argmax(1) == y).double().mean().item()
    assert space.order_accuracy == pytest.approx(hits / (len(ORDERS) * len(x)), abs=1e-6)
    assert space.class_accuracy == pytest.approx(class_hits, abs=1e-6)
    # chance 1/3; recorded and reversed bouncing digits are nearly indistinguishable: about 2/3 at best
    assert space.order_accuracy > 0.55, (space.order_accuracy, seconds)


def test_fd_of_a_set_against_itself_is_zero(trained) -> None:
    dm, space, _ = trained
    x = clips(dm, "test")
    metrics = sample_quality(space, x, x.clone())
    assert set(metrics) == {"fd_c3d_digits", "fid_frames_digits_mean", "n_real_digits", "n_fake_digits"}
    assert metrics["n_real_digits"] == metrics["n_fake_digits"] == len(x)
    assert abs(metrics["fd_c3d_digits"]) < 1e-2 and abs(metrics["fid_frames_digits_mean"]) < 1e-2


def test_fd_of_shuffled_clips_exceeds_fd_between_halves_of_the_real_ones(trained) -> None:
    dm, space, _ = trained
    x = clips(dm, "train")
    a, b = x[:128], x[128:256]
    shuffled = reorder(a, torch.full((len(a),), ORDERS.index("shuffled")), torch.Generator().manual_seed(0))
    fa, fb, fs = (features_of(space, v) for v in (a, b, shuffled))
    # the clip FD of sample_quality: the same frames in another order are far, another sample is near
    assert frechet_distance(fa, fs) > 3 * frechet_distance(fa, fb) > 0
    assert sample_quality(space, a, shuffled, ["fd_c3d"])["fd_c3d_digits"] == pytest.approx(
        frechet_distance(fa, fs), rel=1e-9
    )
    # Given tells FID the feature dimension (else torchmetrics would probe it with a dummy image)
    from torchmetrics.image.fid import FrechetInceptionDistance

    assert FrechetInceptionDistance(feature=Given(space.num_features)).real_features_sum.shape == (128,)


def test_vidgen_eval_of_a_video_gan_logs_the_video_metrics(trained, tmp_path: Path, data_dir: Path) -> None:
    dm, space, _ = trained
    data = ["data=moving_digits", *(f"data.{k}={v}" for k, v in SMALL.items())]
    train(compose_train(
        [*data, "model=vgan", "loss=gan_ns", "callbacks=video", "model.generator.base_width=4",
         "model.discriminator.base_width=4", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "logger=csv"],
        tmp_path / "train", data_dir))  # fmt: skip
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    metrics, run = eval_with_short_c3d(ckpt, tmp_path, data_dir)
    # Recomputed here with scipy in the cached C3D (`trained`): the 64 test clips against 64 clips of the
    # checkpoint's generator (noise seeded 4321); fid_frames with each frame as a still clip of 8 frames
    model, _ = model_and_data(ckpt)
    real, y = clips(dm, "test"), torch.stack([dm.splits["test"][i][1] for i in range(len(dm.splits["test"]))])
    with torch.no_grad():
        fake = model.sample(len(real), generator=torch.Generator().manual_seed(4321))
        (real_features, logits), fake_features = space.features_and_logits(real), space(fake)

        def still(frame: torch.Tensor) -> torch.Tensor:
            return space(frame.unsqueeze(1).repeat(1, 8, 1, 1, 1))

        per_frame = [
            frechet_distance_scipy(still(real[:, t]), still(fake[:, t])) for t in range(real.shape[1])
        ]
    assert metrics["test/n_real_digits"] == metrics["test/n_fake_digits"] == 64
    assert metrics["test/fd_c3d_digits"] == pytest.approx(
        frechet_distance_scipy(real_features, fake_features), rel=1e-4
    )
    assert metrics["test/fid_frames_digits_mean"] == pytest.approx(sum(per_frame) / len(per_frame), rel=1e-4)
    # the C3D's class head measured on these labelled test clips (the split it was tested on when trained),
    # beside the cached accuracies of both heads
    assert metrics["test/feature_extractor_accuracy_digits"] == pytest.approx(
        (logits.argmax(1) == y).double().mean().item()
    )
    assert metrics["test/feature_extractor_accuracy_digits"] == pytest.approx(space.class_accuracy, abs=1e-6)
    assert metrics["test/n_accuracy_digits"] == 64
    cached = {"order": space.order_accuracy, "class": space.class_accuracy}
    for head, value in cached.items():
        assert metrics[f"test/feature_extractor_cached_{head}_accuracy_digits"] == pytest.approx(value), head
    assert "order accuracy" in (run / "eval.log").read_text()
