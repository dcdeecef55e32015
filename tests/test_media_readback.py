"""What W&B and TensorBoard show is what vidgen wrote to disk: media read back from the run's offline W&B
folder and TensorBoard event file, compared pixel by pixel with the PNG/GIF files in ``samples/``.

vidgen once logged every sample grid to W&B as an all-black PNG (``wandb.Image`` of a float tensor in
[0, 1]) while the files on disk were fine; these tests compare the pixels, not only that a key exists.
GIFs: W&B and TensorBoard are given the bytes of the GIF vidgen wrote, so their frames equal the file's
frames exactly (tolerance 0); the palette quantisation of the GIF itself happens once, before both.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vidgen.cli.eval import evaluate
from vidgen.cli.sample import sample
from vidgen.cli.train import train

from conftest import TINY, compose_train
from wandb_records import history_rows, records_of, run_record, wandb_file

# W&B (offline) + CSV, and TensorBoard
MEDIA_LOGGERS = "logger=[many,tensorboard]"
QUIET = [o for o in TINY if o != "logger=csv"]
# No FID: these runs need no feature network (the checkpoint callback keeps the last epoch)
NO_FID = ["~callbacks.fid", "callbacks.model_checkpoint.monitor=null"]
VIDEO_DATA = ["data=moving_digits", "data.batch_size=4", "data.num_train=8", "data.num_val=4",
              "data.num_test=8", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
              "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
              "trainer.enable_model_summary=false"]  # fmt: skip


def pixels(image: Path | bytes) -> np.ndarray:
    """An image file (or its bytes) as an ``(H, W, 3)`` uint8 array."""
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as opened:
        return np.asarray(opened.convert("RGB"))


def frames(gif: Path | bytes) -> list[np.ndarray]:
    """Every frame of a GIF as ``(H, W, 3)`` uint8 arrays."""
    with Image.open(io.BytesIO(gif) if isinstance(gif, bytes) else gif) as opened:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(opened)]


def same_frames(shown: list[np.ndarray], disk: list[np.ndarray]) -> bool:
    """Frame for frame the same pixels (tolerance 0: both are decoded from the same GIF bytes)."""
    return len(shown) == len(disk) and all(np.array_equal(a, b) for a, b in zip(shown, disk, strict=True))


def shows_something(image: np.ndarray) -> bool:
    """Not the old bug's picture: not one flat colour (it was all black)."""
    return int(image.max()) > int(image.min())


def wandb_media(run: Path, key: str) -> list[tuple[dict, list[Path]]]:
    """``(history row, media files)`` of every W&B row that logged ``key``, oldest first."""
    path = wandb_file(run)
    files = path.parent / "files"
    found = []
    for row in history_rows(path):
        if key in row:
            value = row[key]  # images: {"filenames": [...]}; videos: {"videos": [{"path": ...}]}
            names = value.get("filenames") or [video["path"] for video in value.get("videos", [value])]
            found.append((row, [files / name for name in names]))
    return found


