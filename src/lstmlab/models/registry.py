"""One model format: every model kind is saved by ``save`` and rebuilt by ``load``.

A model kind is a class registered under a short name, with ``config()``: its constructor's
arguments, JSON-able, so that ``cls(**model.config())`` rebuilds it (with fresh weights, which
the saved ones then replace):

    >>> @register("sequence")
    ... class SequenceModel(nn.Module):
    ...     def config(self) -> dict: return {"cell": self.cell, ...}
    >>> path = lstmlab.save(model, "runs/x", extra={"vocabulary": vocab.to_dict()})
    >>> model = lstmlab.load("runs/x")                  # in eval mode, on the CPU
    >>> saved = load_saved("runs/x", kind="language_model")  # and its kind, config, extra

A saved model is an ``lstmlab.io`` checkpoint (DIR/NAME.json + DIR/NAME.<h>.safetensors,
committed atomically, verified on loading, never unpickled) whose JSON holds

    "kind": "language_model",          the registered name
    "config": {...},                   model.config()
    "extra": {...},                    the caller's JSON: vocabularies, metrics, ...
    "lstmlab": "0.1.0",                the version that wrote it

and whose tensors are the model's ``state_dict`` under "model.<key>". Any checkpoint with those
keys loads as a model, whatever else it holds (a training run's "last" checkpoint also has
"trainer" and optimiser tensors: ``model_meta`` gives the keys to merge into its meta).
The format version is the checkpoint's ("version" in the JSON, see ``lstmlab.io``).

Language-model checkpoints written before this format ("kind": "lstmlab.language_model", the
configuration under "model", the vocabulary under "vocabulary") load as kind "language_model"
with ``extra["vocabulary"]`` (and ``extra["lm"]``, that run's training record).

Register a new kind where its class is defined, and import that module in
``lstmlab/models/__init__.py``, so that every kind is known once ``lstmlab.models`` is imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from lstmlab.io import CheckpointError, read_checkpoint, resolve, write_checkpoint

M = TypeVar("M", bound=type[nn.Module])

_KINDS: dict[str, type[nn.Module]] = {}
LEGACY_KINDS = {"lstmlab.language_model": "language_model"}  # kind before this format -> now
PREFIX = "model."  # the state_dict's keys in the checkpoint's tensors


def register(kind: str) -> Callable[[M], M]:
    """Class decorator: make ``cls`` a model kind called ``kind`` for ``save`` and ``load``.

    The class needs ``config() -> dict`` (JSON-able constructor arguments: ``cls(**config)``
    rebuilds the model)."""
    if not isinstance(kind, str) or not kind or kind in LEGACY_KINDS:
        raise ValueError(f"a model kind is a non-empty name, not {kind!r}")

    def decorate(cls: M) -> M:
        if not callable(getattr(cls, "config", None)):
            raise TypeError(f"{cls.__qualname__} needs a config() method returning its "
                            "constructor's arguments to be a model kind")
        known = _KINDS.get(kind)
        if known is not None and _qualified(known) != _qualified(cls):
            raise ValueError(f"model kind {kind!r} is already {_qualified(known)}")
        _KINDS[kind] = cls
        return cls

    return decorate


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def kinds() -> list[str]:
    """The registered model kinds."""
    return sorted(_KINDS)


def model_class(kind: str) -> type[nn.Module]:
    """The class registered as ``kind`` (ValueError listing the known kinds otherwise)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(kinds())}")
    return _KINDS[kind]


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel (``.module``) or
    ``torch.compile`` (``._orig_mod``) wrapper, else ``model`` itself."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def kind_of(model: nn.Module) -> str:
    """The registered kind of ``model`` (its exact class; wrappers are looked through)."""
    cls = type(unwrap(model))
    for kind, known in _KINDS.items():
        if known is cls:
            return kind
    raise ValueError(f"{cls.__qualname__} is not a registered model kind (known: "
                     f"{', '.join(kinds())}); decorate it with @register('name')")


def _version() -> str:
    from lstmlab import __version__  # at call time: the package is initialised by then

    return __version__


