"""``vidgen-features data=<option>``: train (or load) the data's feature network, print its accuracy.

The network the sample-quality metrics use (``vidgen.metrics.feature_spaces``): LeNet-5 for digits and
MNIST, ResNet-8 for CIFAR-10 and image folders, the C3D for moving digits and Moving-MNIST, each trained
by its recipe in ``conf/features/`` on the data's training split on first use (progress in the log),
cached under ``<data_dir>/feature_extractors/`` keyed by recipe and data, with its test accuracy.
``vidgen-eval`` and the validation FID train it on first use too; this command does it beforehand.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from vidgen.config import conf_search_path
from vidgen.run import job_errors_to_log

log = logging.getLogger(__name__)


def features(cfg: DictConfig) -> float:
    """Returns the feature network's test accuracy (for clips: the C3D's order accuracy)."""
    from vidgen.config import build, check_config
    from vidgen.metrics.feature_spaces import feature_space

    check_config(cfg)
    space = feature_space(build(cfg.data, "data"))
    print(f"feature space '{space.name}': {space.description}")
    return next(iter(space.accuracies().values()))


@hydra.main(version_base="1.3", config_path=conf_search_path(), config_name="features")
def main(cfg: DictConfig) -> None:
    with job_errors_to_log():
        features(cfg)


if __name__ == "__main__":
    main()
