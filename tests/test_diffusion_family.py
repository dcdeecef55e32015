"""The diffusion family through the real entrypoints (composed conf/, the real Trainer, vidgen-sample):
it learns a small set of images, guidance scale 0 is unconditional sampling, resuming is exact, samplers
change at sampling time, and combinations it cannot train stop with one message."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict
from PIL import Image

from vidgen.cli.sample import sample, with_sampling_options
from vidgen.cli.train import train
from vidgen.config import compose_config
from vidgen.errors import ConfigError
from vidgen.media import image_grid, write_png

from conftest import assert_train_stops_with, compose_train, model_and_data, split_tensors

# A U-Net of 0.1M parameters on 8x8 digits (their native size), DDIM with 10 steps: seconds on one core.
TINY_UNET = [
    "model=ddpm_unet",
    "loss=diffusion_eps",
    "data.image_size=8",
    "model.net.base_width=16",
    "model.net.channel_mult=[1,2]",
    "model.net.attention_resolutions=[4]",
    "model.net.dropout=0.0",
    "model.sampling_steps=10",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    # last.ckpt only: the FID callback and its feature network are tested elsewhere
    "callbacks=model_checkpoint",
    "~callbacks.model_checkpoint",
]


def nearest_distances(samples: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Root-mean-square pixel distance of each sample to its nearest image, and that image's index."""
    d = torch.cdist(samples.flatten(1).double(), images.flatten(1).double()) / samples[0].numel() ** 0.5
    return d.min(dim=1)


@pytest.fixture(scope="module")
def trained_on_8(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, torch.Tensor]:
    """vidgen-train on the first 8 training digits (``overfit_batches=1``: one unshuffled batch of 8) for
    400 steps; its last checkpoint and the 8 images. The cosine schedule: on 8x8 images the linear one
    leaves little signal in most of its steps (Nichol & Dhariwal 2021, Sec. 3.2), and 400 steps with it
    gave samples about 1.3x farther from the digits."""
    out = tmp_path_factory.mktemp("ddpm8")
    overrides = [
        *TINY_UNET,
        "loss.schedule=cosine",
        "data.batch_size=8",
        "+trainer.overfit_batches=1",
        "trainer.max_epochs=400",
        "trainer.limit_val_batches=0",
        "model.optimizer.lr=0.003",
        "model.ema_decay=0.99",
    ]
    metrics = train(compose_train(overrides, out, data_dir))
    assert metrics["train/loss_epoch"] < 0.3, metrics  # eps-MSE starts at ~1 (one batch: a noisy value)
    ckpt = out / "checkpoints" / "last.ckpt"
    _, datamodule = model_and_data(ckpt)
    images, _ = split_tensors(datamodule, "train", 8)
    return ckpt, images


def test_a_tiny_unet_trained_on_8_images_samples_near_them(
    trained_on_8, tmp_path: Path, data_dir: Path
) -> None:
    """Samples of the trained model lie far nearer the 8 training digits than the samples of the same
    model before training, or uniform noise, do; and they are not one image repeated."""
    ckpt, images = trained_on_8
    model, _ = model_and_data(ckpt)
    samples = model.sample(16, generator=torch.Generator().manual_seed(0))
    trained, nearest = nearest_distances(samples, images)

    cfg = compose_train([*TINY_UNET, "loss.schedule=cosine"], tmp_path, data_dir)
    torch.manual_seed(0)
    seed = torch.Generator().manual_seed
    untrained = nearest_distances(instantiate(cfg.model).sample(16, generator=seed(0)), images)[0]
    noise = nearest_distances(torch.rand(16, *images.shape[1:], generator=seed(0)) * 2 - 1, images)[0]
    assert trained.mean() < 0.5 * untrained.mean(), (trained.mean(), untrained.mean())
    assert trained.mean() < 0.5 * noise.mean(), (trained.mean(), noise.mean())
    assert len(set(nearest.tolist())) >= 3, nearest  # several training digits, not one


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_vidgen_sample_changes_the_sampler_without_retraining(trained_on_8, tmp_path: Path) -> None:
    """``vidgen-sample sampler=ddpm steps=4`` writes what the model samples with that sampler, and differs
    from the checkpoint's own DDIM; ``steps=`` on a model without a sampler is one message."""
    ckpt, _ = trained_on_8
    files = {}
    for name, options in {"ddpm4": ["sampler=ddpm", "steps=4"], "own": []}.items():
        overrides = [f"ckpt_path={ckpt}", "num_samples=8", "logger=csv", *options]
        cfg = compose_config(overrides, "sample", tmp_path / name)
        files[name] = sample(cfg)[0]
    model, _ = model_and_data(ckpt)
    model.configure_sampling("ddpm", 4)
    grid = image_grid(model.sample(8, generator=torch.Generator().manual_seed(1234)), (-1.0, 1.0), 8)
    expected = write_png(grid, tmp_path / "expected.png")
    assert np.array_equal(_png(files["ddpm4"]), _png(expected))
    assert not np.array_equal(_png(files["ddpm4"]), _png(files["own"]))

    cfg = compose_config(["steps=5"], "sample", tmp_path / "gan")
    with open_dict(cfg):
        cfg.model = compose_config([], "train", tmp_path / "gan").model
    with pytest.raises(
        ConfigError, match=r"steps=5: the model of this checkpoint .*GANModule.* has no model.sampling_steps"
    ):
        with_sampling_options(cfg)


