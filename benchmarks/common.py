"""What the benchmark sections share: the settings of each mode, the workloads and their configs, the
batches both sides read, the timing of a step through vidgen, and the frame of the report.

A section module exposes ``measure(...)``, which returns a JSON-ready dict for ``latest.json``, and
``table_rows(...)``, its rows of ``latest.md``; ``bench.py`` decides which run and writes both files.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from vidgen.config import compose_config
from vidgen.run import RunContext
from vidgen.value_range import from_unit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# steps / warmup: steps timed per side and untimed steps before them; repeats: alternations of the sides;
# convlstm_batch: overrides data.batch_size of the ConvLSTM workload (None: the config's); gemm: matrix
# sides of the measured GEMMs beside the theoretical peak; launches: timed launches per startup
# command; sample_num / sample_seconds: videos per sampling call and the time to keep calling;
# compile: measure torch.compile in the variants section;
# data: datasets of the data section (empty: all); widths: overrides that shrink the nets to test size;
# parity_steps / parity_seeds / parity_num_fake: training iterations per side, seeds and generated
# samples per FID of the quality-parity section (num_fake also of time-to-quality); ttq_overrides: what
# the time-to-quality section changes in the default run (nothing in the full form: all 25 epochs).
SETTINGS = {
    "full": {"steps": 12, "min_seconds": 4.0, "warmup": 2, "repeats": 3, "convlstm_batch": None,
             "gemm": [512, 1024, 2048],
             "launches": 3, "sample_num": 8, "sample_seconds": 3, "compile": True, "data": [], "widths": [],
             "parity_steps": 550, "parity_seeds": [1, 2, 3, 4], "parity_num_fake": 1000,
             "ttq_overrides": []},
    "quick": {"steps": 4, "warmup": 1, "repeats": 2, "convlstm_batch": 2, "gemm": [512, 1024], "launches": 1,
              "sample_num": 2, "sample_seconds": 1, "compile": False, "data": ["digits", "moving_digits"],
              "widths": [], "parity_steps": 176, "parity_seeds": [1, 2], "parity_num_fake": 1000,
              "ttq_overrides": ["trainer.max_epochs=5"]},
    # for tests/test_benchmarks.py: the same code on nets small enough for a unit test
    "tiny": {"steps": 2, "warmup": 1, "repeats": 1, "convlstm_batch": 2, "gemm": [128, 256], "launches": 1,
             "sample_num": 1, "sample_seconds": 0, "compile": False, "data": ["digits"],
             "widths": ["model.generator.base_width=8", "model.discriminator.base_width=8",
                        "data.batch_size=8"],
             "parity_steps": 3, "parity_seeds": [1], "parity_num_fake": 64,
             "ttq_overrides": ["trainer.max_epochs=1", "trainer.limit_train_batches=3",
                               "trainer.limit_val_batches=1"]},
}  # fmt: skip
# The video data of the tiny mode; its video nets shrink by their own overrides.
TINY_VIDEO = ["data.image_size=16", "data.seq_len=4", "data.num_input_frames=2", "data.num_output_frames=2"]
TINY_CONVLSTM = ["model.net.hidden_channels=[8]"]
TINY_VAE = ["model.net.base_width=8", "model.net.hidden_dim=16", "data.batch_size=8"]
TINY_DIFFUSION = ["model.net.base_width=8", "model.net.norm_groups=4", "data.batch_size=8"]
TINY_WAVEGAN = ["model.generator.model_size=4", "model.discriminator.model_size=4", "data.batch_size=4",
                "data.clip_samples=4096", "model.discriminator.phase_shuffle=0"]  # fmt: skip

WORKLOADS = {
    # DCGAN on MNIST-sized images: conf/data/mnist.yaml gives (128, 1, 32, 32)
    "dcgan": ["data=mnist", "model=dcgan", "loss=gan_ns"],
    # ConvLSTM on Moving-MNIST-sized videos: conf/data/moving_mnist.yaml gives (16, 20, 1, 64, 64)
    "convlstm": ["data=moving_mnist", "model=convlstm", "loss=frame_mse"],
    # the conv VAE on binarized-MNIST-sized images in [0, 1]: (128, 1, 32, 32)
    "vae": ["data=mnist", "model=vae_conv", "loss=elbo", "data.value_range=[0,1]"],
    # the DDPM U-Net of experiment=ddpm_digits (eps-MSE, EMA): (64, 1, 16, 16)
    "diffusion": ["data=digits", "model=ddpm_unet", "loss=diffusion_eps", "data.image_size=16",
                  "model.ema_decay=0.995"],
    # WaveGAN on FSDD-sized waveforms, at half the paper's width (model_size 32), with one D step per G
    # step and the non-saturating loss, the GAN step the hand loop writes: (32, 1, 16384)
    "wavegan": ["data=spoken_digits", "model=wavegan", "loss=gan_ns", "model.n_critic=1",
                "model.generator.model_size=32", "model.discriminator.model_size=32", "data.batch_size=32"],
}  # fmt: skip
# More models whose default for model.channels_last was set from a measurement (``--option-models`` of
# the variants section): the training step through vidgen at the model's usual data and batch.
OPTION_MODELS = {
    "dcgan_digits": ["data=digits", "model=dcgan", "loss=gan_ns"],
    "resnet_gan": ["data=cifar10", "model=resnet_gan", "loss=gan_hinge", "data.batch_size=64"],
    "vae_conv": ["data=digits", "model=vae_conv", "loss=elbo", "data.batch_size=128"],
    "vgan": ["data=moving_mnist", "model=vgan", "loss=gan_ns", "data.batch_size=8"],
    "mocogan": ["data=moving_mnist", "model=mocogan", "loss=gan_ns", "data.batch_size=8"],
}


def workload_cfg(name: str, s: dict, output_dir: Path, extra: tuple[str, ...] = ()) -> DictConfig:
    """The config ``vidgen-train`` runs for a workload, with only the timed training steps left on:
    no callbacks (they act at epoch or validation end), no validation, the CSV logger."""
    over = [
        *(WORKLOADS.get(name) or OPTION_MODELS[name]),
        *extra,
        "logger=csv",
        "callbacks=none",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
    ]
    if name == "convlstm" and s["convlstm_batch"]:
        over.append(f"data.batch_size={s['convlstm_batch']}")
    if name == "dcgan":
        over += s["widths"]
    if name == "convlstm" and s["widths"]:
        over += [*TINY_CONVLSTM, *TINY_VIDEO]
    if name == "vae" and s["widths"]:
        over += TINY_VAE
    if name == "diffusion" and s["widths"]:
        over += TINY_DIFFUSION
    if name == "wavegan" and s["widths"]:
        over += TINY_WAVEGAN
    return compose_config(over, "train", output_dir=output_dir)


def memory_format(cfg: DictConfig) -> str:
    """The hand-loop variant that matches the model's config, so both sides run the same kernels."""
    return "channels_last" if cfg.model.get("channels_last") else "eager"


