"""Talking digits (issue 18): the split-safe pairing of moving digits with FSDD recordings, the audio-visual
GAN through vidgen-train's code path, MP4 files with a sound track, the agreement metric on known inputs,
and the compatibility errors. FSDD is fabricated here (``write_fsdd``, accepted as FSDD as test_audio.py
explains); the real recordings only in the test marked slow.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from data_files import SHARED, requires_real_data, write_fsdd
from vidgen.audio_visual import AudioVisual
from vidgen.config import build, check_compatibility
from vidgen.data import spoken_digits
from vidgen.data.digits import load_digits_tensors
from vidgen.data.spoken_digits import manifest_sha256
from vidgen.data.talking_digits import TalkingDigitsDataModule
from vidgen.errors import ConfigError, DataError
from vidgen.metrics.audio_visual import AudioVisualQuality, clip_digits
from vidgen.metrics.feature_spaces import ClassifierSpace

from conftest import compose_train

# small clips: 16x16 frames of 8x8 digits, 8 frames over 2,048 samples (32 x 4^2: WaveGAN's start length 32)
SMALL = ["data.image_size=16", "data.digit_size=8", "data.clip_samples=2048", "data.batch_size=4",
         "data.val_fraction=0.25"]  # fmt: skip
TINY_NETS = ["model.generator.base_width=4", "model.generator.model_size=4",
             "model.discriminator.base_width=4", "model.discriminator.model_size=4"]  # fmt: skip


@pytest.fixture
def fsdd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """20 fabricated recordings of the digits 3 and 7 in ``tmp_path/data/fsdd/recordings`` (8 test)."""
    folder = write_fsdd(tmp_path / "data")
    monkeypatch.setattr(
        spoken_digits, "FSDD_MANIFEST_SHA256", manifest_sha256(folder, [p.name for p in folder.iterdir()])
    )
    return tmp_path / "data"


def small_datamodule(data_dir: Path, **kwargs) -> TalkingDigitsDataModule:
    return TalkingDigitsDataModule(str(data_dir), image_size=16, digit_size=8, clip_samples=2048,
                                   batch_size=4, val_fraction=0.25, download=False, **kwargs)  # fmt: skip


def test_pairs_are_split_safe_same_digit_and_time_aligned(fsdd: Path) -> None:
    dm = small_datamodule(fsdd)
    dm.setup()
    # 8 frames span 8,192 samples at 8 kHz by default: 125/16 frames per second; here 2,048 samples
    assert TalkingDigitsDataModule(download=False).fps == Fraction(125, 16)
    assert dm.fps == Fraction(8 * 8000, 2048) and dm.data_kind == "audio_visual"
    # FSDD's official split, each recording in one split (test: recordings 0-4)
    names = dm.audio.recording_names
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 9, "val": 3, "test": 8}
    assert len(set(names["train"] + names["val"] + names["test"])) == 20
    assert all(int(n.split("_")[2][:-4]) < 5 for n in names["test"])
    # the digit images: three disjoint pools, and every clip of a split shows an image of its own pool
    pools = {k: set(v.tolist()) for k, v in dm.image_indices.items()}
    assert not (pools["train"] & pools["val"]) and not (pools["train"] & pools["test"])
    assert not (pools["val"] & pools["test"])
    x, y, _ = load_digits_tensors()
    for split, ds in dm.splits.items():
        for i in range(len(ds)):
            shown = int(dm.image_indices[split][ds.image_index(i)])
            assert shown in pools[split] and int(y[shown]) == int(ds.recordings.digits[i])
            video, audio, label = ds[i]
            # same digit: the label is the recording's digit (its file name) and the image's class
            assert int(label) == int(names[split][i][0]) == int(y[shown])
            assert video.shape == (8, 1, 16, 16) and audio.shape == (1, 2048)
            assert torch.equal(audio, ds.recordings.waveform(i)) and video.min() >= -1 and video.max() <= 1
            # the frames show that image (the brightest 8x8 window of the first frame is the digit)
            frame = ds.frames(i)[0]
            assert frame.max() > 0 and int(frame.sum()) == int(ds.digits[ds.image_index(i)].astype(int).sum())
    video, audio, label = next(iter(dm.train_dataloader()))
    assert video.shape == (4, 8, 1, 16, 16) and audio.shape == (4, 1, 2048) and label.shape == (4,)
    # the same pairs in another process: clip i depends on (split_seed, split, i) alone
    again = small_datamodule(fsdd)
    again.setup()
    assert torch.equal(again.splits["test"][5][0], dm.splits["test"][5][0])
    # the frames as image data for the frame classifier: named and checksummed by the clips
    frames = dm.frames_datamodule()
    frames.setup()
    assert frames.checksum == dm.checksum and frames.dataset_id == f"{dm.dataset_id}_frames"
    assert frames.splits["test"][3][0].shape == (1, 16, 16)
    # vidgen-data's report: the clips as a preview GIF, the sound's shape and the rates
    from vidgen.cli.data import describe

    report = describe("talking_digits", dm, fsdd / "previews")
    assert "batch x:     (4, 8, 1, 16, 16)" in report and "batch audio: (4, 1, 2048)" in report
    assert (
        "at 8000 Hz, 125/4 frames per second" in report
        and (fsdd / "previews" / "talking_digits.gif").is_file()
    )


def test_missing_fsdd_folder_is_one_data_error_naming_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"FSDD: the folder is missing \(data.download=false\)") as err:
        small_datamodule(tmp_path / "nowhere").setup()
    assert "data.data_dir" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["model=talking_digits_gan", "data=digits"],
         "model=talking_digits_gan models audio-visual clips but data=digits provides images. Fix: pick "
         "audio-visual data, data=talking_digits"),
        (["model=mocogan", "data=talking_digits"],
         "model=mocogan models videos but data=talking_digits provides audio-visual clips"),
        (["model=cwavegan", "data=talking_digits"],
         "model=cwavegan models audios but data=talking_digits provides audio-visual clips"),
        (["experiment=talking_digits", "callbacks=video"],
         "works on videos but data=talking_digits provides audio-visual clips"),
    ],
)  # fmt: skip
def test_audio_visual_and_single_modality_parts_do_not_mix(
    overrides: list[str], words: str, tmp_path: Path
) -> None:
    cfg = compose_train(overrides, tmp_path, tmp_path)
    with pytest.raises(ConfigError) as err:
        check_compatibility(cfg)
    assert words in str(err.value)


class DigitFromMean(nn.Module):
    """A stand-in classifier with known answers: the digit is ``round(9 * mean of the input in [0, 1])``."""

    num_features = 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1).mean(1, keepdim=True) + 1) / 2  # CANONICAL [-1, 1] -> [0, 1]

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return -((9 * f - torch.arange(10, dtype=f.dtype)) ** 2)


def encoded(digits: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Constant samples whose mean says ``digits`` to ``DigitFromMean``."""
    return (digits.double() / 9 * 2 - 1).view(-1, *[1] * len(shape)).expand(-1, *shape).float()


