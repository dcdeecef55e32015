"""Domain feature extractors: small classifiers trained by vidgen on the real data, cached on disk.

Inception-v3 features (the standard FID space) need weights that cannot be downloaded offline, and on
8x8 digits they measure little. A classifier trained on the dataset itself gives a feature space in
which FID separates good from bad samples (the approach of e.g. the "FID on MNIST with LeNet" used in
many GAN papers). The classifier is trained once per (dataset, image size, channels, data checksum),
saved under ``<data_dir>/feature_extractors/`` with its test accuracy, and loaded from there after.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidgen.nets.lenet import LeNet5
from vidgen.utils.files import atomic_torch_save, atomic_write_text

log = logging.getLogger(__name__)


class FeatureExtractor(nn.Module):
    """Wraps a classifier so that ``forward`` returns its penultimate features, as torchmetrics expects."""

    def __init__(self, classifier: LeNet5, name: str, test_accuracy: float):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features
        self.name = name
        self.test_accuracy = test_accuracy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)

    def train(self, mode: bool = True) -> FeatureExtractor:
        # A frozen measuring instrument: never let a parent's .train() switch it out of eval mode.
        return super().train(False)


def _train_classifier(datamodule: Any, channels: int, epochs: int, seed: int) -> tuple[LeNet5, float]:
    # fork_rng: training the extractor on first use must not change the run's own random stream,
    # or a run would differ depending on whether the cache existed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = LeNet5(channels=channels, num_classes=datamodule.num_classes)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        from rich.progress import track

        for _ in track(
            range(epochs), description=f"Training FID feature classifier on {datamodule.dataset_id}"
        ):
            net.train()
            for x, y in datamodule.train_dataloader():
                loss = nn.functional.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in datamodule.test_dataloader():
                correct += (net(x).argmax(1) == y).sum().item()
                total += len(y)
    return net, correct / total


def domain_feature_extractor(datamodule: Any, name: str, epochs: int = 30, seed: int = 0) -> FeatureExtractor:
    """The LeNet-5 feature extractor for ``datamodule``'s data, trained on first use and cached.

    ``datamodule`` must be set up and expose ``dataset_id``, ``checksum``, ``channels``, ``num_classes``,
    ``data_dir`` and labelled ``train_dataloader()``/``test_dataloader()``.
    """
    datamodule.setup("fit")
    key = f"{datamodule.dataset_id}_c{datamodule.channels}_{datamodule.checksum[:12]}"
    cache = Path(datamodule.data_dir) / "feature_extractors" / f"{name}_lenet5_{key}.pt"
    if cache.exists():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        net = LeNet5(channels=datamodule.channels, num_classes=datamodule.num_classes)
        net.load_state_dict(saved["state_dict"])
        accuracy = float(saved["test_accuracy"])
        log.info(f"FID features '{name}': LeNet-5 from {cache} (test accuracy {accuracy:.2%})")
    else:
        net, accuracy = _train_classifier(datamodule, datamodule.channels, epochs, seed)
        meta = {"dataset": datamodule.dataset_id, "checksum": datamodule.checksum, "epochs": epochs,
                "seed": seed, "test_accuracy": accuracy}  # fmt: skip
        atomic_torch_save({"state_dict": net.state_dict(), **meta}, cache)
        atomic_write_text(cache.with_suffix(".json"), json.dumps(meta, indent=2))
        log.info(f"FID features '{name}': trained LeNet-5, test accuracy {accuracy:.2%}, cached at {cache}")
    return FeatureExtractor(net, name, accuracy)
