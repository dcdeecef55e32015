"""The video feature extractor: a small C3D trained by vidgen on the real clips, cached on disk.

The video counterpart of ``vidgen.metrics.features`` (read it first): no pretrained video network (I3D,
the FVD space of Unterthiner et al. 2018) can be downloaded offline, so vidgen trains a small C3D
(``vidgen.nets.c3d``, Tran et al. 2015) on the video datamodule's training split and uses its 128-d
penultimate layer as the feature space of ``vidgen.metrics.generative.video_metrics``.

Task (self-supervised, so that clips without labels train it too): every clip is shown as recorded,
time-reversed or frame-shuffled (a random permutation that is neither of the other two), one of the
three drawn uniformly per clip, and the ``order`` head names which; clips whose ``y >= 0`` (the class of
the first digit) also train the ``classes`` head (cross-entropy over the labelled clips only; the
content is the same in all three orders, so all three count). The order task makes the features
sensitive to temporal coherence (flicker, jumps, frozen or jittering digits), the class task to what
the digits look like.

What the accuracies can reach on moving digits: bouncing at constant speed is time-reversible, so
"recorded" and "reversed" differ only in where the generator's clamping at the frame's edges puts the
short step (before the bounce when recorded, after it when reversed): expect about 2/3 order accuracy
(shuffled recognised, recorded/reversed guessed) rather than 1. ``y`` names the *first* of two digits
and nothing in the clip says which digit is first, so with ``num_digits=2`` about 1/2 class accuracy
is the ceiling (chance 1/10); with one digit it is a plain digit classifier.

Recipe (``RECIPE``): Adam, a one-cycle learning-rate schedule peaking at 2e-3, batches of 32 clips,
15 passes over the train split (930 steps). Measured on this project's 2-core CPU (no GPU) with
``VIDGEN_DATA_DIR=<empty folder> vidgen-features data=moving_digits`` (defaults: 2,000 training clips
of 20 frames of 32x32 with two 16x16 digits, 200 test clips): order accuracy 67.2% (chance 33.3%),
class accuracy 46.5% (chance 10%), identical in three runs. Time: 179 s of training, 188 s for the
whole command, on an otherwise idle machine; 712 s and 938 s in two runs that shared the 2 cores with
another test suite (thread oversubscription slows PyTorch's 3D convolutions several-fold). With 3
epochs the class head was still at chance (12%); the order head reaches its ~2/3 within 2 or 3.

What the space measures (that extractor; the 200 test clips against 200 training clips as they are,
frozen on their first frame, frame-shuffled, and uniform noise): ``fd_c3d`` 2.7, 8.3, 52 and 610;
the mean per-frame FID (``fid_frames``, frames as still clips of 8, see ``video_metrics``) 1.5, 1.5,
1.5 and 353: the clip distance sees motion, the frame distance only appearance.

Cached as the image extractors are (``features.load_or_train``): ``<data_dir>/feature_extractors/
<name>_c3d_<dataset_id>_c<channels>_<checksum12>.pt`` with both test accuracies (also in a ``.json``
beside it), trained once with a progress bar inside ``fork_rng`` (the run's random stream does not
depend on whether the cache existed), and loaded from there after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from vidgen.metrics.features import FeatureExtractor, cache_file, fit_feature_net, load_or_train
from vidgen.nets.c3d import C3D

log = logging.getLogger(__name__)

#: The classes of the ``order`` head, in label order.
ORDERS = ("recorded", "reversed", "shuffled")

#: How vidgen trains the C3D (see the module docstring for the measured time and accuracies).
RECIPE: dict[str, Any] = {"epochs": 15, "batch_size": 32, "optimizer": "adam", "lr": 2e-3,
                          "schedule": "one-cycle"}  # fmt: skip


class VideoFeatureExtractor(FeatureExtractor):
    """The trained C3D, frozen: ``forward(x)`` maps clips ``(B, T, C, H, W)`` (any T, H, W) to its
    ``num_features``-d features; ``features_and_logits`` adds the ``classes`` head's logits.

    ``test_accuracy`` is the order accuracy (``order_accuracy``, chance 1/3); ``class_accuracy`` is the
    digit accuracy on the labelled test clips (None when the data has no labels).
    """

    batch_size = 64  # clips per forward pass in ``features_of``

    def __init__(self, net: C3D, name: str, order_accuracy: float, class_accuracy: float | None):
        super().__init__(net, name, order_accuracy, "C3D")
        self.order_accuracy, self.class_accuracy = order_accuracy, class_accuracy

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.classifier.features(x)
        return features, self.classifier.classes(features)

    def summary(self) -> str:
        return accuracy_summary(
            {"order_accuracy": self.order_accuracy, "class_accuracy": self.class_accuracy}
        )


def accuracy_summary(meta: dict[str, Any]) -> str:
    """``order accuracy 65.00% (chance 33.33%), class accuracy 48.00%`` (class: ``n/a`` without labels)."""
    klass = meta["class_accuracy"]
    klass = "n/a (no labels)" if klass is None else f"{klass:.2%}"
    order, chance = meta["order_accuracy"], 1 / len(ORDERS)
    return f"order accuracy {order:.2%} (chance {chance:.2%}), class accuracy {klass}"


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


def _loss(net: C3D, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    order = torch.randint(len(ORDERS), (len(x),))
    order_logits, class_logits = net(reorder(x, order))
    loss = F.cross_entropy(order_logits, order)
    labelled = y >= 0
    if labelled.any():
        loss = loss + F.cross_entropy(class_logits[labelled], y[labelled])
    return loss


@torch.no_grad()
def c3d_accuracies(net: C3D, datamodule: Any, seed: int = 0) -> tuple[float, float | None]:
    """Order accuracy (every test clip in all three orders, seeded shuffles) and class accuracy (the
    labelled test clips as recorded; None when none is labelled) of ``net`` on ``datamodule``'s test split."""
    net.eval()
    shuffles = torch.Generator().manual_seed(seed)
    order_hits = order_total = class_hits = class_total = 0
    for x, y in datamodule.test_dataloader():
        for k in range(len(ORDERS)):
            order = torch.full((len(x),), k)
            order_logits, class_logits = net(reorder(x, order, shuffles))
            order_hits += (order_logits.argmax(1) == order).sum().item()
            order_total += len(x)
            if k == 0:
                labelled = y >= 0
                class_hits += (class_logits[labelled].argmax(1) == y[labelled]).sum().item()
                class_total += int(labelled.sum())
    return order_hits / order_total, (class_hits / class_total if class_total else None)


