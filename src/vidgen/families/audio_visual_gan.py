"""The audio-visual GAN family: a generator of (clip, sound) pairs against a joint discriminator.

The adversarial loop is the GAN family's (``GANModule``: Goodfellow et al. 2014, Algorithm 1, with
Lightning's manual optimization of two optimizers, D every batch, G every ``n_critic``-th, any
``loss=gan_*``, EMA of G); what differs is that a sample is a pair, ``vidgen.audio_visual.AudioVisual``
(video ``(B, T, C, H, W)``, audio ``(B, 1, L)``), drawn from one noise vector and one class and judged as
a pair (``vidgen.nets.audio_visual``: MoCoGAN's video generator and WaveGAN's audio generator sharing the
content code and the digit, Tulyakov et al. 2018 and Donahue et al. 2019). Batches are
``(video, audio, label)`` (``data=talking_digits``).

The model is class-conditional (the label is the content both modalities must show); ``sample(num,
labels=...)`` returns an ``AudioVisual`` of ``num`` pairs, ``waveforms(samples)`` their sound, ``fps`` and
``sample_rate`` the rates the files are written at. A gradient-penalty loss (``loss=wgan_gp``) penalises
the critic's gradient with respect to the whole pair: video and audio flattened into one vector per
sample, so ``||grad||`` is the norm over both inputs together, the Lipschitz constraint of a critic of pairs.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch

from vidgen.audio_visual import AudioVisual, frame_rate
from vidgen.errors import ConfigError
from vidgen.families.gan import GANModule


class AudioVisualGANModule(GANModule):
    """``GANModule`` on (clip, sound) pairs; ``sample(n)`` returns ``AudioVisual(video, audio)``.

    Args:
        sample_rate: of the sound (FSDD: 8000); with the generator's frames and samples it gives ``fps``.
        **kwargs: ``GANModule``'s arguments (generator, discriminator, loss, optimizers, num_classes, ...);
            the nets are ``TalkingDigitGenerator`` / ``AudioVisualDiscriminator`` or any with their calls.
    """

    data_kind = "audio_visual"
    default_callbacks = "audio_visual"
    # measured by vidgen.callbacks.audio_visual_quality (agreement of the digit seen and heard, per-modality
    # Fréchet distances and conditional accuracies), not by the single-modality sample-quality callback
    test_metrics = ("audio_visual",)

    def __init__(self, *args: Any, sample_rate: int = 8000, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.num_classes is None:
            raise ValueError(
                "model.num_classes=null: the audio-visual GAN is class-conditional (the digit is the content "
                "both the clip and the sound show). Fix: model.num_classes=10."
            )
        if self.channels_last:
            raise ValueError("model.channels_last=true is for image batches. Fix: model.channels_last=false.")
        self.sample_rate = sample_rate

    @property
    def fps(self) -> Fraction:
        """Frames per second: the generator's frames span its samples."""
        return frame_rate(self.generator.num_frames, self.generator.clip_samples, self.sample_rate)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        data = getattr(getattr(self.trainer, "datamodule", None), "data_kind", None)
        if data != "audio_visual":
            return
        dm = self.trainer.datamodule
        mine = (self.generator.num_frames, self.generator.clip_samples, self.sample_rate)
        have = (dm.seq_len, dm.clip_samples, dm.sample_rate)
        if mine != have:
            raise ConfigError(
                f"the generator makes {mine[0]} frames and {mine[1]} samples at {mine[2]} Hz but the data's "
                f"clips are {have[0]} frames and {have[1]} samples at {have[2]} Hz (data.seq_len, "
                "data.clip_samples, data.sample_rate). Fix: build the nets from the data's sizes, e.g. "
                "num_frames: ${data.seq_len}, clip_samples: ${data.clip_samples}."
            )

    def generate(
        self, z: torch.Tensor, y: torch.Tensor | None, net: torch.nn.Module | None = None
    ) -> AudioVisual:
        net = self.generator if net is None else net
        return AudioVisual(*net(z, y))

    def discriminate(self, x: AudioVisual, y: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(x.video, x.audio, y)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> AudioVisual:
        return self.generate(z, y)

    def draw(self, num: int, generator: torch.Generator | None, labels: torch.Tensor | None,
             context: torch.Tensor | None) -> AudioVisual:  # fmt: skip
        """Pairs of ``z ~ N(0, I)`` and ``labels`` (G's EMA when enabled)."""
        z = torch.randn(num, self.latent_dim, generator=generator).to(self.device)
        net = self.generator if self.generator_ema is None else self.generator_ema.module
        return self.generate(z, labels, net)

    @torch.no_grad()
    def waveforms(self, samples: AudioVisual, generator: torch.Generator | None = None) -> torch.Tensor:
        """The sound of ``samples`` ``(B, 1, L)`` in [-1, 1] (the audio families' interface)."""
        return samples.audio

    def _critic_of_pairs(self, like: AudioVisual, y: torch.Tensor):
        """The discriminator as a function of one flat vector per pair (video, then audio), for penalties."""
        split = like.video[0].numel()

        def critic(flat: torch.Tensor) -> torch.Tensor:
            pair = AudioVisual(flat[:, :split].view_as(like.video), flat[:, split:].view_as(like.audio))
            return self.discriminate(pair, y)

        return critic

    @staticmethod
    def _flat(x: AudioVisual) -> torch.Tensor:
        return torch.cat([x.video.flatten(1), x.audio.flatten(1)], dim=1)

    def split_batch(self, batch: tuple[torch.Tensor, ...]) -> tuple[AudioVisual, torch.Tensor]:
        """``(video, audio, label)`` batches: the pairs, then the digits."""
        return AudioVisual(batch[0], batch[1]), batch[2]

    def penalty(self, real: AudioVisual, fake: AudioVisual, y: torch.Tensor) -> torch.Tensor:
        """The loss's penalty over the whole pair: interpolation and gradient of one flat vector per pair."""
        return self.loss.penalty(self._critic_of_pairs(real, y), self._flat(real), self._flat(fake))
