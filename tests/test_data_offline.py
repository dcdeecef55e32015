"""Every datamodule on small files the test writes in the real formats, through a real Lightning step.

torchvision checks the md5 of MNIST's .gz files and of every CIFAR-10 batch against constants of the
published files. Fabricated files cannot match them, so tests that exercise those checks monkeypatch the
constants (``MNIST.resources``, ``CIFAR10.train_list``/``test_list``/``meta``,
``MovingMNISTFileDataModule.file_md5``) to the md5s of the files they wrote: the checking code that runs is
torchvision's (and ours), only the expected values differ.
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torchvision.datasets import CIFAR10, MNIST

from data_files import md5, mnist_arrays, write_cifar10, write_mnist, write_moving_mnist
from vidgen.cli.data import main as data_cli
from vidgen.config import build, check_config
from vidgen.data.base import from_uint8
from vidgen.data.moving_mnist import MovingMNISTFileDataModule
from vidgen.errors import ConfigError, DataError

from conftest import TINY, compose_train, run_cli


class TinyModel(L.LightningModule):
    """One linear layer on the mean of each frame: checks batch layout, then takes real optimizer steps."""

    def __init__(self, kind: str, channels: int, size: int, value_range: tuple[float, float]):
        super().__init__()
        self.kind, self.channels, self.size, self.value_range = kind, channels, size, value_range
        self.layer = nn.Linear(channels, 10)
        self.steps = 0

    def _check(self, batch) -> torch.Tensor:
        x, y = batch
        per_item = (self.channels, self.size, self.size)
        assert x.dtype == torch.float32 and y.dtype == torch.long and y.shape == (x.shape[0],)
        assert (x.ndim, tuple(x.shape[-3:])) == ((4 if self.kind == "image" else 5), per_item)
        assert self.value_range[0] <= x.min() and x.max() <= self.value_range[1] and x.max() > x.min()
        feats = x.mean(dim=(-1, -2)) if x.ndim == 4 else x.mean(dim=(1, -1, -2))
        return nn.functional.cross_entropy(self.layer(feats), y.clamp(min=0))

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return self._check(batch)

    def validation_step(self, batch, batch_idx):
        self._check(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_one_step(dm) -> TinyModel:
    dm.setup("fit")
    model = TinyModel(dm.data_kind, dm.channels, dm.image_size, dm.value_range)
    before = model.layer.weight.detach().clone()
    trainer = L.Trainer(
        max_steps=2, limit_val_batches=1, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert model.steps == 2 and not torch.equal(before, model.layer.weight)
    x, y = next(iter(dm.test_dataloader()))
    model._check((x, y))
    return model


def compose_data(option: str, overrides: list[str], tmp_path: Path, data_dir: Path):
    cfg = compose_train([f"data={option}", *overrides], tmp_path, data_dir)
    return instantiate(cfg.data)


@pytest.fixture
def mnist_md5s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fabricated MNIST .gz files in ``tmp_path/data``, with torchvision's md5 constants set to theirs."""
    folder = write_mnist(tmp_path / "data")
    resources = [(name, md5(folder / name)) for name, _ in MNIST.resources]
    monkeypatch.setattr(MNIST, "resources", resources)  # see module docstring
    return tmp_path / "data"


def test_mnist_gz_files_are_md5_checked_extracted_and_trained_on(mnist_md5s: Path, tmp_path: Path) -> None:
    dm = compose_data("mnist", ["data.num_workers=0", "data.batch_size=8"], tmp_path, mnist_md5s)
    fit_one_step(dm)
    # torchvision verified the .gz md5s and extracted them; nothing was fetched from the network.
    assert (mnist_md5s / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 54, "val": 6, "test": 20}
    assert dm.dataset_id == "mnist32" and len(dm.checksum) == 64
    x, y = dm.splits["train"][0]
    assert x.shape == (1, 32, 32) and (x.min(), x.max()) == (-1.0, 1.0)


def test_mnist_value_range_and_size_come_from_config(mnist_md5s: Path, tmp_path: Path) -> None:
    over = ["data.num_workers=0", "data.value_range=[0,1]", "data.image_size=28", "data.channels=3"]
    dm = compose_data("mnist", over, tmp_path, mnist_md5s)
    dm.setup()
    x, _ = dm.splits["test"][0]
    assert x.shape == (3, 28, 28) and (x.min(), x.max()) == (0.0, 1.0)


