"""What every entrypoint does around its work: check, seed, build, log the config, clean up."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, open_dict, read_write

from vidgen.callbacks.guards import FiniteLossCheck
from vidgen.errors import ConfigError
from vidgen.utils.checkpoint import AtomicCheckpointIO, RunStateCheckpoint, resolve_checkpoint
from vidgen.utils.config import build, check_compatibility, check_config
from vidgen.utils.files import atomic_write_json

log = logging.getLogger(__name__)

# Set by Lightning's DDP launcher in the launching process; they tell a later Trainer that its ranks
# already exist, so they must not outlive the job that set them.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


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


def _hydra_config() -> DictConfig | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


class RunContext:
    """Checks, seeds and builds one job from ``cfg``; on exit closes the loggers (``wandb.finish()``)."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.output_dir = Path(cfg.paths.output_dir)

    def __enter__(self) -> RunContext:
        self._name_wandb_run()
        # Compatibility first: a video model on image data also fails to resolve ${data.seq_len}, but
        # "this model needs video data" is the message that names the fix.
        check_compatibility(self.cfg)
        self.resolved = check_config(self.cfg)
        self._check_writable(self.output_dir)
        self._prepare_ddp_relaunch()
        self._env_before = {k: os.environ.get(k) for k in _DDP_ENV}
        L.seed_everything(self.cfg.seed, workers=True, verbose=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        # Without this, the next job of a multirun in the same process logs into this job's W&B run.
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            wandb.finish(exit_code=1 if exc[0] else 0)
        self._end_ddp()

    def _end_ddp(self) -> None:
        """Leaves the process as DDP found it, so the next job of a multirun starts its own ranks."""
        if self._env_before.get("LOCAL_RANK") is not None:
            return  # ranks were made outside (torchrun, SLURM): not ours to undo
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in self._env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _multirun(self) -> bool:
        hydra = _hydra_config()
        return hydra is not None and str(hydra.mode) == "RunMode.MULTIRUN"

    def _name_wandb_run(self) -> None:
        """In a multirun: W&B group = the sweep, run name and tags = the job's overrides."""
        wandb = (self.cfg.get("logger") or {}).get("wandb")
        if wandb is None or not self._multirun():
            return
        hydra = _hydra_config()
        overrides = list(hydra.overrides.task)
        with open_dict(self.cfg):
            wandb.group = f"{self.cfg.task_name}-{Path(hydra.sweep.dir).name}"
            wandb.name = f"{hydra.job.num}: {hydra.job.override_dirname}"[:128]
            wandb.tags = [*(wandb.tags or []), *[o[:64] for o in overrides]]

    def _prepare_ddp_relaunch(self) -> None:
        """Lightning's ``ddp`` re-runs this script for ranks > 0 with ``sys.argv`` + ``hydra.run.dir``.

        In a multirun that command would start the whole sweep again in every rank (hydra#2070,
        Lightning#11300): rewrite ``sys.argv`` to this job's own overrides in RUN mode, and point
        ``hydra.run.dir`` (which Lightning passes on) at this job's folder, so ranks share it.
        """
        strategy = self.cfg.trainer.get("strategy")
        hydra = _hydra_config()
        if hydra is None or not isinstance(strategy, str) or not strategy.startswith("ddp"):
            return
        if any(word in strategy for word in ("spawn", "fork", "notebook")):
            return  # these start processes without re-running the script
        with read_write(hydra), open_dict(hydra):
            hydra.run.dir = str(self.output_dir.resolve())
        if self._multirun():
            sys.argv = [sys.argv[0], *hydra.overrides.task, "hydra.mode=RUN"]

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

    def build_trainer(self, callbacks: list, loggers: list) -> L.Trainer:
        """The trainer, plus what every run needs: config/RNG in checkpoints, atomic writes, NaN guard."""
        run_callbacks = [RunStateCheckpoint(self.resolved), FiniteLossCheck()]
        return self.build("trainer", callbacks=[*callbacks, *run_callbacks], logger=loggers,
                          plugins=[AtomicCheckpointIO()])  # fmt: skip

    def log_config(self, loggers: list) -> None:
        for logger in loggers:
            logger.log_hyperparams(self.resolved)

    def checkpoint_path(self) -> str | None:
        """``ckpt_path`` checked to be a readable checkpoint of this model, or None to start fresh."""
        return resolve_checkpoint(self.cfg.get("ckpt_path"), self.output_dir, self.resolved)

    def write_metrics(self, trainer: L.Trainer) -> dict[str, float]:
        values = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1}
        # JSON has no NaN/inf: a diverged metric is written as null rather than hidden.
        metrics = {k: (v if math.isfinite(v) else None) for k, v in values.items()}
        if trainer.is_global_zero:
            atomic_write_json(self.output_dir / "metrics.json", metrics)
            log.info(f"metrics: {self.output_dir / 'metrics.json'}")
        return metrics
