"""The catalogue of bad inputs: each ends in one message that names the value and the fix.

In-process through the real config composition and the real ``train`` (fast); ``test_cli.py`` checks
that the command line prints such a message alone, without a traceback, and exits non-zero.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from torch.utils.data import TensorDataset

from vidgen.cli.train import train
from vidgen.data.digits import DigitsDataModule
from vidgen.errors import CheckpointError, ConfigError, DataError, FeatureExtractorError, VidgenError
from vidgen.metrics.feature_spaces import feature_space

from conftest import TINY, compose_train, run_cli

VIDEO = ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction"]
# Every case stops before training; only the trainer limits of TINY apply to all models.
QUICK = [o for o in TINY if not o.startswith("model.")]

# (id, overrides, exception type, every fragment the message must contain)
CATALOGUE = [
    ("unknown model", ["model=nope"], HydraException, ["model/nope", "dcgan"]),
    ("unknown logger", ["logger=nope"], HydraException, ["logger/nope", "wandb"]),
    ("unknown experiment", ["experiment=nope"], HydraException, ["experiment/nope", "dcgan_digits"]),
    ("unknown top-level key", ["epochs=3"], HydraException, ["epochs"]),
    ("wrong type int", ["trainer.max_epochs=abc"], ConfigError, ["trainer.max_epochs='abc'", "an integer or null"]),
    ("wrong type float", ["model.optimizer_g.lr=fast"], ConfigError, ["model.optimizer_g.lr='fast'", "a number"]),
    ("wrong type seed", ["seed=abc"], ConfigError, ["seed='abc'", "an integer"]),
    ("wrong literal", ["trainer.precision=banana"], ConfigError, ["trainer.precision='banana'", "one of"]),
    ("wrong direction", ["optimized_direction=up"], ConfigError, ["optimized_direction='up'", "'minimize'"]),
    ("misspelled key", ["+model.generator.latent_dims=64"], ConfigError, ["Did you mean latent_dim", "DCGANGenerator"]),
    ("unknown trainer arg", ["+trainer.epochs=3"], ConfigError, ["trainer.epochs", "lightning.pytorch.Trainer"]),
    ("bad target", ["model.generator._target_=vidgen.nets.nope.Nope"], ConfigError, ["cannot be imported", "vidgen.nets.nope"]),
    ("image size vs net", ["data.image_size=28"], ConfigError, ["power of two", "data.image_size=32"]),
    ("out of range batch", ["data.batch_size=0"], ConfigError, ["data.batch_size must be >= 1", "got 0"]),
    ("out of range fraction", ["data.val_fraction=1.5"], ConfigError, ["data.val_fraction", "got 1.5"]),
    ("out of range channels", ["data.channels=2"], ConfigError, ["data.channels", "got 2"]),
    ("out of range n_critic", ["model.n_critic=0"], ConfigError, ["model.n_critic", "got 0"]),
    ("bad accelerator", ["trainer.accelerator=quantum"], ConfigError, ["Building trainer", "quantum"]),
    ("loss of another family", ["loss=elbo"], ConfigError, ["loss=elbo is an elbo loss", "loss=", "gan_ns"]),
    ("frame loss on a GAN", ["loss=frame_mse"], ConfigError, ["loss=frame_mse", "model=dcgan"]),
    ("video data, image model", ["data=moving_digits"], ConfigError, ["model=dcgan models images", "data=moving_digits"]),
    ("image data, video model", ["model=convlstm", "loss=frame_mse"], ConfigError, ["model=convlstm models videos", "moving_digits"]),
    ("image callbacks on video", VIDEO[:3], ConfigError, ["works on images", "callbacks=prediction"]),
    ("missing interpolation", ["model.generator.image_size=${data.size}"], ConfigError, ["does not resolve", "data.size"]),
    ("missing checkpoint", ["ckpt_path=nowhere/last.ckpt"], CheckpointError, ["nowhere/last.ckpt does not exist"]),
    ("optimizer value", ["model.optimizer_g.lr=-1"], ConfigError, ["model.optimizer_g", "torch.optim.Adam", "Invalid learning rate: -1"]),
    ("best checkpoint by an unmeasured FID", ["~callbacks.fid"], ConfigError, ["callbacks.model_checkpoint.monitor=val/fid_digits", "monitor=null", "callbacks=[model_checkpoint,fid]"]),
    ("optimizer betas", ["model.optimizer_d.betas=[2.0,0.9]"], ConfigError, ["model.optimizer_d", "Invalid beta parameter"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "overrides,error,fragments", [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE]
)
def test_bad_input_gives_one_clear_message(
    overrides: list[str], error: type, fragments: list[str], tmp_path: Path, data_dir: Path
) -> None:
    with pytest.raises((error, OmegaConfBaseException) if error is HydraException else error) as info:
        train(compose_train([*QUICK, *overrides], tmp_path, data_dir))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    if issubclass(error, VidgenError):
        assert "Fix:" in message and len(message) < 1200, message
    assert not (tmp_path / "checkpoints").exists()  # stopped before training


def test_a_partial_schedule_is_built_once_when_the_config_is_checked() -> None:
    """Optimizers and learning-rate schedules get their parameters only in configure_optimizers; the
    config check builds them on a stand-in so that a value they reject stops the run before it starts."""
    from omegaconf import OmegaConf

    from vidgen.config import check_config

    node = {
        "_target_": "torch.optim.lr_scheduler.OneCycleLR",
        "_partial_": True,
        "max_lr": 0.1,
        "pct_start": 2.0,
    }
    with pytest.raises(
        ConfigError, match=r"schedule \(torch.optim.lr_scheduler.OneCycleLR\) rejects .*pct_start"
    ):
        check_config(OmegaConf.create({"schedule": node}))
    check_config(OmegaConf.create({"schedule": {**node, "pct_start": 0.3}}))  # a good one passes


def _trained_checkpoint(tmp_path: Path, data_dir: Path) -> Path:
    train(compose_train([*TINY, "trainer.max_epochs=1"], tmp_path / "source", data_dir))
    return tmp_path / "source" / "checkpoints" / "last.ckpt"


def test_checkpoints_that_cannot_resume(tmp_path: Path, data_dir: Path) -> None:
    good = _trained_checkpoint(tmp_path, data_dir)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:1000])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    cases = [
        ([f"ckpt_path={truncated}"], "is not a readable checkpoint"),
        ([f"ckpt_path={foreign}"], "is not a Lightning training checkpoint"),
        ([f"ckpt_path={good}", "model.generator.base_width=16"], "was written by GANModule"),
        ([f"ckpt_path={good}", "model=mlp_gan"], "was written by GANModule(DCGANGenerator"),
    ]
    for overrides, fragment in cases:
        with pytest.raises(CheckpointError, match="Fix:") as info:
            train(compose_train([*QUICK, *overrides], tmp_path / "run", data_dir))
        assert fragment in str(info.value), str(info.value)


def test_corrupt_and_missing_datasets(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"(?s)MNIST.*Fix:"):
        train(
            compose_train(
                [*TINY, "data=mnist", "data.download=false", f"data.data_dir={empty}"], tmp_path, data_dir
            )
        )
    raw = tmp_path / "corrupt" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(b"\x00\x00\x08\x03" + bytes(100))  # an idx header cut short
        with gzip.open(raw / f"{name}.gz", "wb") as f:
            f.write(b"not mnist")
    with pytest.raises(DataError, match="Fix:"):
        overrides = ["data=mnist", "data.download=false", f"data.data_dir={tmp_path / 'corrupt'}"]
        train(compose_train([*TINY, *overrides], tmp_path, data_dir))


def test_unwritable_run_folder_is_reported_before_anything_runs(tmp_path: Path, data_dir: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_cli([f"hydra.run.dir={blocker}/run", *TINY], tmp_path, data_dir)
    assert proc.returncode != 0
    assert "cannot be used" in proc.stderr and "hydra.run.dir=<dir>" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


class InvertedDigitsDataModule(DigitsDataModule):
    """The digits with their pixels mapped the other way round (ink at the low end of the range), under
    the same arguments, dataset id and checksum, so under the digits' feature-net cache key: what a
    change in how a datamodule's code maps pixels does to a cache written before it."""

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        super().setup(stage)
        lo, hi = self.value_range
        self.splits = {k: TensorDataset(lo + hi - d.tensors[0], d.tensors[1]) for k, d in self.splits.items()}


def test_a_cached_extractor_that_does_not_read_the_runs_images_stops_training(
    tmp_path: Path, data_dir: Path
) -> None:
    """The digits' cached LeNet-5 met by images it was not trained on: the first validation measures it
    on them and stops the run, before a checkpoint, with the default floor (0.9 x its trained accuracy)."""
    # the cache written from the digits as they were (trained here unless an earlier test did)
    cache = feature_space(DigitsDataModule(data_dir=str(data_dir))).cache
    overrides = [*TINY, "trainer.max_epochs=2", f"data._target_={__name__}.InvertedDigitsDataModule"]
    with pytest.raises(FeatureExtractorError) as info:
        train(compose_train(overrides, tmp_path, data_dir))
    message = str(info.value)
    measured = float(re.search(r"classifies ([\d.]+)% of the 64 validation images correctly", message)[1])
    assert measured < 50, message  # ink and background swapped: the digits are not recognised
    assert f"cache {cache}" in message and "expected at least" in message and "0.9 x the" in message
    assert "Fix:" in message and len(message) < 1200, message
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))  # stopped at the first validation
