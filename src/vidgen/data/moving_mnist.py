"""Moving MNIST: digits bouncing in a frame (Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning
of Video Representations using LSTMs", ICML 2015, Section 3).

Two sources of the same kind of data:

- ``generate``: sequences made on the fly as in the paper's generator script -- each digit starts at a
  uniform position with a uniform direction on the unit circle, moves ``step_length`` of the free range
  per frame, and bounces (the velocity component flips) at the frame's edges; overlapping digits are
  combined with ``max``. Sequence ``i`` of a split is drawn from ``numpy.random.default_rng([seed,
  split, i])`` alone, so a dataset of any length is reproducible in any process or DataLoader worker
  without being stored.
- ``file``: the standard test set ``mnist_test_seq.npy`` (10,000 sequences x 20 frames of 64x64), read by
  ``torchvision.datasets.MovingMNIST``, split into train/val/test with ``split_seed``.

Batches are ``(x, y)``: ``x`` is ``(B, T, C, H, W)`` with ``T = seq_len``, the first
``num_input_frames`` being the context and the next ``num_output_frames`` the frames to predict (10 + 10
by convention); ``y`` is the class of the first digit, or -1 when unknown (``file`` source).
``MovingDigitsDataModule`` runs the same generator on scikit-learn's digits: the embedded, offline
video dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgen.data.base import VidgenDataModule, check_fraction, data_error, resize_uint8, seeded_split
from vidgen.data.digits import load_digits_tensors

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}


def bouncing_trajectory(rng: np.random.Generator, seq_len: int, step_length: float) -> np.ndarray:
    """``(seq_len, 2)`` positions ``(y, x)`` in [0, 1] of one digit's top-left corner, bouncing at 0 and 1.

    The generator of Srivastava et al. 2015: uniform start, direction ``theta ~ U[0, 2 pi)``, constant
    speed ``step_length``; a coordinate that leaves [0, 1] is clamped and its velocity reversed.
    """
    pos = rng.random(2)
    theta = rng.random() * 2 * np.pi
    vel = np.array([np.sin(theta), np.cos(theta)])
    out = np.empty((seq_len, 2))
    for t in range(seq_len):
        pos = pos + vel * step_length
        for k in range(2):
            if pos[k] <= 0.0:
                pos[k], vel[k] = 0.0, -vel[k]
            elif pos[k] >= 1.0:
                pos[k], vel[k] = 1.0, -vel[k]
        out[t] = pos
    return out


class BouncingDigitsDataset(Dataset):
    """``length`` sequences of ``num_digits`` digits from ``digits`` bouncing in ``image_size`` frames.

    Args:
        digits: uint8 ``(M, s, s)`` digit images (already at the digit size ``s <= image_size``).
        labels: their classes ``(M,)``.
        length: number of sequences (any; nothing is stored).
        seed, stream: sequence ``i`` is drawn from ``default_rng([seed, stream, i])`` only.
    """

    def __init__(
        self,
        digits: torch.Tensor,
        labels: torch.Tensor,
        length: int,
        seq_len: int,
        image_size: int,
        num_digits: int,
        step_length: float,
        seed: int,
        stream: int,
        channels: int,
        value_range: Sequence[float],
    ):
        self.digits = digits.numpy()
        self.labels = labels.long()
        self.length, self.seq_len, self.image_size = length, seq_len, image_size
        self.num_digits, self.step_length = num_digits, step_length
        self.seed, self.stream, self.channels = seed, stream, channels
        lo, hi = value_range
        self.scale, self.offset = (hi - lo) / 255.0, lo

    def __len__(self) -> int:
        return self.length

    def sequence(self, index: int) -> tuple[np.ndarray, int, np.ndarray]:
        """uint8 frames ``(T, H, W)``, the first digit's label, and the digits' top-left pixel positions."""
        if not 0 <= index < self.length:
            raise IndexError(f"sequence {index} of a dataset of {self.length}")
        rng = np.random.default_rng([self.seed, self.stream, index])
        size = self.digits.shape[-1]
        free = self.image_size - size
        chosen = rng.integers(len(self.digits), size=self.num_digits)
        frames = np.zeros((self.seq_len, self.image_size, self.image_size), dtype=np.uint8)
        positions = np.empty((self.num_digits, self.seq_len, 2), dtype=np.int64)
        for d, which in enumerate(chosen):
            positions[d] = (bouncing_trajectory(rng, self.seq_len, self.step_length) * free).astype(np.int64)
            digit = self.digits[which]
            for t, (y, x) in enumerate(positions[d]):
                window = frames[t, y : y + size, x : x + size]
                np.maximum(window, digit, out=window)
        return frames, int(self.labels[chosen[0]]), positions

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames, label, _ = self.sequence(index)
        x = torch.from_numpy(frames).unsqueeze(1).float() * self.scale + self.offset
        if self.channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        return x, torch.tensor(label, dtype=torch.long)


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
        self.videos, self.indices, self.image_size, self.channels = videos, indices, image_size, channels
        lo, hi = value_range
        self.scale, self.offset = (hi - lo) / 255.0, lo

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (
            resize_uint8(self.videos[int(self.indices[index])], self.image_size).float() * self.scale
            + self.offset
        )
        if self.channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        return x, torch.tensor(-1, dtype=torch.long)


def _check_video_args(seq_len, num_input_frames, num_output_frames, num_digits, digit_size, image_size, step):
    if num_input_frames < 0 or num_output_frames < 0 or num_input_frames + num_output_frames != seq_len:
        raise ValueError(
            f"data.num_input_frames={num_input_frames} + data.num_output_frames={num_output_frames} "
            f"must equal data.seq_len={seq_len} (e.g. 10 + 10 = 20)."
        )
    if num_digits < 1:
        raise ValueError(f"data.num_digits must be >= 1, got {num_digits}.")
    if not 1 <= digit_size <= image_size:
        raise ValueError(f"data.digit_size={digit_size} must be in [1, data.image_size={image_size}].")
    if not 0 < step <= 1:
        raise ValueError(f"data.step_length must be in (0, 1] (a fraction of the free range), got {step}.")


class MovingDigitsDataModule(VidgenDataModule):
    """Moving MNIST's generator on scikit-learn's 1,797 digits: the embedded, offline video dataset.

    The digits are split 80/10/10 by ``split_seed`` (as ``DigitsDataModule``) and each split's sequences
    use only that split's digits. Small by default (32x32 frames, 16x16 digits, 2,000 training sequences
    per epoch) so that video models train and test in seconds on a CPU.

    Args:
        data_dir: where derived artefacts are stored.
        image_size: side of the square frames.
        channels: 1 (grey) or 3 (grey repeated).
        batch_size: training and evaluation batch size.
        seq_len: frames per sequence.
        num_input_frames, num_output_frames: context and target frames of a frame-prediction model; their
            sum is ``seq_len``.
        num_digits: digits per sequence (paper: 2).
        digit_size: side of a digit in the frame (8x8 digits are upsampled bilinearly).
        step_length: distance moved per frame, a fraction of the free range (paper: 0.1).
        num_train, num_val, num_test: sequences per split (generated, not stored).
        val_fraction, test_fraction: parts of the digits reserved for the val and test sequences.
        split_seed: seeds the digit split and every sequence.
        value_range: pixel range of the frames.
        num_workers: DataLoader workers.
        feature_extractor: the feature space of per-frame FID-type metrics.
    """

    data_kind = "video"
    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 16,
        seq_len: int = 20,
        num_input_frames: int = 10,
        num_output_frames: int = 10,
        num_digits: int = 2,
        digit_size: int = 16,
        step_length: float = 0.1,
        num_train: int = 2000,
        num_val: int = 200,
        num_test: int = 200,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 0,
        feature_extractor: str = "digits",
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        _check_video_args(
            seq_len, num_input_frames, num_output_frames, num_digits, digit_size, image_size, step_length
        )
        check_fraction("val_fraction", val_fraction)
        check_fraction("test_fraction", test_fraction)
        if min(num_train, num_val, num_test) < 1:
            raise ValueError(
                f"data.num_train/num_val/num_test must be >= 1, got {num_train}/{num_val}/{num_test}."
            )
        self.seq_len, self.num_input_frames, self.num_output_frames = (
            seq_len,
            num_input_frames,
            num_output_frames,
        )
        self.num_digits, self.digit_size, self.step_length = num_digits, digit_size, step_length
        self.num_sequences = {"train": num_train, "val": num_val, "test": num_test}
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed = split_seed

    @property
    def dataset_id(self) -> str:
        return f"moving_digits{self.image_size}_d{self.num_digits}x{self.digit_size}_t{self.seq_len}"

    def digit_pools(self) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
        """uint8 digits ``(M, 1, h, w)`` and labels for each split, and a checksum of the source."""
        x, y, checksum = load_digits_tensors()
        x = (x * 255).round().to(torch.uint8)
        keep, test = seeded_split(len(x), self.test_fraction, self.split_seed)
        keep2, val = seeded_split(len(keep), self.val_fraction / (1 - self.test_fraction), self.split_seed)
        parts = {"train": keep[keep2], "val": keep[val], "test": test}
        return {name: (x[idx], y[idx]) for name, idx in parts.items()}, checksum

    def _generated_splits(self) -> dict[str, Dataset]:
        pools, source_checksum = self.digit_pools()
        settings = (
            self.image_size,
            self.digit_size,
            self.num_digits,
            self.seq_len,
            self.step_length,
            self.split_seed,
            sorted(self.num_sequences.items()),
        )
        self.checksum = hashlib.sha256(f"{source_checksum}{settings}".encode()).hexdigest()
        return {
            name: BouncingDigitsDataset(
                resize_uint8(digits, self.digit_size)[:, 0],
                labels,
                self.num_sequences[name],
                self.seq_len,
                self.image_size,
                self.num_digits,
                self.step_length,
                self.split_seed,
                SPLIT_STREAMS[name],
                self.channels,
                self.value_range,
            )
            for name, (digits, labels) in pools.items()
        }

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self._generated_splits()


class MovingMNISTDataModule(MovingDigitsDataModule):
    """Moving MNIST from the standard file (``source=file``) or generated from MNIST (``source=generate``).

    ``generate`` draws train and val sequences from MNIST's training digits (val from a seeded
    ``val_fraction`` of them) and test sequences from MNIST's test digits. ``file`` reads
    ``<data_dir>/MovingMNIST/mnist_test_seq.npy`` (checked against its published md5) and splits its
    10,000 sequences by ``val_fraction``/``test_fraction``; frames are resized if ``image_size != 64``.

    Args (beyond ``MovingDigitsDataModule``'s):
        source: ``generate`` or ``file``.
        download: download missing files (MNIST digits, or the 820 MB ``mnist_test_seq.npy``) with
            torchvision.
    """

    # md5 of mnist_test_seq.npy, the constant torchvision.datasets.MovingMNIST.download checks.
    file_md5: str | None = "be083ec986bfe91a449d63653c411eb2"

    def __init__(
        self,
        data_dir: str = "data",
        source: str = "generate",
        image_size: int = 64,
        channels: int = 1,
        batch_size: int = 16,
        seq_len: int = 20,
        num_input_frames: int = 10,
        num_output_frames: int = 10,
        num_digits: int = 2,
        digit_size: int = 28,
        step_length: float = 0.1,
        num_train: int = 10000,
        num_val: int = 1000,
        num_test: int = 1000,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 2,
        download: bool = True,
        feature_extractor: str = "mnist",
    ):
        if source not in ("generate", "file"):
            raise ValueError(f"data.source must be 'generate' or 'file', got {source!r}.")
        if source == "file" and not 1 <= seq_len <= 20:
            raise ValueError(
                f"data.seq_len must be in 1..20 with source=file (the file has 20 frames), got {seq_len}."
            )
        super().__init__(
            data_dir,
            image_size,
            channels,
            batch_size,
            seq_len,
            num_input_frames,
            num_output_frames,
            num_digits,
            digit_size,
            step_length,
            num_train,
            num_val,
            num_test,
            val_fraction,
            test_fraction,
            split_seed,
            value_range,
            num_workers,
            feature_extractor,
        )
        self.source = source
        self.download = download

    @property
    def dataset_id(self) -> str:
        if self.source == "file":
            return f"moving_mnist_file{self.image_size}_t{self.seq_len}"
        return f"moving_mnist{self.image_size}_d{self.num_digits}x{self.digit_size}_t{self.seq_len}"

    def digit_pools(self) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
        from vidgen.data.mnist import load_mnist

        raw, checksum = load_mnist(self.data_dir, self.download)
        x, y = raw["train"][0].unsqueeze(1), raw["train"][1]
        keep, val = seeded_split(len(x), self.val_fraction, self.split_seed)
        pools = {"train": (x[keep], y[keep]), "val": (x[val], y[val])}
        pools["test"] = (raw["test"][0].unsqueeze(1), raw["test"][1])
        return pools, checksum

    def prepare_data(self) -> None:
        if self.download and self.source == "file":
            if not (Path(self.data_dir) / "MovingMNIST" / "mnist_test_seq.npy").exists():
                self.load_file()  # downloads; setup loads it (once per process) afterwards
        elif self.download:
            self.digit_pools()

    def load_file(self) -> torch.Tensor:
        """uint8 ``(N, 20, 1, 64, 64)`` from ``mnist_test_seq.npy``, checked; sets ``checksum``."""
        from torchvision.datasets import MovingMNIST
        from torchvision.datasets.utils import calculate_md5

        folder = Path(self.data_dir) / "MovingMNIST"
        path = folder / "mnist_test_seq.npy"
        expected = ["mnist_test_seq.npy (10,000 x 20 frames x 64 x 64, uint8, 820 MB)"]
        fix = (
            "set VIDGEN_DATA_DIR (or data.data_dir) to a folder holding MovingMNIST/mnist_test_seq.npy, or "
            "set data.download=true, or use data.source=generate (no file needed)."
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
        if self.source == "generate":
            self.splits = self._generated_splits()
            return
        videos = self.load_file()[:, : self.seq_len]
        keep, test = seeded_split(len(videos), self.test_fraction, self.split_seed)
        keep2, val = seeded_split(len(keep), self.val_fraction / (1 - self.test_fraction), self.split_seed)
        parts = {"train": keep[keep2], "val": keep[val], "test": test}
        self.splits = {
            name: VideoTensorDataset(videos, idx, self.image_size, self.channels, self.value_range)
            for name, idx in parts.items()
        }
