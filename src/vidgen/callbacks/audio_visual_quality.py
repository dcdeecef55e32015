"""Audio-visual consistency and per-modality quality during validation and test
(``<split>/av_agreement_<frames>_<audio>``, ``fid_<frames>``, ``fid_<audio>``, conditional accuracies).

The audio-visual counterpart of ``callbacks.sample_quality``, with one metric
(``vidgen.metrics.audio_visual.AudioVisualQuality``) for both stages: the real pairs are the loop's
batches ``(video, audio, label)``, the generated ones come from ``pl_module.sample`` in chunks of ``CHUNK``
with their own seeded noise (chunk k with ``seed + k``, drawn by rank ``k % world_size``), asked for the
digits 0..9 in turn. The two classifiers are trained on first use from the data's frames and sounds and
cached (``TalkingDigitsDataModule.frames_datamodule`` / ``audio_datamodule``); a classifier that reads the
run's real samples below ``min_extractor_accuracy`` stops the run (``FeatureSpace.check_accuracy``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import lightning as L
import torch

from vidgen.audio_visual import AudioVisual
from vidgen.callbacks.staged_quality import StagedQualityCallback
from vidgen.metrics.audio_visual import AudioVisualQuality
from vidgen.metrics.feature_spaces import feature_space

log = logging.getLogger(__name__)


class AudioVisualQualityCallback(StagedQualityCallback):
    """Logs ``<split>/<metric>`` of ``AudioVisualQuality`` after the validation and/or test epochs.

    Args:
        stages: ``validate`` (every ``every_n_epochs`` training epochs) and/or ``test``.
        metrics: ``SampleQuality`` metrics of each modality (``fid``, ``kid``, ``is``, ``precision_recall``).
        every_n_epochs: validation epochs between two measurements.
        num_fake: generated pairs; null = as many as real ones.
        seed: seed of the fakes' noise (chunk k uses ``seed + k``) and of the shuffled floor.
        min_extractor_accuracy: the run stops when a classifier reads a smaller share of the real samples
            correctly; null = 0.9 of its accuracy on its own test split; 0 = no check.
        untrained: at test, the same model before training (``vidgen-eval``): its pairs scored the same
            way, logged as ``<key>_untrained``.
    """

    data_kind = "audio_visual"

    def __init__(self, stages: Sequence[str] = ("validate", "test"), metrics: Sequence[str] = ("fid",),
                 every_n_epochs: int = 1, num_fake: int | None = None, seed: int = 4321,
                 min_extractor_accuracy: float | None = None,
                 untrained: L.LightningModule | None = None):  # fmt: skip
        super().__init__(stages, every_n_epochs, num_fake, seed, min_extractor_accuracy, untrained)
        self.metrics = tuple(metrics)
        self.metric: AudioVisualQuality | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if "audio_visual" not in pl_module.test_metrics or self.metric is not None:
            return
        if stage == "fit" and "validate" not in self.stages:
            return
        dm = trainer.datamodule
        train = not trainer.fast_dev_run  # a debug run does not spend minutes training classifiers

        def spaces():
            return (feature_space(dm.frames_datamodule(), train=train),
                    feature_space(dm.audio_datamodule(), train=train))  # fmt: skip

        # one rank trains missing classifiers; the others wait and load them from the cache
        if trainer.is_global_zero:
            frames, sounds = spaces()
        trainer.strategy.barrier("vidgen-av-feature-spaces")
        if not trainer.is_global_zero:
            frames, sounds = spaces()
        if frames is None or sounds is None:
            log.warning("fast_dev_run: audio-visual metrics skipped, the classifiers are not trained yet")
            return
        self.metric = AudioVisualQuality(frames, sounds, self.metrics, self.seed)

    def _real(self, batch: Sequence[torch.Tensor]) -> None:
        self.metric.update(AudioVisual(batch[0], batch[1]), real=True, labels=batch[2])
        self._num_real += len(batch[0])

    def _fakes(self, trainer: L.Trainer, pl_module: L.LightningModule, num: int) -> None:
        for count, noise in self._chunks(trainer, num):
            labels = pl_module.sample_labels(count)  # 0..9 in turn: every digit equally often
            self.metric.update(pl_module.sample(count, generator=noise, labels=labels), real=False,
                               labels=labels)  # fmt: skip

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule, split: str) -> None:
        num = self.num_fake or self._total_real(trainer)
        if num < 2:
            return
        self._fakes(trainer, pl_module, num)
        values = self.metric.compute()
        where = "validation" if split == "val" else "test"
        for space, what in ((self.metric.frame_space, "frames"), (self.metric.audio_space, "sounds")):
            key = f"feature_extractor_accuracy_{space.name}"
            if key in values:
                space.check_accuracy(values[key], int(values[f"n_accuracy_{space.name}"]),
                                     self.min_extractor_accuracy, f"{where} {what}")  # fmt: skip
        for key, value in values.items():
            pl_module.log(f"{split}/{key}", float(value), prog_bar=key.startswith("av_agreement") and
                          not key.endswith(("_real", "_shuffled")))  # fmt: skip
        if split == "test" and self.untrained is not None:
            self._log_untrained(trainer, pl_module, num)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "validate"):
            self._log(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "test"):
            self._log(trainer, pl_module, "test")
