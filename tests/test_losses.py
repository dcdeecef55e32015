"""GAN losses against hand computation of the formulas they claim to implement."""

from __future__ import annotations

import math

import torch

from vidgen.losses.gan import MinimaxGANLoss, NonSaturatingGANLoss

# Logits chosen so that D(x) = sigmoid(logit) takes round values: logit(p) = log(p / (1 - p)).
REAL_P = [0.9, 0.6]
FAKE_P = [0.2, 0.5]


def _logits(ps: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(p / (1 - p)) for p in ps], dtype=torch.float64)


def test_minimax_is_the_value_function_of_goodfellow_eq1() -> None:
    # V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))], by hand on the probabilities above.
    value = (math.log(0.9) + math.log(0.6)) / 2 + (math.log(1 - 0.2) + math.log(1 - 0.5)) / 2
    loss = MinimaxGANLoss()
    d_loss = loss.discriminator_loss(_logits(REAL_P), _logits(FAKE_P))
    g_loss = loss.generator_loss(_logits(FAKE_P))
    assert math.isclose(d_loss.item(), -value, rel_tol=1e-12)  # D maximises V
    assert math.isclose(g_loss.item(), (math.log(0.8) + math.log(0.5)) / 2, rel_tol=1e-12)  # G minimises V


def test_non_saturating_generator_maximises_log_d() -> None:
    loss = NonSaturatingGANLoss()
    assert math.isclose(
        loss.generator_loss(_logits(FAKE_P)).item(), -(math.log(0.2) + math.log(0.5)) / 2, rel_tol=1e-12
    )
    # Same discriminator objective as the minimax game.
    assert torch.equal(
        loss.discriminator_loss(_logits(REAL_P), _logits(FAKE_P)),
        MinimaxGANLoss().discriminator_loss(_logits(REAL_P), _logits(FAKE_P)),
    )


def test_losses_are_stable_for_extreme_logits() -> None:
    huge = torch.tensor([80.0, -80.0])
    for loss in (MinimaxGANLoss(), NonSaturatingGANLoss()):
        assert torch.isfinite(loss.discriminator_loss(huge, huge)).all()
        assert torch.isfinite(loss.generator_loss(huge)).all()
