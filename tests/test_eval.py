"""vidgen-eval and vidgen-sample on checkpoints written by the real vidgen.cli.train.train."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from references import (
    frechet_distance_scipy,
    inception_score_scipy,
    openstl_per_step,
    precision_recall_numpy,
)
from vidgen.cli.eval import evaluate
from vidgen.cli.sample import sample
from vidgen.cli.train import train
from vidgen.data.digits import DigitsDataModule
from vidgen.errors import CheckpointError, ConfigError
from vidgen.metrics.feature_spaces import feature_space
from vidgen.value_range import to_unit

from conftest import TINY, compose_train, model_and_data, split_tensors
from wandb_records import history_rows

QUIET = ["trainer.enable_progress_bar=false", "logger=csv"]


def run_entry(name: str, args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """Runs the installed console script ``name`` as a user would."""
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir)}
    env.pop("HYDRA_FULL_ERROR", None)
    exe = Path(sys.executable).with_name(name)
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("train_gan")
    train(compose_train([*TINY, "trainer.max_epochs=1"], run, data_dir))
    return run / "checkpoints" / "last.ckpt"


def test_eval_and_sample_need_only_the_checkpoint(gan_ckpt: Path, tmp_path: Path, data_dir: Path) -> None:
    result = run_entry("vidgen-eval", [f"ckpt_path={gan_ckpt}"], tmp_path, data_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    # Every value recomputed here from the checkpoint, the test split and the cached LeNet-5, with numpy
    # and scipy: 180 test images against the 180 fakes of one chunk (noise seeded 4321, the config's seed)
    model, dm = model_and_data(gan_ckpt)
    space = feature_space(dm, train=False)
    x, y = split_tensors(dm, "test")
    assert len(x) == 180 and metrics["test/n_real_digits"] == metrics["test/n_fake_digits"] == 180
    with torch.no_grad():
        fakes = model.sample(180, generator=torch.Generator().manual_seed(4321))
        (real, logits), (fake, fake_logits) = space.features_and_logits(x), space.features_and_logits(fakes)
    assert metrics["test/fid_digits"] == pytest.approx(frechet_distance_scipy(real, fake), rel=1e-5)
    precision, recall = precision_recall_numpy(real, fake, k=3)
    assert (metrics["test/precision_digits"], metrics["test/recall_digits"]) == pytest.approx(
        (precision, recall)
    )
    mean, std = inception_score_scipy(fake_logits, splits=10, seed=1)
    assert (metrics["test/is_digits"], metrics["test/is_digits_std"]) == pytest.approx((mean, std), rel=1e-6)
    # KID: the mean over random subsets of 100 estimates the unbiased MMD^2 of the whole sets
    d = real.shape[1]
    kernel = lambda a, b: (a.double() @ b.double().T / d + 1) ** 3  # noqa: E731 - Bińkowski et al.'s cubic kernel
    off = 1 - torch.eye(180, dtype=torch.float64)
    within = (kernel(real, real) * off).sum() + (kernel(fake, fake) * off).sum()
    mmd = (within / (180 * 179) - 2 * kernel(real, fake).mean()).item()
    assert metrics["test/kid_digits_std"] > 0
    assert abs(metrics["test/kid_digits_mean"] - mmd) < metrics["test/kid_digits_std"]
    # the real floor: 180 training images (a permutation seeded 4321) against the test images
    order = torch.randperm(len(dm.splits["train"]), generator=torch.Generator().manual_seed(4321))[:180]
    train_images = torch.stack([dm.splits["train"][int(i)][0] for i in order])
    with torch.no_grad():
        floor = frechet_distance_scipy(real, space(train_images))
    assert metrics["test/fid_digits_real_floor"] == pytest.approx(floor, rel=1e-5)
    assert floor < metrics["test/fid_digits"] / 5  # far below a 3-batch generator's FID
    # the extractor's accuracy, measured on these test images, beside the metrics
    hits = (logits.argmax(1) == y).double().mean().item()
    assert metrics["test/feature_extractor_accuracy_digits"] == pytest.approx(hits)
    assert metrics["test/n_accuracy_digits"] == 180
    assert metrics["test/feature_extractor_cached_accuracy_digits"] == pytest.approx(space.test_accuracy)
    # the untrained baseline: the model as eval builds it (seed 42, data first) before loading weights,
    # its 180 fakes (the same noise) against the same test images
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.create(torch.load(gan_ckpt, weights_only=False)["vidgen_config"])
    L.seed_everything(42, workers=True, verbose=False)
    instantiate(config.data)
    untrained = instantiate(config.model).eval()
    with torch.no_grad():
        untrained_fake = space(untrained.sample(180, generator=torch.Generator().manual_seed(4321)))
    untrained_fid = frechet_distance_scipy(real, untrained_fake)
    assert metrics["test/fid_digits_untrained"] == pytest.approx(untrained_fid, rel=1e-5)
    assert metrics["test/fid_digits_untrained"] > metrics["test/fid_digits"]
    assert {
        "test/kid_digits_mean_untrained",
        "test/is_digits_untrained",
        "test/precision_digits_untrained",
    } <= set(metrics) and "test/n_fake_digits_untrained" not in metrics
    assert list(run.glob("wandb/offline-run-*/run-*.wandb"))  # same loggers as training (default: many)
    assert (run / "csv" / "version_0" / "metrics.csv").read_text().count("test/fid_digits") >= 1
    assert (run / "eval.log").is_file()

    result = run_entry("vidgen-sample", [f"ckpt_path={gan_ckpt}", "num_samples=16"], tmp_path, data_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "logs" / "sample" / "runs").iterdir()
    assert (run / "samples" / "samples.png").is_file()
    assert len(list((run / "samples").glob("sample_*.png"))) == 16
    (wandb_dir,) = run.glob("wandb/offline-run-*")
    assert list(wandb_dir.glob("files/media/table/samples_table_*.table.json"))


def test_an_extractor_below_the_stated_floor_stops_vidgen_eval_with_one_message(
    gan_ckpt: Path, tmp_path: Path, data_dir: Path
) -> None:
    """The LeNet-5 reads the 32 test images of one batch as it does; a floor above any accuracy (101 %)
    stops the run before a metric is written, with one message naming the network, its cache file, the
    measured and the expected accuracy, the likely cause and the fix."""
    args = [f"ckpt_path={gan_ckpt}", "metrics.min_extractor_accuracy=1.01", "+trainer.limit_test_batches=1",
            "overrides={data.batch_size: 32}", "metrics.real_floor=false", *QUIET]  # fmt: skip
    result = run_entry("vidgen-eval", args, tmp_path, data_dir)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "Traceback" not in out and 'File "' not in out, out
    cache = feature_space(DigitsDataModule(data_dir=str(data_dir)), train=False).cache  # the run's LeNet-5
    (message,) = [line for line in result.stderr.splitlines() if "does not read this run's data" in line]
    for fragment in ("LeNet-5 trained on digits32", f"cache {cache}", "of the 32 test images correctly",
                     "expected at least 101.0% (min_extractor_accuracy)", "trained on other data",
                     f"Fix: delete {cache}", "metrics.min_extractor_accuracy="):  # fmt: skip
        assert fragment in message, message
    assert len(message) < 1200, message
    (run,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    assert not (run / "metrics.json").exists()


def test_sample_is_deterministic_and_rejects_labels_of_unconditional_models(
    gan_ckpt: Path, tmp_path: Path, data_dir: Path
) -> None:
    from PIL import Image

    grids = []
    for name in ("a", "b"):
        files = sample(compose_train([f"ckpt_path={gan_ckpt}", "num_samples=4", *QUIET], tmp_path / name,
                                     data_dir, config_name="sample"))  # fmt: skip
        grids.append(torch.tensor(list(Image.open(files[0]).getdata())))
    assert torch.equal(grids[0], grids[1])
    with pytest.raises(ConfigError, match=r"labels=\[3\] but this model is unconditional"):
        sample(compose_train([f"ckpt_path={gan_ckpt}", "labels=[3]", *QUIET], tmp_path / "c", data_dir,
                             config_name="sample"))  # fmt: skip


def test_missing_corrupt_and_foreign_checkpoints_give_one_message(tmp_path: Path, data_dir: Path) -> None:
    result = run_entry("vidgen-eval", ["ckpt_path=nope.ckpt"], tmp_path, data_dir)
    assert result.returncode == 1
    assert "ckpt_path=nope.ckpt does not exist. Fix:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout

    corrupt, foreign = tmp_path / "corrupt.ckpt", tmp_path / "foreign.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "loops": {}}, foreign)  # Lightning, not vidgen
    for path, message in [
        (corrupt, "is not a readable checkpoint"),
        (foreign, "was not written by vidgen-train"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            evaluate(
                compose_train([f"ckpt_path={path}", *QUIET], tmp_path / "run", data_dir, config_name="eval")
            )


def test_vae_eval_reports_nll_below_the_elbo_bound(tmp_path: Path, data_dir: Path) -> None:
    train(
        compose_train(
            [*TINY[2:], "model=vae_mlp", "loss=elbo", "trainer.max_epochs=1"], tmp_path / "t", data_dir
        )
    )
    metrics = evaluate(compose_train(
        [f"ckpt_path={tmp_path / 't' / 'checkpoints' / 'last.ckpt'}", "+trainer.limit_test_batches=1",
         "metrics.real_floor=false", "+overrides.model.nll_samples=20", *QUIET],
        tmp_path / "e", data_dir, config_name="eval"))  # fmt: skip
    assert 0 < metrics["test/nll_iwae_k20_nats"] <= -metrics["test/elbo_nats"]
    # the FID of one test batch (32 images) against 32 decoder means of noise seeded 4321, by hand
    model, dm = model_and_data(tmp_path / "t" / "checkpoints" / "last.ckpt")
    x, _ = split_tensors(dm, "test", 32)
    space = feature_space(dm, train=False)
    with torch.no_grad():
        fakes = model.sample(32, generator=torch.Generator().manual_seed(4321))
        expected = frechet_distance_scipy(space(x), space(fakes))
    assert metrics["test/n_real_digits"] == 32
    assert metrics["test/fid_digits"] == pytest.approx(expected, rel=1e-5)


def test_frame_prediction_eval_logs_openstl_metrics_and_curves(tmp_path: Path, data_dir: Path) -> None:
    small = ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction",
             "data.num_train=32", "data.num_val=16", "data.num_test=16", "data.batch_size=8"]  # fmt: skip
    train(compose_train([*small, *TINY[3:], "trainer.max_epochs=1"], tmp_path / "t", data_dir))
    metrics = evaluate(compose_train(
        [f"ckpt_path={tmp_path / 't' / 'checkpoints' / 'last.ckpt'}", "trainer.enable_progress_bar=false",
         "logger=many"], tmp_path / "e", data_dir, config_name="eval"))  # fmt: skip
    # The per-step curves and their means recomputed by a numpy loop over the steps with OpenSTL's
    # formulas and scikit-image's SSIM, on the predictions of the checkpoint's model for the 16 test clips
    model, dm = model_and_data(tmp_path / "t" / "checkpoints" / "last.ckpt")
    clips = to_unit(split_tensors(dm, "test")[0], dm.value_range)
    assert len(clips) == 16 and metrics["test/n_sequences"] == 16
    with torch.no_grad():
        pred = model(clips[:, : model.num_input_frames])
    target = clips[:, model.num_input_frames : model.num_input_frames + model.num_output_frames]
    expected = openstl_per_step(pred, target)
    with open(tmp_path / "e" / "per_step_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 11))  # one row per predicted frame
    for key, curve in expected.items():
        assert [float(r[key]) for r in rows] == pytest.approx(curve, rel=1e-4), key
        assert metrics[f"test/{key}"] == pytest.approx(np.mean(curve), rel=1e-4), key
    assert -1 <= metrics["test/ssim"] <= 1 and -1 <= metrics["test/ssim_openstl"] <= 1
    # the curves also as a plot, in the run folder and in the (offline) W&B run
    assert (tmp_path / "e" / "per_step_metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (wandb_file,) = (tmp_path / "e").glob("wandb/offline-run-*/run-*.wandb")
    key = "test/per_step_metrics"
    plots = [row[key] for row in history_rows(wandb_file) if key in row]
    assert len(plots) == 1 and plots[0]["_type"] == "images/separated"
    # the result names its test set (generated sequences here, not a file)
    hparams = yaml.safe_load((tmp_path / "e" / "csv" / "version_0" / "hparams.yaml").read_text())
    assert hparams["data/test_set"] == "generated 16, split_seed 0"


@pytest.mark.slow
def test_untrained_generator_has_clearly_worse_fid(tmp_path: Path, data_dir: Path) -> None:
    fids = {}
    for name, overrides in [("untrained", ["trainer.max_epochs=1", "trainer.limit_train_batches=1"]),
                            ("trained", ["trainer.max_epochs=15"])]:  # fmt: skip
        run = tmp_path / name
        train(compose_train([*overrides, "trainer.enable_progress_bar=false", "logger=csv",
                             "callbacks.sample_grid.every_n_epochs=100"], run, data_dir))  # fmt: skip
        ckpt = run / "checkpoints" / "last.ckpt"
        cfg = compose_train(
            [f"ckpt_path={ckpt}", *QUIET], tmp_path / f"eval_{name}", data_dir, config_name="eval"
        )
        metrics = evaluate(cfg)
        fids[name] = metrics["test/fid_digits"]
    assert fids["trained"] < fids["untrained"] / 3, fids
