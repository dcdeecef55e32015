"""Every file in conf/ composes into a config whose every _target_ imports and takes its keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from vidgen.utils.config import _options_with, check_compatibility, check_config

from conftest import CONF, compose_train

GROUP_FILES = sorted(p.relative_to(CONF) for p in CONF.glob("*/**/*.yaml"))


def test_conf_has_every_group() -> None:
    groups = {p.parts[0] for p in GROUP_FILES}
    assert {
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
    } <= groups


@pytest.mark.parametrize("path", GROUP_FILES, ids=str)
def test_group_option_composes_and_builds(path: Path, tmp_path: Path, data_dir: Path) -> None:
    group, option = "/".join(path.parts[:-1]), path.stem
    overrides = [f"{group}={option}"]
    # Video data needs a video model and no image callbacks; until a video model config exists, the data
    # is composed and built and only the model part is skipped.
    video = (
        group == "data"
        and getattr(get_object(OmegaConf.load(CONF / path)._target_), "data_kind", "") == "video"
    )
    video_models = _options_with("model", "data_kind", "video") if video else []
    if video:
        overrides += ["~callbacks", *[f"model={m}" for m in video_models[:1]]]
        if video_models:  # and a loss of that model's family
            cls = get_object(OmegaConf.load(CONF / "model" / f"{video_models[0]}.yaml")._target_)
            losses = _options_with("loss", "family", getattr(cls, "loss_family", getattr(cls, "family", "")))
            overrides += [f"loss={m}" for m in losses[:1]]
    cfg = compose_train(overrides, tmp_path, data_dir)
    resolved = check_config(cfg)
    assert resolved["seed"] == 42
    # The objects a run builds first must construct from this config as they are.
    assert instantiate(cfg.data).batch_size > 0
    if video and not video_models:
        pytest.skip(f"data={option} built; no video model config in conf/model/ yet to build with it")
    check_compatibility(cfg)
    assert sum(p.numel() for p in instantiate(cfg.model).parameters()) > 0


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_primary_config_composes(name: str, tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train([], tmp_path, data_dir, config_name=name)
    check_config(cfg)
