"""``fid_ratio``: FID of vidgen's DCGAN / FID of the same algorithm in a plain PyTorch loop (issue 14.7).

Speed is not worth having if the framework trains a worse model. Per seed, both sides train the default
experiment (``conf/experiment/dcgan_digits.yaml``) for the same number of iterations from the same
initial weights, on the same data and batch size, and are scored the same way:

- *vidgen*: the config composed by Hydra as ``vidgen-train experiment=dcgan_digits seed=<seed>`` composes
  it, then ``RunContext`` (checks, seeding), the datamodule and ``GANModule`` it builds, and
  ``RunContext.build_trainer``'s real ``Trainer`` (fp32, the run's own callbacks, the CSV logger).
  Changed from the experiment, none of which touches training: ``+trainer.max_steps`` (Lightning counts
  both optimizers' steps, so ``2 x steps``), no validation, ``callbacks=none`` (checkpoints, grids and
  FID act at validation), no progress bar or model summary.
- *hand*: ``torch.manual_seed(seed)``, the two nets of the config's ``model.generator`` /
  ``model.discriminator`` (plain ``nn.Module``s, so the same DCGAN init, drawn in the same order as
  vidgen draws them), ``torch.optim.Adam`` with the config's lr and betas, a ``DataLoader`` over the same
  training split (``shuffle=True, drop_last=True``, the data's batch size), the model's memory format
  (laid out as vidgen lays it out, ``in_memory_format``), and ``hand_loop.gan_step``: the algorithm of
  ``GANModule.training_step`` written out (z drawn per batch, D on real and ``G(z).detach()``, then G
  through the updated D, non-saturating loss). ``check_algorithm`` stops the section when the config asks
  for anything that step does not do (another loss, n_critic, spectral norm, EMA, classes, optimizer,
  precision), rather than compare two different algorithms.

The data order is not forced to match; both sides draw it and every z from the global RNG after the same
seed in the same order, so they can coincide step for step. ``generator_max_abs_diff`` (the largest
difference between the two trained generators' weights) says whether they did.

Scoring, shared: ``num_fake`` samples of each generator in eval mode, noise drawn in chunks of 256 with
seeds ``4321 + k`` as the FID callback draws them (vidgen through ``GANModule.sample``, the hand side
by calling its G), against the data's test images, by ``vidgen.metrics.sample_quality.sample_quality``
in the digits LeNet-5 feature space (``feature_space``). Baselines in the same space at the same N: the
untrained generator (per seed, both sides: equal when the init is), and the real-data floor
(``num_fake`` training images against the test images).

Reported: per seed FID vidgen, FID hand and their ratio; ``fid_ratio`` mean ± std over seeds; whether
every trained FID beats its untrained one clearly (below ``CLEARLY`` x); whether vidgen is worse beyond
seed noise (its mean FID above the hand loop's by more than twice the standard error of the difference).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common import StepClock, intervals
from hand_loop import gan_step
from vidgen.callbacks.staged_quality import CHUNK
from vidgen.config import compose_config
from vidgen.families.memory_format import to_channels_last
from vidgen.metrics.feature_spaces import FeatureSpace, feature_space
from vidgen.metrics.sample_quality import sample_quality
from vidgen.run import RunContext

EXPERIMENT = "dcgan_digits"
NOISE_SEED = 4321  # conf/callbacks/fid.yaml: chunk k of CHUNK fakes is drawn with seed + k
CLEARLY = 0.5  # a trained FID "clearly beats" the untrained one when below this fraction of it


def parity_cfg(s: dict, seed: int, steps: int, output_dir: Path, data_dir: str) -> DictConfig:
    """``vidgen-train experiment=dcgan_digits seed=<seed>`` stopped after ``steps`` iterations, without
    what acts only at validation or prints."""
    over = [
        f"experiment={EXPERIMENT}",
        f"seed={seed}",
        f"paths.data_dir={data_dir}",
        "logger=csv",
        "callbacks=none",
        "trainer.max_epochs=-1",
        f"+trainer.max_steps={2 * steps}",  # manual optimization: one step of each optimizer per batch
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *s["widths"],
    ]
    return compose_config(over, "train", output_dir=output_dir)


def check_algorithm(cfg: DictConfig) -> None:
    """Stops when the config trains something ``hand_loop.gan_step`` does not do."""
    m = cfg.model
    expected = {
        "model._target_": (m._target_, "vidgen.families.gan.GANModule"),
        "loss._target_": (cfg.loss._target_, "vidgen.losses.gan.NonSaturatingGANLoss"),
        "model.n_critic": (m.n_critic, 1),
        "model.spectral_norm": (m.spectral_norm, False),
        "model.num_classes": (m.num_classes, None),
        "model.ema_decay": (m.ema_decay, None),
        "model.compile": (m.compile, False),
        "trainer.precision": (cfg.trainer.precision, "32-true"),
        "trainer.accumulate_grad_batches": (cfg.trainer.get("accumulate_grad_batches", 1), 1),
    }
    for name in ("optimizer_g", "optimizer_d"):
        opt = m[name]
        expected[f"model.{name}._target_"] = (opt._target_, "torch.optim.Adam")
        expected[f"model.{name} keys"] = (sorted(opt), sorted({"_target_", "_partial_", "lr", "betas"}))
    wrong = {k: v for k, (v, want) in expected.items() if v != want}
    if wrong:
        raise ValueError(
            f"quality_parity: the hand-written loop implements the DCGAN of {EXPERIMENT} (non-saturating "
            f"loss, n_critic 1, Adam lr/betas, fp32); this config differs: {wrong}. Extend "
            "hand_loop.gan_step and this check together, or compare another experiment."
        )


def draw(sample, num: int) -> torch.Tensor:
    """``num`` samples from ``sample(n, noise_generator)``, chunk k with seed ``NOISE_SEED + k``."""
    chunks = []
    for k, start in enumerate(range(0, num, CHUNK)):
        chunks.append(sample(min(CHUNK, num - start), torch.Generator().manual_seed(NOISE_SEED + k)))
    return torch.cat(chunks)


@torch.no_grad()
def hand_samples(g: nn.Module, num: int) -> torch.Tensor:
    """The hand side's samples: G in eval mode (batch-norm running statistics) on z ~ N(0, I)."""
    g.eval()
    try:
        return draw(lambda n, noise: g(torch.randn(n, g.latent_dim, generator=noise)).contiguous(), num)
    finally:
        g.train()


