"""Evaluation throughput: images/s through FID as vidgen computes it, beside torchmetrics used directly,
and frames/s of the frame-prediction metrics.

The image paths use the same digits domain extractor (LeNet-5, trained on first use and cached in the
data folder) on the same real and fake images (the digits images, and noise-perturbed copies as fakes):

- ``torchmetrics_fid``: ``FrechetInceptionDistance(feature=extractor)`` used directly: update(real),
  update(fake), compute: the value vidgen's FID has (``vidgen.metrics.sample_quality.frechet_distance``).
- ``vidgen_fid``: ``vidgen.metrics.sample_quality.sample_quality`` with FID alone, the same metric set:
  ``eval_ratio = vidgen_fid / torchmetrics_fid`` (the headline; target 0.9).
- ``vidgen_all``: the same with all of ``IMAGE_METRICS``, what ``vidgen-eval`` runs on a generator: FID +
  KID (mean, std) + IS + precision/recall; they share one pass of the extractor over each image, and
  ``metric_seconds`` says what each costs on its own (FID alone, and each other metric alone), so the
  gap between ``vidgen_all`` and FID alone is explained metric by metric.
- ``frame_metrics``: ``vidgen.metrics.frames.frame_metrics`` (OpenSTL's MSE/MAE/PSNR/SSIM and the
  per-step curves) on Moving-MNIST-sized predictions, 10 frames of 64x64, in frames/s.

images/s counts real + fake images per second; each figure is the best of ``repeats`` rounds in which
the paths take turns. Usage:
``python benchmarks/eval_throughput.py [--num 2000] [--repeats 3] [--data-dir DIR]``; prints a table and
writes ``benchmarks/results/eval_throughput_<time>.json``. ``make bench`` calls ``measure`` and
``table_rows``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from common import TARGETS, fmt_ratio

REPO = Path(__file__).resolve().parents[1]


def best_rate(fn: Callable[[], object], items: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return items / min(times)


def alternating_best(paths: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """The best seconds of each path over ``repeats`` rounds in which every path runs once, in turn."""
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def measure(num: int, repeats: int, data_dir: str, videos: int = 32) -> dict:
    """Images/s of FID (torchmetrics directly and vidgen's full set) and frames/s of the frame metrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    from vidgen.data.digits import DigitsDataModule
    from vidgen.metrics.feature_spaces import feature_space
    from vidgen.metrics.frames import frame_metrics
    from vidgen.metrics.sample_quality import IMAGE_METRICS, sample_quality

    g = torch.Generator().manual_seed(0)
    dm = DigitsDataModule(data_dir=data_dir)
    extractor = feature_space(dm)  # the digits LeNet-5 (dm.feature_extractor == "digits")
    x = torch.cat([dm.splits[s].tensors[0] for s in ("train", "val", "test")])
    real = x[torch.randint(len(x), (num,), generator=g)]
    noise = torch.randn(num, *x.shape[1:], generator=g)
    fake = (x[torch.randint(len(x), (num,), generator=g)] + 0.3 * noise).clamp(-1, 1)

    def torchmetrics_fid() -> None:
        fid = FrechetInceptionDistance(feature=extractor)
        for i in range(0, num, 256):
            fid.update(real[i : i + 256], real=True)
            fid.update(fake[i : i + 256], real=False)
        fid.compute()

    target = torch.rand(videos, 10, 1, 64, 64, generator=g)
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)

    def vidgen(metrics: tuple[str, ...]) -> Callable[[], object]:
        return lambda: sample_quality(extractor, real, fake, metrics)

    # the paths take turns within each repeat, so a burst of other work or a warm cache favours none
    paths = {"torchmetrics_fid": torchmetrics_fid, "vidgen_fid": vidgen(("fid",)),
             "vidgen_all": vidgen(IMAGE_METRICS), **{m: vidgen((m,)) for m in IMAGE_METRICS}}  # fmt: skip
    best = alternating_best(paths, repeats)
    rates = {k: 2 * num / best[k] for k in ("torchmetrics_fid", "vidgen_fid", "vidgen_all")}
    metric_seconds = {m: best[m] for m in IMAGE_METRICS}
    return {
        "num_real": num,
        "num_fake": num,
        "torch_threads": torch.get_num_threads(),
        "images_per_s": rates,
        "eval_ratio": rates["vidgen_fid"] / rates["torchmetrics_fid"],
        "ratio_vidgen_all_to_torchmetrics_fid": rates["vidgen_all"] / rates["torchmetrics_fid"],
        "metric_seconds": metric_seconds,
        "frame_metrics_frames_per_s": best_rate(lambda: frame_metrics(pred, target), videos * 10, repeats),
        "frame_metrics_shape": list(pred.shape),
    }


def table_rows(e: dict) -> list[str]:
    """The rows of ``bench.py``'s table for one result of ``measure``."""
    rates = e["images_per_s"]
    alone = ", ".join(f"{m} {sec:.2f} s" for m, sec in e["metric_seconds"].items())
    return [
        f"| eval images/s | FID, torchmetrics directly | {rates['torchmetrics_fid']:,.0f} | -- | "
        f"{e['num_real']} real + {e['num_fake']} fake, digits LeNet-5 features |",
        f"| eval_ratio | FID through vidgen / torchmetrics | "
        f"{fmt_ratio(e['eval_ratio'], TARGETS['eval_ratio'])} | ≥ {TARGETS['eval_ratio']:g} | "
        f"{rates['vidgen_fid']:,.0f} vs {rates['torchmetrics_fid']:,.0f} "
        "images/s, the same metric |",
        f"| eval images/s | vidgen-eval image metrics | {rates['vidgen_all']:,.0f} | -- | FID+KID+IS+"
        f"precision/recall: x{e['ratio_vidgen_all_to_torchmetrics_fid']:.2f} of torchmetrics' FID alone; "
        f"each metric alone (extractor pass included): {alone} |",
        f"| eval frames/s | frame metrics (OpenSTL) | {e['frame_metrics_frames_per_s']:,.0f} | -- | "
        f"videos {'x'.join(map(str, e['frame_metrics_shape']))} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000, help="real and fake images each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("VIDGEN_DATA_DIR", str(REPO / "data")))
    args = parser.parse_args()
    result = measure(args.num, args.repeats, args.data_dir)
    print(f"{'path':<20} {'images/s':>10}")
    for name, rate in result["images_per_s"].items():
        print(f"{name:<20} {rate:>10.0f}")
    print(f"ratio vidgen_all / torchmetrics_fid = {result['ratio_vidgen_all_to_torchmetrics_fid']:.2f}")
    print(f"frame metrics: {result['frame_metrics_frames_per_s']:.0f} frames/s")
    out = REPO / "benchmarks" / "results" / f"eval_throughput_{time.strftime('%Y-%m-%d_%H-%M-%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
