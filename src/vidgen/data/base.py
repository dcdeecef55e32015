"""What every vidgen datamodule shares: the attributes other code reads, splits, loaders, data errors.

Other code relies on this interface (see ``DigitsDataModule``, the first one): class attributes
``data_kind`` (``image``/``video``), ``num_classes`` and ``feature_net`` (the architecture of the domain
feature classifier, ``vidgen.metrics.features``: ``lenet5`` or ``resnet``); attributes ``data_dir``,
``image_size``, ``channels``, ``batch_size``, ``value_range``, ``feature_extractor``; ``dataset_id``
(names the data for caches) and ``checksum`` (set by ``setup``). Batches are ``(x, y)`` with ``y``
long class labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from vidgen.errors import DataError


def check_common_args(image_size: int, channels: int, batch_size: int, value_range: Sequence[float]) -> None:
    """Plain ``ValueError`` for arguments no dataset accepts (the config builder makes it a ConfigError)."""
    if image_size < 8:
        raise ValueError(f"data.image_size must be >= 8, got {image_size}.")
    if channels not in (1, 3):
        raise ValueError(f"data.channels must be 1 (grey) or 3 (RGB), got {channels}.")
    if batch_size < 1:
        raise ValueError(f"data.batch_size must be >= 1, got {batch_size}.")
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(
            f"data.value_range must be [low, high] with low < high, e.g. [-1, 1], got {value_range}."
        )


def check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"data.{name} must be in (0, 1), got {value}.")


def seeded_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, held_out)`` indices: ``round(n * fraction)`` of ``range(n)`` held out, seeded."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = max(1, round(n * fraction))
    return order[n_held:].sort().values, order[:n_held].sort().values


def data_error(
    dataset: str, folder: Path | str, expected: Iterable[str], problem: str, fix: str
) -> DataError:
    """The one message of a missing/corrupt dataset: what, where searched, which files, and the fix."""
    files = ", ".join(expected)
    return DataError(f"{dataset}: {problem} in {folder} (expected: {files}). Fix: {fix}")


def sha256_of(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


class ImageTensorDataset(Dataset):
    """uint8 images ``(N, C, H, W)`` (0..255) and labels, returned as floats scaled to ``value_range``.

    Kept as uint8 (4x smaller than floats, 61 MB for MNIST at 32x32) and scaled per item, which is cheap.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, value_range: Sequence[float]):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N, C, H, W) images and N labels, got {tuple(images.shape)}")
        self.images, self.labels = images, labels.long()
        lo, hi = value_range
        self.scale, self.offset = (hi - lo) / 255.0, lo

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index].float() * self.scale + self.offset, self.labels[index]


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 ``(N, C, H, W)`` to ``size x size`` (a no-op at that size)."""
    if images.shape[-2:] == (size, size):
        return images
    from torchvision.transforms.v2.functional import resize

    return resize(images, [size, size], antialias=True)


class VidgenDataModule(L.LightningDataModule):
    """Holds the common attributes and builds the loaders of ``self.splits`` (``train``, ``val``, ``test``).

    Subclasses fill ``self.splits`` and ``self.checksum`` in ``setup`` and define ``dataset_id``.
    """

    data_kind = "image"
    num_classes = 10
    feature_net = "lenet5"

    def __init__(
        self,
        data_dir: str,
        image_size: int,
        channels: int,
        batch_size: int,
        value_range: Sequence[float],
        num_workers: int,
        feature_extractor: str,
    ):
        super().__init__()
        check_common_args(image_size, channels, batch_size, value_range)
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}.")
        self.data_dir = str(data_dir)
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.num_workers = num_workers
        self.feature_extractor = feature_extractor
        self.checksum: str | None = None
        self.splits: dict[str, Dataset] = {}

    @property
    def dataset_id(self) -> str:
        raise NotImplementedError

    def split_sizes(self) -> dict[str, int]:
        self.setup("fit")
        return {name: len(ds) for name, ds in self.splits.items()}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if not self.splits:
            self.setup("fit")
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            # Full batches only in training: batch-norm statistics of a 3-image batch hurt GANs.
            drop_last=shuffle and len(self.splits[split]) >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
