"""Sampling frames/s: generated frames per second of each video model at 64x64 (``data=moving_mnist``,
20-frame videos), untrained weights (speed does not depend on them).

Each model's ``sample`` is called once untimed, then repeatedly for ``sample_seconds`` (at least once, at
most 20 times) with ``sample_num`` videos per call. VGAN and MoCoGAN generate whole videos; ConvLSTM
continues real clips (``context_frames`` of them are given), so only its predicted frames count.
"""

from __future__ import annotations

import time
from pathlib import Path

from hydra.utils import instantiate

from common import TINY_CONVLSTM, TINY_VIDEO, fake_batch
from vidgen.config import compose_config

SAMPLERS = {"vgan": "loss=gan_ns", "mocogan": "loss=gan_ns", "convlstm": "loss=frame_mse"}


def measure(s: dict, tmp: Path) -> dict[str, dict]:
    out = {}
    for name, loss in SAMPLERS.items():
        over = ["data=moving_mnist", f"model={name}", loss]
        if s["widths"]:
            over += TINY_VIDEO
            over += TINY_CONVLSTM if name == "convlstm" else s["widths"]
        cfg = compose_config(over, "train", output_dir=tmp / f"sample_{name}")
        model = instantiate(cfg.model).eval()
        num = s["sample_num"]
        # a frame predictor continues real clips (the family's protocol: context_frames > 0)
        context = fake_batch(cfg)[0][:num] if model.context_frames else None
        videos = model.sample(num, context=context)  # untimed: first-call allocations
        frames = videos.shape[0] * (videos.shape[1] - model.context_frames)  # the given context is not made
        reps, start = 0, time.perf_counter()
        while reps < 1 or (time.perf_counter() - start < s["sample_seconds"] and reps < 20):
            model.sample(num, context=context)
            reps += 1
        fps = reps * frames / (time.perf_counter() - start)
        out[name] = {
            "frames_per_s": fps,
            "batch": num,
            "frames_per_call": frames,
            "image_size": cfg.data.image_size,
        }
        print(f"  {name}: {fps:.1f} frames/s", flush=True)
    return out


def table_rows(rows: dict[str, dict]) -> list[str]:
    return [
        f"| sampling frames/s | {name} {row['image_size']}x{row['image_size']} | "
        f"{row['frames_per_s']:.1f} | -- | batch {row['batch']}, {row['frames_per_call']} frames/call |"
        for name, row in rows.items()
    ]
