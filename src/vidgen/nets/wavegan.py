"""WaveGAN generator and discriminator, optionally class-conditional.

Donahue, McAuley & Puckette, "Adversarial Audio Synthesis", ICLR 2019 (arXiv:1802.04208), Tables 2-3:
DCGAN flattened to one dimension with longer filters. The generator maps z (100) by a dense layer to
16 x 16d, then five transposed convolutions of kernel 25 and stride 4 (16d -> 8d -> 4d -> 2d -> d -> 1
channels, ReLU, tanh output) to 16,384 samples; the discriminator mirrors it with strided convolutions
(kernel 25, stride 4, LeakyReLU 0.2) and phase shuffle (n = 2) after every layer but the last, then one
dense logit. No batch norm (the paper trains with WGAN-GP). ``model_size`` is the paper's d (64).

Clips of ``16 * 4**k`` samples (k >= 1) are built with k up/down-sampling layers, the first of width
``d * 2**(k - 1)``; k = 5 is the paper's net. ``start_length`` (the paper's 16) changes the length of the
dense layer's output: 32 makes clips of ``32 * 4**k`` samples, e.g. the 8,192 (1.024 s at 8 kHz) of the
talking digits, which no k reaches from 16. Weights use Glorot-uniform init, the default of the
TensorFlow layers of the reference implementation (github.com/chrisdonahue/wavegan); the paper does not
state one.

Conditioning (``num_classes``): the one-hot label is concatenated to z in G (Mirza & Osindero 2014, as
``nets/mlp_gan.py``; the conditional WaveGAN of Lee et al., "Conditional WaveGAN", arXiv:1809.10636,
does the same) and D adds the projection ``<embed(y), phi(x)>`` to its logit (Miyato & Koyama, "cGANs
with Projection Discriminator", ICLR 2018, as ``nets/resnet_gan.py``). ``class_head`` adds AC-GAN's
auxiliary classifier to D (Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier
GANs", ICML 2017): class logits from the same features as the real/fake logit, which the GAN family trains
when ``model.aux_class_weight`` > 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

KERNEL, STRIDE = 25, 4
# Length-preserving-by-4 padding: (L + 2*11 - 25) // 4 + 1 = L / 4, and (L - 1)*4 - 2*11 + 25 + 1 = 4L.
PADDING, OUTPUT_PADDING = 11, 1


def wavegan_layers(clip_samples: int, owner: str, start_length: int = 16) -> int:
    """k such that ``clip_samples == start_length * 4**k`` (k >= 1); a ``ValueError`` naming the fix
    otherwise."""
    if start_length < 1:
        raise ValueError(f"{owner} needs start_length >= 1 (the paper's 16), got {start_length}.")
    k = math.log(clip_samples / start_length, 4) if clip_samples >= start_length else 0
    if k < 1 or not math.isclose(k, round(k)):
        lengths = ", ".join(str(start_length * 4**i) for i in range(1, 6))
        raise ValueError(
            f"{owner} needs clip_samples = {start_length} * 4^k (k >= 1: {lengths}, ...), got "
            f"{clip_samples}. Fix: set data.clip_samples=16384 (the paper's) or 4096, or start_length=32 "
            "for 32 * 4^k (8192)."
        )
    return round(k)


def wavegan_init_(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def _check_classes(num_classes: int | None, owner: str) -> None:
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"{owner} needs num_classes >= 2 or null (unconditional), got {num_classes}.")


class PhaseShuffle(nn.Module):
    """Shifts each example of ``(B, C, L)`` by its own random ``k`` in ``-n..n`` samples, filling the
    ``|k|`` samples shifted in by reflection (paper, Section 3.3: keeps D from telling real from fake by
    the periodic artifacts of transposed convolutions). Identity in eval mode, so D's validation
    scores are deterministic (the paper uses D only in training)."""

    def __init__(self, n: int = 2):
        super().__init__()
        if n < 0:
            raise ValueError(f"PhaseShuffle needs n >= 0, got {n}.")
        self.n = n

    def forward(self, x: torch.Tensor, shifts: torch.Tensor | None = None) -> torch.Tensor:
        """``shifts (B,)`` in ``-n..n`` (default: drawn uniformly) shift example i right by ``shifts[i]``."""
        if self.n == 0 or (not self.training and shifts is None):
            return x
        b, c, length = x.shape
        if shifts is None:
            shifts = torch.randint(-self.n, self.n + 1, (b,), device=x.device)
        padded = F.pad(x, (self.n, self.n), mode="reflect")
        # out[t] = padded[n - k + t]: x[t - k] inside, its reflection at the edge
        index = (self.n - shifts)[:, None, None] + torch.arange(length, device=x.device)
        return padded.gather(2, index.expand(b, c, length))


class WaveGANGenerator(nn.Module):
    """``z (B, latent_dim)`` [and labels ``y (B,)``] -> waveforms ``(B, channels, clip_samples)`` in [-1, 1].

    Args:
        latent_dim: size of z (paper: 100).
        clip_samples: output length, ``16 * 4**k`` (paper: 16384).
        channels: audio channels (1).
        model_size: the paper's d (64); the widest layer has ``d * 2**(k - 1)`` channels.
        num_classes: null for an unconditional G; the number of classes for a conditional one.
        start_length: samples of the dense layer's output (paper: 16); clips are ``start_length * 4**k``.
    """

    def __init__(self, latent_dim: int = 100, clip_samples: int = 16384, channels: int = 1,
                 model_size: int = 64, num_classes: int | None = None, start_length: int = 16):  # fmt: skip
        super().__init__()
        layers = wavegan_layers(clip_samples, "WaveGANGenerator", start_length)
        self.start_length = start_length
        _check_classes(num_classes, "WaveGANGenerator")
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.width = model_size * 2 ** (layers - 1)  # the paper's 16d for k = 5
        self.dense = nn.Linear(latent_dim + (num_classes or 0), start_length * self.width)
        convs: list[nn.Module] = []
        width = self.width
        for i in range(layers):
            out = channels if i == layers - 1 else width // 2
            convs.append(nn.ConvTranspose1d(width, out, KERNEL, STRIDE, PADDING, OUTPUT_PADDING))
            convs.append(nn.Tanh() if i == layers - 1 else nn.ReLU(inplace=True))
            width = out
        self.net = nn.Sequential(*convs)
        self.apply(wavegan_init_)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes is not None:
            if y is None:
                raise ValueError("WaveGANGenerator is class-conditional (num_classes is set): pass labels y")
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        h = F.relu(self.dense(z)).view(z.shape[0], self.width, self.start_length)
        return self.net(h)


class WaveGANDiscriminator(nn.Module):
    """Waveforms ``(B, channels, clip_samples)`` [and labels ``y``] -> one logit per clip ``(B,)``.

    Args:
        clip_samples: input length, ``16 * 4**k`` (paper: 16384).
        channels: audio channels (1).
        model_size: the paper's d (64).
        phase_shuffle: the paper's n (2); 0 turns it off.
        num_classes: null for an unconditional D; the number of classes for a projection D.
        start_length: samples left after the last convolution (paper: 16); clips are
            ``start_length * 4**k``.
        class_head: also a linear classifier of the ``num_classes`` classes on D's features (AC-GAN),
            returned by ``forward_with_class_logits``.
    """

    def __init__(self, clip_samples: int = 16384, channels: int = 1, model_size: int = 64,
                 phase_shuffle: int = 2, num_classes: int | None = None, start_length: int = 16,
                 class_head: bool = False):  # fmt: skip
        super().__init__()
        layers = wavegan_layers(clip_samples, "WaveGANDiscriminator", start_length)
        _check_classes(num_classes, "WaveGANDiscriminator")
        self.num_classes = num_classes
        blocks: list[nn.Module] = []
        width_in, width = channels, model_size
        for i in range(layers):
            blocks += [nn.Conv1d(width_in, width, KERNEL, STRIDE, PADDING), nn.LeakyReLU(0.2, inplace=True)]
            if i < layers - 1:  # not after the last convolution (paper, Table 3)
                blocks.append(PhaseShuffle(phase_shuffle))
            width_in, width = width, width * 2
        self.net = nn.Sequential(*blocks)
        self.num_features = start_length * width_in
        self.dense = nn.Linear(self.num_features, 1)
        self.embed = nn.Embedding(num_classes, self.num_features) if num_classes is not None else None
        if class_head and num_classes is None:
            raise ValueError("WaveGANDiscriminator(class_head=True) needs num_classes (the classes to tell).")
        self.class_head = nn.Linear(self.num_features, num_classes) if class_head else None
        self.apply(wavegan_init_)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_class_logits(x, y)[0]

    def forward_with_class_logits(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The real/fake logits ``(B,)`` and, with ``class_head``, the class logits ``(B, num_classes)``
        (else None) of one pass through D."""
        h = self.net(x).flatten(1)
        logit = self.dense(h).flatten()
        if self.embed is not None:
            if y is None:
                raise ValueError(
                    "WaveGANDiscriminator is class-conditional (num_classes is set): pass labels y"
                )
            logit = logit + (self.embed(y) * h).sum(dim=1)
        return logit, (self.class_head(h) if self.class_head is not None else None)
