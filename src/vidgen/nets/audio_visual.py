"""A talking-digit generator and a joint discriminator of (clip, sound) pairs.

The generator is MoCoGAN's (Tulyakov et al., "MoCoGAN: Decomposing Motion and Content for Video
Generation", CVPR 2018, arXiv:1707.04993, Section 3) beside WaveGAN's (Donahue, McAuley & Puckette,
"Adversarial Audio Synthesis", ICLR 2019, arXiv:1802.04208), joined by MoCoGAN's content code: the
content of a talking digit is the digit, so both generators receive the same content code ``z_C`` and the
same class (one-hot, concatenated as in Mirza & Osindero 2014). The clip adds MoCoGAN's motion
trajectory (a GRU over per-frame noise), the sound a noise of its own (``z_A``: voice, timing), so that
one digit can be written and said in many ways. One flat noise vector per pair,
``z = [z_C, eps_1 .. eps_T, z_A]``, keeps the GAN family's loop unchanged.

The discriminator judges pairs: the 3D-conv trunk of VGAN's video discriminator (as MoCoGAN's ``D_V``)
and the strided 1D-conv trunk of WaveGAN's discriminator (with phase shuffle) give one feature vector
each; their concatenation ``h`` gets a linear logit plus the projection ``<embed(y), h>`` (Miyato & Koyama,
"cGANs with Projection Discriminator", ICLR 2018), so a clip of a 3 with the sound of a 7 is judged
against the label on both halves. MoCoGAN's image discriminator ``D_I`` on single frames is kept (its
logits are concatenated to the joint ones, as ``nets.mocogan.MoCoGANDiscriminator`` does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidgen.nets.dcgan import DCGANDiscriminator
from vidgen.nets.mocogan import MoCoGANGenerator
from vidgen.nets.vgan import VGANDiscriminator
from vidgen.nets.wavegan import WaveGANDiscriminator, WaveGANGenerator


class TalkingDigitGenerator(nn.Module):
    """``z (B, latent_dim)`` and digits ``y (B,)`` -> ``(video (B, T, C, H, W), audio (B, 1, L))``, both in
    [-1, 1], sharing the content code and the class.

    Args:
        num_frames, image_size, channels: the clips' shape.
        clip_samples: the sounds' length (``start_length * 4**k``).
        num_classes: digits (10).
        content_dim: ``d_C`` of MoCoGAN (50), shared by both generators.
        motion_dim, noise_dim: ``d_M``, ``d_E`` of MoCoGAN (10, 10).
        audio_noise_dim: ``z_A``, the sound's own noise.
        base_width: width of MoCoGAN's DCGAN image generator.
        model_size: WaveGAN's d.
        start_length: WaveGAN's first length (16; 32 for 8,192 samples).
    """

    def __init__(self, num_frames: int = 8, image_size: int = 32, channels: int = 1, clip_samples: int = 8192,
                 num_classes: int = 10, content_dim: int = 50, motion_dim: int = 10, noise_dim: int = 10,
                 audio_noise_dim: int = 50, base_width: int = 32, model_size: int = 16,
                 start_length: int = 32):  # fmt: skip
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"TalkingDigitGenerator needs num_classes >= 2 (the digits), got {num_classes}.")
        self.num_classes, self.content_dim, self.audio_noise_dim = num_classes, content_dim, audio_noise_dim
        self.num_frames, self.clip_samples = num_frames, clip_samples
        self.motion_noise = num_frames * noise_dim
        # MoCoGAN's content code is [z_C, one-hot y]; its motion part is the per-frame noise
        self.video = MoCoGANGenerator(num_frames, image_size, channels, content_dim + num_classes, motion_dim,
                                      noise_dim, base_width)  # fmt: skip
        # WaveGAN concatenates the one-hot class itself
        self.audio = WaveGANGenerator(content_dim + audio_noise_dim, clip_samples, 1, model_size, num_classes,
                                      start_length)  # fmt: skip
        self.latent_dim = content_dim + self.motion_noise + audio_noise_dim

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        content, motion = (
            z[:, : self.content_dim],
            z[:, self.content_dim : self.content_dim + self.motion_noise],
        )
        voice = z[:, self.content_dim + self.motion_noise :]
        digit = F.one_hot(y, self.num_classes).to(z.dtype)
        video = self.video(torch.cat([content, digit, motion], dim=1))
        audio = self.audio(torch.cat([content, voice], dim=1), y)
        return video, audio


class AudioVisualDiscriminator(nn.Module):
    """``(video (B, T, C, H, W), audio (B, 1, L))`` and digits ``y`` -> logits
    ``(B + B * frames_per_video,)``: the joint projection logit of each pair, then ``D_I``'s logits of
    random frames.

    Args:
        num_frames, image_size, channels: the clips' shape.
        clip_samples: the sounds' length.
        num_classes: digits (10).
        base_width: width of the video and image discriminators.
        model_size: WaveGAN's d of the audio branch.
        phase_shuffle: WaveGAN's n (2).
        start_length: as the generator's.
        frames_per_video: frames per clip shown to ``D_I`` (0: no image discriminator).
    """

    def __init__(self, num_frames: int = 8, image_size: int = 32, channels: int = 1, clip_samples: int = 8192,
                 num_classes: int = 10, base_width: int = 32, model_size: int = 16, phase_shuffle: int = 2,
                 start_length: int = 32, frames_per_video: int = 1):  # fmt: skip
        super().__init__()
        self.num_classes, self.frames_per_video = num_classes, frames_per_video
        video = VGANDiscriminator(num_frames, image_size, channels, base_width)
        audio = WaveGANDiscriminator(clip_samples, 1, model_size, phase_shuffle, None, start_length)
        # the trunks only: their heads are replaced by the joint one below
        self.video_features, self.audio_features = video.features, audio.net
        self.num_features = video.head.in_features + audio.num_features
        self.head = nn.Linear(self.num_features, 1)
        self.embed = nn.Embedding(num_classes, self.num_features)
        nn.init.xavier_uniform_(self.embed.weight)
        self.image_discriminator = (
            DCGANDiscriminator(image_size, channels, base_width) if frames_per_video else None
        )

    def features(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``h``: the video and audio trunks' features, concatenated ``(B, num_features)``."""
        return torch.cat([self.video_features(video.transpose(1, 2)).flatten(1),
                          self.audio_features(audio).flatten(1)], dim=1)  # fmt: skip

    def forward(self, video: torch.Tensor, audio: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(video, audio)
        logits = self.head(h).flatten() + (self.embed(y) * h).sum(dim=1)
        if self.image_discriminator is None:
            return logits
        b, t = video.shape[:2]
        pick = torch.randint(t, (b, self.frames_per_video), device=video.device)
        frames = video[torch.arange(b, device=video.device).unsqueeze(1), pick].flatten(0, 1)
        return torch.cat([logits, self.image_discriminator(frames)])