def test_agreement_metric_on_known_inputs_real_ceiling_shuffled_floor_and_fakes() -> None:
    frames_space = ClassifierSpace(DigitFromMean(), "frames", "stub", "stub", 1.0)
    audio_space = ClassifierSpace(DigitFromMean(), "sound", "stub", "stub", 1.0)
    digits = torch.arange(200) % 10
    real = AudioVisual(encoded(digits, (4, 1, 8, 8)), encoded(digits, (1, 64)))
    # fakes asked for `digits`: the clips show them, half of the sounds say the next digit
    heard = torch.where(torch.arange(200) % 2 == 0, digits, (digits + 1) % 10)
    fake = AudioVisual(encoded(digits, (4, 1, 8, 8)), encoded(heard, (1, 64)))
    metric = AudioVisualQuality(frames_space, audio_space, ("fid",), shuffle_seed=0)
    metric.update(real, real=True, labels=digits)
    metric.update(fake, real=False, labels=digits)
    out = metric.compute()
    assert out["av_agreement_frames_sound_real"] == 1.0  # both classifiers right: the ceiling
    assert 0.02 <= out["av_agreement_frames_sound_shuffled"] <= 0.2  # another pair's sound: chance, 0.1
    assert out["av_agreement_frames_sound"] == 0.5 and out["n_av_frames_sound"] == 200
    assert out["conditional_accuracy_frames"] == 1.0 and out["conditional_accuracy_sound"] == 0.5
    assert out["feature_extractor_accuracy_frames"] == out["feature_extractor_accuracy_sound"] == 1.0
    assert abs(out["fid_frames"]) < 1e-9 and out["fid_sound"] > 0
    # a clip's digit is the majority of its frames': 5 frames of a 3 and 3 of a 7 show a 3
    clip = torch.cat([encoded(torch.tensor([3] * 5), (1, 8, 8)), encoded(torch.tensor([7] * 3), (1, 8, 8))])
    assert clip_digits(frames_space, clip[None]).tolist() == [3]


