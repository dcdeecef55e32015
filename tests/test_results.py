"""`make results`: docs/RESULTS.md from run folders laid out as vidgen-train and vidgen-eval write them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from vidgen.results import main


def _run(folder: Path, overrides: list[str], config: dict, metrics: dict) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_results_table_has_one_row_per_experiment_with_eval_numbers(tmp_path: Path) -> None:
    runs = tmp_path / "logs" / "train" / "runs"
    trainer = {"trainer": {"max_epochs": 3, "limit_train_batches": 50}}
    _run(runs / "2026-01-01_00-00-00", ["experiment=dcgan_mnist"], trainer, {"val/fid_mnist": 90.0})
    newest = _run(runs / "2026-01-02_00-00-00", ["experiment=dcgan_mnist"], trainer, {"val/fid_mnist": 80.0})
    _run(runs / "2026-01-03_00-00-00", [], {"trainer": {"max_epochs": 25}}, {"val/fid_digits": 150.0})
    ckpt = newest / "checkpoints" / "last.ckpt"
    _run(tmp_path / "logs" / "eval" / "runs" / "2026-01-04_00-00-00", [f"ckpt_path={ckpt}"],
         {"ckpt_path": str(ckpt)}, {"test/fid_mnist": 70.5, "test/fid_mnist_real_floor": 2.25})  # fmt: skip

    text = main([str(tmp_path)]).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "experiment" not in line]
    assert len(rows) == 2
    (mnist,) = [r for r in rows if r.startswith("| dcgan_mnist")]
    assert "| test/fid_mnist | 70.5 | 2.25 |" in mnist and "3 epochs x 50 batches" in mnist
    assert "logs/train/runs/2026-01-02_00-00-00" in mnist
    (default,) = [r for r in rows if r.startswith("| default")]
    assert "| val/fid_digits | 150 | — |" in default and "25 epochs x all batches" in default
