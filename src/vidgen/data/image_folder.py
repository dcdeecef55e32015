"""A user's own images, read by ``torchvision.datasets.ImageFolder``: how to train on your own data.

Accepted layouts of ``root`` (any image size or format Pillow reads; resized and centre-cropped):

- ``root/train/<class>/*.jpg`` (+ optional ``root/val/``, ``root/test/``): the given splits are used, the
  missing ones are carved from ``train`` with ``split_seed``;
- ``root/<class>/*.jpg``: one pool, split into train/val/test by ``val_fraction``/``test_fraction``;
- ``root/*.jpg`` (no class folders): one unlabelled class, every label is 0.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vidgen.data.base import VidgenDataModule, check_split_fractions, from_uint8, seeded_split
from vidgen.errors import DataError


def load_image(path: str, channels: int) -> torch.Tensor:
    """The image at ``path`` as a uint8 tensor ``(channels, H, W)``.

    JPEG, PNG, WebP and GIF are decoded by ``torchvision.io.decode_image`` straight into a tensor (libjpeg-
    turbo; 18,000 CIFAR-10 JPEGs/s on one core here against 4,500 through PIL and ``v2.PILToTensor``, which
    kept a DCGAN's two data workers below 10x its consumption); any other format Pillow reads goes
    through Pillow, as ``ImageFolder``'s own loader does.
    """
    from torchvision.io import ImageReadMode, decode_image

    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    try:
        return decode_image(path, mode=mode)
    except RuntimeError:  # BMP, TIFF, ...: not torchvision.io's formats
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(path) as image:
            return pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))


class FitSize(torch.nn.Module):
    """Shorter side resized to ``size`` (antialiased), then centre-cropped to ``size`` x ``size``; images
    already of that size pass through untouched (the resize of v2 would still run)."""

    def __init__(self, size: int):
        super().__init__()
        from torchvision.transforms import v2

        self.size = size
        self.fit = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image if tuple(image.shape[-2:]) == (self.size, self.size) else self.fit(image)


def _image_folder(root: Path, classes: list[str] | None, transform, channels: int):
    """An ``ImageFolder`` on ``root`` that also takes a flat folder, and reuses train's class order."""
    from functools import partial

    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import find_classes

    class _Folder(ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            if classes is not None:
                return classes, {c: i for i, c in enumerate(classes)}
            try:
                return find_classes(directory)
            except FileNotFoundError:  # no class sub-folders: the folder itself is the one class
                return [""], {"": 0}

    return _Folder(str(root), transform=transform, loader=partial(load_image, channels=channels))


class _Scaled(Dataset):
    """Items ``indices`` of an ImageFolder as (uint8 tensor scaled to ``value_range``, label)."""

    def __init__(self, folder: Dataset, indices: torch.Tensor | None, value_range: Sequence[float]):
        self.folder, self.indices, self.value_range = folder, indices, value_range

    def __len__(self) -> int:
        return len(self.folder) if self.indices is None else len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = index if self.indices is None else int(self.indices[index])
        x, y = self.folder[i]
        return from_uint8(x, self.value_range), torch.tensor(y, dtype=torch.long)


class ImageFolderDataModule(VidgenDataModule):
    """Images from ``root`` resized (shorter side) and centre-cropped to ``image_size``, with folder labels.

    ``num_classes`` is the number of class folders (1 for a flat folder), known after ``setup``.

    Args:
        data_dir: where derived artefacts (e.g. the cached FID feature classifier) are stored.
        root: the image folder (see the module docstring for its layouts).
        image_size: side of the square images produced.
        channels: 3 (RGB) or 1 (grey).
        batch_size: training and evaluation batch size.
        val_fraction, test_fraction: parts held out when ``root`` has no ``val/``/``test/`` folder.
        split_seed: seed of those splits, separate from the run's ``seed``.
        value_range: pixel range; ``[-1, 1]`` for tanh generators, ``[0, 1]`` for Bernoulli likelihoods.
        num_workers: DataLoader workers (images are decoded in them).
        feature_extractor: the feature space of the FID metric (``val/fid_<name>``).
    """

    data_kind = "image"
    num_classes: int | None = None
    # The domain feature classifier: natural images need more than LeNet-5; the CIFAR ResNet of He et al.
    # 2016 runs at 32x32 (larger images are downsampled to it, see vidgen.nets.resnet_classifier).
    feature_net = "resnet8"

    def __init__(
        self,
        data_dir: str = "data",
        root: str = "data/images",
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        value_range: Sequence[float] = (-1.0, 1.0),
        num_workers: int = 2,
        feature_extractor: str = "image_folder",
    ):
        super().__init__(
            data_dir, image_size, channels, batch_size, value_range, num_workers, feature_extractor
        )
        check_split_fractions(val_fraction, test_fraction)
        self.root = str(root)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.classes: list[str] = []

    @property
    def dataset_id(self) -> str:
        return f"image_folder_{Path(self.root).resolve().name}{self.image_size}"

    def _transform(self) -> FitSize:
        return FitSize(self.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        root = Path(self.root)
        fix = "set data.root=<folder of images> (class and train/test sub-folders are optional)."
        if not root.is_dir():
            raise DataError(
                f"image_folder: data.root={self.root} is not a folder (expected image files, "
                f"e.g. {root}/<class>/*.jpg). Fix: {fix}"
            )
        has_splits = (root / "train").is_dir()
        transform = self._transform()
        try:
            pool = _image_folder(root / "train" if has_splits else root, None, transform, self.channels)
            classes = list(pool.classes)
            given = {
                s: _image_folder(root / s, classes, transform, self.channels)
                for s in ("val", "test")
                if (root / s).is_dir()
            }
            pool[0]  # decode one image now: an unreadable folder fails here, not in a worker
        except (FileNotFoundError, OSError, ValueError) as e:
            raise DataError(
                f"image_folder: no readable images in {root} ({str(e).splitlines()[0][:200]}); expected "
                f"files (.jpg, .png, ...) in {root}/[train/]<class>/ or {root}/. Fix: {fix}"
            ) from e
        self.classes = classes if classes != [""] else ["all"]
        self.num_classes = len(self.classes)
        train_idx: torch.Tensor | None = torch.arange(len(pool))
        splits: dict[str, _Scaled] = {}
        for name, fraction in (("test", self.test_fraction), ("val", self.val_fraction)):
            if name in given:
                splits[name] = _Scaled(given[name], None, self.value_range)
            else:
                keep, held = seeded_split(len(train_idx), fraction, self.split_seed)
                splits[name] = _Scaled(pool, train_idx[held], self.value_range)
                train_idx = train_idx[keep]
        splits["train"] = _Scaled(pool, train_idx, self.value_range)
        self.splits = {s: splits[s] for s in ("train", "val", "test")}
        h = hashlib.sha256()
        for ds in [pool, *given.values()]:
            for path, label in ds.samples:
                h.update(f"{os.path.relpath(path, root)}:{os.path.getsize(path)}:{label}\n".encode())
        self.checksum = h.hexdigest()
