"""Video diffusion (Ho et al. 2022) through the real code paths: the factorized space-time U-Net mixes frames
only through its temporal attention, which knows the frames' order; the frame-conditioned model keeps the
given context and generates the future; its test run logs OpenSTL's frame metrics with the baselines,
independently of batching; tiny runs train, resume exactly, sample through ``vidgen-sample`` and are scored
in the C3D space by ``vidgen-eval``; combinations that cannot train stop with one message."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from test_video_metrics import SMALL, eval_with_short_c3d
from vidgen.cli.sample import sample
from vidgen.cli.train import train
from vidgen.config import compose_config
from vidgen.errors import ConfigError
from vidgen.metrics.frames import per_frame_metrics
from vidgen.nets.video_unet import VideoUNet
from vidgen.value_range import to_unit

from conftest import assert_train_stops_with, compose_train

# 16x16 moving digits, clips of 3 context + 3 future frames, a U-Net of 0.05M parameters, DDIM with 3 steps.
TINY_DATA = ["data=moving_digits", "data.image_size=16", "data.digit_size=8", "data.seq_len=6",
             "data.num_input_frames=3", "data.num_output_frames=3", "data.num_train=16", "data.num_val=8",
             "data.num_test=8", "data.batch_size=4"]  # fmt: skip
TINY_NET = ["loss=diffusion_eps", "model.net.base_width=8", "model.net.norm_groups=4",
            "model.net.attention_heads=2", "model.sampling_steps=3"]  # fmt: skip
QUIET = ["logger=csv", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "trainer.num_sanity_val_steps=0"]  # fmt: skip
PRED = ["model=video_ddpm_unet_pred", "callbacks=prediction", *TINY_DATA, *TINY_NET, *QUIET]
UNCOND = ["model=video_ddpm_unet", "callbacks=video", *TINY_DATA, *TINY_NET, *QUIET]


def with_weights(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``module`` with its zero-initialised layers (the last of every block, the relative position bias)
    given small random weights: at initialisation every block is the identity, which hides what they mix."""
    torch.manual_seed(seed)
    for p in module.parameters():
        if not p.any():
            torch.nn.init.normal_(p, std=0.1)
    return module


def tiny_net(**kwargs) -> VideoUNet:
    options = {"num_frames": 6, "image_size": 16, "channels": 1, "base_width": 8, "norm_groups": 4,
               "attention_heads": 2, "attention_resolutions": [8], **kwargs}  # fmt: skip
    return with_weights(VideoUNet(**options)).eval()


