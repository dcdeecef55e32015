"""Audio-visual samples: a clip and its sound, drawn together (issue 18's talking digits).

``AudioVisual`` is what an audio-visual family's ``sample`` returns and what the talking-digits loaders
batch: two tensors that belong together, kept apart because they have nothing but the batch in common
(frames ``(B, T, C, H, W)`` in the data's value range, waveforms ``(B, 1, L)`` in [-1, 1]). Time is
shared: ``T`` frames span exactly the ``L`` samples, so the frame rate is ``T * sample_rate / L``,
a fraction (8 frames per 8,192 samples at 8 kHz: 125/16 = 7.8125 frames per second).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import torch


class AudioVisual(NamedTuple):
    """A batch of clips ``video (B, T, C, H, W)`` and their sounds ``audio (B, 1, L)``."""

    video: torch.Tensor
    audio: torch.Tensor

    def contiguous(self) -> AudioVisual:
        return AudioVisual(self.video.contiguous(), self.audio.contiguous())

    def cpu(self) -> AudioVisual:
        return AudioVisual(self.video.cpu(), self.audio.cpu())

    def detach(self) -> AudioVisual:
        return AudioVisual(self.video.detach(), self.audio.detach())

    @property
    def batch_size(self) -> int:
        return len(self.video)


def frame_rate(num_frames: int, clip_samples: int, sample_rate: int) -> Fraction:
    """Frames per second of ``num_frames`` spanning ``clip_samples`` at ``sample_rate``, exact."""
    return Fraction(num_frames * sample_rate, clip_samples)
