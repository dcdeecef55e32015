"""The video metrics: the C3D feature extractor (trained, cached, reloaded), the Fréchet distances in its
space, and ``vidgen-eval`` of a video GAN through the real entrypoint."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vidgen.cli.train import train
from vidgen.data.moving_mnist import MovingDigitsDataModule
from vidgen.metrics.generative import Given, features_of, frechet_distance, video_metrics
from vidgen.metrics.video_features import ORDERS, reorder, video_feature_extractor
from vidgen.nets.c3d import C3D

from conftest import compose_train

# Short clips and few of them: the real code path at a size that trains in seconds on 2 cores. The vgan
# run below uses the same data settings, so that vidgen-eval finds this extractor in the cache.
SMALL = {"image_size": 16, "digit_size": 8, "step_length": 0.2, "seq_len": 8, "num_input_frames": 4,
         "num_output_frames": 4, "num_train": 256, "num_val": 16, "num_test": 64,
         "batch_size": 16}  # fmt: skip
EPOCHS = 5  # of 8 batches of 32 clips


def small_digits(data_dir: Path) -> MovingDigitsDataModule:
    return MovingDigitsDataModule(data_dir=str(data_dir), **SMALL)


@pytest.fixture(scope="module")
def trained(data_dir: Path) -> tuple[MovingDigitsDataModule, torch.nn.Module, float]:
    dm = small_digits(data_dir)
    start = time.perf_counter()
    extractor = video_feature_extractor(dm, "digits", epochs=EPOCHS)
    return dm, extractor, time.perf_counter() - start


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


def test_extractor_is_trained_once_cached_and_reloaded(trained, data_dir: Path) -> None:
    dm, extractor, _ = trained
    (cache,) = (data_dir / "feature_extractors").glob(f"digits_c3d_{dm.dataset_id}_c1_*.pt")
    assert cache.name == f"digits_c3d_{dm.dataset_id}_c1_{dm.checksum[:12]}.pt"
    meta = json.loads(cache.with_suffix(".json").read_text())
    assert meta["order_accuracy"] == pytest.approx(extractor.order_accuracy)
    assert meta["class_accuracy"] == pytest.approx(extractor.class_accuracy)
    assert meta["epochs"] == EPOCHS and meta["task"] == list(ORDERS)
    stamp = cache.stat().st_mtime_ns

    again = video_feature_extractor(small_digits(data_dir), "digits", epochs=EPOCHS + 1)
    assert cache.stat().st_mtime_ns == stamp  # loaded, not trained again (epochs is ignored once cached)
    assert again.order_accuracy == extractor.order_accuracy
    assert again.class_accuracy == extractor.class_accuracy
    assert again.test_accuracy == extractor.order_accuracy and again.architecture == "C3D"
    x = clips(dm, "test")[:4]
    assert torch.equal(again(x), extractor(x))
    again.train()
    assert not again.classifier.training  # a frozen instrument: batch norm stays in eval mode


def test_training_leaves_the_runs_random_stream_alone_and_a_torn_cache_is_retrained(tmp_path: Path) -> None:
    dm = MovingDigitsDataModule(data_dir=str(tmp_path), **{**SMALL, "num_train": 32, "num_test": 8})
    torch.manual_seed(123)
    first = video_feature_extractor(dm, "digits", epochs=1)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))

    (cache,) = (tmp_path / "feature_extractors").glob("digits_c3d_*.pt")
    cache.write_bytes(cache.read_bytes()[:100])  # a write cut short
    again = video_feature_extractor(dm, "digits", epochs=1)  # trained again (same seed), cache replaced
    assert again.order_accuracy == first.order_accuracy
    assert torch.load(cache, weights_only=True)["order_accuracy"] == first.order_accuracy


def test_order_accuracy_is_clearly_above_chance(trained) -> None:
    _, extractor, seconds = trained
    # chance 1/3; recorded and reversed bouncing digits are nearly indistinguishable: about 2/3 at best
    assert extractor.order_accuracy > 0.55, (extractor.order_accuracy, seconds)
    assert extractor.class_accuracy is not None


def test_fd_of_a_set_against_itself_is_zero(trained) -> None:
    dm, extractor, _ = trained
    x = clips(dm, "test")
    metrics = video_metrics(extractor, x, x.clone(), "d")
    assert set(metrics) == {"fd_c3d_d", "fid_frames_d_mean"}
    assert abs(metrics["fd_c3d_d"]) < 1e-2 and abs(metrics["fid_frames_d_mean"]) < 1e-2


def test_fd_of_shuffled_clips_exceeds_fd_between_halves_of_the_real_ones(trained) -> None:
    dm, extractor, _ = trained
    x = clips(dm, "train")
    a, b = x[:128], x[128:256]
    shuffled = reorder(a, torch.full((len(a),), ORDERS.index("shuffled")), torch.Generator().manual_seed(0))
    fa, fb, fs = (features_of(extractor, v) for v in (a, b, shuffled))
    # the clip FD of video_metrics: the same frames in another order are far, another sample is near
    assert frechet_distance(fa, fs) > 3 * frechet_distance(fa, fb) > 0
    # Given tells FID the feature dimension (else torchmetrics would probe it with a dummy image)
    from torchmetrics.image.fid import FrechetInceptionDistance

    assert FrechetInceptionDistance(feature=Given(extractor.num_features)).real_features_sum.shape == (128,)


def test_vidgen_eval_of_a_video_gan_logs_the_video_metrics(trained, tmp_path: Path, data_dir: Path) -> None:
    dm, extractor, _ = trained
    data = ["data=moving_digits", *(f"data.{k}={v}" for k, v in SMALL.items())]
    train(compose_train(
        [*data, "model=vgan", "loss=gan_ns", "callbacks=video", "model.generator.base_width=4",
         "model.discriminator.base_width=4", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "logger=csv"],
        tmp_path / "train", data_dir))  # fmt: skip
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir)}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("vidgen-eval")), f"ckpt_path={ckpt}", "logger=csv",
         "trainer.enable_progress_bar=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("fd_c3d_digits", "fid_frames_digits_mean"):
        assert math.isfinite(metrics[f"test/{key}"]) and metrics[f"test/{key}"] > 0, key
    # the cached extractor (not a new one): its order accuracy is logged with the metrics
    assert metrics["test/feature_extractor_accuracy_digits"] == pytest.approx(extractor.order_accuracy)
    assert "order accuracy" in (run / "eval.log").read_text()
