"""Samples/s of each datamodule (2 DataLoader workers) against what its default model consumes per second.

For every dataset in conf/data/ whose files are available: draws training batches from the real
datamodule and measures samples/s; then trains the default model for that kind of data (``dcgan`` for
images, the first video model in conf/model/ for videos) with Lightning on one repeated batch of that
data and measures its steps/s. ``ratio = data samples/s / (model steps/s * batch size)``: above 1 the
data keeps up; the target is >= 10 so that loading never shows in a training run on this machine.

Usage: ``python benchmarks/data_throughput.py [--quick] [--data-dir DIR] [names ...]``. Prints a table
and writes ``benchmarks/results/data_throughput_<time>.json``. Real data comes from ``--data-dir``
(default ``$VIDGEN_DATA_DIR``, else ``<repo>/../shared/data``); datasets without files are reported as
skipped with their DataError. ``image_folder`` runs on ``<data-dir>/cifar10-jpg`` when present.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import get_object, instantiate

from common import REPO, TARGETS, fmt_ratio
from vidgen.cli.data import available, compose_data
from vidgen.config import _options_with, compose_config, read_config_file
from vidgen.errors import VidgenError


def data_rate(dm, batches: int) -> float:
    loader = dm.train_dataloader()
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += len(batch[0])  # (x, y), or (video, audio, y) of the audio-visual data
    return n / (time.perf_counter() - start)


class _StepTimer(L.Callback):
    def __init__(self, skip: int):
        self.skip, self.start, self.steps = skip, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.skip:
            self.steps += 1
            self.end = time.perf_counter()
            if self.end - self.start > 15:  # enough for a rate; bounds the section for slow video models
                trainer.should_stop = True


# the model that stands for each kind of data (the first model of the kind, alphabetically, otherwise)
DEFAULT_MODELS = {"image": "dcgan", "audio": "wavegan", "audio_visual": "talking_digits_gan"}


def default_model(kind: str) -> tuple[str | None, str | None]:
    """A model of ``conf/model/`` that trains on ``kind`` data, and a loss it trains with."""
    models = _options_with("model", "data_kind", kind)
    if not models:
        return None, None
    name = DEFAULT_MODELS[kind] if DEFAULT_MODELS.get(kind) in models else models[0]
    cls = get_object(read_config_file(f"model/{name}.yaml")._target_)
    losses = _options_with("loss", "kind", getattr(cls, "loss_kind", ""))  # vidgen.families.base
    return name, (losses[0] if losses else None)


def model_rate(name: str, overrides: list[str], batch: tuple, kind: str, steps: int) -> tuple[str, float]:
    model_name, loss = default_model(kind)
    if model_name is None:
        return "none yet", float("nan")
    over = [f"data={name}", f"model={model_name}", *([f"loss={loss}"] if loss else []), "~callbacks"]
    cfg = compose_config(over + overrides, "train")
    model = instantiate(cfg.model)
    timer = _StepTimer(skip=1)
    trainer = L.Trainer(
        max_steps=steps + 1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", callbacks=[timer], limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader([batch] * (steps + 1), batch_size=None))
    return model_name, timer.steps / (timer.end - timer.start)


def measure(names: list[str], quick: bool, data_dir: str) -> list[dict]:
    """One row per dataset: data samples/s (2 workers), the default model's samples/s, and their ratio."""
    previous = os.environ.get("VIDGEN_DATA_DIR")
    # conf/paths/default.yaml reads the data folder from here. Restored after, because bench.py runs
    # more sections in this process, and they must not cache the FID classifier in the shared data.
    os.environ["VIDGEN_DATA_DIR"] = data_dir
    try:
        return [measure_one(name, quick, data_dir) for name in names or available()]
    finally:
        if previous is None:
            del os.environ["VIDGEN_DATA_DIR"]
        else:
            os.environ["VIDGEN_DATA_DIR"] = previous


def measure_one(name: str, quick: bool, data_dir: str) -> dict:
    data_batches, model_steps = (8, 2) if quick else (40, 10)
    over = ["data.num_workers=2"]
    keys = read_config_file(f"data/{name}.yaml").keys()
    if "download" in keys:
        over.append("data.download=false")
    if name == "image_folder":
        over += [f"data.root={Path(data_dir) / 'cifar10-jpg'}", "data.image_size=32"]
    try:
        dm = compose_data(name, over)
        dm.setup("fit")
    except VidgenError as e:
        print(f"{name}: skipped ({str(e)[:120]}...)", flush=True)
        return {"data": name, "skipped": str(e)[:160]}
    rate = data_rate(dm, data_batches)
    batch = next(iter(dm.train_dataloader()))
    model, steps = model_rate(
        name, [o for o in over if o != "data.num_workers=2"], batch, dm.data_kind, model_steps
    )
    consumed = steps * dm.batch_size
    ratio = rate / consumed if consumed == consumed else None  # NaN: no model for this data yet
    print(f"{name}: {rate:,.0f} samples/s; {model} {steps:.2f} steps/s", flush=True)
    return {"data": name, "kind": dm.data_kind, "batch_shape": list(batch[0].shape), "workers": 2,
            "data_samples_per_s": rate, "model": model, "model_steps_per_s": steps,
            "model_samples_per_s": consumed, "ratio": ratio}  # fmt: skip


def table_rows(rows: list[dict]) -> list[str]:
    target = TARGETS["data_headroom"]
    lines = []
    for row in rows:
        if "skipped" in row:
            why = row["skipped"][:70]
            lines.append(f"| data_headroom | {row['data']} | skipped | ≥ {target:g} | {why} |")
            continue
        lines.append(
            f"| data_headroom | {row['data']} ({row['model']}) | {fmt_ratio(row['ratio'], target)} | "
            f"≥ {target:g} | {row['data_samples_per_s']:,.0f} / {row['model_samples_per_s']:,.1f} samples/s |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="datasets (default: all in conf/data/)")
    parser.add_argument("--quick", action="store_true", help="fewer batches and steps")
    shared = REPO.parent / "shared" / "data"
    parser.add_argument("--data-dir", default=os.environ.get("VIDGEN_DATA_DIR") or str(shared))
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    rows = measure(args.names, args.quick, args.data_dir)
    print(
        f"\n{'data':<18}{'batch':<22}{'data samples/s':>16}{'model':>20}{'model samples/s':>17}{'ratio':>8}"
    )
    for r in rows:
        if "skipped" in r:
            print(f"{r['data']:<18}skipped: {r['skipped'][:90]}")
            continue
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] is not None else "n/a"
        print(f"{r['data']:<18}{str(tuple(r['batch_shape'])):<22}{r['data_samples_per_s']:>16,.0f}{r['model']:>20}"
              f"{r['model_samples_per_s']:>17,.0f}{ratio:>8}")  # fmt: skip
    out = REPO / "benchmarks" / "results" / f"data_throughput_{time.strftime('%Y%m%d_%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"quick": args.quick, "data_dir": args.data_dir, "torch_threads": torch.get_num_threads()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