def test_tiny_fit_writes_mp4_with_sound_gif_wav_and_the_metrics(fsdd: Path, tmp_path: Path) -> None:
    """Two training steps of a tiny talking-digits GAN through ``train`` (vidgen-train's code path): after the
    epoch, MP4 files whose AAC track lasts as long as the H.264 picture, RIFF WAVs, GIFs, the audio-visual
    metrics in metrics.json; then vidgen-sample's writer gives MP4s with sound."""
    import av

    from vidgen.cli.sample import write
    from vidgen.cli.train import train

    common = [*SMALL, *TINY_NETS, "logger=csv", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
              "trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
              "callbacks.sample_audio_visual.num_samples=2",
              # the classifiers trained on 9 fabricated clips read too few validation samples to be checked
              "callbacks.audio_visual_quality.min_extractor_accuracy=0"]  # fmt: skip
    out = tmp_path / "run"
    train(compose_train(["experiment=talking_digits", *common], out, fsdd))
    folder = out / "samples" / "epoch_000"
    assert sorted(p.name for p in folder.iterdir()) == [
        "sample_000.gif", "sample_000.mp4", "sample_000.wav", "sample_001.gif", "sample_001.mp4",
        "sample_001.wav", "samples.gif",
    ]  # fmt: skip
    with av.open(str(folder / "sample_000.mp4")) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert audio.sample_rate == 8000 and video.frames == 8
        picture = float(video.duration * video.time_base)
        sound = sum(frame.samples for frame in container.decode(audio=0)) / 8000
    assert picture == pytest.approx(2048 / 8000, abs=1e-3)  # 8 frames at 31.25 fps
    assert sound == pytest.approx(picture, abs=0.03)  # AAC frames are 1,024 samples (0.128 s) long
    header = (folder / "sample_000.wav").read_bytes()[:12]
    assert header[:4] == b"RIFF" and header[8:12] == b"WAVE"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("val/av_agreement_lenet_frames_fsdd", "val/av_agreement_lenet_frames_fsdd_real",
                "val/fid_lenet_frames", "val/fid_fsdd", "val/conditional_accuracy_fsdd"):  # fmt: skip
        assert key in metrics and 0 <= metrics[key] < float("inf")
    # vidgen-eval of its checkpoint measures the pairs of the test split (8 here) against as many fakes
    from vidgen.cli.eval import evaluate

    ckpt = out / "checkpoints" / "last.ckpt"
    tested = evaluate(compose_train([f"ckpt_path={ckpt}", "metrics.min_extractor_accuracy=0",
                                     "metrics.metrics=[fid]", "logger=csv"], tmp_path / "e", fsdd,
                                    config_name="eval"))  # fmt: skip
    assert (
        tested["test/n_av_lenet_frames_fsdd"] == 8
        and "test/av_agreement_lenet_frames_fsdd_shuffled" in tested
    )
    # beside it, the untrained model's pairs scored the same way (the trivial baseline); what the real
    # pairs alone decide (their agreement, the shuffled floor, the counts) is not repeated
    baseline = ("av_agreement_lenet_frames_fsdd", "fid_lenet_frames", "fid_fsdd", "conditional_accuracy_fsdd")
    for key in baseline:
        assert 0 <= tested[f"test/{key}_untrained"] < float("inf")
    assert not any(k.endswith(("_real_untrained", "_shuffled_untrained")) for k in tested)
    assert not any(k.startswith("test/n_") and k.endswith("_untrained") for k in tested)
    # vidgen-sample of this model: the grid GIF, then one MP4 with sound per pair
    cfg = compose_train(["experiment=talking_digits", *SMALL, *TINY_NETS], tmp_path / "s", fsdd)
    model = build(cfg.model, "model")
    labels = model.sample_labels(2, torch.tensor([3, 7]))
    options = OmegaConf.create({"format": None, "seed": 0, "nrow": 2, "fps": 4})
    files = write(
        model.sample(2, labels=labels), labels.tolist(), options, (-1.0, 1.0), tmp_path / "s", model
    )
    assert [f.name for f in files] == ["samples.gif", "sample_000.mp4", "sample_001.mp4"]
    with av.open(str(files[1])) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    with pytest.raises(ConfigError, match="format=gif cannot hold audio_visuals. Fix: format=mp4"):
        write(model.sample(1), None, OmegaConf.create({"format": "gif", "seed": 0, "nrow": 1}), (-1.0, 1.0),
              tmp_path / "t", model)  # fmt: skip


