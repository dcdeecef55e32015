"""The speed options of the model configs (``model.channels_last``, ``model.compile``) change layout and
kernels only: training runs through the real entrypoint, values match the default layout up to float
rounding, checkpoints load into either layout, and a combination that cannot work fails in one message.
Their speed is measured by ``make bench`` (variants section), never asserted here."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from vidgen.cli.train import train
from vidgen.config import build
from vidgen.errors import ConfigError
from vidgen.families.memory_format import channels_last_images, to_channels_last

from conftest import TINY, compose_train


def _is_channels_last(t: torch.Tensor) -> bool:
    fmt = torch.channels_last if t.ndim == 4 else torch.channels_last_3d
    return t.is_contiguous(memory_format=fmt)


def test_dcgan_default_is_channels_last_and_trains_on_channels_last_batches(tmp_path: Path, data_dir: Path):
    over = [
        *TINY,
        "callbacks=model_checkpoint",
        "callbacks.model_checkpoint.monitor=null",
        "trainer.max_epochs=1",
    ]
    cfg = compose_train(over, tmp_path, data_dir)
    assert cfg.model.channels_last is True and cfg.model.compile is False  # the measured default
    model = build(cfg.model, "model")
    convs = [p for p in model.parameters() if p.ndim == 4]
    assert convs and all(_is_channels_last(p) for p in convs)

    seen: list[bool] = []  # the layout of every image D receives (real batches and fakes)
    model.discriminator.register_forward_pre_hook(lambda _, args: seen.append(_is_channels_last(args[0])))
    trainer = L.Trainer(
        max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=build(cfg.data, "data"))
    # two batches (global_step counts both optimizers): D(real), D(fake) for D's update, D(fake) for G's
    assert len(seen) == 6 and all(seen)

    # the whole run through the entrypoint, and its checkpoint loads into the default NCHW layout
    train(cfg)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    plain = instantiate(cfg.model, channels_last=False)
    plain.load_state_dict(state)
    assert all(p.is_contiguous() for p in plain.parameters())
    samples = plain.sample(4, generator=torch.Generator().manual_seed(0))
    assert samples.is_contiguous() and samples.shape == (4, 1, 32, 32)


def test_one_channel_weights_get_the_strides_module_to_gives(tmp_path: Path, data_dir: Path) -> None:
    """A (64, 1, 4, 4) weight is "contiguous" in both layouts, so a check of ``is_contiguous`` cannot tell
    them apart; the strides can, and they decide which oneDNN kernels run (NCHW ones reorder the
    activations of D's first layer every step)."""
    cfg = compose_train(TINY, tmp_path, data_dir)
    model = build(cfg.model, "model")
    reference = instantiate(cfg.model, channels_last=False).to(memory_format=torch.channels_last)
    one_channel = [n for n, p in model.named_parameters() if p.ndim == 4 and 1 in p.shape[:2]]
    assert one_channel, "the tiny DCGAN on grey digits has 1-channel convolutions"
    ref = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        assert p.stride() == ref[name].stride(), name
    assert model.discriminator.state_dict().keys() == reference.discriminator.state_dict().keys()


@pytest.mark.parametrize("channels_last", [True, False])
def test_real_rgb_batches_reach_the_nets_in_the_configured_layout(
    channels_last, tmp_path: Path, data_dir: Path
):
    # 3 channels: a 1-channel NCHW batch already has channels-last strides, so digits cannot show this
    rgb = torch.rand(4, 3, 32, 32) * 2 - 1
    option = f"model.channels_last={str(channels_last).lower()}"
    gan = build(compose_train([*TINY, "data.channels=3", option], tmp_path, data_dir).model, "model")
    seen = []
    gan.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    gan.discriminate(rgb, None)
    vae_over = ["model=vae_conv", "loss=elbo", "data.channels=3", option]
    vae = build(compose_train(vae_over, tmp_path, data_dir).model, "model")
    for x in (seen[0], vae.to_unit(rgb)):
        assert x.is_contiguous(memory_format=torch.channels_last) is channels_last
        assert x.is_contiguous() is not channels_last


def test_channels_last_gives_the_same_losses_and_gradients_up_to_rounding(tmp_path: Path, data_dir: Path):
    cfg = compose_train(TINY, tmp_path, data_dir)
    x = torch.rand(8, 1, 32, 32) * 2 - 1
    z = torch.randn(8, cfg.model.generator.latent_dim)
    results = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = instantiate(cfg.model, channels_last=channels_last)
        real = channels_last_images(x) if channels_last else x
        fake = model.generator(z)
        d_loss = model.loss.discriminator_loss(model.discriminator(real), model.discriminator(fake))
        d_loss.backward()
        grads = [p.grad.clone() for p in model.discriminator.parameters()]
        results[channels_last] = (d_loss.detach(), model.generator(z).detach(), grads)
    (loss0, fake0, grads0), (loss1, fake1, grads1) = results[False], results[True]
    torch.testing.assert_close(loss1, loss0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fake1, fake0, rtol=1e-4, atol=1e-5)
    for g1, g0 in zip(grads1, grads0, strict=True):
        torch.testing.assert_close(g1, g0, rtol=1e-4, atol=1e-5)


def test_channels_last_converts_conv3d_weights_of_video_gans_and_leaves_video_batches_alone():
    net = torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3), torch.nn.Conv2d(4, 4, 3), torch.nn.Linear(3, 3))
    to_channels_last(net)
    assert _is_channels_last(net[0].weight) and _is_channels_last(net[1].weight)
    assert not net[0].weight.is_contiguous() and not net[1].weight.is_contiguous()
    assert net[2].weight.is_contiguous()
    video = torch.rand(2, 5, 1, 8, 8)  # (B, T, C, H, W): the nets regroup it themselves
    assert channels_last_images(video) is video


