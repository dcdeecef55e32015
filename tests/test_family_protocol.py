"""Every model config builds a family that keeps the protocol of ``vidgen.families.base``: the
declarations other code reads, and ``sample`` with the same arguments and guarantees for all."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from vidgen.audio_visual import AudioVisual
from vidgen.errors import ConfigError
from vidgen.families.base import GenerativeModule
from vidgen.metrics.feature_spaces import load_recipe

from conftest import CONF, compose_train

VIDEO = ["data=moving_digits", "data.num_train=8", "data.num_val=4", "data.num_test=4"]
AUDIO = ["data=spoken_digits", "loss=wgan_gp", "callbacks=audio"]
SMALL_WAVEGAN = ["model.generator.model_size=4", "model.discriminator.model_size=4"]
# the stack each model config trains in, with small nets where the default ones are slow to build
STACKS = {
    "dcgan": [],
    "mlp_gan": [],
    "cgan": [],
    "resnet_gan": [],
    "vae_mlp": ["loss=elbo"],
    "vae_conv": ["loss=elbo"],
    "convlstm": [*VIDEO, "loss=frame_mse", "callbacks=prediction", "model.net.hidden_channels=[8]"],
    "lstm_ae": [*VIDEO, "loss=frame_mse", "callbacks=prediction"],
    "rnn": [*VIDEO, "loss=frame_mse", "callbacks=prediction"],
    "vgan": [*VIDEO, "callbacks=video"],
    "mocogan": [*VIDEO, "callbacks=video"],
    "ddpm_unet": ["loss=diffusion_eps", "model.sampling_steps=5"],
    "ddpm_unet_cond": ["loss=flow_matching", "model.sampling_steps=5"],
    "video_ddpm_unet": [*VIDEO, "loss=diffusion_eps", "callbacks=video", "model.sampling_steps=2"],
    "video_ddpm_unet_pred": [*VIDEO, "loss=diffusion_v", "callbacks=prediction", "model.sampling_steps=2"],
    "wavegan": [*AUDIO, *SMALL_WAVEGAN],
    "cwavegan": [*AUDIO, *SMALL_WAVEGAN],
    "specgan": [
        *AUDIO,
        "data.representation=spectrogram",
        "model.generator.base_width=4",
        "model.discriminator.base_width=4",
    ],  # fmt: skip
    "talking_digits_gan": [
        "data=talking_digits",
        "callbacks=audio_visual",
        "model.generator.base_width=4",
        "model.generator.model_size=4",
        "model.discriminator.base_width=4",
        "model.discriminator.model_size=4",
    ],  # fmt: skip
}


def parts(samples: torch.Tensor | AudioVisual) -> tuple[torch.Tensor, ...]:
    """The tensors of a batch of samples: one, or the clips and sounds of audio-visual pairs."""
    return tuple(samples) if isinstance(samples, AudioVisual) else (samples,)


def test_every_model_config_is_in_this_test() -> None:
    assert sorted(STACKS) == sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(STACKS))
def test_sample_keeps_the_protocol(name: str, tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train([f"model={name}", *STACKS[name]], tmp_path, data_dir)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    assert isinstance(model, GenerativeModule)
    assert model.data_kind in ("image", "video", "audio", "audio_visual") and model.loss_kind
    assert (
        set(model.test_metrics) <= {"sample_quality", "frames", "nll", "audio_visual"} and model.test_metrics
    )
    assert type(instantiate(cfg.loss)).kind == model.loss_kind

    context = None
    if model.context_frames:
        dm = instantiate(cfg.data)
        dm.setup("fit")
        context = next(iter(dm.val_dataloader()))[0][:3]
        with pytest.raises(ConfigError, match="continues real clips"):
            model.sample(3)
    model.train()
    first = model.sample(3, generator=torch.Generator().manual_seed(1), context=context)
    again = model.sample(3, generator=torch.Generator().manual_seed(1), context=context)
    assert model.training  # the module's mode is restored
    # the generator (or the context) fixes the samples
    assert all(torch.equal(a, b) for a, b in zip(parts(first), parts(again), strict=True))
    assert all(x.is_contiguous() and not x.requires_grad for x in parts(first))
    # audio: waveforms (B, 1, L) or spectrograms (B, 1, F, T); audio-visual: clips (B, T, C, H, W) and sounds
    expected = {"image": [(4,)], "video": [(5,)], "audio": [(3, 4)], "audio_visual": [(5,), (3,)]}
    for x, ndims in zip(parts(first), expected[model.data_kind], strict=True):
        assert x.ndim in ndims and len(x) == 3
    if model.context_frames:  # the context frames come back first, as given (up to float rounding)
        assert torch.allclose(first[:, : model.context_frames], context[:, : model.context_frames], atol=1e-5)
    else:
        other = model.sample(3, generator=torch.Generator().manual_seed(2))
        assert not any(torch.equal(a, b) for a, b in zip(parts(first), parts(other), strict=True))
        with pytest.raises(ConfigError, match="takes no context"):
            model.sample(3, context=torch.zeros(3, 4, 1, 8, 8))

    if model.num_classes is None:
        with pytest.raises(ConfigError, match=r"labels=\[7\] but this model is unconditional"):
            model.sample(2, labels=torch.tensor([7]), context=context)
    else:
        labels = model.sample_labels(5, torch.tensor([7, 2]))
        assert labels.tolist() == [7, 2, 7, 2, 7]
        assert model.sample_labels(12).tolist() == [*range(10), 0, 1]  # balanced by default
        with pytest.raises(ConfigError, match="0..9"):
            model.sample(2, labels=torch.tensor([10]))


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (CONF / "features").glob("*.yaml")))
def test_feature_net_recipes_build(recipe: str) -> None:
    cfg = load_recipe(recipe)
    net = instantiate(cfg.net, channels=3, num_classes=10)
    task = instantiate(cfg, net=net)
    assert task.max_epochs >= 1 and task.batch_size >= 1
    optimizers = task.optimizer(net.parameters())
    assert isinstance(optimizers, torch.optim.Optimizer)
    assert hasattr(net, "features") and net.num_features > 0
