"""vidgen-eval and vidgen-sample on checkpoints written by the real vidgen.cli.train.train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidgen.cli.eval import evaluate
from vidgen.cli.sample import sample
from vidgen.cli.train import train
from vidgen.errors import CheckpointError, ConfigError

from conftest import TINY, compose_train
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
    for key in ("fid_digits", "kid_digits_mean", "kid_digits_std", "is_digits", "precision_digits",
                "recall_digits", "fid_digits_real_floor"):  # fmt: skip
        assert metrics[f"test/{key}"] is not None, key
    # the real-data floor is far below a 3-batch generator's FID
    assert metrics["test/fid_digits_real_floor"] < metrics["test/fid_digits"] / 5
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
    assert 0 < metrics["test/nll_nats"] <= -metrics["test/elbo_nats"]
    assert metrics["test/fid_digits"] > 0


def test_frame_prediction_eval_logs_openstl_metrics_and_curves(tmp_path: Path, data_dir: Path) -> None:
    small = ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction",
             "data.num_train=32", "data.num_val=16", "data.num_test=16", "data.batch_size=8"]  # fmt: skip
    train(compose_train([*small, *TINY[3:], "trainer.max_epochs=1"], tmp_path / "t", data_dir))
    metrics = evaluate(compose_train(
        [f"ckpt_path={tmp_path / 't' / 'checkpoints' / 'last.ckpt'}", "trainer.enable_progress_bar=false",
         "logger=many"], tmp_path / "e", data_dir, config_name="eval"))  # fmt: skip
    for key in ("mse_per_frame", "mae_per_frame", "mse_per_pixel", "psnr", "ssim", "ssim_openstl"):
        assert metrics[f"test/{key}"] is not None, key
    assert 0 < metrics["test/ssim"] < 1 and metrics["test/psnr"] > 0
    # the same SSIM with OpenSTL's data range 2: larger constants, a higher value
    assert metrics["test/ssim"] < metrics["test/ssim_openstl"] < 1
    rows = (tmp_path / "e" / "per_step_metrics.csv").read_text().splitlines()
    header = "step,mae_per_frame,mse_per_frame,mse_per_pixel,psnr,ssim,ssim_openstl"
    assert rows[0] == header and len(rows) == 1 + 10
    # the curves also as a plot, in the run folder and in the (offline) W&B run
    assert (tmp_path / "e" / "per_step_metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (wandb_file,) = (tmp_path / "e").glob("wandb/offline-run-*/run-*.wandb")
    key = "test/per_step_metrics"
    plots = [row[key] for row in history_rows(wandb_file) if key in row]
    assert len(plots) == 1 and plots[0]["_type"] == "images/separated"
    # mean over steps of the curve = the logged mean (equal-sized batches)
    mse = [float(r.split(",")[2]) for r in rows[1:]]
    assert sum(mse) / len(mse) == pytest.approx(metrics["test/mse_per_frame"], rel=1e-4)


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
