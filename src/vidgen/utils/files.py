"""File helpers of a run: atomic writes (a run killed mid-write leaves the previous file or none, never a
torn one) and the check that a run folder can be written before anything runs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from vidgen.errors import ConfigError


def _atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic(Path(path), lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch

    _atomic(Path(path), lambda f: torch.save(obj, f))


def check_writable(folder: str | Path, what: str = "run", override: str = "hydra.run.dir") -> None:
    """Creates ``folder`` and writes a file in it; raises one ``ConfigError`` when either fails.

    ``what`` names the folder (``run``, ``sweep``) and ``override`` the Hydra key that moves it. The probe
    file has a unique name: DDP ranks check their shared run folder at the same time.
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ConfigError(
            f"The {what} folder {path} cannot be used: {e.strerror or e}. Nothing was run. Fix: choose "
            f"another folder with {override}=<dir> (or paths.log_dir=<dir>), or fix that path's permissions."
        ) from e
