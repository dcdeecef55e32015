"""Names the test set of a test run beside its results: the same metric on Moving MNIST's standard file
and on generated sequences are different numbers, and a result has to say which one it is.

At the start of ``trainer.test`` the datamodule's ``test_set_name`` (``vidgen.data.base``; e.g.
``mnist_test_seq.npy (10,000)`` or ``generated 10,000, split_seed 0``) goes to the log and to every
logger as the hyperparameter ``data/test_set`` (``hparams.yaml`` of the CSV logger, the W&B config, the
TensorBoard hparams). ``vidgen-eval`` adds this callback (its ``test_set_name`` node).
"""

from __future__ import annotations

import logging

import lightning as L

log = logging.getLogger(__name__)


class TestSetNameCallback(L.Callback):
    """Logs ``trainer.datamodule.test_set_name`` once per test run; nothing when the test data come
    without a datamodule (``trainer.test(dataloaders=...)``)."""

    __test__ = False  # a callback, not a pytest test class

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.datamodule is None:
            return
        name = trainer.datamodule.test_set_name
        log.info(f"Test set: {name}")
        for logger in trainer.loggers:
            logger.log_hyperparams({"data/test_set": name})
