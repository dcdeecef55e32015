"""Feature spaces of the sample-quality metrics: one interface, one cache.

A ``FeatureSpace`` is a frozen network that maps samples (images ``(B, C, H, W)`` or clips
``(B, T, C, H, W)``, in the data's value range) to feature rows, and to class logits for the Inception
Score. Three kinds:

- ``ClassifierSpace``: a classifier vidgen trained on the data (LeNet-5 for digits/MNIST, ResNet-8 for
  CIFAR-10 and image folders; the datamodule's ``feature_net`` names the recipe, ``conf/features/``).
- ``C3DSpace``: the C3D of the video metrics, trained on the data's clips (``conf/features/c3d.yaml``).
- ``InceptionSpace``: torchmetrics' FID Inception-v3 (torch-fidelity's network) from a local weights
  file, the space of the papers' FID/IS, for ``metrics.feature_extractor=inception``.

``feature_space(datamodule, ...)`` returns the right one. Trained spaces are cached under
``<data_dir>/feature_extractors/<recipe>_<dataset_id>_<key>.pt`` (their test accuracies also in a
``.json`` beside it), where the key hashes everything that decides the trained network: the recipe
(net, optimizer, schedule, epochs, batch size, seed) and the data (dataset id, raw-data checksum and
every constructor argument of the datamodule that shapes its splits or pixels: image size, channels,
value range, split seed and fractions, ...). Change any of them and the network is trained again.

What the key cannot see (a datamodule whose code now maps pixels differently, a cache file copied from
elsewhere) the run sees: the sample-quality metrics measure the space's accuracy on the run's own real
samples (``vidgen.metrics.sample_quality.SampleQuality``), and ``check_accuracy`` stops a run whose
space reads them below a floor with one ``FeatureExtractorError``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from vidgen.errors import ConfigError, FeatureExtractorError
from vidgen.utils.files import atomic_torch_save, atomic_write_text
from vidgen.value_range import CANONICAL, to_canonical, to_unit

log = logging.getLogger(__name__)

#: Datamodule arguments that do not change the data a feature net is trained and tested on.
_NOT_DATA = {"data_dir", "root", "batch_size", "num_workers", "feature_extractor", "download", "self"}
#: Without a stated floor, a space must read the run's real samples at least this share as well as it read
#: its own test split when it was trained (LeNet-5 on digits, about 97 %: a floor of about 87 %).
TRAINED_ACCURACY_SHARE = 0.9


class FeatureSpace(nn.Module):
    """A frozen network: ``forward(x)`` -> features ``(B, num_features)``; ``features_and_logits(x)`` also
    returns class logits (for the Inception Score). ``name`` suffixes the metric keys (``fid_<name>``).

    A space whose logits are the data's classes (``classifies_data``) is measured on the run's own
    labelled real samples (``feature_extractor_accuracy_<name>``) and checked against the accuracy it
    scored on its own test split when it was trained (``trained_accuracy``, from its cache file
    ``cache``); ``accuracies`` are those cached values, logged at test beside the measured one.

    Samples come in the data's ``value_range`` and reach the network in ``CANONICAL`` [-1, 1], the range
    vidgen trains every feature network in (``prepare``): a network never sees another scale than the
    one it was trained and measured on.
    """

    batch_size = 512  # samples per forward pass when encoding a set
    #: the file the trained network was loaded from (None: not a network vidgen trained)
    cache: Path | None = None

    def __init__(self, net: nn.Module, name: str, num_features: int, description: str,
                 value_range: tuple[float, float] = CANONICAL):  # fmt: skip
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.name, self.num_features, self.description = name, num_features, description
        self.value_range = tuple(value_range)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return to_canonical(x, self.value_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(self.prepare(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.features(self.prepare(x))
        return features, self.net.head(features)

    @property
    def trained_accuracy(self) -> float | None:
        """The class accuracy the network scored on its own test split when trained; None when its
        logits are not the data's classes (then nothing is measured or checked)."""
        return None

    @property
    def classifies_data(self) -> bool:
        """Whether ``features_and_logits`` gives logits over the data's classes (labels ``y >= 0``)."""
        return self.trained_accuracy is not None

    def accuracies(self) -> dict[str, float]:
        """Metric-key suffix -> value: the accuracies cached with the network when it was trained."""
        return {}

    def check_accuracy(self, measured: float, num: int, floor: float | None, where: str) -> None:
        """Stops the run (``FeatureExtractorError``) when the space classifies only ``measured`` of the
        ``num`` labelled real samples of ``where`` (e.g. "test images") correctly, below ``floor`` (null:
        ``TRAINED_ACCURACY_SHARE`` of ``trained_accuracy``): its FID, KID, IS and precision/recall
        would measure the network's confusion, not the samples."""
        expected = self.trained_accuracy
        if expected is None:
            return
        stated = floor is not None
        floor = floor if stated else TRAINED_ACCURACY_SHARE * expected
        if measured >= floor:
            return
        share = f"{TRAINED_ACCURACY_SHARE:g} x the {expected:.1%} it scored on its test split when trained"
        why = "min_extractor_accuracy" if stated else share
        cache = f"cache {self.cache}" if self.cache else "not cached"
        delete = f"delete {self.cache} (and its .json) so that it is trained again on this data; "
        delete = delete if self.cache else ""
        raise FeatureExtractorError(
            f"The feature network of the sample-quality metrics does not read this run's data: "
            f"{self.description} ({cache}) classifies {measured:.1%} of the {num} {where} correctly, "
            f"expected at least {floor:.1%} ({why}). Its FID/KID/IS/precision/recall here would measure "
            "nothing. Likely cause: the cached network was trained on other data, another split or another "
            "value range than these samples (e.g. the datamodule's code changed how it maps pixels since "
            f"the cache was written). Fix: {delete}or metrics.feature_extractor=inception; or lower the "
            "floor: callbacks.fid.min_extractor_accuracy=<value> (vidgen-train), "
            "metrics.min_extractor_accuracy=<value> (vidgen-eval); 0 turns the check off."
        )

    def train(self, mode: bool = True) -> FeatureSpace:
        # A measuring instrument: a parent's .train() must not switch its batch norm to batch statistics.
        return super().train(False)


