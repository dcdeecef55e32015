"""``docs/RESULTS.md``: every experiment's CPU-budget run beside its trivial baseline and its paper.

- ``make results`` (``python -m vidgen.cli.results [root]``) rebuilds the table from the runs in
  ``<root>/logs/``: one row per experiment (``experiment=<name>`` of the training run, ``default`` without
  one), from its newest training run with a ``metrics.json`` and the newest ``vidgen-eval`` of one of that
  run's checkpoints.
- ``make results-run`` (``python -m vidgen.cli.results run [experiment ...]``) first runs, for each
  experiment, the command of its ``# CPU budget (...): vidgen-train ...`` line (continued on ``#   ``
  lines), then ``vidgen-eval`` of its ``last.ckpt`` with the overrides of an optional
  ``# CPU budget eval: ...`` line, then rebuilds the table.

Each row gives the metric the paper's line names (``# paper: ... (test/<key>) ...``), else the one a
``# metric: (test/<key>) why`` line names (a conditional model's requested-class accuracy), else the first of
``MAIN_METRICS``, its sample count N, the trivial baselines measured the same way in the same run
(generators: the untrained model, ``<key>_untrained``; frame predictors: ``<key>_copy_last`` and
``<key>_context_mean``; every sample metric: the real-data floor), the budget (steps and wall time from
the run's ``run.json``), the commit, and the paper's number and protocol. A run that does not beat its
best baseline clearly (``CLEAR_MARGIN``) is labelled a smoke test: it shows the code runs, not what the
model can do.
"""

from __future__ import annotations

import collections
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from vidgen.run_folders import training_run_dir

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

MAIN_METRICS = (
    "test/fd_c3d_", "test/fid_", "test/mse_per_frame", "test/nll_iwae_", "val/fid_", "val/mse_per_frame"
)  # fmt: skip
# a result must beat its best trivial baseline by this factor (lower-is-better metrics) to count as one
CLEAR_MARGIN = 0.8
# suffixes of the baselines' keys and their names in the table
BASELINE_NAMES = {
    "untrained": "untrained",
    "copy_last": "copy last frame",
    "context_mean": "context mean",
    "pixel_marginal": "independent pixels",
}
HIGHER_IS_BETTER = ("ssim", "psnr", "is_", "accuracy", "precision", "recall")


def _read_yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _experiment(run: Path) -> str:
    for override in _read_yaml(run / ".hydra" / "overrides.yaml") or []:
        if override.startswith("experiment="):
            return override.split("=", 1)[1]
    return "default"


def experiment_names(conf: Traversable) -> list[str]:
    """The options of the ``experiment`` group, sorted."""
    return sorted(
        p.name.removesuffix(".yaml") for p in (conf / "experiment").iterdir() if p.name.endswith(".yaml")
    )


def _experiment_text(conf: Traversable, experiment: str) -> str:
    path = conf / "experiment" / f"{experiment}.yaml"
    return path.read_text() if path.is_file() else ""


