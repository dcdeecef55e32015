"""The handwritten digits that ship inside scikit-learn: vidgen's embedded, offline default dataset.

1,797 grey-scale 8x8 images with 17 intensity levels (0..16), ten classes; the test part of the UCI
"Optical Recognition of Handwritten Digits" data (Alpaydin & Kaynak, 1998). They live inside the
scikit-learn wheel, so this datamodule needs no download and ``make train`` runs on any machine.
"""

from __future__ import annotations

import hashlib

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor, str]:
    """All 1,797 digits as ``(N, 1, 8, 8)`` floats in [0, 1], labels ``(N,)``, and a checksum of both."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn costs ~1 s at start-up

    bunch = load_digits()
    images = np.ascontiguousarray(bunch.images, dtype=np.float32)
    checksum = hashlib.sha256(images.tobytes() + bunch.target.astype(np.int64).tobytes()).hexdigest()
    x = torch.from_numpy(images / 16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return x, y, checksum


class DigitsDataModule(L.LightningDataModule):
    """scikit-learn's digits, upsampled to ``image_size`` and split train/val/test with a fixed seed.

    Args:
        data_dir: where derived artefacts (e.g. the cached FID feature classifier) are stored.
        image_size: side of the square images produced (bilinear upsampling from 8x8).
        channels: 1 (grey) or 3 (grey repeated, for nets built for RGB).
        batch_size: training and evaluation batch size.
        val_fraction, test_fraction: parts of the 1,797 images held out for validation and test.
        split_seed: seed of the split, separate from the run's ``seed`` so that every run (whatever its
            seed) is validated on the same images and their metrics are comparable.
        value_range: pixel range of the batches; ``[-1, 1]`` for tanh generators, ``[0, 1]`` for
            Bernoulli likelihoods.
        num_workers: DataLoader workers; 0 is fastest here since the tensors are already in memory.
        feature_extractor: the feature space of the FID metric for this data (``val/fid_<name>``).
    """

    data_kind = "image"
    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: tuple[float, float] = (-1.0, 1.0),
        num_workers: int = 0,
        feature_extractor: str = "digits",
    ):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3 for grey-scale digits, got {channels}.")
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8 (the digits are 8x8), got {image_size}.")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError(
                f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in (0, 1) "
                "and sum to less than 1."
            )
        self.data_dir = data_dir
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.value_range = tuple(value_range)
        self.num_workers = num_workers
        self.feature_extractor = feature_extractor
        self.checksum: str | None = None
        self.splits: dict[str, TensorDataset] = {}

    @property
    def dataset_id(self) -> str:
        """Names this data for caches of things derived from it (feature classifiers)."""
        return f"digits{self.image_size}"

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y, self.checksum = load_digits_tensors()
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x.clamp(0.0, 1.0)
        lo, hi = self.value_range
        x = x * (hi - lo) + lo
        if self.channels == 3:
            x = x.repeat(1, 3, 1, 1)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = round(len(x) * self.val_fraction)
        n_test = round(len(x) * self.test_fraction)
        parts = {
            "val": order[:n_val],
            "test": order[n_val : n_val + n_test],
            "train": order[n_val + n_test :],
        }
        self.splits = {name: TensorDataset(x[idx], y[idx]) for name, idx in parts.items()}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            # Full batches only in training: batch-norm statistics of a 3-image batch hurt GANs.
            drop_last=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
