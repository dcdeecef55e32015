"""Writes sample videos as animated GIFs (and MP4 when PyAV is installed) and logs them to W&B."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid

log = logging.getLogger(__name__)


def video_to_frames(videos: torch.Tensor, value_range: tuple[float, float], nrow: int) -> torch.Tensor:
    """``(B, T, C, H, W)`` in ``value_range`` -> ``(T, H', W', 3)`` uint8 frames, each a grid of the batch."""
    lo, hi = value_range
    unit = ((videos.float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    grids = [make_grid(unit[:, t], nrow=nrow, padding=2, pad_value=0.5) for t in range(unit.shape[1])]
    return (torch.stack(grids) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)


def write_gif(frames: torch.Tensor, path: Path, fps: int) -> Path:
    """``frames (T, H, W, 3)`` uint8 -> looping GIF; Pillow (a torchvision dependency) encodes it."""
    from PIL import Image

    images = [Image.fromarray(f.numpy()) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path


def write_mp4(frames: torch.Tensor, path: Path, fps: int) -> Path | None:
    """MP4 through ``torchvision.io.write_video`` when its encoder (PyAV) is installed, else None."""
    try:
        import av  # noqa: F401  # torchvision's video writer needs PyAV
    except ImportError:
        return None
    from torchvision.io import write_video

    write_video(str(path), frames, fps=fps)
    return path


class SampleVideoCallback(L.Callback):
    """Every ``every_n_epochs`` (and after the last epoch) writes ``<dirpath>/epoch_NNN.gif``.

    Generators sample from fixed noise (a ``torch.Generator`` seeded with ``seed``); frame predictors
    are given the first ``num_samples`` validation sequences as context, and the GIF shows the true
    clips in the top rows and context + prediction below. W&B receives the GIF as a video.

    Args:
        dirpath: output folder.
        num_samples: clips per GIF.
        nrow: clips per row.
        every_n_epochs: how often.
        fps: frames per second of the files.
        seed: seed of the fixed noise.
        value_range: pixel range of the model's output.
        mp4: also write MP4 when PyAV is present.
    """

    data_kind = "video"

    def __init__(
        self,
        dirpath: str,
        num_samples: int = 8,
        nrow: int = 4,
        every_n_epochs: int = 1,
        fps: int = 4,
        seed: int = 1234,
        value_range: tuple[float, float] = (-1.0, 1.0),
        mp4: bool = True,
    ):
        super().__init__()
        self.dirpath = Path(dirpath)
        self.num_samples, self.nrow, self.every_n_epochs, self.fps = num_samples, nrow, every_n_epochs, fps
        self.seed, self.value_range, self.mp4 = seed, tuple(value_range), mp4

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if (epoch + 1) % self.every_n_epochs == 0 or last or trainer.should_stop:
            self.write(trainer, pl_module, name=f"epoch_{epoch:03d}")

    def _videos(self, trainer: L.Trainer, pl_module: L.LightningModule) -> torch.Tensor:
        noise = torch.Generator().manual_seed(self.seed)
        if getattr(pl_module, "family", None) != "sequence":
            return pl_module.sample(self.num_samples, generator=noise)
        real = []
        for batch in trainer.datamodule.val_dataloader():
            real.append(batch[0])
            if sum(len(r) for r in real) >= self.num_samples:
                break
        real = torch.cat(real)[: self.num_samples]
        predicted = pl_module.sample(len(real), condition=real).cpu()
        return torch.cat([real[:, : predicted.shape[1]], predicted])

    @rank_zero_only
    def write(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> Path:
        frames = video_to_frames(self._videos(trainer, pl_module), self.value_range, self.nrow)
        gif = write_gif(frames, self.dirpath / f"{name}.gif", self.fps)
        if self.mp4:
            write_mp4(frames, self.dirpath / f"{name}.mp4", self.fps)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_video(
                    key="samples", videos=[str(gif)], step=trainer.global_step, fps=[self.fps], format=["gif"]
                )
        log.info(f"samples: {gif}")
        return gif
