"""``startup_ratio``: seconds from launching ``vidgen-train`` to the end of its first optimizer step /
seconds of ``python -c "import torch, lightning"``, the floor any Lightning program pays.

Two commands (``STARTUP_RUNS``): what ``make train`` runs, and the same without W&B and callbacks. The
``FirstStepProbe`` callback of ``startup_probe.py``, added on the command line, records when the first
batch starts (``ready``) and when its optimizer steps are done (``stepped``), then ends the process. Each
command is launched once untimed (to warm the file cache and the cached FID classifier), then the import
baseline and the commands alternate ``launches`` times; each figure is a median over the launches.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import HERE, REPO, TARGETS, fmt_ratio

STARTUP_RUNS = {
    # what `make train` runs: digits, DCGAN, W&B (offline) + CSV, checkpoint + sample grid + FID callbacks
    "default": [],
    # the same without the optional dependencies: CSV logger only, no callbacks
    "lean": ["logger=csv", "callbacks=none"],
}


def launch(cmd: list[str], env: dict, probe: Path | None, timeout: float = 900) -> dict[str, float]:
    """Seconds from launch to the process's exit, or to the probe's ``ready`` and ``stepped`` times."""
    start = time.time()  # wall clock, as the probe's, which runs in the child process
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if probe is None:
        if proc.returncode:
            raise RuntimeError(f"{cmd} failed: {proc.stderr[-2000:]}")
        return {"exit": time.time() - start}
    if not probe.exists():
        raise RuntimeError(
            f"{' '.join(cmd)} made no optimizer step:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return {k: v - start for k, v in json.loads(probe.read_text()).items()}


def measure(s: dict, tmp: Path) -> dict:
    """Every launch's times, their medians and the ratios to the import baseline."""
    exe = str(Path(sys.executable).with_name("vidgen-train"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "VIDGEN_ROOT": str(tmp / "root"),
        "WANDB_SILENT": "true",
    }
    env.setdefault("VIDGEN_DATA_DIR", str(REPO / "data"))  # the cached FID classifier, as for `make train`

    def train_cmd(name: str, probe: Path) -> list[str]:
        return [
            exe,
            *STARTUP_RUNS[name],
            "+callbacks.first_step_probe._target_=startup_probe.FirstStepProbe",
            f"+callbacks.first_step_probe.path={probe}",
        ]

    for name in STARTUP_RUNS:
        launch(train_cmd(name, tmp / f"warm_{name}"), env, tmp / f"warm_{name}")
    runs: dict[str, list[dict]] = {"import": [], **{name: [] for name in STARTUP_RUNS}}
    for i in range(s["launches"]):
        runs["import"].append(launch([sys.executable, "-c", "import torch, lightning"], env, None))
        for name in STARTUP_RUNS:
            probe = tmp / f"probe_{name}_{i}"
            runs[name].append(launch(train_cmd(name, probe), env, probe))
        print(
            f"  launch {i}: " + ", ".join(f"{k} {max(v[-1].values()):.1f} s" for k, v in runs.items()),
            flush=True,
        )
    base = statistics.median(r["exit"] for r in runs["import"])
    out = {
        "import_seconds": base,
        "runs": runs,
        "commands": {k: ["vidgen-train", *v] for k, v in STARTUP_RUNS.items()},
    }
    for name in STARTUP_RUNS:
        out[f"{name}_stepped_seconds"] = statistics.median(r["stepped"] for r in runs[name])
        out[f"{name}_ready_seconds"] = statistics.median(r["ready"] for r in runs[name])
        # the literal figure: launch to the end of the first optimizer step
        out[f"startup_ratio_{name}"] = out[f"{name}_stepped_seconds"] / base
        # the same without the first step's own compute (forward + backward of one batch)
        out[f"startup_ratio_{name}_ready"] = out[f"{name}_ready_seconds"] / base
    return out


def table_rows(st: dict) -> list[str]:
    target = TARGETS["startup_ratio"]
    lines = []
    for name in STARTUP_RUNS:
        cmd, ratio = " ".join(st["commands"][name]), st[f"startup_ratio_{name}"]
        lines.append(
            f"| startup_ratio | `{cmd}` | {fmt_ratio(ratio, target, higher=False)} | ≤ {target:g} | "
            f"{st[f'{name}_stepped_seconds']:.1f} s to the end of step 1 (ready for it at "
            f"{st[f'{name}_ready_seconds']:.1f} s: ratio {st[f'startup_ratio_{name}_ready']:.2f}) / "
            f"import {st['import_seconds']:.1f} s |"
        )
    return lines
