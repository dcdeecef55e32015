"""Writers of small dataset files in the real on-disk formats, for the offline data tests, and the one
condition on which the tests of the real offline copies run (``requires_real_data``)."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

#: The real offline copies: ``$VIDGEN_SHARED_DATA``, else ``<repo>/../shared/data``.
SHARED = Path(os.environ.get("VIDGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
_MNIST = [f"MNIST/raw/{p}-{k}-ubyte" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
#: Each real dataset as the files its datamodule reads, relative to a data folder; a file also counts
#: in its distributed ``.gz`` form (torchvision reads MNIST's gzipped idx files as well).
REAL_DATA = {
    "mnist": _MNIST,
    "cifar10": [
        f"cifar-10-batches-py/{b}" for b in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    ],
    "cifar10-jpg": ["cifar10-jpg/train", "cifar10-jpg/test"],
    "fsdd": ["fsdd/recordings"],
}


def missing_real_data(name: str, folder: Path = SHARED) -> list[str]:
    """The files of the real dataset ``name`` (``REAL_DATA``) that ``folder`` holds in neither form."""
    return [f for f in REAL_DATA[name] if not (folder / f).exists() and not (folder / f"{f}.gz").exists()]


def real_data_present(name: str, folder: Path = SHARED) -> bool:
    return not missing_real_data(name, folder)


def requires_real_data(name: str) -> pytest.MarkDecorator:
    """Skips a test, saying which files are missing where, unless the real dataset ``name`` is on disk."""
    missing = missing_real_data(name)
    reason = (f"real {name} data not in {SHARED} (missing, also as .gz: {', '.join(missing)}); "
              "set VIDGEN_SHARED_DATA to a folder holding it")  # fmt: skip
    return pytest.mark.skipif(bool(missing), reason=reason)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    """The idx3-ubyte format: big-endian magic, count, rows, cols, then uint8 pixels."""
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 images, each a bright square whose position encodes its label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, y in enumerate(labels):
        images[i, 4 + y : 12 + y, 6:20] = 255
    return images, labels


def write_mnist(root: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, raw: bool = False) -> Path:
    """``root/MNIST/raw/`` with the four idx files (gzipped as distributed, and/or uncompressed)."""
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = mnist_arrays(n, seed)
        for kind, data in (("images-idx3", idx_images(images)), ("labels-idx1", idx_labels(labels))):
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            if raw:
                (folder / name).write_bytes(data)
    return folder


def write_cifar10(root: Path, n_per_batch: int = 12) -> Path:
    """``root/cifar-10-batches-py/`` with five data batches, the test batch and batches.meta (pickles)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "batch_label": name.encode(),
            "labels": rng.integers(0, 10, n_per_batch).tolist(),
            "data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            "filenames": [f"{i}.png".encode() for i in range(n_per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": names, "num_cases_per_batch": n_per_batch})
    )
    return folder


def write_moving_mnist(root: Path, n: int = 40) -> Path:
    """``root/MovingMNIST/mnist_test_seq.npy``: uint8 (20, n, 64, 64), the published layout."""
    folder = root / "MovingMNIST"
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(0).integers(0, 256, (20, n, 64, 64), dtype=np.uint8)
    path = folder / "mnist_test_seq.npy"
    np.save(path, frames)
    return path


#: The recordings ``write_fsdd`` writes by default: 2 speakers x 2 digits x 5 indices = 20, 8 of them test.
FSDD_SMALL = [(d, s, i) for d in (3, 7) for s in ("george", "theo") for i in (0, 4, 5, 10, 49)]


def fsdd_wave(digit: int, index: int, rate: int = 8000) -> np.ndarray:
    """A decaying tone of ``(digit + 1) x 200`` Hz, ``0.05 + 0.04 * index`` s long, as int16 samples."""
    t = np.arange(round(rate * (0.05 + 0.04 * index))) / rate
    return (0.5 * np.sin(2 * np.pi * 200 * (digit + 1) * t) * np.exp(-3 * t) * 32767).astype(np.int16)


def write_fsdd(root: Path, recordings: list[tuple[int, str, int]] = FSDD_SMALL, rate: int = 8000) -> Path:
    """``root/fsdd/recordings/{digit}_{speaker}_{index}.wav``: mono 16-bit PCM WAVs (scipy writes RIFF)."""
    from scipy.io import wavfile

    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    for digit, speaker, index in recordings:
        wavfile.write(folder / f"{digit}_{speaker}_{index}.wav", rate, fsdd_wave(digit, index, rate))
    return folder
