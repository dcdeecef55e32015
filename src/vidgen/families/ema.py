"""The exponential moving average of a net's weights that generators sample with (``model.ema_decay``).

Kept as ``torch.optim.swa_utils.AveragedModel`` (its ``module`` is the averaged copy; ``n_averaged``
counts the updates), so the average is a submodule of the family: saved in checkpoints, moved with the
model, and never trained.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def check_ema_decay(decay: float | None, example: float) -> None:
    if decay is not None and not 0.0 < decay < 1.0:
        raise ValueError(f"model.ema_decay must be null or in (0, 1), e.g. {example}, got {decay}.")


def weight_average(net: nn.Module, decay: float | None) -> AveragedModel | None:
    """A frozen average of ``net`` updated as ``avg = decay * avg + (1 - decay) * net``; None without
    a decay."""
    if decay is None:
        return None
    average = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay))
    average.requires_grad_(False)
    return average
