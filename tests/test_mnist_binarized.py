"""Binarized MNIST (``data.binarize=true``) on small idx files the test writes in the real format.

The files hold grey images whose first row spells the image's number in pixels of 0 and 255, which
every binarization keeps (probabilities 0 and 1), so an image is recognised in any batch, in any order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from data_files import idx_images, idx_labels
from vidgen.metrics.feature_spaces import data_identity

from conftest import compose_train

CODE_BITS = 8  # pixels of row 0 that spell an image's number


def grey_images(n: int, seed: int) -> np.ndarray:
    """``n`` 28x28 uint8 images: row 0 codes ``i`` in 0/255 pixels, the other rows random grey levels."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)
    images[:, 0] = 0
    for i in range(n):
        images[i, 0, :CODE_BITS] = [255 * ((i >> bit) & 1) for bit in range(CODE_BITS)]
    return images


@pytest.fixture
def grey_mnist(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A data folder holding MNIST's four idx files (uncompressed, so no md5 is checked) of grey images,
    and the training images as written."""
    folder = tmp_path / "data" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    images = {"train": grey_images(40, seed=0), "t10k": grey_images(20, seed=1)}
    for prefix, x in images.items():
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_images(x))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_labels(np.arange(len(x)) % 10))
    return tmp_path / "data", images["train"]


def binarized(data_dir: Path, tmp_path: Path, *overrides: str):
    over = ["data=mnist", "data.binarize=true", "data.download=false", "data.image_size=28", *overrides]
    dm = instantiate(compose_train(over, tmp_path, data_dir).data)
    dm.setup("fit")
    return dm


def number(x: torch.Tensor, value_range: tuple[float, float]) -> int:
    """The number an image's row 0 spells (its index in the file)."""
    bits = (x[0, 0, :CODE_BITS] == value_range[1]).long()
    return int((bits << torch.arange(CODE_BITS)).sum())


def epochs(dm, seed: int, n: int = 2) -> list[dict[int, torch.Tensor]]:
    """Every training image of ``n`` successive epochs of the training loader, by its number, with
    torch seeded by ``seed`` first (as ``seed=`` seeds a run)."""
    torch.manual_seed(seed)
    drawn = []
    for _ in range(n):
        seen = {}
        for x, _ in dm.train_dataloader():
            assert x.dtype == torch.float32 and x.shape[1:] == (dm.channels, 28, 28)
            seen.update({number(image, dm.value_range): image for image in x})
        assert len(seen) == len(dm.splits["train"])  # all of them, each once
        drawn.append(seen)
    return drawn


def test_training_images_are_binarized_afresh_each_epoch_and_fixed_by_the_seed(
    grey_mnist: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    data_dir, _ = grey_mnist
    # 36 training images (4 held out for val) in 3 full batches: every image in every epoch
    dm = binarized(data_dir, tmp_path, "data.num_workers=0", "data.batch_size=12")
    first, second = epochs(dm, seed=0)
    for epoch in (first, second):
        assert all(set(x.unique().tolist()) == {-1.0, 1.0} for x in epoch.values())
    # a fresh draw each epoch: a third of the grey pixels (2 p (1 - p) on average) of every image change
    assert all((first[i] != second[i]).float().mean() > 0.25 for i in first)
    # the run's seed fixes the draws, whatever the number of workers that load them
    workers = binarized(data_dir, tmp_path, "data.num_workers=2", "data.batch_size=12")
    first_again, second_again = epochs(workers, seed=0)
    assert all(torch.equal(first[i], first_again[i]) for i in first)
    assert all(torch.equal(second[i], second_again[i]) for i in second)
    (other_seed,) = epochs(workers, seed=1, n=1)
    assert all(not torch.equal(first[i], other_seed[i]) for i in first)


def test_mean_of_the_dynamic_binarizations_is_the_grey_level(
    grey_mnist: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    data_dir, written = grey_mnist
    dm = binarized(data_dir, tmp_path, "data.num_workers=0", "data.value_range=[0,1]")
    train = dm.splits["train"]
    torch.manual_seed(0)
    draws = 4000
    x0, _ = train[0]
    mean = torch.stack([train[0][0] for _ in range(draws)]).mean(0)[0].double()
    grey = torch.from_numpy(written[number(x0, dm.value_range)]).double() / 255
    # within 5 standard errors of a Bernoulli mean at every pixel; the 0/255 code pixels exactly
    tolerance = 5 * (grey * (1 - grey) / draws).sqrt()
    assert ((mean - grey).abs() <= tolerance).all(), (mean - grey).abs().max()
    assert grey.std() > 0.1  # grey levels spread over [0, 1], so the check above is not trivial


def test_val_and_test_are_binarized_once_by_the_split_seed(
    grey_mnist: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    data_dir, _ = grey_mnist
    ends = "data.value_range=[-0.5,2.0]"

    def held_out(split_seed: int, run_seed: int, *more: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(run_seed)  # the run's seed must not matter
        dm = binarized(data_dir, tmp_path, "data.num_workers=0", ends, f"data.split_seed={split_seed}", *more)
        loaders = {"val": dm.val_dataloader, "test": dm.test_dataloader}
        return {split: torch.cat([x for x, _ in loader()]) for split, loader in loaders.items()}

    first = held_out(0, run_seed=0)
    assert set(first["test"].unique().tolist()) == {-0.5, 2.0}  # exactly the two ends of value_range
    assert set(first["val"].unique().tolist()) == {-0.5, 2.0}
    again = held_out(0, run_seed=1)
    assert all(torch.equal(first[split], again[split]) for split in first)
    other = held_out(1, run_seed=0)
    # the same 20 official test images, binarized by another draw
    assert [number(x, (-0.5, 2.0)) for x in other["test"]] == list(range(20))
    assert not torch.equal(first["test"], other["test"])
    # RGB: the grey draw repeated in every channel
    rgb = held_out(0, 0, "data.channels=3")["test"]
    assert torch.equal(rgb, first["test"].expand(-1, 3, -1, -1))


def test_binarize_is_part_of_the_data_identity_and_the_test_set_name(
    grey_mnist: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """Feature networks are cached by the data's identity: one trained on grey MNIST is not reused; and
    ``vidgen-eval`` logs the test set's name, which says the test images were binarized."""
    data_dir, _ = grey_mnist
    on = binarized(data_dir, tmp_path)
    off = binarized(data_dir, tmp_path, "data.binarize=false")
    assert data_identity(on)["binarize"] is True and data_identity(off)["binarize"] is False
    assert on.test_set_name == "mnist28 test split (20), binarized once by split_seed 0"
    assert "binarized" not in off.test_set_name
    x, _ = off.splits["train"][0]
    assert len(x.unique()) > 2  # grey when off
