"""The benchmark code runs and reports every figure (``benchmarks/bench.py --tiny``). No speed is asserted:
timings on a shared machine are the benchmark's business, not the test suite's."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench  # noqa: E402
import data_throughput  # noqa: E402
import mfu  # noqa: E402
import quality_parity  # noqa: E402
from common import SETTINGS, TARGETS  # noqa: E402
from startup_probe import FirstStepProbe  # noqa: E402


def _positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_bench_tiny_writes_ratios_and_table(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("VIDGEN_DATA_DIR", str(data_dir))
    out = tmp_path / "results"
    bench.main(
        [
            "--tiny",
            "--only",
            "overhead",
            "variants",
            "sampling",
            "data",
            "eval",
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
        ]
    )

    res = json.loads((out / "latest.json").read_text())
    assert res["machine"]["torch_threads"] == torch.get_num_threads()
    peak = res["peak"]
    assert _positive(peak["flops_per_s"]) and peak["cores"] >= 1 and peak["flops_per_cycle_per_core"] >= 1
    # every measured kernel stays below the theoretical peak, so no MFU can exceed 1
    assert set(peak["best_kernel"]["kernels"]) == {"gemm_128", "gemm_256", "conv3x3_64x64x32x32"}
    assert max(peak["best_kernel"]["kernels"].values()) <= peak["flops_per_s"]
    for name in ("dcgan", "convlstm", "vae"):
        row = res["overhead"][name]
        timed = row["steps_timed"] * row["repeats"]
        assert len(row["hand_step_seconds"]) == len(row["vidgen_step_seconds"]) == timed
        assert _positive(row["overhead_ratio"]) and _positive(row["mfu"])
        assert row["mfu"] <= 1 and row["mfu_hand"] <= 1 and row["mfu"] <= row["mfu_of_best_kernel"]
        assert row["flops_per_step"] > 0 and "convolution" in " ".join(row["flops_by_op"])
        assert row["top_ops_by_time"]
    # the options measured by hand and through vidgen (model.channels_last) for DCGAN, by hand for ConvLSTM
    variants = res["variants"]
    assert set(variants["dcgan"]) == {"hand", "vidgen"} and set(variants["convlstm"]) == {"hand"}
    for side in variants["dcgan"].values():
        assert side["eager"]["speedup"] == 1.0 and _positive(side["channels_last"]["speedup"])
    assert res["overhead"]["dcgan"]["memory_format"] == "channels_last"  # the hand loop follows the config
    assert {"vgan", "mocogan", "convlstm"} <= set(res["sampling"])
    assert all(_positive(r["frames_per_s"]) for r in res["sampling"].values())
    assert _positive(res["data"][0]["ratio"])
    assert _positive(res["headline"]["overhead_ratio"]) and _positive(res["headline"]["data_headroom"])
    assert all(_positive(v) for v in res["eval"]["images_per_s"].values())
    assert set(res["eval"]["images_per_s"]) == {"torchmetrics_fid", "vidgen_fid", "vidgen_all"}
    assert _positive(res["eval"]["eval_ratio"]) and res["headline"]["eval_ratio"] == res["eval"]["eval_ratio"]
    assert set(res["eval"]["metric_seconds"]) == {"fid", "kid", "is", "precision_recall"}
    # every target has its headline key (None when its section did not run)
    assert set(TARGETS) | {"fid_ratio"} == set(res["headline"]) and res["headline"]["mfu"] <= 1
    assert _positive(res["eval"]["frame_metrics_frames_per_s"])
    assert set(res["section_seconds"]) == {"peak", "overhead", "variants", "sampling", "data", "eval"}
    table = (out / "latest.md").read_text()
    assert "| overhead_ratio | dcgan" in table and "| mfu | convlstm" in table and "| mfu | vae" in table
    assert "| fp32 peak | theoretical |" in table and "| eval_ratio |" in table
    assert "| speed-up of channels_last | dcgan (vidgen, `model.<option>=true`) |" in table
    assert "| eval images/s | vidgen-eval image metrics |" in table and "| eval frames/s |" in table
    assert table in capsys.readouterr().out


def test_quality_parity_trains_both_sides_and_scores_them_alike(tmp_path, data_dir, monkeypatch):
    """The section through bench.py on tiny nets: every figure present, finite and positive; then the
    same ``measure`` with zero steps, where both generators are their (shared) init: equal FIDs."""
    monkeypatch.setenv("VIDGEN_DATA_DIR", str(data_dir))
    res = bench.main(["--tiny", "--only", "quality_parity", "--out", str(tmp_path / "results")])
    q = json.loads((tmp_path / "results" / "latest.json").read_text())["quality_parity"]
    assert q["form"] == "tiny" and q["iterations"] == SETTINGS["tiny"]["parity_steps"] > 0
    assert q["seeds"] == SETTINGS["tiny"]["parity_seeds"] and len(q["per_seed"]) == len(q["seeds"])
    figures = ("fid_ratio_mean", "fid_vidgen_mean", "fid_hand_mean", "fid_untrained_mean", "fid_real_floor",
               "vidgen_step_seconds_median", "hand_step_seconds_median",
               "trained_over_untrained_max")  # fmt: skip
    assert all(_positive(q[k]) for k in figures), {k: q[k] for k in figures}
    assert math.isfinite(q["fid_ratio_std"]) and q["fid_ratio_std"] >= 0
    for row in q["per_seed"]:
        assert all(_positive(row[k]) for k in ("fid_vidgen", "fid_hand", "fid_ratio", "fid_untrained_vidgen"))
        assert len(row["vidgen_step_seconds"]) == len(row["hand_step_seconds"]) == q["iterations"] - 1
    # the same seed gives both sides the same untrained generator, scored by the same code
    assert q["untrained_equal"] and isinstance(q["beats_untrained"], bool)
    assert res["headline"]["fid_ratio"] == q["fid_ratio_mean"]
    assert "| fid_ratio | dcgan_digits 8x1x32x32, 3 it" in (tmp_path / "results" / "latest.md").read_text()

    zero = quality_parity.measure({**SETTINGS["tiny"], "parity_steps": 0}, tmp_path, str(data_dir), "tiny")
    row = zero["per_seed"][0]
    assert row["fid_vidgen"] == row["fid_hand"] == row["fid_untrained_vidgen"] == row["fid_untrained_hand"]
    assert zero["fid_ratio_mean"] == 1.0 and row["generator_max_abs_diff"] == 0.0


CPUINFO = """processor\t: {n}
vendor_id\t: {vendor}
cpu family\t: {family}
physical id\t: 0
core id\t: {core}
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse avx avx2 fma {extra}

