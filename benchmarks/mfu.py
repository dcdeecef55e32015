"""``mfu``: model FLOPs per training step x vidgen's steps/s / this machine's theoretical fp32 peak.

- The peak (``theoretical_peak``) is read from the CPU, not measured: physical cores the process may
  run on x clock x fp32 FLOPs per cycle and core (SIMD lanes of the widest vector extension in
  ``/proc/cpuinfo``'s flags x 2 for a fused multiply-add x ``FMA_UNITS`` units). Each input is recorded
  with it. The clock is the highest of the nominal one (``cpu MHz``; a VM shows no other), cpufreq's
  maximum, and the clock measured by a chain of dependent adds (``measured_clock_ghz``: turbo, which
  AVX-512 code does not exceed), so the peak is an upper bound. ``best_kernels`` measures fp32 GEMMs at
  several sizes and a convolution before and after the workloads, and the section stops when one beats
  the theoretical peak (an input is then wrong; ``VIDGEN_CPU_GHZ`` states the clock). So MFU <= 1.
- FLOPs are counted by ``torch.utils.flop_counter`` over one full step (forward and backward of every
  net) of the hand-written loop (``hand_loop.py``); steps/s are the overhead section's, so MFU needs it.
  ``mfu_of_best_kernel`` puts the same step rate against the best measured kernel instead.
- Where MFU is low, ``top_ops_by_time`` names where the time goes: aten ops by self CPU time over one
  step profiled by ``torch.profiler``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from common import TARGETS, fake_batch, fmt_ratio, memory_format, workload_cfg
from hand_loop import hand_step

# fp32 lanes per vector register, widest first, by the cpuinfo flag that provides them
SIMD_LANES = (("avx512f", 16), ("avx", 8), ("sse", 4), ("asimd", 4))
# FMA units per core: 2 on Intel Xeon Scalable (Skylake-SP and later, AVX-512) and AMD Zen 1-4, 1 on some
# client parts: 2 is the upper bound of x86 server cores, so the peak is not understated.
FMA_UNITS = 2
# fp32 lanes an FMA unit computes per cycle where the datapath is narrower than the widest register: AMD
# Zen 2-4 (cpu family 23 from model 0x30, and 25) have 256-bit FMA pipes and run an AVX-512 instruction
# as two halves (AMD's Zen 4 optimization guide), so 8 lanes per unit, not the register's 16. Zen 1's
# 128-bit pipes are not told apart (its peak is overstated, the safe side for MFU <= 1).
DATAPATH_LANES = {("AuthenticAMD", "23"): 8, ("AuthenticAMD", "25"): 8}


# Eight dependent 1-cycle integer adds per iteration (the loop's own increment, compare and branch run
# beside them on other ports), so adds per second = cycles per second: the clock the core runs at now,
# turbo included, which a VM's /proc/cpuinfo does not show.
CLOCK_PROBE = r"""
#include <stdint.h>
#include <stdio.h>
#include <time.h>
int main(int argc, char **argv) {
    uint64_t n = 40000000ULL, x = 0, y = (uint64_t)argc;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < n; i++)
        __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                         "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0" : "+r"(x) : "r"(y));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%f\n", 8.0 * n / ((b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec)) / 1e9);
    return (int)(x & 1);
}
"""


def measured_clock_ghz(runs: int = 5) -> float | None:
    """The core clock in GHz from a chain of dependent adds (the best of ``runs``), or None where it
    cannot run (no C compiler, not x86-64)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or platform.machine() not in ("x86_64", "AMD64"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "clock.c", Path(tmp) / "clock"
        src.write_text(CLOCK_PROBE)
        try:
            subprocess.run([cc, "-O1", "-o", str(exe), str(src)], check=True, capture_output=True, timeout=60)
            return max(float(subprocess.run([str(exe)], check=True, capture_output=True, text=True,
                                            timeout=60).stdout) for _ in range(runs))  # fmt: skip
        except (OSError, subprocess.SubprocessError, ValueError):
            return None


def theoretical_peak(cpuinfo: str | None = None, cpus: set[int] | None = None) -> dict:
    """fp32 FLOP/s of the cores this process may run on, from ``/proc/cpuinfo`` (or ``cpuinfo``)."""
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    cpus = cpus if cpus is not None else os.sched_getaffinity(0)
    blocks = []
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "processor" in fields:
            blocks.append(fields)
    ours = [b for b in blocks if int(b["processor"]) in cpus] or blocks
    # hyper-threads of one core share its FMA units: count (package, core) pairs
    cores = len({(b.get("physical id", "0"), b.get("core id", b["processor"])) for b in ours})
    flags = set(ours[0].get("flags", ours[0].get("Features", "")).split())
    lanes = next((n for flag, n in SIMD_LANES if flag in flags), 1)
    datapath = DATAPATH_LANES.get((ours[0].get("vendor_id", ""), ours[0].get("cpu family", "")))
    lanes = min(lanes, datapath) if datapath else lanes
    fma = 2 if ("fma" in flags or "asimd" in flags) else 1
    mhz = max(float(b.get("cpu MHz", 0) or 0) for b in ours)
    source = "cpu MHz in /proc/cpuinfo (nominal in a VM)"
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if cpuinfo is None and max_freq.is_file() and int(max_freq.read_text()) / 1000 > mhz:
        mhz, source = int(max_freq.read_text()) / 1000, "cpufreq cpuinfo_max_freq"
    probe = measured_clock_ghz() if cpuinfo is None else None
    if probe is not None and probe * 1000 > mhz:
        mhz, source = probe * 1000, "measured: a chain of dependent adds (turbo; above the nominal clock)"
    if os.environ.get("VIDGEN_CPU_GHZ"):
        mhz, source = float(os.environ["VIDGEN_CPU_GHZ"]) * 1000, "VIDGEN_CPU_GHZ"
    if mhz <= 0:
        raise RuntimeError("mfu: /proc/cpuinfo gives no clock; set VIDGEN_CPU_GHZ=<GHz> to state it")
    per_cycle = lanes * fma * FMA_UNITS
    return {"flops_per_s": cores * mhz * 1e6 * per_cycle, "cores": cores, "ghz": mhz / 1000,
            "clock_source": source, "fp32_lanes": lanes, "fma": fma == 2, "fma_units": FMA_UNITS,
            "flops_per_cycle_per_core": per_cycle}  # fmt: skip


def _best_seconds(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def best_kernels(sizes: list[int], reps: int = 5) -> dict:
    """fp32 FLOP/s of ``torch.mm`` on n x n matrices for each n and of a 3x3 convolution (64 -> 64
    channels, 64 images of 32 x 32, forward), each the best of ``reps`` calls; ``flops_per_s`` the best."""
    out: dict = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out[f"gemm_{n}"] = 2 * n**3 / _best_seconds(lambda: torch.mm(a, b), reps)  # noqa: B023
    x, w = torch.randn(64, 64, 32, 32), torch.randn(64, 64, 3, 3)
    out["conv3x3_64x64x32x32"] = (
        2 * 64 * 64 * 32 * 32 * 64 * 9 / _best_seconds(lambda: F.conv2d(x, w, padding=1), reps)
    )
    return {"kernels": out, "flops_per_s": max(out.values())}


def peak(sizes: list[int], before: dict | None = None) -> dict:
    """The theoretical peak and the best measured kernel (the higher of this and an earlier ``before``
    measurement, since a busy moment would understate it); stops when a kernel beats the peak."""
    theory = theoretical_peak()
    measured = best_kernels(sizes)
    if before is not None and before["best_kernel"]["flops_per_s"] > measured["flops_per_s"]:
        measured = before["best_kernel"]
    if measured["flops_per_s"] > theory["flops_per_s"]:
        t = theory
        raise RuntimeError(
            f"mfu: a measured kernel ({measured['flops_per_s'] / 1e9:.0f} GFLOP/s) beats the theoretical "
            f"fp32 peak ({t['flops_per_s'] / 1e9:.0f} GFLOP/s = {t['cores']} cores x {t['ghz']:.2f} GHz "
            f"from {t['clock_source']} x {t['flops_per_cycle_per_core']} FLOP/cycle); the clock is likely "
            "a turbo one above it: set VIDGEN_CPU_GHZ=<max GHz> and run again."
        )
    return {**theory, "best_kernel": measured,
            "best_kernel_share_of_peak": measured["flops_per_s"] / theory["flops_per_s"]}  # fmt: skip


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


def add_mfu(rows: dict[str, dict], peak: dict, s: dict, tmp: Path) -> None:
    """Adds FLOPs, top ops and MFU (of vidgen and of the hand loop) to each row of ``overhead.measure``."""
    for name, row in rows.items():
        cfg = workload_cfg(name, s, tmp / f"mfu_{name}")
        batch = fake_batch(cfg)
        row["flops_per_step"], row["flops_by_op"] = flops_per_step(name, cfg, batch)
        row["top_ops_by_time"] = top_ops_by_time(name, cfg, batch)
        row["mfu"] = row["flops_per_step"] * row["vidgen_steps_per_s"] / peak["flops_per_s"]
        row["mfu_hand"] = row["flops_per_step"] * row["hand_steps_per_s"] / peak["flops_per_s"]
        row["mfu_of_best_kernel"] = (
            row["flops_per_step"] * row["vidgen_steps_per_s"] / peak["best_kernel"]["flops_per_s"]
        )


def peak_rows(peak: dict) -> list[str]:
    kernels = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peak["best_kernel"]["kernels"].items())
    return [
        f"| fp32 peak | theoretical | {peak['flops_per_s'] / 1e9:.0f} GFLOP/s | -- | {peak['cores']} cores x "
        f"{peak['ghz']:.2f} GHz ({peak['clock_source']}) x {peak['fp32_lanes']} lanes x "
        f"{'2 (FMA)' if peak['fma'] else '1'} x {peak['fma_units']} FMA units |",
        f"| fp32 peak | best measured kernel | {peak['best_kernel']['flops_per_s'] / 1e9:.0f} GFLOP/s | -- | "
        f"{peak['best_kernel_share_of_peak']:.2f} of theoretical; GFLOP/s: {kernels} |",
    ]


def table_rows(rows: dict[str, dict], peak: dict) -> list[str]:
    target = TARGETS["mfu"]
    lines = []
    for name, row in rows.items():
        if "mfu" in row:
            shape = "x".join(map(str, row["batch_shape"]))
            ops = ", ".join(f"{o['op']} {o['share']:.0%}" for o in row["top_ops_by_time"][:3])
            lines.append(
                f"| mfu | {name} {shape} | {fmt_ratio(row['mfu'], target)} | ≥ {target:g} | "
                f"{row['flops_per_step'] / 1e9:.1f} GFLOP/step / theoretical peak "
                f"{peak['flops_per_s'] / 1e9:.0f} GFLOP/s ({peak['cores']} cores x {peak['ghz']:.2f} GHz x "
                f"{peak['flops_per_cycle_per_core']} FLOP/cycle); {row['mfu_of_best_kernel']:.2f} of the "
                f"best kernel ({peak['best_kernel']['flops_per_s'] / 1e9:.0f} GFLOP/s); time in: {ops} |"
            )
    return lines
