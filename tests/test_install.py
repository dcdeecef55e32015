"""vidgen as a user installs it: a wheel, installed (not editable) into a fresh virtual environment, run
from a folder outside the repository with the configs it ships, and with a user's own config folder."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from conftest import REPO

MY_EXPERIMENT = """\
# @package _global_
# A user's recipe, kept outside the repository: hinge loss and narrower nets, all else as packaged.
defaults:
  - override /loss: gan_hinge

tags: [mine]
model:
  generator:
    base_width: 8
  discriminator:
    base_width: 8
"""


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh virtual environment with the vidgen wheel installed; its dependencies (torch, ...) are the
    dev environment's, reached through a ``.pth`` path, so nothing is downloaded or installed twice."""
    root = tmp_path_factory.mktemp("install")
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    source = root / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "conf"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root / "dist", source])
    (wheel,) = (root / "dist").glob("vidgen-*.whl")

    _run([sys.executable, "-m", "venv", root / "venv"])
    python = root / "venv" / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout
    site_packages = Path(purelib.strip())
    # A path listed in a .pth file joins sys.path, but the .pth files inside it are not run: the dev
    # environment's editable-install finder (which maps vidgen to this checkout) stays out.
    (site_packages / "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([python, "-m", "pip", "--disable-pip-version-check", "install", "--no-deps", "--no-index", wheel])
    return {"python": python, "bin": python.parent, "site_packages": site_packages, "source": source}


def _user_env(**extra: str) -> dict[str, str]:
    """The environment without what could point back at the checkout (``VIDGEN_CONF_DIR``, ``PYTHONPATH``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDGEN_", "PYTHON"))}
    return {**env, **extra}


def _the_run(cwd: Path) -> Path:
    (run,) = cwd.glob("logs/train/runs/*/")
    return run


# callbacks=none: the FID callback trains its feature classifier on first use (minutes on 2 busy cores),
# which tells nothing about the install; reading a config file from the wheel is checked in the first test.
QUICK = ["trainer=debug", "logger=csv", "callbacks=none"]


def _check_metrics(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"train/d_loss_epoch", "train/g_loss_epoch"} <= set(metrics), metrics
    assert all(v is not None and math.isfinite(v) for v in metrics.values()), metrics


def test_the_wheel_ships_every_module_and_config(venv: dict[str, Path]) -> None:
    probe = (
        "import vidgen; from vidgen.config import conf_dir, read_config_file; print(vidgen.__file__); "
        "print(conf_dir()); print(read_config_file('data/digits.yaml')._target_)"
    )
    module, conf, target = _run(
        [venv["python"], "-c", probe], cwd=venv["bin"], env=_user_env()
    ).stdout.split()
    installed = venv["site_packages"] / "vidgen"
    assert Path(module) == installed / "__init__.py"  # not the checkout's src/vidgen
    assert Path(conf) == installed / "conf"
    assert target == "vidgen.data.digits.DigitsDataModule"
    source = venv["source"]

    def tree(folder: Path, pattern: str) -> set[Path]:
        return {p.relative_to(folder) for p in folder.rglob(pattern)}

    assert tree(installed / "conf", "*.yaml") == tree(source / "conf", "*.yaml")
    # pyproject.toml lists the packages by hand: a subpackage missing from that list is missing here.
    assert tree(source / "src" / "vidgen", "*.py") <= tree(installed, "*.py")


def test_installed_entrypoint_runs_outside_the_repository(
    venv: dict[str, Path], tmp_path: Path, data_dir: Path
) -> None:
    _run([venv["bin"] / "vidgen-train", *QUICK], cwd=tmp_path, env=_user_env(VIDGEN_DATA_DIR=str(data_dir)))
    run = _the_run(tmp_path)
    _check_metrics(run)
    hydra = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert {"path": "vidgen.conf", "schema": "pkg", "provider": "main"} in hydra["runtime"]["config_sources"]


def test_a_users_own_experiment_from_a_config_folder_outside(
    venv: dict[str, Path], tmp_path: Path, data_dir: Path
) -> None:
    my_conf = tmp_path / "my_conf"
    (my_conf / "experiment").mkdir(parents=True)
    (my_conf / "experiment" / "my_exp.yaml").write_text(MY_EXPERIMENT)
    cwd = tmp_path / "work"
    cwd.mkdir()
    args = ["experiment=my_exp", f"hydra.searchpath=[file://{my_conf}]", *QUICK]
    _run([venv["bin"] / "vidgen-train", *args], cwd=cwd, env=_user_env(VIDGEN_DATA_DIR=str(data_dir)))
    run = _the_run(cwd)
    _check_metrics(run)
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert config["tags"] == ["mine"]
    assert config["loss"]["_target_"] == "vidgen.losses.gan.HingeGANLoss"
    assert config["model"]["generator"]["base_width"] == config["model"]["discriminator"]["base_width"] == 8
    assert config["trainer"]["max_epochs"] == 1  # the packaged trainer=debug, untouched by the experiment
