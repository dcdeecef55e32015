"""Stops training at the first non-finite training loss, before it can reach a checkpoint."""

from __future__ import annotations

import math

import lightning as L

from vidgen.errors import TrainingDiverged


class FiniteLossCheck(L.Callback):
    """Checks every ``train/*`` value logged this step; raises ``TrainingDiverged`` on NaN/inf.

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
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/") and value.numel() == 1 and not math.isfinite(float(value)):
                last = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none written yet"
                raise TrainingDiverged(
                    f"{key} became {float(value)} at epoch {trainer.current_epoch}, batch {batch_idx}: "
                    f"training diverged and was stopped. Last good checkpoint: {last}. Fix: lower the "
                    "learning rate (model.optimizer*.lr) or check the data's value range; resume with "
                    "ckpt_path=<that file>."
                )