"""


@pytest.mark.parametrize(
    ("cores", "extra", "cpu", "expected"),
    [
        # two hyper-threads of one AVX-512 core: 1 core x 2 GHz x 16 lanes x 2 (FMA) x 2 units
        ([0, 0], "avx512f", ("GenuineIntel", 6), 1 * 2e9 * 16 * 2 * 2),
        # four AVX2 cores: 4 x 2 GHz x 8 x 2 x 2
        ([0, 1, 2, 3], "", ("GenuineIntel", 6), 4 * 2e9 * 8 * 2 * 2),
        # AMD Zen 4 (family 25) has AVX-512 registers on 256-bit FMA pipes: 8 lanes per unit
        ([0, 1], "avx512f", ("AuthenticAMD", 25), 2 * 2e9 * 8 * 2 * 2),
    ],
)
def test_theoretical_peak_counts_physical_cores_clock_and_vector_width(cores, extra, cpu, expected) -> None:
    vendor, family = cpu
    text = "".join(CPUINFO.format(n=n, core=c, extra=extra, vendor=vendor, family=family)
                   for n, c in enumerate(cores))  # fmt: skip
    peak = mfu.theoretical_peak(text, cpus=set(range(len(cores))))
    assert peak["flops_per_s"] == pytest.approx(expected) and peak["cores"] == len(set(cores))


def test_a_kernel_faster_than_the_theoretical_peak_stops_the_section(monkeypatch) -> None:
    """The clock read from a VM can be below its turbo clock; MFU against such a peak could exceed 1, so
    the section stops and says how to state the clock."""
    monkeypatch.setenv("VIDGEN_CPU_GHZ", "0.001")
    with pytest.raises(RuntimeError, match="VIDGEN_CPU_GHZ"):
        mfu.peak([64])


def test_time_to_quality_runs_the_default_training_and_the_hand_loop(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("VIDGEN_DATA_DIR", str(data_dir))
    res = bench.main(["--tiny", "--only", "time_to_quality", "--out", str(tmp_path / "results")])
    t = res["time_to_quality"]
    assert t["iterations"] == 3 and t["epochs"] == 1
    assert 0 < t["vidgen_train_seconds"] < t["vidgen_seconds"] and _positive(t["hand_seconds"])
    assert t["time_to_quality_ratio"] == pytest.approx(t["hand_seconds"] / t["vidgen_seconds"])
    assert _positive(t["fid_vidgen"]) and _positive(t["fid_hand"]) and t["num_fake"] == 64
    assert "val/fid_digits" in t["vidgen_val_metric"]  # the default run validated with FID
    assert res["headline"]["time_to_quality_ratio"] == t["time_to_quality_ratio"]
    assert "| time_to_quality_ratio | default run" in (tmp_path / "results" / "latest.md").read_text()


def test_data_section_leaves_the_data_folder_of_later_sections_alone(tmp_path, monkeypatch):
    """bench.py runs the startup and eval sections after the data section in the same process; they must
    keep caching the FID classifier in their own folder, not in the (shared) folder of real datasets."""
    monkeypatch.setenv("VIDGEN_DATA_DIR", str(tmp_path / "own"))
    (tmp_path / "real").mkdir()
    rows = data_throughput.measure(["mnist"], quick=True, data_dir=str(tmp_path / "real"))
    assert "skipped" in rows[0]  # no MNIST files there: the row says so instead of failing the run
    assert os.environ["VIDGEN_DATA_DIR"] == str(tmp_path / "own")


def test_first_step_probe_writes_the_time_of_the_first_step(tmp_path):
    probe = FirstStepProbe(str(tmp_path / "t"), exit_after=False)
    model = BoringModel()
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[probe], limit_val_batches=0)  # fmt: skip
    trainer.fit(model)
    assert trainer.global_step == 1
    times = json.loads((tmp_path / "t").read_text())
    assert times["ready"] <= times["stepped"] <= time.time()


@pytest.mark.slow
def test_bench_startup_launches_vidgen_train(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("VIDGEN_DATA_DIR", str(data_dir))
    res = bench.main(["--tiny", "--only", "startup", "--out", str(tmp_path)])
    assert _positive(res["headline"]["startup_ratio"])
    assert _positive(res["startup"]["startup_ratio_lean"])
