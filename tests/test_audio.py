"""Sound: FSDD on WAV files the tests write, the WaveGAN/SpecGAN nets, Griffin-Lim, the audio configs, the
feature-classifier recipe and WAV output, all on small inputs (the real FSDD: test_data_integration.py).

The FSDD datamodule checks the SHA-256 of the md5 manifest of the recordings against the constant of the
published commit; fabricated files cannot match it, so the tests set the constant to the digest of the
files they wrote (as test_data_offline.py does with torchvision's md5 constants): the checking code that
runs is the real one.
"""

from __future__ import annotations

import math
import threading
import wave
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from data_files import FSDD_SMALL, SHARED, fsdd_wave, requires_real_data, write_fsdd
from vidgen.audio import SpecGANSpectrogram, griffin_lim, stft
from vidgen.config import build, check_compatibility, check_config
from vidgen.data import spoken_digits
from vidgen.data.spoken_digits import SpokenDigitsDataModule, manifest_sha256
from vidgen.errors import ConfigError, DataError
from vidgen.media import spectrogram_grid, write_wav
from vidgen.metrics.feature_spaces import load_recipe
from vidgen.nets.dcgan import DCGANDiscriminator
from vidgen.nets.spoken_digit_cnn import SpokenDigitCNN
from vidgen.nets.wavegan import PhaseShuffle, WaveGANDiscriminator, WaveGANGenerator

from conftest import compose_train

SMALL_CLIPS = ["data.clip_samples=1024", "data.batch_size=4", "data.val_fraction=0.25"]


@pytest.fixture
def fsdd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """20 fabricated recordings in ``tmp_path/data/fsdd/recordings``, accepted as FSDD (module docstring)."""
    folder = write_fsdd(tmp_path / "data")
    names = [p.name for p in folder.iterdir()]
    monkeypatch.setattr(spoken_digits, "FSDD_MANIFEST_SHA256", manifest_sha256(folder, names))
    return tmp_path / "data"


def datamodule(data_dir: Path, **kwargs) -> SpokenDigitsDataModule:
    return SpokenDigitsDataModule(str(data_dir), clip_samples=1024, val_fraction=0.25, download=False,
                                  **kwargs)  # fmt: skip


def test_official_split_lengths_range_and_labels(fsdd: Path) -> None:
    dm = datamodule(fsdd)
    dm.setup()
    names = dm.recording_names
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 9, "val": 3, "test": 8}
    # index 0-4 -> test, 5-49 -> train or val, each recording in exactly one split
    assert all(int(n.split("_")[2][:-4]) < 5 for n in names["test"])
    assert all(int(n.split("_")[2][:-4]) >= 5 for n in names["train"] + names["val"])
    every = names["train"] + names["val"] + names["test"]
    assert sorted(every) == sorted(f"{d}_{s}_{i}.wav" for d, s, i in FSDD_SMALL)
    for split, ds in dm.splits.items():
        for i in range(len(ds)):
            x, y = ds[i]
            digit, speaker, index = names[split][i][:-4].split("_")
            assert x.shape == (1, 1024) and x.dtype == torch.float32 and int(y) == int(digit)
            assert dm.speaker_names[int(ds.speakers[i])] == speaker
            # int16 / 32768: the file's own samples, zero-padded (index 0: 400 samples) or cropped
            samples = fsdd_wave(int(digit), int(index))[:1024]
            assert torch.equal(x[0, : len(samples)], torch.from_numpy(samples / 32768.0).float())
            assert (x[0, len(samples) :] == 0).all() and x.abs().max() <= 1
    assert dm.data_kind == "audio" and dm.item_shape == (1, 1024) and dm.dataset_id == "fsdd_waveform1024"
    assert dm.test_set_name == "FSDD official test split (recordings 0-4, 8)"


def test_val_split_is_seeded_and_spectrograms_are_128_high_in_range(fsdd: Path) -> None:
    a, b, c = datamodule(fsdd), datamodule(fsdd), datamodule(fsdd, split_seed=1)
    for dm in (a, b, c):
        dm.setup()
    assert a.recording_names["val"] == b.recording_names["val"] != c.recording_names["val"]
    spec = datamodule(fsdd, representation="spectrogram")
    spec.setup()
    x, _ = spec.splits["train"][0]
    assert x.shape == spec.item_shape == (1, 128, 8) and x.min() >= -1 and x.max() <= 1
    # per-bin statistics of the training clips: the training images have mean ~0 in every bin (before clip)
    train = torch.stack([spec.splits["train"][i][0] for i in range(9)])
    assert train.mean(dim=(0, 1, 3)).abs().max() < 0.2


