"""A run from start to end: what every entrypoint does around its work, and the checkpoints it restores.

- ``RunContext``: names the W&B run (``vidgen.wandb_run``), checks the config, seeds, builds
  data/model/loggers/trainer, logs the config, writes ``metrics.json`` and ``run.json`` (wall time,
  steps, commit: the budget a result was bought with) and closes the loggers (``wandb.finish()``) and
  DDP ranks it opened.
- ``AtomicCheckpointIO``: Lightning writes a checkpoint in place, so a SIGKILL mid-write leaves a torn
  ``last.ckpt``; this plugin writes to a temporary file in the same folder and renames it.
- ``RunStateCheckpoint``: stores the resolved config (``vidgen_config``, used by eval/sample and to
  detect foreign checkpoints), the W&B run that wrote it (``vidgen_wandb``: id, name, group, project;
  ``vidgen-eval`` adds its test metrics to that run) and the Python/NumPy/torch RNG states, restored on
  resume, so a resumed run draws the same random numbers as an uninterrupted one (granularity: the
  epoch end at which the checkpoint was written).
- ``resolve_checkpoint`` / ``load_run_checkpoint``: ``ckpt_path`` as a checked file, or one
  ``CheckpointError``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from omegaconf import DictConfig, open_dict, read_write

from vidgen.callbacks.guards import FiniteLossCheck
from vidgen.config import build, check_compatibility, check_config, hydra_config, is_multirun
from vidgen.errors import CheckpointError
from vidgen.utils.files import atomic_torch_save, atomic_write_json, check_writable
from vidgen.wandb_run import identity, name_run

log = logging.getLogger(__name__)
PROGRESS_REDRAWS_PER_SECOND = 4

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


class RunContext:
    """Checks, seeds and builds one job from ``cfg``; on exit closes the loggers (``wandb.finish()``)."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.output_dir = Path(cfg.paths.output_dir)
        self.started = time.perf_counter()

    def __enter__(self) -> RunContext:
        name_run(self.cfg)
        # Compatibility first: a video model on image data also fails to resolve ${data.seq_len}, but
        # "this model needs video data" is the message that names the fix.
        check_compatibility(self.cfg)
        self.resolved = check_config(self.cfg)
        check_writable(self.output_dir)
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

    def _prepare_ddp_relaunch(self) -> None:
        """Lightning's ``ddp`` re-runs this script for ranks > 0 with ``sys.argv`` + ``hydra.run.dir``.

        In a multirun that command would start the whole sweep again in every rank (hydra#2070,
        Lightning#11300): rewrite ``sys.argv`` to this job's own overrides in RUN mode, and point
        ``hydra.run.dir`` (which Lightning passes on) at this job's folder, so ranks share it.
        """
        strategy = self.cfg.trainer.get("strategy")
        hydra = hydra_config()
        if hydra is None or not isinstance(strategy, str) or not strategy.startswith("ddp"):
            return
        if any(word in strategy for word in ("spawn", "fork", "notebook")):
            return  # these start processes without re-running the script
        with read_write(hydra), open_dict(hydra):
            hydra.run.dir = str(self.output_dir.resolve())
        if is_multirun():
            sys.argv = [sys.argv[0], *hydra.overrides.task, "hydra.mode=RUN"]

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
        self.clock = TrainingClock()
        run_callbacks = [RunStateCheckpoint(self.resolved), FiniteLossCheck(), self.clock]
        if self.cfg.trainer.get("enable_progress_bar", True) and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):
            # Lightning's default RichProgressBar redraws 100 times a second from a thread of its own: on 2
            # cores that took 0.85 ms of every training step (benchmarks/overhead.py); 4 redraws a second
            # look the same to a reader.
            run_callbacks.append(RichProgressBar(refresh_rate=PROGRESS_REDRAWS_PER_SECOND))
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
            atomic_write_json(self.output_dir / "run.json", self._run_info(trainer))
            log.info(f"metrics: {self.output_dir / 'metrics.json'}")
        return metrics

    def _run_info(self, trainer: L.Trainer) -> dict[str, Any]:
        return {
            "wall_seconds": round(time.perf_counter() - self.started, 1),
            # the fit loop alone: not the set-up before it (data, a first-use feature net) or the test
            "train_seconds": self.clock.seconds,
            "global_step": trainer.global_step,
            "epochs": trainer.current_epoch,
            "commit": source_commit(),
            "argv": sys.argv[1:],
        }


def source_commit() -> str | None:
    """The git commit of the vidgen source that ran (``+dirty`` with uncommitted changes), or None
    outside a git checkout (an installed wheel)."""
    try:
        commit = _git("rev-parse", "--short=10", "HEAD")
        # dirty = the code or configs that ran differ from the commit; a regenerated docs/RESULTS.md
        # (which make results-run writes between its runs) does not make the next run's code dirty
        code = (":/src", ":/conf", ":/pyproject.toml")
        changed = _git("status", "--porcelain", "--untracked-files=no", "--", *code)
        return commit + ("+dirty" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _git(*args: str) -> str:
    """``git <args>`` run in vidgen's source folder; its output."""
    done = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                          check=True, timeout=10)  # fmt: skip
    return done.stdout.strip()


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose writes are atomic (temporary file + ``os.replace``)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options.")
        atomic_torch_save(checkpoint, Path(path))


