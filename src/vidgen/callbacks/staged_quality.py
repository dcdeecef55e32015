"""What the sample-quality callbacks share: one metric fed the loop's real batches and the model's seeded
fakes, measured after validation (every ``every_n_epochs`` epochs) and/or after test.

``SampleQualityCallback`` (images, clips, sounds) and ``AudioVisualQualityCallback`` (clips with sound)
differ in what a real batch holds, how fakes are scored and what they log; the stages, the counting of
real samples across DDP ranks, the seeded chunks of fakes (chunk k with seed ``seed + k``, drawn by rank
``k % world_size``, so the set of fakes is the same on one process or many) and the untrained baseline
are here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import torch

CHUNK = 256  # samples per call of pl_module.sample; also the unit of work a DDP rank takes


class StagedQualityCallback(L.Callback):
    """Base of the sample-quality callbacks (module docstring).

    Subclasses build ``self.metric`` (a torchmetrics ``Metric`` with ``reset_fakes``) in ``setup`` and
    implement ``_real(batch)`` and ``_fakes(trainer, pl_module, num)``; they measure in
    ``on_validation_epoch_end`` / ``on_test_epoch_end`` when ``_active`` says so.

    Args:
        stages: ``validate`` and/or ``test``.
        every_n_epochs: validation epochs between two measurements.
        num_fake: generated samples; null = as many as real ones.
        seed: seed of the fakes' noise (chunk k uses ``seed + k``).
        min_extractor_accuracy: the run stops when a classifier reads a smaller share of the real samples
            correctly; null = 0.9 of its accuracy on its own test split; 0 = no check.
        untrained: at test, the same model before training (``vidgen-eval`` passes it when
            ``untrained_baseline=true``): its samples are scored against the same real samples and
            logged as ``<key>_untrained``.
    """

    def __init__(self, stages: Sequence[str], every_n_epochs: int, num_fake: int | None, seed: int,
                 min_extractor_accuracy: float | None,
                 untrained: L.LightningModule | None = None):  # fmt: skip
        super().__init__()
        unknown = set(stages) - {"validate", "test"}
        if unknown:
            raise ValueError(f"stages must be among validate, test; got {sorted(unknown)}.")
        self.stages, self.every_n_epochs = tuple(stages), every_n_epochs
        self.num_fake, self.seed, self.min_extractor_accuracy = num_fake, seed, min_extractor_accuracy
        self.untrained = untrained
        self.metric: Any = None
        self._num_real = 0

    def _active(self, trainer: L.Trainer, stage: str) -> bool:
        if self.metric is None or stage not in self.stages:
            return False
        if stage == "validate":
            return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        return True

    # -- real samples: the loop's batches --------------------------------------------------------------
    def _start(self, pl_module: L.LightningModule) -> None:
        self.metric.to(pl_module.device).reset()
        self._num_real = 0

    def _real(self, batch: Sequence[torch.Tensor]) -> None:
        raise NotImplementedError

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "validate"):
            self._start(pl_module)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._active(trainer, "validate"):
            self._real(batch)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "test"):
            self._start(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._active(trainer, "test"):
            self._real(batch)

    def _total_real(self, trainer: L.Trainer) -> int:
        """Real samples seen by all ranks together."""
        total = torch.tensor(float(self._num_real))
        return int(trainer.strategy.reduce(total, reduce_op="sum").item())

    # -- generated samples -------------------------------------------------------------------------------
    def _chunks(self, trainer: L.Trainer, num: int) -> Iterator[tuple[int, torch.Generator]]:
        """``(count, noise)`` of each chunk of the ``num`` fakes this rank draws."""
        for k, start in enumerate(range(0, num, CHUNK)):
            if k % trainer.world_size == trainer.global_rank:
                yield min(CHUNK, num - start), torch.Generator().manual_seed(self.seed + k)

    def _fakes(self, trainer: L.Trainer, pl_module: L.LightningModule, num: int) -> None:
        raise NotImplementedError

    def _log_untrained(self, trainer: L.Trainer, pl_module: L.LightningModule, num: int) -> None:
        """The untrained model's sample metrics, the same N and seeds as the trained model's, logged as
        ``test/<key>_untrained``: the sample metrics only, not what the real samples alone decide (counts,
        the classifiers' accuracies, the real floor, real and shuffled pairs)."""
        self.metric.reset_fakes()
        self.untrained.to(pl_module.device).eval()
        self._fakes(trainer, self.untrained, num)
        real_only = ("real_floor", "_real", "_shuffled")
        for key, value in self.metric.compute().items():
            if key.startswith(("n_", "feature_extractor_")) or key.endswith(real_only):
                continue
            pl_module.log(f"test/{key}_untrained", float(value))