class ClassifierSpace(FeatureSpace):
    """The penultimate layer of an image classifier trained on the data (``net.features``/``net.head``)."""

    def __init__(self, net: nn.Module, name: str, architecture: str, dataset_id: str, test_accuracy: float,
                 value_range: tuple[float, float] = CANONICAL):  # fmt: skip
        description = f"{architecture} trained on {dataset_id}: test accuracy {test_accuracy:.2%}"
        super().__init__(net, name, net.num_features, description, value_range)
        self.architecture, self.test_accuracy = architecture, test_accuracy

    @property
    def trained_accuracy(self) -> float | None:
        return self.test_accuracy

    def accuracies(self) -> dict[str, float]:
        return {f"feature_extractor_cached_accuracy_{self.name}": self.test_accuracy}


class C3DSpace(FeatureSpace):
    """The C3D's feature layer; logits from its ``classes`` head; accuracies of both heads. Its measured
    accuracy is the class head's on labelled clips; the order accuracy is only the cached one (measuring
    it again would cost three passes over the clips)."""

    batch_size = 64  # clips

    def __init__(self, net: nn.Module, name: str, dataset_id: str, order_accuracy: float,
                 class_accuracy: float | None, value_range: tuple[float, float] = CANONICAL):  # fmt: skip
        klass = "n/a (no labels)" if class_accuracy is None else f"{class_accuracy:.2%}"
        super().__init__(net, name, net.num_features,
                         f"C3D trained on {dataset_id}: order accuracy {order_accuracy:.2%} (chance 33.33%), "
                         f"class accuracy {klass}", value_range)  # fmt: skip
        self.order_accuracy, self.class_accuracy = order_accuracy, class_accuracy

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.features(self.prepare(x))
        return features, self.net.classes(features)

    @property
    def trained_accuracy(self) -> float | None:
        return self.class_accuracy  # None: trained on clips without labels

    def accuracies(self) -> dict[str, float]:
        out = {f"feature_extractor_cached_order_accuracy_{self.name}": self.order_accuracy}
        if self.class_accuracy is not None:
            out[f"feature_extractor_cached_class_accuracy_{self.name}"] = self.class_accuracy
        return out


INCEPTION_HELP = (
    "Fix: download the FID Inception-v3 weights once on a machine with internet, e.g. "
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth (the file torchmetrics and torch-fidelity use, 91 MB), "
    "copy the file here and pass metrics.inception_weights=<path> (needs torch-fidelity: "
    "`pip install 'vidgen[inception]'`); or use the offline domain extractor, "
    "metrics.feature_extractor=null (the default: the data's own classifier, trained by vidgen)."
)


