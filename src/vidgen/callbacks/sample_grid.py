"""Saves a grid of samples from fixed noise, so that progress across epochs is visible at a glance."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from vidgen.callbacks.schedule import due_at_epoch_end
from vidgen.media import image_grid, log_image, write_png

log = logging.getLogger(__name__)


class SampleGridCallback(L.Callback):
    """Every ``every_n_epochs`` (and after the last epoch) writes ``<dirpath>/epoch_NNN.png``.

    The noise is drawn from its own ``torch.Generator`` seeded with ``seed``: the same latent codes every
    epoch, and the run's random stream is left untouched. The grid is also sent to every logger that
    takes images (W&B as ``samples``, TensorBoard as ``samples``); CSV keeps only the file.

    Args:
        dirpath: folder of the PNG files (``<run>/samples`` by default config).
        num_samples: images in the grid.
        nrow: images per grid row.
        every_n_epochs: how often to write a grid.
        seed: seed of the fixed noise.
        value_range: pixel range of the model's output, mapped to [0, 1] for display.
    """

    data_kind = "image"

    def __init__(
        self,
        dirpath: str,
        num_samples: int = 64,
        nrow: int = 8,
        every_n_epochs: int = 1,
        seed: int = 1234,
        value_range: tuple[float, float] = (-1.0, 1.0),
    ):
        super().__init__()
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.nrow = nrow
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.value_range = tuple(value_range)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if due_at_epoch_end(trainer, self.every_n_epochs):
            self.write_grid(trainer, pl_module, name=f"epoch_{epoch:03d}")

    @rank_zero_only
    def write_grid(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> Path:
        samples = pl_module.sample(self.num_samples, generator=torch.Generator().manual_seed(self.seed))
        grid = image_grid(samples, self.value_range, self.nrow)
        path = write_png(grid, self.dirpath / f"{name}.png")
        log_image(trainer.loggers, "samples", grid, trainer.global_step, caption=name)
        log.info(f"samples: {path}")
        return path
