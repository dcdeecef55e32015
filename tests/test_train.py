"""The real entrypoint (real Hydra config, real Trainer, real loggers) on the embedded digits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from vidgen.cli.train import train

from conftest import TINY, compose_train
from wandb_records import history_rows, run_config


def _csv_rows(run: Path) -> list[dict]:
    (path,) = run.glob("csv/*/metrics.csv")
    with path.open() as f:
        return list(csv.DictReader(f))


def test_fast_dev_run_of_the_default_config(tmp_path: Path, data_dir: Path, caplog) -> None:
    from vidgen.data.digits import DigitsDataModule
    from vidgen.metrics.feature_spaces import feature_space

    # with the digits' feature network cached, a debug run measures FID on its one validation batch
    feature_space(DigitsDataModule(data_dir=str(data_dir)))
    cfg = compose_train(["debug=fdr"], tmp_path / "cached", data_dir)
    metrics = train(cfg)
    assert {"train/d_loss_step", "train/g_loss_step", "val/fid_digits"} <= set(metrics)
    assert all(v is not None for v in metrics.values())
    assert json.loads((tmp_path / "cached" / "metrics.json").read_text()) == metrics
    # the budget of the run: the training loop alone, within the whole job's wall time
    info = json.loads((tmp_path / "cached" / "run.json").read_text())
    # one fast_dev_run batch: a GAN iteration is two optimizer steps (D, then G)
    assert info["global_step"] == 2 and 0 < info["train_seconds"] <= info["wall_seconds"]

    # without it, a debug run does not train one: it skips the metric and says so
    fresh = tmp_path / "fresh_data"
    metrics = train(compose_train(["debug=fdr"], tmp_path / "fresh", fresh))
    assert "train/d_loss_step" in metrics and "val/fid_digits" not in metrics
    assert "sample-quality metrics skipped" in caplog.text
    assert not (fresh / "feature_extractors").exists()


def test_run_folder_wandb_and_csv_hold_the_same_metrics(tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train(
        [*TINY, "logger=many", "trainer.max_epochs=2", "callbacks.sample_grid.every_n_epochs=1"],
        tmp_path,
        data_dir,
    )
    metrics = train(cfg)

    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert len(list((tmp_path / "checkpoints").glob("epoch_*.ckpt"))) == 1  # best by val/fid_digits
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == ["epoch_000.png", "epoch_001.png"]

    (wandb_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    rows = history_rows(wandb_file)
    wandb_keys = {
        k for row in rows for k in row if not k.startswith("_") and k not in ("epoch", "trainer/global_step")
    }
    image_rows = [row["samples"] for row in rows if "samples" in row]
    assert len(image_rows) == 2 and image_rows[0]["_type"] == "images/separated"
    assert list(wandb_file.parent.glob("files/media/images/samples_*.png"))
    assert run_config(wandb_file)["seed"] == 42  # the resolved config is the run config

    csv_rows = _csv_rows(tmp_path)
    csv_keys = {k for row in csv_rows for k, v in row.items() if v != "" and k not in ("epoch", "step")}
    assert csv_keys == wandb_keys - {"samples"}
    fid_csv = [float(r["val/fid_digits"]) for r in csv_rows if r["val/fid_digits"]]
    fid_wandb = [row["val/fid_digits"] for row in rows if "val/fid_digits" in row]
    assert fid_csv == fid_wandb and len(fid_csv) == 2
    assert metrics["val/fid_digits"] == fid_csv[-1]


def test_resume_from_last_checkpoint_continues_at_the_right_step(tmp_path: Path, data_dir: Path) -> None:
    first, resumed = tmp_path / "first", tmp_path / "resumed"
    train(compose_train([*TINY, "trainer.max_epochs=2"], first, data_dir))
    saved = torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 1
    # Manual optimization: Lightning counts each optimizer step, i.e. 2 per batch (D then G).
    assert saved["global_step"] == 2 * 3 * 2

    ckpt = first / "checkpoints" / "last.ckpt"
    train(compose_train([*TINY, "trainer.max_epochs=3", f"ckpt_path={ckpt}"], resumed, data_dir))
    rows = _csv_rows(resumed)
    assert {int(r["epoch"]) for r in rows} == {2}  # only the epoch not yet trained
    # Loggers count batches (3 per epoch), not optimizer steps: epoch 2 logs at batch steps 6..8.
    assert {int(r["step"]) for r in rows} <= {6, 7, 8}
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (2, 2 * 3 * 3)
    assert final["vidgen_config"]["ckpt_path"] == str(ckpt)


def test_same_seed_gives_identical_metrics(tmp_path: Path, data_dir: Path) -> None:
    runs = {}
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        train(compose_train([*TINY, "trainer.max_epochs=1", f"seed={seed}"], tmp_path / name, data_dir))
        runs[name] = (tmp_path / name / "metrics.json").read_text()
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]  # the check above is not vacuous: the seed does change the run
