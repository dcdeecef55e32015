"""Sample media: image grids (PNG), clips (GIF, MP4), sound (WAV, with spectrogram images), and sending
them to the loggers that show media.

Every writer of vidgen's outputs goes through here (the sample callbacks, the frame curves of
``vidgen-eval``, ``vidgen-sample``, ``vidgen-data``), so a file on disk and what W&B or TensorBoard show
are the same pixels: 8-bit arrays rounded as the PNG is, or the bytes of the file itself.
Grids come from torchvision's ``make_grid``, PNG files from its ``save_image``, GIF frames from Pillow
(a torchvision dependency), MP4 (H.264, with an AAC sound track when given one) from PyAV directly
(``torchvision.io.write_video`` is gone from torchvision 0.24 on) and WAV (RIFF, mono 16-bit PCM) from
``scipy.io.wavfile`` (``vidgen.audio`` says why not torchaudio).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from vidgen.audio import stft
from vidgen.audio_visual import AudioVisual
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


def write_gif(frames: torch.Tensor, path: Path, fps: float | Fraction) -> Path:
    """``frames (T, H, W, 3)`` uint8 -> looping GIF (frame durations are whole milliseconds)."""
    from PIL import Image

    images = [Image.fromarray(f.numpy()) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path


def write_mp4(
    frames: torch.Tensor,
    path: Path,
    fps: float | Fraction,
    audio: torch.Tensor | None = None,
    sample_rate: int | None = None,
) -> Path | None:
    """``frames (T, H, W, 3)`` uint8 -> H.264 MP4 through PyAV, with ``audio`` (a mono waveform ``(L,)`` or
    ``(1, L)`` in [-1, 1] at ``sample_rate``) as an AAC track when given; None when PyAV is not installed.

    ``fps`` may be a fraction (the talking digits' 125/16 = 8 frames per 1.024 s): it is kept exact as the
    stream's rate, so video and sound end together. Frames of odd size are padded by one black row or
    column, since H.264's 4:2:0 chroma needs even sides; ``yuv420p`` is what every player decodes.
    """
    try:
        import av
    except ImportError:
        return None
    if audio is not None and sample_rate is None:
        raise ValueError("write_mp4 needs the sample_rate of its audio")
    frames = frames.cpu()
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = torch.nn.functional.pad(frames, (0, 0, 0, pad_w, 0, pad_h))
    rate = Fraction(fps).limit_denominator(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.height, video.width, video.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        for image in frames.numpy():
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            wave = audio.detach().float().cpu().reshape(1, -1).clamp(-1, 1).contiguous().numpy()
            chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = sample_rate, 0
            container.mux(sound.encode(chunk))  # PyAV cuts it into the encoder's 1,024-sample frames
            container.mux(sound.encode())
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


def log_video(loggers: list, key: str, gif: Path, step: int, mp4: Path | None = None) -> None:
    """Sends a GIF file to W&B (as a video) and to TensorBoard (an animated image), both its own bytes;
    its frame rate is the file's (W&B warns that an ``fps`` given with a file changes nothing). With ``mp4``
    (e.g. a clip with its sound track) W&B gets that file instead; TensorBoard shows only images."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            shown = gif if mp4 is None else mp4
            logger.log_video(key=key, videos=[str(shown)], step=step, format=[shown.suffix[1:]])
        elif isinstance(logger, TensorBoardLogger):
            _tensorboard_file(logger, key, gif, step)


def write_audio_visual(
    pairs: AudioVisual,
    value_range: tuple[float, float],
    fps: Fraction,
    sample_rate: int,
    folder: Path,
    nrow: int,
) -> dict[str, list[Path]]:
    """Files of a batch of (clip, sound) pairs in ``folder``: ``samples.gif`` (a grid of the clips, silent),
    and per pair ``sample_KKK.mp4`` (H.264 + AAC: the clip with its sound; none without PyAV),
    ``sample_KKK.gif`` and ``sample_KKK.wav``. Returns ``{"grid": [...], "mp4": [...], "gif": [...],
    "wav": [...]}``."""
    pairs = pairs.cpu()
    files: dict[str, list[Path]] = {"grid": [], "mp4": [], "gif": [], "wav": []}
    files["grid"].append(
        write_gif(video_to_frames(pairs.video, value_range, nrow), folder / "samples.gif", fps)
    )
    for k, (clip, sound) in enumerate(zip(pairs.video, pairs.audio, strict=True)):
        frames = video_to_frames(clip[None], value_range, 1)
        files["gif"].append(write_gif(frames, folder / f"sample_{k:03d}.gif", fps))
        files["wav"].append(write_wav(sound, folder / f"sample_{k:03d}.wav", sample_rate))
        mp4 = write_mp4(frames, folder / f"sample_{k:03d}.mp4", fps, audio=sound, sample_rate=sample_rate)
        if mp4 is not None:
            files["mp4"].append(mp4)
    return files


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