SMALL_VIDEO = [
    "data=moving_digits",
    "data.batch_size=4",
    "data.num_train=8",
    "data.num_val=4",
    "data.num_test=4",
    "model.generator.base_width=4",
    "model.discriminator.base_width=4",
]


@pytest.mark.parametrize(
    "overrides",
    [
        # MoCoGAN has a Conv2d image D and a Conv3d video D: both ranks convert
        [*SMALL_VIDEO, "model=mocogan"],
        [*SMALL_VIDEO, "model=vgan"],
        ["model=vae_conv", "loss=elbo", "model.net.base_width=8", "data.batch_size=32"],
    ],
    ids=["mocogan", "vgan", "vae_conv"],
)
def test_channels_last_option_trains_other_families(overrides, tmp_path: Path, data_dir: Path):
    over = [
        *overrides,
        "callbacks=none",
        "logger=csv",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "model.channels_last=true",
    ]
    cfg = compose_train(over, tmp_path, data_dir)
    model = build(cfg.model, "model")
    assert all(_is_channels_last(p) for p in model.parameters() if p.ndim >= 4)
    metrics = train(cfg)
    assert metrics and all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics


def test_compile_with_a_gradient_penalty_fails_in_one_message(tmp_path: Path, data_dir: Path):
    cfg = compose_train([*TINY, "loss=wgan_gp", "model.compile=true"], tmp_path, data_dir)
    message = r"model\.compile=true cannot train with WassersteinGPLoss.*Fix: model\.compile=false"
    with pytest.raises(ConfigError, match=message):
        build(cfg.model, "model")


def test_compile_option_trains_with_unchanged_checkpoint_keys(tmp_path: Path, data_dir: Path):
    # torch.compile of G and D (inductor) in setup("fit"); a few small steps compile in about a minute here
    over = [
        *TINY,
        "model.compile=true",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=0",
        "callbacks=model_checkpoint",
        "callbacks.model_checkpoint.monitor=null",
    ]
    cfg = compose_train(over, tmp_path, data_dir)
    train(cfg)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    eager = instantiate(cfg.model, compile=False)
    assert set(state) == set(eager.state_dict())  # no "_orig_mod." prefixes: loads into an eager model
    eager.load_state_dict(state)