class InceptionSpace(FeatureSpace):
    """torchmetrics' FID Inception-v3 (``NoTrainInceptionV3``) from a local weights file: 2048-d pool
    features and the 1008 unbiased logits (IS, as torchmetrics' ``InceptionScore``); images in the data's
    value range are quantised to uint8 as FID's reference code does, grey repeated to RGB, and resized
    to 299 by the network.

    The file is first read with ``torch.load(weights_only=True)``: a truncated or foreign file, or one
    holding anything but tensors (torch-fidelity itself loads it with ``weights_only=False``, which would
    run code), stops with one ``ConfigError`` instead of a traceback from inside torch.
    """

    batch_size = 64  # 299x299 activations: 64 images need about 2 GB

    def __init__(self, weights: str | None, value_range: tuple[float, float]):
        what = f"metrics.inception_weights={weights}"
        if not weights or not Path(weights).is_file():
            problem = " is not set" if not weights else f"={weights} does not exist"
            raise ConfigError(
                f"metrics.feature_extractor=inception needs the Inception-v3 weights file, but "
                f"metrics.inception_weights{problem} and nothing is downloaded at run time. {INCEPTION_HELP}"
            )
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except (ImportError, ModuleNotFoundError) as e:
            raise ConfigError(
                f"metrics.feature_extractor=inception needs torch-fidelity. {INCEPTION_HELP}"
            ) from e
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
            net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048", "logits_unbiased"],
                                     feature_extractor_weights_path=weights)  # fmt: skip
        except RuntimeError as e:  # load_state_dict: missing/unexpected keys, size mismatches
            raise ConfigError(
                f"{what} does not hold the FID Inception-v3 weights torch-fidelity expects "
                f"({_state_dict_mismatch(e)}). {INCEPTION_HELP}"
            ) from e
        except ModuleNotFoundError as e:
            raise ConfigError(
                f"metrics.feature_extractor=inception needs torch-fidelity. {INCEPTION_HELP}"
            ) from e
        super().__init__(net, "inception", 2048, f"Inception-v3 (FID weights {weights})", value_range)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 RGB, what FID's reference implementation feeds Inception-v3."""
        unit = to_unit(x, self.value_range, clamp=True)
        if unit.shape[1] == 1:
            unit = unit.repeat(1, 3, 1, 1)
        return (unit * 255).round().to(torch.uint8)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, logits = self.net._torch_fidelity_forward(self.prepare(x))
        return features.double(), logits.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]


def _state_dict_mismatch(error: RuntimeError) -> str:
    """The first lines of ``load_state_dict``'s error, shortened: which keys are missing or unexpected."""
    lines = [line.strip() for line in str(error).splitlines()[1:3] if line.strip()]
    return "; ".join(line[:160] + ("..." if len(line) > 160 else "") for line in lines) or "no details"


def load_recipe(name: str) -> DictConfig:
    """``conf/features/<name>.yaml``: how vidgen trains the feature network ``name``, checked as run configs
    are (keys, types, optimizer and schedule values) before anything is trained."""
    from vidgen.config import check_config, read_config_file

    try:
        recipe = read_config_file(f"features/{name}.yaml")
    except FileNotFoundError as e:
        raise ConfigError(
            f"No feature-network recipe features/{name}.yaml (a datamodule's feature_net). "
            "Fix: add conf/features/<name>.yaml, or use one of lenet5, resnet8, c3d."
        ) from e
    check_config(OmegaConf.create({f"features/{name}": recipe}))
    return recipe


def data_identity(datamodule: Any) -> dict[str, Any]:
    """What decides the data a feature network sees: dataset id, checksum and every constructor argument
    of the datamodule except where it lives and how it is batched (``_NOT_DATA``)."""
    from vidgen.config import config_keys

    identity = {"dataset_id": datamodule.dataset_id, "checksum": datamodule.checksum}
    # every key a config may give the class, through **kwargs-forwarding constructors too
    for name in config_keys(type(datamodule))[0]:
        if name not in _NOT_DATA and hasattr(datamodule, name):
            value = getattr(datamodule, name)
            identity[name] = list(value) if isinstance(value, tuple) else value
    return identity


