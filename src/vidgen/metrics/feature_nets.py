"""Training the networks whose features the sample-quality metrics use, with Lightning.

No pretrained network fits vidgen's data offline (Inception-v3's weights cannot be downloaded here, and
on 8x8 digits its space measures little), so each dataset's feature space is a network vidgen trains on
the dataset's own training split, the way many GAN papers compute "FID on MNIST with LeNet". The recipe
of each network is a config, ``conf/features/<name>.yaml`` (net, optimizer, schedule, epochs, batch
size, augmentation, seed), trained by a Lightning ``Trainer`` like any vidgen model:

- ``ClassifierTraining``: an image classifier (LeNet-5, the CIFAR ResNet) by cross-entropy, optionally
  with He et al. 2016's augmentation (Sec. 4.2: 4-pixel padding, random crops, horizontal flips).
- ``ClipOrderTraining``: the C3D of the video metrics by a self-supervised task: every clip is shown
  as recorded, time-reversed or frame-shuffled, and the ``order`` head names which; clips with a label
  (``y >= 0``) also train the ``classes`` head. The order task makes the features sensitive to temporal
  coherence (flicker, jumps, frozen digits), the class task to what the digits look like. Bouncing at
  constant speed is nearly time-reversible, so expect about 2/3 order accuracy on moving digits (shuffled
  recognised, recorded/reversed guessed), not 1.

Test accuracies are measured with torchmetrics on the test split and stored with the trained weights
(``vidgen.metrics.feature_spaces``). Progress goes to the log (``train.log`` when stdout is not a
terminal) once per epoch, with the time spent and left; measured times are in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassAccuracy

from vidgen.value_range import CANONICAL, to_canonical

log = logging.getLogger(__name__)

#: The classes of ``ClipOrderTraining``'s order head, in label order.
ORDERS = ("recorded", "reversed", "shuffled")

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def random_crop_flip(x: torch.Tensor, pad: int = 4, fill: float = 0.0) -> torch.Tensor:
    """He et al. 2016, Sec. 4.2: each image padded by ``pad`` pixels of ``fill`` on every side, an
    ``H x W`` crop taken at a random position, and flipped horizontally with probability 1/2."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=fill)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b, 1, 1, 1))
    rows = (dy + torch.arange(h).view(1, 1, h, 1)).expand(b, c, h, w + 2 * pad)
    cols = (dx + torch.arange(w).view(1, 1, 1, w)).expand(b, c, h, w)
    crops = padded.gather(2, rows).gather(3, cols)
    flip = torch.rand(b, 1, 1, 1) < 0.5
    return torch.where(flip, crops.flip(3), crops)


