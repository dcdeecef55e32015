"""Test metrics are the same on 2 DDP CPU ranks as on 1: the metrics are torchmetrics objects whose
states are gathered (sample quality) or summed (frame metrics) over ranks, and the generated samples
are the same set however many ranks draw them (chunk k of the fakes is seeded ``seed + k``).

``vidgen-eval`` runs as a subprocess because Lightning's ``ddp`` re-executes the command that started
it. The digits test split (180 images) and the moving-digits test split (``num_test=24``) divide evenly
by 2, so Lightning's DistributedSampler pads no rank with repeated samples, which would change the means.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidgen.cli.train import train

from conftest import TINY, compose_train, run_cli

QUIET = ["logger=csv", "trainer.enable_progress_bar=false"]


def eval_cli(ckpt: Path, out: Path, data_dir: Path, extra: list[str]) -> dict[str, float]:
    env = {**os.environ, "VIDGEN_DATA_DIR": str(data_dir)}
    env.pop("HYDRA_FULL_ERROR", None)
    exe = Path(sys.executable).with_name("vidgen-eval")
    args = [f"ckpt_path={ckpt}", f"hydra.run.dir={out}", *QUIET, *extra]
    proc = subprocess.run([str(exe), *args], cwd=out.parent, env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "metrics.json").read_text())


def test_sample_quality_on_two_ranks_equals_one_rank(tmp_path: Path, data_dir: Path) -> None:
    train(compose_train([*TINY, "trainer.max_epochs=1"], tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    # 300 fakes: chunks of 256 and 44, so each rank draws one; 180 test images, 90 per rank
    options = ["metrics.num_fake=300", "metrics.kid_subset_size=50"]
    one = eval_cli(ckpt, tmp_path / "one", data_dir, options)
    two = eval_cli(ckpt, tmp_path / "two", data_dir, [*options, "trainer=ddp_cpu"])
    # rank 1 ran (Lightning names the relaunched rank's Hydra job train_ddp_process_<rank> in any task)
    assert (tmp_path / "two" / "train_ddp_process_1.log").is_file()
    keys = ("fid_digits", "fid_digits_real_floor", "precision_digits", "recall_digits", "is_digits",
            "feature_extractor_accuracy_digits", "n_accuracy_digits", "n_real_digits")  # fmt: skip
    for key in keys:
        assert two[f"test/{key}"] == pytest.approx(one[f"test/{key}"], rel=1e-5, abs=1e-8), key
    # the extractor's accuracy counted over both ranks' halves: all 180 test images, not one rank's 90
    assert two["test/n_accuracy_digits"] == 180
    # KID draws random subsets of the gathered rows, whose order differs across ranks: same scale only
    assert two["test/kid_digits_mean"] == pytest.approx(one["test/kid_digits_mean"], rel=0.2)


def test_frame_metrics_and_curves_on_two_ranks_equal_one_rank(tmp_path: Path, data_dir: Path) -> None:
    small = ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction",
             "model.net.hidden_channels=[8]", "model.net.kernel_size=3", "data.num_train=32",
             "data.num_val=8", "data.num_test=24", "data.batch_size=4"]  # fmt: skip
    train(compose_train([*small, *TINY[3:], "trainer.max_epochs=1"], tmp_path / "train", data_dir))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    one = eval_cli(ckpt, tmp_path / "one", data_dir, [])
    two = eval_cli(ckpt, tmp_path / "two", data_dir, ["trainer=ddp_cpu"])
    assert (tmp_path / "two" / "train_ddp_process_1.log").is_file()
    keys = ("mse_per_frame", "mae_per_frame", "mse_per_pixel", "psnr", "ssim", "ssim_openstl")
    for key in keys:
        assert two[f"test/{key}"] == pytest.approx(one[f"test/{key}"], rel=1e-5), key
    curves = []
    for run in ("one", "two"):
        with open(tmp_path / run / "per_step_metrics.csv") as f:
            curves.append([{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)])
    assert len(curves[0]) == 10  # one row per predicted frame
    for a, b in zip(*curves, strict=True):
        for key in keys:
            assert b[key] == pytest.approx(a[key], rel=1e-4), key


@pytest.mark.slow
def test_video_diffusion_on_two_ranks_trains_in_step_and_tests_as_one_rank(
    tmp_path: Path, data_dir: Path
) -> None:
    """The frame-conditioned diffusion model trained by ``vidgen-train trainer=ddp_cpu``: 16 clips in batches
    of 4 are 2 steps per rank, the EMA averaged at each (its count in the checkpoint); tested on 2 ranks, its
    sampled futures score as on 1 rank: each test clip's noise is seeded by its context and DDIM with eta 0
    adds none, so the metrics do not depend on which rank draws which clip."""
    small = ["data=moving_digits", "model=video_ddpm_unet_pred", "loss=diffusion_eps", "callbacks=prediction",
             "data.image_size=16", "data.digit_size=8", "data.seq_len=6", "data.num_input_frames=3",
             "data.num_output_frames=3", "data.num_train=16", "data.num_val=8", "data.num_test=24",
             "data.batch_size=4", "model.net.base_width=8", "model.net.norm_groups=4",
             "model.net.attention_heads=2", "model.sampling_steps=3", "trainer.max_epochs=1",
             "trainer.limit_val_batches=1", *TINY[-4:]]  # fmt: skip
    train(compose_train(small, tmp_path / "train", data_dir))
    proc = run_cli([*small, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}"], tmp_path, data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = {"one": tmp_path / "train", "two": tmp_path / "ddp"}
    for name, steps in (("one", 4), ("two", 2)):
        checkpoint = torch.load(ranks[name] / "checkpoints" / "last.ckpt", weights_only=True)
        assert checkpoint["global_step"] == steps, name
        assert checkpoint["state_dict"]["net_ema.n_averaged"].item() == steps, name
    assert (tmp_path / "ddp" / "train_ddp_process_1.log").is_file()

    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    one = eval_cli(ckpt, tmp_path / "one", data_dir, [])
    two = eval_cli(ckpt, tmp_path / "two", data_dir, ["trainer=ddp_cpu"])
    assert (tmp_path / "two" / "train_ddp_process_1.log").is_file()
    assert one["test/n_sequences"] == two["test/n_sequences"] == 24
    for key in ("mse_per_frame", "mae_per_frame", "psnr", "ssim", "mse_per_frame_copy_last"):
        assert two[f"test/{key}"] == pytest.approx(one[f"test/{key}"], rel=1e-5), key