def test_mnist_val_split_is_seeded(mnist_md5s: Path, tmp_path: Path) -> None:
    def val_images(seed: int) -> torch.Tensor:
        dm = compose_data("mnist", ["data.num_workers=0", f"data.split_seed={seed}"], tmp_path, mnist_md5s)
        dm.setup()
        return torch.stack([dm.splits["val"][i][0] for i in range(len(dm.splits["val"]))])

    assert torch.equal(val_images(0), val_images(0))
    assert not torch.equal(val_images(0), val_images(1))


def test_mnist_missing_files_name_folder_files_and_fix(tmp_path: Path) -> None:
    dm = compose_data("mnist", ["data.download=false"], tmp_path, tmp_path / "empty")
    with pytest.raises(DataError) as err:
        dm.setup()
    msg = str(err.value)
    assert "MNIST" in msg and str(tmp_path / "empty" / "MNIST" / "raw") in msg
    assert "train-images-idx3-ubyte" in msg and "VIDGEN_DATA_DIR" in msg and "data.download=true" in msg


def test_mnist_gz_with_wrong_md5_is_reported_not_trained_on(mnist_md5s: Path, tmp_path: Path) -> None:
    gz = mnist_md5s / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-10])  # truncated
    dm = compose_data("mnist", ["data.download=true"], tmp_path, mnist_md5s)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz failed torchvision's md5 check"):
        dm.setup()


@pytest.mark.parametrize("damage", ["wrong_magic", "truncated"])
def test_mnist_corrupt_idx_file_is_a_data_error(damage: str, tmp_path: Path) -> None:
    folder = write_mnist(tmp_path / "data", gz=False, raw=True)
    path = folder / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(b"\x00\x00\x0f\x03" + data[4:] if damage == "wrong_magic" else data[: len(data) // 2])
    dm = compose_data("mnist", ["data.download=false"], tmp_path, tmp_path / "data")
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        dm.setup()
    assert str(folder) in str(err.value)


@pytest.fixture
def cifar_md5s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = write_cifar10(tmp_path / "data")
    # See module docstring: torchvision's CIFAR10 md5 constants set to those of the fabricated batches.
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    return tmp_path / "data"


def test_cifar10_pickle_batches_train(cifar_md5s: Path, tmp_path: Path) -> None:
    dm = compose_data(
        "cifar10", ["data.num_workers=0", "data.batch_size=8", "data.download=false"], tmp_path, cifar_md5s
    )
    fit_one_step(dm)
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 54, "val": 6, "test": 12}
    # Pixels are passed through unchanged at 32x32: the first test image is the pickle's first row.
    import pickle

    raw = pickle.loads((cifar_md5s / "cifar-10-batches-py" / "test_batch").read_bytes())
    x, y = dm.splits["test"][0]
    expected = torch.from_numpy(raw["data"][0].reshape(3, 32, 32)).float() / 255 * 2 - 1
    assert torch.allclose(x, expected, atol=1e-6) and int(y) == raw["labels"][0]


def test_cifar10_corrupt_batch_is_reported(cifar_md5s: Path, tmp_path: Path) -> None:
    batch = cifar_md5s / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-100])
    dm = compose_data("cifar10", ["data.download=false"], tmp_path, cifar_md5s)
    with pytest.raises(DataError, match="data_batch_3 failed torchvision's md5 check"):
        dm.setup()


def test_cifar10_missing_names_the_files(tmp_path: Path) -> None:
    dm = compose_data("cifar10", ["data.download=false"], tmp_path, tmp_path / "none")
    with pytest.raises(
        DataError, match=r"missing data_batch_1.*cifar-10-batches-py.*Fix: set VIDGEN_DATA_DIR"
    ):
        dm.setup()


