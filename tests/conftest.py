"""Shared fixtures: compose the real ``conf/`` with Hydra's compose API and run the real entrypoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from omegaconf import DictConfig

from vidgen.config import compose_config, conf_dir

if TYPE_CHECKING:
    import lightning as L
    import torch

REPO = Path(__file__).resolve().parents[1]
# The configs the entrypoints compose (the repository's conf/ in the editable install), as a folder.
CONF = Path(conf_dir())
# A small DCGAN and few batches: the real code path, at a size that runs in seconds on 2 cores.
TINY = [
    "model.generator.base_width=8",
    "model.discriminator.base_width=8",
    "data.batch_size=32",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
]


@pytest.fixture(scope="session", autouse=True)
def _wandb_data_dir(tmp_path_factory: pytest.TempPathFactory):
    """W&B copies artifact files (tables with media, checkpoints with ``log_model``) to $WANDB_DATA_DIR
    (default ~/.local/share/wandb) until ``wandb sync``: the session's go to a temporary folder, set once
    before any run starts (wandb warns when its environment variables change between runs)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_DATA_DIR", str(tmp_path_factory.mktemp("wandb_data")))
        yield


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the session, so the FID feature classifier is trained once."""
    return tmp_path_factory.mktemp("data")


def compose_train(
    overrides: list[str], output_dir: Path, data_dir: Path, config_name: str = "train"
) -> DictConfig:
    """The config ``vidgen-train <overrides>`` would run, with its outputs in ``output_dir`` and its data
    in the session's ``data_dir``."""
    return compose_config([f"paths.data_dir={data_dir}", *overrides], config_name, output_dir)


def assert_train_stops_with(
    overrides: list[str], fragments: list[str], output_dir: Path, data_dir: Path
) -> None:
    """``train`` of ``overrides`` raises one ``ConfigError`` whose message holds every fragment (the
    problem and its fix) and no traceback."""
    from vidgen.cli.train import train
    from vidgen.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        train(compose_train(overrides, output_dir, data_dir))
    for fragment in fragments:
        assert fragment in str(error.value), str(error.value)
    assert "Traceback" not in str(error.value)


def run_cli(args: list[str], cwd: Path, data_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the installed ``vidgen-train`` console script as a user would."""
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir), "HYDRA_FULL_ERROR": "0"}
    env.pop("HYDRA_FULL_ERROR")
    exe = Path(sys.executable).with_name("vidgen-train")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def model_and_data(ckpt: Path) -> tuple[torch.nn.Module, L.LightningDataModule]:
    """The model of ``ckpt`` with its weights (in eval mode) and its datamodule (set up), rebuilt from the
    checkpoint's config: what vidgen-eval tested, for recomputing its numbers independently."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vidgen.run import load_run_checkpoint

    checkpoint = load_run_checkpoint(str(ckpt))
    cfg = OmegaConf.create(checkpoint["vidgen_config"])
    model = instantiate(cfg.model)
    model.load_state_dict(checkpoint["state_dict"])
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    return model.eval(), datamodule


def split_tensors(datamodule, split: str, num: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``num`` (default: all) samples of a datamodule's split, in loader order, as ``(x, y)``."""
    import torch

    items = datamodule.splits[split]
    x, y = zip(*(items[i] for i in range(num or len(items))), strict=True)
    return torch.stack(x), torch.stack(y)