def tensorboard_images(run: Path, tag: str) -> dict[int, bytes]:
    """``{step: encoded image}`` of a TensorBoard image tag (PNG, or GIF for videos)."""
    (events,) = run.glob("tensorboard/**/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
    accumulator.Reload()
    return {event.step: event.encoded_image_string for event in accumulator.Images(tag)}


def no_wandb_warning(capfd: pytest.CaptureFixture) -> bool:
    out, err = capfd.readouterr()
    return "wandb: WARNING" not in out + err


def test_image_gan_grids_and_vidgen_sample_show_the_files_on_disk(
    tmp_path: Path, data_dir: Path, capfd: pytest.CaptureFixture
) -> None:
    run = tmp_path / "train"
    grid = ["callbacks.sample_grid.every_n_epochs=1", "callbacks.sample_grid.num_samples=16"]
    train(compose_train([*QUIET, MEDIA_LOGGERS, *NO_FID, *grid, "trainer.max_epochs=2"], run, data_dir))

    logged = wandb_media(run, "samples")
    assert [row["samples"]["captions"] for row, _ in logged] == [["epoch_000"], ["epoch_001"]]
    on_tensorboard = tensorboard_images(run, "samples")
    for row, (file,) in logged:
        disk = pixels(run / "samples" / f"{row['samples']['captions'][0]}.png")
        assert shows_something(disk)
        np.testing.assert_array_equal(pixels(file), disk)  # was all black
        np.testing.assert_array_equal(pixels(on_tensorboard[row["trainer/global_step"]]), disk)
    assert len(on_tensorboard) == 2

    # vidgen-sample: the grid and each sample of its table, in W&B and TensorBoard
    out = tmp_path / "sample"
    args = [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "num_samples=4", MEDIA_LOGGERS]
    sample(compose_train(args, out, data_dir, config_name="sample"))
    disk = pixels(out / "samples" / "samples.png")
    ((_, (file,)),) = wandb_media(out, "samples")
    np.testing.assert_array_equal(pixels(file), disk)
    np.testing.assert_array_equal(pixels(tensorboard_images(out, "samples")[0]), disk)
    # W&B keeps a table with media as a run_table artifact (the run's own table file names only the
    # media types); offline, its files are staged under $WANDB_DATA_DIR (conftest) until `wandb sync`
    (table,) = [a for a in records_of(wandb_file(out), "artifact") if a.type == "run_table"]
    staged = {entry.path: Path(entry.local_path) for entry in table.manifest.contents}
    rows = json.loads(staged["samples_table.table.json"].read_text())["data"]
    assert [row[0] for row in rows] == [0, 1, 2, 3]
    for index, _, image in rows:
        shown = pixels(staged[image["path"]])
        np.testing.assert_array_equal(shown, pixels(out / "samples" / f"sample_{index:03d}.png"))
    # its own W&B run, beside the training run in its group
    trained, sampled = run_record(wandb_file(run)), run_record(wandb_file(out))
    assert sampled.display_name == f"{trained.display_name} sample" and sampled.job_type == "sample"
    assert sampled.run_group == trained.run_group and sampled.run_id != trained.run_id
    assert no_wandb_warning(capfd)


def _assert_gif_shown(run: Path) -> None:
    """The samples GIF of each epoch is the W&B video and the TensorBoard image of that step, frame by
    frame (the files are passed as they are, so with no tolerance)."""
    logged = wandb_media(run, "samples")
    assert len(logged) == 1
    row, (file,) = logged[0]
    assert file.suffix == ".gif" and row["samples"]["_type"] == "videos"
    disk = frames(run / "samples" / "epoch_000.gif")
    assert len(disk) > 1 and all(shows_something(f) for f in disk)
    assert same_frames(frames(file), disk)
    assert same_frames(frames(tensorboard_images(run, "samples")[row["trainer/global_step"]]), disk)


def test_video_gan_clips_show_the_gif_on_disk(
    tmp_path: Path, data_dir: Path, capfd: pytest.CaptureFixture
) -> None:
    # a large generator step: two batches move the clips away from the flat grey of the N(0, 0.02) init
    small = ["model=vgan", "model.generator.base_width=4", "model.discriminator.base_width=4",
             "model.optimizer_g.lr=0.02", "callbacks=video"]  # fmt: skip
    train(compose_train([*VIDEO_DATA, *small, MEDIA_LOGGERS], tmp_path, data_dir))
    _assert_gif_shown(tmp_path)
    assert no_wandb_warning(capfd)


def test_frame_predictor_clips_eval_curves_and_samples_show_the_files_on_disk(
    tmp_path: Path, data_dir: Path, capfd: pytest.CaptureFixture
) -> None:
    small = ["model=convlstm", "loss=frame_mse", "callbacks=prediction", "model.net.hidden_channels=[8]",
             "model.net.kernel_size=3"]  # fmt: skip
    run = tmp_path / "train"
    train(compose_train([*VIDEO_DATA, *small, MEDIA_LOGGERS], run, data_dir))
    _assert_gif_shown(run)

    out = tmp_path / "eval"
    args = [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "trainer.enable_progress_bar=false",
            MEDIA_LOGGERS]  # fmt: skip
    evaluate(compose_train(args, out, data_dir, config_name="eval"))
    disk = pixels(out / "per_step_metrics.png")
    assert shows_something(disk)
    ((_, (file,)),) = wandb_media(out, "test/per_step_metrics")
    np.testing.assert_array_equal(pixels(file), disk)
    np.testing.assert_array_equal(pixels(tensorboard_images(out, "test/per_step_metrics")[0]), disk)

    # vidgen-sample of a video model: the grid GIF and each clip of its table
    out = tmp_path / "sample"
    sample(compose_train([args[0], "num_samples=2", MEDIA_LOGGERS], out, data_dir, config_name="sample"))
    disk = frames(out / "samples" / "samples.gif")
    ((_, (file,)),) = wandb_media(out, "samples")
    assert same_frames(frames(file), disk) and same_frames(
        frames(tensorboard_images(out, "samples")[0]), disk
    )
    (table,) = [a for a in records_of(wandb_file(out), "artifact") if a.type == "run_table"]
    staged = {entry.path: Path(entry.local_path) for entry in table.manifest.contents}
    rows = json.loads(staged["samples_table.table.json"].read_text())["data"]
    for index, _, clip in rows:
        assert same_frames(frames(staged[clip["path"]]), frames(out / "samples" / f"sample_{index:03d}.gif"))
    assert no_wandb_warning(capfd)
