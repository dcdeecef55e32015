"""A callback that records when a ``vidgen-train`` run finished its first optimizer step.

Added to a real run by ``benchmarks/bench.py`` (``PYTHONPATH=benchmarks``)::

    vidgen-train +callbacks.first_step_probe._target_=startup_probe.FirstStepProbe \
        +callbacks.first_step_probe.path=<file>

``on_train_batch_end`` follows the optimizer step(s) of the first batch (in automatic and manual
optimization alike); the wall-clock time (``time.time()``, comparable across processes) is written to
``path`` and the run is stopped, so what follows (validation, checkpoints) is not waited for.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L


class FirstStepProbe(L.Callback):
    def __init__(self, path: str, exit_after: bool = True):
        self.path = Path(path)
        self.exit_after = exit_after

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.path.write_text(repr(time.time()))
        if self.exit_after:
            os._exit(0)  # the parent measured what it needed; skip teardown (W&B sync, checkpoints)
