"""``vidgen-train``: compose the config, build data, model, loggers and trainer, fit, report metrics.

Usage: ``vidgen-train [group=option ...] [key=value ...]``; ``vidgen-train --help`` lists the groups.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from vidgen.config import conf_search_path
from vidgen.run import job_errors_to_log

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Trains the model described by ``cfg``; returns the final metrics (also in ``metrics.json``)."""
    from vidgen.run import RunContext

    with RunContext(cfg) as run:
        datamodule = run.build("data")
        model = run.build("model")
        callbacks = run.build_collection("callbacks")
        loggers = run.build_collection("logger")
        trainer = run.build_trainer(callbacks, loggers)
        run.log_config(loggers)
        log.info(f"Training {cfg.model._target_} on {cfg.data._target_}; outputs in {run.output_dir}")
        trainer.fit(model, datamodule=datamodule, ckpt_path=run.checkpoint_path())
        return run.write_metrics(trainer)


@hydra.main(version_base="1.3", config_path=conf_search_path(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    with job_errors_to_log():
        metrics = train(cfg)
    optimized = cfg.get("optimized_metric")
    if optimized:
        if optimized not in metrics:
            log.warning(f"optimized_metric={optimized!r} was not logged; logged: {sorted(metrics)}")
        return metrics.get(optimized)
    return None


if __name__ == "__main__":
    main()