def test_missing_folder_is_one_data_error_naming_data_dir(tmp_path: Path) -> None:
    dm = datamodule(tmp_path / "nowhere")
    with pytest.raises(DataError) as err:
        dm.setup()
    message = str(err.value)
    assert (
        f"FSDD: the folder is missing (data.download=false) in {tmp_path / 'nowhere' / 'fsdd' / 'recordings'}"
        in message
    )
    assert "data.data_dir" in message and "data.download=true" in message


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("not_wav", "3_george_5.wav is not a readable WAV file"),
        ("rate", r"3_george_5.wav is 16000 Hz, int16, 1 channel\(s\)"),
        ("stray", r"1 file\(s\) are not FSDD recordings by their name: notes.txt"),
        ("tampered", "are not the 3,000 of FSDD commit 26eb9aa"),
    ],
)
def test_corrupt_wrong_rate_stray_or_changed_files_are_data_errors(
    damage: str, words: str, fsdd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fsdd / "fsdd" / "recordings"
    target = folder / "3_george_5.wav"
    if damage == "not_wav":
        target.write_bytes(b"this is not RIFF data at all" * 4)
    elif damage == "rate":
        from scipy.io import wavfile

        wavfile.write(target, 16000, fsdd_wave(3, 5, 16000))
    elif damage == "stray":
        (folder / "notes.txt").write_text("hello")
    if damage != "tampered":  # accept the changed files as "published": the read itself must fail
        names = [p.name for p in folder.iterdir() if p.suffix == ".wav"]
        monkeypatch.setattr(spoken_digits, "FSDD_MANIFEST_SHA256", manifest_sha256(folder, names))
    else:
        target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DataError, match=words) as err:
        datamodule(fsdd).setup()
    assert str(folder) in str(err.value) and "Fix:" in str(err.value)


