"""Every file in conf/ composes into a config whose every _target_ imports and takes its keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from vidgen.utils.config import check_compatibility, check_config

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
    cfg = compose_train([f"{group}={option}"], tmp_path, data_dir)
    resolved = check_config(cfg)
    check_compatibility(cfg)
    assert resolved["seed"] == 42
    # The objects a run builds first must construct from this config as they are.
    assert instantiate(cfg.data).batch_size > 0
    assert sum(p.numel() for p in instantiate(cfg.model).parameters()) > 0


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_primary_config_composes(name: str, tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train([], tmp_path, data_dir, config_name=name)
    check_config(cfg)