def _paper(text: str) -> str:
    match = re.search(r"^# paper: (.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else "—"


def _named_metric(text: str) -> str:
    """The ``# metric: (test/<key>) ...`` line of an experiment file, or ''."""
    match = re.search(r"^# metric: (.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def _main_metric(metrics: dict, paper: str, named: str = "") -> tuple[str, float] | None:
    """The metric the paper line names when the run logged it, else the one the ``# metric:`` line names,
    else the first of ``MAIN_METRICS``."""
    for key in re.findall(r"\((test/[a-z0-9_]+)", f"{paper} {named}"):
        if metrics.get(key) is not None:
            return key, metrics[key]
    for prefix in MAIN_METRICS:
        for key in sorted(metrics):
            baseline = key.endswith(("real_floor", *(f"_{name}" for name in BASELINE_NAMES)))
            if key.startswith(prefix) and metrics[key] is not None and not baseline:
                return key, metrics[key]
    return None


def _sample_count(metrics: dict, key: str) -> str:
    """N of ``key``: generated vs real samples of a sample metric, test sequences of a frame metric."""
    # the space's name is a part of the key: fid_mnist, fd_c3d_mnist, fid_frames_mnist_mean, fid_image_folder
    spaces = [k.removeprefix("test/n_fake_") for k in metrics if k.startswith("test/n_fake_")]
    for space in sorted(spaces, key=len, reverse=True):
        n_fake, n_real = metrics.get(f"test/n_fake_{space}"), metrics.get(f"test/n_real_{space}")
        named = key.endswith(f"_{space}") or f"_{space}_" in key
        if key.startswith("test/") and named and n_fake is not None and n_real is not None:
            return f"{n_fake:.0f} gen. vs {n_real:.0f} real"
    for count in ("test/n_sequences", "test/n_images"):
        if key.startswith("test/") and metrics.get(count) is not None:
            return f"{metrics[count]:.0f} test {count.split('_')[1]}"
    return "—"


def _baselines(metrics: dict, key: str) -> dict[str, float]:
    return {
        name: metrics[f"{key}_{s}"]
        for s, name in BASELINE_NAMES.items()
        if metrics.get(f"{key}_{s}") is not None
    }


def _verdict(key: str, value: float, baselines: dict[str, float]) -> str:
    if not baselines:
        return "no baseline measured"
    if any(part in key for part in HIGHER_IS_BETTER):
        name, best = max(baselines.items(), key=lambda item: item[1])
        beaten = value > best and (value - best) >= (1 - CLEAR_MARGIN) * abs(best)
    else:
        name, best = min(baselines.items(), key=lambda item: item[1])
        beaten = value <= CLEAR_MARGIN * best
    return "result" if beaten else f"smoke test (does not clearly beat {name})"


def _budget(run: Path, trainer: dict) -> str:
    info = _read_json(run / "run.json")
    if info.get("train_seconds") is not None:
        return f"{info['global_step']} optimizer steps, {info['train_seconds']:.0f} s"
    if info:  # runs from before train_seconds: the whole job, set-up included
        return f"{info['global_step']} optimizer steps, {info['wall_seconds']:.0f} s (whole job)"
    return f"{trainer.get('max_epochs')} epochs x {trainer.get('limit_train_batches') or 'all'} batches"


def _test_set(*runs: Path | None) -> str:
    """The test set a run's number was measured on, as ``vidgen.callbacks.test_set`` logged it (the
    evaluation run first: its test is the one in the table)."""
    for run in runs:
        if run is None:
            continue
        for hparams in sorted(run.glob("csv/version_*/hparams.yaml"), reverse=True):
            name = (_read_yaml(hparams) or {}).get("data/test_set")
            if name:
                return str(name)
    return "—"


def collect(log_dir: Path, conf: Traversable) -> list[dict]:
    """The table's rows from the runs in ``log_dir``; ``conf`` is the config folder (``conf_dir()``)."""
    evals: dict[Path, Path] = {}  # train run folder -> newest eval run folder of one of its checkpoints
    for run in sorted((log_dir / "eval" / "runs").glob("*/")):
        cfg = _read_yaml(run / ".hydra" / "config.yaml") or {}
        if cfg.get("ckpt_path") and (run / "metrics.json").is_file():
            trained = training_run_dir(cfg["ckpt_path"])
            if trained is not None:
                evals[trained] = run
    rows: dict[str, dict] = {}
    for run in sorted((log_dir / "train" / "runs").glob("*/")):
        if not (run / "metrics.json").is_file():
            continue
        metrics = _read_json(run / "metrics.json")
        evaluated = evals.get(run.resolve())
        if evaluated is not None:
            metrics = {**metrics, **_read_json(evaluated / "metrics.json")}
        experiment = _experiment(run)
        text = _experiment_text(conf, experiment)
        paper = _paper(text)
        main = _main_metric(metrics, paper, _named_metric(text))
        if main is None:
            # trained but not evaluated (or nothing it logs is a result): no row; an earlier run of the
            # experiment that has one keeps its row, with its own commit
            continue
        trainer = (_read_yaml(run / ".hydra" / "config.yaml") or {}).get("trainer", {})
        key, value = main
        floor_key = next((k for k in metrics if k.endswith("real_floor") and k.startswith(f"{key}_")), None)
        floor = metrics.get(floor_key) if floor_key else None
        baselines = _baselines(metrics, key)
        commit = _read_json(run / "run.json").get("commit")
        rows[experiment] = {
            "experiment": experiment,
            "run": str(run.relative_to(log_dir.parent)),
            "metric": key,
            "test data": _test_set(evaluated, run),
            "N": _sample_count(metrics, key),
            "ours": f"{value:.4g}" if value is not None else "—",
            "baselines": ", ".join(f"{n} {v:.4g}" for n, v in baselines.items()) or "—",
            "real floor": f"{floor:.4g}" if floor is not None else "—",
            "verdict": _verdict(key, value, baselines) if value is not None else "—",
            "budget": _budget(run, trainer),
            "commit": commit or "—",
            "paper (source)": paper,
        }
    return list(rows.values())


HEADER = ["experiment", "metric", "test data", "N", "ours", "baselines", "real floor", "verdict", "budget",
          "commit", "paper (source)", "run"]  # fmt: skip


def _not_run(log_dir: Path, conf: Traversable, rows: list[dict]) -> dict[str, str]:
    """Experiments without a row: why (the last ``results-run`` failure), or that no run of theirs in
    ``log_dir`` logged a result."""
    failures = _read_json(log_dir / "results_not_run.json")
    trained = {
        _experiment(run)
        for run in (log_dir / "train" / "runs").glob("*/")
        if (run / "metrics.json").is_file()
    }
    ran = {row["experiment"] for row in rows}
    default = {True: "trained, but no test metric in logs/ (run vidgen-eval on its checkpoint)",
               False: "no run in logs/"}  # fmt: skip
    names = [name for name in experiment_names(conf) if name not in ran]
    return {name: failures.get(name, default[name in trained]) for name in names}


def earlier_rows(results_md: Path, conf: Traversable) -> list[dict]:
    """The rows of an existing ``RESULTS.md`` whose experiment still exists: logs/ is local to a machine,
    so a fresh clone keeps the runs documented elsewhere (with their own commit and run folder) until a
    run of its own replaces them."""
    if not results_md.is_file():
        return []
    names = set(experiment_names(conf))
    rows = []
    for line in results_md.read_text().split("\n## ")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == len(HEADER) and cells[0] in names:
            rows.append(dict(zip(HEADER, cells, strict=True)))
    return rows


def merge_rows(new: list[dict], earlier: list[dict]) -> list[dict]:
    """``new`` rows replace earlier rows of the same experiment; the others keep their place."""
    by_name = {row["experiment"]: row for row in earlier}
    by_name.update({row["experiment"]: row for row in new})
    return list(by_name.values())


def render(rows: list[dict], not_run: dict[str, str] | None = None) -> str:
    lines = [
        "# Results",
        "",
        "Generated by `make results` from the runs in `logs/` (newest run per experiment; the number is",
        "from `vidgen-eval` of that run's last checkpoint when one exists); `make results-run` first runs",
        "every experiment's `# CPU budget` command. A row whose run is not in this clone's `logs/` is kept",
        "from the earlier table, with the commit and run folder of the machine that made it. Do not edit",
        "by hand.",
        "",
        "- **baselines** are measured the same way on the same test data in the same run: the untrained",
        "  model (generators), the last context frame repeated and the context mean (frame predictors),",
        "  independent pixels with the training images' mean intensities (likelihoods: its exact NLL).",
        "- **real floor**: the metric of real training images against the test images at the same N, the",
        "  best a generator can reach at that N.",
        f"- **verdict**: `result` when the run beats its best baseline clearly (by {1 - CLEAR_MARGIN:.0%});",
        "  otherwise `smoke test`: the budget shows the code runs, not what the model can do.",
        "- **budget**: optimizer steps and wall time of the training loop (validation included; data set-up,",
        "  a first-use feature-network training and the test not) on this 2-core CPU.",
        "- Numbers at small N are biased (FID upward) and comparable only with runs at the same N; the",
        "  papers' numbers use other feature networks (Inception) and far longer training.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(str(row[h]) for h in HEADER) + " |" for row in rows]
    if not_run:
        lines += ["", "## Not run", "", "| experiment | why |", "|---|---|"]
        lines += [f"| {name} | {why.replace('|', '/')} |" for name, why in sorted(not_run.items())]
    return "\n".join(lines) + "\n"


def budget_commands(text: str) -> tuple[list[str], list[str]] | None:
    """The ``vidgen-train`` arguments of an experiment file's ``# CPU budget`` line (and its ``#   ``
    continuation lines) and the ``vidgen-eval`` arguments of its ``# CPU budget eval:`` line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"# CPU budget \([^)]*\): vidgen-train (.*)$", line)
        if match:
            command = match.group(1)
            for more in lines[i + 1 :]:
                if not more.startswith("#   "):
                    break
                command += " " + more[1:].strip()
            evaluation = re.search(r"^# CPU budget eval: (.*)$", text, flags=re.MULTILINE)
            return shlex.split(command), shlex.split(evaluation.group(1)) if evaluation else []
    return None


def _run_streaming(command: list[str], cwd: Path) -> tuple[int, list[str]]:
    """Runs ``command`` with its output shown as it comes (feature-net training and progress included);
    returns its exit code and its last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            tail.append(line.rstrip())
    return proc.returncode, list(tail)


def _reason(tail: list[str]) -> str:
    """The one-line message an entrypoint ends with on a known error (Hydra's hint and W&B lines skipped)."""
    noise = ("Set the environment variable HYDRA_FULL_ERROR", "wandb:", "Error executing job")
    lines = [line for line in tail if line.strip() and not line.startswith(noise)]
    return lines[-1] if lines else "no output"


def run_budgets(root: Path, experiments: list[str], conf: Traversable) -> dict[str, str]:
    """Trains and evaluates each experiment with its CPU-budget command, as a user would run them;
    returns ``{experiment: why it has no result}`` for those that failed (the others go on)."""
    exe = Path(sys.executable).parent
    failed: dict[str, str] = {}
    names = experiments or experiment_names(conf)
    for name in names:
        commands = budget_commands(_experiment_text(conf, name))
        if commands is None:
            print(f"{name}: no '# CPU budget' line, skipped")
            continue
        train_args, eval_args = commands
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        train_dir = root / "logs" / "train" / "runs" / f"{stamp}_{name}"
        eval_dir = root / "logs" / "eval" / "runs" / f"{stamp}_{name}"
        ckpt = train_dir / "checkpoints" / "last.ckpt"
        steps = [("vidgen-train", [*train_args, f"hydra.run.dir={train_dir}"]),
                 ("vidgen-eval", [f"ckpt_path={ckpt}", *eval_args, f"hydra.run.dir={eval_dir}"])]  # fmt: skip
        for entry, args in steps:
            print(f"{name}: {entry} {' '.join(args)}", flush=True)
            returncode, tail = _run_streaming([str(exe / entry), *args], root)
            if returncode != 0:
                failed[name] = f"{entry} failed: {_reason(tail)[:300]}"
                print(f"{name}: {failed[name]}", flush=True)
                break
    return failed


def main(argv: list[str] | None = None) -> Path:
    from vidgen.config import conf_dir

    args = list(argv if argv is not None else sys.argv[1:])
    conf = conf_dir()
    failed: dict[str, str] = {}
    if args and args[0] == "run":
        root = Path(".")
        failed = run_budgets(root, args[1:], conf)
        notes_file = root / "logs" / "results_not_run.json"
        notes = {**_read_json(notes_file), **failed}
        for name in set(args[1:]) - set(failed):
            notes.pop(name, None)
        notes_file.parent.mkdir(parents=True, exist_ok=True)
        notes_file.write_text(json.dumps(notes, indent=1))
    else:
        root = Path(args[0]) if args else Path(".")
    out = root / "docs" / "RESULTS.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = merge_rows(collect(root / "logs", conf), earlier_rows(out, conf))
    out.write_text(render(rows, _not_run(root / "logs", conf, rows)))
    print(f"written: {out}")
    return out


if __name__ == "__main__":
    main()