@torch.no_grad()
def test_video_unet_keeps_the_shape_and_mixes_frames_only_through_time_attention() -> None:
    """Changing frame 0 changes the output at frame 3 (temporal attention carries it); with the temporal
    attention masked to each frame itself (Ho et al.'s joint image training) frame 3 is untouched."""
    net = tiny_net()
    x, t = torch.randn(2, 6, 1, 16, 16), torch.tensor([10.0, 700.0])
    changed = x.clone()
    changed[:, 0] += 1.0
    out, out_changed = net(x, t), net(changed, t)
    assert out.shape == x.shape
    assert (out_changed[:, 3] - out[:, 3]).abs().max() > 1e-4
    alone, alone_changed = net(x, t, independent_frames=True), net(changed, t, independent_frames=True)
    assert torch.equal(alone[:, 3], alone_changed[:, 3])
    assert (alone_changed[:, 0] - alone[:, 0]).abs().max() > 1e-4  # frame 0 itself still responds
    # each frame alone is what the net gives that frame as a clip of one (no other frame reaches it)
    single = VideoUNet(num_frames=1, image_size=16, base_width=8, norm_groups=4, attention_heads=2,
                       attention_resolutions=[8])  # fmt: skip
    single.load_state_dict(
        {k: v for k, v in net.state_dict().items() if "relative_bias" not in k}, strict=False
    )
    torch.testing.assert_close(single.eval()(x[:, 3:4], t), alone[:, 3:4], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_the_relative_position_bias_tells_the_frames_order() -> None:
    """Without a position bias, attention over frames is blind to their order: reversing the input frames
    reverses the output. The learned relative bias breaks that symmetry."""
    net = tiny_net()
    x, t = torch.randn(2, 6, 1, 16, 16), torch.tensor([10.0, 700.0])
    biases = [m.relative_bias.weight for m in net.modules() if hasattr(m, "relative_bias")]
    assert biases and all(b.shape == (2 * 6 - 1, 2) for b in biases)
    assert not torch.allclose(net(x.flip(1), t), net(x, t).flip(1), atol=1e-4)
    for bias in biases:
        bias.zero_()
    torch.testing.assert_close(net(x.flip(1), t), net(x, t).flip(1), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_frame_conditioned_net_reads_the_context_and_returns_the_future_only() -> None:
    net = tiny_net(num_frames=3, context_frames=3)
    x, t, context = torch.randn(2, 3, 1, 16, 16), torch.full((2,), 300.0), torch.randn(2, 3, 1, 16, 16)
    out = net(x, t, context=context)
    assert out.shape == x.shape
    other = context.clone()
    other[:, 0] += 1.0
    assert (net(x, t, context=other) - out).abs().max() > 1e-4
    with pytest.raises(ValueError, match="context_frames=3: call it with context"):
        net(x, t)


def pred_model(
    tmp_path: Path, data_dir: Path, extra: list[str] = ()
) -> tuple[L.LightningModule, L.LightningDataModule]:
    cfg = compose_train([*PRED, *extra], tmp_path, data_dir)
    torch.manual_seed(0)
    model = with_weights(instantiate(cfg.model))
    model.net_ema = None  # sample with the randomised weights themselves
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    return model, datamodule


def test_frame_conditioned_sample_returns_the_context_unchanged_and_generates_the_future(
    tmp_path: Path, data_dir: Path
) -> None:
    model, datamodule = pred_model(tmp_path, data_dir)
    clips = next(iter(datamodule.test_dataloader()))[0]
    assert model.context_frames == 3
    seed = torch.Generator().manual_seed
    out = model.sample(3, generator=seed(1), context=clips)
    assert out.shape == (3, 6, 1, 16, 16)
    assert torch.equal(out[:, :3], clips[:3, :3])  # bit for bit: given, not regenerated
    assert torch.equal(out, model.sample(3, generator=seed(1), context=clips))
    assert not torch.equal(out[:, 3:], model.sample(3, generator=seed(2), context=clips)[:, 3:])
    moved = clips.flip(0)  # other contexts, the same noise: another future
    assert not torch.equal(out[:, 3:], model.sample(3, generator=seed(1), context=moved)[:, 3:])
    assert out[:, 3:].min() >= -1.0 and out[:, 3:].max() <= 1.0
    with pytest.raises(ConfigError, match="at least 3 frames"):
        model.sample(2, context=clips[:, :2])


def test_frame_metrics_and_baselines_are_logged_at_test_whatever_the_batch_size(
    tmp_path: Path, data_dir: Path
) -> None:
    """``trainer.test`` logs OpenSTL's metrics of the sampled futures and of copy-last and context-mean;
    the baselines are those of the test clips; each clip's noise is seeded by its context, so batches of 4
    and of 8 give the same numbers (as 1 and 2 DDP ranks do)."""
    logged = []
    for batch_size in (4, 8):
        model, datamodule = pred_model(tmp_path, data_dir, [f"data.batch_size={batch_size}"])
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)  # fmt: skip
        trainer.test(model, datamodule=datamodule, verbose=False)
        logged.append({k: v.item() for k, v in trainer.callback_metrics.items()})
        assert set(model.test_curves()) >= {"mse_per_frame", "ssim"}
        assert model.test_curves()["mse_per_frame"].shape == (3,)  # one value per predicted frame
    one, other = logged
    for suffix in ("", "_copy_last", "_context_mean"):
        for name in ("mse_per_frame", "mae_per_frame", "mse_per_pixel", "psnr", "ssim", "ssim_openstl"):
            assert f"test/{name}{suffix}" in one, (name, suffix)
            assert other[f"test/{name}{suffix}"] == pytest.approx(one[f"test/{name}{suffix}"], rel=1e-5)
    assert one["test/n_sequences"] == 8
    clips = to_unit(torch.stack([datamodule.splits["test"][i][0] for i in range(8)]), (-1.0, 1.0))
    copy_last = per_frame_metrics(clips[:, 2:3].expand(-1, 3, -1, -1, -1), clips[:, 3:])
    assert one["test/mse_per_frame_copy_last"] == pytest.approx(copy_last["mse_per_frame"].mean().item())
    # the model's futures are samples of a random net: unlike the context mean, not the test clips' frames
    assert one["test/mse_per_frame"] != pytest.approx(one["test/mse_per_frame_context_mean"])


def test_tiny_runs_train_and_vidgen_sample_continues_test_clips(tmp_path: Path, data_dir: Path) -> None:
    """Both video models train through ``compose_train`` + ``train`` and write sample GIFs; the
    frame-conditioned checkpoint logs validation frame metrics and ``vidgen-sample`` continues test clips."""
    run = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    metrics = train(compose_train([*UNCOND, *run], tmp_path / "uncond", data_dir))
    assert 0.0 < metrics["train/loss_epoch"] < 3.0 and "val/loss" in metrics
    assert (tmp_path / "uncond" / "samples" / "epoch_000.gif").is_file()

    metrics = train(compose_train([*PRED, *run], tmp_path / "pred", data_dir))
    assert {"val/loss", "val/mse_per_frame", "val/mae_per_frame"} <= set(metrics)
    assert (tmp_path / "pred" / "samples" / "epoch_000.gif").is_file()
    ckpt = tmp_path / "pred" / "checkpoints" / "last.ckpt"
    cfg = compose_config([f"ckpt_path={ckpt}", "num_samples=2", "logger=csv", f"paths.data_dir={data_dir}"],
                         "sample", tmp_path / "sample")  # fmt: skip
    files = sample(cfg)
    assert [f.name for f in files] == ["samples.gif", "sample_000.gif", "sample_001.gif"]


def test_resuming_a_video_run_gives_the_uninterrupted_run(tmp_path: Path, data_dir: Path) -> None:
    """Two epochs in one go, and one then a resume to two, end with identical weights, EMA (and its count)
    and optimizer moments: the frame-conditioned model, whose validation also samples."""
    common = [*PRED, "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    train(compose_train([*common, "trainer.max_epochs=2"], tmp_path / "straight", data_dir))
    train(compose_train([*common, "trainer.max_epochs=1"], tmp_path / "first", data_dir))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed_cfg = [*common, "trainer.max_epochs=2", f"ckpt_path={first}"]
    train(compose_train(resumed_cfg, tmp_path / "resumed", data_dir))

    straight = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert straight["global_step"] == resumed["global_step"] == 4
    assert straight["state_dict"]["net_ema.n_averaged"].item() == 4
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    assert any("temporal.relative_bias" in k for k in straight["state_dict"])
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    one = torch.load(first, weights_only=True)["state_dict"]
    assert not torch.equal(one["net.conv_in.weight"], straight["state_dict"]["net.conv_in.weight"])
    moments = zip(straight["optimizer_states"][0]["state"].values(),
                  resumed["optimizer_states"][0]["state"].values(), strict=True)  # fmt: skip
    for a, b in moments:
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_vidgen_eval_scores_unconditional_video_diffusion_in_the_c3d_space(
    tmp_path: Path, data_dir: Path
) -> None:
    """The unconditional model is tested as the video GANs are: Fréchet distances in the C3D space of the
    data (``fd_c3d``, ``fid_frames``), beside the untrained model's. The short C3D recipe and data sizes of
    tests/test_video_metrics.py (a C3D that trains in seconds)."""
    data = ["data=moving_digits", *(f"data.{k}={v}" for k, v in SMALL.items())]
    run = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    train(compose_train([*UNCOND, *data, *run], tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    metrics, _ = eval_with_short_c3d(ckpt, tmp_path, data_dir, "metrics.num_fake=64")
    assert metrics["test/n_real_digits"] == metrics["test/n_fake_digits"] == 64  # all test clips
    for key in ("fd_c3d_digits", "fid_frames_digits_mean", "fd_c3d_digits_untrained"):
        assert metrics[f"test/{key}"] > 0, key


DIFFUSION = ["loss=diffusion_eps", "data=moving_digits"]
BAD = [
    ("video U-Net on image data", ["model=video_ddpm_unet", "loss=diffusion_eps", "callbacks=video"],
     ["model=video_ddpm_unet models videos", "data=digits provides images"]),
    ("diffusion loss on a video GAN", ["model=vgan", *DIFFUSION, "callbacks=video"],
     ["loss=diffusion_eps is a diffusion loss", "model=vgan", "loss=gan_hinge|"]),
    ("video net in the image family", ["model=ddpm_unet", "loss=diffusion_eps", "data.image_size=16",
                                       "model.net._target_=vidgen.nets.video_unet.VideoUNet"],
     ["model.net (VideoUNet) denoises clips but DiffusionModule models images", "model=video_ddpm_unet"]),
    ("frame-conditioned model without context",
     [*DIFFUSION, "model=video_ddpm_unet_pred", "callbacks=prediction", "model.net.context_frames=0"],
     ["FrameConditionedDiffusionModule continues context frames", "context_frames=0"]),
    ("clips shorter than the net", [*DIFFUSION, "model=video_ddpm_unet", "callbacks=video",
                                    "data.image_size=16", "data.digit_size=8", "model.net.num_frames=24"],
     ["The clips have 20 frames", "model.net.num_frames=24", "data.seq_len >= 24"]),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "fragments"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_combinations_that_cannot_train_stop_with_one_message(
    overrides: list[str], fragments: list[str], tmp_path: Path, data_dir: Path
) -> None:
    run = [*overrides, *QUIET, "trainer.max_epochs=1", "trainer.limit_train_batches=1"]
    assert_train_stops_with(run, fragments, tmp_path, data_dir)
