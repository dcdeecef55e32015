"""``mfu``: model FLOPs per training step x vidgen's steps/s / this machine's fp32 GEMM peak.

- The peak (``gemm_peak``) is the best of five ``torch.mm`` calls on n x n fp32 matrices, measured before
  and after the overhead workloads; the higher is kept, since a busy moment of a shared machine would
  otherwise understate it and overstate MFU.
- FLOPs are counted by ``torch.utils.flop_counter`` over one full step (forward and backward of every
  net) of the hand-written loop (``hand_loop.py``); steps/s are the overhead section's, so MFU needs it.
- Where MFU is low, ``top_ops_by_time`` names where the time goes: aten ops by self CPU time over one
  step profiled by ``torch.profiler``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from common import TARGETS, fake_batch, fmt_ratio, memory_format, workload_cfg
from hand_loop import hand_step


def gemm_peak(n: int, reps: int = 5) -> dict:
    """fp32 GEMM FLOP/s of ``torch.mm`` on n x n matrices: the best of ``reps`` timed calls."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return {"n": n, "flops_per_s": 2 * n**3 / best}


def remeasure_peak(before: dict) -> dict:
    """The peak measured again after the workloads; ``flops_per_s`` is the higher of both."""
    after = gemm_peak(before["n"])
    return {**after, "before": before["flops_per_s"], "after": after["flops_per_s"],
            "flops_per_s": max(before["flops_per_s"], after["flops_per_s"])}  # fmt: skip


def flops_per_step(name: str, cfg: DictConfig, batch: tuple) -> tuple[int, dict[str, int]]:
    """FLOPs of one training step (forward + backward), in total and per aten op, largest first."""
    from torch.utils.flop_counter import FlopCounterMode

    step = hand_step(name, instantiate(cfg.model))
    counter = FlopCounterMode(display=False)
    with counter:
        step(batch[0])
    by_op = {str(op).replace("aten.", ""): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def top_ops_by_time(name: str, cfg: DictConfig, batch: tuple, k: int = 5) -> list[dict]:
    """Where a step's time goes: aten ops by self CPU time over one profiled step (after one warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    step = hand_step(name, instantiate(cfg.model))
    x = batch[0]
    if memory_format(cfg) == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    step(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(x)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "share": e.self_cpu_time_total / total} for e in events[:k]]


def add_mfu(rows: dict[str, dict], peak: float, s: dict, tmp: Path) -> None:
    """Adds FLOPs, top ops and MFU (of vidgen and of the hand loop) to each row of ``overhead.measure``."""
    for name, row in rows.items():
        cfg = workload_cfg(name, s, tmp / f"mfu_{name}")
        batch = fake_batch(cfg)
        row["flops_per_step"], row["flops_by_op"] = flops_per_step(name, cfg, batch)
        row["top_ops_by_time"] = top_ops_by_time(name, cfg, batch)
        row["mfu"] = row["flops_per_step"] * row["vidgen_steps_per_s"] / peak
        row["mfu_hand"] = row["flops_per_step"] * row["hand_steps_per_s"] / peak


def table_rows(rows: dict[str, dict], peak: float) -> list[str]:
    target = TARGETS["mfu"]
    lines = []
    for name, row in rows.items():
        if "mfu" in row:
            shape = "x".join(map(str, row["batch_shape"]))
            ops = ", ".join(f"{o['op']} {o['share']:.0%}" for o in row["top_ops_by_time"][:3])
            lines.append(
                f"| mfu | {name} {shape} | {fmt_ratio(row['mfu'], target)} | ≥ {target:g} | "
                f"{row['flops_per_step'] / 1e9:.1f} GFLOP/step / peak {peak / 1e9:.0f} GFLOP/s; "
                f"time in: {ops} |"
            )
    return lines
