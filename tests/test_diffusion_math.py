"""The diffusion processes and samplers against formulas computed independently, in float64 with NumPy:
the forward process, its posterior, DDIM's variance, the prediction targets and the flow-matching path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidgen.diffusion.flow import LinearFlowPath
from vidgen.diffusion.samplers import DDIMSampler, DDPMSampler, EulerSampler, HeunSampler
from vidgen.diffusion.schedules import GaussianDiffusion, cosine_betas, linear_betas
from vidgen.losses.diffusion import EpsilonLoss, FlowMatchingLoss, VelocityLoss

SCHEDULES = ["linear", "cosine"]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_closed_form_marginal_equals_iterating_the_one_step_kernel(schedule: str) -> None:
    """``q(x_t|x_0) = N(sqrt(abar_t) x_0, 1 - abar_t)`` (Ho et al. Eq. 4): exactly, by pushing mean and
    variance through ``x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z`` one step at a time, and in
    distribution, by iterating that kernel on 20,000 draws."""
    diffusion = GaussianDiffusion.from_schedule(schedule, 1000)
    betas = diffusion.betas.numpy()
    mean_coef, var = 1.0, 0.0
    means, variances = [], []
    for beta in betas:  # Gaussian x_t = c x_0 + noise of variance var
        mean_coef, var = math.sqrt(1 - beta) * mean_coef, (1 - beta) * var + beta
        means.append(mean_coef)
        variances.append(var)
    np.testing.assert_allclose(diffusion.alphas_cumprod.sqrt().numpy(), means, rtol=1e-10)
    np.testing.assert_allclose((1 - diffusion.alphas_cumprod).numpy(), variances, rtol=1e-10, atol=1e-15)

    rng = np.random.default_rng(0)
    x0 = 0.7
    x = np.full(20_000, x0)
    checkpoints = {10: None, 200: None, 999: None}
    for t, beta in enumerate(betas):
        x = np.sqrt(1 - beta) * x + np.sqrt(beta) * rng.standard_normal(x.shape)
        if t in checkpoints:
            checkpoints[t] = (x.mean(), x.var())
    x0s = torch.full((1,), x0, dtype=torch.float64)
    for t, (mean, variance) in checkpoints.items():
        index = torch.tensor([t])
        closed = diffusion.q_sample(x0s, index, torch.zeros(1, dtype=torch.float64)).item()
        closed_var = diffusion.q_sample(x0s * 0, index, torch.ones(1, dtype=torch.float64)).item() ** 2
        # 20,000 draws: standard error of the mean <= 0.007, of the variance <= 1 %
        assert mean == pytest.approx(closed, abs=0.03), t
        assert variance == pytest.approx(closed_var, rel=0.04), t


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_posterior_is_bayes_rule_of_the_prior_and_the_one_step_kernel(schedule: str) -> None:
    """``q(x_{t-1}|x_t, x_0)`` is proportional to ``q(x_t|x_{t-1}) q(x_{t-1}|x_0)``: for two Gaussians, the
    precision is the sum of ``1 / (1 - abar_{t-1})`` and ``alpha_t / beta_t``, and the mean the
    precision-weighted sum. Computed with NumPy from the betas, not from the class's tables."""
    betas = (linear_betas() if schedule == "linear" else cosine_betas()).numpy()
    abar = np.cumprod(1 - betas)
    diffusion = GaussianDiffusion(torch.from_numpy(betas))
    rng = np.random.default_rng(1)
    for t in (1, 5, 300, 998, 999):
        x0, xt = rng.standard_normal(2)
        prior_mean, prior_var = np.sqrt(abar[t - 1]) * x0, 1 - abar[t - 1]
        # q(x_t | x_{t-1}) as a function of x_{t-1}: N(x_t / sqrt(alpha), beta / alpha)
        alpha = 1 - betas[t]
        lik_mean, lik_var = xt / np.sqrt(alpha), betas[t] / alpha
        var = 1 / (1 / prior_var + 1 / lik_var)
        mean = var * (prior_mean / prior_var + lik_mean / lik_var)
        got_mean, got_var = diffusion.q_posterior(
            torch.tensor([x0], dtype=torch.float64),
            torch.tensor([xt], dtype=torch.float64),
            torch.tensor([t]),
        )
        assert got_mean.item() == pytest.approx(mean, rel=1e-9, abs=1e-12), t
        assert got_var.item() == pytest.approx(var, rel=1e-9), t
    # at the first step abar_{t-1} = 1: the posterior is x_0 itself
    x0, xt = torch.tensor([0.3], dtype=torch.float64), torch.tensor([-2.0], dtype=torch.float64)
    mean, var = diffusion.q_posterior(x0, xt, torch.tensor([0]))
    assert mean.item() == pytest.approx(0.3, abs=1e-12) and var.item() == 0.0


