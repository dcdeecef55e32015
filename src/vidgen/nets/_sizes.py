"""Size checks shared by the convolutional nets (no learnable parts)."""

from __future__ import annotations

import math


def power_of_two_stages(
    image_size: int, owner: str, why: str = "", fix: str = "data.image_size=32 (or 64)"
) -> int:
    """``log2(image_size) - 2``: the 2x up/down-sampling stages between 4x4 maps and ``image_size``.

    A plain ``ValueError`` (nets import nothing of vidgen's; the config builder reports it as a
    ConfigError) names ``owner``, the size, ``why`` (a parenthesis after the rule) and ``fix`` (the
    value to set) when ``image_size`` is not a power of two >= 8.
    """
    stages = math.log2(image_size) - 2 if image_size > 0 else -1
    if stages < 1 or not float(stages).is_integer():
        raise ValueError(
            f"{owner} needs image_size to be a power of two >= 8{why}, got {image_size}. Fix: set {fix}."
        )
    return int(stages)
