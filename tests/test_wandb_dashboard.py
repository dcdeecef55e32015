"""The W&B runs table as users see it after ``wandb sync``, read from the offline run files: a readable
name, group, job type and tags per run, each metric's best and last value in its summary, the test
results of ``vidgen-eval`` in the training run's row, checkpoints as artifacts, and no W&B warnings."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidgen.cli.eval import evaluate
from vidgen.cli.train import train
from vidgen.wandb_run import summary_of

from conftest import TINY, compose_train
from wandb_records import history_rows, records_of, run_config, run_record, summary, wandb_file

QUIET = [o for o in TINY if o != "logger=csv"]  # the default loggers: W&B (offline) and CSV
NO_FID = ["~callbacks.fid", "callbacks.model_checkpoint.monitor=null"]  # no feature network needed
PREDICTOR = ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction",
             "model.net.hidden_channels=[8]", "model.net.kernel_size=3", "data.batch_size=4",
             "data.num_train=8", "data.num_val=8", "data.num_test=8", "trainer.limit_train_batches=2",
             "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false"]  # fmt: skip


def cli(script: str, args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """An installed console script (``vidgen-train``, ``vidgen-eval``, ``wandb``) run as a user would."""
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir)}
    env.pop("HYDRA_FULL_ERROR", None)
    exe = Path(sys.executable).with_name(script)
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                          check=False)  # fmt: skip


def wandb_warnings(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if "wandb: WARNING" in line]


def values(path: Path, key: str) -> list[float]:
    """Every logged value of ``key``, in order."""
    return [row[key] for row in history_rows(path) if key in row]


def test_metric_summaries_keep_the_best_value_by_what_the_metric_measures() -> None:
    lower = ["val/fid_digits", "val/kid_digits_mean", "val/fd_c3d_digits", "val/mse_per_frame",
             "val/mae_per_frame", "train/d_loss_epoch", "val/loss", "val/recon_nats"]  # fmt: skip
    higher = ["val/is_digits", "val/ssim", "val/ssim_openstl", "val/psnr", "val/precision_digits",
              "val/recall_digits", "val/feature_extractor_accuracy_digits", "val/elbo_nats"]  # fmt: skip
    neither = ["val/kid_digits_std", "val/is_digits_std", "val/n_real_digits", "val/fid_digits_real_floor",
               "train/teacher_forcing", "val/kl_nats", "epoch", "trainer/global_step", "samples",
               "test/fid_digits"]  # fmt: skip
    assert {k: summary_of(k) for k in lower} == dict.fromkeys(lower, "min")
    assert {k: summary_of(k) for k in higher} == dict.fromkeys(higher, "max")
    assert {k: summary_of(k) for k in neither} == dict.fromkeys(neither)


def test_a_run_is_named_grouped_and_summarised_for_the_runs_table(tmp_path: Path, data_dir: Path) -> None:
    overrides = [
        "experiment=dcgan_digits",
        "loss=gan_hinge",
        "seed=3",
        *QUIET,
        *NO_FID,
        "trainer.max_epochs=3",
    ]
    train(compose_train(overrides, tmp_path, data_dir))
    path = wandb_file(tmp_path)
    run = run_record(path)
    # the experiment, then the overrides that change what is learned (no paths, loggers, progress bars)
    shown = [o for o in overrides[1:] if not o.startswith(("trainer.enable_", "logger"))]
    assert run.display_name == " ".join(["dcgan_digits", *shown])[:128]
    assert run.display_name.startswith("dcgan_digits loss=gan_hinge seed=3 model.generator.base_width=8")
    assert (run.run_group, run.job_type, list(run.tags)) == ("dcgan_digits", "train", ["dcgan", "digits"])

    # every loss: summary = its lowest and its last value, plotted against trainer/global_step
    defined = {m.name: m for m in records_of(path, "metric") if m.name}
    final = summary(path)
    for key in ("val/d_loss", "val/g_loss", "train/d_loss_epoch", "train/g_loss_epoch"):
        assert defined[key].step_metric == "trainer/global_step"
        assert (defined[key].summary.min, defined[key].summary.last, defined[key].summary.max) == (1, 1, 0)
        logged = values(path, key)
        assert len(logged) == 3 and final[key] == {"min": min(logged), "last": logged[-1]}
    assert "samples" not in defined  # media keep W&B's default summary


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A frame predictor trained for 2 epochs with W&B (offline) and every checkpoint as an artifact."""
    run = tmp_path_factory.mktemp("trained")
    train(compose_train([*PREDICTOR, "trainer.max_epochs=2", "logger.wandb.log_model=all"], run, data_dir))
    return run


