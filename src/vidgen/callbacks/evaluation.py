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
    "weights-inception-2015-12-05-6726825d.pth (the file torchmetrics and torch-fidelity use, 91 MB), "
    "copy the file here and pass metrics.inception_weights=<path> (needs torch-fidelity: "
    "`pip install 'vidgen[inception]'`); or use the offline domain extractor, "
    "metrics.feature_extractor=null (the default: the data's own classifier, trained by vidgen)."
)


class GenerativeMetricsCallback(L.Callback):
    """After ``trainer.test`` of an image generator, logs ``test/<metric>_<extractor>``.

    Real images are the test split; as many fakes (or ``num_fake``) come from ``pl_module.sample`` with a
    fixed-seed noise generator. Metrics (``vidgen.metrics.generative.image_metrics``): ``fid``,
    ``kid_*_mean``/``kid_*_std``, ``is``, ``precision``/``recall`` (Kynkäänniemi et al. 2019), and
    ``fid_<extractor>_real_floor``: the FID between as many training images and the test images, the
    best value a model can hope for at this sample size, reported beside the model's.

    Frame predictors log their own metrics in ``test_step``; this callback writes their per-time-step
    curves to ``<run>/per_step_metrics.csv``. Video generators (clips ``(B, T, C, H, W)``):
    ``fd_c3d_<extractor>`` (Fréchet distance of the clips in the feature space of a C3D trained on the
    data's clips, ``vidgen.metrics.video_features``; not the I3D FVD), ``fid_frames_<extractor>_mean``
    (mean per-frame FID in the same C3D's space) and ``feature_extractor_accuracy_<extractor>`` (the
    C3D's order accuracy; ``vidgen.metrics.generative.video_metrics``).

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
        if inception_weights and feature_extractor != "inception":
            log.warning(
                f"metrics.inception_weights={inception_weights} is ignored: the metrics use the domain "
                "extractor unless metrics.feature_extractor=inception"
            )
        self.feature_extractor = feature_extractor
        self.inception_weights = inception_weights
        self.num_fake, self.kid_subset_size, self.pr_k = num_fake, kid_subset_size, pr_k
        self.real_floor, self.seed = real_floor, seed
        self._real: list[torch.Tensor] = []
        self._inception: _InceptionFeatures | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.feature_extractor == "inception" and self._inception is None:
            # before the test loop, so that a missing or wrong weights file stops the run at once
            self._check_inception()
            value_range = getattr(trainer.datamodule, "value_range", (-1.0, 1.0))
            self._inception = _InceptionFeatures(self.inception_weights, value_range)

    def _check_inception(self) -> None:
        path = self.inception_weights
        if not path or not Path(path).is_file():
            problem = " is not set" if not path else f"={path} does not exist"
            raise ConfigError(
                f"metrics.feature_extractor=inception needs the Inception-v3 weights file, but "
                f"metrics.inception_weights{problem} and nothing is downloaded at run time. {INCEPTION_HELP}"
            )
        try:
            import torch_fidelity  # noqa: F401
        except ImportError as e:
            raise ConfigError(
                f"metrics.feature_extractor=inception needs torch-fidelity. {INCEPTION_HELP}"
            ) from e

    def _extractor(self, trainer: L.Trainer):
        if self.feature_extractor == "inception":
            if self._inception is None:
                self.setup(trainer, None, "test")
            return self._inception, "inception"
        from vidgen.metrics.features import domain_feature_extractor

        dm = trainer.datamodule
        extractor = domain_feature_extractor(dm, dm.feature_extractor)
        log.info(
            f"feature extractor '{extractor.name}' ({extractor.architecture} trained on "
            f"{dm.dataset_id}): test accuracy {extractor.test_accuracy:.2%}"
        )
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
        from vidgen.metrics.generative import features_of, image_metrics

        real = torch.cat(self._real)
        if real.ndim == 5:
            # Video generators: clips and frames in the space of a C3D trained on the data's own clips.
            from vidgen.metrics.generative import video_metrics
            from vidgen.metrics.video_features import video_feature_extractor

            if self.feature_extractor == "inception":
                log.warning("metrics.feature_extractor=inception is for images: video metrics use the C3D")
            dm = trainer.datamodule
            extractor = video_feature_extractor(dm, dm.feature_extractor)
            log.info(f"video feature extractor '{extractor.name}' (C3D trained on {dm.dataset_id}): "
                     f"{extractor.summary()}")  # fmt: skip
            fake = self._fakes(pl_module, self.num_fake or len(real))
            metrics = video_metrics(extractor, real, fake, extractor.name)
            metrics[f"feature_extractor_accuracy_{extractor.name}"] = extractor.order_accuracy
            if extractor.class_accuracy is not None:
                metrics[f"feature_extractor_class_accuracy_{extractor.name}"] = extractor.class_accuracy
            for key, value in metrics.items():
                pl_module.log(f"test/{key}", float(value))
            return
        fake = self._fakes(pl_module, self.num_fake or len(real))
        extractor, name = self._extractor(trainer)
        # the test images are encoded once, for the model's metrics and for the real floor
        real_f = features_of(extractor, real, getattr(extractor, "batch_size", 512))
        metrics = image_metrics(
            extractor, [real], [fake], name, self.kid_subset_size, self.pr_k, real_features=real_f
        )
        if self.real_floor:
            metrics[f"fid_{name}_real_floor"] = self._floor(trainer, extractor, real_f)
        if hasattr(extractor, "test_accuracy"):  # the domain classifier's, so that results carry it
            metrics[f"feature_extractor_accuracy_{name}"] = extractor.test_accuracy
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

    def _floor(self, trainer: L.Trainer, extractor, real_f: torch.Tensor) -> float:
        """FID of as many training images as there are test images (features ``real_f``) against them."""
        from vidgen.metrics.generative import features_of, frechet_distance

        train = []
        for batch in trainer.datamodule.train_dataloader():
            train.append(batch[0])
            if sum(len(b) for b in train) >= len(real_f):
                break
        train_f = features_of(
            extractor, torch.cat(train)[: len(real_f)], getattr(extractor, "batch_size", 512)
        )
        return frechet_distance(real_f, train_f)


class _InceptionFeatures(torch.nn.Module):
    """torchmetrics' FID Inception-v3 (``NoTrainInceptionV3``, torch-fidelity's network) from a local
    weights file: 2048-d pool features (FID, KID, precision/recall) and the 1008 unbiased logits (IS, as
    torchmetrics' ``InceptionScore``); images in the data's value range, grey repeated to RGB, resized
    to 299 by the network.

    The file is first read with ``torch.load(weights_only=True)``: a truncated or foreign file, or one
    holding anything but tensors (torch-fidelity itself loads it with ``weights_only=False``, which would
    run code), stops with one ``ConfigError`` instead of a traceback from inside torch.
    """

    batch_size = 64  # 299x299 activations: 64 images need about 2 GB

    def __init__(self, weights: str, value_range: tuple[float, float]):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        what = f"metrics.inception_weights={weights}"
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch's unpickler raises anything from IndexError to EOFError on garbage
            raise ConfigError(
                f"{what} is not a readable PyTorch weights file ({e.__class__.__name__}: "
                f"{str(e).strip().splitlines()[0][:200]}). {INCEPTION_HELP}"
            ) from e
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ConfigError(
                f"{what} holds a {type(state).__name__}, not a state_dict of tensors. {INCEPTION_HELP}"
            )
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=weights,
            )
        except RuntimeError as e:  # load_state_dict: missing/unexpected keys, size mismatches
            raise ConfigError(
                f"{what} does not hold the FID Inception-v3 weights torch-fidelity expects "
                f"({_state_dict_mismatch(e)}). {INCEPTION_HELP}"
            ) from e
        self.lo, self.hi = value_range
        self.num_features = 2048

    def _uint8(self, x: torch.Tensor) -> torch.Tensor:
        unit = ((x - self.lo) / (self.hi - self.lo)).clamp(0, 1)
        if unit.shape[1] == 1:
            unit = unit.repeat(1, 3, 1, 1)
        return (unit * 255).round().to(torch.uint8)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, logits = self.net._torch_fidelity_forward(self._uint8(x))
        return features.double(), logits.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]


def _state_dict_mismatch(error: RuntimeError) -> str:
    """The first lines of ``load_state_dict``'s error, shortened: which keys are missing or unexpected."""
    lines = [line.strip() for line in str(error).splitlines()[1:3] if line.strip()]
    return "; ".join(line[:160] + ("..." if len(line) > 160 else "") for line in lines) or "no details"
