"""Feature networks are trained by Lightning from their recipe in conf/features/, with visible progress."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_vidgen_features_trains_with_progress_in_the_log_and_then_loads(tmp_path: Path) -> None:
    env = {**os.environ, "VIDGEN_DATA_DIR": str(tmp_path / "data")}
    exe = Path(sys.executable).with_name("vidgen-features")

    def run(name: str) -> tuple[str, str]:
        out = tmp_path / name
        proc = subprocess.run([str(exe), f"hydra.run.dir={out}"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout, (out / "features.log").read_text()

    stdout, log = run("first")
    accuracy = float(re.search(r"LeNet-5 trained on digits32: test accuracy ([\d.]+)%", stdout).group(1))
    assert accuracy >= 95.0
    # stdout is a pipe here, as under SLURM or CI: one line per epoch says how far training is
    assert "Training feature net LeNet-5 on digits32" in log
    epochs = re.findall(r"epoch (\d+)/30, loss [\d.]+, \d+ s spent, about \d+ s left", log)
    assert [int(e) for e in epochs] == list(range(1, 31))
    (cached,) = (tmp_path / "data" / "feature_extractors").glob("lenet5_digits32_*.pt")

    stdout, log = run("second")  # from the cache: no training, the same accuracy
    assert f"test accuracy {accuracy:.2f}%" in stdout
    assert "epoch 1/30" not in log
