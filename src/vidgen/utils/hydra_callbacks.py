"""Hydra callbacks (``hydra.callbacks`` in conf/hydra/default.yaml): checks and bookkeeping around jobs.

- ``OutputDirCheck``: reports an unusable run/sweep folder as one message before anything runs.
- ``SweepSummary``: after every job of a multirun (and at its end), writes ``summary.csv`` and
  ``summary.md`` at the sweep root: each job's overrides, status, final metrics and folder, best
  first by ``optimized_metric``. Updated after each job, so a sweep that stops on a failed job still
  has a summary that marks that job failed and keeps every finished job's results.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from vidgen.errors import ConfigError
from vidgen.run_folders import load_run
from vidgen.utils.files import atomic_write_text, check_writable


def _check_dir(folder: str, what: str, override: str) -> None:
    """Exits with one message when ``folder`` cannot be created or written.

    Hydra turns an exception raised by a callback into a warning and goes on to fail on the same folder
    with a traceback, so this callback prints its message and exits itself.
    """
    try:
        check_writable(folder, what, override)
    except ConfigError as e:
        print(e, file=sys.stderr)
        raise SystemExit(1) from e


def _job_error(job_return: JobReturn) -> Exception | None:
    """The exception a failed job raised, None for any other job.

    Hydra's public ``return_value`` re-raises it, after writing "Error executing job with overrides" to
    stderr; Hydra writes that line itself when the sweep stops on the failure, so here it is swallowed.
    """
    if job_return.status != JobStatus.FAILED:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _ = job_return.return_value
    except Exception as e:
        return e
    return None


class OutputDirCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_dir(config.hydra.run.dir, "run", "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_dir(config.hydra.sweep.dir, "sweep", "hydra.sweep.dir")


class SweepSummary(Callback):
    """Writes ``<sweep dir>/summary.{csv,md}``; jobs are sorted by ``optimized_metric``.

    ``optimized_direction`` (``minimize``/``maximize``) orders them; without ``optimized_metric`` jobs
    keep their number order.
    """

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        error = _job_error(job_return)
        if error is not None:
            atomic_write_text(Path(config.hydra.runtime.output_dir) / "error.txt", f"{error}\n")
        self.write(
            Path(config.hydra.sweep.dir), config.get("optimized_metric"), config.get("optimized_direction")
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.write(
            Path(config.hydra.sweep.dir), config.get("optimized_metric"), config.get("optimized_direction")
        )

    @staticmethod
    def collect(sweep_dir: Path) -> list[dict]:
        jobs = [load_run(p.parent.parent) for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
        for job in jobs:
            job["job"], job["overrides"] = job["name"], " ".join(job["overrides"])
        return sorted(jobs, key=lambda j: int(j["job"]) if j["job"].isdigit() else j["job"])

    @classmethod
    def write(cls, sweep_dir: Path, metric: str | None, direction: str | None) -> None:
        if not sweep_dir.is_dir():
            return
        # Parallel jobs (joblib, submitit) end concurrently: one writer at a time sees every finished job.
        with (sweep_dir / ".summary.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            jobs = cls.collect(sweep_dir)
            if metric:
                sign = -1.0 if (direction or "minimize").startswith("max") else 1.0

                def key(job: dict) -> float:
                    value = job["metrics"].get(metric)
                    return (
                        sign * value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf
                    )

                jobs.sort(key=key)
            columns = sorted({k for j in jobs for k in j["metrics"] if k.startswith(("val/", "test/"))})
            if metric and metric in columns:
                columns.remove(metric)
                columns.insert(0, metric)
            header = ["rank", "job", "status", "overrides", *columns, "folder", "error"]
            rows = [
                [i + 1, j["job"], j["status"], j["overrides"], *[j["metrics"].get(c, "") for c in columns]]
                + [j["folder"], j["error"]]
                for i, j in enumerate(jobs)
            ]
            buffer = io.StringIO()
            csv.writer(buffer).writerows([header, *rows])
            atomic_write_text(sweep_dir / "summary.csv", buffer.getvalue())

            def cell(v: Any) -> str:
                return f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "\\|")

            best = (
                f"Best by `{metric}` ({direction or 'minimize'}): job {jobs[0]['job']}"
                if metric and jobs
                else ""
            )
            md = [f"# Sweep {sweep_dir.name}", "", best, "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
            md += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
            atomic_write_text(sweep_dir / "summary.md", "\n".join(md) + "\n")
