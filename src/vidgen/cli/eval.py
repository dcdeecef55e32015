"""``vidgen-eval ckpt_path=<file>``: rebuild a trained model and its data from the checkpoint, test it.

The checkpoint carries the resolved config of the run that wrote it (``checkpoint["vidgen_config"]``);
its ``model``, ``loss`` and ``data`` are rebuilt from there (``data=<option>`` and
``overrides='{key: value}'`` change them), the weights are loaded, and ``trainer.test`` runs with the
``metrics`` (sample quality), ``curves`` (per-step frame metrics) and ``test_set_name`` (which test set,
e.g. Moving MNIST's file or generated sequences, in the log and the hyperparameters) callbacks; models of
clips with sound (``test_metrics`` with ``audio_visual``) also with ``AudioVisualQualityCallback``. Results go
to ``logs/eval/runs/<timestamp>/metrics.json``, to ``<training run>/eval/<timestamp>/metrics.json`` beside
the training run's own files, and to the loggers: W&B resumes the run that trained the checkpoint
(``resume_training_run=true``, ``vidgen.wandb_run.for_checkpoint``), so its row gets the test metrics.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from vidgen.config import conf_search_path
from vidgen.run import job_errors_to_log

log = logging.getLogger(__name__)


def with_checkpoint_config(cfg: DictConfig, saved: dict) -> DictConfig:
    """``cfg`` plus the checkpoint's ``model``/``loss``/``data`` (``cfg.data`` wins when given), with
    ``data.data_dir`` pointed at this run's data folder and ``cfg.overrides`` applied."""
    with open_dict(cfg):
        for group in ("model", "loss", "data"):
            if cfg.get(group) is None and saved.get(group) is not None:
                cfg[group] = OmegaConf.create(saved[group])
        if cfg.get("data") is not None and "data_dir" in cfg.data and saved.get("data") is not None:
            cfg.data.data_dir = cfg.paths.data_dir
        for key, value in (cfg.get("overrides") or {}).items():
            OmegaConf.update(cfg, key, value, force_add=False)
    return cfg


def load_weights(model, checkpoint: dict, ckpt_path: str) -> None:
    from vidgen.errors import CheckpointError

    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: its weights do not fit the model rebuilt from its config "
            f"({str(e).splitlines()[0][:200]}). Fix: drop the model overrides, or pass a checkpoint "
            "of this model."
        ) from e


def audio_visual_metrics(metrics: DictConfig, untrained=None):
    """The test metrics of a model that declares ``audio_visual`` (clips with sound): agreement of the digit
    seen and heard and each modality's sample quality, with the ``metrics`` node's N, seed and floor."""
    from vidgen.callbacks.audio_visual_quality import AudioVisualQualityCallback

    return AudioVisualQualityCallback(
        stages=("test",), metrics=list(metrics.metrics), num_fake=metrics.num_fake, seed=metrics.seed,
        min_extractor_accuracy=metrics.min_extractor_accuracy, untrained=untrained,
    )  # fmt: skip


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Tests the checkpoint ``cfg.ckpt_path``; returns the metrics (also in ``metrics.json``)."""
    from vidgen.config import build
    from vidgen.run import RunContext, load_run_checkpoint
    from vidgen.wandb_run import for_checkpoint

    checkpoint = load_run_checkpoint(cfg.get("ckpt_path"))
    cfg = with_checkpoint_config(cfg, checkpoint["vidgen_config"])
    for_checkpoint(cfg, checkpoint, cfg.ckpt_path)
    with RunContext(cfg) as run:
        datamodule = run.build("data")
        model = run.build("model")
        # the trivial baseline of sample metrics: the same model before its weights are loaded
        untrained = copy.deepcopy(model) if cfg.get("untrained_baseline") else None
        load_weights(model, checkpoint, cfg.ckpt_path)
        loggers = run.build_collection("logger")
        callbacks = [build(cfg[key], key) for key in ("curves", "test_set_name") if cfg.get(key)]
        if cfg.get("metrics"):
            callbacks.insert(0, build(cfg.metrics, "metrics", untrained=untrained))
            if "audio_visual" in model.test_metrics:
                callbacks.insert(1, audio_visual_metrics(cfg.metrics, untrained))
        trainer = run.build_trainer(callbacks, loggers)
        run.log_config(loggers)
        log.info(f"Evaluating {cfg.ckpt_path} ({cfg.model._target_}); outputs in {run.output_dir}")
        trainer.test(model, datamodule=datamodule)
        metrics = run.write_metrics(trainer)
        if trainer.is_global_zero:
            write_beside_training_run(metrics, cfg.ckpt_path, run.output_dir)
        return metrics


def write_beside_training_run(metrics: dict[str, float], ckpt_path: str, output_dir: Path) -> Path | None:
    """``<training run>/eval/<this eval's folder name>/metrics.json`` (and ``eval.json``: the checkpoint
    and this eval's folder), so the training run's folder holds its test results; None when the checkpoint
    is not in a run's ``checkpoints/`` folder or that run's folder cannot be written."""
    from vidgen.run_folders import training_run_dir
    from vidgen.utils.files import atomic_write_json

    trained = training_run_dir(ckpt_path)
    if trained is None or trained == output_dir.resolve():
        return None
    folder = trained / "eval" / output_dir.name
    try:
        atomic_write_json(folder / "metrics.json", metrics)
        atomic_write_json(folder / "eval.json", {"ckpt_path": str(Path(ckpt_path).resolve()),
                                                 "eval_dir": str(output_dir.resolve())})  # fmt: skip
    except OSError as e:
        log.warning(f"test metrics not written beside the training run ({folder}: {e})")
        return None
    log.info(f"metrics also in the training run's folder: {folder / 'metrics.json'}")
    return folder


@hydra.main(version_base="1.3", config_path=conf_search_path(), config_name="eval")
def main(cfg: DictConfig) -> None:
    with job_errors_to_log():
        evaluate(cfg)


if __name__ == "__main__":
    main()
