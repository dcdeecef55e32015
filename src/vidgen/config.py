"""Checks a composed config before anything is built, and builds objects with readable errors.

Hydra accepts any key under a ``_target_`` node and only fails when the object is constructed, often
deep inside a library. ``check_config`` walks every ``_target_`` node first and reports, in one message:
a target that does not import, a key the target does not take (with the closest valid names), and a
value whose type contradicts the target's annotation (``trainer.max_epochs=abc``).
"""

from __future__ import annotations

import difflib
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vidgen.errors import ConfigError, VidgenError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
_UNKNOWN = None  # "cannot tell" answer of _accepts


def hydra_config() -> DictConfig | None:
    """The running Hydra job's ``hydra`` config node, or None outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (``-m``)."""
    from hydra.types import RunMode

    hydra = hydra_config()
    return hydra is not None and hydra.mode == RunMode.MULTIRUN


def _choices() -> dict[str, str]:
    """The ``group -> option`` choices Hydra composed, e.g. ``{"model": "dcgan"}``; empty outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return dict(HydraConfig.get().runtime.choices)
    except Exception:
        return {}


def _choice_hint(key: str) -> str:
    """`` (from model=dcgan)`` for a key under a config group, to say which file a bad value came from."""
    group = key.split(".")[0]
    choice = _choices().get(group)
    return f" (from {group}={choice})" if choice else ""


def _named(group: str, node: DictConfig) -> str:
    """``model=dcgan`` when Hydra knows the option, else ``model._target_=<class path>``."""
    choice = _choices().get(group)
    return f"{group}={choice}" if choice else f"{group}._target_={node.get('_target_')}"


def import_target(path: str, key: str) -> Callable:
    try:
        return get_object(path)
    except Exception as e:
        raise ConfigError(
            f"{key}._target_={path!r}{_choice_hint(key)} cannot be imported: {e}. "
            "Fix: check the spelling of the class path, or install the package that provides it."
        ) from e


def _accepts(value: Any, annotation: Any) -> bool | None:
    """Whether ``value`` (a plain config value) fits ``annotation``; None when this cannot be decided."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return _UNKNOWN
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        answers = [_accepts(value, a) for a in typing.get_args(annotation)]
        if True in answers:
            return True
        return False if all(a is False for a in answers) else _UNKNOWN
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if isinstance(value, Mapping) and "_target_" in value:
        return _UNKNOWN  # an object built by Hydra: its type is known only once built
    if _is_tensor_type(annotation):
        return False  # e.g. Adam's ``lr: float | Tensor``: no config scalar is a Tensor
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if container in (list, tuple, Sequence, typing.Sequence):
        return isinstance(value, (list, tuple))
    if container in (dict, Mapping, typing.Mapping):
        return isinstance(value, Mapping)
    return _UNKNOWN