def reorder(x: torch.Tensor, order: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Clip ``x[i]`` (``x``: ``(B, T, ...)``) as recorded (``order[i] == 0``), time-reversed (1) or with
    its frames in a random order that is neither the recorded nor the reversed one (2); ``T >= 3``."""
    b, t = x.shape[:2]
    if t < 3:
        raise ValueError(f"the C3D's order task needs clips of >= 3 frames (data.seq_len), got {t}.")
    forward = torch.arange(t).expand(b, t)
    index = torch.where((order == 1)[:, None], forward.flip(1), forward).clone()
    shuffled = (order == 2).nonzero().flatten()
    perms = torch.rand(len(shuffled), t, generator=generator).argsort(1)
    bad = (perms == forward[0]).all(1) | (perms == forward[0].flip(0)).all(1)
    while bad.any():  # rare for T > 3: redraw the permutations that are not a shuffle
        perms[bad] = torch.rand(int(bad.sum()), t, generator=generator).argsort(1)
        bad = (perms == forward[0]).all(1) | (perms == forward[0].flip(0)).all(1)
    index[shuffled] = perms
    return x[torch.arange(b)[:, None], index]


class FeatureNetTraining(L.LightningModule):
    """What both recipes share: the net, its optimizer and per-step schedule, and the test accuracies.

    Args:
        net: the network (``features(x)`` plus its heads), built with the data's channels and classes.
        optimizer: optimizer factory (``_partial_: true``).
        scheduler: null, or a per-step schedule factory taking ``total_steps`` (e.g. ``OneCycleLR``).
        max_epochs, batch_size: passes over the training split and its batch size.
        seed: seeds the weights, the batch order and the augmentation.
        display_name: the architecture's name in logs and metric descriptions (``LeNet-5``).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        max_epochs: int = 10,
        batch_size: int = 64,
        seed: int = 0,
        display_name: str = "",
    ):
        super().__init__()
        self.net = net
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_epochs, self.batch_size, self.seed = max_epochs, batch_size, seed
        self.display_name = display_name or type(net).__name__
        # the data's range, set by vidgen.metrics.feature_spaces; batches are trained on in CANONICAL
        self.value_range = CANONICAL

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.net.parameters())
        if self.scheduler is None:
            return optimizer
        schedule = self.scheduler(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def accuracies(self) -> dict[str, float | None]:
        """The test accuracies after ``trainer.test``, by name (``test_accuracy`` is the main one)."""
        raise NotImplementedError


class ClassifierTraining(FeatureNetTraining):
    """Trains an image classifier by cross-entropy; ``augment`` adds He et al.'s crops and flips, padding
    with mid-grey."""

    def __init__(self, *args: Any, augment: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.augment = augment
        self.test_accuracy = MulticlassAccuracy(num_classes=self.net.head.out_features, average="micro")

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = to_canonical(batch[0], self.value_range), batch[1]
        if self.augment:
            x = random_crop_flip(x, fill=sum(CANONICAL) / 2)
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.test_accuracy.update(self.net(to_canonical(batch[0], self.value_range)), batch[1])

    def accuracies(self) -> dict[str, float | None]:
        return {"test_accuracy": float(self.test_accuracy.compute())}


class ClipOrderTraining(FeatureNetTraining):
    """Trains the C3D's ``order`` head on recorded/reversed/shuffled clips and its ``classes`` head on
    the labelled clips (cross-entropy over those only; the content is the same in all three orders)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.order_accuracy = MulticlassAccuracy(num_classes=len(ORDERS), average="micro")
        self.class_accuracy = MulticlassAccuracy(num_classes=self.net.num_classes, average="micro")
        self._labelled = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = to_canonical(batch[0], self.value_range), batch[1]
        order = torch.randint(len(ORDERS), (len(x),), device=x.device)
        order_logits, class_logits = self.net(reorder(x, order))
        loss = F.cross_entropy(order_logits, order)
        labelled = y >= 0
        if labelled.any():
            loss = loss + F.cross_entropy(class_logits[labelled], y[labelled])
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def on_test_epoch_start(self) -> None:
        # Seeded shuffles: the order accuracy of a cached net can be measured again to the same value.
        self._shuffles = torch.Generator().manual_seed(self.seed)
        self._labelled = 0

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = to_canonical(batch[0], self.value_range), batch[1]
        for k in range(len(ORDERS)):
            order = torch.full((len(x),), k, device=x.device)
            order_logits, class_logits = self.net(reorder(x, order, self._shuffles))
            self.order_accuracy.update(order_logits, order)
            if k == 0 and (y >= 0).any():
                labelled = y >= 0
                self.class_accuracy.update(class_logits[labelled], y[labelled])
                self._labelled += int(labelled.sum())

    def accuracies(self) -> dict[str, float | None]:
        klass = float(self.class_accuracy.compute()) if self._labelled else None
        return {"test_accuracy": float(self.order_accuracy.compute()), "class_accuracy": klass}


class EpochProgress(L.Callback):
    """One log line per epoch (loss, time spent, time left): visible in ``train.log`` where a progress
    bar is not (stdout is a file under Hydra jobs, SLURM and CI)."""

    def __init__(self, what: str):
        self.what = what

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()
        log.info(f"{self.what}: {trainer.max_epochs} epochs of {trainer.num_training_batches} batches")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done, total = trainer.current_epoch + 1, trainer.max_epochs
        spent = time.perf_counter() - self.start
        loss = trainer.callback_metrics.get("train/loss")
        loss_text = f", loss {float(loss):.4f}" if loss is not None else ""
        log.info(f"{self.what}: epoch {done}/{total}{loss_text}, {spent:.0f} s spent, "
                 f"about {spent / done * (total - done):.0f} s left")  # fmt: skip


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silences the Trainer's start-up lines ("GPU available: ...") of the inner training."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def fit_feature_net(
    task: FeatureNetTraining, train: Dataset, test: Dataset, num_workers: int, what: str
) -> dict[str, float | None]:
    """Trains ``task`` on ``train`` with a Lightning ``Trainer`` on the CPU and returns its accuracies on
    ``test``. Runs inside ``fork_rng``: whether a cached net existed must not change the run's own random
    stream, and the outer run's rank-zero flag is restored (this may run inside another Trainer)."""
    from lightning.pytorch.utilities import rank_zero_only

    outer_rank = getattr(rank_zero_only, "rank", 0)
    with torch.random.fork_rng(devices=[]), _quiet_lightning():
        torch.manual_seed(task.seed)
        loader = DataLoader(train, batch_size=min(task.batch_size, len(train)), shuffle=True, drop_last=True,
                            num_workers=num_workers, persistent_workers=num_workers > 0,
                            generator=torch.Generator().manual_seed(task.seed))  # fmt: skip
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=task.max_epochs,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=sys.stderr.isatty(),
            callbacks=[EpochProgress(what)],
            num_sanity_val_steps=0,
        )
        trainer.fit(task, train_dataloaders=loader)
        test_loader = DataLoader(test, batch_size=256, shuffle=False, num_workers=num_workers)
        trainer.test(task, dataloaders=test_loader, verbose=False)
        accuracies = task.accuracies()
    rank_zero_only.rank = outer_rank
    task.net.eval()
    return accuracies
