"""``vidgen-train`` as a user runs it: help, readable errors, multirun folders."""

from __future__ import annotations

from pathlib import Path

from conftest import CONF, TINY, run_cli


def _no_traceback(proc) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert 'File "' not in out, out  # a message, not stack frames


def test_help_lists_config_groups_and_options(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli(["--help"], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout.split("== Config groups")[1].split("== Config (")[0]
    groups = {
        line.split(":")[0]: set(line.split(":")[1].replace(" ", "").split(","))
        for line in section.splitlines()
        if ": " in line
    }
    expected = {"model": {"dcgan"}, "loss": {"gan_minimax", "gan_ns"}, "data": {"digits"},
                "logger": {"csv", "many", "none", "tensorboard", "wandb"},
                "trainer": {"cpu", "debug", "default", "gpu", "ddp", "ddp_cpu"}}  # fmt: skip
    for group, options in expected.items():
        assert options <= groups.get(group, set()), (group, groups)
    # every option file of conf/ is listed, and nothing else
    for group in ("model", "loss", "data", "trainer", "logger", "callbacks", "experiment", "debug"):
        assert groups[group] == {p.stem for p in (CONF / group).glob("*.yaml")}, group


def test_unknown_model_names_the_value_and_the_options(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli(["model=nope"], tmp_path, data_dir)
    assert proc.returncode != 0
    assert "Could not find 'model/nope'" in proc.stderr and "dcgan" in proc.stderr
    _no_traceback(proc)
    assert not (tmp_path / "logs").exists()  # nothing ran, nothing was written


def test_wrong_type_names_the_key_and_the_expected_type(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli(["trainer.max_epochs=abc"], tmp_path, data_dir)
    assert proc.returncode != 0
    assert "trainer.max_epochs='abc'" in proc.stderr and "expects an integer or null" in proc.stderr
    _no_traceback(proc)
    (log_file,) = tmp_path.glob("logs/train/runs/*/train.log")
    assert "Traceback" in log_file.read_text()  # the full story is kept in the run's log file


def test_misspelled_key_suggests_the_right_one(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli(["+model.generator.latent_dims=64"], tmp_path, data_dir)
    assert proc.returncode != 0
    assert "latent_dims" in proc.stderr and "Did you mean latent_dim" in proc.stderr
    _no_traceback(proc)


def test_bad_image_size_names_the_fix(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli(["data.image_size=28", *TINY], tmp_path, data_dir)
    assert proc.returncode != 0
    assert "power of two" in proc.stderr and "data.image_size=32" in proc.stderr
    _no_traceback(proc)


def test_missing_checkpoint_names_the_path(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli(["ckpt_path=nowhere/last.ckpt", *TINY], tmp_path, data_dir)
    assert proc.returncode != 0
    assert "ckpt_path=nowhere/last.ckpt does not exist" in proc.stderr
    _no_traceback(proc)


def test_multirun_writes_one_folder_per_job(tmp_path: Path, data_dir: Path) -> None:
    small = ["model.generator.base_width=8", "model.discriminator.base_width=8"]
    args = ["-m", "loss=gan_ns,gan_minimax", "trainer=debug", "logger=csv", *small]
    proc = run_cli(args, tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = tmp_path.glob("logs/train/multiruns/*")
    for job, loss in [("0", "gan_ns"), ("1", "gan_minimax")]:
        assert (sweep / job / "metrics.json").is_file()
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert f"loss={loss}" in (sweep / job / ".hydra" / "overrides.yaml").read_text().replace("- ", "")
