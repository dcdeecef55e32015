"""Sample media: image grids (PNG), clips (GIF, MP4), and sending them to the loggers that show media.

Every writer of vidgen's outputs goes through here (the sample callbacks, ``vidgen-sample``,
``vidgen-data``), so a file on disk and what W&B or TensorBoard show come from the same pixels.
Grids come from torchvision's ``make_grid``, PNG files from its ``save_image``, GIF frames from Pillow
(a torchvision dependency) and MP4 from ``torchvision.io.write_video`` (which needs PyAV).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from vidgen.value_range import to_unit


def image_grid(images: torch.Tensor, value_range: tuple[float, float], nrow: int) -> torch.Tensor:
    """``(B, C, H, W)`` in ``value_range`` -> one ``(3, H', W')`` float grid in [0, 1]."""
    return make_grid(to_unit(images.float().cpu(), value_range, clamp=True), nrow=nrow)


def write_png(image: torch.Tensor, path: Path) -> Path:
    """A ``(C, H, W)`` float image in [0, 1] -> PNG (8 bits per channel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(image, path)
    return path


def video_to_frames(videos: torch.Tensor, value_range: tuple[float, float], nrow: int) -> torch.Tensor:
    """``(B, T, C, H, W)`` in ``value_range`` -> ``(T, H', W', 3)`` uint8 frames, each a grid of the batch."""
    unit = to_unit(videos.float().cpu(), value_range, clamp=True)
    grids = [make_grid(unit[:, t], nrow=nrow, padding=2, pad_value=0.5) for t in range(unit.shape[1])]
    return (torch.stack(grids) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)


def write_gif(frames: torch.Tensor, path: Path, fps: int) -> Path:
    """``frames (T, H, W, 3)`` uint8 -> looping GIF."""
    from PIL import Image

    images = [Image.fromarray(f.numpy()) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path


def write_mp4(frames: torch.Tensor, path: Path, fps: int) -> Path | None:
    """MP4 through ``torchvision.io.write_video`` when its encoder (PyAV) is installed, else None."""
    try:
        import av  # noqa: F401  # torchvision's video writer needs PyAV
    except ImportError:
        return None
    from torchvision.io import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), frames, fps=fps)
    return path


def log_image(
    loggers: list, key: str, image: torch.Tensor | Path, step: int, caption: str | None = None
) -> None:
    """Sends an image (a ``(C, H, W)`` float tensor in [0, 1], or a PNG file) to W&B and TensorBoard.

    W&B gets 8-bit pixels: ``wandb.Image`` of a float tensor in [0, 1] stores an all-black PNG
    (wandb 0.31 rescales only floats it judges to be outside [0, 1]), which is what vidgen once logged.
    """
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            pixels = str(image) if isinstance(image, Path) else _hwc_uint8(image)
            extra = {} if caption is None else {"caption": [caption]}  # Lightning takes lists or nothing
            logger.log_image(key=key, images=[pixels], step=step, **extra)
        elif isinstance(logger, TensorBoardLogger):
            if isinstance(image, Path):
                from PIL import Image
                from torchvision.transforms.functional import pil_to_tensor

                image = pil_to_tensor(Image.open(image).convert("RGB"))
            logger.experiment.add_image(key, image, global_step=step)


def _hwc_uint8(image: torch.Tensor):
    """A ``(C, H, W)`` float image in [0, 1] as the ``(H, W, C)`` uint8 array ``save_image`` would write."""
    return image.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def log_video(loggers: list, key: str, gif: Path, step: int, fps: int) -> None:
    """Sends a GIF file to W&B as a video."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_video(key=key, videos=[str(gif)], step=step, fps=[fps], format=["gif"])