def in_memory_format(net: nn.Module, fmt: torch.memory_format) -> nn.Module:
    """``net`` laid out as ``model.channels_last`` lays out vidgen's nets (``to_channels_last``), or as
    built for ``torch.contiguous_format``: both sides run the same kernels."""
    return to_channels_last(net) if fmt == torch.channels_last else net


def adam(net: nn.Module, opt: DictConfig) -> torch.optim.Adam:
    return torch.optim.Adam(net.parameters(), lr=opt.lr, betas=tuple(opt.betas))


def train_hand(cfg: DictConfig, train_set: Dataset, steps: int, num_fake: int) -> dict:
    """The plain PyTorch side: returns its generator, its samples before and after, and step times."""
    torch.manual_seed(cfg.seed)
    g, d = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    fmt = torch.channels_last if cfg.model.channels_last else torch.contiguous_format
    g, d = in_memory_format(g, fmt).train(), in_memory_format(d, fmt).train()
    untrained = hand_samples(g, num_fake)
    step = gan_step(g, d, adam(g, cfg.model.optimizer_g), adam(d, cfg.model.optimizer_d), g.latent_dim)
    batches = DataLoader(train_set, batch_size=cfg.data.batch_size, shuffle=True, drop_last=True)
    start, ends = time.perf_counter(), []
    while len(ends) < steps:
        for x, _ in batches:
            step(x.contiguous(memory_format=fmt))
            ends.append(time.perf_counter())
            if len(ends) == steps:
                break
    return {"generator": g, "untrained": untrained, "samples": hand_samples(g, num_fake), "ends": ends,
            "seconds": time.perf_counter() - start}  # fmt: skip


def train_vidgen(cfg: DictConfig, steps: int, num_fake: int) -> dict:
    """The vidgen side, the path of ``vidgen-train``: RunContext, datamodule, GANModule, Trainer.fit."""
    clock = StepClock()
    with RunContext(cfg) as run:
        datamodule = run.build("data")
        model = run.build("model")
        loggers = run.build_collection("logger")
        trainer = run.build_trainer([*run.build_collection("callbacks"), clock], loggers)
        run.log_config(loggers)
        untrained = draw(lambda n, noise: model.sample(n, generator=noise), num_fake)
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        seconds = time.perf_counter() - start
    if len(clock.ends) != steps:
        raise RuntimeError(f"quality_parity: vidgen trained {len(clock.ends)} batches, expected {steps}")
    samples = draw(lambda n, noise: model.sample(n, generator=noise), num_fake)
    return {"generator": model.generator, "untrained": untrained, "samples": samples, "ends": clock.ends,
            "seconds": seconds}  # fmt: skip


