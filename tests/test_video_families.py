"""Every (video model, loss) pair through the real entrypoint on the embedded moving digits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from vidgen.cli.train import train

from conftest import compose_train

DATA = [
    "data=moving_digits",
    "data.batch_size=4",
    "data.num_train=8",
    "data.num_val=4",
    "data.num_test=4",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
]
PREDICTORS = {
    "rnn": ["model.net.hidden_size=16"],
    "lstm_ae": ["model.net.hidden_size=16"],
    "convlstm": ["model.net.hidden_channels=[8]", "model.net.kernel_size=3"],
}
VIDEO_GANS = {
    "vgan": ["model.generator.base_width=4", "model.discriminator.base_width=4"],
    "mocogan": ["model.generator.base_width=4", "model.discriminator.base_width=4"],
}
GAN_LOSSES = ["gan_ns", "gan_minimax", "gan_hinge", "lsgan", "wgan_gp"]


def _run(overrides: list[str], out: Path, data_dir: Path) -> dict:
    metrics = train(compose_train([*DATA, *overrides], out, data_dir))
    assert metrics and all(v is not None and math.isfinite(v) for v in metrics.values()), metrics
    assert json.loads((out / "metrics.json").read_text()) == metrics
    return metrics


def _gif_frames(path: Path, fps: int = 4) -> int:
    """Frames shown, from the total duration: Pillow merges identical consecutive frames into one."""
    total = 0
    with Image.open(path) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            total += gif.info["duration"]
    return round(total * fps / 1000)


@pytest.mark.parametrize("loss", ["frame_mse", "frame_l1", "frame_bce"])
@pytest.mark.parametrize("model", sorted(PREDICTORS))
def test_frame_predictor_trains(model: str, loss: str, tmp_path: Path, data_dir: Path) -> None:
    overrides = [f"model={model}", f"loss={loss}", "callbacks=prediction", *PREDICTORS[model]]
    metrics = _run(overrides, tmp_path, data_dir)
    assert {"train/loss_epoch", "val/mse_per_frame", "val/mae_per_frame", "val/mse_per_pixel"} <= set(metrics)
    # OpenSTL's per-frame MSE sums a 32x32 frame's squared errors: 1024 x the per-pixel mean.
    assert math.isclose(metrics["val/mse_per_frame"], 1024 * metrics["val/mse_per_pixel"], rel_tol=1e-4)
    (gif,) = (tmp_path / "samples").glob("*.gif")
    assert _gif_frames(gif) == 20  # 10 context + 10 predicted frames
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0


@pytest.mark.parametrize("loss", GAN_LOSSES)
@pytest.mark.parametrize("model", sorted(VIDEO_GANS))
def test_video_gan_trains(model: str, loss: str, tmp_path: Path, data_dir: Path) -> None:
    overrides = [f"model={model}", f"loss={loss}", "callbacks=video", *VIDEO_GANS[model]]
    metrics = _run(overrides, tmp_path, data_dir)
    assert {"train/d_loss_epoch", "val/d_loss"} <= set(metrics)
    (gif,) = (tmp_path / "samples").glob("*.gif")
    assert _gif_frames(gif) == 20  # clips as long as the data's seq_len
