"""Every image model x loss of the GAN and VAE families through the real entrypoint on the digits."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from references import frechet_distance_scipy
from vidgen.cli.train import train
from vidgen.errors import ConfigError
from vidgen.metrics.feature_spaces import feature_space

from conftest import compose_train

# The real code path at a size that runs in a few seconds per combination on 2 shared cores. FID (whose
# feature classifier is trained once per session) only where a test says so.
RUN = [
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.sample_grid.num_samples=16",
    "logger=csv",
]
TINY_MODEL = {
    "dcgan": ["model.generator.base_width=8", "model.discriminator.base_width=8"],
    "mlp_gan": ["model.generator.hidden_dims=[32]", "model.discriminator.hidden_dims=[32]"],
    "cgan": ["model.generator.hidden_dims=[32]", "model.discriminator.hidden_dims=[32]"],
    # n_critic=2: G is also updated within the 2 batches.
    "resnet_gan": ["model.generator.base_width=8", "model.discriminator.base_width=8", "model.n_critic=2"],
    "vae_mlp": ["model.net.hidden_dim=32"],
    "vae_conv": ["model.net.base_width=8", "model.net.hidden_dim=32"],
}
GAN_MODELS = ["mlp_gan", "dcgan", "resnet_gan", "cgan"]
GAN_LOSSES = ["gan_minimax", "gan_ns", "gan_hinge", "wgan_gp", "lsgan"]
VAE_MODELS = ["vae_mlp", "vae_conv"]


NO_FID = ["~callbacks.fid", "callbacks.model_checkpoint.monitor=null"]


def _run(
    tmp_path: Path, data_dir: Path, overrides: list[str], fid: bool = False
) -> tuple[dict, torch.nn.Module, DictConfig]:
    """Trains; checks metrics.json is finite; returns the metrics, the model rebuilt from last.ckpt and
    the run's config."""
    cfg = compose_train([*RUN, *([] if fid else NO_FID), *overrides], tmp_path, data_dir)
    metrics = train(cfg)
    not_finite = [k for k, v in metrics.items() if v is None or not math.isfinite(v)]
    assert not not_finite, f"non-finite metrics: {not_finite}"
    assert (tmp_path / "samples" / "epoch_000.png").is_file()
    model = instantiate(cfg.model)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    model.load_state_dict(state)
    images = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert images.shape == (5, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    lo, hi = cfg.data.value_range
    assert torch.isfinite(images).all() and images.min() >= lo - 1e-6 and images.max() <= hi + 1e-6
    return metrics, model, cfg


def _check_val_fid_by_hand(metrics: dict, model: torch.nn.Module, cfg: DictConfig) -> None:
    """``val/fid_digits`` is the Fréchet distance (scipy) in the data's own feature space between the 32
    validation images of the 2 batches and 32 samples of the trained model (noise seeded 4321, the
    callback's seed); the space reads those images: its accuracy on them is logged and above 90 %."""
    dm = instantiate(cfg.data)
    space = feature_space(dm, train=False)  # the network the run trained and cached for this data
    assert space.value_range == tuple(cfg.data.value_range)
    x, y = (t[:32] for t in dm.splits["val"].tensors)
    with torch.no_grad():
        fakes = model.sample(32, generator=torch.Generator().manual_seed(4321))
        (real, logits), fake = space.features_and_logits(x), space(fakes)
    assert metrics["val/n_real_digits"] == metrics["val/n_fake_digits"] == 32
    assert metrics["val/fid_digits"] == pytest.approx(frechet_distance_scipy(real, fake), rel=1e-4)
    accuracy = (logits.argmax(1) == y).double().mean().item()
    assert metrics["val/feature_extractor_accuracy_digits"] == pytest.approx(accuracy) and accuracy > 0.9


@pytest.mark.parametrize("loss", GAN_LOSSES)
@pytest.mark.parametrize("model", GAN_MODELS)
def test_gan_model_and_loss_train_on_digits(model: str, loss: str, tmp_path: Path, data_dir: Path) -> None:
    metrics, _, _ = _run(tmp_path, data_dir, [f"model={model}", f"loss={loss}", *TINY_MODEL[model]])
    assert {"train/d_loss_step", "train/g_loss_step", "val/d_loss", "val/g_loss"} <= set(metrics)
    # Only the gradient penalty is logged as a penalty, and it is logged whenever the loss has one.
    assert ("train/d_penalty_step" in metrics) == (loss == "wgan_gp")


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("model", VAE_MODELS)
def test_vae_model_and_likelihood_train_on_digits(
    model: str, likelihood: str, tmp_path: Path, data_dir: Path
) -> None:
    metrics, _, _ = _run(
        tmp_path,
        data_dir,
        [f"model={model}", "loss=elbo", f"loss.likelihood={likelihood}", *TINY_MODEL[model]],
    )
    for split in ("train", "val"):
        recon, kl, elbo = (metrics[f"{split}/{k}_nats"] for k in ("recon", "kl", "elbo"))
        assert kl >= 0
        assert math.isclose(elbo, -(recon + kl), rel_tol=1e-4)


@pytest.mark.parametrize("model", VAE_MODELS)
def test_vae_with_fid_and_sample_grid_on_unit_range_data(model: str, tmp_path: Path, data_dir: Path) -> None:
    """The VAE takes the data's value range from the data config; FID sees samples in that range, in the
    space of a LeNet-5 trained on the unit-range digits (not the [-1, 1] one)."""
    overrides = [f"model={model}", "loss=elbo", "data.value_range=[0.0,1.0]", *TINY_MODEL[model]]
    metrics, vae, cfg = _run(tmp_path, data_dir, overrides, fid=True)
    assert vae.value_range == (0.0, 1.0)
    _check_val_fid_by_hand(metrics, vae, cfg)


def test_vae_on_rgb(tmp_path: Path, data_dir: Path) -> None:
    _run(tmp_path, data_dir, ["model=vae_conv", "loss=elbo", "data.channels=3", *TINY_MODEL["vae_conv"]])


def test_conditional_resnet_gan_with_projection_and_ema_with_fid(tmp_path: Path, data_dir: Path) -> None:
    overrides = ["model=resnet_gan", "loss=gan_hinge", "model.num_classes=10", "model.ema_decay=0.9"]
    metrics, model, cfg = _run(tmp_path, data_dir, [*overrides, *TINY_MODEL["resnet_gan"]], fid=True)
    _check_val_fid_by_hand(metrics, model, cfg)  # samples of all ten classes in turn, from the EMA generator
    assert model.discriminator.embed.weight.shape == (10, 8)  # the projection
    assert model.generator.blocks[0].bn1.scale.weight.shape == (10, 8)  # conditional batch norm
    assert model.generator_ema is not None


def test_rgb_resnet_gan_with_wgan_gp(tmp_path: Path, data_dir: Path) -> None:
    _run(
        tmp_path, data_dir, ["model=resnet_gan", "loss=wgan_gp", "data.channels=3", *TINY_MODEL["resnet_gan"]]
    )


def test_gan_with_too_few_classes_for_the_data_is_a_config_error(tmp_path: Path, data_dir: Path) -> None:
    overrides = [*RUN, *NO_FID, "model=cgan", "model.num_classes=5", *TINY_MODEL["cgan"]]
    cfg = compose_train(overrides, tmp_path, data_dir)
    with pytest.raises(ConfigError, match=r"model.num_classes=5 but the data has 10 classes"):
        train(cfg)


def test_conditional_gan_needs_conditional_nets(tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train([*RUN, "model=dcgan", "model.num_classes=10"], tmp_path, data_dir)
    with pytest.raises(ConfigError, match=r"DCGANGenerator\) has num_classes=None"):
        train(cfg)


def test_vae_rejects_a_gan_loss(tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train([*RUN, "model=vae_mlp", "loss=gan_ns"], tmp_path, data_dir)
    with pytest.raises(
        ConfigError, match=r"is an adversarial loss and cannot train .*Fix: choose one of those: loss=elbo"
    ):
        train(cfg)


def test_vae_writes_its_step_loss_every_log_every_n_steps(tmp_path: Path, data_dir: Path) -> None:
    # the VAE logs train/loss_step only on the steps the loggers write (families/base.writes_step_logs):
    # the CSV holds the same rows as logging every step would give, and the epoch means over every step
    overrides = [*RUN, *NO_FID, "model=vae_mlp", "loss=elbo", *TINY_MODEL["vae_mlp"],
                 "trainer.limit_train_batches=7", "trainer.log_every_n_steps=3"]  # fmt: skip
    train(compose_train(overrides, tmp_path, data_dir))
    (path,) = tmp_path.glob("csv/*/metrics.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows if r.get("train/loss_step")]
    assert steps == [2, 5]
    assert sum(1 for r in rows if r.get("train/loss_epoch")) == 1