def test_moving_mnist_file_splits_and_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_moving_mnist(tmp_path / "data", n=40)
    monkeypatch.setattr(MovingMNISTFileDataModule, "file_md5", md5(path))  # see module docstring
    over = ["data.num_workers=0", "data.batch_size=4", "data.download=false"]
    dm = compose_data("moving_mnist_file", over, tmp_path, tmp_path / "data")
    fit_one_step(dm)
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 32, "val": 4, "test": 4}
    x, y = dm.splits["train"][0]
    assert x.shape == (20, 1, 64, 64) and int(y) == -1
    assert (dm.num_input_frames, dm.num_output_frames) == (10, 10)
    # Every sequence is in exactly one split, and the partition is the one split_seed gives.
    parts = [set(dm.splits[s].indices.tolist()) for s in ("train", "val", "test")]
    assert set.union(*parts) == set(range(40)) and sum(map(len, parts)) == 40


def test_moving_mnist_file_wrong_md5_and_short_npy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_moving_mnist(tmp_path / "data", n=8)
    path.write_bytes(path.read_bytes()[: -64 * 64 * 3])  # a short npy: the header promises more frames
    over = ["data.download=false"]
    dm = compose_data("moving_mnist_file", over, tmp_path, tmp_path / "data")
    with pytest.raises(DataError, match="not the published be083ec986bfe91a449d63653c411eb2"):
        dm.setup()
    monkeypatch.setattr(MovingMNISTFileDataModule, "file_md5", md5(path))  # now the load itself must fail
    dm = compose_data("moving_mnist_file", over, tmp_path, tmp_path / "data")
    with pytest.raises(DataError, match="mnist_test_seq.npy does not load"):
        dm.setup()


def test_moving_mnist_generate_on_fabricated_mnist(mnist_md5s: Path, tmp_path: Path) -> None:
    over = [
        "data.num_workers=0",
        "data.batch_size=4",
        "data.num_train=8",
        "data.num_val=4",
        "data.num_test=4",
    ]
    dm = compose_data("moving_mnist", over, tmp_path, mnist_md5s)
    fit_one_step(dm)
    x, y = dm.splits["test"][0]
    assert x.shape == (20, 1, 64, 64) and 0 <= int(y) <= 9


class EpochRecorder(TinyModel):
    """``TinyModel`` that keeps the training batches it saw, by epoch."""

    def __init__(self, *args):
        super().__init__(*args)
        self.seen: dict[int, list[torch.Tensor]] = {}

    def training_step(self, batch, batch_idx):
        self.seen.setdefault(self.current_epoch, []).append(batch[0].clone())
        return super().training_step(batch, batch_idx)


