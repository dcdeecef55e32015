"""Talking digits (issue 18): a moving digit and a recording of the same digit being spoken, time-aligned.

Each sample is a clip of one handwritten digit bouncing in the frame (the generator of Moving MNIST,
``vidgen.data.bouncing``, on scikit-learn's embedded 1,797 digits, offline) and an FSDD recording
(``vidgen.data.spoken_digits``) of the SAME digit: batches are ``(video (B, T, C, H, W), audio (B, 1, L),
label (B,))``. The two share time: ``T`` frames span the ``L`` samples, so the frame rate is
``T * sample_rate / L``: 8 frames per 8,192 samples at 8 kHz (1.024 s, which holds 99.4 % of the FSDD
recordings uncut) is 125/16 = 7.8125 frames per second (``fps``).

Split-safe pairing: the recordings keep FSDD's official split (recordings 0-4 of each digit and speaker
are the test set, a seeded ``val_fraction`` of the others validation) and the digit images are split
80/10/10 by ``split_seed`` as ``data=moving_digits`` splits them; a split's clips draw their digit images
from that split's images only. Every recording and every digit image is in one split. The clip of
recording ``i`` of a split is drawn from ``numpy.random.default_rng([split_seed, split stream, i])`` alone
(which image of the spoken digit, start and direction), so the pairs are the same in every process.

No paper uses this dataset; it is vidgen's smallest audio-visual task whose consistency can be measured
(``vidgen.metrics.audio_visual``): the digit seen and the digit heard must agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgen.audio_visual import frame_rate
from vidgen.data.base import (
    VidgenDataModule,
    check_split_fractions,
    from_uint8,
    resize_uint8,
    to_channels,
    train_val_test_split,
)
from vidgen.data.bouncing import SPLIT_STREAMS, bouncing_trajectory
from vidgen.data.digits import load_digits_tensors
from vidgen.data.spoken_digits import SpokenDigits, SpokenDigitsDataModule
from vidgen.errors import DataError


class TalkingDigits(Dataset):
    """Recording ``i`` of ``recordings`` with a clip of a digit image of its digit, bouncing.

    Items are ``(video (T, C, H, W) in value_range, audio (1, L) in [-1, 1], digit)``.

    Args:
        digits: uint8 ``(M, s, s)`` digit images at the digit size; labels: their classes ``(M,)``.
        recordings: the split's FSDD clips and digits.
        seed, stream: clip ``i`` is drawn from ``default_rng([seed, stream, i])``.
    """

    def __init__(self, digits: torch.Tensor, labels: torch.Tensor, recordings: SpokenDigits, seq_len: int,
                 image_size: int, step_length: float, seed: int, stream: int, channels: int,
                 value_range: Sequence[float]):  # fmt: skip
        self.digits, self.labels, self.recordings = digits.numpy(), labels.long(), recordings
        self.seq_len, self.image_size, self.step_length = seq_len, image_size, step_length
        self.seed, self.stream, self.channels, self.value_range = seed, stream, channels, value_range
        self.by_class = {int(c): (self.labels == c).nonzero().flatten().numpy() for c in self.labels.unique()}

    def __len__(self) -> int:
        return len(self.recordings)

    def image_index(self, index: int, rng: np.random.Generator | None = None) -> int:
        """The index (into ``digits``) of the image that clip ``index`` shows."""
        rng = np.random.default_rng([self.seed, self.stream, index]) if rng is None else rng
        return int(rng.choice(self.by_class[int(self.recordings.digits[index])]))

    def frames(self, index: int) -> np.ndarray:
        """uint8 frames ``(T, H, W)`` of clip ``index``: its digit image moving as Moving MNIST's digits."""
        rng = np.random.default_rng([self.seed, self.stream, index])
        digit = self.digits[self.image_index(index, rng)]
        size = digit.shape[-1]
        positions = bouncing_trajectory(rng, self.seq_len, self.step_length) * (self.image_size - size)
        frames = np.zeros((self.seq_len, self.image_size, self.image_size), dtype=np.uint8)
        for t, (y, x) in enumerate(positions.astype(np.int64)):
            frames[t, y : y + size, x : x + size] = digit
        return frames

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        video = from_uint8(torch.from_numpy(self.frames(index)).unsqueeze(1), self.value_range)
        return (
            to_channels(video, self.channels),
            self.recordings.waveform(index),
            self.recordings.digits[index],
        )


