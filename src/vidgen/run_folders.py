"""Finds finished runs under ``logs/`` and reads what they wrote, for notebooks and summaries.

A run is a folder with ``.hydra/overrides.yaml``; it is ``completed`` when it has ``metrics.json``,
``failed`` when it has ``error.txt`` (written for multirun jobs), ``running`` otherwise.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml


def training_run_dir(ckpt_path: str | Path) -> Path | None:
    """The run folder of a checkpoint in ``<run>/checkpoints/``, else None."""
    path = Path(ckpt_path).resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else None


def load_run(folder: str | Path) -> dict:
    """One run: ``folder``, ``status``, ``overrides`` (list), ``metrics`` (final), ``history`` (CSV rows)."""
    folder = Path(folder)
    overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
    metrics_file, error_file = folder / "metrics.json", folder / "error.txt"
    if metrics_file.exists():
        status, metrics, error = "completed", json.loads(metrics_file.read_text()), ""
    elif error_file.exists():
        status, metrics, error = "failed", {}, error_file.read_text().strip().splitlines()[0]
    else:
        status, metrics, error = "running", {}, ""
    history = []
    for path in sorted(folder.glob("csv/*/metrics.csv")):
        with path.open() as f:
            history += [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    return {"folder": str(folder), "name": folder.name, "status": status, "overrides": list(overrides),
            "metrics": metrics, "history": history, "error": error}  # fmt: skip


def find_runs(root: str | Path = "logs") -> list[dict]:
    """Every run below ``root`` (single runs and multirun jobs), oldest first."""
    folders = sorted({p.parent.parent for p in Path(root).glob("**/.hydra/overrides.yaml")})
    return [load_run(f) for f in folders]
