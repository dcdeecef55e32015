"""``overhead_ratio``: steps/s of a training step through vidgen / steps/s of the hand-written loop.

The vidgen side is the real path (``common.time_vidgen``): the config composed by Hydra from ``conf/`` as
``vidgen-train`` composes it, the family LightningModule, ``RunContext.build_trainer`` with the run's own
callbacks, the CSV logger, the progress bar and ``log_every_n_steps`` of ``conf/trainer/default.yaml``.
The other side is ``hand_loop.py`` on the same nets, optimizers, loss, in-memory batches, seed and threads,
in the memory format the model's config asks for, so both run the same kernels.

The two sides are interleaved step by step (``time_interleaved``): after each vidgen step, a callback runs
one step of the hand loop on its own copy of the model and times it apart; vidgen's step is the time from
the end of that hand step to the end of its next batch (data fetch, hooks, logging, checkpoint hooks
included). A machine whose speed drifts by several per cent over tens of seconds (this VM's did: the same
hand loop ran at 27.5 and 33.8 steps/s four minutes apart) then slows both sides alike; timed one after
the other, 4 s per side, the ratio moved by up to 7 % from one repeat to the next. ``repeats`` fresh
Trainers each time ``steps`` pairs after ``warmup`` untimed ones; a workload whose steps are short times
enough pairs for ``min_seconds`` per side and repeat, from a calibration of the hand loop. The ratio uses
the median step of each side; the ratio of the best steps is recorded too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from common import (
    TARGETS,
    WORKLOADS,
    fake_batch,
    fmt_ratio,
    loader,
    memory_format,
    rate,
    time_vidgen,
    workload_cfg,
)
from hand_loop import build_hand_step, time_hand


class InterleavedHandStep(L.Callback):
    """After each vidgen training step: the time since the previous hand step ended (vidgen's step), then
    one timed hand-loop step (its data fetch included, as the hand loop's own)."""

    def __init__(self, step, batch: tuple, n: int) -> None:
        self.step, self.batches = step, iter(loader(batch, n))
        self.vidgen: list[float] = []
        self.hand: list[float] = []
        self.mark: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.mark is not None:
            self.vidgen.append(now - self.mark)
        with torch.enable_grad():
            start = time.perf_counter()
            x, _ = next(self.batches)
            self.step(x)
            end = time.perf_counter()
        self.hand.append(end - start)
        self.mark = time.perf_counter()


def time_interleaved(name: str, cfg: DictConfig, batch: tuple, s: dict) -> tuple[list[float], list[float]]:
    """Step times of the hand loop and of vidgen (``common.time_vidgen``) on ``cfg``, interleaved; the
    first ``warmup`` of each dropped."""
    step, hand_batch = build_hand_step(name, cfg, batch, memory_format(cfg))
    n = s["warmup"] + s["steps"]
    pair = InterleavedHandStep(step, hand_batch, n)
    time_vidgen(cfg, batch, s, extra_callbacks=[pair])
    return pair.hand[s["warmup"] :], pair.vidgen[s["warmup"] - 1 :]


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
            # a fresh output folder per run, as every vidgen-train run has its own
            h, v = time_interleaved(name, workload_cfg(name, s, tmp / f"{name}_{r}"), batch, ws)
            hand, vid = hand + h, vid + v
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
            "method": "interleaved step by step",
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