class OneFramePerClip(Dataset):
    """Frame ``i mod T`` of clip ``i`` with its digit: the images the frame classifier of the metrics
    (``vidgen.metrics.audio_visual``) is trained and tested on, every position in the clip equally often."""

    def __init__(self, clips: TalkingDigits):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frame = self.clips.frames(index)[index % self.clips.seq_len]
        image = from_uint8(torch.from_numpy(frame).unsqueeze(0), self.clips.value_range)
        return to_channels(image, self.clips.channels), self.clips.recordings.digits[index]


class TalkingDigitsDataModule(VidgenDataModule):
    """Moving digits with the FSDD recording of the same digit (module docstring).

    Args:
        data_dir: folder holding ``fsdd/recordings/*.wav`` (``${paths.data_dir}``; see
            ``SpokenDigitsDataModule``), and where derived artefacts (feature networks) are stored.
        image_size: side of the square frames.
        channels: 1 (grey) or 3 (grey repeated).
        batch_size: training and evaluation batch size.
        seq_len: frames per clip.
        digit_size: side of the digit in the frame (8x8 digits are upsampled bilinearly).
        step_length: distance moved per frame, a fraction of the free range (Moving MNIST: 0.1).
        clip_samples: audio samples per clip (cut or zero-padded); ``seq_len`` frames span them.
        sample_rate: the rate of the recordings (FSDD's 8000 Hz).
        val_fraction: part of the FSDD training recordings held out for validation, and of the digit images.
        test_fraction: part of the digit images held out for test (FSDD's test split is its official one).
        split_seed: seeds both splits and every clip.
        value_range: pixel range of the frames (the sound is always in [-1, 1]).
        num_workers: DataLoader workers.
        download: download FSDD when its folder is missing (``SpokenDigitsDataModule``).
        feature_extractor: name of the frame classifier's space (metric keys ``fid_<name>``, ...).
        audio_feature_extractor: name of the audio classifier's space (``fid_<name>``, ...).
    """

    data_kind = "audio_visual"
    num_classes = 10
    #: the frame classifier's recipe; the sound's is the FSDD data's (``audio_datamodule().feature_net``)
    feature_net = "lenet5"

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 16,
        seq_len: int = 8,
        digit_size: int = 16,
        step_length: float = 0.1,
        clip_samples: int = 8192,
        sample_rate: int = 8000,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 0,
        download: bool = True,
        feature_extractor: str = "lenet_frames",
        audio_feature_extractor: str = "fsdd",
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        check_split_fractions(val_fraction, test_fraction)
        if seq_len < 1:
            raise ValueError(f"data.seq_len must be >= 1, got {seq_len}.")
        if not 1 <= digit_size <= image_size:
            raise ValueError(f"data.digit_size={digit_size} must be in [1, data.image_size={image_size}].")
        if not 0 < step_length <= 1:
            raise ValueError(
                f"data.step_length must be in (0, 1] (a fraction of the free range), got {step_length}."
            )
        self.seq_len, self.digit_size, self.step_length = seq_len, digit_size, step_length
        self.clip_samples, self.sample_rate = clip_samples, sample_rate
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.download, self.audio_feature_extractor = download, audio_feature_extractor
        # The sound is FSDD as data=spoken_digits reads it: the same checks, errors and official split.
        self.audio = SpokenDigitsDataModule(
            data_dir, "waveform", clip_samples, sample_rate, batch_size=batch_size, val_fraction=val_fraction,
            split_seed=split_seed, num_workers=num_workers, download=download,
            feature_extractor=audio_feature_extractor,
        )  # fmt: skip
        self.image_indices: dict[str, torch.Tensor] = {}

    @property
    def fps(self) -> Fraction:
        """Frames per second: ``seq_len`` frames span ``clip_samples`` samples."""
        return frame_rate(self.seq_len, self.clip_samples, self.sample_rate)

    @property
    def dataset_id(self) -> str:
        return f"talking_digits{self.image_size}_d{self.digit_size}_t{self.seq_len}_a{self.clip_samples}"

    def prepare_data(self) -> None:
        self.audio.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.audio.setup(stage)
        x, y, digits_checksum = load_digits_tensors()
        images = resize_uint8((x * 255).round().to(torch.uint8), self.digit_size)[:, 0]
        parts = train_val_test_split(len(x), self.val_fraction, self.test_fraction, self.split_seed)
        settings = (self.image_size, self.channels, self.value_range, self.seq_len, self.digit_size,
                    self.step_length, self.clip_samples, self.split_seed, self.val_fraction,
                    self.test_fraction)  # fmt: skip
        self.checksum = hashlib.sha256(
            f"{digits_checksum}{self.audio.checksum}{settings}".encode()
        ).hexdigest()
        splits = {}
        for name, idx in parts.items():
            recordings = self.audio.splits[name]
            missing = sorted(set(recordings.digits.tolist()) - set(y[idx].tolist()))
            if missing:  # only with tiny fractions: 10 % of the 1,797 images holds ~18 of each digit
                raise DataError(
                    f"talking digits: the {name} split's digit images hold no {missing} (data.val_fraction="
                    f"{self.val_fraction}, data.test_fraction={self.test_fraction}), which its recordings "
                    "say. Fix: larger fractions (0.1 each holds every digit)."
                )
            splits[name] = TalkingDigits(images[idx], y[idx], recordings, self.seq_len, self.image_size,
                                         self.step_length, self.split_seed, SPLIT_STREAMS[name],
                                         self.channels, self.value_range)  # fmt: skip
            self.image_indices[name] = idx  # indices into the 1,797 digits: which images this split may show
        self.splits = splits

    def frames_datamodule(self) -> TalkingDigitFrames:
        """The frames as image data (one per clip), which the metrics' frame classifier is trained on."""
        return TalkingDigitFrames(self)

    def audio_datamodule(self) -> SpokenDigitsDataModule:
        """The sound as FSDD data (same split), which the metrics' audio classifier is trained on."""
        self.setup("fit")
        return self.audio

    @property
    def test_set_name(self) -> str:
        self.setup("test")
        return (f"FSDD official test split (recordings 0-4, {len(self.splits['test']):,}) with moving test "
                f"digits (split_seed {self.split_seed})")  # fmt: skip


class TalkingDigitFrames(VidgenDataModule):
    """The frames of the talking digits as labelled images (``OneFramePerClip`` of each split), named and
    checksummed by the clips' data so the frame classifier's cache is keyed by everything that shapes them.

    ``clips`` is kept under another name so the cache key (``feature_spaces.data_identity``, which reads
    constructor arguments) sees the clips' ``dataset_id`` and ``checksum``, not an object's address.
    """

    def __init__(self, clips: TalkingDigitsDataModule):
        super().__init__(clips.data_dir, clips.image_size, clips.channels, 64, clips.value_range,
                         clips.num_workers, clips.feature_extractor)  # fmt: skip
        self._clips = clips

    @property
    def dataset_id(self) -> str:
        return f"{self._clips.dataset_id}_frames"

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self._clips.setup(stage)
        self.checksum = self._clips.checksum
        self.splits = {name: OneFramePerClip(clips) for name, clips in self._clips.splits.items()}
