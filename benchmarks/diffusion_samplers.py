"""FID against sampler steps, with images/s, of one trained diffusion checkpoint (issue 17).

    python benchmarks/diffusion_samplers.py <ckpt> [--num N] [--samplers ddpm:1000 ddim:50 ...]

The checkpoint's own model and data are rebuilt from the config saved in it, its weights (EMA included)
loaded, and for each ``sampler:steps`` the same ``N`` images are drawn from the same noise (seed 4321,
as the FID callback draws it) in chunks of at most 64, timed (sampling only: the wall seconds of
``model.sample``), and scored by ``vidgen.metrics.sample_quality.sample_quality`` in the data's own
feature space against ``N`` test images (default: the whole test split). The untrained baseline is not
repeated here: the training run's own test row has it (``docs/RESULTS.md``).

The default list is the paper settings of issue 17: DDPM ancestral with all 1000 steps, DDIM (eta 0)
with 50/20/10, and for a flow-matching checkpoint Euler 20/10 and Heun 10. Writes
``benchmarks/results/diffusion_samplers.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vidgen.callbacks.sample_video import first_samples
from vidgen.cli.eval import load_weights
from vidgen.metrics.feature_spaces import feature_space
from vidgen.metrics.sample_quality import sample_quality
from vidgen.run import load_run_checkpoint

HERE = Path(__file__).resolve().parent
GAUSSIAN = ["ddpm:1000", "ddim:50", "ddim:20", "ddim:10"]
FLOW = ["euler:20", "euler:10", "heun:10"]
SEED, CHUNK = 4321, 64


def measure(ckpt: str, num: int | None, samplers: list[str] | None) -> dict:
    checkpoint = load_run_checkpoint(ckpt)
    cfg = OmegaConf.create(checkpoint["vidgen_config"])
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    load_weights(model, checkpoint, ckpt)
    datamodule.setup("test")
    real = first_samples(datamodule.test_dataloader(), num or len(datamodule.splits["test"]))
    space = feature_space(datamodule)
    samplers = samplers or (GAUSSIAN if "euler" not in model.loss.samplers else FLOW)
    rows = []
    for spec in samplers:
        name, steps = spec.split(":")
        model.configure_sampling(name, int(steps), 0.0)
        generator = torch.Generator().manual_seed(SEED)
        fakes, start = [], time.perf_counter()
        for first in range(0, len(real), CHUNK):
            fakes.append(model.sample(min(CHUNK, len(real) - first), generator=generator))
        seconds = time.perf_counter() - start
        fid = sample_quality(space, real, torch.cat(fakes), metrics=("fid",))
        key = next(k for k in fid if k.startswith("fid"))
        rate = len(real) / seconds
        rows.append({"sampler": name, "steps": int(steps), "fid": fid[key], "seconds": seconds,
                     "images_per_second": rate})  # fmt: skip
        print(f"{name:5s} {int(steps):5d} steps: FID {fid[key]:8.2f}, {rate:7.2f} images/s", flush=True)
    return {"checkpoint": ckpt, "experiment": cfg.get("task_name"), "num": len(real),
            "feature_space": space.description, "threads": torch.get_num_threads(), "rows": rows}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt")
    p.add_argument("--num", type=int, default=None, help="images per FID (default: the test split)")
    p.add_argument("--samplers", nargs="*", default=None, help="sampler:steps, e.g. ddim:50")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    res = measure(args.ckpt, args.num, args.samplers)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "diffusion_samplers.json").write_text(json.dumps(res, indent=1))
    lines = [f"FID ({res['num']} generated vs {res['num']} test images, {res['feature_space']}) of "
             f"{res['checkpoint']}, {res['threads']} threads", "",
             "| sampler | steps | FID | images/s |", "|---|---|---|---|"]  # fmt: skip
    for r in res["rows"]:
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['fid']:.2f} | {r['images_per_second']:.2f} |")
    (args.out / "diffusion_samplers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return res


if __name__ == "__main__":
    main()