def max_abs_diff(a: nn.Module, b: nn.Module) -> float:
    """The largest difference between two nets' parameters and buffers (0.0: the same weights)."""
    sa, sb = a.state_dict(), b.state_dict()
    diffs = [float((sa[k].double() - sb[k].double()).abs().max()) for k in sa if sa[k].numel()]
    return max(diffs, default=0.0)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def step_seconds(ends: list[float]) -> list[float]:
    """Seconds per iteration after the first (which includes the loader's start)."""
    return intervals(ends, 1) if len(ends) > 1 else []


def measure(s: dict, tmp: Path, data_dir: str, mode: str) -> dict:
    """Trains both sides for each seed of ``s["parity_seeds"]`` and scores them; JSON-ready."""
    steps, seeds, num_fake = s["parity_steps"], list(s["parity_seeds"]), s["parity_num_fake"]
    cfg = parity_cfg(s, seeds[0], steps, tmp / "parity_cfg", data_dir)
    check_algorithm(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    space: FeatureSpace = feature_space(datamodule)  # the digits LeNet-5, trained once and cached
    real = datamodule.splits["test"].tensors[0]
    train_images = datamodule.splits["train"].tensors[0]
    order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(NOISE_SEED))
    reference = train_images[order[:num_fake]]

    def fid(fake: torch.Tensor) -> float:
        return sample_quality(space, real, fake, ("fid",))[f"fid_{space.name}"]

    form = {"full": "", "quick": " (quick form: fewer steps and seeds)", "tiny": " (tiny form: tests)"}[mode]
    print(f"  {len(seeds)} seeds x {steps} iterations per side{form}", flush=True)
    rows = []
    for seed in seeds:
        seed_cfg = parity_cfg(s, seed, steps, tmp / f"parity_vidgen_{seed}", data_dir)
        hand = train_hand(seed_cfg, datamodule.splits["train"], steps, num_fake)
        vid = train_vidgen(seed_cfg, steps, num_fake)
        row = {
            "seed": seed,
            "fid_vidgen": fid(vid["samples"]),
            "fid_hand": fid(hand["samples"]),
            "fid_untrained_vidgen": fid(vid["untrained"]),
            "fid_untrained_hand": fid(hand["untrained"]),
            "generator_max_abs_diff": max_abs_diff(vid["generator"], hand["generator"]),
            "vidgen_seconds": vid["seconds"],
            "hand_seconds": hand["seconds"],
            "vidgen_step_seconds": step_seconds(vid["ends"]),
            "hand_step_seconds": step_seconds(hand["ends"]),
        }
        row["fid_ratio"] = row["fid_vidgen"] / row["fid_hand"]
        rows.append(row)
        print(
            f"  seed {seed}: FID vidgen {row['fid_vidgen']:.1f}, hand {row['fid_hand']:.1f} (ratio "
            f"{row['fid_ratio']:.3f}), untrained {row['fid_untrained_vidgen']:.1f}; generators differ by "
            f"{row['generator_max_abs_diff']:.2g}; {vid['seconds']:.0f} s vidgen, {hand['seconds']:.0f} s "
            "hand",
            flush=True,
        )
    return summarise(rows, cfg, space, len(real), num_fake, fid(reference), steps, mode)