def test_vidgen_eval_adds_its_test_metrics_to_the_training_runs_row(
    trained: Path, tmp_path: Path, data_dir: Path
) -> None:
    ckpt = trained / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    training = run_record(wandb_file(trained))
    assert checkpoint["vidgen_wandb"] == {"id": training.run_id, "name": training.display_name,
                                          "group": training.run_group, "project": "vidgen"}  # fmt: skip

    proc = cli("vidgen-eval", [f"ckpt_path={ckpt}", "trainer.enable_progress_bar=false"], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert wandb_warnings(proc) == []
    (out,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test/mse_per_frame"] > 0

    # the eval's offline run is the training run resumed: same id, and nothing of the row replaced
    path = wandb_file(out)
    resumed = run_record(path)
    assert (resumed.run_id, resumed.project) == (training.run_id, "vidgen")
    assert (resumed.display_name, resumed.run_group, resumed.job_type, list(resumed.tags)) == ("", "", "", [])
    assert set(run_config(path)) - {"_wandb"} == {"eval"}  # the training config stays as it was
    (row,) = [r for r in history_rows(path) if "test/mse_per_frame" in r]
    assert row["test/mse_per_frame"] == pytest.approx(metrics["test/mse_per_frame"])
    assert row["trainer/global_step"] == checkpoint["global_step"]  # at the end of the training curves
    assert "epoch" not in row
    final = summary(path)
    assert {k: final[k] for k in metrics if k.startswith("test/")} == pytest.approx(
        {k: v for k, v in metrics.items() if k.startswith("test/")}
    )
    # `wandb sync` of both folders takes both files of the run (and syncs them in order of start time)
    proc = cli("wandb", ["sync", "--dry-run", str(trained / "wandb"), str(out / "wandb")], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr
    listed = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if ".wandb" in line]
    assert len(listed) == 2 and all(f"run-{training.run_id}.wandb" in line for line in listed), listed

    # and beside the training run's own files
    assert json.loads((trained / "eval" / out.name / "metrics.json").read_text()) == metrics
    assert json.loads((trained / "eval" / out.name / "eval.json").read_text())["ckpt_path"] == str(ckpt)


def test_a_separate_eval_run_joins_the_training_runs_group(
    trained: Path, tmp_path: Path, data_dir: Path
) -> None:
    ckpt = trained / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", "resume_training_run=false", "trainer.enable_progress_bar=false"]
    evaluate(compose_train(args, tmp_path, data_dir, config_name="eval"))
    training, own = run_record(wandb_file(trained)), run_record(wandb_file(tmp_path))
    assert own.run_id != training.run_id
    assert (own.display_name, own.run_group, own.job_type) == (
        f"{training.display_name} eval",
        training.run_group,
        "eval",
    )
    config = run_config(wandb_file(tmp_path))
    assert config["training_run"] == training.run_id
    assert config["model"] == run_config(wandb_file(trained))["model"]  # the checkpoint's model


def test_checkpoints_are_staged_offline_as_artifacts(trained: Path) -> None:
    path = wandb_file(trained)
    run = run_record(path)
    models = [a for a in records_of(path, "artifact") if a.type == "model"]
    # log_model=all: each checkpoint as it is written, by both checkpoint callbacks, over 2 epochs
    assert len(models) == 4 and {a.name for a in models} == {f"model-{run.run_id}"}
    for artifact in models:
        assert "latest" in artifact.aliases
        (entry,) = artifact.manifest.contents
        assert entry.path == "model.ckpt" and Path(entry.local_path).stat().st_size == entry.size
        # staged for `wandb sync` under $WANDB_DATA_DIR (conftest: the session's temporary folder)
        assert Path(entry.local_path).is_relative_to(os.environ["WANDB_DATA_DIR"])
    last = json.loads(models[-1].metadata)
    assert last["original_filename"] == "last.ckpt"
    staged = Path(models[-1].manifest.contents[0].local_path)
    assert staged.read_bytes() == (trained / "checkpoints" / "last.ckpt").read_bytes()


def test_a_default_run_prints_no_wandb_warning(tmp_path: Path, data_dir: Path) -> None:
    proc = cli("vidgen-train", ["trainer.max_epochs=1", *QUIET, *NO_FID], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert wandb_warnings(proc) == [] and "anonymous" not in proc.stdout + proc.stderr
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert run_record(wandb_file(run)).job_type == "train"  # W&B did log the run


@pytest.mark.slow
def test_a_sweep_gives_one_named_row_per_job_with_its_best_fid(tmp_path: Path, data_dir: Path) -> None:
    """The acceptance of the dashboard issue: a 2-job multirun (the default callbacks: FID every epoch)."""
    args = ["-m", "seed=1,2", *QUIET, "trainer.max_epochs=3"]
    proc = cli("vidgen-train", args, tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert wandb_warnings(proc) == []
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    names = set()
    for job, seed in (("0", 1), ("1", 2)):
        path = wandb_file(sweep / job)
        run = run_record(path)
        names.add(run.display_name)
        assert run.display_name.startswith(f"dcgan_digits seed={seed} model.generator.base_width=8")
        assert run.run_group == f"train-{sweep.name}" and f"seed={seed}" in run.tags
        fids = values(path, "val/fid_digits")
        assert len(fids) == 3 and summary(path)["val/fid_digits"] == {"min": min(fids), "last": fids[-1]}
        with next((sweep / job).glob("csv/*/metrics.csv")).open() as f:
            in_csv = [float(r["val/fid_digits"]) for r in csv.DictReader(f) if r["val/fid_digits"]]
        assert fids == in_csv
    assert len(names) == 2
    proc = cli("wandb", ["sync", "--dry-run", *map(str, sweep.glob("*/wandb"))], tmp_path, data_dir)
    assert "Would sync 2 run(s)" in proc.stdout + proc.stderr
