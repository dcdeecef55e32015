"""``vidgen-data``: what a user checks before training -- sizes, shapes, value range, and a preview.

Usage::

    vidgen-data                                  # every dataset in conf/data/
    vidgen-data mnist moving_digits              # some of them
    vidgen-data image_folder data.root=~/photos data.image_size=64   # overrides, as for vidgen-train
    python -m vidgen.cli.data digits --out previews/

Each dataset is composed from ``conf/data/<name>.yaml`` with Hydra's compose API (the same config
``vidgen-train data=<name>`` uses), set up, and one training batch is drawn. A preview is written to
``<out>/<name>.png`` (an image grid) or ``<out>/<name>.gif`` (a grid of sequences, animated). A missing or
corrupt dataset prints its one-line message; the exit code is 1 if any dataset failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from vidgen.errors import VidgenError
from vidgen.media import image_grid, video_to_frames, write_gif, write_png


def available() -> list[str]:
    from vidgen.config import config_options

    return config_options("data")


def compose_data(name: str, overrides: list[str]) -> Any:
    """The datamodule ``vidgen-train data=<name> <overrides>`` would build."""
    from omegaconf import OmegaConf

    from vidgen.config import build, check_config, compose_config
    from vidgen.errors import ConfigError

    try:
        cfg = compose_config([f"data={name}", *overrides])
    except Exception as e:  # Hydra's MissingConfigException, OverrideParseException, ...
        raise ConfigError(f"{e.__class__.__name__}: {e}".splitlines()[0]) from e
    # Only what data configs refer to: paths.output_dir is the run folder, which only a running job has.
    paths = {k: v for k, v in OmegaConf.to_container(cfg.paths).items() if k != "output_dir"}
    node = OmegaConf.create({"data": OmegaConf.to_container(cfg.data), "paths": paths})
    check_config(node)
    return build(node.data, "data")


def write_preview(x: torch.Tensor, value_range: tuple[float, float], path_stem: Path, nrow: int = 8) -> Path:
    """A PNG grid of images ``(B, C, H, W)`` or an animated GIF of videos ``(B, T, C, H, W)``."""
    if x.ndim == 4:
        return write_png(image_grid(x[: nrow * nrow], value_range, nrow), path_stem.with_suffix(".png"))
    return write_gif(video_to_frames(x[:nrow], value_range, nrow), path_stem.with_suffix(".gif"), fps=7)


def describe(name: str, datamodule: Any, out: Path) -> str:
    """Sets ``datamodule`` up, draws one training batch, writes the preview, returns the report."""
    datamodule.setup("fit")
    sizes = {split: len(ds) for split, ds in datamodule.splits.items()}
    # (x, y), or (video, audio, label) for clips with sound: the preview shows the clips
    batch = next(iter(datamodule.train_dataloader()))
    x, y = batch[0], batch[-1]
    preview = write_preview(x, datamodule.value_range, out / name)
    layout = "(B, C, H, W)" if x.ndim == 4 else "(B, T, C, H, W)"
    lines = [
        f"{name} ({type(datamodule).__name__}, {datamodule.data_kind}s, id {datamodule.dataset_id})",
        "  sizes:       " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()),
        f"  batch x:     {tuple(x.shape)} {layout} {x.dtype}, values [{x.min():.3f}, {x.max():.3f}] "
        f"(value_range {list(datamodule.value_range)})",
        f"  batch y:     {tuple(y.shape)} {y.dtype}, {datamodule.num_classes} classes, {y[:8].tolist()}...",
        f"  data_dir:    {datamodule.data_dir}",
        f"  checksum:    {datamodule.checksum[:16]}",
        f"  preview:     {preview}",
    ]
    if len(batch) == 3:
        a = batch[1]
        lines.insert(
            4,
            f"  batch audio: {tuple(a.shape)} (B, 1, L) {a.dtype}, values [{a.min():.3f}, "
            f"{a.max():.3f}] at {datamodule.sample_rate} Hz, {datamodule.fps} frames per second",
        )
    if hasattr(datamodule, "num_input_frames"):
        lines.insert(
            4, f"  frames:      {datamodule.num_input_frames} input + {datamodule.num_output_frames} target"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(
        prog="vidgen-data",
        description="Print each dataset's sizes, shapes and value range, and write a preview grid (images) "
        "or GIF (videos). Datasets are the files of conf/data/; overrides are key=value as for vidgen-train.",
        epilog="Example: vidgen-data mnist moving_digits data.batch_size=16 --out previews/",
    )
    parser.add_argument("args", nargs="*", help=f"dataset names ({', '.join(names)}) and key=value overrides")
    parser.add_argument("--out", default="logs/data", help="folder of the previews (default: logs/data)")
    ns = parser.parse_args(argv)
    chosen = [a for a in ns.args if "=" not in a] or names
    overrides = [a for a in ns.args if "=" in a]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        print(
            f"vidgen-data: unknown dataset {', '.join(unknown)}; choose from {', '.join(names)}.",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for name in chosen:
        mine = overrides
        if len(chosen) > 1:  # `vidgen-data data.download=false` applies to the datasets that have the key
            from vidgen.config import read_config_file

            keys = read_config_file(f"data/{name}.yaml").keys()
            mine = [o for o in overrides if not o.startswith("data.") or o[5:].split("=")[0] in keys]
        try:
            print(describe(name, compose_data(name, mine), Path(ns.out)), flush=True)
        except VidgenError as e:
            failed += 1
            print(f"{name}: {e}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
