"""The Free Spoken Digit Dataset (FSDD; Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset,
Zenodo DOI 10.5281/zenodo.1342401): 3,000 recordings of the digits 0..9 spoken in English by 6 speakers,
mono 16-bit PCM WAV at 8 kHz, ``recordings/{digit}_{speaker}_{index}.wav`` with ``index`` 0..49.

The official split (the dataset's README): recordings 0..4 of each digit and speaker are the test set,
5..49 the training set; ``val`` is a seeded ``val_fraction`` of the training recordings. Every recording
is in exactly one split. Clips are cut or zero-padded to ``clip_samples`` (WaveGAN's 16,384 samples =
2.05 s at 8 kHz holds every FSDD recording but a few of the longest, which lose their end) and given as

- ``waveform``: ``(1, clip_samples)`` in [-1, 1] (16-bit samples / 32768), for WaveGAN;
- ``spectrogram``: SpecGAN's normalized log-magnitude STFT ``(1, n_fft / 2, clip_samples / hop_length)``
  in [-1, 1] (``vidgen.audio.SpecGANSpectrogram``, per-bin statistics of the training clips), 128 x 128
  by default.

Labels are the digits; the speakers are ``SpokenDigits.speakers`` (indices into ``speaker_names``).

Files are read by ``scipy.io.wavfile`` (``vidgen.audio`` says why not torchaudio). Upstream publishes no
checksum and GitHub builds its archives on request, so the download (torchvision's
``download_and_extract_archive`` of the archive of one pinned commit) is verified by its content: the
SHA-256 of the md5 manifest of every recording (``recordings/<name>``, sorted, ``md5sum``'s format),
which ``../shared/data/fsdd/MD5SUMS`` holds for the staged copy of the same commit. Reading and checking
all 3,000 files takes about 0.4 s, so nothing is cached.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgen.audio import SpecGANSpectrogram, fit_length
from vidgen.data.base import VidgenDataModule, check_fraction, data_error, seeded_split
from vidgen.errors import DataError

#: The commit of the staged copy (../shared/data/README.txt); the archive of a commit does not change.
FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
#: SHA-256 of the md5 manifest of the 3,000 recordings of that commit (see the module docstring).
FSDD_MANIFEST_SHA256 = "b970ad27af2ee4e5e7a0d22d362c9c291853ec714a0193b103870a5637de65fe"
FSDD_RECORDINGS = 3000
SAMPLE_RATE = 8000
#: Recordings numbered below this are the official test set.
TEST_INDICES = 5
NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[a-z]+)_(?P<index>[0-9]+)\.wav$")
REPRESENTATIONS = ("waveform", "spectrogram")


def manifest_sha256(folder: Path, names: Sequence[str]) -> str:
    """SHA-256 of the ``md5  recordings/<name>`` lines of the sorted ``names`` in ``folder`` (the format of
    MD5SUMS)."""
    md5s = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in names}
    lines = [f"{md5s[n]}  recordings/{n}\n" for n in sorted(names)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def download_fsdd(root: Path) -> None:
    """Downloads the archive of ``FSDD_COMMIT`` and keeps its ``recordings/`` as ``root/recordings``."""
    from torchvision.datasets.utils import download_and_extract_archive

    # md5=None: GitHub publishes no checksum of its on-demand archives; the content is checked instead.
    download_and_extract_archive(FSDD_URL, str(root), filename=f"fsdd-{FSDD_COMMIT[:7]}.zip", md5=None)
    extracted = root / f"free-spoken-digit-dataset-{FSDD_COMMIT}"
    (extracted / "recordings").rename(root / "recordings")
    shutil.rmtree(extracted)  # the rest is the repository's code and notebooks, not data
    (root / f"fsdd-{FSDD_COMMIT[:7]}.zip").unlink()


class SpokenDigits(Dataset):
    """Recordings (int16 arrays of their own lengths) with digits and speakers, returned as fixed-length
    clips ``(1, clip_samples)`` in [-1, 1], or their SpecGAN spectrograms when ``spectrogram`` is given."""

    def __init__(self, recordings: list[np.ndarray], digits: torch.Tensor, speakers: torch.Tensor,
                 clip_samples: int, spectrogram: SpecGANSpectrogram | None = None):  # fmt: skip
        self.recordings, self.digits, self.speakers = recordings, digits.long(), speakers.long()
        self.clip_samples, self.spectrogram = clip_samples, spectrogram

    def __len__(self) -> int:
        return len(self.recordings)

    def waveform(self, index: int) -> torch.Tensor:
        wave = torch.from_numpy(self.recordings[index].astype(np.float32) / 32768.0)
        return fit_length(wave, self.clip_samples).unsqueeze(0)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.waveform(index)
        if self.spectrogram is not None:
            x = self.spectrogram.encode(x.unsqueeze(0)).squeeze(0)
        return x, self.digits[index]


class SpokenDigitsDataModule(VidgenDataModule):
    """FSDD with its official test split, a seeded validation split and fixed-length clips.

    Args:
        data_dir: folder holding ``fsdd/recordings/*.wav`` (``${paths.data_dir}``; downloaded there, 21 MB,
            when ``download`` is true and the folder is missing).
        representation: ``waveform`` (WaveGAN) or ``spectrogram`` (SpecGAN).
        clip_samples: samples per clip (16384 = 2.05 s, WaveGAN's length).
        sample_rate: the rate every recording must have (FSDD's 8000 Hz); not resampled.
        n_fft, hop_length: the STFT of the spectrogram (256 / 128: 128 x 128 images of 16,384 samples).
        batch_size: training and evaluation batch size.
        val_fraction: part of the training recordings held out for validation.
        split_seed: seed of that split, separate from the run's ``seed``.
        num_workers: DataLoader workers.
        download: download the recordings when the folder is missing.
        feature_extractor: the name of the feature space of the sample-quality metrics.
    """

    data_kind = "audio"
    num_classes = 10
    feature_net = "fsdd_cnn"

    def __init__(
        self,
        data_dir: str = "data",
        representation: str = "waveform",
        clip_samples: int = 16384,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = 256,
        hop_length: int = 128,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        download: bool = True,
        feature_extractor: str = "fsdd",
    ):
        if representation not in REPRESENTATIONS:
            raise ValueError(f"data.representation must be waveform or spectrogram, got {representation!r}.")
        if clip_samples < 256:
            raise ValueError(f"data.clip_samples must be >= 256 (32 ms at 8 kHz), got {clip_samples}.")
        # image_size: the side of the spectrogram images (frequency bins), for code that shows data as images
        super().__init__(data_dir, n_fft // 2, 1, batch_size, (-1.0, 1.0), num_workers, feature_extractor)
        check_fraction("val_fraction", val_fraction)
        self.representation, self.clip_samples, self.sample_rate = representation, clip_samples, sample_rate
        self.n_fft, self.hop_length = n_fft, hop_length
        self.val_fraction, self.split_seed, self.download = val_fraction, split_seed, download
        self.spectrogram = (
            SpecGANSpectrogram(clip_samples, n_fft, hop_length) if representation == "spectrogram" else None
        )
        self.speaker_names: list[str] = []
        self.recording_names: dict[str, list[str]] = {}

    @property
    def folder(self) -> Path:
        return Path(self.data_dir) / "fsdd" / "recordings"

    @property
    def dataset_id(self) -> str:
        return f"fsdd_{self.representation}{self.clip_samples}"

    @property
    def item_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``(1, clip_samples)`` or ``(1, frequency bins, frames)``."""
        return (1, self.clip_samples) if self.spectrogram is None else (1, *self.spectrogram.shape)

    def _error(self, problem: str, fix: str) -> DataError:
        return data_error("FSDD", self.folder, ["{digit}_{speaker}_{index}.wav"], problem, fix)

    def prepare_data(self) -> None:
        if self.download and not self.folder.is_dir():
            self._download()

    def _download(self) -> None:
        try:
            download_fsdd(self.folder.parent)
        except Exception as e:  # URLError, HTTP errors, a bad archive: one message below
            raise self._error(
                f"the folder is missing and the download of {FSDD_URL} failed ({e.__class__.__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else ''})",
                "set VIDGEN_DATA_DIR (or data.data_dir) to a folder holding fsdd/recordings/, or copy the "
                f"recordings of commit {FSDD_COMMIT[:7]} there.",
            ) from e

    def load(self) -> tuple[list[np.ndarray], list[tuple[int, str, int]]]:
        """Every recording (int16) and its ``(digit, speaker, index)``, checked; raises ``DataError``."""
        if not self.folder.is_dir():
            if not self.download:
                raise self._error(
                    "the folder is missing (data.download=false)",
                    "set VIDGEN_DATA_DIR (or data.data_dir) to a folder holding fsdd/recordings/ (e.g. "
                    "../shared/data), or set data.download=true to download them (21 MB).",
                )
            self._download()
        names = sorted(p.name for p in self.folder.iterdir() if p.is_file())
        strays = [n for n in names if not NAME.match(n)]
        if strays:
            raise self._error(
                f"{len(strays)} file(s) are not FSDD recordings by their name: {', '.join(strays[:5])}",
                f"remove them from {self.folder}; recordings are named like 7_theo_12.wav.",
            )
        if not names:
            raise self._error("the folder holds no recordings", "copy the recordings there, or delete the "
                              "empty folder and set data.download=true.")  # fmt: skip
        digest = manifest_sha256(self.folder, names)
        if digest != FSDD_MANIFEST_SHA256:
            raise self._error(
                f"the {len(names)} recordings are not the {FSDD_RECORDINGS:,} of FSDD commit "
                f"{FSDD_COMMIT[:7]} "
                f"(md5 manifest sha256 {digest[:12]}..., expected {FSDD_MANIFEST_SHA256[:12]}...; files "
                "missing, added or corrupt)",
                f"delete {self.folder} and run again with data.download=true, or copy intact recordings "
                "there (../shared/data/fsdd/MD5SUMS lists their md5s: `md5sum -c MD5SUMS` names bad ones).",
            )
        self.checksum = digest
        recordings, meta = [], []
        for name in names:
            recordings.append(self._read(name))
            match = NAME.match(name)
            meta.append((int(match["digit"]), match["speaker"], int(match["index"])))
        return recordings, meta

    def _read(self, name: str) -> np.ndarray:
        from scipy.io import wavfile

        try:
            rate, samples = wavfile.read(self.folder / name)
        except (ValueError, EOFError, OSError) as e:  # scipy: "File format ... not understood", EOF, ...
            raise self._error(
                f"{name} is not a readable WAV file ({e.__class__.__name__}: {str(e)[:120]})",
                f"replace {name} with an intact copy.",
            ) from e
        if rate != self.sample_rate or samples.dtype != np.int16 or samples.ndim != 1 or len(samples) == 0:
            channels = 1 if samples.ndim == 1 else samples.shape[1]
            raise self._error(
                f"{name} is {rate} Hz, {samples.dtype}, {channels} channel(s), {len(samples)} samples; "
                f"expected {self.sample_rate} Hz (data.sample_rate) mono 16-bit PCM (int16), as FSDD "
                "publishes",
                f"replace {name} with the original recording (resample/convert copies elsewhere).",
            )
        return samples

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        recordings, meta = self.load()
        self.speaker_names = sorted({speaker for _, speaker, _ in meta})
        digits = torch.tensor([d for d, _, _ in meta])
        speakers = torch.tensor([self.speaker_names.index(s) for _, s, _ in meta])
        is_test = torch.tensor([index < TEST_INDICES for _, _, index in meta])
        train_all, test = (~is_test).nonzero().flatten(), is_test.nonzero().flatten()
        keep, held = seeded_split(len(train_all), self.val_fraction, self.split_seed)
        parts = {"train": train_all[keep], "val": train_all[held], "test": test}
        if self.spectrogram is not None:
            # SpecGAN's per-bin statistics, from the training clips only
            train_waves = SpokenDigits([recordings[i] for i in parts["train"]], digits, speakers,
                                       self.clip_samples)  # fmt: skip
            self.spectrogram.fit(torch.stack([train_waves.waveform(i) for i in range(len(train_waves))]))
        self.splits = {
            split: SpokenDigits(
                [recordings[i] for i in idx], digits[idx], speakers[idx], self.clip_samples, self.spectrogram
            )  # fmt: skip
            for split, idx in parts.items()
        }
        self.recording_names = {
            split: [f"{meta[i][0]}_{meta[i][1]}_{meta[i][2]}.wav" for i in idx]
            for split, idx in parts.items()
        }

    @property
    def test_set_name(self) -> str:
        self.setup("test")
        return f"FSDD official test split (recordings 0-4, {len(self.splits['test']):,})"
