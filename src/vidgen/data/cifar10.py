"""CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, 2009).

Read, downloaded and md5-checked (every batch file) by ``torchvision.datasets.CIFAR10``; this module
adds the official test batch as ``test``, a seeded validation split from the 50,000 training images,
resizing and scaling, and one ``DataError`` naming the folder, the files and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidgen.data.base import RawSplits, TrainTestImageDataModule, data_error, sha256_of


def _cifar_files() -> list[tuple[str, str]]:
    from torchvision.datasets import CIFAR10

    meta = CIFAR10.meta
    return [*(tuple(f) for f in CIFAR10.train_list + CIFAR10.test_list), (meta["filename"], meta["md5"])]


def load_cifar10(data_dir: str, download: bool) -> tuple[RawSplits, str]:
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


class CIFAR10DataModule(TrainTestImageDataModule):
    """CIFAR-10's 50,000 train / 10,000 test 32x32 colour images in 10 classes, with their labels.

    ``val`` is a seeded ``val_fraction`` of the official training set (the rest is ``train``); ``test``
    is the official test batch (``TrainTestImageDataModule``, whose arguments it takes too).

    Args:
        data_dir: folder holding ``cifar-10-batches-py/`` (torchvision's layout).
        channels: 3 (RGB) or 1 (converted to grey, ITU-R 601 luma).
        feature_extractor: the feature space of the FID metric (``val/fid_<name>``).
        **kwargs: ``image_size`` (32 = original; resized otherwise), ``batch_size``, ``val_fraction``,
            ``split_seed``, ``value_range``, ``num_workers``, ``download`` (``cifar-10-python.tar.gz``).
    """

    # The domain feature classifier: the CIFAR ResNet of He et al. 2016 (vidgen.nets.resnet_classifier).
    feature_net = "resnet8"

    def __init__(
        self, data_dir: str = "data", *, channels: int = 3, feature_extractor: str = "cifar10", **kwargs: Any
    ):
        super().__init__(data_dir, channels, feature_extractor, **kwargs)

    @property
    def dataset_id(self) -> str:
        return f"cifar10_{self.image_size}"

    def load(self) -> tuple[RawSplits, str]:
        return load_cifar10(self.data_dir, self.download)
