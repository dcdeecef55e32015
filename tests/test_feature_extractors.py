"""Feature spaces other than the digits LeNet: torchmetrics' Inception-v3 from a local weights file, and the
CIFAR ResNet chosen by the CIFAR-10 datamodule.

The real Inception weights (91 MB) cannot be downloaded here, so the tests write a file in the real
format (torch-fidelity's ``FeatureExtractorInceptionV3`` state_dict) holding randomly initialised
weights: everything but the numbers is the real path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from references import frechet_distance_scipy, precision_recall_numpy
from test_data_offline import cifar_md5s as cifar_md5s  # noqa: F401 (a fixture, used by name)
from test_data_offline import compose_data
from vidgen.cli.eval import evaluate
from vidgen.cli.train import train
from vidgen.errors import ConfigError
from vidgen.metrics import feature_spaces
from vidgen.metrics.feature_nets import random_crop_flip
from vidgen.metrics.feature_spaces import InceptionSpace, cache_file, feature_space
from vidgen.metrics.sample_quality import sample_quality

from conftest import TINY, compose_train, model_and_data, split_tensors

pytest.importorskip("torch_fidelity", reason="the inception extra: pip install 'vidgen[inception]'")

QUIET = ["trainer.enable_progress_bar=false", "logger=csv"]


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init state_dict of torch-fidelity's FID Inception-v3, saved as the real file is."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random init
            return None

    folder = tmp_path_factory.mktemp("inception")
    torch.save({}, folder / "empty.pth")
    torch.manual_seed(0)
    net = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(folder / "empty.pth"))
    torch.save(net.state_dict(), folder / "weights-inception-2015-12-05-6726825d.pth")
    return folder / "weights-inception-2015-12-05-6726825d.pth"


def test_inception_gives_2048_features_and_1008_logits_for_grey_images(inception_weights: Path) -> None:
    space = InceptionSpace(str(inception_weights), (-1.0, 1.0))
    x = torch.rand(3, 1, 8, 8) * 2 - 1  # grey digits-sized images: repeated to RGB, resized to 299
    features, logits = space.features_and_logits(x)
    assert features.shape == (3, 2048) and logits.shape == (3, 1008)
    assert features.dtype == torch.float64 and torch.isfinite(features).all()
    assert space.name == "inception" and space.num_features == 2048
    metrics = sample_quality(space, x, x.flip(0), kid_subset_size=3, pr_k=1)
    assert set(metrics) == {"fid_inception", "kid_inception_mean", "kid_inception_std", "is_inception",
                            "precision_inception", "recall_inception", "n_real_inception",
                            "n_fake_inception"}  # fmt: skip
    assert abs(metrics["fid_inception"]) < 1e-3  # the same images in another order


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"truncated", "is not a readable PyTorch weights file"),
        (
            {"conv.weight": torch.zeros(2)},
            "does not hold the FID Inception-v3 weights torch-fidelity expects",
        ),
        ([1, 2, 3], "holds a list, not a state_dict of tensors"),
    ],
    ids=["corrupt", "foreign", "not-a-state-dict"],
)
def test_wrong_inception_file_is_one_config_error(content, message: str, tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ConfigError, match=message) as info:
        InceptionSpace(str(path), (-1.0, 1.0))
    assert "metrics.feature_extractor=null" in str(info.value)  # the offline alternative is named


def test_vidgen_eval_with_inception_weights_logs_inception_metrics(
    inception_weights: Path, tmp_path: Path, data_dir: Path
) -> None:
    train(compose_train([*TINY, "trainer.max_epochs=1", *QUIET], tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    # 8 real and 8 generated images: Inception-v3 costs about 6 GFLOP per image on this CPU
    few = ["+trainer.limit_test_batches=1", "metrics.num_fake=8", "metrics.real_floor=false",
           "overrides={data.batch_size: 8}"]  # fmt: skip
    args = [f"ckpt_path={ckpt}", "metrics.feature_extractor=inception",
            f"metrics.inception_weights={inception_weights}", *few, *QUIET]  # fmt: skip
    metrics = evaluate(compose_train(args, tmp_path / "eval", data_dir, config_name="eval"))
    # recomputed with scipy/numpy in the same Inception space: the first 8 test images against 8 samples
    # of the checkpoint's generator (noise seeded 4321)
    model, dm = model_and_data(ckpt)
    x, _ = split_tensors(dm, "test", 8)
    space = InceptionSpace(str(inception_weights), dm.value_range)
    with torch.no_grad():
        real, fake = space(x), space(model.sample(8, generator=torch.Generator().manual_seed(4321)))
    assert metrics["test/n_real_inception"] == metrics["test/n_fake_inception"] == 8
    assert metrics["test/fid_inception"] == pytest.approx(frechet_distance_scipy(real, fake), rel=1e-4)
    precision, recall = precision_recall_numpy(real, fake, k=3)
    assert (metrics["test/precision_inception"], metrics["test/recall_inception"]) == pytest.approx(
        (precision, recall)
    )
    assert 1 <= metrics["test/is_inception"] <= 1008 and metrics["test/kid_inception_std"] >= 0
    assert not any("digits" in key for key in metrics)  # the domain extractor was not used
    # Inception's 1008 ImageNet logits are not the digits' classes: no accuracy is measured or checked
    assert not any("accuracy" in key for key in metrics)

    with pytest.raises(ConfigError, match=r"inception_weights=.*missing.pth does not exist.*torch-fidelity"):
        evaluate(compose_train([*args[:2], f"metrics.inception_weights={tmp_path / 'missing.pth'}", *QUIET],
                               tmp_path / "eval2", data_dir, config_name="eval"))  # fmt: skip


def test_cifar10_feature_space_is_a_resnet_cached_under_its_recipe(
    cifar_md5s: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cifar_md5s  # fabricated CIFAR-10 pickle batches, torchvision's md5 table set to theirs
    dm = compose_data("cifar10", ["data.num_workers=0", "data.batch_size=16", "data.download=false"],
                      tmp_path, folder)  # fmt: skip
    assert dm.feature_net == "resnet8"
    real_recipe = feature_spaces.load_recipe
    # one epoch instead of the recipe's ten (the recipe is part of the cache key, so this is its own net)
    monkeypatch.setattr(feature_spaces, "load_recipe",
                        lambda name: OmegaConf.merge(real_recipe(name), {"max_epochs": 1}))  # fmt: skip
    caplog.set_level(logging.INFO, logger="vidgen.metrics.feature_spaces")
    space = feature_space(dm)
    assert space.architecture == "ResNet-8" and space.num_features == 64 and space.name == "cifar10"
    assert "Training feature net ResNet-8 on cifar10_32" in caplog.text
    (cache,) = (folder / "feature_extractors").glob("*.pt")
    assert cache == cache_file(dm, "resnet8", feature_spaces.load_recipe("resnet8"))[0]
    assert cache.name.startswith("resnet8_cifar10_32_")  # recipe, data id, key
    meta = json.loads(cache.with_suffix(".json").read_text())
    assert meta["architecture"] == "ResNet-8" and meta["test_accuracy"] == space.test_accuracy
    assert meta["identity"]["recipe"]["augment"] is True and meta["identity"]["recipe"]["max_epochs"] == 1
    assert meta["identity"]["data"]["checksum"] == dm.checksum
    # the reported accuracy is what the net scores on the test split, counted here by hand
    x, y = map(torch.stack, zip(*(dm.splits["test"][i] for i in range(len(dm.splits["test"]))), strict=True))
    with torch.no_grad():
        hits = (space.net(x).argmax(1) == y).double().mean().item()
    assert space.test_accuracy == pytest.approx(hits, abs=1e-6)

    stamp = cache.stat().st_mtime_ns
    caplog.clear()
    again = feature_space(dm)  # loaded from the cache, not trained again
    assert "Training" not in caplog.text and cache.stat().st_mtime_ns == stamp
    assert again.test_accuracy == space.test_accuracy
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(again(x), space(x))

    cache.write_bytes(b"truncated by a full disk")  # an unreadable cache is retrained, not a crash
    caplog.clear()
    feature_space(dm)
    assert "does not load" in caplog.text and "Training feature net" in caplog.text
    assert torch.load(cache, weights_only=True)["architecture"] == "ResNet-8"


def test_random_crop_flip_is_a_padded_crop_or_its_mirror() -> None:
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    assert torch.equal(torch.sort(random_crop_flip(x, pad=0).flatten(1))[0], torch.sort(x.flatten(1))[0])
    out = random_crop_flip(x, pad=2, fill=-1.0)
    assert out.shape == x.shape
    for image, crop in zip(x, out, strict=True):
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2), value=-1.0)
        windows = [padded[:, i : i + 5, j : j + 5] for i in range(5) for j in range(5)]
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(2)) for w in windows)
