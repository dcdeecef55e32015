"""Each experiment's CPU-budget command (the ``# CPU budget`` line of its file) runs to the end.

On its own data when the files are present (MNIST/CIFAR-10 are not downloaded by the tests), and always
as a stand-in on the embedded digits with the experiment's model, loss and hyper-parameters.
"""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path

import pytest

from vidgen.train import train

from conftest import CONF, REPO, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# Files whose presence means the dataset is on disk (as torchvision expects them under data_dir).
DATA_FILES = {
    "mnist": ["MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-images-idx3-ubyte.gz"],
    "cifar10": ["cifar-10-batches-py/data_batch_1"],
}
QUIET = ["logger=csv", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def budget_overrides(name: str) -> list[str]:
    """The overrides of the ``# CPU budget ...: vidgen-train <overrides>`` comment of the experiment."""
    for line in (CONF / "experiment" / f"{name}.yaml").read_text().splitlines():
        if line.startswith("# CPU budget") and "vidgen-train" in line:
            return shlex.split(line.split("vidgen-train", 1)[1])
    raise AssertionError(f"conf/experiment/{name}.yaml has no '# CPU budget ...: vidgen-train ...' comment")


def _data_of(name: str) -> str:
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    return next((d for d in ("cifar10", "mnist", "digits") if f"override /data: {d}" in text), "digits")


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
    data_dir = Path(os.environ.get("VIDGEN_DATA_DIR") or REPO / "data")
    if data != "digits" and not any((data_dir / f).exists() for f in DATA_FILES[data]):
        pytest.skip(f"{data} is not in {data_dir} (set VIDGEN_DATA_DIR, or run `vidgen-data {data}` online)")
    _check(train(compose_train([*budget_overrides(name), *QUIET], tmp_path, data_dir)))


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_budget_command_on_digits_stand_in(name: str, tmp_path: Path, data_dir: Path) -> None:
    if _data_of(name) == "digits":
        pytest.skip("runs on the digits already (test_budget_command_on_its_data)")
    rgb = ["data.channels=3"] if _data_of(name) == "cifar10" else []
    cfg = compose_train([*budget_overrides(name), "data=digits", *rgb, *QUIET], tmp_path, data_dir)
    assert cfg.data._target_.endswith("DigitsDataModule")
    _check(train(cfg))
