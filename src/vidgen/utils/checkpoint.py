"""Checkpoints that survive a kill, carry their run's config and RNG state, and fail readably.

- ``AtomicCheckpointIO``: Lightning writes a checkpoint in place, so a SIGKILL mid-write leaves a torn
  ``last.ckpt``; this plugin writes to a temporary file in the same folder and renames it.
- ``RunStateCheckpoint``: stores the resolved config (``vidgen_config``, used by eval/sample and to
  detect foreign checkpoints) and the Python/NumPy/torch RNG states, restored on resume, so a
  resumed run draws the same random numbers as an uninterrupted one (granularity: the epoch end at
  which the checkpoint was written).
- ``resolve_checkpoint``: turns ``ckpt_path`` into a checked file path, or one ``CheckpointError``.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from vidgen.errors import CheckpointError
from vidgen.utils.files import atomic_torch_save

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose writes are atomic (temporary file + ``os.replace``)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options.")
        atomic_torch_save(checkpoint, Path(path))


class RunStateCheckpoint(L.Callback):
    """Adds ``vidgen_config`` and ``vidgen_rng`` to every checkpoint; restores the RNG state on resume."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["vidgen_config"] = self.config
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


def _read(ckpt: str, path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; an unreadable file is one ``CheckpointError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
    checkpoint = _read(ckpt, path)
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
