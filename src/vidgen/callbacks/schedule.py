"""When the sample callbacks write: every ``every_n_epochs`` epochs, and always at the last epoch or when
the run stops early, so every run ends with samples of its final weights."""

from __future__ import annotations

import lightning as L


def due_at_epoch_end(trainer: L.Trainer, every_n_epochs: int) -> bool:
    """Whether the epoch that ends now is one to write samples at."""
    epoch = trainer.current_epoch
    last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
    return (epoch + 1) % every_n_epochs == 0 or last or trainer.should_stop