def test_guidance_scale_zero_is_unconditional_sampling(tmp_path: Path, data_dir: Path) -> None:
    """Classifier-free guidance ``out_u + s (out_c - out_u)``: at s = 0 the labels change nothing and the
    samples are those of the null class (the unconditional model) from the same noise; at s = 1 they are
    the conditional model's; in between, the prediction is that mix."""
    cfg = compose_train([*TINY_UNET, "model=ddpm_unet_cond"], tmp_path, data_dir)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    # the last layer of every block and of the net start at zero (every label would give 0): give them weights
    for p in model.net.parameters():
        if p.ndim > 1 and not p.any():
            torch.nn.init.normal_(p, std=0.05)
    model.net_ema = None

    def draw(scale: float, label: int) -> torch.Tensor:
        model.configure_sampling(sampling_steps=10, guidance_scale=scale)
        return model.sample(4, generator=torch.Generator().manual_seed(5), labels=torch.tensor([label]))

    unconditional = draw(0.0, 3)
    assert torch.equal(unconditional, draw(0.0, 7))
    model.configure_sampling(sampling_steps=10, guidance_scale=1.0)
    with torch.no_grad():
        null = model.eval().draw(4, torch.Generator().manual_seed(5), torch.full((4,), 10), None)
    assert torch.equal(unconditional, null)

    # (an untrained net's samples saturate at +-1 whatever the labels: the predictions show the mix)
    x, t, y = torch.randn(4, 1, 8, 8), torch.full((4,), 500.0), torch.tensor([3, 3, 7, 7])
    with torch.no_grad():
        cond, uncond = model.denoise(x, t, y), model.denoise(x, t, torch.full_like(y, 10))
        assert (cond - uncond).abs().max() > 1e-2  # the labels do matter
        torch.testing.assert_close(model.guided(x, t, y, model.net, 2.5), uncond + 2.5 * (cond - uncond))
        assert torch.equal(model.guided(x, t, y, model.net, 0.0), uncond)
        assert torch.equal(model.guided(x, t, y, model.net, 1.0), cond)


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run(tmp_path: Path, data_dir: Path) -> None:
    """Two epochs in one go, and one epoch then a resume to two, end with identical weights, EMA
    (with its update count) and optimizer state: a conditional model, so label dropout draws too."""
    common = [
        *TINY_UNET,
        "model=ddpm_unet_cond",
        "data.batch_size=8",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
    ]
    train(compose_train([*common, "trainer.max_epochs=2"], tmp_path / "straight", data_dir))
    train(compose_train([*common, "trainer.max_epochs=1"], tmp_path / "first", data_dir))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(
        compose_train([*common, "trainer.max_epochs=2", f"ckpt_path={first}"], tmp_path / "resumed", data_dir)
    )

    straight = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert straight["global_step"] == resumed["global_step"] == 6
    assert straight["state_dict"]["net_ema.n_averaged"].item() == 6
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    one = torch.load(first, weights_only=True)["state_dict"]
    assert not torch.equal(one["net.conv_in.weight"], straight["state_dict"]["net.conv_in.weight"])
    moments = zip(
        straight["optimizer_states"][0]["state"].values(),
        resumed["optimizer_states"][0]["state"].values(),
        strict=True,
    )
    for a, b in moments:
        assert torch.equal(a["exp_avg"], b["exp_avg"])


DIFFUSION = ["model=ddpm_unet", "loss=diffusion_eps"]
BAD = [
    ("diffusion loss on a GAN", ["loss=diffusion_eps"],
     ["loss=diffusion_eps is a diffusion loss", "model=dcgan", "loss=gan_hinge|"]),
    ("GAN loss on the diffusion model", ["model=ddpm_unet", "loss=gan_ns"],
     ["loss=gan_ns is an adversarial loss", "model=ddpm_unet",
      "loss=diffusion_eps|diffusion_v|flow_matching"]),
    ("image U-Net on video data", [*DIFFUSION, "data=moving_digits"],
     ["model=ddpm_unet models images", "data=moving_digits provides videos"]),
    ("Gaussian sampler on flow matching", ["model=ddpm_unet", "loss=flow_matching", "model.sampler=ddim"],
     ["model.sampler=ddim cannot sample", "FlowMatchingLoss", "model.sampler=euler|heun"]),
    ("unknown sampler", [*DIFFUSION, "model.sampler=plms"], ["model.sampler='plms'", "'ddim'"]),
    ("guidance without classes", [*DIFFUSION, "model.guidance_scale=3"],
     ["model.guidance_scale=3 guides", "unconditional", "model=ddpm_unet_cond"]),
    ("image size vs levels", [*DIFFUSION, "data.image_size=18"],
     ["divisible by 4, got 18", "data.image_size"]),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "fragments"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_combinations_that_cannot_train_stop_with_one_message(
    overrides: list[str], fragments: list[str], tmp_path: Path, data_dir: Path
) -> None:
    assert_train_stops_with([*overrides, "logger=csv"], fragments, tmp_path, data_dir)


def test_objectives_train_the_same_net(tmp_path: Path, data_dir: Path) -> None:
    """Each objective's loss on a fixed batch falls under 20 Adam steps of the tiny U-Net (their targets
    have unit scale at initialisation, so a net that does not learn stays near 1)."""
    for loss in ("diffusion_eps", "diffusion_v", "flow_matching"):
        cfg = compose_train([*TINY_UNET, f"loss={loss}", "data.batch_size=16"], tmp_path, data_dir)
        torch.manual_seed(0)
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        x, _ = next(iter(datamodule.train_dataloader()))
        model = instantiate(cfg.model)
        optimizer = torch.optim.Adam(model.net.parameters(), lr=3e-3)
        values = []
        for step in range(20):
            value = model.loss(
                partial(model.denoise, y=None),
                model.to_model_range(x),
                torch.Generator().manual_seed(step % 2),
            )
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            values.append(value.item())
        assert values[-2] < 0.7 * values[0], (loss, values)  # the same seed: the same t and noise