def model_meta(model: nn.Module, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON keys that describe ``model`` in a checkpoint: kind, config, extra, lstmlab.

    Merge them into the meta of any checkpoint whose tensors hold ``model_tensors(model)``
    (a trainer's) to make it loadable by ``load``."""
    model = unwrap(model)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict of JSON-able data, got {type(extra).__name__}")
    meta = {"kind": kind_of(model), "config": model.config(), "extra": dict(extra or {}),
            "lstmlab": _version()}
    for key in ("config", "extra"):
        try:
            json.dumps(meta[key], allow_nan=True)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the model's {key} must be JSON-able ({error})") from None
    if not all(isinstance(k, str) for k in meta["config"]):
        raise ValueError(f"{type(model).__qualname__}.config() must have string keys")
    return meta


def model_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The model's ``state_dict`` under the checkpoint's keys ("model.<key>")."""
    return {PREFIX + key: value for key, value in unwrap(model).state_dict().items()}


def save(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None, *,
         name: str = "model") -> Path:
    """Save a model of a registered kind as checkpoint ``name`` in the folder ``path``.

    Args:
        model: an instance of a registered class (or a DDP / compiled wrapper of one).
        path: the folder (created if missing); the files are NAME.json and
            NAME.<h>.safetensors, replaced atomically if they exist.
        extra: JSON-able data to keep with the model (vocabularies, metrics, ...); returned by
            ``load_saved(...).extra``.
        name: the checkpoint's name in the folder ("model"; training runs use "best"/"last").

    Returns:
        The path of the JSON file.
    """
    path = Path(path)
    if path.suffix in {".json", ".safetensors"}:
        raise ValueError(f"save() takes a folder, not a file name ({path}); pass name= to name "
                         "the checkpoint inside it")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; save() needs a folder to write the model into")
    return write_checkpoint(path, name, model_tensors(model), model_meta(model, extra))


@dataclass
class SavedModel:
    """A model read by ``load_saved``: the module (eval mode), its kind and configuration, the
    caller's ``extra`` given to ``save``, the checkpoint's whole JSON and its path."""

    model: nn.Module
    kind: str
    config: dict[str, Any]
    extra: dict[str, Any]
    meta: dict[str, Any]
    path: Path


def describe(index: Path, meta: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(kind, config, extra) of a checkpoint's JSON, for the current format and the legacy
    language-model format; ``CheckpointError`` if the JSON describes no model."""
    kind = meta.get("kind")
    if kind is None:
        raise CheckpointError(f'{index} holds no model description (no "kind"): it was not '
                              "written by lstmlab.save or with model_meta")
    if not isinstance(kind, str):
        raise CheckpointError(f'{index}: "kind" must be a model kind name, got {kind!r}')
    if kind in LEGACY_KINDS:  # before this format: config under "model", the vocabulary beside
        config = meta.get("model")
        extra = {key: meta[key] for key in ("vocabulary", "lm") if key in meta}
        kind = LEGACY_KINDS[kind]
    else:
        config, extra = meta.get("config"), meta.get("extra", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise CheckpointError(f"{index}: the model configuration must be a JSON object of "
                              f"constructor arguments, got {type(config).__name__}")
    if "model" in config and "cell" not in config:  # written before "model" became "cell"
        config = {("cell" if k == "model" else k): v for k, v in config.items()}
    if not isinstance(extra, dict):
        raise CheckpointError(f'{index}: "extra" must be a JSON object, got '
                              f"{type(extra).__name__}")
    return kind, config, extra


def _names(keys: list[str], most: int = 4) -> str:
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _check_fit(index: Path, model: nn.Module, weights: dict[str, Tensor]) -> None:
    """``CheckpointError`` listing what does not fit, before load_state_dict's raw message."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    shapes = [f"{key} is {tuple(weights[key].shape)}, the configuration makes it "
              f"{tuple(expected[key].shape)}"
              for key in expected if key in weights and weights[key].shape != expected[key].shape]
    problems = ([f"missing {_names(missing)}"] if missing else []) \
        + ([f"unexpected {_names(unexpected)}"] if unexpected else []) + shapes[:4]
    if problems:
        raise CheckpointError(f"{index}: the weights do not fit the model configuration "
                              f"({'; '.join(problems)})")


BUILD_SLACK = 256 * 2**20  # bytes a model's construction may allocate beyond 4x its weights
_FACTORIES = ("empty", "empty_strided", "zeros", "ones", "full", "rand", "randn", "randint",
              "randperm", "arange", "linspace", "logspace", "eye", "tensor", "as_tensor",
              "asarray", "scalar_tensor", "zeros_like", "ones_like", "full_like", "empty_like",
              "rand_like", "randn_like", "randint_like")


class _TooLarge(Exception):
    pass


class _AllocationLimit(TorchFunctionMode):
    """Counts the bytes of the tensors that torch's factory functions create (nn.Module
    constructors allocate their parameters with them) and stops at ``limit``. The count is
    taken after each allocation, which the OS grants lazily: stopping before the weights are
    initialised (written) is what keeps a huge one from costing memory."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.used = limit, 0
        self.factories = {getattr(torch, name) for name in _FACTORIES if hasattr(torch, name)}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in self.factories and isinstance(result, Tensor):
            self.used += result.nbytes
            if self.used > self.limit:
                raise _TooLarge(self.used)
        return result


def load_saved(path: str | Path, *, kind: str | None = None,
               map_location: str | torch.device = "cpu") -> SavedModel:
    """Read a saved model of any kind, with its configuration and extra data.

    Args:
        path: a folder (its best.json, else last.json, else model.json), a checkpoint's .json
            (or its name without suffix), or its .safetensors file.
        kind: if given, the kind the caller needs; another kind is a ``CheckpointError``.
        map_location: the device to put the model on.

    Raises:
        CheckpointError (a ValueError) naming the file: missing, torn or corrupt files, an
        unknown kind, a newer format version, a configuration the class rejects, weights that
        do not fit the configuration, or the wrong kind.
    """
    if kind is not None:
        model_class(kind)  # a typo in the caller's kind is the caller's error, said at once
    index = resolve(path)
    tensors, meta = read_checkpoint(index)
    saved_kind, config, extra = describe(index, meta)
    if kind is not None and saved_kind != kind:
        raise CheckpointError(f"the checkpoint at {index} holds a {saved_kind!r} model; a "
                              f"{kind!r} model is needed here")
    if saved_kind not in _KINDS:
        raise CheckpointError(f"{index} holds a model of unknown kind {saved_kind!r} (known: "
                              f"{', '.join(kinds())}); a newer lstmlab may read it")
    cls = _KINDS[saved_kind]
    weights = {key[len(PREFIX):]: value for key, value in tensors.items()
               if key.startswith(PREFIX)}
    # a corrupt or hostile configuration with huge sizes must not allocate them: the build
    # may allocate a few times the weights it must hold, then it is stopped
    limit = 4 * sum(value.nbytes for value in weights.values()) + BUILD_SLACK
    try:
        with _AllocationLimit(limit), torch.random.fork_rng(devices=[]):  # building draws
            model = cls(**config)             # initial weights: keep the caller's random state
    except _TooLarge as error:
        raise CheckpointError(f"{index}: the configuration does not fit the weights (building "
                              f"it allocates {error.args[0]:,} bytes or more, for "
                              f"{sum(value.nbytes for value in weights.values()):,} bytes of "
                              "weights)") from None
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError, MemoryError) as error:
        raise CheckpointError(f"{index}: the configuration does not build a {saved_kind!r} "
                              f"model ({type(error).__name__}: {error})") from None
    _check_fit(index, model, weights)
    floating = {value.dtype for value in weights.values() if value.is_floating_point()}
    if len(floating) == 1:  # a model saved in float64 (say) comes back in float64
        model.to(floating.pop())
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:  # what _check_fit cannot see (a class's own checks)
        raise CheckpointError(f"{index}: the weights do not fit the model configuration "
                              f"({str(error).strip().splitlines()[0]})") from None
    model.to(map_location)
    model.eval()
    return SavedModel(model, saved_kind, config, extra, meta, index)


def load(path: str | Path, *, kind: str | None = None,
         map_location: str | torch.device = "cpu") -> nn.Module:
    """Read a saved model of any kind, in eval mode (see ``load_saved`` for the arguments and
    errors; it also returns the configuration and extra data)."""
    return load_saved(path, kind=kind, map_location=map_location).model


__all__ = ["LEGACY_KINDS", "SavedModel", "describe", "kind_of", "kinds", "load", "load_saved",
           "model_class", "model_meta", "model_tensors", "register", "save", "unwrap"]
