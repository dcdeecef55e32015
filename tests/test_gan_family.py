"""The GAN family's training loop learns, its EMA is used and saved, spectral norm bounds D."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from vidgen.cli.train import train
from vidgen.families.gan import apply_spectral_norm

from conftest import compose_train

# One fixed batch of 32 real digits (overfit_batches turns shuffling off), a tiny DCGAN, no callbacks.
OVERFIT = [
    "model=dcgan",
    "model.generator.base_width=8",
    "model.discriminator.base_width=8",
    "data.batch_size=32",
    "+trainer.overfit_batches=1",
    "trainer.limit_val_batches=0",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks=none",
    "logger=csv",
]


def _series(run: Path, key: str) -> list[float]:
    (path,) = run.glob("csv/*/metrics.csv")
    with path.open() as f:
        return [float(r[key]) for r in csv.DictReader(f) if r.get(key)]


def test_discriminator_learns_to_separate_a_fixed_batch_from_a_frozen_generator(
    tmp_path: Path, data_dir: Path
) -> None:
    # G frozen (lr 0): D's loss starts at about 2 log 2 and must fall 5x in 40 steps (about 9x seen).
    cfg = compose_train([*OVERFIT, "trainer.max_epochs=40", "model.optimizer_g.lr=0.0"], tmp_path, data_dir)
    train(cfg)
    d_loss = _series(tmp_path, "train/d_loss_step")
    assert len(d_loss) == 40
    assert d_loss[0] > 1.0
    assert sum(d_loss[-5:]) / 5 < d_loss[0] / 5, d_loss


def test_generator_learns_to_fool_a_frozen_discriminator(tmp_path: Path, data_dir: Path) -> None:
    # D frozen (lr 0): G's loss -log D(G(z)) starts near log 2 and must fall 2.5x in 40 steps (about 4x seen).
    cfg = compose_train([*OVERFIT, "trainer.max_epochs=40", "model.optimizer_d.lr=0.0"], tmp_path, data_dir)
    train(cfg)
    g_loss = _series(tmp_path, "train/g_loss_step")
    assert len(g_loss) == 40
    assert sum(g_loss[-5:]) / 5 < g_loss[0] / 2.5, g_loss


def test_ema_generator_is_saved_in_checkpoints_and_used_for_sampling(tmp_path: Path, data_dir: Path) -> None:
    overrides = [
        *OVERFIT,
        "trainer.max_epochs=3",
        "model.ema_decay=0.5",
        "callbacks=model_checkpoint",
        "callbacks.model_checkpoint.monitor=null",
    ]
    cfg = compose_train(overrides, tmp_path, data_dir)
    train(cfg)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert int(state["generator_ema.n_averaged"]) == 3  # one update per generator step
    ema_keys = [k for k in state if k.startswith("generator_ema.module.")]
    assert len(ema_keys) == len([k for k in state if k.startswith("generator.")])
    # After 3 steps with decay 0.5, the average differs from the live weights.
    assert not torch.equal(state["generator_ema.module.net.0.weight"], state["generator.net.0.weight"])

    model = instantiate(cfg.model)
    model.load_state_dict(state)
    z = torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(3))
    sampled = model.sample(4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(sampled, model.generator_ema.module.eval()(z))
        assert not torch.allclose(sampled, model.generator.eval()(z))


def test_spectral_norm_option_normalises_every_discriminator_weight() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 30 * 30, 1))
    with torch.no_grad():
        d[2].weight.mul_(50.0)  # a largest singular value far above 1
    apply_spectral_norm(d)
    for _ in range(30):  # one power iteration per training-mode forward, as in Miyato et al.
        d(torch.randn(2, 1, 32, 32))
    for layer in (d[0], d[2]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05
