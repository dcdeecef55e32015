"""The audio-GAN family: GANs whose samples are sound, as waveforms or as spectrograms.

The adversarial loop is the GAN family's (``GANModule``: manual optimization, D every batch, G every
``n_critic``-th, any ``loss=gan_*``, conditional nets, EMA); what differs is the data (``data_kind =
"audio"``) and that every audio family can turn its samples into waveforms (``waveforms``), which the
WAV writers use. Two models of Donahue, McAuley & Puckette, "Adversarial Audio Synthesis", ICLR 2019
(arXiv:1802.04208):

- WaveGAN (``model=wavegan``): ``vidgen.nets.wavegan`` on raw waveforms ``(B, 1, L)``; ``spectrogram``
  is null and the samples are the waveforms.
- SpecGAN (``model=specgan``): the DCGAN nets of ``vidgen.nets.dcgan`` on SpecGAN's normalized
  log-magnitude spectrograms ``(B, 1, 128, 128)``; ``spectrogram`` (``vidgen.audio.SpecGANSpectrogram``)
  takes the data's per-bin statistics in ``setup`` and keeps them in the checkpoint, so ``waveforms``
  inverts samples by Griffin-Lim wherever the checkpoint is loaded.
"""

from __future__ import annotations

from typing import Any

import torch

from vidgen.audio import SpecGANSpectrogram
from vidgen.errors import ConfigError
from vidgen.families.gan import GANModule


class AudioGANModule(GANModule):
    """``GANModule`` for audio data; ``sample(n)`` returns waveforms ``(n, 1, L)`` or spectrograms
    ``(n, 1, F, T)`` in [-1, 1] (as the data gives them), ``waveforms(samples)`` the sound of either.

    Args:
        spectrogram: null for a waveform model; for a spectrogram model, the transform the data uses
            (same ``clip_samples``, ``n_fft``, ``hop_length``; ``griffin_lim_iters`` for ``waveforms``).
        sample_rate: of the waveforms (FSDD: 8000), for the WAV files.
        **kwargs: ``GANModule``'s arguments (generator, discriminator, loss, optimizers, ...).
    """

    data_kind = "audio"
    default_callbacks = "audio"

    def __init__(self, *args: Any, spectrogram: SpecGANSpectrogram | None = None, sample_rate: int = 8000,
                 **kwargs: Any):  # fmt: skip
        super().__init__(*args, **kwargs)
        if sample_rate < 1:
            raise ValueError(f"model.sample_rate must be a positive number of Hz, got {sample_rate}.")
        self.spectrogram = spectrogram
        self.sample_rate = sample_rate

    @property
    def representation(self) -> str:
        return "waveform" if self.spectrogram is None else "spectrogram"

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        have = getattr(datamodule, "representation", None)
        if have is not None and have != self.representation:
            model = "specgan" if self.spectrogram is not None else "wavegan"
            raise ConfigError(
                f"model={model} models {self.representation}s but data.representation={have}. "
                f"Fix: data.representation={self.representation}."
            )
        datamodule.setup(stage)
        shape = tuple(self.sample(2, generator=torch.Generator().manual_seed(0)).shape[1:])
        if shape != tuple(datamodule.item_shape):
            raise ConfigError(
                f"the generator makes samples of shape {shape} but the data's are "
                f"{tuple(datamodule.item_shape)} (data.clip_samples, data.n_fft, data.hop_length). Fix: "
                "build the nets from the data's sizes, e.g. clip_samples: ${data.clip_samples} (WaveGAN: "
                "16 x 4^k samples; SpecGAN: n_fft / 2 = clip_samples / hop_length, a power of two)."
            )
        if self.spectrogram is not None and stage == "fit":
            data = datamodule.spectrogram
            mine = (self.spectrogram.clip_samples, self.spectrogram.n_fft, self.spectrogram.hop_length)
            if mine != (data.clip_samples, data.n_fft, data.hop_length):
                raise ConfigError(
                    f"model.spectrogram (clip_samples, n_fft, hop_length) = {mine} but the data's are "
                    f"{(data.clip_samples, data.n_fft, data.hop_length)}. Fix: take them from data.*."
                )
            # the statistics that normalized the training data, kept in the checkpoint for inversion
            self.spectrogram.mean.copy_(data.mean)
            self.spectrogram.std.copy_(data.std)

    @torch.no_grad()
    def waveforms(self, samples: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``samples`` (as ``sample`` returns them) as waveforms ``(B, 1, L)`` in [-1, 1]; spectrograms
        by Griffin-Lim, whose random initial phases ``generator`` fixes."""
        if self.spectrogram is None:
            return samples
        return self.spectrogram.decode(samples, generator=generator)
