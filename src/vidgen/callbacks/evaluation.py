"""Test-time sample-quality metrics of a generator: FID, KID, IS, precision/recall, and the real floor."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from vidgen.errors import ConfigError

log = logging.getLogger(__name__)

INCEPTION_HELP = (
    "Fix: download the FID Inception-v3 weights once on a machine with internet, e.g. "
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth, "
    "copy the file here and pass metrics.inception_weights=<path> (needs `pip install torch-fidelity`); or "
    "use the offline domain extractor, metrics.feature_extractor=null (the data's own classifier)."
)


class GenerativeMetricsCallback(L.Callback):
    """After ``trainer.test`` of an image generator, logs ``test/<metric>_<extractor>``.

    Real images are the test split; as many fakes (or ``num_fake``) come from ``pl_module.sample`` with a
    fixed-seed noise generator. Metrics (``vidgen.metrics.generative.image_metrics``): ``fid``,
    ``kid_*_mean``/``kid_*_std``, ``is``, ``precision``/``recall`` (Kynkäänniemi et al. 2019), and
    ``fid_<extractor>_real_floor``: the FID between as many training images and the test images, the
    best value a model can hope for at this sample size, reported beside the model's.

    Frame predictors log their own metrics in ``test_step``; this callback writes their per-time-step
    curves to ``<run>/per_step_metrics.csv``. Video generators: no metrics yet (a warning says so).

    Args:
        feature_extractor: null = the data's domain classifier (``data.feature_extractor``), trained on
            first use and cached; ``inception`` = torchmetrics' FID Inception-v3 from ``inception_weights``.
        inception_weights: path of the FID Inception weights file (only for ``feature_extractor=inception``).
        num_fake: generated samples; null = as many as test images.
        kid_subset_size: KID subset size (capped at the sample sizes).
        pr_k: the k of the k-NN radii of precision/recall (3 in the paper).
        real_floor: also compute the train-vs-test FID.
        seed: seed of the fakes' noise.
    """

    def __init__(
        self,
        feature_extractor: str | None = None,
        inception_weights: str | None = None,
        num_fake: int | None = None,
        kid_subset_size: int = 100,
        pr_k: int = 3,
        real_floor: bool = True,
        seed: int = 4321,
    ):
        super().__init__()
        if feature_extractor not in (None, "inception"):
            raise ValueError(
                f"metrics.feature_extractor must be null (the data's domain classifier) or inception, "
                f"got {feature_extractor!r}."
            )
        self.feature_extractor = feature_extractor
        self.inception_weights = inception_weights
        self.num_fake, self.kid_subset_size, self.pr_k = num_fake, kid_subset_size, pr_k
        self.real_floor, self.seed = real_floor, seed
        self._real: list[torch.Tensor] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.feature_extractor == "inception":
            self._check_inception()

    def _check_inception(self) -> None:
        path = self.inception_weights
        if not path or not Path(path).is_file():
            raise ConfigError(
                f"metrics.feature_extractor=inception needs the Inception-v3 weights file, but "
                f"metrics.inception_weights={path} {'is not set' if not path else 'does not exist'} and "
                f"nothing is downloaded at run time. {INCEPTION_HELP}"
            )
        try:
            import torch_fidelity  # noqa: F401
        except ImportError as e:
            raise ConfigError(
                f"metrics.feature_extractor=inception needs torch-fidelity. {INCEPTION_HELP}"
            ) from e

    def _extractor(self, trainer: L.Trainer):
        if self.feature_extractor == "inception":
            return _InceptionFeatures(self.inception_weights, trainer.datamodule.value_range), "inception"
        from vidgen.metrics.features import domain_feature_extractor

        dm = trainer.datamodule
        extractor = domain_feature_extractor(dm, dm.feature_extractor)
        log.info(f"feature extractor '{extractor.name}': test accuracy {extractor.test_accuracy:.2%}")
        return extractor, dm.feature_extractor

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._real = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if getattr(pl_module, "family", None) != "sequence":
            self._real.append(batch[0].detach().cpu())

    @torch.no_grad()
    def _fakes(self, pl_module: L.LightningModule, num: int) -> torch.Tensor:
        noise = torch.Generator().manual_seed(self.seed)
        return torch.cat(
            [pl_module.sample(min(256, num - i), generator=noise).cpu() for i in range(0, num, 256)]
        )

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if getattr(pl_module, "family", None) == "sequence":
            self._write_curves(trainer, pl_module)
            return
        if not self._real:
            return
        from vidgen.metrics.generative import image_metrics

        real = torch.cat(self._real)
        if real.ndim == 5:
            # The domain extractors are image classifiers trained on image datamodules; a 3D-conv extractor
            # for moving digits (and the per-frame FID that needs the digits one) is not implemented yet.
            log.warning("vidgen-eval: no sample-quality metrics for video generators yet (see issue 5)")
            return
        fake = self._fakes(pl_module, self.num_fake or len(real))
        extractor, name = self._extractor(trainer)
        with_is = hasattr(extractor, "classifier")
        metrics = image_metrics(extractor, [real], [fake], name, self.kid_subset_size, self.pr_k, with_is)
        if self.real_floor:
            metrics[f"fid_{name}_real_floor"] = self._floor(trainer, extractor, real, name)
        for key, value in metrics.items():
            pl_module.log(f"test/{key}", float(value))

    def _write_curves(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Per-time-step means of the frame metrics: ``<run>/per_step_metrics.csv`` (one row per predicted
        frame) and ``per_step_metrics.png``, which also goes to W&B and TensorBoard."""
        curves = getattr(pl_module, "test_curves", None)
        if not curves or not trainer.is_global_zero:
            return
        from vidgen.metrics import curves as per_step

        means = per_step.per_step_means(curves)
        root = Path(trainer.default_root_dir)
        table = per_step.write_csv(means, root / "per_step_metrics.csv")
        title = type(getattr(pl_module, "net", pl_module)).__name__
        figure = per_step.plot(means, root / "per_step_metrics.png", title=title)
        log.info(f"per-time-step test metrics: {table}, {figure}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="test/per_step_metrics", images=[str(figure)], step=trainer.global_step)
            elif isinstance(logger, TensorBoardLogger):
                from PIL import Image
                from torchvision.transforms.functional import pil_to_tensor

                image = pil_to_tensor(Image.open(figure).convert("RGB"))
                logger.experiment.add_image("test/per_step_metrics", image, trainer.global_step)

    def _floor(self, trainer: L.Trainer, extractor, real: torch.Tensor, name: str) -> float:
        from torchmetrics.image.fid import FrechetInceptionDistance

        train = []
        for batch in trainer.datamodule.train_dataloader():
            train.append(batch[0])
            if sum(len(b) for b in train) >= len(real):
                break
        fid = FrechetInceptionDistance(feature=extractor)
        fid.update(real, real=True)
        fid.update(torch.cat(train)[: len(real)], real=False)
        return fid.compute().item()


class _InceptionFeatures(torch.nn.Module):
    """torchmetrics' FID Inception-v3 (2048-d pool features) from a local weights file; images in the
    data's value range, grey repeated to RGB, resized to 299 by the network."""

    def __init__(self, weights: str, value_range: tuple[float, float]):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                      feature_extractor_weights_path=weights)  # fmt: skip
        self.lo, self.hi = value_range
        self.num_features = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = ((x - self.lo) / (self.hi - self.lo)).clamp(0, 1)
        if unit.shape[1] == 1:
            unit = unit.repeat(1, 3, 1, 1)
        return self.net((unit * 255).round().to(torch.uint8)).double()
