"""The video-GAN family: GANs whose generator outputs clips ``(B, T, C, H, W)``.

The adversarial loop is the GAN family's (``GANModule``: manual optimization, D every batch, G every
``n_critic``-th, any ``loss=gan_*``); what differs is the data (videos) and the nets: VGAN's
two-stream 3D generator (Vondrick et al. 2016) or MoCoGAN's content/motion generator with image and
video discriminators (Tulyakov et al. 2018), see ``vidgen.nets.vgan`` and ``vidgen.nets.mocogan``.
"""

from __future__ import annotations

from vidgen.families.gan import GANModule


class VideoGANModule(GANModule):
    """``GANModule`` for video data; ``sample(n)`` returns videos ``(n, T, C, H, W)``."""

    data_kind = "video"
    default_callbacks = "video"