def test_nets_share_the_digit_and_wrong_sizes_stop_at_setup(fsdd: Path, tmp_path: Path) -> None:
    cfg = compose_train(["experiment=talking_digits", *SMALL, *TINY_NETS], tmp_path, fsdd)
    model = build(cfg.model, "model")
    pairs = model.sample(2, generator=torch.Generator().manual_seed(0), labels=torch.tensor([3]))
    assert pairs.video.shape == (2, 8, 1, 16, 16) and pairs.audio.shape == (2, 1, 2048)
    # one noise, two digits: both the clip and the sound change with the digit
    z = torch.randn(1, model.latent_dim).expand(2, -1)
    video, audio = model.eval().generator(z, torch.tensor([3, 7]))
    assert not torch.allclose(video[0], video[1]) and not torch.allclose(audio[0], audio[1])
    logits = model.discriminator(video, audio, torch.tensor([3, 7]))
    assert logits.shape == (4,)  # 2 joint logits, then D_I's on one frame per clip
    cfg.data.clip_samples = 8192  # the data's clips now longer than the nets'

    class Trainer:  # what setup reads of a Trainer: its datamodule
        datamodule = build(cfg.data, "data")

    model._trainer = Trainer()  # noqa: SLF001 - setup without a fit
    with pytest.raises(ConfigError, match=r"the generator makes 8 frames and 2048 samples at 8000 Hz but the "
                       r"data's clips are 8 frames and 8192 samples"):  # fmt: skip
        model.setup("fit")


@pytest.mark.slow
@requires_real_data("fsdd")
def test_real_test_pairs_agree_about_as_often_as_both_classifiers_are_right(tmp_path: Path) -> None:
    """On the real test pairs (300 FSDD test recordings with test digit images) the agreement is near the
    product of the two classifiers' accuracies (their joint accuracy when errors are independent), and
    with the sounds shuffled near chance (0.1). Measured: clips 91.7 % (frames 89.4 %), sounds 97.3 %,
    agreement 0.900 against a product of 0.892, shuffled 0.100. Trains both classifiers on first use
    (about 15 minutes on 2 cores)."""
    from vidgen.metrics.feature_spaces import feature_space

    # $VIDGEN_DATA_DIR (with its cached classifiers), else the shared recordings linked into a scratch folder
    data_dir = Path(os.environ.get("VIDGEN_DATA_DIR", tmp_path))
    if data_dir == tmp_path:
        (tmp_path / "fsdd").mkdir()
        (tmp_path / "fsdd" / "recordings").symlink_to(SHARED / "fsdd" / "recordings")
    dm = TalkingDigitsDataModule(str(data_dir), download=False)
    dm.setup()
    frames, sounds = feature_space(dm.frames_datamodule()), feature_space(dm.audio_datamodule())
    test = dm.splits["test"]
    items = [test[i] for i in range(len(test))]
    pairs = AudioVisual(torch.stack([v for v, _, _ in items]), torch.stack([a for _, a, _ in items]))
    labels = torch.stack([y for _, _, y in items])
    metric = AudioVisualQuality(frames, sounds)
    metric.update(pairs, real=True, labels=labels)
    metric.update(pairs, real=False, labels=labels)
    out = metric.compute()
    seen, heard = out["feature_extractor_accuracy_lenet_frames"], out["feature_extractor_accuracy_fsdd"]
    joint = out["av_agreement_lenet_frames_fsdd_real"]
    print(
        f"frames {seen:.3f} (per frame), sounds {heard:.3f}, agreement {joint:.3f}, "
        f"shuffled {out['av_agreement_lenet_frames_fsdd_shuffled']:.3f}"
    )
    assert heard >= 0.85 and seen >= 0.85
    assert joint >= seen * heard - 0.05 and joint == out["av_agreement_lenet_frames_fsdd"]
    assert out["av_agreement_lenet_frames_fsdd_shuffled"] < 0.2
