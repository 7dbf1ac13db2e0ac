"""Checkpoints: tensors in safetensors, everything else in JSON beside them; atomic; no pickle.

A checkpoint NAME in DIR is two files, ``NAME.safetensors`` and ``NAME.json``. Each is written to
a temporary file and renamed into place, the JSON last: it records the size of the tensor file,
so a checkpoint whose writing was cut off is detected on loading instead of half-read.
Training state (optimiser moments, RNG states, counters) goes into the same two files, so an
interrupted run resumes exactly.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

FORMAT = "lstmlab-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or not an lstmlab checkpoint."""


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(directory: str | Path, name: str, tensors: dict[str, Tensor],
                    meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and JSON-able ``meta`` as checkpoint ``name``; returns the JSON path."""
    directory = Path(directory)
    weights = directory / f"{name}.safetensors"
    contiguous, storages = {}, set()
    for k, v in tensors.items():
        v = v.detach().contiguous().cpu()
        if v.numel():  # tied weights share storage, which safetensors refuses: store a copy
            ptr = v.untyped_storage().data_ptr()
            if ptr in storages:
                v = v.clone()
            storages.add(ptr)
        contiguous[k] = v
    _atomic_write(weights, lambda tmp: save_file(contiguous, tmp))
    document = {"format": FORMAT, "version": VERSION, "tensors": weights.name,
                "tensors_bytes": weights.stat().st_size, **meta}
    text = json.dumps(document, indent=1)
    index = directory / f"{name}.json"
    _atomic_write(index, lambda tmp: Path(tmp).write_text(text))
    return index


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept DIR (its last.json, else best.json), DIR/NAME, NAME.json or NAME.safetensors."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("last.json", "best.json"):
            if (path / candidate).exists():
                return path / candidate
        raise CheckpointError(f"{path} holds no checkpoint (no last.json or best.json)")
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    elif path.suffix != ".json":
        path = path.with_name(path.name + ".json")
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint (see ``resolve_checkpoint`` for the accepted paths): (tensors, meta)."""
    index = resolve_checkpoint(path)
    try:
        meta = json.loads(index.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{index} is not valid JSON ({error}); the checkpoint is corrupt"
                              ) from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{index} is not an lstmlab checkpoint")
    name = meta.get("tensors")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise CheckpointError(f"{index} does not name its tensor file; the checkpoint is corrupt")
    weights = index.parent / name
    if not weights.exists():
        raise CheckpointError(f"checkpoint {index} names {weights.name}, which is missing")
    if weights.stat().st_size != meta.get("tensors_bytes"):
        raise CheckpointError(f"{weights} has {weights.stat().st_size} bytes but the checkpoint "
                              f"recorded {meta.get('tensors_bytes')}: it is incomplete or was "
                              "replaced")
    try:
        tensors = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{weights} cannot be read as safetensors: {error}") from error
    return tensors, meta


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
            return tensors[value["__tensor__"]]
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