def summarise(rows: list[dict], cfg: DictConfig, space: FeatureSpace, num_real: int, num_fake: int,
              floor: float, steps: int, mode: str) -> dict:  # fmt: skip
    """The section's figures from the per-seed rows."""
    n = len(rows)
    ratio_mean, ratio_std = mean_std([r["fid_ratio"] for r in rows])
    vid_mean, vid_std = mean_std([r["fid_vidgen"] for r in rows])
    hand_mean, hand_std = mean_std([r["fid_hand"] for r in rows])
    untrained_mean, untrained_std = mean_std([r["fid_untrained_vidgen"] for r in rows])
    # how far each trained FID got from its own untrained generator's (below CLEARLY: clearly better)
    progress = max(max(r["fid_vidgen"], r["fid_hand"]) / r["fid_untrained_vidgen"] for r in rows)
    noise = 2 * ((vid_std**2 + hand_std**2) / n) ** 0.5
    vid_steps = [t for r in rows for t in r["vidgen_step_seconds"]]
    hand_steps = [t for r in rows for t in r["hand_step_seconds"]]
    return {
        "form": mode,
        "experiment": EXPERIMENT,
        "iterations": steps,
        "seeds": [r["seed"] for r in rows],
        "batch_shape": [cfg.data.batch_size, cfg.data.channels, cfg.data.image_size, cfg.data.image_size],
        "memory_format": "channels_last" if cfg.model.channels_last else "contiguous",
        "optimizers": {
            k: {"lr": cfg.model[k].lr, "betas": list(cfg.model[k].betas)}
            for k in ("optimizer_g", "optimizer_d")
        },  # fmt: skip
        "loss": cfg.loss._target_,
        "feature_space": space.description,
        "num_real": num_real,
        "num_fake": num_fake,
        "noise_seed": NOISE_SEED,
        "per_seed": rows,
        "fid_ratio_mean": ratio_mean,
        "fid_ratio_std": ratio_std,
        "fid_vidgen_mean": vid_mean,
        "fid_vidgen_std": vid_std,
        "fid_hand_mean": hand_mean,
        "fid_hand_std": hand_std,
        "fid_untrained_mean": untrained_mean,
        "fid_untrained_std": untrained_std,
        "fid_real_floor": floor,
        "untrained_equal": all(r["fid_untrained_vidgen"] == r["fid_untrained_hand"] for r in rows),
        "trained_over_untrained_max": progress,
        "beats_untrained": progress < CLEARLY,
        # one seed has no seed noise to compare with
        "vidgen_worse_beyond_seed_noise": vid_mean - hand_mean > noise if n > 1 else None,
        "identical_generators": all(r["generator_max_abs_diff"] == 0.0 for r in rows),
        "vidgen_step_seconds_median": statistics.median(vid_steps) if vid_steps else None,
        "hand_step_seconds_median": statistics.median(hand_steps) if hand_steps else None,
    }


def table_rows(q: dict) -> list[str]:
    shape = "x".join(map(str, q["batch_shape"]))
    label = {"full": "", "quick": " **quick form**", "tiny": " tiny form"}[q["form"]]
    work = f"{q['experiment']} {shape}, {q['iterations']} it, seeds {q['seeds']}{label}"
    per_seed = "; ".join(f"{r['seed']}: {r['fid_vidgen']:.1f} / {r['fid_hand']:.1f}" for r in q["per_seed"])
    beats = "yes" if q["beats_untrained"] else "**no**"
    worse = {True: "**yes**", False: "no", None: "n/a (one seed)"}[q["vidgen_worse_beyond_seed_noise"]]
    same = "identical" if q["identical_generators"] else "not identical"
    vid_t, hand_t = q["vidgen_step_seconds_median"], q["hand_step_seconds_median"]
    times = f"{vid_t:.3f} / {hand_t:.3f} s" if vid_t and hand_t else "n/a"
    n = f"N = {q['num_fake']} fakes vs {q['num_real']} test images, {q['feature_space']}"
    return [
        f"| fid_ratio | {work} | {q['fid_ratio_mean']:.3f} ± {q['fid_ratio_std']:.3f} | ≈ 1 | FID vidgen / "
        f"hand loop per seed: {per_seed}; vidgen worse beyond seed noise: {worse}; trained generators "
        f"{same} |",
        f"| FID digits | vidgen / hand loop | {q['fid_vidgen_mean']:.1f} ± {q['fid_vidgen_std']:.1f} / "
        f"{q['fid_hand_mean']:.1f} ± {q['fid_hand_std']:.1f} | -- | {n} |",
        f"| FID digits | untrained / real floor | {q['fid_untrained_mean']:.1f} / {q['fid_real_floor']:.1f} "
        f"| -- | trained beats untrained clearly (< {CLEARLY:g}x in every run): {beats} "
        f"(worst {q['trained_over_untrained_max']:.3f}x); untrained equal on both sides: "
        f"{q['untrained_equal']} |",
        f"| step time (parity) | vidgen / hand loop | {times} | -- | median seconds per iteration |",
    ]
