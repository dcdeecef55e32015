"""Sweeps, kill-and-resume, DDP and divergence: the real CLI in real subprocesses."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vidgen.callbacks.guards import FiniteLossCheck
from vidgen.errors import TrainingDiverged
from vidgen.run import AtomicCheckpointIO

from conftest import TINY, run_cli
from wandb_records import read_records

SMALL = ["model.generator.base_width=8", "model.discriminator.base_width=8", "logger=csv"]


def test_grid_sweep_writes_a_summary_and_one_wandb_run_per_job(tmp_path: Path, data_dir: Path) -> None:
    small = [o for o in SMALL if o != "logger=csv"]
    args = [
        "-m",
        "loss=gan_ns,gan_minimax",
        "trainer=debug",
        *small,
        "logger=many",
        "optimized_metric=val/fid_digits",
    ]
    proc = run_cli(args, tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = tmp_path.glob("logs/train/multiruns/*")
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["completed", "completed"]
    fids = [float(r["val/fid_digits"]) for r in rows]
    assert fids == sorted(fids)  # best (lowest FID) first
    for row in rows:
        assert json.loads((tmp_path / row["folder"] / "metrics.json").read_text())["val/fid_digits"] == float(
            row["val/fid_digits"]
        )
    assert f"Best by `val/fid_digits` (minimize): job {rows[0]['job']}" in (sweep / "summary.md").read_text()

    # W&B: one offline run per job, grouped by the sweep, tagged with the job's overrides.
    runs = {}
    for job in ("0", "1"):
        (wandb_file,) = (sweep / job).glob("wandb/offline-run-*/run-*.wandb")
        (run,) = [r.run for r in read_records(wandb_file) if r.WhichOneof("record_type") == "run"]
        runs[job] = run
    assert runs["0"].run_group == runs["1"].run_group == f"train-{sweep.name}"
    assert "loss=gan_ns" in runs["0"].tags and "loss=gan_minimax" in runs["1"].tags
    assert runs["0"].run_id != runs["1"].run_id


def test_a_failing_job_keeps_the_others_and_is_marked_failed(tmp_path: Path, data_dir: Path) -> None:
    # data.image_size=24 is not a power of two: DCGAN refuses it, the 32 job must still finish.
    args = ["-m", "data.image_size=32,24", "trainer=debug", *SMALL, "optimized_metric=val/fid_digits"]
    proc = run_cli(args, tmp_path, data_dir)
    assert proc.returncode != 0
    assert "power of two" in proc.stderr and "Traceback" not in proc.stderr
    (sweep,) = tmp_path.glob("logs/train/multiruns/*")
    with (sweep / "summary.csv").open() as f:
        rows = {r["overrides"].split()[0]: r for r in csv.DictReader(f)}  # the swept override comes first
    assert rows["data.image_size=32"]["status"] == "completed"
    assert (tmp_path / rows["data.image_size=32"]["folder"] / "checkpoints" / "last.ckpt").is_file()
    assert rows["data.image_size=24"]["status"] == "failed"
    assert "power of two" in rows["data.image_size=24"]["error"]


def _run_dir_args(run_dir: Path, epochs: int) -> list[str]:
    return [
        *TINY,
        "trainer.limit_train_batches=6",
        f"trainer.max_epochs={epochs}",
        f"hydra.run.dir={run_dir}",
    ]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path, data_dir: Path) -> None:
    """Granularity: the epoch. A kill mid-epoch redoes that epoch from the last epoch-end checkpoint,
    with the RNG state stored in it, so the resumed run ends exactly where an uninterrupted one does."""
    epochs = 4
    reference = tmp_path / "reference"
    proc = run_cli(_run_dir_args(reference, epochs), tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]

    killed = tmp_path / "killed"
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir)}
    exe = Path(sys.executable).with_name("vidgen-train")
    child = subprocess.Popen(
        [str(exe), *_run_dir_args(killed, epochs)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    # Kill as soon as the epoch-1 checkpoint exists: training of epoch 2 is then under way.
    while time.monotonic() < deadline and child.poll() is None:
        if last.exists() and torch.load(last, weights_only=True)["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the run finished before it could be killed; make it longer"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (killed / "metrics.json").exists()
    saved_epoch = torch.load(last, weights_only=True)["epoch"]  # a kill never leaves a torn checkpoint
    assert 1 <= saved_epoch < epochs - 1

    proc = run_cli([*_run_dir_args(killed, epochs), "ckpt_path=last"], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = json.loads((killed / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert resumed == expected


def test_ckpt_path_last_without_checkpoint_starts_fresh(tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / "fresh"
    proc = run_cli([*_run_dir_args(run_dir, 1), "ckpt_path=last"], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "starting from scratch" in proc.stdout + proc.stderr
    assert (run_dir / "metrics.json").is_file()


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "multirun"])
def test_ddp_two_cpu_processes_write_one_folder(tmp_path: Path, data_dir: Path, multirun: bool) -> None:
    args = [*TINY, "trainer=ddp_cpu", "trainer.max_epochs=1", "data.batch_size=16"]
    if multirun:
        args = ["-m", *args, "seed=1,2"]
    proc = run_cli(args, tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    kind = "multiruns" if multirun else "runs"
    (root,) = tmp_path.glob(f"logs/train/{kind}/*")  # ranks > 0 made no folder of their own
    jobs = sorted(p.parent for p in root.rglob("metrics.json"))
    assert len(jobs) == (2 if multirun else 1)
    for job in jobs:
        assert [p.name for p in (job / "checkpoints").glob("*.ckpt")].count("last.ckpt") == 1
        assert (job / "train_ddp_process_1.log").is_file()  # rank 1 ran, in this job's folder
        ckpt = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
        assert ckpt["global_step"] > 0
    if multirun:
        assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["0", "1"]


class _DivergesAtStep(L.LightningModule):
    """A regression on fixed data whose loss is replaced by NaN from ``bad_step`` on."""

    def __init__(self, bad_step: int, log_loss: bool = True):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.bad_step = bad_step
        self.log_loss = log_loss

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
        if self.global_step >= self.bad_step:
            loss = loss * float("nan")
        if self.log_loss:
            self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    data = TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    loader = DataLoader(data, batch_size=8)  # 4 steps per epoch; NaN from step 6, in epoch 1
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[checkpoint, FiniteLossCheck()],
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with pytest.raises(
        TrainingDiverged, match=r"train/loss became nan at epoch 1.*Last good checkpoint: .*last.ckpt"
    ):
        trainer.fit(_DivergesAtStep(bad_step=6), loader, loader)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 0 and saved["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())


def test_nan_loss_is_caught_on_a_step_that_logs_nothing(tmp_path: Path) -> None:
    # families that log the step loss only on the steps the loggers write (the VAE): the returned loss is
    # checked every step
    data = TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    loader = DataLoader(data, batch_size=8)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(max_epochs=3, callbacks=[checkpoint, FiniteLossCheck()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")  # fmt: skip
    message = r"the loss training_step returned became nan at epoch 1, batch 2"
    with pytest.raises(TrainingDiverged, match=message):
        trainer.fit(_DivergesAtStep(bad_step=6, log_loss=False), loader, loader)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 4


@pytest.mark.slow
def test_optuna_sweep_with_two_parallel_joblib_jobs_names_the_best_trial(
    tmp_path: Path, data_dir: Path
) -> None:
    args = ["hparams_search=dcgan_optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
            "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer=debug", *SMALL]  # fmt: skip
    proc = run_cli(args, tmp_path, data_dir, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = tmp_path.glob("logs/train/multiruns/*")
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    import yaml

    optuna_best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"]
    assert float(rows[0]["val/fid_digits"]) == pytest.approx(optuna_best)  # our summary agrees with Optuna
    assert f"job {rows[0]['job']}" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_two_job_multirun(tmp_path: Path, data_dir: Path) -> None:
    # submitit's local executor runs each job as its own process, as SLURM would (SLURM itself is absent).
    args = [
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=20",
        "seed=1,2",
        "trainer=debug",
        *SMALL,
    ]
    proc = run_cli(args, tmp_path, data_dir, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = tmp_path.glob("logs/train/multiruns/*")
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == ["0", "1"]
    assert list(sweep.glob(".submitit/*/*_result.pkl"))  # the jobs ran through submitit
    with (sweep / "summary.csv").open() as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["completed", "completed"]
