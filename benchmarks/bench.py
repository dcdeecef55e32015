"""vidgen measured against a hand-written PyTorch loop and this machine's peak: ``make bench [QUICK=1]``.

Every figure is a ratio of two measurements taken in the same run, so a busy shared machine moves both
sides; the machine, versions, thread count and settings are recorded with them.

- ``overhead_ratio``: steps/s of the real ``vidgen`` path (conf composed by Hydra, the family
  LightningModule, ``RunContext.build_trainer``: the run's own callbacks, the CSV logger, progress bar and
  ``log_every_n_steps`` of ``conf/trainer/default.yaml``) / steps/s of a minimal idiomatic PyTorch loop
  on the same nets, optimizers, loss, batches (in memory) and threads. Runs alternate, warm-up excluded.
- ``mfu``: model FLOPs per step (``torch.utils.flop_counter``) x vidgen steps/s / fp32 GEMM peak
  (``torch.mm`` measured here), with the ops that take the most time (``torch.profiler``).
- ``startup_ratio``: seconds from launching ``vidgen-train`` to its first optimizer step /
  seconds of ``python -c "import torch, lightning"``.
- ``data_headroom``: datamodule samples/s / model samples/s (``benchmarks/data_throughput.py``).
- sampling frames/s of each video model at 64x64, and ``benchmarks/eval_throughput.py`` when present.

Usage: ``python benchmarks/bench.py [--quick] [--tiny] [--only SECTION ...] [--out DIR]``. Writes
``<out>/latest.json`` and ``<out>/latest.md`` (default ``benchmarks/results/``) and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from data_throughput import measure as measure_data  # noqa: E402

from vidgen.config import conf_dir  # noqa: E402
from vidgen.run import RunContext  # noqa: E402

SECTIONS = ("peak", "overhead", "variants", "startup", "data", "sampling", "eval")
# steps timed per side, warm-up steps, alternating repeats; ConvLSTM batch; GEMM side; startup launches
SETTINGS = {
    "full": {"steps": 12, "warmup": 2, "repeats": 3, "convlstm_batch": None, "gemm": 2048, "launches": 3,
             "sample_num": 8, "sample_seconds": 3, "compile": True, "data": [], "widths": []},
    "quick": {"steps": 4, "warmup": 1, "repeats": 2, "convlstm_batch": 2, "gemm": 1024, "launches": 1,
              "sample_num": 2, "sample_seconds": 1, "compile": False, "data": ["digits", "moving_digits"],
              "widths": []},
    # for tests/test_benchmarks.py: the same code on nets small enough to run in seconds
    "tiny": {"steps": 2, "warmup": 1, "repeats": 1, "convlstm_batch": 2, "gemm": 256, "launches": 1,
             "sample_num": 1, "sample_seconds": 0, "compile": False, "data": ["digits"],
             "widths": ["model.generator.base_width=8", "model.discriminator.base_width=8",
                        "data.batch_size=8"]},
}  # fmt: skip
TARGETS = {"overhead_ratio": 0.97, "mfu": 0.5, "startup_ratio": 1.3, "data_headroom": 10.0}


# ----------------------------------------------------------------------------------------------- setup
def compose_cfg(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``vidgen-train <overrides>`` would run, writing to ``output_dir`` (as tests/conftest)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg


WORKLOADS = {
    # DCGAN on MNIST-sized images: conf/data/mnist.yaml gives (128, 1, 32, 32)
    "dcgan": ["data=mnist", "model=dcgan", "loss=gan_ns"],
    # ConvLSTM on Moving-MNIST-sized videos: conf/data/moving_mnist.yaml gives (16, 20, 1, 64, 64)
    "convlstm": ["data=moving_mnist", "model=convlstm", "loss=frame_mse"],
}


# More models whose default for model.channels_last was set from a measurement (``--option-models``):
# the training step through vidgen with the option off and on, at the model's usual data and batch.
OPTION_MODELS = {
    "dcgan_digits": ["data=digits", "model=dcgan", "loss=gan_ns"],
    "resnet_gan": ["data=cifar10", "model=resnet_gan", "loss=gan_hinge", "data.batch_size=64"],
    "vae_conv": ["data=digits", "model=vae_conv", "loss=elbo", "data.batch_size=128"],
    "vgan": ["data=moving_mnist", "model=vgan", "loss=gan_ns", "data.batch_size=8"],
    "mocogan": ["data=moving_mnist", "model=mocogan", "loss=gan_ns", "data.batch_size=8"],
}


def workload_cfg(name: str, s: dict, output_dir: Path, extra: tuple[str, ...] = ()) -> DictConfig:
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
        over += [
            "model.net.hidden_channels=[8]",
            "data.image_size=16",
            "data.seq_len=4",
            "data.num_input_frames=2",
            "data.num_output_frames=2",
        ]
    return compose_cfg(over, output_dir)


def memory_format(cfg: DictConfig) -> str:
    """The hand-loop variant that matches the model's config, so both sides run the same kernels."""
    return "channels_last" if cfg.model.get("channels_last") else "eager"