def fit_epochs(dm, epochs: int, seed: int) -> dict[int, torch.Tensor]:
    """The training sequences of each epoch of a real ``Trainer.fit`` with the run seed ``seed``."""
    L.seed_everything(seed, workers=True, verbose=False)
    model = EpochRecorder(dm.data_kind, dm.channels, dm.image_size, dm.value_range)
    trainer = L.Trainer(
        max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return {epoch: torch.cat(batches) for epoch, batches in model.seen.items()}


# Small generated Moving MNIST on MNIST files written by the test (uncompressed: data.download=false).
MOVING_MNIST_SMALL = ["data.batch_size=4", "data.num_train=8", "data.num_val=4", "data.download=false"]


def test_moving_mnist_trains_on_new_sequences_each_epoch_the_same_in_every_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_mnist(data, gz=False, raw=True)
    over = [*MOVING_MNIST_SMALL, "data.num_workers=2"]  # persistent workers: one copy of the dataset each
    dm = compose_data("moving_mnist", over, tmp_path, data)
    assert dm.train_sequences == "fresh"  # the default, as OpenSTL trains
    seen = fit_epochs(dm, epochs=3, seed=1)
    assert set(seen) == {0, 1, 2} and all(x.shape == (8, 20, 1, 64, 64) for x in seen.values())
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    # Lightning set each epoch: the workers drew sequence i of epoch e, as the dataset gives it here.
    train = dm.splits["train"]
    for epoch, x in seen.items():
        assert torch.equal(x, torch.stack([train[(epoch, i)][0] for i in range(8)]))
    # Another run, with another run seed and no workers, trains on exactly the same sequences.
    no_workers = [*MOVING_MNIST_SMALL, "data.num_workers=0"]
    again = fit_epochs(compose_data("moving_mnist", no_workers, tmp_path, data), epochs=3, seed=2)
    assert all(torch.equal(again[e], seen[e]) for e in range(3))
    # data.train_sequences=fixed: the same eight sequences every epoch, reshuffled
    fixed = compose_data("moving_mnist", [*no_workers, "data.train_sequences=fixed"], tmp_path, data)
    epochs = fit_epochs(fixed, epochs=2, seed=1)
    assert sorted(map(bytes, epochs[0].numpy())) == sorted(map(bytes, epochs[1].numpy()))
    assert torch.equal(epochs[0].sort(dim=0).values, seen[0].sort(dim=0).values)


def test_moving_mnist_generated_test_set_is_10000_fixed_sequences_of_test_digits(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_mnist(data, gz=False, raw=True)
    a, b = (compose_data("moving_mnist", MOVING_MNIST_SMALL, tmp_path, data) for _ in range(2))
    for dm in (a, b):
        dm.setup()  # lazy: no sequence is made before it is read
    assert len(a.splits["test"]) == len(b.splits["test"]) == 10_000
    for i in (0, 4321, 9_999):
        (xa, ya), (xb, yb) = a.splits["test"][i], b.splits["test"][i]
        assert torch.equal(xa, xb) and int(ya) == int(yb) and 0 <= int(ya) <= 9
    assert not torch.equal(a.splits["test"][0][0], a.splits["test"][1][0])
    # made of MNIST's test digits, not the training digits of the training sequences
    test_labels = set(torch.from_numpy(mnist_arrays(20, 1)[1]).tolist())
    assert {int(a.splits["test"][i][1]) for i in range(50)} <= test_labels
    assert a.test_set == "auto" and not a.test_from_file
    assert a.test_set_name == "generated 10,000, split_seed 0"


def test_moving_mnist_tests_on_mnist_test_seq_npy_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    write_mnist(data, gz=False, raw=True)
    generated = compose_data("moving_mnist", MOVING_MNIST_SMALL, tmp_path, data)
    generated.setup()
    path = write_moving_mnist(data, n=6)  # (20, 6, 64, 64) uint8, the published layout
    monkeypatch.setattr(MovingMNISTFileDataModule, "file_md5", md5(path))  # see module docstring
    frames = torch.from_numpy(np.load(path))
    for test_set in ("auto", "file"):
        over = [*MOVING_MNIST_SMALL, "data.num_workers=0", f"data.test_set={test_set}"]
        dm = compose_data("moving_mnist", over, tmp_path, data)
        fit_one_step(dm)  # trains on generated sequences, and a test batch has the right layout
        assert dm.test_from_file and dm.test_set_name == "mnist_test_seq.npy (6)"
        assert len(dm.splits["test"]) == 6 and len(dm.splits["train"]) == 8
        x, y = dm.splits["test"][4]  # sequence 4 of the file: frames[:, 4]
        assert torch.equal(x[:, 0], from_uint8(frames[:, 4], (-1.0, 1.0))) and int(y) == -1
        assert dm.checksum != generated.checksum  # feature-network caches keep the two apart
    # Generated sequences when asked for, and under auto when the file's sequences are of another kind.
    for over in (
        ["data.test_set=generated"],
        ["data.num_digits=3"],
        ["data.seq_len=30", "data.num_output_frames=20"],
    ):
        dm = compose_data("moving_mnist", [*MOVING_MNIST_SMALL, *over], tmp_path, data)
        assert dm.test_set_name == "generated 10,000, split_seed 0" and not dm.test_from_file


def test_moving_mnist_test_set_file_without_the_file_is_one_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_mnist(data, gz=False, raw=True)
    dm = compose_data("moving_mnist", [*MOVING_MNIST_SMALL, "data.test_set=file"], tmp_path, data)
    with pytest.raises(DataError) as err:
        dm.setup()
    message = str(err.value)
    assert f"the file is missing (data.download=false) in {data / 'MovingMNIST'}" in message
    assert "mnist_test_seq.npy" in message and "vidgen-data moving_mnist_file" in message
    assert message.endswith("data.test_set=generated.") and not dm.splits
    cfg = compose_train(["data=moving_mnist", "data.test_set=npy"], tmp_path, data)
    with pytest.raises(ConfigError, match="data.test_set must be auto .*, file or generated, got 'npy'"):
        build(cfg.data, "data")


def test_moving_digits_default_config_trains(tmp_path: Path, data_dir: Path) -> None:
    dm = compose_data("moving_digits", ["data.num_train=64"], tmp_path, data_dir)
    fit_one_step(dm)
    assert dm.data_kind == "video" and dm.batch_size == 16
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 64, "val": 200, "test": 200}


def _write_images(folder: Path, n: int, size: tuple[int, int], mode: str = "RGB") -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new(mode, size, color=(i * 20) % 256 if mode == "L" else (i * 20 % 256, 30, 200)).save(
            folder / f"{i}.png"
        )


def test_image_folder_with_classes_any_size(tmp_path: Path, data_dir: Path) -> None:
    root = tmp_path / "pics"
    _write_images(root / "cats", 10, (50, 40))
    _write_images(root / "dogs", 10, (23, 61), mode="L")
    over = [f"data.root={root}", "data.image_size=16", "data.num_workers=0", "data.batch_size=4"]
    dm = compose_data("image_folder", over, tmp_path, data_dir)
    fit_one_step(dm)
    assert dm.num_classes == 2 and dm.classes == ["cats", "dogs"]
    assert sum(len(s) for s in dm.splits.values()) == 20 and len(dm.splits["test"]) == 2


def test_image_folder_flat_and_train_test_layouts(tmp_path: Path, data_dir: Path) -> None:
    flat = tmp_path / "flat"
    _write_images(flat, 12, (33, 33))
    dm = compose_data(
        "image_folder", [f"data.root={flat}", "data.image_size=8", "data.channels=1"], tmp_path, data_dir
    )
    dm.setup()
    assert dm.num_classes == 1 and dm.splits["train"][0][0].shape == (1, 8, 8)
    split = tmp_path / "split"
    for part, n in (("train", 10), ("test", 4)):
        for cls in ("a", "b", "c"):
            _write_images(split / part / cls, n, (32, 32))
    dm = compose_data("image_folder", [f"data.root={split}", "data.image_size=32"], tmp_path, data_dir)
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 27, "val": 3, "test": 12}