def test_cosine_schedule_follows_its_definition_and_is_clipped() -> None:
    """Nichol & Dhariwal 2021, Eq. 17: ``abar_t = f(t)/f(0)`` while no beta is clipped; betas <= 0.999."""
    betas = cosine_betas(1000).numpy()
    f = np.cos((np.arange(1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
    abar = np.cumprod(1 - betas)
    unclipped = np.flatnonzero(betas >= 0.999)[0]
    assert 900 < unclipped < 1000 and betas.max() == pytest.approx(0.999)
    np.testing.assert_allclose(abar[:unclipped], (f[1:] / f[0])[:unclipped], rtol=1e-9)
    assert linear_betas()[0].item() == pytest.approx(1e-4) and linear_betas()[-1].item() == pytest.approx(
        0.02
    )


def test_ddim_with_eta_one_has_the_ddpm_posterior_variance_and_step() -> None:
    """Song et al. 2021, Eq. 16 at eta = 1 on all T steps is
    ``beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t`` (NumPy), and the whole DDIM chain is then DDPM's
    ancestral chain: same noise, same samples."""
    loss = EpsilonLoss("linear", 1000)
    betas = loss.diffusion.betas.numpy()
    abar = np.cumprod(1 - betas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    ddim = DDIMSampler(steps=1000, eta=1.0, clip_denoised=False)
    posterior_variance = (1 - abar_prev) / (1 - abar) * betas
    np.testing.assert_allclose(ddim.variances(ddim.process(loss)).numpy(), posterior_variance, rtol=1e-10)
    assert DDIMSampler(steps=1000, eta=0.0).variances(ddim.process(loss)).abs().max() == 0

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # any smooth function of (x, t)
        return 0.5 * x + 1e-3 * t.view(-1, 1)

    noise = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    by_ddim = ddim(loss, denoise, noise, torch.Generator().manual_seed(1))
    by_ddpm = DDPMSampler(steps=1000, clip_denoised=False)(
        loss, denoise, noise, torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(by_ddim, by_ddpm, rtol=1e-9, atol=1e-9)
    deterministic = DDIMSampler(steps=1000, eta=0.0, clip_denoised=False)(loss, denoise, noise)
    assert (deterministic - by_ddpm).abs().max() > 0.1  # eta does change the chain


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_eps_x0_and_v_convert_exactly_both_ways(schedule: str) -> None:
    diffusion = GaussianDiffusion.from_schedule(schedule, 1000)
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(64, 3, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(64, 3, 4, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (64,), generator=g)
    t[:2] = torch.tensor([0, 999])
    xt = diffusion.q_sample(x0, t, eps)
    v = diffusion.v_from_x0_eps(x0, t, eps)
    # v = sqrt(abar) eps - sqrt(1 - abar) x0, written out here
    abar = diffusion.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(v, abar.sqrt() * eps - (1 - abar).sqrt() * x0, rtol=0, atol=1e-12)
    back_x0, back_eps = diffusion.x0_eps_from_v(xt, t, v)
    torch.testing.assert_close(back_x0, x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(back_eps, eps, rtol=0, atol=1e-9)
    torch.testing.assert_close(diffusion.eps_from_x0(xt, t, x0), eps, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        diffusion.x0_from_eps(xt, t, eps), x0, rtol=0, atol=1e-6
    )  # / sqrt(abar ~ 4e-5)
    # the two objectives read their own targets back as the same (x0, eps)
    for loss, out in ((EpsilonLoss(schedule), eps), (VelocityLoss(schedule), v)):
        got_x0, got_eps = loss.x0_eps(out, xt, t)
        torch.testing.assert_close(got_x0, x0, rtol=0, atol=1e-6)
        torch.testing.assert_close(got_eps, eps, rtol=0, atol=1e-9)


def test_flow_matching_target_is_the_time_derivative_of_the_path() -> None:
    """``d x_t / d t`` by central differences equals ``eps - x_0`` at every t, and the loss regresses
    exactly that (a zero prediction costs the target's mean square, same draws)."""
    path = LinearFlowPath()
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(8, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(8, 1, 4, 4, generator=g, dtype=torch.float64)
    h = 1e-6
    for t in (0.1, 0.5, 0.9):
        times = torch.full((8,), t, dtype=torch.float64)
        derivative = (path.sample(x0, times + h, eps) - path.sample(x0, times - h, eps)) / (2 * h)
        torch.testing.assert_close(derivative, path.velocity(x0, eps), rtol=0, atol=1e-8)
    assert torch.equal(path.sample(x0, torch.zeros(8), eps), x0) and torch.equal(
        path.sample(x0, torch.ones(8), eps), eps
    )

    loss = FlowMatchingLoss()
    value = loss(lambda x, t: torch.zeros_like(x), x0, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    torch.rand(8, generator=g, dtype=torch.float64)  # the loss draws t first, then the noise
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    assert value.item() == pytest.approx((noise - x0).pow(2).mean().item(), rel=1e-12)


def test_samplers_reach_the_data_of_a_one_image_dataset_with_its_exact_denoiser() -> None:
    """For data that is one image ``x*``, the ideal predictions are known in closed form: ``eps = (x_t -
    sqrt(abar) x*) / sqrt(1 - abar)`` and ``v = (x_t - x*) / t``. DDIM (eta = 0) and Euler then land on
    ``x*`` from any noise, in any number of steps; a sign or index error in a sampler would not."""
    target = torch.linspace(-0.9, 0.9, 16, dtype=torch.float64).view(1, 1, 4, 4)
    noise = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    loss = EpsilonLoss("linear", 1000)

    def exact_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = loss.diffusion.signal_noise(t.long(), x)
        return (x - a * target) / s

    for steps in (1, 7, 50):
        out = DDIMSampler(steps=steps, eta=0.0)(loss, exact_eps, noise)
        torch.testing.assert_close(out, target.expand_as(out), rtol=0, atol=1e-9)
    flow = FlowMatchingLoss()
    out = EulerSampler(steps=7)(flow, lambda x, t: (x - target) / (t.view(-1, 1, 1, 1) / 1000), noise)
    torch.testing.assert_close(out, target.expand_as(out), rtol=0, atol=1e-9)


def test_heun_is_second_order_and_euler_first_order() -> None:
    """On ``dx/dt = x`` integrated from t = 1 to 0 (exact: ``x(0) = x(1) / e``), halving the step divides
    Euler's error by about 2 and Heun's by about 4."""
    flow = FlowMatchingLoss(time_scale=1.0)
    x1 = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    exact = math.exp(-1.0)

    def error(sampler_cls, steps: int) -> float:
        return abs(sampler_cls(steps)(flow, lambda x, t: x, x1).item() - exact)

    assert error(EulerSampler, 20) / error(EulerSampler, 40) == pytest.approx(2.0, rel=0.1)
    assert error(HeunSampler, 20) / error(HeunSampler, 40) == pytest.approx(4.0, rel=0.1)
    assert error(HeunSampler, 20) < error(EulerSampler, 20) / 10
