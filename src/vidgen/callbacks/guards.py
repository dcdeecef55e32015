"""Stops training at the first non-finite training loss, before it can reach a checkpoint."""

from __future__ import annotations

import math

import lightning as L
import torch

from vidgen.errors import TrainingDiverged


class FiniteLossCheck(L.Callback):
    """Checks the step's returned loss and every ``train/*`` value logged; raises ``TrainingDiverged`` on
    NaN/inf.

    It runs at each batch end, i.e. before validation and ``ModelCheckpoint`` can save diverged
    weights, so ``last.ckpt`` stays the last good state. On CPU reading the values costs nothing
    (CPU ops are synchronous); on GPU it is one host sync per ``every_n_steps`` steps.
    """

    def __init__(self, every_n_steps: int = 1):
        self.every_n_steps = every_n_steps

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx
    ) -> None:
        if batch_idx % self.every_n_steps:
            return
        # every train/ value logged so far, then the loss training_step returned (families that log the
        # step loss only on the steps the loggers write, vidgen.families.base.writes_step_logs)
        values = [(k, v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")]
        if isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
            values.append(("the loss training_step returned", outputs["loss"].detach()))
        for key, value in values:
            if value.numel() == 1 and not math.isfinite(float(value)):
                last = _last_checkpoint(trainer) or "none written yet"
                raise TrainingDiverged(
                    f"{key} became {float(value)} at epoch {trainer.current_epoch}, batch {batch_idx}: "
                    f"training diverged and was stopped. Last good checkpoint: {last}. Fix: lower the "
                    "learning rate (model.optimizer*.lr) or check the data's value range; resume with "
                    "ckpt_path=<that file>."
                )


def _last_checkpoint(trainer: L.Trainer) -> str:
    """The newest ``last.ckpt`` any checkpoint callback wrote: ``save_last``'s copy, or the file of a
    callback without a monitor (``conf/callbacks/model_checkpoint.yaml``'s ``last_checkpoint``)."""
    for callback in trainer.checkpoint_callbacks:
        path = getattr(callback, "last_model_path", "") or (
            getattr(callback, "best_model_path", "") if getattr(callback, "monitor", "") is None else ""
        )
        if path:
            return path
    return ""
