"""Writes sample sounds as WAV files, with an image of their spectrograms, and logs both."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from vidgen.callbacks.schedule import due_at_epoch_end
from vidgen.media import log_audio, log_image, spectrogram_grid, write_png, write_wav

log = logging.getLogger(__name__)


class SampleAudioCallback(L.Callback):
    """Every ``every_n_epochs`` (and after the last epoch) writes ``<dirpath>/epoch_NNN/sample_KK.wav`` and
    the grid of their spectrograms ``<dirpath>/epoch_NNN.png``, from fixed noise (a ``torch.Generator``
    seeded with ``seed``, which also fixes Griffin-Lim's phases for spectrogram models). W&B gets the
    WAVs (``wandb.Audio``) and the grid, TensorBoard the same as audio and image summaries.

    The model is an audio family (``data_kind = "audio"``): ``waveforms(samples)`` gives the sound of its
    samples and ``sample_rate`` its rate.

    Args:
        dirpath: output folder.
        num_samples: sounds per epoch (a conditional model cycles through its classes).
        nrow: spectrograms per grid row.
        every_n_epochs: how often.
        seed: seed of the fixed noise.
    """

    data_kind = "audio"

    def __init__(self, dirpath: str, num_samples: int = 10, nrow: int = 5, every_n_epochs: int = 1,
                 seed: int = 1234):  # fmt: skip
        super().__init__()
        self.dirpath = Path(dirpath)
        self.num_samples, self.nrow, self.every_n_epochs, self.seed = num_samples, nrow, every_n_epochs, seed

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if due_at_epoch_end(trainer, self.every_n_epochs):
            self.write(trainer, pl_module, name=f"epoch_{epoch:03d}")

    @rank_zero_only
    def write(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> list[Path]:
        noise = torch.Generator().manual_seed(self.seed)
        labels = pl_module.sample_labels(self.num_samples)
        waves = pl_module.waveforms(pl_module.sample(self.num_samples, generator=noise, labels=labels),
                                    generator=noise).cpu()  # fmt: skip
        grid = spectrogram_grid(waves, self.nrow)
        files = [write_png(grid, self.dirpath / f"{name}.png")]
        log_image(trainer.loggers, "spectrograms", grid, trainer.global_step, caption=name)
        for k, wave in enumerate(waves):
            path = write_wav(wave, self.dirpath / name / f"sample_{k:02d}.wav", pl_module.sample_rate)
            caption = f"{name} sample {k}" + ("" if labels is None else f", class {int(labels[k])}")
            log_audio(trainer.loggers, f"samples/{k:02d}", path, trainer.global_step, caption=caption)
            files.append(path)
        log.info(f"samples: {files[0]} and {len(waves)} WAV files in {self.dirpath / name}")
        return files
