"""The VAE family learns (its negative ELBO approaches its floor on a fixed batch) and estimates the test
NLL with the IWAE bound of Burda et al. 2016."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch.distributions import Normal

from vidgen.families.vae import VAEModule

from conftest import compose_train


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_overfits_a_fixed_batch(likelihood: str, tmp_path: Path, data_dir: Path) -> None:
    """The loss minus its floor (the negative log-likelihood of a perfect reconstruction: the pixels'
    own Bernoulli entropy, or the Gaussian's normaliser) falls 4x in 200 Adam steps on 32 digits (about
    7x for Bernoulli and 11x for Gaussian seen); a VAE that does not learn stays near its start."""
    overrides = [
        "model=vae_mlp",
        "loss=elbo",
        f"loss.likelihood={likelihood}",
        "model.optimizer.lr=0.003",
        "data.batch_size=32",
    ]
    cfg = compose_train(overrides, tmp_path, data_dir)
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    x, _ = next(iter(datamodule.train_dataloader()))
    model = instantiate(cfg.model)
    optimizer = model.configure_optimizers()
    unit = model.to_unit(x)
    floor = -model.loss.log_likelihood(torch.logit(unit, eps=1e-6), unit).mean().item()

    excess = []
    for _ in range(200):
        loss = model(x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        excess.append(loss.item() - floor)
    assert min(excess) > 0  # the floor is a true lower bound of the loss
    assert sum(excess[-5:]) / 5 < excess[0] / 4, (excess[0], excess[-5:])


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[VAEModule, torch.Tensor]:
    """A small MLP VAE trained for 300 Adam steps on the embedded digits (16x16), and the 180 test digits.

    Gaussian likelihood (sigma 0.1): its sharp posterior is far from q's Gaussian, so the IWAE bounds of
    successive k lie nats apart (about 9, 4 and 2 nats from k = 1 to 1000), far above their Monte Carlo
    noise (about 0.5); with the Bernoulli likelihood on grey digits q fits so well that they differ by
    hundredths.
    """
    overrides = ["model=vae_mlp", "loss=elbo", "loss.likelihood=gaussian", "data.image_size=16",
                 "model.net.hidden_dim=200"]  # fmt: skip
    cfg = compose_train(overrides, tmp_path_factory.mktemp("vae"), data_dir)
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = instantiate(cfg.model)
    optimizer = model.configure_optimizers()
    steps = 0
    while steps < 300:
        for x, _ in datamodule.train_dataloader():
            loss = model(x)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    x_test = torch.cat([x for x, _ in datamodule.test_dataloader()])
    return model.eval(), x_test


def test_iwae_with_one_sample_is_the_single_sample_elbo_of_the_same_z(trained_vae) -> None:
    """Burda et al. 2016, Eq. 8 at k = 1: ``log p(x|z) + log p(z) - log q(z|x)`` of one ``z ~ q(z|x)``,
    here from the same seeded draw and with the Gaussian densities of ``torch.distributions``."""
    model, x = trained_vae
    with torch.no_grad():
        target = model.to_unit(x)
        mu, logvar = model.net.encode(target)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(1, *mu.shape, generator=torch.Generator().manual_seed(7))[0]
        z = mu + eps * std
        log_px = model.loss.log_likelihood(model.net.decode(z), target)
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_qz = Normal(mu, std).log_prob(z).sum(-1)
        elbo = log_px + log_pz - log_qz
        nll_1 = model.importance_sampled_nll(x, k=1, generator=torch.Generator().manual_seed(7))
    assert nll_1.shape == (len(x),)
    torch.testing.assert_close(nll_1, -elbo, rtol=1e-5, atol=1e-4)
    # and that estimate is the ELBO on average: near the analytic-KL ELBO the family logs
    assert nll_1.mean().item() == pytest.approx(-model(x)["elbo_nats"].item(), rel=0.02)


def test_iwae_bound_tightens_as_k_grows_on_a_trained_vae(trained_vae) -> None:
    """``E[L_k]`` never decreases with k (Burda et al. 2016, Theorem 1): averaged over the 180 test digits
    of a trained model, each k with its own draws, each bound is above the one of 10x fewer samples."""
    model, x = trained_vae
    bounds = [
        -model.importance_sampled_nll(x, k=k, generator=torch.Generator().manual_seed(k)).mean().item()
        for k in (1, 10, 100, 1000)
    ]
    assert all(tighter - looser > 0.5 for looser, tighter in itertools.pairwise(bounds)), bounds
