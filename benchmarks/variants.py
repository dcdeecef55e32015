"""What channels_last and torch.compile buy on this CPU: steps/s of a training step relative to eager
(NCHW, no compile), the same process timing every variant in every repeat, alternated.

- By hand (``hand_loop.time_hand``): DCGAN and ConvLSTM with nets and batches channels-last, or each net
  through ``torch.compile`` (inductor); compilation happens in the warm-up steps.
- Through vidgen (``common.time_vidgen``): DCGAN, and the models of ``--option-models``
  (``common.OPTION_MODELS``), with the config options ``model.channels_last`` and ``model.compile``, the
  way a user turns them on. The sequence family (ConvLSTM) has no such options.

torch.compile is measured in full mode only (``compile`` of the settings), and on DCGAN only: ConvLSTM's
unrolled 20-step graph takes too long to compile. Timings in docs/PERFORMANCE.md.
"""

from __future__ import annotations

from pathlib import Path

from common import fake_batch, rate, time_vidgen, workload_cfg
from hand_loop import time_hand

# The per-model options through vidgen (every model config defaults to model.compile=false; the VAE
# family has no compile option, so eager sets channels_last only).
VIDGEN_VARIANTS = {
    "eager": ("model.channels_last=false",),
    "channels_last": ("model.channels_last=true",),
    "compile": ("model.channels_last=false", "model.compile=true"),
}


def measure(s: dict, tmp: Path) -> dict[str, dict]:
    """``{model: {side: {variant: {steps_per_s, speedup, batch_shape}}}}``, side ``hand`` or ``vidgen``."""
    out = {}
    # the VAE's layouts are measured as an option model (vae_conv), not here
    for name in ["dcgan", "convlstm", *s.get("option_models", [])]:
        batch = fake_batch(workload_cfg(name, s, tmp / f"variants_{name}"))
        kinds = ["eager", "channels_last", *(["compile"] if s["compile"] and name == "dcgan" else [])]
        # the option models are measured through vidgen only
        sides = {"dcgan": ["hand", "vidgen"], "convlstm": ["hand"]}.get(name, ["vidgen"])
        times: dict[tuple[str, str], list[float]] = {(side, k): [] for side in sides for k in kinds}
        ws = {**s, "warmup": s["warmup"] + 2}
        for r in range(s["repeats"]):
            for side, kind in times:
                # compiling again in every repeat would dominate the section; one compiled run suffices
                if kind == "compile" and times[side, kind]:
                    continue
                if side == "hand":
                    cfg = workload_cfg(name, s, tmp / f"variants_{name}")
                    times[side, kind] += time_hand(name, cfg, batch, ws, kind)
                else:
                    cfg = workload_cfg(name, s, tmp / f"variants_{name}_{kind}_{r}", VIDGEN_VARIANTS[kind])
                    times[side, kind] += time_vidgen(cfg, batch, ws)
        out[name] = {side: {} for side in sides}
        for (side, kind), seconds in times.items():
            speedup = rate(seconds) / rate(times[side, "eager"])
            out[name][side][kind] = {"steps_per_s": rate(seconds), "speedup": speedup,
                                     "batch_shape": list(batch[0].shape)}  # fmt: skip
        for side, row in out[name].items():
            speedups = ", ".join(f"{k} x{v['speedup']:.2f}" for k, v in row.items())
            print(f"  {name} ({side}): {speedups}", flush=True)
    return out


def table_rows(variants: dict[str, dict]) -> list[str]:
    lines = []
    for name, sides in variants.items():
        for side, row in sides.items():
            where = "hand loop" if side == "hand" else "vidgen, `model.<option>=true`"
            for kind, v in row.items():
                if kind != "eager":
                    lines.append(
                        f"| speed-up of {kind} | {name} ({where}) | x{v['speedup']:.2f} | -- | "
                        f"{v['steps_per_s']:.3f} vs eager {row['eager']['steps_per_s']:.3f} steps/s, "
                        f"batch {'x'.join(map(str, v['batch_shape']))} |"
                    )
    return lines
