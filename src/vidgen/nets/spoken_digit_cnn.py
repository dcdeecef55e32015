"""A small spectrogram CNN that names the spoken digit: the domain classifier of the audio metrics.

The architecture of the convolutional keyword spotters of Sainath & Parada, "Convolutional Neural
Networks for Small-footprint Keyword Spotting", Interspeech 2015, reduced to FSDD's size: a waveform is
turned into its log-magnitude STFT (window 256, hop 128: 32 ms / 16 ms at 8 kHz), batch-normalized
per frequency bin, then four 3x3 convolution blocks (batch norm, ReLU, 2x2 max-pooling) and global
average pooling give ``num_features`` features, the space of the Fréchet distance (FAD-style: not the
VGGish network of Kilgour et al.'s FAD), and a linear head the class logits (Inception Score as the
WaveGAN paper computes it with its own SC09 classifier). Spectrogram inputs (SpecGAN's representation,
already normalized) enter the convolutions directly, so one recipe serves both representations.
"""

from __future__ import annotations

import torch
from torch import nn

from vidgen.audio import stft


class SpokenDigitCNN(nn.Module):
    """Classifies waveforms ``(B, channels, L)`` or spectrograms ``(B, channels, F, T)``.

    Args:
        channels: audio channels (FSDD: 1); the STFT is taken of each.
        num_classes: classes of the head (10 digits).
        width: channels of the first block, doubled per block up to ``8 * width`` (``num_features``).
        n_fft, hop_length: the STFT applied to waveforms.
    """

    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 16, n_fft: int = 256,
                 hop_length: int = 128):  # fmt: skip
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        # log-magnitudes differ in scale by tens of dB between low and high bins: normalize each bin
        self.bins = nn.BatchNorm1d(n_fft // 2 + 1)
        blocks: list[nn.Module] = []
        cin = channels
        for cout in (width, 2 * width, 4 * width, 8 * width):
            blocks += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                       nn.MaxPool2d(2, ceil_mode=True)]  # fmt: skip
            cin = cout
        self.conv = nn.Sequential(*blocks)
        self.num_features = cin
        self.head = nn.Linear(cin, num_classes)

    def spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` -> normalized ``log(|STFT| + 1e-5)`` ``(B, C, F, T)``, each channel alike."""
        magnitude = stft(wave.flatten(0, 1), self.n_fft, self.hop_length).abs()
        normalized = self.bins(torch.log(magnitude + 1e-5))
        return normalized.view(*wave.shape[:2], *normalized.shape[1:])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        image = self.spectrogram(x) if x.ndim == 3 else x
        return self.conv(image).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
