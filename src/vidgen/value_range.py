"""Pixel value ranges: every datamodule says its ``value_range`` (``[-1, 1]`` for GANs, ``[0, 1]`` for
Bernoulli likelihoods); models, metrics and media writers map to and from the unit interval here."""

from __future__ import annotations

import torch


def to_unit(x: torch.Tensor, value_range: tuple[float, float], clamp: bool = False) -> torch.Tensor:
    """``x`` mapped from ``value_range`` to [0, 1] (clipped to it when ``clamp``)."""
    lo, hi = value_range
    unit = (x - lo) / (hi - lo)
    return unit.clamp(0.0, 1.0) if clamp else unit


def from_unit(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """``x`` mapped from [0, 1] to ``value_range``."""
    lo, hi = value_range
    return x * (hi - lo) + lo


#: The range every feature network sees, whatever the data's: trained and measured on the same scale.
CANONICAL = (-1.0, 1.0)


def to_canonical(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """``x`` mapped from ``value_range`` to ``CANONICAL`` (unchanged when it is already there)."""
    if tuple(value_range) == CANONICAL:
        return x
    return from_unit(to_unit(x, value_range), CANONICAL)


def to_uint8(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """``x`` in ``value_range`` as uint8 pixels 0..255 (clipped, rounded): what image files hold."""
    return (to_unit(x.float(), value_range, clamp=True) * 255).round().to(torch.uint8)


def check_value_range(
    value_range: tuple[float, float] | list[float], key: str = "value_range"
) -> tuple[float, float]:
    """``value_range`` as a tuple, or a ``ValueError`` naming ``key`` when it is not ``[low, high]``."""
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"{key} must be [low, high] with low < high, got {list(value_range)}.")
    return float(value_range[0]), float(value_range[1])
