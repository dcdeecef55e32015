"""Writes sample videos as animated GIFs (and MP4 when PyAV is installed) and logs them to W&B."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from vidgen.callbacks.schedule import due_at_epoch_end
from vidgen.media import log_video, video_to_frames, write_gif, write_mp4

log = logging.getLogger(__name__)


def first_samples(loader: Iterable, num: int) -> torch.Tensor:
    """The first ``num`` samples ``x`` of a loader's ``(x, y)`` batches (fewer if it has fewer)."""
    taken: list[torch.Tensor] = []
    for batch in loader:
        taken.append(batch[0])
        if sum(len(x) for x in taken) >= num:
            break
    return torch.cat(taken)[:num]


class SampleVideoCallback(L.Callback):
    """Every ``every_n_epochs`` (and after the last epoch) writes ``<dirpath>/epoch_NNN.gif``.

    Generators sample from fixed noise (a ``torch.Generator`` seeded with ``seed``); models that
    continue real clips (``context_frames > 0``: frame predictors) are given the first ``num_samples``
    validation clips, and the GIF shows the true clips in the top rows and context + continuation
    below. W&B receives the GIF as a video, TensorBoard as an animated image.

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
        if due_at_epoch_end(trainer, self.every_n_epochs):
            self.write(trainer, pl_module, name=f"epoch_{epoch:03d}")

    def _videos(self, trainer: L.Trainer, pl_module: L.LightningModule) -> torch.Tensor:
        noise = torch.Generator().manual_seed(self.seed)
        if not pl_module.context_frames:
            return pl_module.sample(self.num_samples, generator=noise)
        real = first_samples(trainer.datamodule.val_dataloader(), self.num_samples)
        continued = pl_module.sample(len(real), generator=noise, context=real).cpu()
        return torch.cat([real[:, : continued.shape[1]], continued])

    @rank_zero_only
    def write(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> Path:
        frames = video_to_frames(self._videos(trainer, pl_module), self.value_range, self.nrow)
        gif = write_gif(frames, self.dirpath / f"{name}.gif", self.fps)
        if self.mp4:
            write_mp4(frames, self.dirpath / f"{name}.mp4", self.fps)
        log_video(trainer.loggers, "samples", gif, trainer.global_step)
        log.info(f"samples: {gif}")
        return gif
