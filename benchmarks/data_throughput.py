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
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from vidgen.cli.data import available, compose_data
from vidgen.config import _options_with, conf_dir
from vidgen.errors import VidgenError

REPO = Path(__file__).resolve().parents[1]


def data_rate(dm, batches: int) -> float:
    loader = dm.train_dataloader()
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        n += len(x)
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
            if self.end - self.start > 15:  # enough for a rate; slow video models take seconds per step
                trainer.should_stop = True


def default_model(kind: str) -> tuple[str | None, str | None]:
    models = ["dcgan"] if kind == "image" else _options_with("model", "data_kind", "video")
    if not models:
        return None, None
    cls = get_object(OmegaConf.load(Path(conf_dir(), "model", f"{models[0]}.yaml"))._target_)
    losses = _options_with("loss", "family", getattr(cls, "loss_family", getattr(cls, "family", "")))
    return models[0], (losses[0] if losses else None)


def model_rate(name: str, overrides: list[str], batch: tuple, kind: str, steps: int) -> tuple[str, float]:
    model_name, loss = default_model(kind)
    if model_name is None:
        return "none yet", float("nan")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        over = [f"data={name}", f"model={model_name}", *([f"loss={loss}"] if loss else []), "~callbacks"]
        cfg = compose("train", overrides=over + overrides)
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
    os.environ["VIDGEN_DATA_DIR"] = data_dir
    data_batches, model_steps = (8, 2) if quick else (40, 10)
    rows = []
    for name in names or available():
        over = ["data.num_workers=2"]
        keys = OmegaConf.load(Path(conf_dir(), "data", f"{name}.yaml")).keys()
        if "download" in keys:
            over.append("data.download=false")
        if name == "image_folder":
            over += [f"data.root={Path(data_dir) / 'cifar10-jpg'}", "data.image_size=32"]
        try:
            dm = compose_data(name, over)
            dm.setup("fit")
        except VidgenError as e:
            rows.append({"data": name, "skipped": str(e)[:160]})
            print(f"{name}: skipped ({str(e)[:120]}...)", flush=True)
            continue
        rate = data_rate(dm, data_batches)
        batch = next(iter(dm.train_dataloader()))
        model, steps = model_rate(
            name, [o for o in over if o != "data.num_workers=2"], batch, dm.data_kind, model_steps
        )
        consumed = steps * dm.batch_size
        ratio = rate / consumed if consumed == consumed else None  # NaN: no model for this data yet
        rows.append({"data": name, "kind": dm.data_kind, "batch_shape": list(batch[0].shape), "workers": 2,
                     "data_samples_per_s": rate, "model": model, "model_steps_per_s": steps,
                     "model_samples_per_s": consumed, "ratio": ratio})  # fmt: skip
        print(f"{name}: {rate:,.0f} samples/s; {model} {steps:.2f} steps/s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="datasets (default: all in conf/data/)")
    parser.add_argument("--quick", action="store_true", help="fewer batches and steps (about a minute)")
    shared = REPO.parent / "shared" / "data"
    parser.add_argument("--data-dir", default=os.environ.get("VIDGEN_DATA_DIR") or str(shared))
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    rows = measure(args.names, args.quick, args.data_dir)
    print(
        f"\n{'data':<14}{'batch':<22}{'data samples/s':>16}{'model':>12}{'model samples/s':>17}{'ratio':>8}"
    )
    for r in rows:
        if "skipped" in r:
            print(f"{r['data']:<14}skipped: {r['skipped'][:90]}")
            continue
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] is not None else "n/a"
        print(f"{r['data']:<14}{str(tuple(r['batch_shape'])):<22}{r['data_samples_per_s']:>16,.0f}{r['model']:>12}"
              f"{r['model_samples_per_s']:>17,.0f}{ratio:>8}")  # fmt: skip
    out = REPO / "benchmarks" / "results" / f"data_throughput_{time.strftime('%Y%m%d_%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"quick": args.quick, "data_dir": args.data_dir, "torch_threads": torch.get_num_threads()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
