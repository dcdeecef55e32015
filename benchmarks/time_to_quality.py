"""``time_to_quality_ratio``: wall time of the hand-written loop / wall time of ``vidgen-train``, the
same DCGAN iterations, both generators scored in one feature space.

The overhead section times training steps alone; a user waits for the whole run. Here the vidgen side is
the default run as ``make train`` starts it: ``vidgen.cli.train.train`` on the config ``vidgen-train``
composes with no overrides but the data folder and the output folder (the mode's ``ttq_overrides`` stop
it early in the quick and tiny forms), so it includes everything that run does: the run checks and
seeding, W&B (offline) and CSV loggers, validation with FID every epoch, sample grids, both checkpoints
and ``metrics.json``. Its wall time is the ``train`` call, set-up included; ``run.json``'s
``train_seconds`` (the fit loop alone) is recorded beside it.

The hand side is ``quality_parity.train_hand``: the same nets, init, optimizers, data split, batch size
and memory format, trained with ``hand_loop.gan_step`` for as many iterations as vidgen ran (half its
``global_step``: one step per optimizer), timed from its first batch to its last. No validation, no
checkpoints, no logging: the least a plain loop does.

Both generators then draw ``parity_num_fake`` samples with the FID callback's seeds, scored against the
digits test split in the LeNet-5 space (``quality_parity``'s scoring), so the ratio is of the time to the
same quality only if the FIDs agree within seed noise; both are reported.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from common import TARGETS, fmt_ratio
from quality_parity import check_algorithm, draw, train_hand
from vidgen.cli.train import train
from vidgen.config import compose_config
from vidgen.metrics.feature_spaces import feature_space
from vidgen.metrics.sample_quality import sample_quality


def ttq_cfg(s: dict, output_dir: Path, data_dir: str) -> DictConfig:
    """The config of ``vidgen-train`` (the default run), writing into ``output_dir``."""
    over = [f"paths.data_dir={data_dir}", *s["ttq_overrides"], *s["widths"]]
    return compose_config(over, "train", output_dir=output_dir)


def measure(s: dict, tmp: Path, data_dir: str) -> dict:
    """Runs the default training, then the hand loop for as many iterations; scores both."""
    out_dir = tmp / "time_to_quality"
    cfg = ttq_cfg(s, out_dir, data_dir)
    check_algorithm(cfg)
    num_fake = s["parity_num_fake"]

    start = time.perf_counter()
    metrics = train(cfg)
    vidgen_seconds = time.perf_counter() - start
    info = json.loads((out_dir / "run.json").read_text())
    iterations = info["global_step"] // 2  # manual optimization: D and G steps per batch
    model = instantiate(cfg.model)
    model.load_state_dict(torch.load(out_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    vidgen_samples = draw(lambda n, noise: model.sample(n, generator=noise), num_fake)

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    hand = train_hand(cfg, datamodule.splits["train"], iterations, num_fake)

    space = feature_space(datamodule)
    real = datamodule.splits["test"].tensors[0]

    def fid(fake: torch.Tensor) -> float:
        return sample_quality(space, real, fake, ("fid",))[f"fid_{space.name}"]

    result = {
        "iterations": iterations,
        "epochs": info["epochs"],
        "overrides": list(s["ttq_overrides"]),
        "vidgen_seconds": vidgen_seconds,
        "vidgen_train_seconds": info.get("train_seconds"),
        "hand_seconds": hand["seconds"],
        "time_to_quality_ratio": hand["seconds"] / vidgen_seconds,
        "fid_vidgen": fid(vidgen_samples),
        "fid_hand": fid(hand["samples"]),
        "fid_space": space.name,
        "num_fake": num_fake,
        "num_real": len(real),
        "vidgen_val_metric": {k: v for k, v in metrics.items() if k.startswith("val/fid")},
    }
    print(
        f"  {iterations} iterations: vidgen-train {vidgen_seconds:.1f} s (fit loop "
        f"{result['vidgen_train_seconds']} s), hand loop {hand['seconds']:.1f} s; FID vidgen "
        f"{result['fid_vidgen']:.1f}, hand {result['fid_hand']:.1f}",
        flush=True,
    )
    return result


def table_rows(t: dict) -> list[str]:
    target = TARGETS["time_to_quality_ratio"]
    return [
        f"| time_to_quality_ratio | default run (dcgan_digits), {t['iterations']} it | "
        f"{fmt_ratio(t['time_to_quality_ratio'], target)} | ≥ {target:g} | hand loop "
        f"{t['hand_seconds']:.1f} s / vidgen-train {t['vidgen_seconds']:.1f} s (fit loop "
        f"{t['vidgen_train_seconds']} s, validation FID, grids, checkpoints, W&B and CSV included); "
        f"FID {t['fid_vidgen']:.1f} vs {t['fid_hand']:.1f} "
        f"({t['num_fake']} fakes vs {t['num_real']} test images, {t['fid_space']} space) |"
    ]
