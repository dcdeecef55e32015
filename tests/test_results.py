"""`make results`: docs/RESULTS.md from run folders laid out as vidgen-train and vidgen-eval write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vidgen.cli.results import main


def _run(folder: Path, overrides: list[str], config: dict, metrics: dict) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _row(text: str, experiment: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    (row,) = [line for line in lines[1:] if line.startswith(f"| {experiment} |")]
    return dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))


def test_results_table_has_one_row_per_experiment_with_eval_numbers(tmp_path: Path) -> None:
    runs = tmp_path / "logs" / "train" / "runs"
    trainer = {"trainer": {"max_epochs": 3, "limit_train_batches": 50}}
    _run(runs / "2026-01-01_00-00-00", ["experiment=dcgan_mnist"], trainer, {"val/fid_mnist": 90.0})
    newest = _run(runs / "2026-01-02_00-00-00", ["experiment=dcgan_mnist"], trainer, {"val/fid_mnist": 80.0})
    (newest / "run.json").write_text(
        json.dumps({"wall_seconds": 80.2, "train_seconds": 61.4, "global_step": 150, "commit": "abc123"})
    )
    _run(runs / "2026-01-03_00-00-00", [], {"trainer": {"max_epochs": 25}}, {"val/fid_digits": 150.0})
    ckpt = newest / "checkpoints" / "last.ckpt"
    gan_test = {"test/fid_mnist": 70.5, "test/fid_mnist_real_floor": 2.25, "test/fid_mnist_untrained": 400.0,
                "test/n_fake_mnist": 10000.0, "test/n_real_mnist": 10000.0}  # fmt: skip
    _run(tmp_path / "logs" / "eval" / "runs" / "2026-01-04_00-00-00", [f"ckpt_path={ckpt}"],
         {"ckpt_path": str(ckpt)}, gan_test)  # fmt: skip
    frames = _run(runs / "2026-01-05_00-00-00", ["experiment=convlstm_moving_mnist"], trainer, {})
    ckpt = frames / "checkpoints" / "last.ckpt"
    frame_test = {"test/mse_per_frame": 95.0, "test/mse_per_frame_copy_last": 100.0,
                  "test/mse_per_frame_context_mean": 90.0, "test/n_sequences": 1000.0}  # fmt: skip
    evaluated = _run(tmp_path / "logs" / "eval" / "runs" / "2026-01-06_00-00-00", [f"ckpt_path={ckpt}"],
                     {"ckpt_path": str(ckpt)}, frame_test)  # fmt: skip
    # the test set as vidgen.callbacks.test_set logs it into the CSV logger's hparams
    (evaluated / "csv" / "version_0").mkdir(parents=True)
    hparams = evaluated / "csv" / "version_0" / "hparams.yaml"
    hparams.write_text("data/test_set: generated 256, split_seed 0\n")

    # a video generator: the clip metric (FD in the C3D space) is its number, N read from the space's counts
    video = _run(runs / "2026-01-06_12-00-00", ["experiment=vgan_moving_mnist"], trainer, {})
    ckpt = video / "checkpoints" / "last.ckpt"
    video_test = {"test/fid_frames_mnist_mean": 200.0, "test/fid_frames_mnist_mean_untrained": 100.0,
                  "test/fd_c3d_mnist": 300.0, "test/fd_c3d_mnist_untrained": 140.0,
                  "test/n_fake_mnist": 256.0, "test/n_real_mnist": 256.0}  # fmt: skip
    _run(tmp_path / "logs" / "eval" / "runs" / "2026-01-06_12-00-00", [f"ckpt_path={ckpt}"],
         {"ckpt_path": str(ckpt)}, video_test)  # fmt: skip

    # a conditional generator: its `# metric:` line names the requested-class accuracy, higher is better
    cond = _run(runs / "2026-01-06_18-00-00", ["experiment=cwavegan_fsdd"], trainer, {})
    ckpt = cond / "checkpoints" / "last.ckpt"
    cond_test = {"test/fid_fsdd": 20.0, "test/fid_fsdd_untrained": 50.0, "test/n_fake_fsdd": 300.0,
                 "test/n_real_fsdd": 300.0, "test/conditional_accuracy_fsdd": 0.4,
                 "test/conditional_accuracy_fsdd_untrained": 0.1}  # fmt: skip
    _run(tmp_path / "logs" / "eval" / "runs" / "2026-01-06_18-00-00", [f"ckpt_path={ckpt}"],
         {"ckpt_path": str(ckpt)}, cond_test)  # fmt: skip

    # trained, never evaluated, and its training logged no result: no row, and the reason says so
    _run(runs / "2026-01-07_00-00-00", ["experiment=mocogan_moving_mnist"], trainer, {"train/d_loss": 1.0})

    (tmp_path / "logs" / "results_not_run.json").write_text(
        json.dumps({"dcgan_cifar10": "vidgen-train failed: x"})
    )
    text = main([str(tmp_path)]).read_text()
    table, not_run = text.split("## Not run")
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + 5
    # every other experiment is listed with the reason it has no row
    assert (
        "| dcgan_cifar10 | vidgen-train failed: x |" in not_run
        and "| vae_mnist | no run in logs/ |" in not_run
    )
    assert "| mocogan_moving_mnist | trained, but no test metric in logs/ (run vidgen-eval" in not_run
    assert "| dcgan_mnist |" not in not_run
    # the paper's number comes from the `# paper:` line of conf/experiment/convlstm_moving_mnist.yaml
    convlstm = _row(text, "convlstm_moving_mnist")
    assert convlstm["metric"] == "test/mse_per_frame" and convlstm["ours"] == "95"
    assert "MSE 29.80 per frame" in convlstm["paper (source)"] and convlstm["N"] == "1000 test sequences"
    assert convlstm["baselines"] == "copy last frame 100, context mean 90"
    assert convlstm["test data"] == "generated 256, split_seed 0"
    # 95 does not beat the context mean's 90: a smoke test, whatever the other baseline says
    assert convlstm["verdict"] == "smoke test (does not clearly beat context mean)"
    mnist = _row(text, "dcgan_mnist")
    assert (mnist["metric"], mnist["ours"], mnist["real floor"]) == ("test/fid_mnist", "70.5", "2.25")
    assert mnist["N"] == "10000 gen. vs 10000 real" and mnist["verdict"] == "result"
    assert mnist["budget"] == "150 optimizer steps, 61 s" and mnist["commit"] == "abc123"
    assert mnist["run"] == "logs/train/runs/2026-01-02_00-00-00"
    assert mnist["test data"] == "—"  # its runs logged no test set
    vgan = _row(text, "vgan_moving_mnist")
    assert (vgan["metric"], vgan["ours"], vgan["N"]) == ("test/fd_c3d_mnist", "300", "256 gen. vs 256 real")
    assert vgan["verdict"] == "smoke test (does not clearly beat untrained)"
    cwavegan = _row(text, "cwavegan_fsdd")
    assert (cwavegan["metric"], cwavegan["ours"], cwavegan["baselines"]) == (
        "test/conditional_accuracy_fsdd",
        "0.4",
        "untrained 0.1",
    )
    assert cwavegan["N"] == "300 gen. vs 300 real" and cwavegan["verdict"] == "result"
    default = _row(text, "default")
    assert (default["metric"], default["ours"], default["verdict"]) == (
        "val/fid_digits",
        "150",
        "no baseline measured",
    )
    assert default["budget"] == "25 epochs x all batches"


def test_a_fresh_clone_keeps_the_documented_rows_until_its_own_runs_replace_them(tmp_path: Path) -> None:
    """logs/ stays on the machine that ran: `make results` elsewhere must not erase the documented rows."""
    made = tmp_path / "made"
    trainer = {"trainer": {"max_epochs": 3}}
    _run(made / "logs" / "train" / "runs" / "2026-01-01_00-00-00", ["experiment=dcgan_mnist"], trainer,
         {"test/fid_mnist": 70.5, "test/fid_mnist_untrained": 400.0})  # fmt: skip
    _run(made / "logs" / "train" / "runs" / "2026-01-01_01-00-00", ["experiment=vae_mnist"], trainer,
         {"test/fid_mnist": 50.0, "test/fid_mnist_untrained": 400.0})  # fmt: skip
    documented = main([str(made)]).read_text()

    fresh = tmp_path / "fresh"
    (fresh / "docs").mkdir(parents=True)
    (fresh / "docs" / "RESULTS.md").write_text(documented)
    _run(fresh / "logs" / "train" / "runs" / "2026-02-01_00-00-00", ["experiment=vae_mnist"], trainer,
         {"test/fid_mnist": 40.0, "test/fid_mnist_untrained": 400.0})  # fmt: skip
    text = main([str(fresh)]).read_text()
    assert _row(text, "dcgan_mnist") == _row(documented, "dcgan_mnist")  # kept, with its run folder
    assert _row(text, "vae_mnist")["ours"] == "40"  # replaced by this clone's run
    assert "| dcgan_mnist |" not in text.split("## Not run")[1]


def test_budget_commands_are_read_from_every_experiment_file() -> None:
    from vidgen.cli.results import budget_commands
    from vidgen.config import conf_dir

    for path in sorted((Path(conf_dir()) / "experiment").glob("*.yaml")):
        commands = budget_commands(path.read_text())
        assert commands is not None, f"{path.name} has no '# CPU budget (...): vidgen-train ...' line"
        train_args, _ = commands
        assert f"experiment={path.stem}" in train_args, (path.name, train_args)
        # continuation lines are joined: no comment marker or empty argument leaks into the command
        assert all(arg and not arg.startswith("#") for arg in train_args), train_args


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


def test_results_run_records_why_an_experiment_could_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make results-run` on CIFAR-10 with no copy of CIFAR-10 (no download here): the real vidgen-train
    stops with its one-line data error, which the table lists instead of a row."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDGEN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    text = main(["run", "dcgan_cifar10"]).read_text()
    why = json.loads((tmp_path / "logs" / "results_not_run.json").read_text())["dcgan_cifar10"]
    assert why.startswith("vidgen-train failed: ") and "cifar" in why.lower() and "Traceback" not in why
    assert f"| dcgan_cifar10 | {why.replace('|', '/')} |" in text.split("## Not run")[1]
