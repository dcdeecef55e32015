"""Checks a composed config before anything is built, and builds objects with readable errors.

Hydra accepts any key under a ``_target_`` node and only fails when the object is constructed, often
deep inside a library. ``check_config`` walks every ``_target_`` node first and reports, in one message:
a target that does not import, a key the target does not take (with the closest valid names), and a
value whose type contradicts the target's annotation (``trainer.max_epochs=abc``).
"""

from __future__ import annotations

import difflib
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vidgen.errors import ConfigError, VidgenError

_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
_UNKNOWN = None  # "cannot tell" answer of _accepts


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


def _check_target_node(node: Mapping, key: str) -> None:
    target = import_target(node["_target_"], key)
    sig = _signature(target)
    if sig is None:
        return
    params = sig.parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    name = node["_target_"]
    for k, v in node.items():
        if k in _HYDRA_KEYS:
            continue
        if k not in params:
            if takes_kwargs:
                continue
            close = difflib.get_close_matches(str(k), list(params), n=3)
            hint = f"Did you mean {', '.join(close)}? " if close else ""
            valid = ", ".join(p for p in params if p != "self")
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


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "train", output_dir: str | Path | None = None
) -> DictConfig:
    """The config ``vidgen-<config_name> <overrides>`` would run, composed outside a Hydra app (tests,
    benchmarks, notebooks, ``vidgen-data``), with ``HydraConfig`` set as in a job so that interpolations
    of ``hydra:`` keys resolve; ``output_dir`` replaces the timestamped run folder."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]  # as in a real job: the task function never sees the hydra node
    return cfg


def conf_dir() -> str:
    """The repository's ``conf/`` folder (vidgen is installed in editable mode from its checkout)."""
    import os
    from pathlib import Path

    return os.environ.get("VIDGEN_CONF_DIR") or str(Path(__file__).resolve().parents[2] / "conf")


def _options_with(group: str, attr: str, wanted: str) -> list[str]:
    """Names of ``conf/<group>/*.yaml`` whose ``_target_`` class has ``attr == wanted``."""
    from pathlib import Path

    names = []
    for path in sorted(Path(conf_dir(), group).glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        try:
            if target and getattr(get_object(target), attr, None) == wanted:
                names.append(path.stem)
        except Exception:
            continue
    return names


def check_compatibility(cfg: DictConfig) -> None:
    """Stops a model x data x loss x callbacks combination that cannot train, naming both sides and the fix.

    Class attributes carry the declarations: a family has ``family``, ``loss_family`` (the ``family`` of
    the losses it trains with) and ``data_kind`` (``image`` or ``video``); a loss has ``family``; a
    datamodule and a data-specific callback have ``data_kind``. Size constraints (e.g. a power-of-two
    image size) are checked by each net's constructor.
    """
    model_cls = import_target(cfg.model._target_, "model")
    family = getattr(model_cls, "family", None)
    loss_family = getattr(model_cls, "loss_family", family)
    if cfg.get("loss") is not None and "_target_" in cfg.loss:
        have_loss = getattr(import_target(cfg.loss._target_, "loss"), "family", None)
        if loss_family and have_loss and have_loss != loss_family:
            options = "|".join(_options_with("loss", "family", loss_family)) or "?"
            raise ConfigError(
                f"{_named('loss', cfg.loss)} is a {have_loss} loss and cannot train "
                f"{_named('model', cfg.model)} (a {family} model). Fix: choose a {loss_family} loss: "
                f"loss={options}."
            )
    have = getattr(import_target(cfg.data._target_, "data"), "data_kind", None)
    wanted = getattr(model_cls, "data_kind", None)
    if wanted and have and wanted != have:
        options = "|".join(_options_with("data", "data_kind", wanted)) or "?"
        raise ConfigError(
            f"{_named('model', cfg.model)} models {wanted}s but {_named('data', cfg.data)} "
            f"provides {have}s. Fix: pick {wanted} data, data={options}, or a model for {have}s."
        )
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        needs = getattr(import_target(node._target_, f"callbacks.{name}"), "data_kind", None)
        if needs and have and needs != have:
            raise ConfigError(
                f"callbacks.{name} ({node._target_}) works on {needs}s but {_named('data', cfg.data)} "
                f"provides {have}s. Fix: callbacks={getattr(model_cls, 'default_callbacks', 'default')} "
                f"(made for {_named('model', cfg.model)}), or remove it with ~callbacks.{name}."
            )
