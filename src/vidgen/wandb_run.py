"""What a vidgen run looks like in a W&B dashboard: its name, group, job type, tags, summaries, artifacts.

One place decides it, for every entrypoint:

- ``name_run(cfg)`` (called by ``RunContext``) names the run after its experiment and the overrides that
  differ (``dcgan_digits loss=gan_hinge seed=3``), groups it by experiment (a multirun: by sweep), sets
  ``job_type`` to ``task_name`` (train/eval/sample) and tags it with ``tags`` (a multirun job: and its
  overrides).
- ``VidgenWandbLogger`` is Lightning's ``WandbLogger`` with each metric's summary set to its best value
  and its last one (``val/fid_digits`` -> ``{"min": ..., "last": ...}``, ``val/ssim`` -> ``max``, see
  ``summary_of``), plotted against ``trainer/global_step``; checkpoints as artifacts also offline
  (``log_model=true|all``, staged for ``wandb sync``); and none of the ``anonymous`` setting that
  Lightning passes and wandb 0.31 warns about on every run.
- ``identity(loggers)`` is what a checkpoint keeps of the run that wrote it (``vidgen_wandb``: id, name,
  group, project), and ``for_checkpoint(cfg, checkpoint, ckpt_path)`` points ``vidgen-eval`` /
  ``vidgen-sample`` at that run: eval resumes it (``resume_training_run=true``: its offline run has the
  training run's id and ``resume``, and ``wandb sync`` of both folders appends the test metrics to the
  training run), or starts a run of its own in the same group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from vidgen.config import hydra_config, is_multirun
from vidgen.run_folders import training_run_dir

# Summaries by the words of a metric's name (``val/fid_digits`` -> fid): the first word found decides.
LOWER_IS_BETTER = frozenset({"fid", "kid", "fd", "mse", "mae", "loss", "nll", "recon", "bpd"})
HIGHER_IS_BETTER = frozenset({"accuracy", "ssim", "psnr", "is", "precision", "recall", "elbo"})
# Counts, spreads and reference values: neither better high nor low.
NOT_A_SCORE = frozenset({"n", "std", "floor"})
# Overrides that do not change what a run learns: left out of its name.
NOT_IN_NAME = ("hydra", "paths", "logger", "tags", "ckpt_path", "optimized_metric", "optimized_direction",
               "experiment", "trainer.enable_progress_bar", "trainer.enable_model_summary")  # fmt: skip


def summary_of(key: str) -> Literal["min", "max"] | None:
    """``min`` for metrics where lower is better (FID, KID, FD, MSE, MAE, losses, NLL, reconstruction
    error), ``max`` where higher is (accuracy, SSIM, PSNR, IS, precision, recall, ELBO), None for anything
    else (counts, standard deviations, the KL term, test metrics)."""
    if "/" not in key or key.startswith("test/"):
        return None  # test metrics are logged once: their summary is that value
    words = key.rsplit("/", 1)[1].split("_")
    if NOT_A_SCORE.intersection(words):
        return None
    for word in words:
        if word in LOWER_IS_BETTER:
            return "min"
        if word in HIGHER_IS_BETTER:
            return "max"
    return None


class VidgenWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` as vidgen's runs table needs it.

    Args (beyond Lightning's ``WandbLogger``, whose other arguments pass through):
        job_type: W&B's job type (vidgen: ``task_name``, train/eval/sample).
        log_model: ``true`` (best/last checkpoints at the end) or ``all`` (every checkpoint) as W&B
            artifacts; offline too: staged under ``$WANDB_DATA_DIR`` (default ``~/.local/share/wandb``)
            and uploaded by ``wandb sync`` (Lightning's own logger refuses offline + log_model).
        config_key: log the config under this key (``vidgen-eval`` resuming a training run: ``eval``,
            so the training run's config stays as it was).
        step_offset: added to ``trainer/global_step`` (a resumed training run: its last step, so the test
            metrics sit at the end of its curves).
    """

    def __init__(
        self,
        *,
        offline: bool = False,
        log_model: Literal["all"] | bool = False,
        job_type: str | None = None,
        config_key: str | None = None,
        step_offset: int = 0,
        **kwargs: Any,
    ):
        super().__init__(offline=offline, log_model=False, job_type=job_type, **kwargs)
        self._log_model = log_model
        self.config_key = config_key
        self.step_offset = step_offset
        self._summaries: set[str] = set()
        # Lightning always passes anonymous=None, which wandb 0.31 answers on every run with
        # "WARNING The anonymous setting has no effect and will be removed in a future version".
        self._wandb_init.pop("anonymous", None)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        super().log_hyperparams({self.config_key: params} if self.config_key else params)

    @rank_zero_only
    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        for key in metrics:
            name = f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._prefix else key
            if name in self._summaries:
                continue
            self._summaries.add(name)
            best = summary_of(name)
            if best is not None:
                self.experiment.define_metric(
                    name, step_metric="trainer/global_step", step_sync=True, summary=f"{best},last"
                )
        if self.step_offset:
            # a resumed run's test loop restarts Lightning's epoch counter at 0: not a point of its curve
            metrics = {k: v for k, v in metrics.items() if k != "epoch"}
        super().log_metrics(metrics, None if step is None else step + self.step_offset)


