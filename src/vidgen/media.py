"""Sample media: image grids (PNG), clips (GIF, MP4), sound (WAV, with spectrogram images), and sending
them to the loggers that show media.

Every writer of vidgen's outputs goes through here (the sample callbacks, the frame curves of
``vidgen-eval``, ``vidgen-sample``, ``vidgen-data``), so a file on disk and what W&B or TensorBoard show
are the same pixels: 8-bit arrays rounded as the PNG is, or the bytes of the file itself.
Grids come from torchvision's ``make_grid``, PNG files from its ``save_image``, GIF frames from Pillow
(a torchvision dependency), MP4 from ``torchvision.io.write_video`` (which needs PyAV) and WAV (RIFF,
mono 16-bit PCM) from ``scipy.io.wavfile`` (``vidgen.audio`` says why not torchaudio).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from vidgen.audio import stft
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


def write_wav(wave: torch.Tensor, path: Path, sample_rate: int) -> Path:
    """A waveform ``(L,)`` or ``(1, L)`` in [-1, 1] -> mono 16-bit PCM WAV at ``sample_rate``.

    Samples are ``round(x * 32768)`` clipped to the int16 range, the inverse of reading ``int16 / 32768``
    (as FSDD is read), so a real clip written back gives the recording's own samples.
    """
    from scipy.io import wavfile

    if wave.ndim == 2 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.ndim != 1:
        raise ValueError(f"write_wav writes one mono waveform (L,) or (1, L), got {tuple(wave.shape)}")
    pcm = (wave.detach().float().cpu() * 32768).round().clamp(-32768, 32767).to(torch.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, sample_rate, pcm.numpy())
    return path


def spectrogram_grid(waves: torch.Tensor, nrow: int, n_fft: int = 256, hop_length: int = 128) -> torch.Tensor:
    """Waveforms ``(B, 1, L)`` -> one ``(3, H', W')`` grid in [0, 1] of their log-magnitude spectrograms,
    for people who would rather look than listen: low frequencies at the bottom, time to the right, each
    spectrogram scaled over the 80 dB below its own peak (black: quiet, white: loud)."""
    magnitude = stft(waves.detach().float().cpu().flatten(0, 1), n_fft, hop_length).abs()
    decibels = 20 * torch.log10(magnitude.clamp_min(1e-5))
    peak = decibels.amax(dim=(1, 2), keepdim=True)
    unit = ((decibels - peak + 80) / 80).clamp(0, 1).flip(1)
    return make_grid(unit.unsqueeze(1), nrow=nrow, padding=2, pad_value=0.5)


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


def log_audio(loggers: list, key: str, wav: Path, step: int, caption: str | None = None) -> None:
    """Sends a WAV file to W&B (``wandb.Audio`` of the file) and TensorBoard (an audio summary, what
    ``SummaryWriter.add_audio`` writes, holding the file's own bytes: ``add_audio`` would re-encode
    floats by truncation, which can change a sample by one step)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            extra = {} if caption is None else {"caption": [caption]}
            logger.log_audio(key=key, audios=[str(wav)], step=step, **extra)
        elif isinstance(logger, TensorBoardLogger):
            _tensorboard_audio(logger, key, wav, step)


def _tensorboard_audio(logger, key: str, wav: Path, step: int) -> None:
    import wave

    from tensorboard.compat.proto.summary_pb2 import Summary

    with wave.open(str(wav), "rb") as opened:
        rate, channels, frames = opened.getframerate(), opened.getnchannels(), opened.getnframes()
    audio = Summary.Audio(sample_rate=rate, num_channels=channels, length_frames=frames,
                          encoded_audio_string=wav.read_bytes(), content_type="audio/wav")  # fmt: skip
    logger.experiment._get_file_writer().add_summary(
        Summary(value=[Summary.Value(tag=key, audio=audio)]), step
    )


#: The W&B media type of each file vidgen writes.
_WANDB_MEDIA = {".png": "Image", ".gif": "Video", ".mp4": "Video", ".wav": "Audio"}


def log_samples(loggers: list, files: list[Path], labels: list[int] | None) -> None:
    """``vidgen-sample``'s files (the grid first, then one per sample: PNG, GIF/MP4, or WAV beside a grid of
    their spectrograms): W&B gets the grid as ``samples`` and a ``samples_table`` (index, label, sample),
    TensorBoard the grid as ``samples`` and each WAV as ``sample_NNN``."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            def media(f: Path):  # a file: its own frame rate or sample rate
                return getattr(wandb, _WANDB_MEDIA[f.suffix])(str(f))

            rows = [[i, labels[i] if labels else None, media(f)] for i, f in enumerate(files[1:])]
            table = wandb.Table(["index", "label", "sample"], rows)
            logger.experiment.log({"samples": media(files[0]), "samples_table": table})
        elif isinstance(logger, TensorBoardLogger):
            if files[0].suffix in (".png", ".gif"):
                _tensorboard_file(logger, "samples", files[0], 0)
            for f in files[1:]:
                if f.suffix == ".wav":
                    _tensorboard_audio(logger, f.stem, f, 0)
