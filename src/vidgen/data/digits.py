"""The handwritten digits that ship inside scikit-learn: vidgen's embedded, offline default dataset.

1,797 grey-scale 8x8 images with 17 intensity levels (0..16), ten classes; the test part of the UCI
"Optical Recognition of Handwritten Digits" data (Alpaydin & Kaynak, 1998). They live inside the
scikit-learn wheel, so this datamodule needs no download and ``make train`` runs on any machine.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from vidgen.data.base import VidgenDataModule, check_split_fractions, to_channels
from vidgen.value_range import from_unit


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 8, 8), labels (N,))`` as ``sklearn.datasets.load_digits`` returns them.

    Read straight from the CSV inside the scikit-learn wheel, as ``load_digits`` does, without importing
    scikit-learn (which takes seconds at start-up, mostly scipy/joblib); ``load_digits`` is the fallback
    for a wheel laid out differently.
    """
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec else []
    csv = next((Path(f, "datasets", "data", "digits.csv.gz") for f in folders), None)
    if csv is None or not csv.is_file():
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(csv, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor, str]:
    """All 1,797 digits as ``(N, 1, 8, 8)`` floats in [0, 1], labels ``(N,)``, and a checksum of both."""
    images, target = _read_digits()
    images = np.ascontiguousarray(images, dtype=np.float32)
    checksum = hashlib.sha256(images.tobytes() + target.astype(np.int64).tobytes()).hexdigest()
    x = torch.from_numpy(images / 16.0).unsqueeze(1)
    y = torch.from_numpy(target.astype(np.int64))
    return x, y, checksum


class DigitsDataModule(VidgenDataModule):
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
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        check_split_fractions(val_fraction, test_fraction)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed

    @property
    def dataset_id(self) -> str:
        """Names this data for caches of things derived from it (feature classifiers)."""
        return f"digits{self.image_size}"

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y, self.checksum = load_digits_tensors()
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = to_channels(from_unit(x.clamp(0.0, 1.0), self.value_range), self.channels)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = round(len(x) * self.val_fraction)
        n_test = round(len(x) * self.test_fraction)
        parts = {
            "val": order[:n_val],
            "test": order[n_val : n_val + n_test],
            "train": order[n_val + n_test :],
        }
        self.splits = {name: TensorDataset(x[idx], y[idx]) for name, idx in parts.items()}
