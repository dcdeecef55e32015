"""GAN losses against hand computation of the formulas they claim to implement."""

from __future__ import annotations

import math

import torch

from vidgen.losses.elbo import ELBOLoss, gaussian_kl
from vidgen.losses.gan import (
    HingeGANLoss,
    LeastSquaresGANLoss,
    MinimaxGANLoss,
    NonSaturatingGANLoss,
    WassersteinGPLoss,
)

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
    for loss in (MinimaxGANLoss(), NonSaturatingGANLoss(), HingeGANLoss(), LeastSquaresGANLoss()):
        assert torch.isfinite(loss.discriminator_loss(huge, huge)).all()
        assert torch.isfinite(loss.generator_loss(huge)).all()


# --- Hinge, least-squares and WGAN-GP losses (vidgen.losses.gan) ---------------------------------------


def test_hinge_loss_by_hand() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.5])
    # D: mean(max(0, 1 - real)) + mean(max(0, 1 + fake)) = (0 + 0.5 + 2)/3 + (0 + 1 + 1.5)/3
    loss = HingeGANLoss()
    assert math.isclose(loss.discriminator_loss(real, fake).item(), 2.5 / 3 + 2.5 / 3, rel_tol=1e-6)
    assert math.isclose(loss.generator_loss(fake).item(), -(-3.0 + 0.0 + 0.5) / 3, rel_tol=1e-6)
    assert loss.penalty(lambda x: x.sum(1), real[:, None], fake[:, None]).item() == 0.0


def test_least_squares_loss_by_hand() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    loss = LeastSquaresGANLoss()
    # D: 1/2 mean((real - 1)^2) + 1/2 mean(fake^2) = 1/2 * (0 + 4)/2 + 1/2 * (0 + 4)/2
    assert math.isclose(loss.discriminator_loss(real, fake).item(), 2.0, rel_tol=1e-6)
    # G: 1/2 mean((fake - 1)^2) = 1/2 * (1 + 9)/2
    assert math.isclose(loss.generator_loss(fake).item(), 2.5, rel_tol=1e-6)


def test_wasserstein_critic_and_generator_losses() -> None:
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([-1.0, 0.0])
    loss = WassersteinGPLoss()
    assert math.isclose(loss.discriminator_loss(real, fake).item(), -0.5 - 2.0, rel_tol=1e-6)
    assert math.isclose(loss.generator_loss(fake).item(), 0.5, rel_tol=1e-6)


def test_gradient_penalty_of_a_linear_critic() -> None:
    # D(x) = <w, x> + b has gradient w everywhere: penalty = lambda (||w|| - 1)^2 = 10 * (3 - 1)^2.
    w = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)  # ||w|| = 3
    critic = torch.nn.Linear(3, 1, dtype=torch.float64)
    with torch.no_grad():
        critic.weight.copy_(w[None])
    real, fake = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    penalty = WassersteinGPLoss(gp_weight=10.0).penalty(lambda x: critic(x).flatten(), real, fake)
    assert math.isclose(penalty.item(), 40.0, rel_tol=1e-12)
    # It is differentiable in the critic's weights: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||.
    penalty.backward()
    assert torch.allclose(critic.weight.grad[0], 20 * 2 * w / 3)


def test_gradient_penalty_is_taken_at_interpolates_of_real_and_fake() -> None:
    # D(x) = ||x||^2 / 2 has gradient x. With real = fake every interpolate is that point, so the penalty
    # is lambda * mean((||x_i|| - 1)^2); images (B, C, H, W) are flattened per sample.
    x = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    x[0, 0, 0, 0], x[1, 0, 1, 1] = 3.0, 0.5  # norms 3 and 0.5
    penalty = WassersteinGPLoss(gp_weight=2.0).penalty(
        lambda v: 0.5 * v.pow(2).flatten(1).sum(1), x, x.clone()
    )
    assert math.isclose(penalty.item(), 2.0 * ((3 - 1) ** 2 + (0.5 - 1) ** 2) / 2, rel_tol=1e-12)


# --- ELBO terms (vidgen.losses.elbo) -----------------------------------------------------------------------


def test_gaussian_kl_closed_form_by_hand_and_monte_carlo() -> None:
    mu = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[math.log(4.0), 0.0]], dtype=torch.float64)
    # 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2): dim 0 = 1/2 (1 + 4 - 1 - log 4), dim 1 = 0 (q = p).
    by_hand = 0.5 * (1 + 4 - 1 - math.log(4))
    assert math.isclose(gaussian_kl(mu, logvar).item(), by_hand, rel_tol=1e-12)
    # Monte Carlo: E_q[log q(z) - log p(z)] with 200,000 samples (standard error about 0.004).
    gen = torch.Generator().manual_seed(0)
    q = torch.distributions.Normal(mu[0], torch.exp(0.5 * logvar[0]))
    z = q.mean + q.stddev * torch.randn(200_000, 2, generator=gen, dtype=torch.float64)
    p = torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(1).mean().item()
    assert abs(mc - by_hand) < 0.02


def test_bernoulli_log_likelihood_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0, 0.5]])
    p = torch.tensor([[0.8, 0.1, 0.5]])
    by_hand = math.log(0.8) + math.log(0.9) + (0.5 * math.log(0.5) + 0.5 * math.log(0.5))
    ll = ELBOLoss("bernoulli").log_likelihood(torch.logit(p), x)
    assert ll.shape == (1,) and math.isclose(ll.item(), by_hand, rel_tol=1e-6)


def test_gaussian_log_likelihood_by_hand() -> None:
    x = torch.tensor([[0.2, 0.9]], dtype=torch.float64)
    mean = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    sigma = 0.5
    by_hand = sum(
        -0.5 * math.log(2 * math.pi * sigma**2) - (xi - 0.5) ** 2 / (2 * sigma**2) for xi in (0.2, 0.9)
    )
    ll = ELBOLoss("gaussian", sigma=sigma).log_likelihood(torch.logit(mean), x)
    assert math.isclose(ll.item(), by_hand, rel_tol=1e-9)


def test_elbo_terms_and_beta() -> None:
    x = torch.tensor([[1.0, 0.0]])
    out = torch.logit(torch.tensor([[0.5, 0.5]]))
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[0.0]])  # KL = 1/2
    for beta in (1.0, 4.0):
        terms = ELBOLoss("bernoulli", beta=beta)(out, x, mu, logvar)
        recon = 2 * math.log(2)
        assert math.isclose(terms["recon_nats"].item(), recon, rel_tol=1e-6)
        assert math.isclose(terms["kl_nats"].item(), 0.5, rel_tol=1e-6)
        assert math.isclose(terms["elbo_nats"].item(), -(recon + 0.5), rel_tol=1e-6)  # beta-free ELBO
        assert math.isclose(terms["loss"].item(), recon + beta * 0.5, rel_tol=1e-6)
