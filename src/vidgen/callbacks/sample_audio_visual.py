"""Writes sample (clip, sound) pairs as MP4 with sound, GIF and WAV files, and logs them."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from vidgen.callbacks.schedule import due_at_epoch_end
from vidgen.media import log_audio, log_video, write_audio_visual

log = logging.getLogger(__name__)


class SampleAudioVisualCallback(L.Callback):
    """Every ``every_n_epochs`` (and after the last epoch) writes ``<dirpath>/epoch_NNN/``: ``samples.gif``
    (the clips as a grid) and per pair ``sample_KKK.mp4`` (H.264 video with its AAC sound track, at the
    model's exact frame rate, so picture and sound end together), ``sample_KKK.gif`` and ``sample_KKK.wav``,
    from fixed noise (a ``torch.Generator`` seeded with ``seed``) and the digits 0, 1, ... in turn.
    W&B gets the grid and each MP4 as videos (with sound) and each WAV as ``wandb.Audio``; TensorBoard the
    GIFs and the WAVs.

    The model is an audio-visual family: ``sample`` returns ``AudioVisual`` pairs, ``fps`` and
    ``sample_rate`` are its rates.

    Args:
        dirpath: output folder.
        num_samples: pairs per epoch.
        nrow: clips per grid row.
        every_n_epochs: how often.
        seed: seed of the fixed noise.
        value_range: pixel range of the clips.
    """

    data_kind = "audio_visual"

    def __init__(self, dirpath: str, num_samples: int = 10, nrow: int = 5, every_n_epochs: int = 1,
                 seed: int = 1234, value_range: tuple[float, float] = (-1.0, 1.0)):  # fmt: skip
        super().__init__()
        self.dirpath = Path(dirpath)
        self.num_samples, self.nrow, self.every_n_epochs, self.seed = num_samples, nrow, every_n_epochs, seed
        self.value_range = tuple(value_range)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if due_at_epoch_end(trainer, self.every_n_epochs):
            self.write(trainer, pl_module, name=f"epoch_{trainer.current_epoch:03d}")

    @rank_zero_only
    def write(self, trainer: L.Trainer, pl_module: L.LightningModule, name: str) -> dict[str, list[Path]]:
        labels = pl_module.sample_labels(self.num_samples)
        pairs = pl_module.sample(self.num_samples, generator=torch.Generator().manual_seed(self.seed),
                                 labels=labels)  # fmt: skip
        files = write_audio_visual(pairs, self.value_range, pl_module.fps, pl_module.sample_rate,
                                   self.dirpath / name, self.nrow)  # fmt: skip
        step = trainer.global_step
        log_video(trainer.loggers, "samples", files["grid"][0], step)
        for k, (gif, wav) in enumerate(zip(files["gif"], files["wav"], strict=True)):
            mp4 = files["mp4"][k] if files["mp4"] else None
            caption = f"{name} sample {k}, digit {int(labels[k])}"
            log_video(trainer.loggers, f"samples/{k:02d}", gif, step, mp4=mp4)
            log_audio(trainer.loggers, f"sounds/{k:02d}", wav, step, caption=caption)
        log.info(f"samples: {len(files['wav'])} clips with sound (MP4, GIF, WAV) in {self.dirpath / name}")
        return files
