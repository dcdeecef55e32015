"""Moving MNIST: digits bouncing in a frame (Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning
of Video Representations using LSTMs", ICML 2015, Section 3), in two datamodules:

- ``MovingMNISTDataModule`` (``data=moving_mnist``): OpenSTL's protocol (Tan et al. 2023, after
  Srivastava et al.). Training sequences are generated afresh each epoch from MNIST's training digits by
  the paper's generator (``vidgen.data.bouncing``): ``num_train`` per epoch, sequence ``i`` of epoch ``e``
  reproducible from (``split_seed``, ``e``, ``i``) alone. The epoch travels with each index from the
  training loader's ``EpochSampler``, whose epoch Lightning sets (``set_epoch``) at every epoch start, so
  DataLoader workers, persistent or not, and DDP ranks need no state of their own (``train_sequences=fixed``
  keeps one fixed set instead). The test set is the standard ``mnist_test_seq.npy`` when it is in
  ``<data_dir>/MovingMNIST/`` (``test_set=auto``), else 10,000 sequences generated from MNIST's test
  digits, each made when read (sequence ``i`` depends on ``split_seed`` and ``i`` alone); ``test_set_name``
  says which one a result used, and ``vidgen-eval`` logs it.
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
import logging
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

log = logging.getLogger(__name__)

# MovingDigitsDataModule is re-exported: configs and code written before the split import it from here.
__all__ = [
    "MovingDigitsDataModule",
    "MovingMNISTDataModule",
    "MovingMNISTFileDataModule",
    "VideoTensorDataset",
    "load_mnist_test_seq",
    "mnist_test_seq_path",
]

# Where torchvision.datasets.MovingMNIST downloads the file from (named when it is missing).
MNIST_TEST_SEQ_URL = "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy"
FILE_FRAMES = 20
TEST_SETS = ("auto", "file", "generated")


def mnist_test_seq_path(data_dir: str | Path) -> Path:
    """``<data_dir>/MovingMNIST/mnist_test_seq.npy``: torchvision's layout of the standard file."""
    return Path(data_dir) / "MovingMNIST" / "mnist_test_seq.npy"


def load_mnist_test_seq(
    data_dir: str, download: bool, expected_md5: str | None, fix: str
) -> tuple[torch.Tensor, str]:
    """uint8 ``(N, 20, 1, 64, 64)`` from ``mnist_test_seq.npy`` (stored ``(20, N, 64, 64)``; read by
    ``torchvision.datasets.MovingMNIST``, which downloads it when ``download`` and missing) and its md5.

    Checked against ``expected_md5`` (None: not checked) and the published shape; every failure is one
    ``DataError`` naming the folder and the fix (``fix``: how to get the file, when it is missing).
    """
    from torchvision.datasets import MovingMNIST
    from torchvision.datasets.utils import calculate_md5

    path = mnist_test_seq_path(data_dir)
    folder = path.parent
    expected = ["mnist_test_seq.npy (10,000 x 20 frames x 64 x 64, uint8, 820 MB)"]
    if download and not path.exists():
        try:
            MovingMNIST(data_dir, download=True)
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
        raise data_error("Moving MNIST", folder, expected, "the file is missing (data.download=false)", fix)
    md5 = calculate_md5(str(path))
    if expected_md5 is not None and md5 != expected_md5:
        raise data_error(
            "Moving MNIST",
            folder,
            expected,
            f"mnist_test_seq.npy has md5 {md5}, not the published {expected_md5} (truncated or corrupt)",
            f"delete {path} and run again with data.download=true, or copy an intact file there.",
        )
    try:
        videos = MovingMNIST(data_dir, download=False).data
    except Exception as e:  # np.load: ValueError on a short file, UnpicklingError on a non-npy
        raise data_error(
            "Moving MNIST",
            folder,
            expected,
            f"mnist_test_seq.npy does not load ({e.__class__.__name__}: {str(e)[:160]})",
            f"replace {path} with an intact copy.",
        ) from e
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[1:] != (FILE_FRAMES, 1, 64, 64):
        raise data_error(
            "Moving MNIST",
            folder,
            expected,
            f"mnist_test_seq.npy holds {videos.dtype} {tuple(videos.shape)} frames, not uint8 "
            "(20, N, 64, 64) as published",
            f"replace {path} with an intact copy.",
        )
    return videos, md5