def _train_c3d(
    build: Callable[[], C3D], datamodule: Any, epochs: int, seed: int
) -> tuple[C3D, float, float | None]:
    """Trains ``build()`` by ``RECIPE`` on the train split; returns it and its order and class accuracies."""
    # fork_rng: training the extractor on first use must not change the run's own random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
        train = datamodule.splits["train"]
        batch_size = min(RECIPE["batch_size"], len(train))
        loader = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=True,
                            num_workers=datamodule.num_workers,
                            persistent_workers=datamodule.num_workers > 0)  # fmt: skip
        steps = max(1, epochs * len(loader))
        opt = torch.optim.Adam(net.parameters(), lr=RECIPE["lr"])
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE["lr"], total_steps=steps)
        what = f"Training video feature net C3D on {datamodule.dataset_id}"
        fit_feature_net(net, loader, epochs, opt, schedule, _loss, what)
        order_accuracy, class_accuracy = c3d_accuracies(net, datamodule, seed)
    return net, order_accuracy, class_accuracy


def video_feature_extractor(
    datamodule: Any, name: str, epochs: int | None = None, seed: int = 0
) -> VideoFeatureExtractor:
    """The C3D feature extractor for ``datamodule``'s clips, trained on first use and cached.

    Trained for ``epochs`` (default: ``RECIPE``'s). ``datamodule`` is a video datamodule exposing
    ``dataset_id``, ``checksum`` (after ``setup``), ``channels``, ``num_classes``, ``data_dir``,
    ``num_workers``, ``splits["train"]`` and ``test_dataloader()``, batches ``(x, y)`` with ``x`` of
    ``(B, T, C, H, W)`` and ``y`` the class or -1. An unreadable cache file is retrained and replaced.
    """
    datamodule.setup("fit")
    epochs = RECIPE["epochs"] if epochs is None else epochs

    def build() -> C3D:
        return C3D(channels=datamodule.channels, num_classes=datamodule.num_classes, num_orders=len(ORDERS))

    def train() -> tuple[nn.Module, dict[str, Any]]:
        net, order_accuracy, class_accuracy = _train_c3d(build, datamodule, epochs, seed)
        meta = {"dataset": datamodule.dataset_id, "checksum": datamodule.checksum, "architecture": "C3D",
                "task": list(ORDERS), "epochs": epochs, "seed": seed, "recipe": RECIPE,
                "order_accuracy": order_accuracy, "class_accuracy": class_accuracy}  # fmt: skip
        return net, meta

    net, meta = load_or_train(
        cache_file(datamodule, name, "c3d"), build, train, f"video features '{name}'", "C3D", accuracy_summary
    )
    class_accuracy = meta["class_accuracy"]
    return VideoFeatureExtractor(
        net, name, float(meta["order_accuracy"]), None if class_accuracy is None else float(class_accuracy)
    )
