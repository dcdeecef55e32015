"""MoCoGAN: motion and content decomposed, with image and video discriminators.

Tulyakov, Liu, Yang & Kautz, "MoCoGAN: Decomposing Motion and Content for Video Generation", CVPR 2018
(arXiv:1707.04993), Section 3: a video is a content code ``z_C`` (fixed over the clip) and a motion
trajectory ``z_M^(1..T)`` produced by a GRU from i.i.d. noise ``eps_t``; an image generator ``G_I``
turns each ``[z_C, z_M^(t)]`` into frame ``t``. Two discriminators: ``D_I`` on single frames and
``D_V`` (3D convolutions) on whole clips. Paper sizes: ``d_C = 50``, ``d_M = d_E = 10``.
Here ``G_I``/``D_I`` are the DCGAN nets and ``D_V`` is VGAN's 3D discriminator.

The GAN family draws one flat noise vector per video, ``z = [z_C, eps_1, ..., eps_T]``
(``latent_dim = d_C + T * d_E``), so MoCoGAN trains through the same loop as every other GAN.
"""

from __future__ import annotations

import torch
from torch import nn

from vidgen.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from vidgen.nets.vgan import VGANDiscriminator


class MoCoGANGenerator(nn.Module):
    """``z (B, content_dim + num_frames * noise_dim)`` -> video ``(B, num_frames, C, H, W)`` in [-1, 1].

    Args:
        num_frames, image_size, channels: output video shape.
        content_dim: ``d_C``; motion_dim: ``d_M`` (GRU state); noise_dim: ``d_E``.
        base_width: width of the DCGAN image generator.
    """

    def __init__(
        self,
        num_frames: int = 16,
        image_size: int = 64,
        channels: int = 1,
        content_dim: int = 50,
        motion_dim: int = 10,
        noise_dim: int = 10,
        base_width: int = 64,
    ):
        super().__init__()
        self.num_frames, self.content_dim, self.noise_dim = num_frames, content_dim, noise_dim
        self.latent_dim = content_dim + num_frames * noise_dim
        self.motion = nn.GRUCell(noise_dim, motion_dim)
        self.image_generator = DCGANGenerator(content_dim + motion_dim, image_size, channels, base_width)

    def motion_codes(self, z: torch.Tensor) -> torch.Tensor:
        """The motion trajectory ``z_M^(1..T)``, shape ``(B, num_frames, motion_dim)``."""
        eps = z[:, self.content_dim :].view(z.shape[0], self.num_frames, self.noise_dim)
        h, codes = None, []
        for t in range(self.num_frames):
            h = self.motion(eps[:, t], h)
            codes.append(h)
        return torch.stack(codes, dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        content = z[:, : self.content_dim].unsqueeze(1).expand(b, self.num_frames, self.content_dim)
        codes = torch.cat([content, self.motion_codes(z)], dim=2).flatten(0, 1)
        frames = self.image_generator(codes)
        return frames.view(b, self.num_frames, *frames.shape[1:])


class MoCoGANDiscriminator(nn.Module):
    """Video -> ``[D_V logits (B,), D_I logits (B * frames_per_video,)]`` concatenated into one vector.

    Concatenating lets any GAN loss (a mean over logits) train both discriminators at once; with one
    frame per video the image and video terms weigh equally, as in the paper's sum of two losses.
    The frames shown to ``D_I`` are drawn at random from each clip (paper, Section 3.1).

    Args:
        num_frames, image_size, channels: input video shape.
        base_width: width of both discriminators.
        frames_per_video: frames per clip shown to ``D_I``.
    """

    def __init__(
        self,
        num_frames: int = 16,
        image_size: int = 64,
        channels: int = 1,
        base_width: int = 64,
        frames_per_video: int = 1,
    ):
        super().__init__()
        self.frames_per_video = frames_per_video
        self.video_discriminator = VGANDiscriminator(num_frames, image_size, channels, base_width)
        self.image_discriminator = DCGANDiscriminator(image_size, channels, base_width)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        pick = torch.randint(t, (b, self.frames_per_video), device=video.device)
        frames = video[torch.arange(b, device=video.device).unsqueeze(1), pick].flatten(0, 1)
        return torch.cat([self.video_discriminator(video), self.image_discriminator(frames)])
