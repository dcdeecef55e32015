"""``vidgen-sample ckpt_path=<file> num_samples=64 [format=png|gif|mp4|wav] [labels=[...]] [sampler=...]``.

Rebuilds the model from the checkpoint's saved run config (as ``vidgen-eval`` does), draws samples with a
seeded noise generator and writes them to ``logs/sample/runs/<timestamp>/samples/``: for images a grid
``samples.png`` and ``sample_NNN.png``; for videos ``samples.gif`` (or ``.mp4``) and one file per clip;
for sound (audio families) ``sample_NNN.wav`` and ``samples.png``, the grid of their spectrograms; for
clips with sound (audio-visual families) ``sample_NNN.mp4`` (H.264 + AAC, at the model's frame rate) with
``sample_NNN.gif`` and ``sample_NNN.wav`` beside it, and ``samples.gif``, the silent grid.
Models that continue real clips (frame predictors) continue the first ``num_samples`` test clips.
W&B gets the images or videos and a ``samples`` table (index, label, media), TensorBoard the grid; the
W&B run is named ``<training run> sample`` and shares the training run's group.

Models that sample iteratively (diffusion) take their sampler from the checkpoint's config; ``sampler=``,
``steps=``, ``eta=`` and ``guidance_scale=`` replace ``model.sampler``, ``model.sampling_steps``,
``model.eta`` and ``model.guidance_scale`` for this run (samplers need no retraining). A model whose config
has no such key stops with one message.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from vidgen.callbacks.sample_video import first_samples
from vidgen.config import conf_search_path
from vidgen.errors import ConfigError
from vidgen.media import (
    image_grid,
    log_samples,
    spectrogram_grid,
    video_to_frames,
    write_audio_visual,
    write_gif,
    write_mp4,
    write_png,
    write_wav,
)
from vidgen.run import job_errors_to_log

log = logging.getLogger(__name__)

FORMATS = {"image": ("png",), "video": ("gif", "mp4"), "audio": ("wav",), "audio_visual": ("mp4",)}
# sampling options of this command -> the model config keys they replace
SAMPLING_KEYS = {
    "sampler": "sampler",
    "steps": "sampling_steps",
    "eta": "eta",
    "guidance_scale": "guidance_scale",
}


def with_sampling_options(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the given ``sampler``/``steps``/``eta``/``guidance_scale`` written into its ``model``."""
    given = {option: cfg.get(option) for option in SAMPLING_KEYS if cfg.get(option) is not None}
    for option, value in given.items():
        key = SAMPLING_KEYS[option]
        if key not in cfg.model:
            raise ConfigError(
                f"{option}={value}: the model of this checkpoint ({cfg.model._target_}) has no model.{key}; "
                f"it does not sample iteratively. Fix: drop {option}=."
            )
        cfg.model[key] = value
    return cfg


def draw(model, cfg: DictConfig, datamodule) -> tuple[torch.Tensor, list[int] | None]:
    """``num_samples`` samples of ``model`` and their labels (None for an unconditional model)."""
    num = cfg.num_samples
    noise = torch.Generator().manual_seed(cfg.seed)
    context = None
    if model.context_frames:
        datamodule.setup("test")
        context = first_samples(datamodule.test_dataloader(), num)
    asked = None if cfg.labels is None else torch.tensor([int(v) for v in cfg.labels])
    labels = model.sample_labels(num, asked)
    samples = model.sample(num, generator=noise, labels=labels, context=context)
    return samples, None if labels is None else labels.tolist()


def write(
    samples: torch.Tensor, labels: list[int] | None, cfg: DictConfig, value_range, out: Path, model=None
) -> list[Path]:
    """The files of ``samples`` (grid first) in ``cfg.format``; ``model`` (an audio family's) turns
    samples into sound (``waveforms``, ``sample_rate``); an audio-visual family's pairs give the grid GIF and
    one MP4 with sound per pair (GIF and WAV files are written beside them, not returned)."""
    kind = getattr(model, "data_kind", None) or ("video" if samples.ndim == 5 else "image")
    fmt = cfg.format or FORMATS[kind][0]
    if fmt not in FORMATS[kind]:
        raise ConfigError(
            f"format={fmt} cannot hold {kind}s. Fix: format={'|'.join(FORMATS[kind])} for this model."
        )
    out.mkdir(parents=True, exist_ok=True)
    if kind == "audio_visual":
        # the clips with their sound at the model's own frame rate (cfg.fps would break the alignment)
        files = write_audio_visual(samples, value_range, model.fps, model.sample_rate, out, cfg.nrow)
        if not files["mp4"]:
            raise ConfigError("format=mp4 needs PyAV (pip install av). Fix: pip install av.")
        return files["grid"] + files["mp4"]
    if kind == "audio":
        waves = model.waveforms(samples, generator=torch.Generator().manual_seed(cfg.seed)).cpu()
        files = [write_png(spectrogram_grid(waves, cfg.nrow), out / "samples.png")]
        return files + [
            write_wav(w, out / f"sample_{i:03d}.wav", model.sample_rate) for i, w in enumerate(waves)
        ]
    if kind == "image":
        files = [write_png(image_grid(samples, value_range, cfg.nrow), out / "samples.png")]
        for i, image in enumerate(samples):
            files.append(write_png(image_grid(image[None], value_range, 1), out / f"sample_{i:03d}.png"))
        return files
    writer = write_gif if fmt == "gif" else write_mp4
    grid = writer(video_to_frames(samples, value_range, cfg.nrow), out / f"samples.{fmt}", cfg.fps)
    if grid is None:
        raise ConfigError("format=mp4 needs PyAV (pip install av). Fix: pip install av, or format=gif.")
    files = [writer(video_to_frames(v[None], value_range, 1), out / f"sample_{i:03d}.{fmt}", cfg.fps)
             for i, v in enumerate(samples)]  # fmt: skip
    return [grid, *files]


def sample(cfg: DictConfig) -> list[Path]:
    """Writes the samples of checkpoint ``cfg.ckpt_path``; returns the files written (grid first)."""
    from vidgen.cli.eval import load_weights, with_checkpoint_config
    from vidgen.run import RunContext, load_run_checkpoint
    from vidgen.wandb_run import for_checkpoint

    checkpoint = load_run_checkpoint(cfg.get("ckpt_path"))
    cfg = with_sampling_options(with_checkpoint_config(cfg, checkpoint["vidgen_config"]))
    for_checkpoint(cfg, checkpoint, cfg.ckpt_path)
    with RunContext(cfg) as run:
        model = run.build("model")
        load_weights(model, checkpoint, cfg.ckpt_path)
        model.eval()
        datamodule = run.build("data") if model.context_frames else None
        samples, labels = draw(model, cfg, datamodule)
        files = write(samples, labels, cfg, tuple(cfg.data.value_range), run.output_dir / "samples", model)
        loggers = run.build_collection("logger")
        run.log_config(loggers)
        log_samples(loggers, files, labels)
        log.info(f"{len(files) - 1} samples of {cfg.ckpt_path}: {files[0]}")
        return files


@hydra.main(version_base="1.3", config_path=conf_search_path(), config_name="sample")
def main(cfg: DictConfig) -> None:
    with job_errors_to_log():
        sample(cfg)


if __name__ == "__main__":
    main()
