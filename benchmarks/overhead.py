"""``overhead_ratio``: steps/s of a training step through vidgen / steps/s of the hand-written loop.

The vidgen side is the real path (``common.time_vidgen``): the config composed by Hydra from ``conf/`` as
``vidgen-train`` composes it, the family LightningModule, ``RunContext.build_trainer`` with the run's own
callbacks, the CSV logger, the progress bar and ``log_every_n_steps`` of ``conf/trainer/default.yaml``.
The other side is ``hand_loop.py`` on the same nets, optimizers, loss, in-memory batches, seed and threads,
in the memory format the model's config asks for, so both run the same kernels.

Per workload of ``common.WORKLOADS``, the two sides alternate ``repeats`` times (a change of load hits
both alike), each timing ``steps`` steps after ``warmup`` untimed ones. A workload whose steps are short
times more of them: enough for ``min_seconds`` per side and repeat, from a calibration of the hand loop
(the conv VAE's 38 ms step gave 0.5 s per repeat at 12 steps, where one scheduler hiccup moved the
median by 5 %). The ratio uses the median step of each side; the ratio of the best steps is recorded too.
"""

from __future__ import annotations

import math
from pathlib import Path

from common import TARGETS, WORKLOADS, fake_batch, fmt_ratio, memory_format, rate, time_vidgen, workload_cfg
from hand_loop import time_hand


def measure(s: dict, tmp: Path) -> dict[str, dict]:
    """One row per workload: every step time of both sides, their rates and ratios."""
    out = {}
    for name in WORKLOADS:
        cfg = workload_cfg(name, s, tmp / name)
        batch = fake_batch(cfg)
        calibration = time_hand(name, cfg, batch, {**s, "steps": 3}, memory_format(cfg))
        steps = max(s["steps"], math.ceil(s.get("min_seconds", 0) / min(calibration)))
        ws = {**s, "steps": steps, "warmup": max(s["warmup"], steps // 10)}
        hand, vid = [], []
        for r in range(s["repeats"]):
            hand += time_hand(name, cfg, batch, ws, memory_format(cfg))
            # a fresh output folder per run, as every vidgen-train run has its own
            vid += time_vidgen(workload_cfg(name, s, tmp / f"{name}_{r}"), batch, ws)
            print(
                f"  {name} repeat {r}: hand {rate(hand):.3f} steps/s, vidgen {rate(vid):.3f} steps/s",
                flush=True,
            )
        out[name] = {
            "batch_shape": list(batch[0].shape),
            "memory_format": memory_format(cfg),
            "steps_timed": ws["steps"],
            "warmup_steps": ws["warmup"],
            "repeats": s["repeats"],
            "hand_step_seconds": hand,
            "vidgen_step_seconds": vid,
            "hand_steps_per_s": rate(hand),
            "vidgen_steps_per_s": rate(vid),
            "overhead_ratio": rate(vid) / rate(hand),
            "overhead_ratio_best": min(hand) / min(vid),
        }
    return out


def table_rows(rows: dict[str, dict]) -> list[str]:
    target = TARGETS["overhead_ratio"]
    lines = []
    for name, row in rows.items():
        shape = "x".join(map(str, row["batch_shape"]))
        vid, hand = row["vidgen_steps_per_s"], row["hand_steps_per_s"]
        value = fmt_ratio(row["overhead_ratio"], target)
        lines.append(
            f"| overhead_ratio | {name} {shape} | {value} | ≥ {target:g} | "
            f"vidgen {vid:.3f} / hand loop {hand:.3f} steps/s (median step); best step: "
            f"{row['overhead_ratio_best']:.2f} |"
        )
    return lines