def identity(loggers: list) -> dict[str, str] | None:
    """The W&B run of ``loggers`` (id, name, group, project), or None without a W&B logger."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            return {"id": run.id, "name": run.name, "group": run.group, "project": run.project}
    return None


def experiment_name(cfg: DictConfig) -> str:
    """The ``experiment`` option; without one the model and data options stand for it (``dcgan_digits``)."""
    hydra = hydra_config()
    choices = hydra.runtime.choices if hydra is not None else {}
    base = choices.get("experiment") or "_".join(str(choices[g]) for g in ("model", "data") if choices.get(g))
    return base or str(cfg.get("task_name", "run"))


def run_name(cfg: DictConfig) -> str:
    """``<experiment> <overrides>``, e.g. ``dcgan_digits loss=gan_hinge seed=3``, without the overrides
    that do not change what is learned (paths, loggers, tags, ...; ``NOT_IN_NAME``)."""
    hydra = hydra_config()
    if hydra is None:
        return experiment_name(cfg)
    named_by = {"experiment"} if hydra.runtime.choices.get("experiment") else {"model", "data"}
    overrides = []
    for override in hydra.overrides.task:
        key = override.lstrip("~+").split("=", 1)[0]
        if key in named_by or any(key == n or key.startswith(f"{n}.") for n in NOT_IN_NAME):
            continue
        overrides.append(override)
    return " ".join([experiment_name(cfg), *overrides])[:128]


def name_run(cfg: DictConfig) -> None:
    """Fills ``logger.wandb`` name, group and tags that the config leaves null (see the module doc).

    A run that resumes another (``logger.wandb.id`` set) keeps that run's name, group, type and tags.
    """
    wandb = (cfg.get("logger") or {}).get("wandb")
    if wandb is None or wandb.get("id"):
        return
    hydra = hydra_config()
    multirun = is_multirun()
    with open_dict(cfg):
        if wandb.get("name") is None:
            wandb.name = run_name(cfg)
        if wandb.get("group") is None:
            if multirun:
                wandb.group = f"{cfg.task_name}-{Path(hydra.sweep.dir).name}"
            else:
                wandb.group = experiment_name(cfg)
        if multirun:
            wandb.tags = [*(wandb.tags or []), *[o[:64] for o in hydra.overrides.task]]


def for_checkpoint(cfg: DictConfig, checkpoint: dict, ckpt_path: str) -> None:
    """Points ``logger.wandb`` of ``vidgen-eval``/``vidgen-sample`` at the run that wrote ``checkpoint``.

    ``cfg.resume_training_run`` (eval): the same run id, resumed, its config under ``eval`` and its
    steps after the training's last one; otherwise a run of its own, named ``<training run> <task>``, in
    the training run's group, with the training run's id in its config (``training_run``).
    """
    wandb = (cfg.get("logger") or {}).get("wandb")
    trained_by = checkpoint.get("vidgen_wandb")
    if wandb is None:
        return
    with open_dict(cfg):
        if trained_by and cfg.get("resume_training_run"):
            wandb.id = trained_by["id"]
            wandb.project = trained_by["project"]
            wandb.name = wandb.group = wandb.job_type = wandb.tags = None
            wandb.config_key = str(cfg.task_name)
            wandb.step_offset = int(checkpoint.get("global_step", 0))
            return
        folder = training_run_dir(ckpt_path)
        training_name = (trained_by or {}).get("name") or (folder.name if folder else Path(ckpt_path).stem)
        wandb.name = f"{training_name} {cfg.task_name}"
        if trained_by:
            wandb.group = trained_by["group"]
            wandb.project = trained_by["project"]
            cfg.training_run = trained_by["id"]