def fake_batch(cfg: DictConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the configured data's shape and range (only shapes matter for speed)."""
    d = cfg.data
    g = torch.Generator().manual_seed(seed)
    shape = [d.batch_size, d.channels, d.image_size, d.image_size]
    if "seq_len" in d:
        shape.insert(1, d.seq_len)
    lo, hi = d.value_range
    return torch.rand(shape, generator=g) * (hi - lo) + lo, torch.randint(0, 10, (d.batch_size,), generator=g)


def loader(batch: tuple, n: int) -> torch.utils.data.DataLoader:
    """The same in-memory batches for both sides, through a DataLoader as any training loop reads them."""
    return torch.utils.data.DataLoader([batch] * n, batch_size=None)


# ------------------------------------------------------------------------------- hand-written loops
def hand_gan_step(model) -> Callable:
    """pytorch/examples' dcgan step with the same nets, optimizers and non-saturating loss (softplus)."""
    g, d = model.generator, model.discriminator
    opt_g, opt_d = model.configure_optimizers()
    latent_dim = model.latent_dim

    def step(real: torch.Tensor) -> None:
        fake = g(torch.randn(real.shape[0], latent_dim))
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-d(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


def hand_sequence_step(model) -> Callable:
    """Observe T_in frames, predict T_out, MSE of sigmoid(logits) in [0, 1], one Adam step."""
    net, opt = model.net, model.configure_optimizers()
    t_in, t_out = model.num_input_frames, model.num_output_frames
    lo, hi = model.value_range

    def step(video: torch.Tensor) -> None:
        unit = (video - lo) / (hi - lo)
        context, target = unit[:, :t_in], unit[:, t_in : t_in + t_out]
        loss = F.mse_loss(torch.sigmoid(net(context, t_out, targets=target)["future"]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def hand_step(name: str, model) -> Callable:
    return hand_gan_step(model) if name == "dcgan" else hand_sequence_step(model)


def time_hand(name: str, cfg: DictConfig, batch: tuple, s: dict, variant: str = "eager") -> list[float]:
    """Seconds of each of ``steps`` steps of the hand-written loop, after ``warmup`` untimed ones.

    ``variant``: ``eager`` (the reference), ``channels_last`` (nets and batches in NHWC memory format), or
    ``compile`` (``torch.compile`` of each net, default inductor backend; compilation is in the warm-up).
    """
    L.seed_everything(cfg.seed, verbose=False)
    model = instantiate(cfg.model)
    model.train()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = batch[0]
        batch = (x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x, batch[1])
    if variant == "compile":
        for attr in ("generator", "discriminator", "net"):
            if hasattr(model, attr):
                setattr(model, attr, torch.compile(getattr(model, attr)))
    step = hand_step(name, model)
    ends = []
    for x, _ in loader(batch, s["warmup"] + s["steps"]):
        step(x)
        ends.append(time.perf_counter())
    return intervals(ends, s["warmup"])


def intervals(ends: list[float], warmup: int) -> list[float]:
    """Seconds per step, end to end (data fetch, hooks, logging included), after ``warmup`` steps."""
    return [b - a for a, b in zip(ends[warmup - 1 : -1], ends[warmup:], strict=True)]


def rate(seconds: list[float]) -> float:
    """Steps/s from the median step time: robust to the bursts of other jobs on a shared machine."""
    return 1.0 / statistics.median(seconds)


class StepClock(L.Callback):
    """The time of every training batch's end (the loop's own hooks, logging and data fetch included)."""

    def __init__(self):
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.ends.append(time.perf_counter())


def time_vidgen(cfg: DictConfig, batch: tuple, s: dict) -> list[float]:
    """Step times of the real path: RunContext checks/seeds/builds, Trainer.fit on the same batches."""
    clock = StepClock()
    with RunContext(cfg) as run:
        model = run.build("model")
        loggers = run.build_collection("logger")
        trainer = run.build_trainer([*run.build_collection("callbacks"), clock], loggers)
        run.log_config(loggers)
        trainer.fit(model, train_dataloaders=loader(batch, s["warmup"] + s["steps"]))
    assert len(clock.ends) == s["warmup"] + s["steps"], f"{len(clock.ends)} steps, expected more"
    return intervals(clock.ends, s["warmup"])


def flops_per_step(name: str, cfg: DictConfig, batch: tuple) -> tuple[int, dict[str, int]]:
    """FLOPs of one training step (forward + backward) counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    model = instantiate(cfg.model)
    step = hand_step(name, model)
    counter = FlopCounterMode(display=False)
    with counter:
        step(batch[0])
    by_op = {str(op).replace("aten.", ""): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def top_ops_by_time(name: str, cfg: DictConfig, batch: tuple, k: int = 5) -> list[dict]:
    """Where a step's time goes: aten ops by self CPU time over one profiled step (after one warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    model = instantiate(cfg.model)
    step = hand_step(name, model)
    x = batch[0]
    if memory_format(cfg) == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    step(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(x)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "share": e.self_cpu_time_total / total} for e in events[:k]]


# ------------------------------------------------------------------------------------------ sections
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


def overhead(s: dict, tmp: Path) -> dict:
    out = {}
    for name in WORKLOADS:
        cfg = workload_cfg(name, s, tmp / name)
        batch = fake_batch(cfg)
        hand, vid = [], []
        for r in range(s["repeats"]):  # alternate, so a load change hits both sides alike
            hand += time_hand(name, cfg, batch, s, memory_format(cfg))
            cfg = workload_cfg(name, s, tmp / f"{name}_{r}")
            vid += time_vidgen(cfg, batch, s)
            print(
                f"  {name} repeat {r}: hand {rate(hand):.3f} steps/s, vidgen {rate(vid):.3f} steps/s",
                flush=True,
            )
        flops, by_op = flops_per_step(name, cfg, batch)
        row = {
            "batch_shape": list(batch[0].shape),
            "memory_format": memory_format(cfg),
            "steps_timed": s["steps"],
            "warmup_steps": s["warmup"],
            "repeats": s["repeats"],
            "hand_step_seconds": hand,
            "vidgen_step_seconds": vid,
            "hand_steps_per_s": rate(hand),
            "vidgen_steps_per_s": rate(vid),
            "overhead_ratio": rate(vid) / rate(hand),
            "overhead_ratio_best": min(hand) / min(vid),
            "flops_per_step": flops,
            "flops_by_op": by_op,
        }
        row["top_ops_by_time"] = top_ops_by_time(name, cfg, batch)
        out[name] = row
    return out


def add_mfu(rows: dict, peak: float) -> None:
    for row in rows.values():
        row["mfu"] = row["flops_per_step"] * row["vidgen_steps_per_s"] / peak
        row["mfu_hand"] = row["flops_per_step"] * row["hand_steps_per_s"] / peak


# The per-model options through vidgen (every model config defaults to model.compile=false; the VAE
# family has no compile option, so eager sets channels_last only).
VIDGEN_VARIANTS = {
    "eager": ("model.channels_last=false",),
    "channels_last": ("model.channels_last=true",),
    "compile": ("model.channels_last=false", "model.compile=true"),
}


def variants(s: dict, tmp: Path) -> dict:
    """What channels_last and torch.compile buy on this CPU: steps/s relative to eager (NCHW, no compile),
    in the hand-written loop and, for DCGAN and the ``--option-models``, through vidgen with the
    ``model.channels_last`` and ``model.compile`` options. Runs alternate between variants in every
    repeat."""
    out = {}
    for name in [*WORKLOADS, *s.get("option_models", [])]:
        batch = fake_batch(workload_cfg(name, s, tmp / f"variants_{name}"))
        # compile: DCGAN only; ConvLSTM's 20-step unrolled graph takes minutes to compile on 2 cores
        kinds = ["eager", "channels_last", *(["compile"] if s["compile"] and name == "dcgan" else [])]
        # the sequence family has no options; the option models are measured through vidgen only
        sides = {"dcgan": ["hand", "vidgen"], "convlstm": ["hand"]}.get(name, ["vidgen"])
        times = {(side, k): [] for side in sides for k in kinds}
        ws = {**s, "warmup": s["warmup"] + 2}
        for r in range(s["repeats"]):
            for side, kind in times:
                # compile: recompiling in every repeat costs minutes; its warm-up absorbs compilation
                if kind == "compile" and times[side, kind]:
                    continue
                if side == "hand":
                    cfg = workload_cfg(name, s, tmp / f"variants_{name}")
                    times[side, kind] += time_hand(name, cfg, batch, ws, kind)
                else:
                    cfg = workload_cfg(name, s, tmp / f"variants_{name}_{kind}_{r}", VIDGEN_VARIANTS[kind])
                    times[side, kind] += time_vidgen(cfg, batch, ws)
        out[name] = {side: {} for side in sides}
        for (side, kind), seconds in times.items():
            speedup = rate(seconds) / rate(times[side, "eager"])
            out[name][side][kind] = {"steps_per_s": rate(seconds), "speedup": speedup,
                                     "batch_shape": list(batch[0].shape)}  # fmt: skip
        for side, row in out[name].items():
            speedups = ", ".join(f"{k} x{v['speedup']:.2f}" for k, v in row.items())
            print(f"  {name} ({side}): {speedups}", flush=True)
    return out


def _launch(cmd: list[str], env: dict, probe: Path | None, timeout: float = 900) -> dict[str, float]:
    """Seconds from launch to the process's exit, or to the probe's ``ready`` and ``stepped`` times."""
    start = time.time()
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


STARTUP_RUNS = {
    # what `make train` runs: digits, DCGAN, W&B (offline) + CSV, checkpoint + sample grid + FID callbacks
    "default": [],
    # the same without the optional dependencies: CSV logger only, no callbacks
    "lean": ["logger=csv", "callbacks=none"],
}


def startup(s: dict, tmp: Path) -> dict:
    """Launch-to-first-optimizer-step of ``vidgen-train`` vs ``import torch, lightning``, alternated."""
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

    # One untimed launch of each: fills the OS file cache and trains the FID classifier if not cached.
    for name in STARTUP_RUNS:
        _launch(train_cmd(name, tmp / f"warm_{name}"), env, tmp / f"warm_{name}")
    runs: dict[str, list[dict]] = {"import": [], **{name: [] for name in STARTUP_RUNS}}
    for i in range(s["launches"]):  # alternated, so a change of load hits every command alike
        runs["import"].append(_launch([sys.executable, "-c", "import torch, lightning"], env, None))
        for name in STARTUP_RUNS:
            probe = tmp / f"probe_{name}_{i}"
            runs[name].append(_launch(train_cmd(name, probe), env, probe))
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


SAMPLERS = {"vgan": "loss=gan_ns", "mocogan": "loss=gan_ns", "convlstm": "loss=frame_mse"}


def sampling(s: dict, tmp: Path) -> dict:
    """Generated frames/s of each video model at 64x64 (``data=moving_mnist``: 20-frame videos)."""
    out = {}
    for name, loss in SAMPLERS.items():
        over = ["data=moving_mnist", f"model={name}", loss]
        if s["widths"]:
            over += [
                "data.image_size=16",
                "data.seq_len=4",
                "data.num_input_frames=2",
                "data.num_output_frames=2",
            ]
            over += ["model.net.hidden_channels=[8]"] if name == "convlstm" else s["widths"]
        cfg = compose_cfg(over, tmp / f"sample_{name}")
        model = instantiate(cfg.model).eval()
        num = s["sample_num"]
        if name == "convlstm":
            video = fake_batch(cfg)[0][:num]
            frames = num * model.num_output_frames  # predicted frames only; the context is given

            def run(model=model, video=video, num=num):
                model.sample(num, condition=video)
        else:
            frames = num * cfg.data.seq_len

            def run(model=model, num=num):
                model.sample(num)

        run()
        reps, start = 0, time.perf_counter()
        while reps < 1 or (time.perf_counter() - start < s["sample_seconds"] and reps < 20):
            run()
            reps += 1
        fps = reps * frames / (time.perf_counter() - start)
        out[name] = {
            "frames_per_s": fps,
            "batch": num,
            "frames_per_call": frames,
            "image_size": cfg.data.image_size,
        }
        print(f"  {name}: {fps:.1f} frames/s", flush=True)
    return out


def eval_throughput(quick: bool) -> dict:
    """``benchmarks/eval_throughput.py``: images/s through FID (torchmetrics directly, vidgen-eval's full
    set) and frames/s of the frame metrics. The digits extractor is cached in ``$VIDGEN_DATA_DIR`` or
    ``<repo>/data`` (never in the read-only shared data folder)."""
    from eval_throughput import measure

    data_dir = os.environ.get("VIDGEN_DATA_DIR") or str(REPO / "data")
    return measure(500 if quick else 2000, 1 if quick else 3, data_dir)


# -------------------------------------------------------------------------------------- report
def machine() -> dict:
    import lightning

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
        "lightning": lightning.__version__,
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _fmt(v: float | None, target: float | None = None, higher: bool = True) -> str:
    if v is None:
        return "n/a"
    met = "" if target is None else (" ✓" if (v >= target if higher else v <= target) else " ✗")
    return f"{v:.2f}{met}"


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"vidgen benchmark ({res['mode']}) -- {m['time']}; {m['cpu']}, {m['cpu_count']} cores, "
        f"torch {m['torch']} ({m['torch_threads']} threads), lightning {m['lightning']}; load average "
        f"{m['load_average_start'][0]:.1f} at start, {m.get('load_average_end', [0])[0]:.1f} at end",
        "",
        "| figure | workload | value | target | from |",
        "|---|---|---|---|---|",
    ]
    peak = res.get("peak", {}).get("flops_per_s")
    for name, row in res.get("overhead", {}).items():
        shape = "x".join(map(str, row["batch_shape"]))
        vid, hand = row["vidgen_steps_per_s"], row["hand_steps_per_s"]
        lines.append(
            f"| overhead_ratio | {name} {shape} | {_fmt(row['overhead_ratio'], 0.97)} | ≥ 0.97 | "
            f"vidgen {vid:.3f} / hand loop {hand:.3f} steps/s (median step); best step: "
            f"{row['overhead_ratio_best']:.2f} |"
        )
    for name, row in res.get("overhead", {}).items():
        if "mfu" in row:
            shape = "x".join(map(str, row["batch_shape"]))
            ops = ", ".join(f"{o['op']} {o['share']:.0%}" for o in row["top_ops_by_time"][:3])
            lines.append(
                f"| mfu | {name} {shape} | {_fmt(row['mfu'], 0.5)} | ≥ 0.5 | "
                f"{row['flops_per_step'] / 1e9:.1f} GFLOP/step / peak {peak / 1e9:.0f} GFLOP/s; "
                f"time in: {ops} |"
            )
    st = res.get("startup")
    if st:
        for name in STARTUP_RUNS:
            cmd, ratio = " ".join(st["commands"][name]), st[f"startup_ratio_{name}"]
            lines.append(
                f"| startup_ratio | `{cmd}` | {_fmt(ratio, 1.3, higher=False)} | ≤ 1.3 | "
                f"{st[f'{name}_stepped_seconds']:.1f} s to the end of step 1 (ready for it at "
                f"{st[f'{name}_ready_seconds']:.1f} s: ratio {st[f'startup_ratio_{name}_ready']:.2f}) / "
                f"import {st['import_seconds']:.1f} s |"
            )
    for row in res.get("data", []):
        if "skipped" in row:
            lines.append(f"| data_headroom | {row['data']} | skipped | ≥ 10 | {row['skipped'][:70]} |")
        else:
            lines.append(
                f"| data_headroom | {row['data']} ({row['model']}) | {_fmt(row['ratio'], 10)} | ≥ 10 | "
                f"{row['data_samples_per_s']:,.0f} / {row['model_samples_per_s']:,.1f} samples/s |"
            )
    for name, sides in res.get("variants", {}).items():
        for side, row in sides.items():
            where = "hand loop" if side == "hand" else "vidgen, `model.<option>=true`"
            for kind, v in row.items():
                if kind != "eager":
                    lines.append(
                        f"| speed-up of {kind} | {name} ({where}) | x{v['speedup']:.2f} | -- | "
                        f"{v['steps_per_s']:.3f} vs eager {row['eager']['steps_per_s']:.3f} steps/s, "
                        f"batch {'x'.join(map(str, v['batch_shape']))} |"
                    )
    for name, row in res.get("sampling", {}).items():
        lines.append(
            f"| sampling frames/s | {name} {row['image_size']}x{row['image_size']} | "
            f"{row['frames_per_s']:.1f} | -- | batch {row['batch']}, {row['frames_per_call']} frames/call |"
        )
    if "eval" in res:
        e = res["eval"]
        rates = e["images_per_s"]
        lines += [
            f"| eval images/s | FID, torchmetrics directly | {rates['torchmetrics_fid']:,.0f} | -- | "
            f"{e['num_real']} real + {e['num_fake']} fake, digits LeNet-5 features |",
            f"| eval images/s | vidgen-eval image metrics | {rates['vidgen_all']:,.0f} | -- | FID+KID+IS+"
            f"precision/recall: x{e['ratio_vidgen_all_to_torchmetrics_fid']:.2f} of FID alone |",
            f"| eval frames/s | frame metrics (OpenSTL) | {e['frame_metrics_frames_per_s']:,.0f} | -- | "
            f"videos {'x'.join(map(str, e['frame_metrics_shape']))} |",
        ]
    if "section_seconds" in res:
        lines += [
            "",
            "Seconds per section: " + ", ".join(f"{k} {v}" for k, v in res["section_seconds"].items()),
        ]
    s = res["headline"]
    lines += ["", "Headline (latest.json `headline`): " + ", ".join(f"{k} {_fmt(v)}" for k, v in s.items())]
    return "\n".join(lines) + "\n"


def headline(res: dict) -> dict:
    """The four ratios of issue 7: the worse workload of each, so a target is met only if all are."""
    h: dict[str, float | None] = {k: None for k in TARGETS}
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
    return h


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and launches (under 3 minutes)")
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
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        section_seconds: dict[str, float] = {}

        def run(name: str, message: str | None, fn: Callable[[], object]) -> object:
            if message:
                print(message, flush=True)
            t = time.perf_counter()
            out = fn()
            section_seconds[name] = round(time.perf_counter() - t, 1)
            return out

        if "peak" in only or "overhead" in only:
            res["peak"] = run("peak", "fp32 GEMM peak ...", lambda: gemm_peak(s["gemm"]))
        if "overhead" in only:
            res["overhead"] = run(
                "overhead", "overhead: hand-written loop vs vidgen ...", lambda: overhead(s, tmp)
            )
            # the peak is measured before and after the workloads and the higher kept: a busy moment of
            # a shared machine would otherwise understate it and overstate MFU
            after = gemm_peak(s["gemm"])
            res["peak"] = {**after, "before": res["peak"]["flops_per_s"], "after": after["flops_per_s"],
                           "flops_per_s": max(res["peak"]["flops_per_s"], after["flops_per_s"])}  # fmt: skip
            add_mfu(res["overhead"], res["peak"]["flops_per_s"])
        if "variants" in only:
            message = "variants: channels_last / torch.compile vs eager (hand loop and vidgen) ..."
            res["variants"] = run("variants", message, lambda: variants(s, tmp))
        if "sampling" in only:
            res["sampling"] = run("sampling", "sampling frames/s ...", lambda: sampling(s, tmp))
        if "data" in only:
            message = "data headroom (benchmarks/data_throughput.py) ..."
            res["data"] = run("data", message, lambda: measure_data(s["data"], mode != "full", args.data_dir))
        if "startup" in only:
            message = "startup: vidgen-train to first optimizer step vs import torch, lightning ..."
            res["startup"] = run("startup", message, lambda: startup(s, tmp))
        if "eval" in only:
            res["eval"] = run("eval", None, lambda: eval_throughput(mode != "full"))
        res["section_seconds"] = section_seconds
    res["machine"]["load_average_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    res["headline"] = headline(res)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(res, indent=2, default=str))
    table = markdown(res)
    (out / "latest.md").write_text(table)
    print("\n" + table + f"\nwritten: {out / 'latest.json'}, {out / 'latest.md'} ({res['seconds']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
