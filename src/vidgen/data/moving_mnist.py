"""Moving MNIST: digits bouncing in a frame (Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning
of Video Representations using LSTMs", ICML 2015, Section 3), in two datamodules:

- ``MovingMNISTDataModule`` (``data=moving_mnist``): sequences generated on the fly from MNIST digits by
  the paper's generator (``vidgen.data.bouncing``), reproducible per (``split_seed``, split, index).
- ``MovingMNISTFileDataModule`` (``data=moving_mnist_file``): the standard test set
  ``mnist_test_seq.npy`` (10,000 sequences x 20 frames of 64x64), downloaded and read by
  ``torchvision.datasets.MovingMNIST``, md5-checked, split into train/val/test with ``split_seed``.

Batches are ``(x, y)``: ``x`` is ``(B, T, C, H, W)`` with ``T = seq_len``, the first
``num_input_frames`` being the context and the next ``num_output_frames`` the frames to predict (10 + 10
by convention); ``y`` is the class of the first digit, or -1 when unknown (the file).
``MovingDigitsDataModule`` (``vidgen.data.moving_digits``, also importable from here) runs the same
generator on scikit-learn's digits: the embedded, offline video dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from vidgen.data.base import (
    RawSplits,
    VideoDataModule,
    data_error,
    from_uint8,
    resize_uint8,
    seeded_split,
    to_channels,
    train_val_test_split,
)
from vidgen.data.mnist import load_mnist
from vidgen.data.moving_digits import MovingDigitsDataModule
from vidgen.errors import ConfigError

# MovingDigitsDataModule is re-exported: configs and code written before the split import it from here.
__all__ = [
    "MovingDigitsDataModule",
    "MovingMNISTDataModule",
    "MovingMNISTFileDataModule",
    "VideoTensorDataset",
]


class MovingMNISTDataModule(MovingDigitsDataModule):
    """Moving MNIST generated from MNIST's digits (``data=moving_mnist``).

    Train and val sequences use MNIST's training digits (val those of a seeded ``val_fraction`` of them),
    test sequences MNIST's test digits (so ``test_fraction`` is not used). Defaults are the paper's: two
    28x28 digits in 64x64 frames.

    Args (beyond ``MovingDigitsDataModule``'s, whose defaults differ where named here):
        source: ``generate``, the only value; kept so that the former ``data.source=file`` names its
            replacement, ``data=moving_mnist_file``.
        download: download missing MNIST files with torchvision.
    """

    dataset_name = "moving_mnist"

    def __init__(
        self,
        data_dir: str = "data",
        *,
        source: str = "generate",
        image_size: int = 64,
        digit_size: int = 28,
        num_train: int = 10000,
        num_val: int = 1000,
        num_test: int = 1000,
        num_workers: int = 2,
        download: bool = True,
        feature_extractor: str = "mnist",
        **kwargs: Any,
    ):
        if source != "generate":
            raise ConfigError(
                f"data.source={source!r}: data=moving_mnist generates its sequences from MNIST digits "
                "(data.source=generate, the only value it takes); the standard mnist_test_seq.npy is now "
                "its own option. Fix: use data=moving_mnist_file instead of data.source=file."
            )
        super().__init__(
            data_dir,
            image_size=image_size,
            digit_size=digit_size,
            num_train=num_train,
            num_val=num_val,
            num_test=num_test,
            num_workers=num_workers,
            feature_extractor=feature_extractor,
            **kwargs,
        )
        self.source = source
        self.download = download

    def digit_pools(self) -> tuple[RawSplits, str]:
        raw, checksum = load_mnist(self.data_dir, self.download)
        x, y = raw["train"][0].unsqueeze(1), raw["train"][1]
        keep, val = seeded_split(len(x), self.val_fraction, self.split_seed)
        pools = {"train": (x[keep], y[keep]), "val": (x[val], y[val])}
        pools["test"] = (raw["test"][0].unsqueeze(1), raw["test"][1])
        return pools, checksum

    def prepare_data(self) -> None:
        if self.download:
            self.digit_pools()


class VideoTensorDataset(Dataset):
    """Videos ``indices`` of uint8 ``(N, T, 1, h, w)`` as ``(T, C, H, W)`` floats in value_range, label -1.

    Indexes into the shared tensor rather than copying each split (the file is 820 MB).
    """

    def __init__(
        self,
        videos: torch.Tensor,
        indices: torch.Tensor,
        image_size: int,
        channels: int,
        value_range: Sequence[float],
    ):
        self.videos, self.indices, self.image_size = videos, indices, image_size
        self.channels, self.value_range = channels, value_range

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = from_uint8(resize_uint8(self.videos[int(self.indices[index])], self.image_size), self.value_range)
        return to_channels(x, self.channels), torch.tensor(-1, dtype=torch.long)


class MovingMNISTFileDataModule(VideoDataModule):
    """Moving MNIST from the standard file ``mnist_test_seq.npy`` (``data=moving_mnist_file``).

    Reads ``<data_dir>/MovingMNIST/mnist_test_seq.npy`` (checked against its published md5), keeps the
    first ``seq_len`` frames and splits its 10,000 sequences by ``val_fraction``/``test_fraction``;
    frames are resized if ``image_size != 64``. Labels are -1 (the file has none).

    Args:
        data_dir: folder holding ``MovingMNIST/mnist_test_seq.npy`` (torchvision's layout).
        image_size: side of the square frames (64 = original).
        channels: 1 (grey) or 3 (grey repeated).
        batch_size: training and evaluation batch size.
        seq_len: frames per sequence, at most the file's 20.
        num_input_frames, num_output_frames: context and target frames; their sum is ``seq_len``.
        val_fraction, test_fraction: parts of the file's sequences held out for val and test.
        split_seed: seed of that split.
        value_range: pixel range of the frames.
        num_workers: DataLoader workers.
        download: download the 820 MB file with torchvision when it is missing.
        feature_extractor: the feature space of per-frame FID-type metrics.
    """

    # md5 of mnist_test_seq.npy, the constant torchvision.datasets.MovingMNIST.download checks.
    file_md5: str | None = "be083ec986bfe91a449d63653c411eb2"

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 64,
        channels: int = 1,
        batch_size: int = 16,
        seq_len: int = 20,
        num_input_frames: int = 10,
        num_output_frames: int = 10,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 2,
        download: bool = True,
        feature_extractor: str = "mnist",
    ):
        if not 1 <= seq_len <= 20:
            raise ValueError(
                f"data.seq_len must be in 1..20 with data=moving_mnist_file (the file has 20 frames), "
                f"got {seq_len}."
            )
        super().__init__(
            data_dir, image_size, channels, batch_size, seq_len, num_input_frames, num_output_frames,
            val_fraction, test_fraction, split_seed, value_range, num_workers, feature_extractor,
        )  # fmt: skip
        self.download = download

    @property
    def dataset_id(self) -> str:
        return f"moving_mnist_file{self.image_size}_t{self.seq_len}"

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "MovingMNIST" / "mnist_test_seq.npy"

    def prepare_data(self) -> None:
        if self.download and not self.path.exists():
            self.load_file()  # downloads; setup loads it (once per process) afterwards

    def load_file(self) -> torch.Tensor:
        """uint8 ``(N, 20, 1, 64, 64)`` from ``mnist_test_seq.npy``, checked; sets ``checksum``."""
        from torchvision.datasets import MovingMNIST
        from torchvision.datasets.utils import calculate_md5

        path, folder = self.path, self.path.parent
        expected = ["mnist_test_seq.npy (10,000 x 20 frames x 64 x 64, uint8, 820 MB)"]
        fix = (
            "set VIDGEN_DATA_DIR (or data.data_dir) to a folder holding MovingMNIST/mnist_test_seq.npy, or "
            "set data.download=true, or use data=moving_mnist (generated from MNIST digits, no file needed)."
        )
        if self.download and not path.exists():
            try:
                MovingMNIST(self.data_dir, download=True)
            except Exception as e:
                raise data_error(
                    "Moving MNIST",
                    folder,
                    expected,
                    f"the file is missing and the download failed ({e.__class__.__name__}: "
                    f"{str(e).splitlines()[0][:160]})",
                    fix,
                ) from e
        if not path.exists():
            raise data_error(
                "Moving MNIST", folder, expected, "the file is missing (data.download=false)", fix
            )
        md5 = calculate_md5(str(path))
        if self.file_md5 is not None and md5 != self.file_md5:
            raise data_error(
                "Moving MNIST",
                folder,
                expected,
                f"mnist_test_seq.npy has md5 {md5}, not the published {self.file_md5} (truncated or corrupt)",
                f"delete {path} and run again with data.download=true, or copy an intact file there.",
            )
        try:
            videos = MovingMNIST(self.data_dir, download=False).data
        except Exception as e:  # np.load: ValueError on a short file, UnpicklingError on a non-npy
            raise data_error(
                "Moving MNIST",
                folder,
                expected,
                f"mnist_test_seq.npy does not load ({e.__class__.__name__}: {str(e)[:160]})",
                f"replace {path} with an intact copy.",
            ) from e
        if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[1:] != (20, 1, 64, 64):
            raise data_error(
                "Moving MNIST",
                folder,
                expected,
                f"mnist_test_seq.npy holds {videos.dtype} {tuple(videos.shape)} frames, not uint8 "
                "(20, N, 64, 64) as published",
                f"replace {path} with an intact copy.",
            )
        self.checksum = hashlib.sha256(f"{md5}{self.seq_len}{self.split_seed}".encode()).hexdigest()
        return videos

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        videos = self.load_file()[:, : self.seq_len]
        parts = train_val_test_split(len(videos), self.val_fraction, self.test_fraction, self.split_seed)
        self.splits = {
            name: VideoTensorDataset(videos, idx, self.image_size, self.channels, self.value_range)
            for name, idx in parts.items()
        }
