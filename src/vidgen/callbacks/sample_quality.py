"""Sample quality of a generator during validation (``val/fid_<space>``) and test (the whole set).

One callback, one metric (``vidgen.metrics.sample_quality.SampleQuality``) for both: the real samples
are the batches of the loop (validation or test split; each DDP rank sees its shard, the metric gathers
them), the generated ones come from ``pl_module.sample`` in chunks of ``staged_quality.CHUNK`` drawn
with their own seeded noise (chunk k with ``seed + k``), spread over the ranks, so the set of fakes is the
same on one process or many. Models whose ``test_metrics`` do not include ``sample_quality`` (frame
predictors) are left alone. Clips are measured in the C3D space (``fd_c3d``, ``fid_frames``), images in
the data's classifier space or Inception-v3 (``vidgen.metrics.feature_spaces``).

A conditional model's fakes are drawn for classes 0..K-1 in turn and scored by the same space's reading of
them (``<split>/conditional_accuracy_<space>``: the requested class seen; chance is 1/K).

Every value is logged beside the space's accuracy measured on the same real samples with their labels
(``<split>/feature_extractor_accuracy_<space>``, over ``n_accuracy_<space>`` samples; at test also the
accuracies cached when the network was trained, ``feature_extractor_cached_*``), and a space that reads
them below ``min_extractor_accuracy`` stops the run with one ``FeatureExtractorError``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import lightning as L
import torch

from vidgen.callbacks.staged_quality import StagedQualityCallback
from vidgen.metrics.feature_spaces import FeatureSpace, feature_space
from vidgen.metrics.sample_quality import IMAGE_METRICS, VIDEO_METRICS, SampleQuality

log = logging.getLogger(__name__)

PAPER_N = 10_000  # the sample size of the FID/IS numbers papers report (MNIST and CIFAR-10 test sets)


class SampleQualityCallback(StagedQualityCallback):
    """Logs ``<split>/<metric>_<space>`` after the validation and/or test epochs.

    Args:
        stages: ``validate`` (every ``every_n_epochs`` training epochs, with the validation images)
            and/or ``test`` (after ``trainer.test``, with the test images).
        metrics: image metrics of ``vidgen.metrics.sample_quality.IMAGE_METRICS`` (clips always get
            ``fd_c3d`` and ``fid_frames``).
        every_n_epochs: validation epochs between two measurements.
        feature_extractor: null = the data's own trained network; ``inception`` = torchmetrics' FID
            Inception-v3 from ``inception_weights`` (a local file; nothing is downloaded).
        inception_weights: path of the FID Inception weights file.
        num_fake: generated samples; null = as many as real ones.
        kid_subset_size, pr_k, is_splits: options of KID, precision/recall and IS.
        real_floor: at test, also the FID of as many training images as test images against the test
            images (``fid_<space>_real_floor``): the best a model can hope for at this sample size.
        seed: seed of the fakes' noise (chunk k uses ``seed + k``).
        min_extractor_accuracy: the run stops when the space classifies a smaller share of the real
            samples (validation or test split) correctly; null = 0.9 of the accuracy it scored on its own
            test split when trained (``feature_spaces.TRAINED_ACCURACY_SHARE``); 0 = no check. Spaces
            whose logits are not the data's classes (Inception-v3; the C3D of unlabelled clips) are not
            measured.
        untrained: at test, the same model before training (``vidgen-eval`` passes it when
            ``untrained_baseline=true``): its samples are scored against the same real features and
            logged as ``<key>_untrained``, the trivial baseline a trained model must beat.
    """

    def __init__(
        self,
        stages: Sequence[str] = ("test",),
        metrics: Sequence[str] = IMAGE_METRICS,
        every_n_epochs: int = 1,
        feature_extractor: str | None = None,
        inception_weights: str | None = None,
        num_fake: int | None = None,
        kid_subset_size: int = 100,
        pr_k: int = 3,
        is_splits: int = 10,
        real_floor: bool = False,
        seed: int = 4321,
        min_extractor_accuracy: float | None = None,
        untrained: L.LightningModule | None = None,
    ):
        super().__init__(stages, every_n_epochs, num_fake, seed, min_extractor_accuracy, untrained)
        if inception_weights and feature_extractor != "inception":
            log.warning(
                f"metrics.inception_weights={inception_weights} is ignored: the metrics use the data's own "
                "feature network unless metrics.feature_extractor=inception"
            )
        self.metrics = tuple(metrics)
        self.feature_extractor, self.inception_weights = feature_extractor, inception_weights
        self.kid_subset_size, self.pr_k, self.is_splits = kid_subset_size, pr_k, is_splits
        self.real_floor = real_floor
        self.space: FeatureSpace | None = None
        self.metric: SampleQuality | None = None
        self._empty: torch.Tensor | None = None

    # -- set-up: the feature space is made (trained on first use) before any loop starts ----------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if "sample_quality" not in pl_module.test_metrics or self.space is not None:
            return
        if stage == "fit" and "validate" not in self.stages:
            return
        datamodule = trainer.datamodule
        # A debug run (fast_dev_run) does not spend minutes training a feature network it has not got.
        train = not trainer.fast_dev_run
        # One rank trains a missing feature net; the others wait and load it from the cache.
        if trainer.is_global_zero:
            self.space = feature_space(datamodule, self.feature_extractor, self.inception_weights, train)
        trainer.strategy.barrier("vidgen-feature-space")
        if not trainer.is_global_zero:
            self.space = feature_space(datamodule, self.feature_extractor, self.inception_weights, train)
        if self.space is None:
            log.warning(
                "fast_dev_run: sample-quality metrics skipped, the data's feature network is not trained yet "
                "(train it once with `vidgen-features data=<this data>`, or run without fast_dev_run)"
            )
            return
        video = pl_module.data_kind == "video"
        metrics = VIDEO_METRICS if video else self.metrics
        self.metric = SampleQuality(self.space, metrics, self.kid_subset_size, self.pr_k, self.is_splits)

    # -- real samples: the loop's batches (the stage hooks are StagedQualityCallback's) ------------------
    def _real(self, batch: tuple[torch.Tensor, ...]) -> None:
        labels = batch[1] if len(batch) > 1 else None
        self.metric.update(batch[0], real=True, labels=labels)
        self._num_real += len(batch[0])
        self._empty = batch[0][:0]

    # -- generated samples and the values ----------------------------------------------------------------
    def _fakes(self, trainer: L.Trainer, pl_module: L.LightningModule, num: int) -> None:
        """Chunk k of the ``num`` fakes (seed ``seed + k``) is drawn by rank ``k % world_size``."""
        drew = False
        for count, noise in self._chunks(trainer, num):
            # a conditional model's classes, as sample() draws them by default (0..K-1 cycled), given
            # explicitly so the metric can check that the space sees the class that was asked for
            labels = None if pl_module.num_classes is None else pl_module.sample_labels(count)
            self.metric.update(pl_module.sample(count, generator=noise, labels=labels), real=False,
                               labels=labels)  # fmt: skip
            drew = True
        if not drew:
            self.metric.update(self._empty, real=False)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer, "validate"):
            return
        num = self.num_fake or self._total_real(trainer)
        if num < 2:
            return
        self._fakes(trainer, pl_module, num)
        values = self.metric.compute()
        self._check_accuracy(values, "validation", pl_module.data_kind)
        for key, value in values.items():
            pl_module.log(f"val/{key}", value, prog_bar=key.startswith("fid_"))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer, "test"):
            return
        total = self._total_real(trainer)
        self._fakes(trainer, pl_module, self.num_fake or total)
        if self.real_floor and pl_module.data_kind in ("image", "audio"):
            # as many training images as test images, a seeded draw (the same in every run); one rank
            # encodes them, the others add no rows
            reference = self._training_images(trainer, total) if trainer.is_global_zero else self._empty
            self.metric.update(reference, real=True, reference=True)
        values = {**self.metric.compute(), **self.space.accuracies()}
        self._check_accuracy(values, "test", pl_module.data_kind)
        n = min(values[f"n_real_{self.space.name}"], values[f"n_fake_{self.space.name}"])
        if n < PAPER_N:
            log.warning(
                f"sample-quality metrics on {n:.0f} samples (papers use {PAPER_N:,} or more): "
                "FID and KID are biased by the sample size; compare them only with runs at the same N"
            )
        for key, value in values.items():
            pl_module.log(f"test/{key}", float(value))
        if self.untrained is not None:
            self._log_untrained(trainer, pl_module, int(values[f"n_fake_{self.space.name}"]))

    def _check_accuracy(self, values: dict[str, float], split: str, data_kind: str) -> None:
        """``FeatureSpace.check_accuracy`` on the accuracy measured on this split's real samples."""
        name = self.space.name
        if f"feature_extractor_accuracy_{name}" not in values:
            return
        where = f"{split} {'clips' if data_kind == 'video' else 'images'}"
        measured, num = values[f"feature_extractor_accuracy_{name}"], int(values[f"n_accuracy_{name}"])
        self.space.check_accuracy(measured, num, self.min_extractor_accuracy, where)

    def _training_images(self, trainer: L.Trainer, num: int) -> torch.Tensor:
        train = trainer.datamodule.splits["train"]
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))
        return torch.stack([train[int(i)][0] for i in order[:num]])
