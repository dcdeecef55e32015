"""Moving MNIST's generator (``vidgen.data.bouncing``) on scikit-learn's 1,797 digits: the embedded,
offline video dataset, and the base of the generated Moving MNIST (``vidgen.data.moving_mnist``).

Batches are ``(x, y)``: ``x`` is ``(B, T, C, H, W)`` with ``T = seq_len`` (``num_input_frames`` of
context, then ``num_output_frames`` to predict), ``y`` the class of the first digit.

Training sequences are a fixed set (``train_sequences=fixed``, shuffled each epoch) or made afresh each
epoch (``fresh``): then the training loader's ``EpochSampler`` hands the epoch to the dataset with every
index (``vidgen.data.bouncing`` says why that works with persistent workers and under DDP), and sequence
``i`` of epoch ``e`` depends on ``(split_seed, e, i)`` alone. Epoch 0 of ``fresh`` is the ``fixed`` set, and
so is ``splits["train"][i]`` (what feature networks and previews read) in both modes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch.utils.data import Sampler

from vidgen.data.base import RawSplits, VideoDataModule, resize_uint8, train_val_test_split
from vidgen.data.bouncing import SPLIT_STREAMS, BouncingDigitsDataset, EpochSampler
from vidgen.data.digits import load_digits_tensors


class MovingDigitsDataModule(VideoDataModule):
    """Moving MNIST's generator on scikit-learn's 1,797 digits: the embedded, offline video dataset.

    The digits are split 80/10/10 by ``split_seed`` (as ``DigitsDataModule``) and each split's sequences
    use only that split's digits. Small by default (32x32 frames, 16x16 digits, 2,000 training sequences
    per epoch) so that video models train and test in seconds on a CPU. Subclasses take their digits from
    elsewhere by overriding ``digit_pools`` (and ``dataset_name``).

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
        num_train, num_val, num_test: sequences per split (generated, not stored); ``num_train`` per epoch.
        train_sequences: ``fixed`` (the same ``num_train`` sequences every epoch, shuffled) or ``fresh``
            (``num_train`` new ones each epoch, reproducible from ``split_seed``, the epoch and the index).
        val_fraction, test_fraction: parts of the digits reserved for the val and test sequences.
        split_seed: seeds the digit split and every sequence.
        value_range: pixel range of the frames.
        num_workers: DataLoader workers.
        feature_extractor: the feature space of per-frame FID-type metrics.
    """

    # The first part of ``dataset_id``.
    dataset_name = "moving_digits"

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
        train_sequences: str = "fixed",
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, seq_len, num_input_frames, num_output_frames,
            val_fraction, test_fraction, split_seed, value_range, num_workers, feature_extractor,
        )  # fmt: skip
        if num_digits < 1:
            raise ValueError(f"data.num_digits must be >= 1, got {num_digits}.")
        if not 1 <= digit_size <= image_size:
            raise ValueError(f"data.digit_size={digit_size} must be in [1, data.image_size={image_size}].")
        if not 0 < step_length <= 1:
            raise ValueError(
                f"data.step_length must be in (0, 1] (a fraction of the free range), got {step_length}."
            )
        if min(num_train, num_val, num_test) < 1:
            raise ValueError(
                f"data.num_train/num_val/num_test must be >= 1, got {num_train}/{num_val}/{num_test}."
            )
        if train_sequences not in ("fresh", "fixed"):
            raise ValueError(
                f"data.train_sequences must be fresh (new sequences each epoch) or fixed (the same ones), "
                f"got {train_sequences!r}."
            )
        self.num_digits, self.digit_size, self.step_length = num_digits, digit_size, step_length
        self.num_sequences = {"train": num_train, "val": num_val, "test": num_test}
        self.train_sequences = train_sequences

    @property
    def dataset_id(self) -> str:
        return f"{self.dataset_name}{self.image_size}_d{self.num_digits}x{self.digit_size}_t{self.seq_len}"

    def digit_pools(self) -> tuple[RawSplits, str]:
        """uint8 digits ``(M, 1, h, w)`` and labels for each split, and a checksum of the source."""
        x, y, checksum = load_digits_tensors()
        x = (x * 255).round().to(torch.uint8)
        parts = train_val_test_split(len(x), self.val_fraction, self.test_fraction, self.split_seed)
        return {name: (x[idx], y[idx]) for name, idx in parts.items()}, checksum

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
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
        self.splits = {
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

    @property
    def test_set_name(self) -> str:
        self.setup("test")
        return f"generated {len(self.splits['test']):,}, split_seed {self.split_seed}"

    def train_sampler(self) -> Sampler | None:
        return EpochSampler(len(self.splits["train"])) if self.train_sequences == "fresh" else None