class TrainingClock(L.Callback):
    """Wall seconds of the training loop (its validation and epoch-end metrics included), None before
    one ran: the budget of a run, apart from its set-up and test."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.seconds: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.started is not None:
            self.seconds = round(time.perf_counter() - self.started, 1)


class RunStateCheckpoint(L.Callback):
    """Adds ``vidgen_config`` and ``vidgen_rng`` to every checkpoint; restores the RNG state on resume."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["vidgen_config"] = self.config
        # the W&B run that wrote it, so that vidgen-eval adds its test metrics to that run's row
        run = identity(trainer.loggers) if trainer.is_global_zero else None
        if run is not None:
            checkpoint["vidgen_wandb"] = run
        checkpoint["vidgen_rng"] = {
            "python": list(random.getstate()[1]),
            "python_pos": random.getstate()[2],
            "numpy": np.random.get_state()[1].tolist(),
            "numpy_pos": int(np.random.get_state()[2]),
            "torch": torch.get_rng_state(),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        rng = checkpoint.get("vidgen_rng")
        if rng is None:
            return
        random.setstate((3, tuple(rng["python"]), rng["python_pos"]))
        np.random.set_state(("MT19937", np.asarray(rng["numpy"], dtype=np.uint32), rng["numpy_pos"], 0, 0.0))
        torch.set_rng_state(rng["torch"])


def _read(ckpt: str, path: Path, mmap: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True``; an unreadable file is one ``CheckpointError``.

    ``mmap``: tensors are mapped, not read, for a check of a checkpoint that Lightning reads itself
    afterwards (a resumed run), so its weights are read from disk once."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        raise CheckpointError(
            f"ckpt_path={ckpt} is not a readable checkpoint ({e.__class__.__name__}: {str(e)[:200]}). "
            "Fix: the file may be truncated or not a Lightning .ckpt; pass another one, e.g. last.ckpt."
        ) from e


def _describe_model(config: dict) -> str:
    model = config.get("model", {})
    nets = [
        v["_target_"].rsplit(".", 1)[-1]
        for k, v in model.items()
        if isinstance(v, dict) and "_target_" in v and k != "loss" and not k.startswith("optimizer")
    ]
    return f"{model.get('_target_', '?').rsplit('.', 1)[-1]}({', '.join(nets)})"


def resolve_checkpoint(ckpt: str | None, output_dir: Path, config: dict) -> str | None:
    """``ckpt_path`` as a checked path; ``last`` means ``<run folder>/checkpoints/last.ckpt`` if present.

    Checks that the file exists, loads with ``weights_only=True``, is a Lightning training checkpoint,
    and was written for the same model (by its stored ``vidgen_config``); each failure is one message.
    """
    if not ckpt:
        return None
    if ckpt == "last":
        path = output_dir / "checkpoints" / "last.ckpt"
        if not path.is_file():
            log.warning(f"ckpt_path=last: no {path} yet, starting from scratch")
            return None
    else:
        path = Path(ckpt)
        if not path.is_file():
            raise CheckpointError(
                f"ckpt_path={ckpt} does not exist. Fix: pass the path of a checkpoint file, e.g. "
                "ckpt_path=logs/train/runs/<timestamp>/checkpoints/last.ckpt, or ckpt_path=last with "
                "hydra.run.dir=<that run folder>."
            )
    checkpoint = _read(ckpt, path, mmap=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "loops" not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={ckpt} is not a Lightning training checkpoint (no state_dict/loops). "
            "Fix: pass a .ckpt written by vidgen-train."
        )
    saved = checkpoint.get("vidgen_config")
    if saved is not None:
        theirs, ours = _describe_model(saved), _describe_model(config)
        mismatched = [k for k in ("model", "data") if _shape_key(saved, k) != _shape_key(config, k)]
        if theirs != ours or mismatched:
            raise CheckpointError(
                f"ckpt_path={ckpt} was written by {theirs} on data {saved.get('data', {}).get('_target_')} "
                f"(image_size {saved.get('data', {}).get('image_size')}), but this run builds {ours} on "
                f"{config['data'].get('_target_')} (image_size {config['data'].get('image_size')}). Fix: use "
                "the same model/data overrides as the run that wrote it (see its .hydra/overrides.yaml)."
            )
    return str(path)


def _shape_key(config: dict, group: str) -> Any:
    """What must match between a checkpoint and a run: architecture classes and tensor-shaping sizes."""
    node = config.get(group, {})
    keys = ("image_size", "channels", "seq_len", "num_classes", "latent_dim", "base_width", "hidden_size")

    def walk(n: Any) -> Any:
        if isinstance(n, dict):
            return {
                k: walk(v)
                for k, v in sorted(n.items())
                if k in keys or k == "_target_" or isinstance(v, dict)
            }
        return n

    return walk(node)


def load_run_checkpoint(ckpt: str | None) -> dict:
    """The checkpoint at ``ckpt`` (``weights_only=True``) for eval/sample, with its ``vidgen_config``.

    Missing, unreadable, non-Lightning and non-vidgen (no ``vidgen_config``) files each give one
    ``CheckpointError`` naming the file and the fix.
    """
    if not ckpt:
        raise CheckpointError(
            "ckpt_path is not set. Fix: pass the checkpoint to evaluate, e.g. "
            "ckpt_path=logs/train/runs/<timestamp>/checkpoints/last.ckpt."
        )
    path = Path(ckpt)
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt} does not exist. Fix: pass the path of a checkpoint file written by "
            "vidgen-train, e.g. ckpt_path=logs/train/runs/<timestamp>/checkpoints/last.ckpt."
        )
    checkpoint = _read(ckpt, path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={ckpt} is not a Lightning checkpoint (no state_dict). "
            "Fix: pass a .ckpt written by vidgen-train, e.g. "
            "logs/train/runs/<timestamp>/checkpoints/last.ckpt."
        )
    if not isinstance(checkpoint.get("vidgen_config"), dict):
        raise CheckpointError(
            f"ckpt_path={ckpt} was not written by vidgen-train (it has no vidgen_config, the run config "
            "needed to rebuild the model and data). Fix: pass a .ckpt from "
            "logs/train/runs/<timestamp>/checkpoints/."
        )
    return checkpoint