class MovingMNISTDataModule(MovingDigitsDataModule):
    """Moving MNIST generated from MNIST's digits (``data=moving_mnist``), tested as OpenSTL tests.

    Train and val sequences use MNIST's training digits (val those of a seeded ``val_fraction`` of them);
    training sequences are new each epoch (``train_sequences=fresh``), val's 1,000 fixed. The test set is
    ``mnist_test_seq.npy`` or 10,000 fixed sequences of MNIST's test digits (``test_set``; so
    ``test_fraction`` is not used). Defaults are the paper's: two 28x28 digits in 64x64 frames, moving 0.1
    of the free range per frame.

    Args (beyond ``MovingDigitsDataModule``'s, whose defaults differ where named here):
        source: ``generate``, the only value; kept so that the former ``data.source=file`` names its
            replacement, ``data=moving_mnist_file``.
        test_set: ``auto`` (the file when it is at ``<data_dir>/MovingMNIST/mnist_test_seq.npy`` and the
            sequences are the file's kind: 2 digits of 28/64 of the frame, step 0.1, ``seq_len <= 20``;
            else generated), ``file`` (the file, all its sequences, whatever ``num_test`` says) or
            ``generated`` (``num_test`` sequences of MNIST's test digits).
        num_test: sequences of the generated test set.
        train_sequences: ``fresh`` (OpenSTL's: ``num_train`` new sequences each epoch) or ``fixed``.
        download: download missing MNIST files with torchvision, and ``mnist_test_seq.npy`` (820 MB) with
            ``test_set=file``.
    """

    dataset_name = "moving_mnist"

    def __init__(
        self,
        data_dir: str = "data",
        *,
        source: str = "generate",
        test_set: str = "auto",
        image_size: int = 64,
        digit_size: int = 28,
        num_train: int = 10000,
        num_val: int = 1000,
        num_test: int = 10000,
        num_workers: int = 2,
        download: bool = True,
        feature_extractor: str = "mnist",
        train_sequences: str = "fresh",
        **kwargs: Any,
    ):
        if source != "generate":
            raise ConfigError(
                f"data.source={source!r}: data=moving_mnist generates its sequences from MNIST digits "
                "(data.source=generate, the only value it takes); the standard mnist_test_seq.npy is now "
                "its own option. Fix: use data=moving_mnist_file instead of data.source=file."
            )
        if test_set not in TEST_SETS:
            raise ValueError(
                f"data.test_set must be auto (mnist_test_seq.npy when present, else generated), file or "
                f"generated, got {test_set!r}."
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
            train_sequences=train_sequences,
            **kwargs,
        )
        if test_set == "file" and self.seq_len > FILE_FRAMES:
            raise ValueError(
                f"data.seq_len={self.seq_len} but mnist_test_seq.npy (data.test_set=file) has {FILE_FRAMES} "
                "frames per sequence. Fix: data.seq_len<=20, or data.test_set=generated."
            )
        self.source = source
        self.test_set = test_set
        self.download = download
        # resolved by setup: whether the test split is mnist_test_seq.npy
        self.test_from_file: bool | None = None

    def file_mismatch(self) -> str | None:
        """Why ``mnist_test_seq.npy`` is not a test set of these sequences, or None when it is one."""
        differences = [
            (self.seq_len > FILE_FRAMES, f"data.seq_len={self.seq_len} (the file has {FILE_FRAMES} frames)"),
            (self.num_digits != 2, f"data.num_digits={self.num_digits} (the file has 2)"),
            (self.step_length != 0.1, f"data.step_length={self.step_length} (the file's is 0.1)"),
            (
                self.digit_size * 64 != 28 * self.image_size,
                f"data.digit_size={self.digit_size} in data.image_size={self.image_size} frames (the "
                "file's digits are 28/64 of the frame)",
            ),
        ]
        found = [text for differs, text in differences if differs]
        return ", ".join(found) or None

    def uses_file(self) -> bool:
        """Whether the test split is ``mnist_test_seq.npy`` (``test_set``, and for ``auto`` whether the file
        is there and its sequences are of the configured kind)."""
        if self.test_set != "auto":
            return self.test_set == "file"
        path = mnist_test_seq_path(self.data_dir)
        if not path.is_file():
            return False
        mismatch = self.file_mismatch()
        if mismatch:
            log.info(f"Moving MNIST: testing on generated sequences, not {path}: {mismatch}")
        return mismatch is None

    def load_test_file(self) -> tuple[torch.Tensor, str]:
        fix = (
            f"put mnist_test_seq.npy in {mnist_test_seq_path(self.data_dir).parent} (`vidgen-data "
            f"moving_mnist_file` downloads it, 820 MB, from {MNIST_TEST_SEQ_URL}; or set "
            "data.download=true), or test on sequences generated from MNIST test digits: "
            "data.test_set=generated."
        )
        return load_mnist_test_seq(self.data_dir, self.download, MovingMNISTFileDataModule.file_md5, fix)

    @property
    def test_set_name(self) -> str:
        self.setup("test")
        if self.test_from_file:
            return f"mnist_test_seq.npy ({len(self.splits['test']):,})"
        return super().test_set_name

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
            if self.test_set == "file" and not mnist_test_seq_path(self.data_dir).exists():
                self.load_test_file()  # downloads; setup loads it (once per process) afterwards

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        test_file = self.load_test_file() if self.uses_file() else None  # fails before any split is set
        super().setup(stage)
        self.test_from_file = test_file is not None
        if test_file is not None:
            videos, md5 = test_file
            videos = videos[:, : self.seq_len]
            self.splits["test"] = VideoTensorDataset(
                videos, torch.arange(len(videos)), self.image_size, self.channels, self.value_range
            )
            self.checksum = hashlib.sha256(f"{self.checksum}{md5}".encode()).hexdigest()


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
        return mnist_test_seq_path(self.data_dir)

    @property
    def test_set_name(self) -> str:
        self.setup("test")
        n = len(self.splits["test"])
        return f"mnist_test_seq.npy, {n:,} of its sequences (split_seed {self.split_seed})"

    def prepare_data(self) -> None:
        if self.download and not self.path.exists():
            self.load_file()  # downloads; setup loads it (once per process) afterwards

    def load_file(self) -> torch.Tensor:
        """uint8 ``(N, 20, 1, 64, 64)`` from ``mnist_test_seq.npy``, checked; sets ``checksum``."""
        fix = (
            "set VIDGEN_DATA_DIR (or data.data_dir) to a folder holding MovingMNIST/mnist_test_seq.npy, or "
            "set data.download=true, or use data=moving_mnist (generated from MNIST digits, no file needed)."
        )
        videos, md5 = load_mnist_test_seq(self.data_dir, self.download, self.file_md5, fix)
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
