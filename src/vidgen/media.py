"""Sample media: image grids (PNG), clips (GIF, MP4), and sending them to the loggers that show media.

Every writer of vidgen's outputs goes through here (the sample callbacks, the frame curves of
``vidgen-eval``, ``vidgen-sample``, ``vidgen-data``), so a file on disk and what W&B or TensorBoard show
are the same pixels: 8-bit arrays rounded as the PNG is, or the bytes of the file itself.
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

    Both get the 8-bit pixels the PNG on disk has (a file: its own bytes): ``wandb.Image`` of a float
    tensor in [0, 1] stores an all-black PNG (wandb 0.31 rescales only floats it judges to be outside
    [0, 1]), which is what vidgen once logged, and TensorBoard truncates floats where ``save_image`` rounds.
    """
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    pixels = None if isinstance(image, Path) else _hwc_uint8(image)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            extra = {} if caption is None else {"caption": [caption]}  # Lightning takes lists or nothing
            logger.log_image(key=key, images=[str(image) if pixels is None else pixels], step=step, **extra)
        elif isinstance(logger, TensorBoardLogger) and pixels is None:
            _tensorboard_file(logger, key, image, step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, pixels, global_step=step, dataformats="HWC")


def _hwc_uint8(image: torch.Tensor):
    """A ``(C, H, W)`` float image in [0, 1] as the ``(H, W, C)`` uint8 array ``save_image`` would write."""
    return image.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _tensorboard_file(logger, key: str, path: Path, step: int) -> None:
    """Writes an image file (PNG, or an animated GIF) into TensorBoard's event file as it is.

    TensorBoard's image summaries hold encoded images and its Images tab plays animated GIFs: this is what
    ``SummaryWriter.add_video`` writes, after encoding the GIF itself with moviepy; here the bytes are
    the file vidgen wrote, so TensorBoard shows exactly its frames.
    """
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    with Image.open(path) as opened:
        width, height = opened.size
    encoded = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=path.read_bytes())
    summary = Summary(value=[Summary.Value(tag=key, image=encoded)])
    logger.experiment._get_file_writer().add_summary(summary, step)


def log_video(loggers: list, key: str, gif: Path, step: int) -> None:
    """Sends a GIF file to W&B (as a video) and to TensorBoard (an animated image), both its own bytes;
    its frame rate is the file's (W&B warns that an ``fps`` given with a file changes nothing)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_video(key=key, videos=[str(gif)], step=step, format=["gif"])
        elif isinstance(logger, TensorBoardLogger):
            _tensorboard_file(logger, key, gif, step)


def log_samples(loggers: list, files: list[Path], labels: list[int] | None) -> None:
    """``vidgen-sample``'s files (the grid first, then one per sample, PNG or GIF/MP4): W&B gets the grid
    as ``samples`` and a ``samples_table`` (index, label, sample), TensorBoard the grid as ``samples``."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            media = wandb.Image if files[0].suffix == ".png" else wandb.Video  # a file: its own frame rate
            rows = [[i, labels[i] if labels else None, media(str(f))] for i, f in enumerate(files[1:])]
            table = wandb.Table(["index", "label", "sample"], rows)
            logger.experiment.log({"samples": media(str(files[0])), "samples_table": table})
        elif isinstance(logger, TensorBoardLogger) and files[0].suffix in (".png", ".gif"):
            _tensorboard_file(logger, "samples", files[0], 0)