def fake_batch(cfg: DictConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the configured data's shape and range (only shapes matter for speed)."""
    d = cfg.data
    g = torch.Generator().manual_seed(seed)
    if d.get("representation") == "waveform":
        shape = [d.batch_size, 1, d.clip_samples]
    else:
        shape = [d.batch_size, d.channels, d.image_size, d.image_size]
    if "seq_len" in d:
        shape.insert(1, d.seq_len)
    images = from_unit(torch.rand(shape, generator=g), tuple(d.get("value_range", (-1.0, 1.0))))
    return images, torch.randint(0, 10, (d.batch_size,), generator=g)


def loader(batch: tuple, n: int) -> torch.utils.data.DataLoader:
    """The same in-memory batches for both sides, through a DataLoader as any training loop reads them."""
    return torch.utils.data.DataLoader([batch] * n, batch_size=None)


def intervals(ends: list[float], warmup: int) -> list[float]:
    """Seconds per step, end to end (data fetch, hooks, logging included), after ``warmup`` steps."""
    return [b - a for a, b in zip(ends[warmup - 1 : -1], ends[warmup:], strict=True)]


def rate(seconds: list[float]) -> float:
    """Steps/s from the median step time: robust to the bursts of other jobs on a shared machine."""
    return 1.0 / statistics.median(seconds)


class StepClock(L.Callback):
    """The time of every training batch's end (the loop's own hooks, logging and data fetch included)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())


def time_vidgen(cfg: DictConfig, batch: tuple, s: dict, extra_callbacks: list | None = None) -> list[float]:
    """Step times of the real path: RunContext checks/seeds/builds, Trainer.fit on the same batches.
    ``extra_callbacks`` run after the run's own (the interleaved hand loop of ``overhead.py``)."""
    clock = StepClock()
    with RunContext(cfg) as run:
        model = run.build("model")
        loggers = run.build_collection("logger")
        callbacks = [*run.build_collection("callbacks"), clock, *(extra_callbacks or [])]
        trainer = run.build_trainer(callbacks, loggers)
        run.log_config(loggers)
        trainer.fit(model, train_dataloaders=loader(batch, s["warmup"] + s["steps"]))
    assert len(clock.ends) == s["warmup"] + s["steps"], f"{len(clock.ends)} steps, expected more"
    return intervals(clock.ends, s["warmup"])


# ------------------------------------------------------------------------------------------ report
TARGETS = {"overhead_ratio": 0.97, "mfu": 0.5, "startup_ratio": 1.3, "data_headroom": 10.0,
           "time_to_quality_ratio": 0.9, "eval_ratio": 0.9}  # fmt: skip


def machine() -> dict:
    """What the figures depend on besides the code, recorded with them."""
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def fmt_ratio(v: float | None, target: float | None = None, higher: bool = True) -> str:
    """``0.98 ✓``: the value, marked against its target when it has one."""
    if v is None:
        return "n/a"
    met = "" if target is None else (" ✓" if (v >= target if higher else v <= target) else " ✗")
    return f"{v:.2f}{met}"


def headline(res: dict) -> dict[str, float | None]:
    """The ratios of ``TARGETS``, the worse workload of each, so a target is met only if all are (MFU
    against the theoretical peak), and ``fid_ratio``, vidgen's FID / the hand loop's, mean over seeds."""
    h: dict[str, float | None] = {k: None for k in (*TARGETS, "fid_ratio")}
    rows = res.get("overhead", {}).values()
    if rows:
        h["overhead_ratio"] = min(r["overhead_ratio"] for r in rows)
        if all("mfu" in r for r in rows):
            h["mfu"] = min(r["mfu"] for r in rows)
    if "startup" in res:
        h["startup_ratio"] = res["startup"]["startup_ratio_default"]
    ratios = [r["ratio"] for r in res.get("data", []) if r.get("ratio") is not None]
    if ratios:
        h["data_headroom"] = min(ratios)
    if "quality_parity" in res:
        h["fid_ratio"] = res["quality_parity"]["fid_ratio_mean"]
    if "time_to_quality" in res:
        h["time_to_quality_ratio"] = res["time_to_quality"]["time_to_quality_ratio"]
    if "eval" in res:
        h["eval_ratio"] = res["eval"]["eval_ratio"]
    return h


def markdown(res: dict, rows: list[str]) -> str:
    """latest.md: the machine, the sections' table ``rows``, the seconds per section and the headline."""
    m = res["machine"]
    lines = [
        f"vidgen benchmark ({res['mode']}) -- {m['time']}; {m['cpu']}, {m['cpu_count']} cores, "
        f"torch {m['torch']} ({m['torch_threads']} threads), lightning {m['lightning']}; load average "
        f"{m['load_average_start'][0]:.1f} at start, {m.get('load_average_end', [0])[0]:.1f} at end",
        "",
        "| figure | workload | value | target | from |",
        "|---|---|---|---|---|",
        *rows,
    ]
    if "section_seconds" in res:
        lines += [
            "",
            "Seconds per section: " + ", ".join(f"{k} {v}" for k, v in res["section_seconds"].items()),
        ]
    summary = ", ".join(f"{k} {fmt_ratio(v)}" for k, v in res["headline"].items())
    lines += ["", "Headline (latest.json `headline`): " + summary]
    return "\n".join(lines) + "\n"