def test_image_folder_loader_reads_png_jpeg_and_pillow_only_formats_alike(tmp_path: Path) -> None:
    from PIL import Image

    from vidgen.data.image_folder import FitSize, load_image

    rgb = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    for ext in ("png", "bmp", "jpg"):  # bmp: not a torchvision.io format, read by Pillow
        Image.fromarray(rgb).save(tmp_path / f"x.{ext}")
    expected = torch.from_numpy(rgb).permute(2, 0, 1)
    for ext in ("png", "bmp"):  # lossless: the pixels exactly, in (C, H, W) uint8
        assert torch.equal(load_image(str(tmp_path / f"x.{ext}"), channels=3), expected)
    # a JPEG: as Pillow decodes the same file, up to the two libjpeg builds' rounding
    jpeg = load_image(str(tmp_path / "x.jpg"), channels=3)
    pil = torch.from_numpy(np.asarray(Image.open(tmp_path / "x.jpg").convert("RGB"))).permute(2, 0, 1)
    assert jpeg.shape == (3, 12, 20) and (jpeg.int() - pil.int()).abs().float().mean() < 2
    # one channel: Pillow's luma (ITU-R 601-2) within rounding, for both readers
    luma = torch.from_numpy(np.asarray(Image.fromarray(rgb).convert("L")))[None]
    for ext in ("png", "bmp"):
        assert (load_image(str(tmp_path / f"x.{ext}"), channels=1).int() - luma.int()).abs().max() <= 1
    fit = FitSize(8)
    assert fit(expected).shape == (3, 8, 8)
    square = expected[:, :8, :8]
    assert fit(square) is square  # already the size: untouched


def test_image_folder_empty_is_a_data_error(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "nothing").mkdir()
    for root in (tmp_path / "nothing", tmp_path / "absent"):
        dm = compose_data("image_folder", [f"data.root={root}"], tmp_path, data_dir)
        with pytest.raises(DataError, match=f"image_folder: .*{root}.*Fix: set data.root="):
            dm.setup()


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("data.val_fraction=1.5", "val_fraction must be in (0, 1)"),
        ("data.num_input_frames=5", "must equal data.seq_len"),
    ],
)
def test_bad_arguments_are_value_errors(override: str, words: str, tmp_path: Path, data_dir: Path) -> None:
    option = "moving_digits" if "frames" in override else "mnist"
    with pytest.raises(Exception, match=words.replace("(", r"\(").replace(")", r"\)")):
        compose_data(option, [override], tmp_path, data_dir)


