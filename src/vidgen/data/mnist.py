"""MNIST (LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 1998).

Read, downloaded and md5-checked by ``torchvision.datasets.MNIST``; this module adds the official test
split as ``test``, a seeded validation split carved from the 60,000 training images, resizing to
``image_size`` and scaling to ``value_range``, and turns every way the files can be missing or broken
into one ``DataError`` that names the folder, the files and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidgen.data.base import RawSplits, TrainTestImageDataModule, data_error, sha256_of

# What torchvision's idx reader raises on a wrong magic number or a truncated file.
READ_ERRORS = (AssertionError, RuntimeError, ValueError, TypeError, KeyError, IndexError, OSError, EOFError)


def _mnist_files() -> list[tuple[str, str]]:
    """``(gz name, md5)`` of the four original files, from torchvision's own constants."""
    from torchvision.datasets import MNIST

    return list(MNIST.resources)


def load_mnist(data_dir: str, download: bool) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
    """``{"train": (images, labels), "test": ...}`` with uint8 images ``(N, 28, 28)``, and a checksum.

    Raises ``DataError`` when the files are missing (and cannot be downloaded), fail torchvision's md5
    check, or do not parse (wrong idx magic, truncated).
    """
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import check_integrity

    raw = Path(data_dir) / "MNIST" / "raw"
    expected = [name.removesuffix(".gz") + "[.gz]" for name, _ in _mnist_files()]
    fix_missing = (
        f"set VIDGEN_DATA_DIR (or data.data_dir) to a folder holding MNIST/raw/, copy the files into {raw}, "
        "or set data.download=true to download them (11 MB)."
    )
    download_error = None
    if download:
        try:
            MNIST(data_dir, train=True, download=True)
        except Exception as e:  # URLError, RuntimeError("Error downloading ..."), OSError
            download_error = f"{e.__class__.__name__}: {str(e).splitlines()[0][:200]}"
    bad_gz = [
        name
        for name, md5 in _mnist_files()
        if (raw / name).exists()
        and not (raw / name.removesuffix(".gz")).exists()
        and not check_integrity(str(raw / name), md5)
    ]
    if bad_gz:
        raise data_error(
            "MNIST",
            raw,
            expected,
            f"{', '.join(bad_gz)} failed torchvision's md5 check (truncated or corrupt)",
            f"delete {', '.join(bad_gz)} and run again with data.download=true, or copy intact files there.",
        )
    missing = [n.removesuffix(".gz") for n, _ in _mnist_files() if not (raw / n.removesuffix(".gz")).exists()]
    if missing:
        problem = f"missing {', '.join(missing)}"
        if download_error:
            problem += f" and the download failed ({download_error})"
        elif not download:
            problem += " (data.download=false)"
        raise data_error("MNIST", raw, expected, problem, fix_missing)
    splits = {}
    for split in ("train", "test"):
        try:
            ds = MNIST(data_dir, train=split == "train", download=False)
        except READ_ERRORS as e:
            detail = f"{e.__class__.__name__}: {str(e)[:160]}" if str(e) else e.__class__.__name__
            raise data_error(
                "MNIST",
                raw,
                expected,
                f"the {split} idx files are truncated or corrupt (wrong idx magic or size; {detail})",
                f"replace the files in {raw} with intact copies (or delete them, data.download=true).",
            ) from e
        images, labels = ds.data, ds.targets
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels) or len(labels) == 0:
            raise data_error(
                "MNIST",
                raw,
                expected,
                f"the {split} files disagree: images {tuple(images.shape)} vs {len(labels)} labels "
                "(expected N x 28 x 28 images and N labels)",
                f"replace the files in {raw} with intact copies.",
            )
        if labels.min() < 0 or labels.max() > 9:
            raise data_error(
                "MNIST",
                raw,
                expected,
                f"the {split} labels are outside 0..9",
                f"replace the files in {raw} with intact copies.",
            )
        splits[split] = (images, labels.long())
    checksum = sha256_of(*splits["train"], *splits["test"])
    return splits, checksum


class MNISTDataModule(TrainTestImageDataModule):
    """MNIST's 60,000 train / 10,000 test handwritten 28x28 digits with their class labels.

    ``val`` is a seeded ``val_fraction`` of the official training set (the rest is ``train``); ``test``
    is the official test set (``TrainTestImageDataModule``, whose arguments it takes too).

    Args:
        data_dir: folder holding ``MNIST/raw/`` (torchvision's layout); ``${paths.data_dir}`` by default.
        channels: 1 (grey) or 3 (grey repeated, for nets built for RGB).
        feature_extractor: the feature space of the FID metric (``val/fid_<name>``).
        **kwargs: ``image_size`` (28 = original; 32 for DCGAN's power-of-two nets), ``batch_size``,
            ``val_fraction``, ``split_seed``, ``value_range``, ``num_workers``, ``download``.
    """

    def __init__(
        self, data_dir: str = "data", *, channels: int = 1, feature_extractor: str = "mnist", **kwargs: Any
    ):
        super().__init__(data_dir, channels, feature_extractor, **kwargs)

    @property
    def dataset_id(self) -> str:
        return f"mnist{self.image_size}"

    def load(self) -> tuple[RawSplits, str]:
        raw, checksum = load_mnist(self.data_dir, self.download)
        return {split: (x.unsqueeze(1), y) for split, (x, y) in raw.items()}, checksum
