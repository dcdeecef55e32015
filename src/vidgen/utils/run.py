"""What every entrypoint does around its work: check, seed, build, log the config, clean up."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from vidgen.errors import CheckpointError, ConfigError
from vidgen.utils.config import build, check_compatibility, check_config
from vidgen.utils.files import atomic_write_json

log = logging.getLogger(__name__)


@contextlib.contextmanager
def job_errors_to_log() -> Iterator[None]:
    """Puts the traceback of a failing job in the run's log file only (DEBUG level, see conf/hydra).

    The exception is re-raised: Hydra prints a ``VidgenError`` as its message alone and exits 1, and in a
    multirun it marks this job failed without losing the jobs that finished.
    """
    try:
        yield
    except Exception as e:
        log.debug(f"{e.__class__.__name__}: {e}", exc_info=True)
        raise


class ConfigInCheckpoint(L.Callback):
    """Stores the resolved run config in every checkpoint, so eval/sample can rebuild the model from it."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["vidgen_config"] = self.config


class RunContext:
    """Checks, seeds and builds one job from ``cfg``; on exit closes the loggers (``wandb.finish()``)."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.output_dir = Path(cfg.paths.output_dir)

    def __enter__(self) -> RunContext:
        self.resolved = check_config(self.cfg)
        check_compatibility(self.cfg)
        self._check_writable(self.output_dir)
        L.seed_everything(self.cfg.seed, workers=True, verbose=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        # Without this, the next job of a multirun in the same process logs into this job's W&B run.
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            wandb.finish(exit_code=1 if exc[0] else 0)

    @staticmethod
    def _check_writable(folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise ConfigError(
                f"The run folder {folder} is not writable ({e.strerror}). Fix: choose another folder with "
                "hydra.run.dir=<dir> (or paths.log_dir=<dir>), or fix its permissions."
            ) from e

    def build(self, group: str, **kwargs: Any) -> Any:
        return build(self.cfg[group], group, **kwargs)

    def build_collection(self, group: str) -> list[Any]:
        """Objects of a group that is a mapping of named entries (``callbacks``, ``logger``)."""
        node = self.cfg.get(group)
        if not node:
            return []
        return [build(entry, f"{group}.{name}") for name, entry in node.items() if "_target_" in entry]

    def config_callback(self) -> L.Callback:
        return ConfigInCheckpoint(self.resolved)

    def log_config(self, loggers: list) -> None:
        for logger in loggers:
            logger.log_hyperparams(self.resolved)

    def checkpoint_path(self) -> str | None:
        """``ckpt_path`` checked to be a readable Lightning checkpoint, or None to start fresh."""
        ckpt = self.cfg.get("ckpt_path")
        if not ckpt:
            return None
        path = Path(ckpt)
        if not path.is_file():
            raise CheckpointError(
                f"ckpt_path={ckpt} does not exist. Fix: pass the path of a checkpoint file, e.g. "
                "ckpt_path=logs/train/runs/<timestamp>/checkpoints/last.ckpt."
            )
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"ckpt_path={ckpt} is not a readable checkpoint ({e.__class__.__name__}: {str(e)[:200]}). "
                "Fix: the file may be truncated or not a Lightning .ckpt; pass another one, e.g. last.ckpt."
            ) from e
        if "state_dict" not in checkpoint or "loops" not in checkpoint:
            raise CheckpointError(
                f"ckpt_path={ckpt} is not a Lightning training checkpoint (no state_dict/loops). "
                "Fix: pass a .ckpt written by vidgen-train."
            )
        return str(path)

    def write_metrics(self, trainer: L.Trainer) -> dict[str, float]:
        values = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}
        # JSON has no NaN/inf: a diverged metric is written as null rather than hidden.
        metrics = {k: (v if math.isfinite(v) else None) for k, v in values.items()}
        if trainer.is_global_zero:
            atomic_write_json(self.output_dir / "metrics.json", metrics)
            log.info(f"metrics: {self.output_dir / 'metrics.json'}")
        return metrics