@pytest.mark.parametrize(
    ("option", "override", "words"),
    [
        # MNISTDataModule names three parameters and passes **kwargs to TrainTestImageDataModule.
        (
            "mnist",
            "+data.val_fracton=0.2",
            ["data.val_fracton", "Did you mean val_fraction", "MNISTDataModule"],
        ),
        ("cifar10", "data.image_size=big", ["data.image_size='big'", "an integer"]),
        # Two levels: MovingMNISTDataModule -> MovingDigitsDataModule (whose __init__ has no **kwargs).
        ("moving_mnist", "+data.digit_sise=20", ["Did you mean digit_size", "Valid keys: data_dir, source"]),
    ],
)
def test_keys_passed_on_by_kwargs_are_checked(
    option: str, override: str, words: list[str], tmp_path: Path, data_dir: Path
) -> None:
    cfg = compose_train([f"data={option}", override], tmp_path, data_dir)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_former_moving_mnist_source_file_names_its_replacement(tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train(["data=moving_mnist", "data.source=file"], tmp_path, data_dir)
    check_config(cfg)  # a string, as before: the constructor says where the file went
    with pytest.raises(ConfigError, match=r"Fix: use data=moving_mnist_file instead of data.source=file"):
        build(cfg.data, "data")


def test_vidgen_data_cli_prints_shapes_and_writes_previews(tmp_path: Path, data_dir: Path, capsys) -> None:
    os.environ["VIDGEN_DATA_DIR"] = str(data_dir)
    try:
        code = data_cli(["digits", "moving_digits", "data.num_train=32", "--out", str(tmp_path / "prev")])
    finally:
        del os.environ["VIDGEN_DATA_DIR"]
    out = capsys.readouterr().out
    assert code == 0, out
    assert "val 180, test 180, train 1,437" in out and "(64, 1, 32, 32) (B, C, H, W)" in out
    assert "(16, 20, 1, 32, 32) (B, T, C, H, W)" in out and "10 input + 10 target" in out
    from PIL import Image

    assert Image.open(tmp_path / "prev" / "digits.png").size[0] > 100
    gif = Image.open(tmp_path / "prev" / "moving_digits.gif")
    assert gif.n_frames == 20


def test_vidgen_data_cli_reports_missing_data_and_unknown_names(tmp_path: Path) -> None:
    import subprocess

    env = {**os.environ, "VIDGEN_DATA_DIR": str(tmp_path / "empty")}
    cmd = [sys.executable, "-m", "vidgen.cli.data", "mnist", "nope"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "unknown dataset nope" in proc.stderr
    cmd = [sys.executable, "-m", "vidgen.cli.data", "mnist", "data.download=false", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "MNIST: missing" in proc.stderr and "Fix:" in proc.stderr


def _one_message(proc) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 12, proc.stderr  # as in test_cli.py
    return proc.stderr


def test_vidgen_train_mnist_without_data_fails_with_one_message(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    proc = run_cli(["data=mnist", "data.download=false", *TINY], tmp_path, empty, timeout=300)
    msg = _one_message(proc)
    assert "MNIST: missing" in msg and str(empty / "MNIST" / "raw") in msg and "data.download=true" in msg


def test_vidgen_train_mnist_with_corrupt_file_fails_with_one_message(tmp_path: Path) -> None:
    folder = write_mnist(tmp_path / "data", gz=False, raw=True)
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:12])
    proc = run_cli(["data=mnist", "data.download=false", *TINY], tmp_path, tmp_path / "data", timeout=300)
    msg = _one_message(proc)
    assert "MNIST: the test idx files are truncated or corrupt" in msg and str(folder) in msg


def test_gz_fixture_is_really_gzip(mnist_md5s: Path) -> None:
    raw = gzip.decompress((mnist_md5s / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").read_bytes())
    assert int.from_bytes(raw[:4], "big") == 2051
