"""`make results`: docs/RESULTS.md from run folders laid out as vidgen-train and vidgen-eval write them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from vidgen.cli.results import main


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

    _run(
        runs / "2026-01-05_00-00-00",
        ["experiment=convlstm_moving_mnist"],
        trainer,
        {"val/mse_per_frame": 95.0},
    )

    text = main([str(tmp_path)]).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "experiment" not in line]
    assert len(rows) == 3
    (convlstm,) = [r for r in rows if r.startswith("| convlstm_moving_mnist")]
    # the paper's number comes from the `# paper:` line of conf/experiment/convlstm_moving_mnist.yaml
    assert (
        "| val/mse_per_frame | 95 |" in convlstm
        and "MSE 29.80 per frame" in convlstm
        and "OpenSTL" in convlstm
    )
    (mnist,) = [r for r in rows if r.startswith("| dcgan_mnist")]
    assert (
        "| test/fid_mnist | 70.5 | 2.25 | — |" in mnist
    )  # DCGAN reports no MNIST number and "3 epochs x 50 batches" in mnist
    assert "logs/train/runs/2026-01-02_00-00-00" in mnist
    (default,) = [r for r in rows if r.startswith("| default")]
    assert "| val/fid_digits | 150 | — |" in default and "25 epochs x all batches" in default


def test_every_stated_paper_number_names_its_source() -> None:
    from vidgen.config import conf_dir

    stated = {}
    for path in sorted((Path(conf_dir()) / "experiment").glob("*.yaml")):
        lines = [line for line in path.read_text().splitlines() if line.startswith("# paper:")]
        assert len(lines) <= 1, f"{path.name}: one '# paper:' line, the one `make results` shows"
        if lines:
            stated[path.stem] = lines[0]
    # a number, and the source in parentheses with a year
    assert all(
        any(c.isdigit() for c in v.split("(")[0]) and v.rstrip().endswith(")") for v in stated.values()
    )
    assert all(any(str(year) in v for year in range(2013, 2025)) for v in stated.values()), stated
    assert {"sngan_cifar10", "wgan_gp_cifar10", "convlstm_moving_mnist", "vae_mnist"} <= set(stated)
