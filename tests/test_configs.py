"""Every file in conf/ composes into a config whose every _target_ imports and takes its keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from vidgen.config import check_compatibility, check_config
from vidgen.errors import ConfigError

from conftest import CONF, compose_train

# conf/features/ holds the feature networks' training recipes, read by vidgen.metrics.feature_spaces rather
# than composed into a run config (tests/test_family_protocol.py builds each)
GROUP_FILES = sorted(p.relative_to(CONF) for p in CONF.glob("*/**/*.yaml") if p.parts[-2] != "features")

# One working combination per family; an option is tested inside the first stack it fits into.
STACKS = [
    [],  # the defaults: dcgan + gan_ns + digits + image callbacks
    ["model=vae_conv", "loss=elbo"],
    ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction"],
    ["data=moving_digits", "model=vgan", "loss=gan_ns", "callbacks=video"],
    ["model=ddpm_unet", "loss=diffusion_eps"],
    ["data=moving_digits", "model=video_ddpm_unet_pred", "loss=diffusion_eps", "callbacks=prediction"],
    ["data=spoken_digits", "model=wavegan", "loss=wgan_gp", "callbacks=audio"],
    ["data=talking_digits", "model=talking_digits_gan", "loss=gan_ns", "callbacks=audio_visual"],
]


def _exists(override: str) -> bool:
    group, option = override.split("=")
    return (CONF / group / f"{option}.yaml").exists()


def test_conf_has_every_group() -> None:
    groups = {p.parts[0] for p in GROUP_FILES}
    expected = {
        "model",
        "data",
        "loss",
        "trainer",
        "logger",
        "callbacks",
        "paths",
        "hydra",
        "debug",
        "experiment",
    }
    assert expected | {"hparams_search"} <= groups


@pytest.mark.parametrize("path", GROUP_FILES, ids=str)
def test_group_option_composes_and_builds(path: Path, tmp_path: Path, data_dir: Path) -> None:
    group, option = "/".join(path.parts[:-1]), path.stem
    errors = []
    for stack in STACKS:
        if not all(_exists(o) for o in stack):
            continue
        overrides = [o for o in stack if not o.startswith(f"{group}=")] + [f"{group}={option}"]
        cfg = compose_train(overrides, tmp_path, data_dir)
        try:
            resolved = check_config(cfg)
            check_compatibility(cfg)
        except ConfigError as e:  # this option belongs to another family's stack
            errors.append(f"{overrides}: {e}")
            continue
        assert resolved["seed"] == 42
        # The objects a run builds first must construct from this config as they are.
        assert instantiate(cfg.data).batch_size > 0
        assert sum(p.numel() for p in instantiate(cfg.model).parameters()) > 0
        return
    pytest.fail(f"{path} fits no reference stack:\n" + "\n".join(errors))


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_primary_config_composes(name: str, tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train([], tmp_path, data_dir, config_name=name)
    check_config(cfg)
