"""Per-time-step test metrics of frame predictors as a table and a plot, as OpenSTL's papers show them.

Errors grow with the prediction horizon; a single mean hides whether a model degrades gracefully or
collapses after a few frames, so ``vidgen-eval`` writes the curve beside the means: after
``trainer.test``, ``<run>/per_step_metrics.csv`` (one row per predicted frame) and
``per_step_metrics.png``, which also goes to W&B and TensorBoard as ``test/per_step_metrics``. The
curves come from the model (``test_curves()``, reduced over DDP ranks); models without any are skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from vidgen.media import log_image
from vidgen.metrics import curves

log = logging.getLogger(__name__)


class FrameCurvesCallback(L.Callback):
    """Writes the model's per-time-step test curves; does nothing for models without curves."""

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        per_step = pl_module.test_curves()
        if not per_step or not trainer.is_global_zero:
            return
        means = {k: [float(v) for v in per_step[k]] for k in sorted(per_step)}
        root = Path(trainer.default_root_dir)
        table = curves.write_csv(means, root / "per_step_metrics.csv")
        title = type(pl_module).__name__
        figure = curves.plot(means, root / "per_step_metrics.png", title=title)
        log.info(f"per-time-step test metrics: {table}, {figure}")
        log_image(trainer.loggers, "test/per_step_metrics", figure, trainer.global_step)
