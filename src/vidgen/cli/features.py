"""``vidgen-features data=<option>``: train (or load) the data's domain feature extractor, print its accuracy.

The same extractor ``vidgen-eval`` and ``FIDCallback`` use (``vidgen.metrics.features``): trained on the
data's training split on first use (with a progress bar), cached under ``<data_dir>/feature_extractors/``
keyed by dataset and checksum, with its test accuracy saved beside it. For video data
(``data=moving_digits``, ``data=moving_mnist``) it is the C3D of ``vidgen.metrics.video_features``,
with its order and class accuracies.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from vidgen.config import conf_dir
from vidgen.run import job_errors_to_log

log = logging.getLogger(__name__)


def features(cfg: DictConfig) -> float:
    """Returns the extractor's test accuracy (for video data: the C3D's order accuracy)."""
    from vidgen.config import build, check_config
    from vidgen.metrics.features import domain_feature_extractor

    check_config(cfg)
    datamodule = build(cfg.data, "data")
    if getattr(datamodule, "data_kind", "image") == "video":
        from vidgen.metrics.video_features import video_feature_extractor

        extractor = video_feature_extractor(datamodule, datamodule.feature_extractor)
        name = f"{extractor.name} (C3D, {datamodule.dataset_id})"
        print(f"video feature extractor {name}: {extractor.summary()}")
        return extractor.order_accuracy
    extractor = domain_feature_extractor(datamodule, datamodule.feature_extractor)
    name, accuracy = f"{extractor.name} ({datamodule.dataset_id})", extractor.test_accuracy
    print(f"feature extractor {name}: test accuracy {accuracy:.2%}")
    return extractor.test_accuracy


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="features")
def main(cfg: DictConfig) -> None:
    with job_errors_to_log():
        features(cfg)


if __name__ == "__main__":
    main()
