"""``vidgen-data``: what a user checks before training -- sizes, shapes, value range, and a preview.

Usage::

    vidgen-data                                  # every dataset in conf/data/
    vidgen-data mnist moving_digits              # some of them
    vidgen-data image_folder data.root=~/photos data.image_size=64   # overrides, as for vidgen-train
    python -m vidgen.data digits --out previews/

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


def available() -> list[str]:
    from vidgen.config import conf_dir

    return sorted(p.stem for p in Path(conf_dir(), "data").glob("*.yaml"))


def compose_data(name: str, overrides: list[str]) -> Any:
    """The datamodule ``vidgen-train data=<name> <overrides>`` would build."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from vidgen.config import build, check_config, conf_dir
    from vidgen.errors import ConfigError

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            cfg = compose("train", overrides=[f"data={name}", *overrides])
    except Exception as e:  # Hydra's MissingConfigException, OverrideParseException, ...
        raise ConfigError(f"{e.__class__.__name__}: {e}".splitlines()[0]) from e
    # Only what data configs refer to: paths.output_dir needs a running Hydra job.
    paths = {k: v for k, v in OmegaConf.to_container(cfg.paths).items() if k != "output_dir"}
    node = OmegaConf.create({"data": OmegaConf.to_container(cfg.data), "paths": paths})
    check_config(node)
    return build(node.data, "data")


def to_unit(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    lo, hi = value_range
    return ((x.float() - lo) / (hi - lo)).clamp(0, 1)


def write_preview(x: torch.Tensor, value_range: tuple[float, float], path_stem: Path, nrow: int = 8) -> Path:
    """A PNG grid of images ``(B, C, H, W)`` or an animated GIF of videos ``(B, T, C, H, W)``."""
    from PIL import Image
    from torchvision.utils import make_grid

    path_stem.parent.mkdir(parents=True, exist_ok=True)

    def frame(images: torch.Tensor) -> Image.Image:
        grid = make_grid(to_unit(images, value_range), nrow=nrow, padding=2, pad_value=1.0)
        return Image.fromarray((grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())

    if x.ndim == 4:
        path = path_stem.with_suffix(".png")
        frame(x[: nrow * nrow]).save(path)
    else:
        path = path_stem.with_suffix(".gif")
        videos = x[:nrow]
        frames = [frame(videos[:, t]) for t in range(videos.shape[1])]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=150, loop=0)
    return path


def describe(name: str, datamodule: Any, out: Path) -> str:
    """Sets ``datamodule`` up, draws one training batch, writes the preview, returns the report."""
    datamodule.setup("fit")
    sizes = {split: len(ds) for split, ds in datamodule.splits.items()}
    x, y = next(iter(datamodule.train_dataloader()))
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
            from omegaconf import OmegaConf

            from vidgen.config import conf_dir

            keys = OmegaConf.load(Path(conf_dir(), "data", f"{name}.yaml")).keys()
            mine = [o for o in overrides if not o.startswith("data.") or o[5:].split("=")[0] in keys]
        try:
            print(describe(name, compose_data(name, mine), Path(ns.out)), flush=True)
        except VidgenError as e:
            failed += 1
            print(f"{name}: {e}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
