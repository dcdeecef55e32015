"""A callback that records when a ``vidgen-train`` run finished its first optimizer step.

Added to a real run by ``benchmarks/bench.py`` (``PYTHONPATH=benchmarks``)::

    vidgen-train +callbacks.first_step_probe._target_=startup_probe.FirstStepProbe \
        +callbacks.first_step_probe.path=<file>

Wall-clock times (``time.time()``, comparable across processes) are written to ``path`` as JSON:
``ready`` when the first training batch starts (imports, config, build, sanity check done) and
``stepped`` at its end, after its optimizer step(s) in automatic and manual optimization alike. Then the
process exits, so what follows (validation, checkpoints, W&B sync) is not waited for.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L


class FirstStepProbe(L.Callback):
    def __init__(self, path: str, exit_after: bool = True):
        self.path = Path(path)
        self.exit_after = exit_after
        self.ready = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.ready is None:
            self.ready = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.path.write_text(json.dumps({"ready": self.ready, "stepped": time.time()}))
        if self.exit_after:
            os._exit(0)  # the parent measured what it needed; skip teardown (W&B sync, checkpoints)
