"""Each experiment's CPU-budget command (the ``# CPU budget`` line of its file) runs to the end.

On its own data when the files are present (MNIST/CIFAR-10 are not downloaded by the tests), and always
as a stand-in on the embedded digits with the experiment's model, loss and hyper-parameters.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from data_files import SHARED, real_data_present
from vidgen.cli.results import budget_commands
from vidgen.cli.train import train

from conftest import CONF, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# The real dataset (data_files.REAL_DATA) each data option reads; Moving MNIST is made of MNIST digits.
REAL_DATA_OF = {
    "mnist": "mnist",
    "moving_mnist": "mnist",
    "cifar10": "cifar10",
    "spoken_digits": "fsdd",
    "talking_digits": "fsdd",
}
# The embedded data standing in for each dataset when its files are absent.
STAND_IN = {"mnist": "digits", "cifar10": "digits", "moving_mnist": "moving_digits"}
QUIET = ["logger=csv", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def budget_overrides(name: str) -> list[str]:
    """The overrides of the ``# CPU budget ...: vidgen-train <overrides>`` comment of the experiment, read
    as ``make results-run`` reads them (continued on indented ``#   `` lines)."""
    commands = budget_commands((CONF / "experiment" / f"{name}.yaml").read_text())
    assert commands, f"conf/experiment/{name}.yaml has no '# CPU budget (...): vidgen-train ...' comment"
    return commands[0]


def _data_of(name: str) -> str:
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    data = ("cifar10", "moving_mnist", "mnist", "moving_digits", "spoken_digits", "talking_digits", "digits")
    return next((d for d in data if f"override /data: {d}\n" in text), "digits")


def _data_dir_with_real_files(tmp_path: Path) -> Path:
    """``$VIDGEN_DATA_DIR``, else a fresh folder linking the shared offline copies read-only: caches
    (feature classifiers) are written there, never into the shared folder."""
    if os.environ.get("VIDGEN_DATA_DIR"):
        return Path(os.environ["VIDGEN_DATA_DIR"])
    data_dir = tmp_path / "data"
    for folder in ("MNIST/raw", "cifar-10-batches-py", "fsdd/recordings"):
        if (SHARED / folder).is_dir():
            (data_dir / folder).mkdir(parents=True)
            for f in (SHARED / folder).iterdir():
                (data_dir / folder / f.name).symlink_to(f)
    return data_dir


def _check(metrics: dict) -> None:
    assert metrics and all(v is not None and math.isfinite(v) for v in metrics.values()), metrics


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_states_a_budget_command(name: str) -> None:
    overrides = budget_overrides(name)
    assert f"experiment={name}" in overrides
    assert "# @package _global_" in (CONF / "experiment" / f"{name}.yaml").read_text().splitlines()[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_budget_command_on_its_data(name: str, tmp_path: Path) -> None:
    data = _data_of(name)
    data_dir = _data_dir_with_real_files(tmp_path)
    if data in REAL_DATA_OF and not real_data_present(REAL_DATA_OF[data], data_dir):
        pytest.skip(f"{data} is not in {data_dir} (set VIDGEN_DATA_DIR, or run `vidgen-data {data}` online)")
    _check(train(compose_train([*budget_overrides(name), *QUIET], tmp_path, data_dir)))


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_budget_command_on_digits_stand_in(name: str, tmp_path: Path, data_dir: Path) -> None:
    if _data_of(name) not in STAND_IN:
        pytest.skip("runs on embedded data already (test_budget_command_on_its_data)")
    stand_in = STAND_IN[_data_of(name)]
    rgb = ["data.channels=3"] if _data_of(name) == "cifar10" else []
    # The experiment's own data sizes (e.g. seq_len 16) are kept; the data source becomes embedded.
    cfg = compose_train([*budget_overrides(name), f"data={stand_in}", *rgb, *QUIET], tmp_path, data_dir)
    assert cfg.data._target_.endswith("DigitsDataModule")
    _check(train(cfg))
