"""The bouncing-digits generator of Moving MNIST (Srivastava, Mansimov & Salakhutdinov, "Unsupervised
Learning of Video Representations using LSTMs", ICML 2015, Section 3), on any set of digit images.

Each digit starts at a uniform position with a uniform direction on the unit circle, moves
``step_length`` of the free range per frame, and bounces (the velocity component flips) at the frame's
edges; overlapping digits are combined with ``max``. Sequence ``i`` of a split is drawn from
``numpy.random.default_rng([seed, split, i])`` alone, so a dataset of any length is reproducible in any
process or DataLoader worker without being stored. Training sets made afresh each epoch (as OpenSTL
trains on Moving MNIST) add the epoch: sequence ``i`` of epoch ``e > 0`` is drawn from
``default_rng([seed, split, i, e])``, and epoch 0 is the fixed set. The epoch reaches the dataset inside
the index: ``EpochSampler`` yields ``(epoch, i)`` pairs, and Lightning sets its epoch (``set_epoch``) at
the start of every training epoch. The pairs travel from the main process to the DataLoader workers with
each batch, so persistent workers (whose copy of the dataset never changes) draw the right epoch, and a
run resumed from a checkpoint draws the epochs it had not seen. The datamodules that use it:
``vidgen.data.moving_digits`` (scikit-learn's digits) and ``vidgen.data.moving_mnist`` (MNIST's).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from vidgen.data.base import from_uint8, to_channels

# The ``stream`` of each split in the generator's seed: [seed, stream, index].
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

    Items are ``(x, y)``: ``x`` floats ``(seq_len, channels, image_size, image_size)`` in ``value_range``,
    ``y`` the class of the first digit. ``dataset[i]`` is sequence ``i`` of the fixed set (epoch 0),
    ``dataset[(epoch, i)]`` sequence ``i`` of that epoch of a set made afresh each epoch (``EpochSampler``).

    Args:
        digits: uint8 ``(M, s, s)`` digit images (already at the digit size ``s <= image_size``).
        labels: their classes ``(M,)``.
        length: number of sequences (any; nothing is stored).
        seed, stream: sequence ``i`` is drawn from ``default_rng([seed, stream, i])`` only (of epoch
            ``e > 0``: ``default_rng([seed, stream, i, e])``).
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
        self.seed, self.stream, self.channels, self.value_range = seed, stream, channels, value_range

    def __len__(self) -> int:
        return self.length

    def sequence(self, index: int, epoch: int = 0) -> tuple[np.ndarray, int, np.ndarray]:
        """uint8 frames ``(T, H, W)``, the first digit's label, and the digits' top-left pixel positions
        of sequence ``index`` of ``epoch`` (0: the fixed set)."""
        if not 0 <= index < self.length:
            raise IndexError(f"sequence {index} of a dataset of {self.length}")
        if epoch < 0:
            raise IndexError(f"epoch {epoch} of sequence {index}: epochs count from 0")
        key = [self.seed, self.stream, index] if epoch == 0 else [self.seed, self.stream, index, epoch]
        rng = np.random.default_rng(key)
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

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = index if isinstance(index, tuple) else (0, index)
        frames, label, _ = self.sequence(int(i), int(epoch))
        x = from_uint8(torch.from_numpy(frames).unsqueeze(1), self.value_range)
        return to_channels(x, self.channels), torch.tensor(label, dtype=torch.long)


class EpochSampler(Sampler[tuple[int, int]]):
    """``(epoch, i)`` for ``i`` in ``range(length)``: the items of one epoch of a training set made afresh
    each epoch, in order (its sequences are independent draws already, so there is nothing to shuffle).

    Lightning calls ``set_epoch`` on a training loader's sampler at the start of every epoch; under DDP it
    wraps this sampler in ``DistributedSamplerWrapper``, which passes ``set_epoch`` on and gives each rank
    its share of the same pairs.
    """

    def __init__(self, length: int):
        self.length, self.epoch = length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for i in range(self.length))
