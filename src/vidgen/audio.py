"""Audio signal processing shared by the audio data, the audio families and the media writers.

- Fixed-length clips (``fit_length``): WaveGAN (Donahue, McAuley & Puckette, "Adversarial Audio
  Synthesis", ICLR 2019, arXiv:1802.04208) trains on clips of 16,384 samples; shorter recordings are
  zero-padded at the end, longer ones cropped.
- The SpecGAN representation of the same paper (Section 3.2): the log-magnitude STFT of a clip (window
  256, hop 128, Hann; the paper's 16 ms / 8 ms at 16 kHz) with the Nyquist bin dropped, each frequency
  bin normalized to zero mean and unit variance over the training clips, clipped at 3 standard
  deviations and scaled to [-1, 1] (``SpecGANSpectrogram``). 16,384 samples give 128 x 128.
- Its inverse: the magnitude un-normalized and turned into a waveform by Griffin-Lim phase recovery
  (``griffin_lim``).

Library choice: torchaudio has no release for the torch installed here (its wheels pin one torch
version; the newest, 2.11, would downgrade torch 2.14), so the STFT and Griffin-Lim are written on
``torch.stft``/``torch.istft`` (the algorithm of ``torchaudio.transforms.GriffinLim``, with the same
defaults), and WAV files are read and written by ``scipy.io.wavfile`` (scipy is already a dependency of
scikit-learn; it needs no native library, unlike soundfile's libsndfile, and reads FSDD's 16-bit PCM
exactly).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: SpecGAN's clipping of the normalized log-magnitude, in standard deviations (paper, Section 3.2).
CLIP_STD = 3.0
#: Added to the magnitude before the log, as SpecGAN's reference code does, so silence stays finite.
LOG_EPS = 1e-6


def fit_length(wave: torch.Tensor, length: int) -> torch.Tensor:
    """``wave (..., L)`` zero-padded at the end or cropped to ``(..., length)`` samples."""
    if wave.shape[-1] >= length:
        return wave[..., :length]
    return torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))


def stft(wave: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT ``(B, n_fft // 2 + 1, 1 + L // hop_length)`` of ``wave (B, L)``: Hann window of
    ``n_fft``, centred frames (reflect padding), as ``torchaudio.transforms.Spectrogram`` computes it."""
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    return torch.stft(wave, n_fft, hop_length, window=window, center=True, return_complex=True)


