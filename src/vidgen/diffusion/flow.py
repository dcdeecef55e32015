"""The linear probability path of conditional flow matching / rectified flow.

Lipman et al., "Flow Matching for Generative Modeling", ICLR 2023 (arXiv:2210.02747), Sec. 4.1 (the
optimal-transport path with ``sigma_min = 0``), and Liu, Gong & Liu, "Flow Straight and Fast: Rectified
Flow", ICLR 2023 (arXiv:2209.03003): ``x_t = (1 - t) x_0 + t eps`` for ``t in [0, 1]``, data at ``t = 0``
and noise at ``t = 1`` (the direction of diffusion models; Lipman et al. run time the other way). Its
conditional velocity ``d x_t / d t = eps - x_0`` is the regression target; samples come from integrating
``dx/dt = v(x, t)`` from ``t = 1`` (noise) back to ``t = 0``.
"""

from __future__ import annotations

import torch


class LinearFlowPath:
    """``x_t = (1 - t) x_0 + t eps`` and its velocity ``eps - x_0``."""

    @staticmethod
    def _broadcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.to(like).view(-1, *([1] * (like.ndim - 1)))

    def sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        t = self._broadcast(t, x0)
        return (1 - t) * x0 + t * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``d x_t / d t``, the same at every ``t`` of the straight path."""
        return noise - x0
