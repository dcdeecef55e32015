"""The trivial baselines a trained model must beat, logged at test beside its own numbers.

Frame predictors: ``test/<metric>_copy_last`` (the last context frame repeated) and
``test/<metric>_context_mean`` (the mean context frame), checked against a NumPy computation of OpenSTL's
per-frame MSE/MAE over the same test sequences.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
from hydra.utils import instantiate

from vidgen.value_range import to_unit

from conftest import compose_train

SMALL_VIDEO = ["data=moving_digits", "model=convlstm", "loss=frame_mse", "callbacks=prediction",
               "data.num_train=16", "data.num_val=8", "data.num_test=12", "data.batch_size=8",
               "data.num_workers=0", "logger=csv"]  # fmt: skip


def _openstl_errors(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """OpenSTL's ``MSE``/``MAE`` (metrics.py): errors summed over a frame's pixels, mean over frames."""
    error = (pred - target).reshape(pred.shape[0] * pred.shape[1], -1)
    return float((error**2).sum(1).mean()), float(np.abs(error).sum(1).mean())


def test_frame_predictor_logs_copy_last_and_context_mean_baselines(tmp_path: Path, data_dir: Path) -> None:
    cfg = compose_train(SMALL_VIDEO, tmp_path, data_dir)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(model, datamodule=datamodule, verbose=False)

    video = np.concatenate(
        [to_unit(x, tuple(cfg.data.value_range)).numpy() for x, _ in datamodule.test_dataloader()]
    )
    context, target = video[:, :10], video[:, 10:20]
    expected = {
        "copy_last": np.repeat(context[:, -1:], 10, axis=1),
        "context_mean": np.repeat(context.mean(axis=1, keepdims=True), 10, axis=1),
    }
    for name, pred in expected.items():
        mse, mae = _openstl_errors(pred, target)
        assert metrics[f"test/mse_per_frame_{name}"] == pytest.approx(mse, rel=1e-5), name
        assert metrics[f"test/mae_per_frame_{name}"] == pytest.approx(mae, rel=1e-5), name
    # repeating the last frame is a different prediction from the context mean: the baselines are apart
    assert metrics["test/mse_per_frame_copy_last"] != pytest.approx(
        metrics["test/mse_per_frame_context_mean"]
    )
    # and the model's own numbers sit beside them
    assert "test/mse_per_frame" in metrics and "test/ssim_copy_last" in metrics


def test_vae_logs_the_exact_nll_of_independent_pixels_beside_its_iwae(tmp_path: Path, data_dir: Path) -> None:
    """The likelihood baseline: Bernoulli pixels with the training images' mean intensities, its NLL of
    the test images computed here with NumPy from the same splits."""
    overrides = ["model=vae_mlp", "loss=elbo", "model.nll_samples=2", "data.image_size=16",
                 "data.value_range=[0,1]", "logger=csv"]  # fmt: skip
    cfg = compose_train(overrides, tmp_path, data_dir)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(model, datamodule=datamodule, verbose=False)

    train = np.stack([x.numpy() for x, _ in datamodule.splits["train"]]).astype(np.float64)
    test = np.concatenate([x.numpy() for x, _ in datamodule.test_dataloader()]).astype(np.float64)
    p = np.clip(train.mean(axis=0), 1e-4, 1 - 1e-4)
    nll = -(test * np.log(p) + (1 - test) * np.log1p(-p)).reshape(len(test), -1).sum(1).mean()
    assert metrics["test/nll_iwae_k2_nats_pixel_marginal"] == pytest.approx(nll, rel=1e-5)
    assert metrics["test/n_images"] == len(test)
    # an untrained decoder (logits near 0: p = 1/2 everywhere) is far worse than the pixel means
    assert metrics["test/nll_iwae_k2_nats"] > 1.5 * nll