def istft(spec: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Inverse of ``stft`` (least-squares overlap-add), ``(B, length)``."""
    window = torch.hann_window(n_fft, device=spec.device, dtype=spec.real.dtype)
    return torch.istft(spec, n_fft, hop_length, window=window, center=True, length=length)


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int,
    hop_length: int,
    length: int,
    n_iter: int = 32,
    momentum: float = 0.99,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A waveform ``(B, length)`` whose STFT magnitude approximates ``magnitude (B, n_fft // 2 + 1, T)``.

    Griffin & Lim, "Signal estimation from modified short-time Fourier transform", IEEE TASSP 1984:
    alternate projections between the consistent STFTs and those of the given magnitude, with the
    momentum ("fast Griffin-Lim") of Perraudin, Balazs & Søndergaard, WASPAA 2013, as
    ``torchaudio.transforms.GriffinLim`` does (same defaults: 32 iterations, momentum 0.99). The phases
    start random (``generator``); SpecGAN's paper used 16 iterations.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"griffin_lim needs momentum in [0, 1), got {momentum}.")
    phase = torch.rand(magnitude.shape, generator=generator).to(magnitude.device) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = stft(istft(magnitude * angles, n_fft, hop_length, length), n_fft, hop_length)
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / angles.abs().clamp_min(1e-16)
        previous = rebuilt
    return istft(magnitude * angles, n_fft, hop_length, length)


class SpecGANSpectrogram(nn.Module):
    """The SpecGAN image of a clip and its inverse; holds the per-bin statistics as buffers, so a model
    that owns one keeps them in its checkpoints and can turn its samples into sound anywhere.

    ``encode``: waveforms ``(B, 1, clip_samples)`` in [-1, 1] -> images ``(B, 1, F, T)`` in [-1, 1],
    ``F = n_fft // 2`` frequency bins (Nyquist dropped) and ``T = clip_samples // hop_length`` frames
    (the last centred frame dropped, so 16,384 samples give 128 x 128 as in the paper).
    ``decode``: the inverse, Griffin-Lim with ``griffin_lim_iters`` iterations; the dropped Nyquist bin
    is zero and the dropped last frame a copy of the one before it.

    Args:
        clip_samples: clip length, a multiple of ``hop_length``.
        n_fft: STFT window (256: 32 ms at 8 kHz; the paper's 16 ms at 16 kHz).
        hop_length: STFT hop (128).
        griffin_lim_iters: iterations of ``griffin_lim`` in ``decode`` (paper: 16).
    """

    def __init__(self, clip_samples: int = 16384, n_fft: int = 256, hop_length: int = 128,
                 griffin_lim_iters: int = 16):  # fmt: skip
        super().__init__()
        # hop <= n_fft / 2: the Hann windows overlap-add to a non-zero envelope, so istft can invert
        if clip_samples % hop_length or n_fft % 2 or not 0 < hop_length <= n_fft // 2:
            raise ValueError(
                "SpecGANSpectrogram needs clip_samples a multiple of hop_length, an even n_fft and "
                f"0 < hop_length <= n_fft / 2, got "
                f"clip_samples={clip_samples}, n_fft={n_fft}, hop_length={hop_length}."
            )
        self.clip_samples, self.n_fft, self.hop_length = clip_samples, n_fft, hop_length
        self.griffin_lim_iters = griffin_lim_iters
        self.register_buffer("mean", torch.zeros(n_fft // 2))
        self.register_buffer("std", torch.ones(n_fft // 2))

    @property
    def shape(self) -> tuple[int, int]:
        """``(frequency bins, frames)`` of the image."""
        return self.n_fft // 2, self.clip_samples // self.hop_length

    def log_magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, 1, L)`` -> un-normalized ``log(|STFT| + eps)`` ``(B, 1, F, T)``."""
        spec = stft(wave.flatten(0, 1).float(), self.n_fft, self.hop_length)
        bins, frames = self.shape
        return torch.log(spec.abs()[:, :bins, :frames] + LOG_EPS).unsqueeze(1)

    def fit(self, waves: torch.Tensor, batch_size: int = 256) -> SpecGANSpectrogram:
        """Sets the per-bin mean and standard deviation from training clips ``(N, 1, L)`` (all frames of
        all clips, in one float64 pass), as the paper normalizes over its training set."""
        total = torch.zeros(self.shape[0], dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = 0
        for chunk in waves.split(batch_size):
            logs = self.log_magnitude(chunk).double()  # (B, 1, F, T)
            total += logs.sum(dim=(0, 1, 3))
            squares += logs.square().sum(dim=(0, 1, 3))
            count += logs.shape[0] * logs.shape[-1]
        mean = total / count
        self.mean.copy_(mean.float())
        self.std.copy_((squares / count - mean.square()).clamp_min(1e-12).sqrt().float())
        return self

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        normalized = (self.log_magnitude(wave) - self.mean[:, None]) / self.std[:, None]
        return normalized.clamp(-CLIP_STD, CLIP_STD) / CLIP_STD

    def decode(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images ``(B, 1, F, T)`` in [-1, 1] -> waveforms ``(B, 1, clip_samples)`` in [-1, 1]."""
        logs = image.float().squeeze(1) * CLIP_STD * self.std[:, None] + self.mean[:, None]
        magnitude = (logs.exp() - LOG_EPS).clamp_min(0)
        magnitude = torch.cat([magnitude, torch.zeros_like(magnitude[:, :1])], dim=1)  # Nyquist bin
        magnitude = torch.cat([magnitude, magnitude[:, :, -1:]], dim=2)  # the dropped last frame
        wave = griffin_lim(magnitude, self.n_fft, self.hop_length, self.clip_samples,
                           n_iter=self.griffin_lim_iters, generator=generator)  # fmt: skip
        return wave.clamp(-1, 1).unsqueeze(1)
