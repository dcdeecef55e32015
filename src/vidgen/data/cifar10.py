"""CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, 2009).

Read, downloaded and md5-checked (every batch file) by ``torchvision.datasets.CIFAR10``; this module
adds the official test batch as ``test``, a seeded validation split from the 50,000 training images,
resizing and scaling, and one ``DataError`` naming the folder, the files and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vidgen.data.base import (
    ImageTensorDataset,
    VidgenDataModule,
    check_fraction,
    data_error,
    resize_uint8,
    seeded_split,
    sha256_of,
)


def _cifar_files() -> list[tuple[str, str]]:
    from torchvision.datasets import CIFAR10

    meta = CIFAR10.meta
    return [*(tuple(f) for f in CIFAR10.train_list + CIFAR10.test_list), (meta["filename"], meta["md5"])]


def load_cifar10(data_dir: str, download: bool) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
    """``{"train": (images, labels), "test": ...}`` with uint8 images ``(N, 3, 32, 32)``, and a checksum.

    The checksum is built from torchvision's md5 constants, which every batch file has just been checked
    against.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    folder = Path(data_dir) / CIFAR10.base_folder
    expected = [name for name, _ in _cifar_files()]
    splits = {}
    try:
        for split in ("train", "test"):
            ds = CIFAR10(data_dir, train=split == "train", download=download)
            images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            splits[split] = (images, torch.as_tensor(ds.targets, dtype=torch.long))
    except Exception as e:  # torchvision: RuntimeError("Dataset not found or corrupted"), URLError offline
        missing = [n for n in expected if not (folder / n).exists()]
        corrupt = [
            n
            for n, md5 in _cifar_files()
            if (folder / n).exists() and not check_integrity(str(folder / n), md5)
        ]
        if corrupt:
            raise data_error(
                "CIFAR-10",
                folder,
                expected,
                f"{', '.join(corrupt)} failed torchvision's md5 check (truncated or corrupt)",
                f"delete {folder} and rerun with data.download=true, or copy intact files there.",
            ) from e
        if missing:
            why = (
                f"; download failed: {e.__class__.__name__}: {str(e).splitlines()[0][:160]}"
                if download
                else ""
            )
            raise data_error(
                "CIFAR-10",
                folder,
                expected,
                f"missing {', '.join(missing)}{why}",
                "set VIDGEN_DATA_DIR (or data.data_dir) to a folder that holds cifar-10-batches-py/, or set "
                "data.download=true to download cifar-10-python.tar.gz (170 MB).",
            ) from e
        raise data_error(
            "CIFAR-10",
            folder,
            expected,
            f"the files do not load ({e.__class__.__name__}: {e})",
            f"replace {folder} with an intact copy.",
        ) from e
    checksum = sha256_of(torch.tensor([int(md5, 16) % 2**62 for _, md5 in _cifar_files()]))
    return splits, checksum


class CIFAR10DataModule(VidgenDataModule):
    """CIFAR-10's 50,000 train / 10,000 test 32x32 colour images in 10 classes, with their labels.

    Args:
        data_dir: folder holding ``cifar-10-batches-py/`` (torchvision's layout).
        image_size: side of the square images (32 = original; resized otherwise).
        channels: 3 (RGB) or 1 (converted to grey, ITU-R 601 luma).
        batch_size: training and evaluation batch size.
        val_fraction: part of the training set held out for validation.
        split_seed: seed of that split, separate from the run's ``seed``.
        value_range: pixel range; ``[-1, 1]`` for tanh generators, ``[0, 1]`` for Bernoulli likelihoods.
        num_workers: DataLoader workers.
        download: download ``cifar-10-python.tar.gz`` with torchvision when files are missing.
        feature_extractor: the feature space of the FID metric (``val/fid_<name>``).
    """

    data_kind = "image"
    num_classes = 10
    # The domain feature classifier: the CIFAR ResNet of He et al. 2016 (vidgen.nets.resnet_classifier).
    feature_net = "resnet"

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 32,
        channels: int = 3,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 2,
        download: bool = True,
        feature_extractor: str = "cifar10",
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        check_fraction("val_fraction", val_fraction)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.download = download

    @property
    def dataset_id(self) -> str:
        return f"cifar10_{self.image_size}"

    def prepare_data(self) -> None:
        if self.download:
            load_cifar10(self.data_dir, download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw, self.checksum = load_cifar10(self.data_dir, self.download)

        def images(split: str) -> torch.Tensor:
            x = resize_uint8(raw[split][0], self.image_size)
            if self.channels == 1:
                from torchvision.transforms.v2.functional import rgb_to_grayscale

                x = rgb_to_grayscale(x)
            return x

        train_x, train_y = images("train"), raw["train"][1]
        keep, held = seeded_split(len(train_x), self.val_fraction, self.split_seed)
        self.splits = {
            "train": ImageTensorDataset(train_x[keep], train_y[keep], self.value_range),
            "val": ImageTensorDataset(train_x[held], train_y[held], self.value_range),
            "test": ImageTensorDataset(images("test"), raw["test"][1], self.value_range),
        }
