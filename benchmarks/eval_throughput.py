"""Evaluation throughput: images/s through FID as vidgen computes it, beside torchmetrics used directly.

Both paths use the same digits domain extractor (LeNet-5, trained on first use and cached in the data
folder) on the same real and fake images (the digits test split, and noise-perturbed copies as fakes):

- ``torchmetrics_fid``: ``FrechetInceptionDistance(feature=extractor)`` used directly: update(real),
  update(fake), compute. vidgen's FID (``FIDCallback``) is this call.
- ``vidgen_all``: ``vidgen.metrics.generative.image_metrics``, what ``vidgen-eval`` runs on a generator:
  FID + KID (mean, std) + IS + precision/recall. ``ratio = vidgen_all / torchmetrics_fid``; below 1 is
  the price of the extra metrics (each runs its own pass of the extractor).

images/s counts real + fake images per second. Usage:
``python benchmarks/eval_throughput.py [--num 2000] [--repeats 3] [--data-dir DIR]``; prints a table and
writes ``benchmarks/results/eval_throughput_<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from vidgen.data.digits import DigitsDataModule
from vidgen.metrics.features import domain_feature_extractor
from vidgen.metrics.generative import image_metrics

REPO = Path(__file__).resolve().parents[1]


def best_rate(fn, images: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return images / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000, help="real and fake images each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("VIDGEN_DATA_DIR", str(REPO / "data")))
    args = parser.parse_args()
    torch.manual_seed(0)

    dm = DigitsDataModule(data_dir=args.data_dir)
    extractor = domain_feature_extractor(dm, "digits")
    x = torch.cat([dm.splits[s].tensors[0] for s in ("train", "val", "test")])
    real = x[torch.randint(len(x), (args.num,))]
    fake = (x[torch.randint(len(x), (args.num,))] + 0.3 * torch.randn(args.num, *x.shape[1:])).clamp(-1, 1)

    def torchmetrics_fid() -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        fid = FrechetInceptionDistance(feature=extractor)
        for i in range(0, args.num, 256):
            fid.update(real[i : i + 256], real=True)
            fid.update(fake[i : i + 256], real=False)
        fid.compute()

    def vidgen_all() -> None:
        image_metrics(extractor, [real], [fake], "digits")

    images = 2 * args.num
    rates = {"torchmetrics_fid": best_rate(torchmetrics_fid, images, args.repeats),
             "vidgen_all": best_rate(vidgen_all, images, args.repeats)}  # fmt: skip
    result = {
        "num_real": args.num,
        "num_fake": args.num,
        "torch_threads": torch.get_num_threads(),
        "images_per_s": rates,
        "ratio_vidgen_all_to_torchmetrics_fid": rates["vidgen_all"] / rates["torchmetrics_fid"],
    }
    print(f"{'path':<20} {'images/s':>10}")
    for name, rate in rates.items():
        print(f"{name:<20} {rate:>10.0f}")
    print(f"ratio vidgen_all / torchmetrics_fid = {result['ratio_vidgen_all_to_torchmetrics_fid']:.2f}")
    out = REPO / "benchmarks" / "results" / f"eval_throughput_{time.strftime('%Y-%m-%d_%H-%M-%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
