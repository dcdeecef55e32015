"""MNIST (LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 1998).

Read, downloaded and md5-checked by ``torchvision.datasets.MNIST``; this module adds the official test
split as ``test``, a seeded validation split carved from the 60,000 training images, resizing to
``image_size`` and scaling to ``value_range``, the binarized MNIST of the likelihood papers
(``binarize=true``), and turns every way the files can be missing or broken into one ``DataError`` that
names the folder, the files and the fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

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


def binarization_seed(split_seed: int, split: str) -> int:
    """The seed of the one binarization of ``split`` (``val``, ``test``): derived from ``split_seed`` and
    the split's name, so it is the same in every run and apart from the seed of the split itself."""
    return int.from_bytes(hashlib.sha256(f"binarize {split} {split_seed}".encode()).digest()[:7], "big")


class BinarizedImageDataset(Dataset):
    """Grey uint8 images ``(N, 1, H, W)`` binarized by Bernoulli draws of their intensity ``x / 255``,
    returned with ``channels`` channels at exactly the two ends of ``value_range``, with their labels.

    The binarized MNIST whose likelihoods the VAE papers compare: training images are binarized afresh
    each time they are drawn (``seed=None``; the dynamic binarization of Burda et al., "Importance
    Weighted Autoencoders", ICLR 2016), held-out images once (``seed`` given: drawn here, by a generator
    with that seed), so every run scores the same test set. A dynamic draw of ``dataset[(index, seed)]``
    (the pairs ``DrawSeededSampler`` yields) comes from a generator with that seed, so it does not depend
    on the DataLoader worker that loads it; ``dataset[index]`` draws from torch's global generator.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        value_range: Sequence[float],
        channels: int = 1,
        seed: int | None = None,
    ):
        grey = images.ndim == 4 and images.shape[1] == 1
        if images.dtype != torch.uint8 or not grey or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N, 1, H, W) images and N labels, got {tuple(images.shape)}")
        self.images, self.labels, self.channels = images, labels.long(), channels
        self.low, self.high = float(value_range[0]), float(value_range[1])
        self.fixed = None
        if seed is not None:
            probs = images.float().div_(255)
            self.fixed = torch.bernoulli(probs, generator=torch.Generator().manual_seed(seed)).bool()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = index if isinstance(index, tuple) else (index, None)
        if self.fixed is not None:
            bits = self.fixed[index]
        else:
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            bits = torch.bernoulli(self.images[index].float().div_(255), generator=generator).bool()
        x = torch.where(bits, self.high, self.low).expand(self.channels, -1, -1).contiguous()
        return x, self.labels[index]


class DrawSeededSampler(Sampler[tuple[int, int]]):
    """One shuffled epoch of ``range(n)`` as ``(index, seed)`` pairs: the seed of that draw's randomness.

    The order and the seeds come from one generator whose seed is drawn from torch's global generator at
    each epoch, as ``RandomSampler`` draws its own (so the order is the one ``shuffle=True`` gives, and
    the run's ``seed`` fixes all of it). The seeds travel with the indices into the DataLoader's workers,
    so the draws do not depend on ``num_workers`` or on which worker loads an item, persistent or not.
    Under DDP, Lightning shards this sampler's list with ``DistributedSamplerWrapper``, which needs the
    same list on every rank: ``seed`` seeds every rank's global generator alike, and the ranks must draw
    from it alike until the epoch starts.
    """

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        order = torch.randperm(self.n, generator=generator).tolist()
        seeds = torch.randint(2**62, (self.n,), generator=generator).tolist()
        return iter(zip(order, seeds, strict=True))


class MNISTDataModule(TrainTestImageDataModule):
    """MNIST's 60,000 train / 10,000 test handwritten 28x28 digits with their class labels.

    ``val`` is a seeded ``val_fraction`` of the official training set (the rest is ``train``); ``test``
    is the official test set (``TrainTestImageDataModule``, whose arguments it takes too).

    Args:
        data_dir: folder holding ``MNIST/raw/`` (torchvision's layout); ``${paths.data_dir}`` by default.
        channels: 1 (grey) or 3 (grey repeated, for nets built for RGB).
        feature_extractor: the feature space of the FID metric (``val/fid_<name>``).
        binarize: the binarized MNIST of the likelihood papers (Burda et al. 2016): every pixel (after
            resizing to ``image_size``) is 1 with probability its intensity, else 0, mapped to the two
            ends of ``value_range``; drawn afresh each time a training image is drawn, once for ``val``
            and ``test`` (seeded by ``split_seed``, the same in every run). False: grey images.
        **kwargs: ``image_size`` (28 = original; 32 for DCGAN's power-of-two nets), ``batch_size``,
            ``val_fraction``, ``split_seed``, ``value_range``, ``num_workers``, ``download``.
    """

    def __init__(
        self,
        data_dir: str = "data",
        *,
        channels: int = 1,
        feature_extractor: str = "mnist",
        binarize: bool = False,
        **kwargs: Any,
    ):
        super().__init__(data_dir, channels, feature_extractor, **kwargs)
        self.binarize = binarize

    @property
    def dataset_id(self) -> str:
        return f"mnist{self.image_size}"

    @property
    def test_set_name(self) -> str:
        name = super().test_set_name
        return f"{name}, binarized once by split_seed {self.split_seed}" if self.binarize else name

    def load(self) -> tuple[RawSplits, str]:
        raw, checksum = load_mnist(self.data_dir, self.download)
        return {split: (x.unsqueeze(1), y) for split, (x, y) in raw.items()}, checksum

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        super().setup(stage)
        if self.binarize:
            self.splits = {
                split: BinarizedImageDataset(
                    ds.images[:, :1],  # grey (the channels are copies): one draw for all channels
                    ds.labels,
                    self.value_range,
                    self.channels,
                    seed=None if split == "train" else binarization_seed(self.split_seed, split),
                )
                for split, ds in self.splits.items()
            }

    def train_sampler(self) -> Sampler | None:
        return DrawSeededSampler(len(self.splits["train"])) if self.binarize else None
