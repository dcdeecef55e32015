"""What vidgen datamodules share: the attributes other code reads, splits, loaders, data errors, and the
bases of the image datasets with an official train/test split and of the video datasets.

Other code relies on this interface (see ``DigitsDataModule``, the first one): class attributes
``data_kind`` (``image``/``video``), ``num_classes`` and ``feature_net`` (the architecture of the domain
feature classifier, ``vidgen.metrics.features``: ``lenet5`` or ``resnet``); attributes ``data_dir``,
``image_size``, ``channels``, ``batch_size``, ``value_range``, ``feature_extractor``; ``dataset_id``
(names the data for caches), ``checksum`` (set by ``setup``) and ``test_set_name`` (what the test split
is, which ``vidgen-eval`` logs with the results). Batches are ``(x, y)`` with ``y`` long class labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidgen.errors import DataError
from vidgen.value_range import check_value_range

# Raw splits as loaders return them: {"train": (uint8 images (N, C, H, W), labels (N,)), "test": ...}.
RawSplits = dict[str, tuple[torch.Tensor, torch.Tensor]]


def check_common_args(image_size: int, channels: int, batch_size: int, value_range: Sequence[float]) -> None:
    """Plain ``ValueError`` for arguments no dataset accepts (the config builder makes it a ConfigError)."""
    if image_size < 8:
        raise ValueError(f"data.image_size must be >= 8, got {image_size}.")
    if channels not in (1, 3):
        raise ValueError(f"data.channels must be 1 (grey) or 3 (RGB), got {channels}.")
    if batch_size < 1:
        raise ValueError(f"data.batch_size must be >= 1, got {batch_size}.")
    check_value_range(value_range, "data.value_range")


def check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"data.{name} must be in (0, 1), got {value}.")


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both held-out fractions in (0, 1) and together less than the whole."""
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"data.val_fraction={val_fraction} + data.test_fraction={test_fraction} must be less than 1."
        )


def seeded_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, held_out)`` indices: ``round(n * fraction)`` of ``range(n)`` held out, seeded."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = max(1, round(n * fraction))
    return order[n_held:].sort().values, order[:n_held].sort().values


def train_val_test_split(
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, torch.Tensor]:
    """Indices of ``range(n)`` for ``train``/``val``/``test``: ``test_fraction`` held out first, then
    ``val_fraction`` of ``n`` from the rest, both seeded by ``seed``."""
    keep, test = seeded_split(n, test_fraction, seed)
    keep2, val = seeded_split(len(keep), val_fraction / (1 - test_fraction), seed)
    return {"train": keep[keep2], "val": keep[val], "test": test}


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


def from_uint8(x: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    """uint8 pixels 0..255 as floats in ``value_range``.

    One multiply-add by ``(hi - lo) / 255``, not ``vidgen.value_range.from_unit(x / 255)``: the two differ
    in the last bit (for 111 of the 256 values into [-1, 1]), and cached features and tests rely on
    these batches staying bit-identical.
    """
    lo, hi = value_range
    return x.float() * ((hi - lo) / 255.0) + lo


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """``(..., C, H, W)`` images with ``channels`` channels: grey repeated to RGB, or RGB to grey
    (ITU-R 601 luma); unchanged when they already have that many."""
    if images.shape[-3] == channels:
        return images
    if channels == 3:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:]).contiguous()
    from torchvision.transforms.v2.functional import rgb_to_grayscale

    return rgb_to_grayscale(images)