def _is_tensor_type(annotation: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and annotation is torch.Tensor


def _describe(annotation: Any) -> str:
    """``Optional[int]`` -> ``an integer or null``: the type in the words of a config file."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(dict.fromkeys(_describe(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if annotation in words:
        return words[annotation]
    if (origin or annotation) in (list, tuple, Sequence, typing.Sequence):
        return "a list"
    if (origin or annotation) in (dict, Mapping, typing.Mapping):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _signature(target: Callable) -> inspect.Signature | None:
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    try:  # resolve string annotations (``from __future__ import annotations``)
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:
        hints = {}
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params)


def _check_node(node: Any, key: str) -> None:
    if isinstance(node, Mapping):
        if "_target_" in node:
            _check_target_node(node, key)
        for k, v in node.items():
            if k not in _HYDRA_KEYS:
                _check_node(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_node(v, f"{key}[{i}]")


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _named_params(params: Sequence[inspect.Parameter]) -> tuple[dict[str, inspect.Parameter], bool]:
    """The parameters a config key can name, and whether ``**kwargs`` is among ``params``."""
    named = {p.name: p for p in params if p.kind not in _VARIADIC}
    return named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def config_keys(target: Callable) -> tuple[dict[str, inspect.Parameter], bool] | None:
    """The keys a config may give ``target`` (name -> parameter, with resolved annotations) and whether
    other keys are accepted unchecked; None when ``target`` has no readable signature.

    A class whose ``__init__`` takes ``**kwargs`` passes them to its base class's, as in
    ``def __init__(self, root: str, download: bool = True, **kwargs)``: its keys are the named parameters
    of the ``__init__``s along ``__mro__`` up to the first one without ``**kwargs``. When none lacks it
    (the kwargs reach ``object.__init__``, i.e. go elsewhere, as WandbLogger's go to ``wandb.init``), or
    ``target`` is a function taking ``**kwargs``, any key is accepted, as Hydra would.
    """
    sig = _signature(target)
    if sig is None:
        return None
    keys, takes_kwargs = _named_params(list(sig.parameters.values()))
    if not (takes_kwargs and inspect.isclass(target)):
        return keys, takes_kwargs
    # inits[0] is the __init__ ``sig`` was read from; the bases' follow in the order kwargs travel.
    inits = [vars(cls)["__init__"] for cls in target.__mro__ if "__init__" in vars(cls)]
    for init in inits[1:]:
        base = _signature(init) if init is not object.__init__ else None
        if base is None:
            break
        more, takes_kwargs = _named_params(list(base.parameters.values())[1:])  # [1:]: without self
        keys.update({name: p for name, p in more.items() if name not in keys})
        if not takes_kwargs:
            return keys, False
    return keys, True


def _check_target_node(node: Mapping, key: str) -> None:
    target = import_target(node["_target_"], key)
    found = config_keys(target)
    if found is None:
        return
    params, takes_kwargs = found
    name = node["_target_"]
    for k, v in node.items():
        if k in _HYDRA_KEYS:
            continue
        if k not in params:
            if takes_kwargs:
                continue
            close = difflib.get_close_matches(str(k), list(params), n=3)
            hint = f"Did you mean {', '.join(close)}? " if close else ""
            valid = ", ".join(params)
            raise ConfigError(
                f"{key}.{k}{_choice_hint(key)} is not a parameter of {name}. {hint}"
                f"Valid keys: {valid}. Fix: correct the key, or remove it from the override/config."
            )
        if _accepts(v, params[k].annotation) is False:
            expected = _describe(params[k].annotation)
            raise ConfigError(
                f"{key}.{k}={v!r}{_choice_hint(key)} has the wrong type: {name} expects {expected} for "
                f"{k}. Fix: give {key}.{k} {expected}."
            )
    if node.get("_partial_"):
        _try_partial(node, key, target)


def _try_partial(node: Mapping, key: str, target: Callable) -> None:
    """Builds a ``_partial_`` optimizer or learning-rate schedule once on a stand-in parameter, so that a
    value it rejects (``lr=-1``, ``betas=[2, 0.9]``) stops the run here, before any folder, logger or
    model exists, rather than as a traceback from ``configure_optimizers`` once training starts.
    Other partial objects get their remaining arguments only from the code that calls them."""
    import torch

    if not inspect.isclass(target):
        return
    kwargs = {k: v for k, v in node.items() if k not in _HYDRA_KEYS}
    stand_in = [torch.nn.Parameter(torch.zeros(1))]
    try:
        if issubclass(target, torch.optim.Optimizer):
            target(stand_in, **kwargs)
        elif issubclass(target, torch.optim.lr_scheduler.LRScheduler):
            extra = (
                {"total_steps": 10}
                if "total_steps" in config_keys(target)[0] and "total_steps" not in kwargs
                else {}
            )
            target(torch.optim.SGD(stand_in, lr=0.1), **kwargs, **extra)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{key}{_choice_hint(key)} ({node['_target_']}) rejects its arguments {kwargs}: {e}. "
            f"Fix: correct that value in the {key} config or override (e.g. {key}.lr=<a positive number>)."
        ) from e


# The top-level keys of conf/train.yaml, which no _target_ signature describes.
TOP_LEVEL: dict[str, Any] = {
    "seed": int,
    "task_name": str,
    "tags": list,
    "ckpt_path": typing.Optional[str],  # noqa: UP045 (a runtime value, inspected by _accepts)
    "optimized_metric": typing.Optional[str],  # noqa: UP045
    "optimized_direction": typing.Literal["minimize", "maximize"],
}


def check_config(cfg: DictConfig) -> dict:
    """Resolves ``cfg`` and checks every ``_target_`` node; returns the resolved plain container."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        raise ConfigError(
            f"The config does not resolve: {e.__class__.__name__}: {getattr(e, 'msg', e)} "
            f"(key: {getattr(e, 'full_key', '?')}). Fix: set the missing value or correct the interpolation."
        ) from e
    for key, annotation in TOP_LEVEL.items():
        if key in resolved and _accepts(resolved[key], annotation) is False:
            raise ConfigError(
                f"{key}={resolved[key]!r} has the wrong type: expected {_describe(annotation)}. "
                f"Fix: give {key} {_describe(annotation)}, e.g. on the command line `{key}=<value>`."
            )
    _check_node(resolved, "")
    return resolved


def build(node: DictConfig | ListConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that reports a failing constructor as one ``ConfigError``."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, VidgenError):
            raise cause from e
        target = node.get("_target_", "?") if isinstance(node, DictConfig) else "?"
        detail = f"{cause.__class__.__name__}: {cause}" if cause is not None else str(e)
        raise ConfigError(
            f"Building {key}{_choice_hint(key)} ({target}) failed: {detail}. "
            f"Fix: correct the value named above in the {key} config or override."
        ) from e


# The package that pyproject.toml maps to the repository's conf/: that folder itself in an editable
# install, its copy in site-packages in a wheel.
CONF_PACKAGE = "vidgen.conf"


def conf_search_path() -> str:
    """Where vidgen's configs are, as Hydra names a config path: ``pkg://vidgen.conf``, or the absolute
    folder ``$VIDGEN_CONF_DIR`` when that is set (a complete config tree replacing the packaged one).

    The one place that decides it: the entrypoints' ``@hydra.main``, ``compose_config`` and ``conf_dir``
    all follow it. A user's own configs are added beside it, not instead: ``--config-dir <dir>`` or
    ``hydra.searchpath=[file://<dir>]``.
    """
    folder = os.environ.get("VIDGEN_CONF_DIR")
    return str(Path(folder).expanduser().resolve()) if folder else f"pkg://{CONF_PACKAGE}"


def conf_dir() -> Traversable:
    """The folder of ``conf_search_path()``, for code that reads config files without composing
    (``conf_dir() / "data" / "mnist.yaml"``); a ``Path`` in an editable or wheel install."""
    source = conf_search_path()
    return resources.files(CONF_PACKAGE) if source.startswith("pkg://") else Path(source)


def config_options(group: str) -> list[str]:
    """The options of a config group: names of ``conf/<group>/*.yaml``, sorted."""
    folder = conf_dir() / group
    if not folder.is_dir():
        return []
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir() if f.name.endswith(".yaml"))


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "train", output_dir: str | Path | None = None
) -> DictConfig:
    """The config ``vidgen-<config_name> <overrides>`` would run, composed outside a Hydra app (tests,
    benchmarks, notebooks, ``vidgen-data``), with ``HydraConfig`` set as in a job so that interpolations
    of ``hydra:`` keys resolve; ``output_dir`` replaces the timestamped run folder. A user's config folder
    is added as on the command line, with the override ``hydra.searchpath=[file://<dir>]``."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    source = conf_search_path()
    if source.startswith("pkg://"):
        context = initialize_config_module(config_module=source.removeprefix("pkg://"), version_base="1.3")
    else:
        context = initialize_config_dir(config_dir=source, version_base="1.3")
    with context:
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]  # as in a real job: the task function never sees the hydra node
    return cfg


def read_config_file(relpath: str) -> DictConfig:
    """One file of vidgen's config tree, e.g. ``features/lenet5.yaml``, read without composing
    (``FileNotFoundError`` when absent)."""
    with (conf_dir() / relpath).open() as f:
        return OmegaConf.load(f)


def _options_with(group: str, attr: str, wanted: str) -> list[str]:
    """Names of ``conf/<group>/*.yaml`` whose ``_target_`` class has ``attr == wanted``."""
    names = []
    for name in config_options(group):
        target = read_config_file(f"{group}/{name}.yaml").get("_target_")
        try:
            if target and getattr(get_object(target), attr, None) == wanted:
                names.append(name)
        except Exception:
            continue
    return names


def _plural(data_kind: str) -> str:
    """``image`` -> ``images``; ``audio_visual`` -> ``audio-visual clips`` (in messages)."""
    return "audio-visual clips" if data_kind == "audio_visual" else f"{data_kind}s"


def check_compatibility(cfg: DictConfig) -> None:
    """Stops a model x data x loss x callbacks combination that cannot train, naming both sides and the fix.

    Class attributes carry the declarations (``vidgen.families.base``): a model has ``loss_kind`` (the
    ``kind`` of the losses it trains with) and ``data_kind`` (the data it models); a loss has
    ``kind``; a datamodule and a data-specific callback have ``data_kind`` (``image``, ``video``, ``audio``,
    ``audio_visual``). Size constraints (e.g. a
    power-of-two image size) are checked by each net's constructor.
    """
    model_cls = import_target(cfg.model._target_, "model")
    loss_kind = getattr(model_cls, "loss_kind", None)
    if cfg.get("loss") is not None and "_target_" in cfg.loss:
        have_loss = getattr(import_target(cfg.loss._target_, "loss"), "kind", None)
        if loss_kind and have_loss and have_loss != loss_kind:
            options = "|".join(_options_with("loss", "kind", loss_kind)) or "?"
            article = "an" if have_loss[0] in "aeiou" else "a"
            raise ConfigError(
                f"{_named('loss', cfg.loss)} is {article} {have_loss} loss and cannot train "
                f"{_named('model', cfg.model)} ({model_cls.__name__}, trained with {loss_kind} losses). "
                f"Fix: choose one of those: loss={options}."
            )
    have = getattr(import_target(cfg.data._target_, "data"), "data_kind", None)
    wanted = getattr(model_cls, "data_kind", None)
    if wanted and have and wanted != have:
        options = "|".join(_options_with("data", "data_kind", wanted)) or "?"
        raise ConfigError(
            f"{_named('model', cfg.model)} models {_plural(wanted)} but {_named('data', cfg.data)} "
            f"provides {_plural(have)}. Fix: pick {wanted.replace('_', '-')} data, data={options}, or a "
            f"model for {_plural(have)}."
        )
    _check_checkpoint_monitors(cfg.get("callbacks") or {})
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        needs = getattr(import_target(node._target_, f"callbacks.{name}"), "data_kind", None)
        if needs and have and needs != have:
            raise ConfigError(
                f"callbacks.{name} ({node._target_}) works on {_plural(needs)} but "
                f"{_named('data', cfg.data)} provides {_plural(have)}. Fix: "
                f"callbacks={getattr(model_cls, 'default_callbacks', 'default')} "
                f"(made for {_named('model', cfg.model)}), or remove it with ~callbacks.{name}."
            )


def _check_checkpoint_monitors(callbacks: DictConfig | dict) -> None:
    """A checkpoint callback that keeps the best ``val/fid_*`` needs a callback that logs it during
    validation (Lightning would stop at the first validation end with its MisconfigurationException)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from vidgen.callbacks.staged_quality import StagedQualityCallback

    nodes = {n: c for n, c in callbacks.items() if isinstance(c, DictConfig) and "_target_" in c}
    classes = {n: import_target(c._target_, f"callbacks.{n}") for n, c in nodes.items()}
    validating = any(
        isinstance(cls, type) and issubclass(cls, StagedQualityCallback)
        and "validate" in (nodes[n].get("stages") or inspect.signature(cls).parameters["stages"].default)
        for n, cls in classes.items()
    )  # fmt: skip
    for name, cls in classes.items():
        monitor = (
            nodes[name].get("monitor") if isinstance(cls, type) and issubclass(cls, ModelCheckpoint) else None
        )
        if monitor and str(monitor).startswith("val/fid_") and not validating:
            raise ConfigError(
                f"callbacks.{name}.monitor={monitor}: it keeps the best checkpoint by a FID that only a "
                "sample-quality callback measuring at validation logs, and this config has none. Fix: "
                f"callbacks.{name}.monitor=null (keep the latest checkpoint), or measure it: "
                "callbacks=[model_checkpoint,fid] (or callbacks=default)."
            )