def cache_file(datamodule: Any, recipe_name: str, recipe: DictConfig) -> tuple[Path, dict[str, Any]]:
    """Where the network trained by ``recipe`` on ``datamodule`` (set up) is cached, and the identity
    hashed into its name."""
    identity = {"recipe": OmegaConf.to_container(recipe, resolve=True), "data": data_identity(datamodule)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = Path(datamodule.data_dir) / "feature_extractors"
    return folder / f"{recipe_name}_{datamodule.dataset_id}_{key}.pt", identity


def trained_feature_net(
    datamodule: Any, recipe_name: str, train: bool = True
) -> tuple[nn.Module, dict[str, Any]] | None:
    """The network of ``conf/features/<recipe_name>.yaml`` trained on ``datamodule`` and its metadata
    (accuracies, training time, identity, and ``cache``: the file it is kept in): loaded from the cache,
    or trained (with progress in the log) and cached; None when it is not cached and ``train`` is false.
    An unreadable cache file is trained again and replaced."""
    from hydra.utils import instantiate

    from vidgen.metrics.feature_nets import fit_feature_net

    datamodule.setup("fit")
    recipe = load_recipe(recipe_name)
    cache, identity = cache_file(datamodule, recipe_name, recipe)

    def build() -> nn.Module:
        # seeded by the recipe and inside fork_rng: the net is the same whoever asks for it, and the
        # caller's random stream does not depend on whether the cache existed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            return instantiate(recipe.net, channels=datamodule.channels, num_classes=datamodule.num_classes)

    what = f"feature net {recipe.display_name} on {datamodule.dataset_id}"
    if cache.exists():
        try:
            saved = torch.load(cache, map_location="cpu", weights_only=True)
            net = build()
            net.load_state_dict(saved.pop("state_dict"))
            return net.eval(), {**saved, "cache": cache}
        except Exception as e:  # noqa: BLE001 - torch's unpickler raises anything from IndexError up on garbage
            log.warning(f"{what}: the cache {cache} does not load ({e}); training it again")
    if not train:
        return None
    images = len(datamodule.splits["train"])
    log.info(f"Training {what} once, on its {images:,} training samples for {recipe.max_epochs} epochs "
             f"(recipe conf/features/{recipe_name}.yaml; progress and the time left below, once per epoch); "
             f"cached at {cache}")  # fmt: skip
    start = time.perf_counter()
    task = instantiate(recipe, net=build())
    task.value_range = datamodule.value_range  # the task maps batches to CANONICAL, as the space will
    accuracies = fit_feature_net(task, datamodule.splits["train"], datamodule.splits["test"],
                                 datamodule.num_workers, f"Training {what}")  # fmt: skip
    meta = {**accuracies, "architecture": recipe.display_name, "identity": identity,
            "train_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    atomic_torch_save({"state_dict": task.net.state_dict(), **meta}, cache)
    atomic_write_text(cache.with_suffix(".json"), json.dumps(meta, indent=2, default=str))
    log.info(
        f"{what}: trained in {meta['train_seconds']:.0f} s, test accuracy {accuracies['test_accuracy']:.2%}"
    )
    return task.net.eval(), {**meta, "cache": cache}


def feature_space(
    datamodule: Any, extractor: str | None = None, inception_weights: str | None = None, train: bool = True
) -> FeatureSpace | None:
    """The feature space of ``datamodule``'s samples: the data's own trained network (``extractor=None``:
    a classifier for images, the C3D for clips) or Inception-v3 (``extractor="inception"``). None when
    the data's network is not cached yet and ``train`` is false (debug runs do not train one)."""
    if extractor not in (None, "inception"):
        raise ConfigError(
            f"metrics.feature_extractor must be null (the data's domain classifier) or inception, "
            f"got {extractor!r}."
        )
    video = getattr(datamodule, "data_kind", "image") == "video"
    if extractor == "inception":
        if video:
            raise ConfigError(
                "metrics.feature_extractor=inception is an image network; video metrics use the C3D "
                "vidgen trains on the clips. Fix: metrics.feature_extractor=null."
            )
        return InceptionSpace(inception_weights, datamodule.value_range)
    name = datamodule.feature_extractor
    if video:
        trained = trained_feature_net(datamodule, "c3d", train)
        if trained is None:
            return None
        net, meta = trained
        space = C3DSpace(net, name, datamodule.dataset_id, float(meta["test_accuracy"]),
                         meta.get("class_accuracy"), datamodule.value_range)  # fmt: skip
    else:
        recipe = getattr(datamodule, "feature_net", "lenet5")
        trained = trained_feature_net(datamodule, recipe, train)
        if trained is None:
            return None
        net, meta = trained
        space = ClassifierSpace(net, name, meta["architecture"], datamodule.dataset_id,
                                float(meta["test_accuracy"]), datamodule.value_range)  # fmt: skip
    space.cache = meta["cache"]
    log.info(f"feature space '{name}': {space.description}")
    return space
