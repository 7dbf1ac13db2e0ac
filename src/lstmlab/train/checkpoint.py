"""Checkpoints of a training run: the model's weights plus what an exact resume needs.

The files themselves (safetensors + JSON, committed by one atomic rename, checked by size and
sha256 on loading, never unpickled) are ``lstmlab.io``'s; this module adds the helpers that turn
training state into tensors and JSON: nested states such as an optimiser's ``state_dict``
(``pack_state``/``unpack_state``) and the random states (``rng_state``/``set_rng_state``).
``save_checkpoint``/``load_checkpoint``/``resolve_checkpoint`` are ``lstmlab.io``'s
``write_checkpoint``/``read_checkpoint``/``resolve`` under the names the loop uses.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor

from lstmlab.io import (
    FORMAT,
    VERSION,
    CheckpointError,
    read_checkpoint,
    resolve,
    write_checkpoint,
)

save_checkpoint = write_checkpoint
load_checkpoint = read_checkpoint
resolve_checkpoint = resolve


def _flatten(prefix: str, value: Any, tensors: dict[str, Tensor]) -> Any:
    """Move tensors out of a nested structure into ``tensors``; leave JSON-able placeholders."""
    if isinstance(value, Tensor):
        key = prefix
        tensors[key] = value
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[_flatten(f"{prefix}.k{i}", k, tensors),
                              _flatten(f"{prefix}.{i}", v, tensors)]
                             for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        return {"__list__" if isinstance(value, list) else "__tuple__":
                [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {prefix} in a checkpoint")


def _unflatten(value: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            key = value["__tensor__"]
            if not isinstance(key, str) or key not in tensors:
                raise CheckpointError(f"the checkpoint's training state names tensor {key!r}, "
                                      "which the checkpoint does not hold")
            return tensors[key]
        if "__dict__" in value:
            return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in value["__dict__"]}
        if "__list__" in value:
            return [_unflatten(v, tensors) for v in value["__list__"]]
        if "__tuple__" in value:
            return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
    return value


def pack_state(prefix: str, state: Any, tensors: dict[str, Tensor]) -> Any:
    """Store a nested state (an optimiser's state_dict, say): tensors go into ``tensors`` under
    ``prefix``, the returned structure is JSON-able. ``unpack_state`` reverses it."""
    return _flatten(prefix, state, tensors)


def unpack_state(packed: Any, tensors: dict[str, Tensor]) -> Any:
    return _unflatten(packed, tensors)


def rng_state(tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Capture Python's and torch's random states (CPU and CUDA) for an exact resume."""
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    version, internal, gauss = random.getstate()
    return {"python": [version, list(internal), gauss]}


def set_rng_state(meta: dict[str, Any], tensors: dict[str, Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


__all__ = ["FORMAT", "VERSION", "CheckpointError", "load_checkpoint", "pack_state",
           "resolve_checkpoint", "rng_state", "save_checkpoint", "set_rng_state", "unpack_state"]
