"""vidgen measured against a hand-written PyTorch loop and this machine's peak: ``make bench [QUICK=1]``.

Every figure is a ratio of two measurements taken in the same run, so a busy shared machine moves both
sides; the machine, versions, thread count and settings are recorded with them. One module per section
(``--only`` name in brackets), each saying what it measures and how:

- ``overhead.py`` [overhead]: ``overhead_ratio``, vidgen steps/s / hand-written loop steps/s.
- ``mfu.py`` [peak, and with overhead]: ``mfu``, model FLOPs x vidgen steps/s / theoretical fp32 peak.
- ``variants.py`` [variants]: speed-up of channels_last and torch.compile, by hand and through vidgen.
- ``startup.py`` [startup]: ``startup_ratio``, ``vidgen-train`` to its first step / the imports.
- ``data_throughput.py`` [data]: ``data_headroom``, datamodule samples/s / model samples/s.
- ``sampling.py`` [sampling]: frames/s of each video model at 64x64.
- ``eval_throughput.py`` [eval]: images/s through FID and vidgen-eval's metrics, frames/s of frame metrics.
- ``quality_parity.py`` [quality_parity]: ``fid_ratio``, FID of vidgen's DCGAN / FID of the same algorithm
  in a plain PyTorch loop, same steps, data, init and seeds (mean ± std over seeds).
- ``time_to_quality.py`` [time_to_quality]: ``time_to_quality_ratio``, the hand loop's wall time / the
  default ``vidgen-train`` run's (validation FID, grids, checkpoints, loggers included), same iterations,
  both FIDs in one feature space.

``hand_loop.py`` is the hand-written reference; ``common.py`` holds the settings of each mode, the
workloads, timing helpers and the report's frame. This file parses the options, runs the sections and
writes the report.

Usage: ``python benchmarks/bench.py [--quick] [--tiny] [--only SECTION ...] [--out DIR]``. Writes
``<out>/latest.json`` and ``<out>/latest.md`` (default ``benchmarks/results/``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import data_throughput
import eval_throughput
import mfu
import overhead
import quality_parity
import sampling
import startup
import time_to_quality
import variants
from common import HERE, OPTION_MODELS, REPO, SETTINGS, TARGETS, headline, machine, markdown

SECTIONS = (
    "peak",
    "overhead",
    "variants",
    "startup",
    "data",
    "sampling",
    "eval",
    "quality_parity",
    "time_to_quality",
)


def table_rows(res: dict) -> list[str]:
    """The rows of latest.md, section by section, for the sections that ran."""
    rows = mfu.peak_rows(res["peak"]) if "peak" in res else []
    if "overhead" in res:
        rows += overhead.table_rows(res["overhead"])
        rows += mfu.table_rows(res["overhead"], res["peak"])
    for key, rows_of in (
        ("startup", startup.table_rows),
        ("data", data_throughput.table_rows),
        ("variants", variants.table_rows),
        ("sampling", sampling.table_rows),
        ("eval", eval_throughput.table_rows),
        ("quality_parity", quality_parity.table_rows),
        ("time_to_quality", time_to_quality.table_rows),
    ):
        if key in res:
            rows += rows_of(res[key])
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and launches, no torch.compile")
    p.add_argument("--tiny", action="store_true", help="tiny nets: checks that the code runs (tests)")
    p.add_argument("--only", nargs="*", choices=SECTIONS, help="sections to run (default: all)")
    p.add_argument(
        "--option-models",
        nargs="*",
        default=[],
        choices=sorted(OPTION_MODELS),
        help="variants section: also measure model.channels_last through vidgen for these models",
    )
    p.add_argument("--out", default=str(HERE / "results"), help="folder of latest.json / latest.md")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("VIDGEN_DATA_DIR") or str(REPO.parent / "shared" / "data"),
        help="real datasets for the data-headroom section",
    )
    args = p.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    s, only = {**SETTINGS[mode], "option_models": args.option_models}, set(args.only or SECTIONS)
    torch.set_num_threads(max(1, torch.get_num_threads()))  # the default (= cores); recorded below
    res: dict = {"mode": mode, "settings": s, "machine": machine(), "targets": TARGETS}
    t0 = time.perf_counter()
    section_seconds: dict[str, float] = {}

    def run(name: str, message: str | None, fn: Callable[[], object]) -> object:
        if message:
            print(message, flush=True)
        t = time.perf_counter()
        out = fn()
        section_seconds[name] = round(section_seconds.get(name, 0.0) + time.perf_counter() - t, 1)
        return out

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "peak" in only or "overhead" in only:
            message = "fp32 peak: theoretical (from the CPU) and the best measured kernel ..."
            res["peak"] = run("peak", message, lambda: mfu.peak(s["gemm"]))
        if "overhead" in only:
            message = "overhead: hand-written loop vs vidgen ..."
            res["overhead"] = run("overhead", message, lambda: overhead.measure(s, tmp))
            res["peak"] = run("peak", None, lambda: mfu.peak(s["gemm"], before=res["peak"]))
            run("overhead", None, lambda: mfu.add_mfu(res["overhead"], res["peak"], s, tmp))
        if "variants" in only:
            message = "variants: channels_last / torch.compile vs eager (hand loop and vidgen) ..."
            res["variants"] = run("variants", message, lambda: variants.measure(s, tmp))
        if "sampling" in only:
            res["sampling"] = run("sampling", "sampling frames/s ...", lambda: sampling.measure(s, tmp))
        if "data" in only:
            message = "data headroom (benchmarks/data_throughput.py) ..."
            quick, names = mode != "full", s["data"]
            res["data"] = run("data", message, lambda: data_throughput.measure(names, quick, args.data_dir))
        if "startup" in only:
            message = "startup: vidgen-train to first optimizer step vs import torch, lightning ..."
            res["startup"] = run("startup", message, lambda: startup.measure(s, tmp))
        if "eval" in only:
            # the digits extractor is cached in $VIDGEN_DATA_DIR or <repo>/data, never in the shared data
            data_dir = os.environ.get("VIDGEN_DATA_DIR") or str(REPO / "data")
            num, repeats = (2000, 7) if mode == "full" else (500, 1)
            res["eval"] = run("eval", None, lambda: eval_throughput.measure(num, repeats, data_dir))
        if "quality_parity" in only:
            # the same folder for the digits extractor as the eval section
            data_dir = os.environ.get("VIDGEN_DATA_DIR") or str(REPO / "data")
            message = "quality parity: FID of vidgen's DCGAN vs the hand-written loop ..."
            res["quality_parity"] = run(
                "quality_parity", message, lambda: quality_parity.measure(s, tmp, data_dir, mode)
            )
        if "time_to_quality" in only:
            data_dir = os.environ.get("VIDGEN_DATA_DIR") or str(REPO / "data")
            message = "time to quality: the default vidgen-train run vs the hand loop, same iterations ..."
            res["time_to_quality"] = run(
                "time_to_quality", message, lambda: time_to_quality.measure(s, tmp, data_dir)
            )
        res["section_seconds"] = section_seconds
    res["machine"]["load_average_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    res["headline"] = headline(res)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(res, indent=2, default=str))
    table = markdown(res, table_rows(res))
    (out / "latest.md").write_text(table)
    print("\n" + table + f"\nwritten: {out / 'latest.json'}, {out / 'latest.md'} ({res['seconds']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
