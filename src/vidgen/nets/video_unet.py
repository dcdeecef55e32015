"""The factorized space-time U-Net of video diffusion: a denoiser ``(x_t, t[, y][, context]) -> output`` of
clips ``(B, T, C, H, W)``.

Ho, Salimans, Gritsenko, Chan, Norouzi & Fleet, "Video Diffusion Models", NeurIPS 2022 (arXiv:2204.03458),
Sec. 3: the image diffusion U-Net (``vidgen.nets.unet.DDPMUNet``, whose blocks are reused here) made into a
3-D U-Net factorized over space and time:

- every 2-D convolution becomes a space-only 3-D one (3x3 -> 1x3x3): the image net's residual blocks,
  resampling and group norms run on each frame alone (frames folded into the batch);
- each spatial attention block keeps attending over the pixels of one frame, and is followed by a
  temporal attention block that attends over the frames at each pixel (pixels folded into the batch),
  with relative position embeddings (Shaw et al. 2018) so that the net knows the frames' order without an
  absolute notion of video time. Here the embedding is a learned bias per head and frame offset added to
  the attention logits (the form of Raffel et al. 2020's T5), starting at zero;
- ``independent_frames=True`` masks the temporal attention so that every frame attends only to itself:
  the paper's joint training on images, where a video net models independent frames (Sec. 3).

Frame conditioning (``context_frames > 0``): the clean context frames are concatenated in front of the noisy
frames along time, with one extra input channel flagging them (1 = given, 0 = to denoise); the net attends
over all ``context_frames + num_frames`` frames and returns only the noisy frames' prediction. This is the
explicit conditional model that Ho et al. contrast with their reconstruction guidance (Sec. 3.1), trained as
RaMViD does (Höppe et al., "Diffusion Models for Video Prediction and Infilling", TMLR 2022: concatenated
clean frames with a mask channel, loss on the noisy frames only).

Weight init as ``DDPMUNet``: every block's last layer, the temporal attention's output projection included,
starts at zero, so the untrained net is the identity on its skips and predicts 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from vidgen.nets.unet import AttentionBlock, DDPMUNet, _zero


class TemporalAttention(nn.Module):
    """Multi-head self-attention over the ``frames`` of every pixel of a feature map ``(B*T, C, H, W)``,
    with a learned relative-position bias per head, and a residual connection.

    Args:
        channels: feature channels (divisible by ``heads``).
        groups: GroupNorm groups (the norm is per frame, so it mixes no frames).
        heads: attention heads.
        max_frames: the most frames attended over (offsets from ``1 - max_frames`` to ``max_frames - 1``).
    """

    def __init__(self, channels: int, groups: int, heads: int, max_frames: int):
        super().__init__()
        if channels % heads:
            raise ValueError(
                f"VideoUNet: attention_heads={heads} must divide every attention width ({channels}). "
                f"Fix: model.net.attention_heads=<a divisor of {channels}>."
            )
        self.heads, self.max_frames = heads, max_frames
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = _zero(nn.Linear(channels, channels))
        self.relative_bias = nn.Embedding(2 * max_frames - 1, heads)
        nn.init.zeros_(self.relative_bias.weight)  # no preference for any offset until trained

    def bias(self, frames: int, independent_frames: bool) -> torch.Tensor:
        """``(heads, T, T)`` additive logits: the bias of offset ``j - i``, or -inf off the diagonal when
        frames are independent."""
        if frames > self.max_frames:
            raise ValueError(
                f"TemporalAttention was built for at most {self.max_frames} frames, got {frames}."
            )
        index = torch.arange(frames, device=self.relative_bias.weight.device)
        bias = self.relative_bias(index[None, :] - index[:, None] + self.max_frames - 1).permute(2, 0, 1)
        if independent_frames:
            eye = torch.eye(frames, dtype=torch.bool, device=bias.device)
            bias = bias.masked_fill(~eye, float("-inf"))
        return bias

    def forward(self, x: torch.Tensor, frames: int, independent_frames: bool = False) -> torch.Tensor:
        bt, c, h, w = x.shape
        b, d = bt // frames, c // self.heads
        # (B*T, C, H, W) -> (B*H*W, T, C): one sequence of frames per pixel
        seq = self.norm(x).view(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
        q, k, v = self.qkv(seq).view(b * h * w, frames, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        bias = self.bias(frames, independent_frames).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B*H*W, heads, T, d)
        out = self.proj(out.transpose(1, 2).reshape(b * h * w, frames, c))
        return x + out.view(b, h * w, frames, c).permute(0, 2, 3, 1).reshape(bt, c, h, w)


class SpaceTimeAttention(nn.Module):
    """The factorized attention of Ho et al. 2022: ``DDPMUNet``'s spatial attention within each frame, then
    temporal attention across frames at each pixel."""

    def __init__(self, channels: int, groups: int, heads: int, max_frames: int):
        super().__init__()
        self.spatial = AttentionBlock(channels, groups)
        self.temporal = TemporalAttention(channels, groups, heads, max_frames)

    def forward(self, x: torch.Tensor, frames: int, independent_frames: bool = False) -> torch.Tensor:
        return self.temporal(self.spatial(x), frames, independent_frames)


class VideoUNet(DDPMUNet):
    """Predicts a tensor of the shape of ``x`` ``(B, num_frames, channels, image_size, image_size)`` from
    ``x``, the time ``t`` (float ``(B,)``, one per clip), the class ``y`` of a conditional net and, when
    ``context_frames > 0``, the clean ``context`` ``(B, context_frames, channels, H, W)`` before ``x``.

    Args:
        num_frames: frames denoised (the generated ones; after the context in a frame-conditioned net).
        context_frames: clean frames given before them (0: unconditional video).
        attention_heads: heads of the temporal attention.
        image_size, channels, base_width, channel_mult, num_res_blocks, attention_resolutions, dropout,
            norm_groups, num_classes: as ``DDPMUNet``'s, per frame. The spatial attention is single-head
            as there; temporal attention follows every spatial one (Ho et al., Sec. 3).
    """

    def __init__(
        self,
        num_frames: int = 16,
        context_frames: int = 0,
        attention_heads: int = 4,
        image_size: int = 32,
        channels: int = 1,
        base_width: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        attention_resolutions: Sequence[int] = (8,),
        dropout: float = 0.0,
        norm_groups: int = 8,
        num_classes: int | None = None,
    ):
        if num_frames < 1 or context_frames < 0:
            raise ValueError(
                f"VideoUNet needs num_frames >= 1 and context_frames >= 0, got {num_frames} and "
                f"{context_frames}. Fix: model.net.num_frames=<frames to generate>."
            )
        attention = partial(SpaceTimeAttention, heads=attention_heads, max_frames=context_frames + num_frames)
        super().__init__(image_size, channels, base_width, channel_mult, num_res_blocks,
                         attention_resolutions, dropout, norm_groups, num_classes, attention)  # fmt: skip
        self.num_frames, self.context_frames = num_frames, context_frames
        if context_frames:  # one more input channel: the flag of the given frames
            self.conv_in = nn.Conv2d(channels + 1, base_width, 3, padding=1)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        independent_frames: bool = False,
    ) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.num_frames:
            raise ValueError(
                f"VideoUNet expects clips (B, {self.num_frames}, C, H, W), got {tuple(x.shape)}."
            )
        if (context is None) != (self.context_frames == 0):
            wanted = "context of that many clean frames" if self.context_frames else "no context"
            raise ValueError(
                f"VideoUNet was built with context_frames={self.context_frames}: call it with {wanted}."
            )
        if context is not None:
            flags = torch.zeros(len(x), self.context_frames + self.num_frames, 1, *x.shape[3:]).to(x)
            flags[:, : self.context_frames] = 1.0
            x = torch.cat([torch.cat([context.to(x), x], dim=1), flags], dim=2)
        b, frames = x.shape[:2]
        emb = self.embed(t, y).repeat_interleave(frames, dim=0)  # the clip's time for each of its frames
        out = self.trunk(x.flatten(0, 1), emb, frames=frames, independent_frames=independent_frames)
        return out.view(b, frames, *out.shape[1:])[:, self.context_frames :]