class ImageTensorDataset(Dataset):
    """uint8 images ``(N, C, H, W)`` (0..255) and labels, returned as floats scaled to ``value_range``.

    Kept as uint8 (4x smaller than floats, 61 MB for MNIST at 32x32) and scaled per item, which is cheap.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, value_range: Sequence[float]):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N, C, H, W) images and N labels, got {tuple(images.shape)}")
        self.images, self.labels, self.value_range = images, labels.long(), value_range

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return from_uint8(self.images[index], self.value_range), self.labels[index]


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

    @property
    def test_set_name(self) -> str:
        """The test split in a few words, e.g. ``mnist32 test split (10,000)``; sets the data up if needed.
        ``vidgen-eval`` logs it with the results: numbers measured on different test sets must say so."""
        self.setup("test")
        return f"{self.dataset_id} test split ({len(self.splits['test']):,})"

    def _loader(self, split: str, shuffle: bool, sampler: Sampler | None = None) -> DataLoader:
        """``split``'s loader; a ``sampler`` replaces the shuffled order (``shuffle`` still says training)."""
        if not self.splits:
            self.setup("fit")
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            # Full batches only in training: batch-norm statistics of a 3-image batch hurt GANs.
            drop_last=shuffle and len(self.splits[split]) >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_sampler(self) -> Sampler | None:
        """The training loader's order, for data whose items need more than an index (e.g. the epoch of
        sequences made afresh each epoch); None: the index shuffled each epoch. ``splits`` is set up."""
        return None

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader("train", shuffle=True, sampler=self.train_sampler())

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class TrainTestImageDataModule(VidgenDataModule):
    """Labelled images published with a train/test split and read by torchvision (MNIST, CIFAR-10).

    ``test`` is the official test set; ``val`` a seeded ``val_fraction`` of the official training set
    (the rest is ``train``). Images are resized (antialiased bilinear) to ``image_size`` and converted to
    ``channels`` once in ``setup`` and kept as uint8 in memory. Subclasses give ``load`` (reading,
    downloading and checking the files) and ``dataset_id``, and their own defaults of ``channels`` and
    ``feature_extractor``.

    Args:
        data_dir: the folder holding the dataset in torchvision's layout; ``${paths.data_dir}`` by default.
        channels: 1 (grey; RGB is converted, ITU-R 601 luma) or 3 (RGB; grey is repeated).
        feature_extractor: the feature space of the FID metric (``val/fid_<name>``).
        image_size: side of the square images produced.
        batch_size: training and evaluation batch size.
        val_fraction: part of the training set held out for validation.
        split_seed: seed of that split, separate from the run's ``seed``.
        value_range: pixel range; ``[-1, 1]`` for tanh generators (GANs), ``[0, 1]`` for Bernoulli VAEs.
        num_workers: DataLoader workers.
        download: download missing files with torchvision (no effect when the files are there).
    """

    def __init__(
        self,
        data_dir: str,
        channels: int,
        feature_extractor: str,
        image_size: int = 32,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 2,
        download: bool = True,
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        check_fraction("val_fraction", val_fraction)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.download = download

    def load(self) -> tuple[RawSplits, str]:
        """The official ``train`` and ``test`` splits, uint8 ``(N, C, H, W)``, and a checksum of the files."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        if self.download:
            self.load()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw, self.checksum = self.load()

        def images(split: str) -> torch.Tensor:
            return to_channels(resize_uint8(raw[split][0], self.image_size), self.channels)

        train_x, train_y = images("train"), raw["train"][1]
        keep, held = seeded_split(len(train_x), self.val_fraction, self.split_seed)
        self.splits = {
            "train": ImageTensorDataset(train_x[keep], train_y[keep], self.value_range),
            "val": ImageTensorDataset(train_x[held], train_y[held], self.value_range),
            "test": ImageTensorDataset(images("test"), raw["test"][1], self.value_range),
        }


class VideoDataModule(VidgenDataModule):
    """Videos ``(B, T, C, H, W)`` of ``seq_len`` frames for frame prediction and video generation.

    The first ``num_input_frames`` of a sequence are the context, the next ``num_output_frames`` the frames
    to predict (10 + 10 by convention on Moving MNIST). ``val_fraction``/``test_fraction`` and
    ``split_seed`` say how a subclass splits its source (digits or stored sequences) three ways.
    """

    data_kind = "video"

    def __init__(
        self,
        data_dir: str,
        image_size: int,
        channels: int,
        batch_size: int,
        seq_len: int,
        num_input_frames: int,
        num_output_frames: int,
        val_fraction: float,
        test_fraction: float,
        split_seed: int,
        value_range: Sequence[float],
        num_workers: int,
        feature_extractor: str,
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        if num_input_frames < 0 or num_output_frames < 0 or num_input_frames + num_output_frames != seq_len:
            raise ValueError(
                f"data.num_input_frames={num_input_frames} + data.num_output_frames={num_output_frames} "
                f"must equal data.seq_len={seq_len} (e.g. 10 + 10 = 20)."
            )
        check_split_fractions(val_fraction, test_fraction)
        self.seq_len, self.num_input_frames, self.num_output_frames = (
            seq_len,
            num_input_frames,
            num_output_frames,
        )
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed = split_seed
