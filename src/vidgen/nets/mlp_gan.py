"""The fully connected GAN of the original paper, optionally class-conditional.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), Section 5, with the
sizes of its released MNIST configuration (pylearn2 ``adversarial/mnist.yaml``): the generator is
``z (100) -> 1200 ReLU -> 1200 ReLU -> pixels``; the discriminator is two maxout layers of 240 units
with 5 pieces (Goodfellow et al. 2013) and dropout, then one logit. The output is tanh (not the
paper's sigmoid) so that images are in [-1, 1] like every vidgen generator.

Conditioning (``num_classes``) follows Mirza & Osindero, "Conditional Generative Adversarial Nets"
(arXiv:1411.1784): the one-hot label ``y`` is concatenated to the input of both nets (to ``z`` in G, to
the flattened image in D), a simplification of the paper's separate label branches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp_gan_init_(module: nn.Module) -> None:
    """Released config's init: linear weights ~ U(-0.05, 0.05), biases 0."""
    if isinstance(module, nn.Linear):
        nn.init.uniform_(module.weight, -0.05, 0.05)
        nn.init.zeros_(module.bias)


def _check(num_classes: int | None, hidden_dims: list[int], owner: str) -> None:
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"{owner} needs num_classes >= 2 or null (unconditional), got {num_classes}.")
    if not hidden_dims or min(hidden_dims) < 1:
        raise ValueError(f"{owner} needs a non-empty list of positive hidden_dims, got {hidden_dims}.")


def _with_label(h: torch.Tensor, y: torch.Tensor | None, num_classes: int | None) -> torch.Tensor:
    if num_classes is None:
        return h
    if y is None:
        raise ValueError("this net is class-conditional (num_classes is set): pass labels y")
    return torch.cat([h, F.one_hot(y, num_classes).to(h.dtype)], dim=1)


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): the max over ``pieces`` linear functions per unit."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(dim=2)


class MLPGenerator(nn.Module):
    """``z (B, latent_dim)`` [and labels ``y (B,)``] -> images ``(B, channels, image_size, image_size)``.

    Args:
        latent_dim: size of z (paper: 100).
        image_size, channels: output shape.
        hidden_dims: widths of the ReLU layers (paper: [1200, 1200]).
        num_classes: null for an unconditional G; the number of classes for a conditional one.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 32,
        channels: int = 1,
        hidden_dims: list[int] = (1200, 1200),
        num_classes: int | None = None,
    ):
        super().__init__()
        _check(num_classes, list(hidden_dims), "MLPGenerator")
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.shape = (channels, image_size, image_size)
        layers: list[nn.Module] = []
        width = latent_dim + (num_classes or 0)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers += [nn.Linear(width, channels * image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(mlp_gan_init_)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_label(z, y, self.num_classes)).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """Images ``(B, channels, image_size, image_size)`` [and labels ``y``] -> one logit per image ``(B,)``.

    Args:
        image_size, channels: input shape.
        hidden_dims: maxout units per layer (paper: [240, 240]).
        pieces: linear pieces per maxout unit (paper: 5).
        dropout: dropout probability before each maxout layer's output (paper: 0.5).
        num_classes: null for an unconditional D; the number of classes for a conditional one.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        hidden_dims: list[int] = (240, 240),
        pieces: int = 5,
        dropout: float = 0.5,
        num_classes: int | None = None,
    ):
        super().__init__()
        _check(num_classes, list(hidden_dims), "MLPDiscriminator")
        if pieces < 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"MLPDiscriminator needs pieces >= 1 and dropout in [0, 1), got {pieces}, {dropout}."
            )
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = channels * image_size * image_size + (num_classes or 0)
        for hidden in hidden_dims:
            layers += [Maxout(width, hidden, pieces), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.apply(mlp_gan_init_)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_label(x.flatten(1), y, self.num_classes)).flatten()