def test_download_path_extracts_the_github_archive_and_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``download_fsdd`` (torchvision's download_and_extract_archive) on a zip laid out as GitHub's
    archive of the commit, served over HTTP from this machine (127.0.0.1)."""
    source = write_fsdd(tmp_path / "source")
    archive = tmp_path / "archive.zip"
    top = f"free-spoken-digit-dataset-{spoken_digits.FSDD_COMMIT}"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{top}/README.md", "FSDD")
        for path in source.iterdir():
            z.write(path, f"{top}/recordings/{path.name}")
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(spoken_digits, "FSDD_URL", f"{url}/archive.zip")
    names = [p.name for p in source.iterdir()]
    monkeypatch.setattr(spoken_digits, "FSDD_MANIFEST_SHA256", manifest_sha256(source, names))
    dm = SpokenDigitsDataModule(str(tmp_path / "data"), clip_samples=1024, download=True)
    dm.prepare_data()
    dm.setup()
    root = tmp_path / "data" / "fsdd"
    assert sorted(p.name for p in root.iterdir()) == ["recordings"]  # archive and repository files removed
    assert sum(len(s) for s in dm.splits.values()) == 20 and dm.checksum == spoken_digits.FSDD_MANIFEST_SHA256
    monkeypatch.setattr(spoken_digits, "FSDD_URL", f"{url}/absent.zip")
    try:
        with pytest.raises(DataError, match="the folder is missing and the download of .*absent.zip failed"):
            SpokenDigitsDataModule(str(tmp_path / "other"), download=True).setup()
    finally:
        server.shutdown()


def test_phase_shuffle_shifts_each_example_by_at_most_n_with_reflection() -> None:
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).view(2, 3, 10)
    shuffle = PhaseShuffle(2)
    out = shuffle(x, shifts=torch.tensor([2, -1]))
    # right by 2: x[2], x[1] reflected in; left by 1: x[-2] reflected in at the end
    assert torch.equal(out[0], torch.cat([x[0, :, 1:3].flip(-1), x[0, :, :8]], dim=1))
    assert torch.equal(out[1], torch.cat([x[1, :, 1:], x[1, :, -2:-1]], dim=1))
    torch.manual_seed(0)
    drawn = shuffle.train()(x[:1].expand(64, 3, 10))
    shifts = {next(k for k in range(-2, 3) if torch.equal(o[:, 2:8], x[0, :, 2 - k : 8 - k])) for o in drawn}
    assert shifts == {-2, -1, 0, 1, 2}  # every shift in -n..n occurs, no other
    assert torch.equal(shuffle.eval()(x), x)


@pytest.mark.parametrize("num_classes", [None, 10])
def test_wavegan_shapes_and_conditioning(num_classes: int | None) -> None:
    g = WaveGANGenerator(clip_samples=1024, model_size=4, num_classes=num_classes)
    d = WaveGANDiscriminator(clip_samples=1024, model_size=4, num_classes=num_classes)
    y = torch.tensor([3, 7]) if num_classes else None
    x = g(torch.randn(2, 100), y)
    assert x.shape == (2, 1, 1024) and x.abs().max() <= 1 and d(x, y).shape == (2,)
    # paper size: 16,384 samples from 16 x 16d, five stride-4 layers
    assert WaveGANGenerator().dense.out_features == 16 * 16 * 64
    if num_classes:
        z = torch.randn(1, 100).expand(2, 100)
        assert not torch.allclose(*g(z, torch.tensor([3, 7])))  # the label changes the sound
        with pytest.raises(ValueError, match="pass labels y"):
            g(z)
    with pytest.raises(ValueError, match=r"clip_samples = 16 \* 4\^k .* got 1000"):
        WaveGANGenerator(clip_samples=1000)


def test_specgan_nets_are_dcgan_at_128_and_the_critic_drops_batch_norm() -> None:
    critic = DCGANDiscriminator(128, 1, 4, batch_norm=False)
    assert critic(torch.randn(2, 1, 128, 128)).shape == (2,)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    # the default keeps the paper's batch norm and the module indices of existing checkpoints
    assert DCGANDiscriminator(32, 1, 4).state_dict().keys() >= {"net.3.running_mean"}


def test_griffin_lim_round_trip_of_a_sine_gives_its_frequency() -> None:
    rate, length = 8000, 4096
    t = torch.arange(length) / rate
    sine = 0.5 * torch.sin(2 * math.pi * 440 * t)
    magnitude = stft(sine[None], 256, 128).abs()
    rebuilt = griffin_lim(magnitude, 256, 128, length, generator=torch.Generator().manual_seed(0))
    peak = float(torch.fft.rfft(rebuilt[0]).abs().argmax()) * rate / length
    assert abs(peak - 440) <= rate / length  # within one bin of the full-length FFT (1.95 Hz)
    # spectral convergence ||S(x') - S|| / ||S|| of 32 iterations: about 0.06 here
    error = (stft(rebuilt, 256, 128).abs() - magnitude).norm() / magnitude.norm()
    assert error < 0.15
    # through SpecGAN's normalized image and back: the tone's frequency within one STFT bin (31.25 Hz)
    spec = SpecGANSpectrogram(length, 256, 128).fit(sine.view(1, 1, -1))
    image = spec.encode(sine.view(1, 1, -1))
    assert image.shape == (1, 1, 128, 32)
    back = spec.decode(image, generator=torch.Generator().manual_seed(0))[0, 0]
    assert abs(float(torch.fft.rfft(back).abs().argmax()) * rate / length - 440) <= rate / 256


def test_spoken_digit_cnn_reads_both_representations_and_its_recipe_composes() -> None:
    net = SpokenDigitCNN(width=4)
    assert net(torch.randn(3, 1, 1024) * 0.1).shape == (3, 10)
    assert net.features(torch.randn(3, 1, 128, 128)).shape == (3, net.num_features) == (3, 32)
    recipe = load_recipe("fsdd_cnn")  # checked against the classes' signatures, as vidgen-features does
    task = instantiate(recipe, net=instantiate(recipe.net, channels=1, num_classes=10))
    assert task.net.head.out_features == 10 and task.display_name == "SpokenDigitCNN"
    assert SpokenDigitsDataModule.feature_net == "fsdd_cnn"


def test_wav_files_are_riff_16_bit_pcm_at_8_khz(tmp_path: Path) -> None:
    samples = fsdd_wave(5, 3)
    x = torch.from_numpy(samples / 32768.0).float()
    path = write_wav(torch.cat([x, torch.tensor([1.5, -2.0])])[None], tmp_path / "a.wav", 8000)
    assert path.read_bytes()[:4] == b"RIFF" and path.read_bytes()[8:12] == b"WAVE"
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 8000)
        back = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    # a real clip written back gives the recording's own samples; out-of-range values are clipped
    assert np.array_equal(back[:-2], samples) and back[-2:].tolist() == [32767, -32768]
    grid = spectrogram_grid(torch.stack([x[None], x[None]]), nrow=2)
    assert grid.shape[0] == 3 and grid.min() >= 0 and grid.max() <= 1 and grid.max() > grid.min()


@pytest.mark.parametrize("experiment", ["wavegan_fsdd", "cwavegan_fsdd", "specgan_fsdd"])
def test_audio_experiments_compose_check_and_build(experiment: str, fsdd: Path, tmp_path: Path) -> None:
    small = ["model.generator.base_width=4", "model.discriminator.base_width=4"]
    if experiment != "specgan_fsdd":
        small = ["model.generator.model_size=4", "model.discriminator.model_size=4", *SMALL_CLIPS]
    cfg = compose_train([f"experiment={experiment}", *small], tmp_path, fsdd)
    check_compatibility(cfg)
    check_config(cfg)
    model = build(cfg.model, "model")
    assert model.data_kind == "audio" and model.sample_rate == 8000
    assert model.num_classes == (10 if experiment.startswith("c") else None)
    assert set(cfg.callbacks) == {"model_checkpoint", "last_checkpoint", "sample_audio"}


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (
            ["data=spoken_digits", "model=dcgan"],
            "model=dcgan models images but data=spoken_digits provides audios",
        ),
        (["data=digits", "model=wavegan", "loss=wgan_gp"], "model=wavegan models audios but data=digits"),
    ],
)
def test_image_models_and_audio_data_do_not_mix(overrides: list[str], words: str, tmp_path: Path) -> None:
    cfg = compose_train([*overrides, "callbacks=none"], tmp_path, tmp_path)
    with pytest.raises(ConfigError, match=words):
        check_compatibility(cfg)


def test_tiny_cwavegan_trains_and_writes_wav_samples(fsdd: Path, tmp_path: Path) -> None:
    """Two training steps of a tiny conditional WaveGAN through vidgen-train's code path (``train``): WAV
    samples and their spectrogram grid after the epoch, and the last checkpoint."""
    from vidgen.cli.train import train

    common = [*SMALL_CLIPS, "logger=csv", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
              "trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
              "callbacks.sample_audio.num_samples=3"]  # fmt: skip
    tiny = ["model.generator.model_size=4", "model.discriminator.model_size=4", "model.n_critic=1"]
    out = tmp_path / "run"
    train(compose_train(["experiment=cwavegan_fsdd", *common, *tiny], out, fsdd))
    wavs = sorted((out / "samples" / "epoch_000").glob("*.wav"))
    assert [w.name for w in wavs] == ["sample_00.wav", "sample_01.wav", "sample_02.wav"]
    with wave.open(str(wavs[0]), "rb") as f:
        assert (f.getframerate(), f.getnframes(), f.getsampwidth()) == (8000, 1024, 2)
    assert (out / "samples" / "epoch_000.png").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    # a data representation the model does not model stops at setup with one message
    wrong = compose_train(["experiment=wavegan_fsdd", *common, *tiny, "data.representation=spectrogram"],
                          tmp_path / "wrong", fsdd)  # fmt: skip
    with pytest.raises(ConfigError, match="models waveforms but data.representation=spectrogram"):
        train(wrong)


def test_cwavegan_with_the_auxiliary_classifier_trains_its_class_head(fsdd: Path, tmp_path: Path) -> None:
    """AC-GAN (model.aux_class_weight): D's class head learns from real clips, G from the head's reading
    of its samples; both class losses are logged. Without a class head the option is one ConfigError."""
    from vidgen.cli.train import train

    common = [*SMALL_CLIPS, "logger=csv", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
              "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "callbacks=none",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # fmt: skip
    common += ["model.generator.model_size=4", "model.discriminator.model_size=4", "model.n_critic=1"]
    aux = ["model.aux_class_weight=1.0", "model.discriminator.class_head=true"]
    cfg = compose_train(["experiment=cwavegan_fsdd", *common, *aux], tmp_path / "run", fsdd)
    metrics = train(cfg)
    assert {"train/d_class_loss_epoch", "train/g_class_loss_epoch"} <= set(metrics)
    # ten classes: an untrained head's cross-entropy is near log(10) = 2.3
    assert 0 < metrics["train/d_class_loss_epoch"] < 5
    # the head is part of D: its weights are in D's optimizer, and spectral norm would cover it too
    model = instantiate(cfg.model)
    _, opt_d = model.configure_optimizers()
    d_params = {id(p) for group in opt_d.param_groups for p in group["params"]}
    assert id(model.discriminator.class_head.weight) in d_params

    no_head = compose_train(["experiment=cwavegan_fsdd", *common, "model.aux_class_weight=1.0"],
                            tmp_path / "no_head", fsdd)  # fmt: skip
    with pytest.raises(ConfigError, match="needs a conditional model whose discriminator has a class head"):
        train(no_head)


def test_specgan_module_takes_the_data_statistics_and_inverts_its_samples(fsdd: Path, tmp_path: Path) -> None:
    cfg = compose_train(["experiment=specgan_fsdd", "model.generator.base_width=4",
                         "model.discriminator.base_width=4", "model.generator.image_size=16",
                         "model.discriminator.image_size=16", "data.clip_samples=256", "data.n_fft=32",
                         "data.hop_length=16"], tmp_path, fsdd)  # fmt: skip
    model, dm = build(cfg.model, "model"), build(cfg.data, "data")

    class Trainer:  # what setup reads of a Trainer: its datamodule
        datamodule = dm

    model._trainer = Trainer()  # noqa: SLF001 - setup without a fit
    model.setup("fit")
    assert torch.equal(model.spectrogram.mean, dm.spectrogram.mean) and model.spectrogram.mean.abs().sum() > 0
    waves = model.waveforms(model.sample(2), generator=torch.Generator().manual_seed(0))
    assert waves.shape == (2, 1, 256) and waves.abs().max() <= 1
    assert "spectrogram.mean" in model.state_dict()  # kept in checkpoints for vidgen-sample
    cfg.data.n_fft = 64
    model._trainer.datamodule = build(cfg.data, "data")  # noqa: SLF001
    with pytest.raises(
        ConfigError,
        match=r"the generator makes samples of shape \(1, 16, 16\) but the data's are \(1, 32, 16\)",
    ):
        model.setup("fit")


def test_vidgen_sample_format_wav_writes_riff_files(fsdd: Path, tmp_path: Path) -> None:
    from vidgen.cli.sample import write

    cfg = compose_train(["experiment=cwavegan_fsdd", "model.generator.model_size=4",
                         "model.discriminator.model_size=4", *SMALL_CLIPS], tmp_path, fsdd)  # fmt: skip
    model = build(cfg.model, "model")
    options = OmegaConf.create({"format": "wav", "seed": 0, "nrow": 2})
    labels = model.sample_labels(3, torch.tensor([7]))
    files = write(
        model.sample(3, labels=labels), labels.tolist(), options, (-1.0, 1.0), tmp_path / "s", model
    )
    assert [f.name for f in files] == ["samples.png", "sample_000.wav", "sample_001.wav", "sample_002.wav"]
    with wave.open(str(files[1]), "rb") as f:
        assert (f.getnchannels(), f.getframerate(), f.getnframes()) == (1, 8000, 1024)
    with pytest.raises(ConfigError, match=r"format=gif cannot hold audios. Fix: format=wav"):
        write(model.sample(1), None, OmegaConf.create({"format": "gif", "seed": 0, "nrow": 1}), (-1.0, 1.0),
              tmp_path / "t", model)  # fmt: skip


@pytest.mark.slow
@requires_real_data("fsdd")
def test_fsdd_classifier_reaches_90_percent_on_the_official_test_split(tmp_path: Path) -> None:
    """Issue 18's floor for the audio metrics' classifier: the recipe of conf/features/fsdd_cnn.yaml trained
    on FSDD's training recordings names the digit of at least 90 % of the official test recordings (0-4 of
    each digit and speaker, 300); its features and logits then score generated sound like any sample."""
    from vidgen.metrics.feature_spaces import feature_space
    from vidgen.metrics.sample_quality import SampleQuality, sample_quality

    # the recordings are linked, not copied, into a scratch data folder that receives the cache
    (tmp_path / "fsdd").mkdir()
    (tmp_path / "fsdd" / "recordings").symlink_to(SHARED / "fsdd" / "recordings")
    dm = SpokenDigitsDataModule(str(tmp_path), download=False)
    space = feature_space(dm)
    assert space.name == "fsdd" and space.test_accuracy >= 0.9
    assert list((tmp_path / "feature_extractors").glob("fsdd_cnn_fsdd_waveform16384_*.json"))
    dm.setup("test")
    pairs = [dm.splits["test"][i] for i in range(len(dm.splits["test"]))]
    test, labels = torch.stack([x for x, _ in pairs]), torch.tensor([int(y) for _, y in pairs])
    assert len(test) == 300
    # the test recordings posing as generated sound asked for their own digits: the conditional accuracy
    # is the accuracy the cache recorded when the classifier was trained
    metric = SampleQuality(space, ("fid", "is"))
    metric.update(test, real=True)
    metric.update(test.flip(0), real=False, labels=labels.flip(0))
    out = metric.compute()
    assert out["conditional_accuracy_fsdd"] == pytest.approx(space.test_accuracy, abs=1e-6)
    assert abs(out["fid_fsdd"]) < 1e-2  # the same set: 0 up to the matrix square root's rounding
    hiss = 1e-3 * torch.randn(64, *test.shape[1:])
    assert sample_quality(space, test, hiss, ("fid",))["fid_fsdd"] > 1.0
