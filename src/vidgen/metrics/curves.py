"""Per-time-step curves of frame-prediction metrics written as a CSV table and a plot
(``vidgen.callbacks.frame_curves``)."""

from __future__ import annotations

from pathlib import Path

# Panels of the plot, in reading order: (metric, axis label).
PANELS = (
    ("mse_per_frame", "MSE per frame (sum over C×H×W)"),
    ("mae_per_frame", "MAE per frame (sum over C×H×W)"),
    ("ssim", "SSIM"),
    ("psnr", "PSNR (dB)"),
)


def write_csv(means: dict[str, list[float]], path: Path) -> Path:
    """One row per predicted frame: ``step,<metric>,...`` (steps counted from 1)."""
    names = list(means)
    rows = ["step," + ",".join(names)]
    for t in range(len(means[names[0]])):
        rows.append(f"{t + 1}," + ",".join(f"{means[k][t]:.6g}" for k in names))
    path.write_text("\n".join(rows) + "\n")
    return path


def plot(means: dict[str, list[float]], path: Path, title: str = "") -> Path:
    """A PNG with one panel per metric of ``PANELS`` present in ``means``, against the predicted frame."""
    import matplotlib

    matplotlib.use("Agg")  # headless: runs on clusters and in CI
    import matplotlib.pyplot as plt

    panels = [(k, label) for k, label in PANELS if k in means]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        steps = range(1, len(means[key]) + 1)
        ax.plot(steps, means[key], marker="o", markersize=3)
        ax.set_xlabel("predicted frame")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
