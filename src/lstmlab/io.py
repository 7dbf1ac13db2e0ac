"""Files that cannot tear: the one atomic-write helper, and checkpoints (safetensors + JSON).

The bottom floor of lstmlab's storage: it knows files, tensors and JSON, nothing of models or
training (``lstmlab.models.registry`` saves and loads models on top of it; ``lstmlab.train``
adds optimiser and random states).

Atomic write: the new content goes to a temporary file in the target's folder, is flushed to
disk (fsync) and renamed over the target (``os.replace``, atomic on POSIX and Windows), and the
folder is synced so the rename survives a power cut. A reader sees the old file or the new one,
never a part of either. Files get mode 0666 minus the umask (0644 usually), like ``open``.

A checkpoint NAME in a folder DIR is two files, committed by one rename:

    DIR/NAME.<h>.safetensors   the tensors; <h> = the first 16 hex digits of the file's sha256
    DIR/NAME.json              {"format": "lstmlab-checkpoint", "version": 2,
                                "tensors": "NAME.<h>.safetensors", "tensors_bytes": n,
                                "tensors_sha256": "<64 hex digits>", ...the caller's meta}

The weights are written first under their content's name (a new file, never the one that
NAME.json points to), then NAME.json is replaced; only then are stale ``NAME.*.safetensors``
removed. A kill at any moment leaves the old checkpoint or the new one, whole. On reading, the
weights' size and sha256 are checked against the JSON, so a truncated, replaced or corrupted file
is a ``CheckpointError`` naming the file, never garbage weights. Loading never unpickles.

Version 1 (before content addressing: ``"tensors": "NAME.safetensors"``, a size but no sha256)
still reads, with the size check only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

FORMAT = "lstmlab-checkpoint"
VERSION = 2  # 1: "NAME.safetensors" with its size; 2: content-addressed, with its sha256
RESERVED = ("format", "version", "tensors", "tensors_bytes", "tensors_sha256")
DIRECTORY_ORDER = ("best.json", "last.json", "model.json")  # what a folder means, in order
_HASHED = re.compile(r"(?P<name>.+)\.[0-9a-f]{16}")  # the stem of NAME.<h>.safetensors


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, corrupt, foreign or too new to read."""


# ----------------------------------------------------------------------------------------------
# Atomic writes


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; where folders cannot be opened, a no-op)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Replace ``path`` with what ``write(temporary_path)`` writes, all at once or not at all.

    ``write`` receives the name of an empty temporary file in the same folder (created with
    mode 0666 minus the umask) and fills it, e.g. ``lambda tmp: save_file(tensors, tmp)``.
    If it raises (or the process is interrupted by an exception), the temporary file is
    removed and ``path`` is untouched. Missing parent folders are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:  # O_EXCL: our own new file; mode 0o666 so the umask decides, as for open()
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        write(str(tmp))
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)  # the content is on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def writable_folder(folder: str | Path, option: str = "--out") -> Path:
    """Make sure ``folder`` is a folder this process can write into (created if missing), before
    any work whose results go there; otherwise a ValueError naming ``option``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file, not a folder; choose another {option}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".lstmlab-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"cannot write into {option} {folder}: {error.strerror or error}"
                         ) from None
    return folder


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """``atomic_write`` of bytes."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """``atomic_write`` of text (UTF-8 unless told)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding=encoding))


# ----------------------------------------------------------------------------------------------
# Checkpoints: writing


def _plain_tensors(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU tensors; a storage shared by several (tied weights) is stored as
    copies, since safetensors refuses shared storage (loading ties them again, if the model
    does)."""
    plain, storages = {}, set()
    for key, value in tensors.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"checkpoint tensor {key!r} is a {type(value).__name__}, not a Tensor")
        value = value.detach().contiguous().cpu()
        if value.numel():
            pointer = value.untyped_storage().data_ptr()
            if pointer in storages:
                value = value.clone()
            storages.add(pointer)
        plain[key] = value
    return plain


def _check_name(name: str) -> None:
    if not name or name != Path(name).name or name.startswith(".") or name in {".", ".."}:
        raise ValueError(f"a checkpoint name is a plain file name without a folder or a leading "
                         f"dot, e.g. 'best'; got {name!r}")


def _is_weights_of(name: str, file_name: str) -> bool:
    """Whether ``file_name`` is (or was) checkpoint ``name``'s weights: NAME.<h>.safetensors,
    or version 1's NAME.safetensors."""
    if not file_name.endswith(".safetensors"):
        return False
    stem = file_name.removesuffix(".safetensors")
    if stem == name:
        return True
    match = _HASHED.fullmatch(stem)
    return match is not None and match["name"] == name


def _is_temporary_of(name: str, file_name: str) -> bool:
    """Whether ``file_name`` is an ``atomic_write`` temporary of checkpoint ``name``'s files."""
    match = re.fullmatch(r"\.(?P<target>.+)\.[0-9a-f]{8}\.tmp", file_name)
    return match is not None and (match["target"] == f"{name}.json"
                                  or _is_weights_of(name, match["target"]))


def write_checkpoint(directory: str | Path, name: str, tensors: dict[str, Tensor],
                     meta: dict[str, Any]) -> Path:
    """Write checkpoint ``name`` in ``directory``: ``tensors`` in safetensors, JSON-able ``meta``
    in NAME.json, committed by the one rename of NAME.json. Returns the JSON's path.

    Stale weights of ``name`` and temporaries left by an interrupted writer are removed after
    the commit (one writer per checkpoint name). ``meta`` may not use the keys in ``RESERVED``.
    """
    _check_name(name)
    clash = [k for k in RESERVED if k in meta]
    if clash:
        raise ValueError(f"checkpoint meta may not set {', '.join(clash)} (written by "
                         "write_checkpoint itself)")
    directory = Path(directory)
    data = save_safetensors(_plain_tensors(tensors))
    digest = hashlib.sha256(data).hexdigest()
    weights = directory / f"{name}.{digest[:16]}.safetensors"
    document = {"format": FORMAT, "version": VERSION, "tensors": weights.name,
                "tensors_bytes": len(data), "tensors_sha256": digest, **meta}
    text = json.dumps(document, indent=1)  # before any file is touched: meta must be JSON-able
    atomic_write_bytes(weights, data)
    index = atomic_write_text(directory / f"{name}.json", text)  # the commit
    for entry in directory.iterdir():
        if entry.name != weights.name and (_is_weights_of(name, entry.name)
                                           or _is_temporary_of(name, entry.name)):
            entry.unlink(missing_ok=True)
    return index


def copy_checkpoint(directory: str | Path, name: str, to: str) -> Path | None:
    """Keep checkpoint ``name`` of ``directory`` also as ``to`` (e.g. "last" as "previous",
    before "last" is replaced), committed like ``write_checkpoint``: the weights are hard-linked
    (copied where links are not possible), then TO.json is renamed into place. Returns TO.json,
    or None when ``name`` has no whole, verified checkpoint to keep."""
    _check_name(to)
    directory = Path(directory)
    try:
        _, meta = read_checkpoint(directory / f"{name}.json")  # verified: only a good one
    except CheckpointError:
        return None
    source = directory / meta["tensors"]
    digest = meta.get("tensors_sha256") or hashlib.sha256(source.read_bytes()).hexdigest()
    target = directory / f"{to}.{digest[:16]}.safetensors"
    if not target.exists():
        link = directory / f".{target.name}.link"
        link.unlink(missing_ok=True)
        try:
            os.link(source, link)
        except OSError:
            shutil.copyfile(source, link)
        os.replace(link, target)
    document = {**meta, "version": max(2, meta["version"]), "tensors": target.name,
                "tensors_sha256": digest}
    copy = atomic_write_text(directory / f"{to}.json", json.dumps(document, indent=1))
    for entry in directory.iterdir():
        if entry.name != target.name and (_is_weights_of(to, entry.name)
                                          or _is_temporary_of(to, entry.name)):
            entry.unlink(missing_ok=True)
    return copy


# ----------------------------------------------------------------------------------------------
# Checkpoints: reading


def resolve(path: str | Path) -> Path:
    """The JSON file of a checkpoint given as DIR (its best.json, else last.json, else
    model.json), DIR/NAME, NAME.json, or a weights file NAME.safetensors / NAME.<h>.safetensors.
    Raises ``CheckpointError`` if there is none."""
    path = Path(path)
    if path.is_dir():
        for candidate in DIRECTORY_ORDER:
            if (path / candidate).is_file():
                return path / candidate
        raise CheckpointError(f"{path} holds no checkpoint (no {', '.join(DIRECTORY_ORDER)})")
    if path.suffix == ".safetensors":
        match = _HASHED.fullmatch(path.stem)
        path = path.with_name((match["name"] if match else path.stem) + ".json")
    elif path.suffix != ".json":
        path = path.with_name(path.name + ".json")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (expected a checkpoint's .json file or "
                              "a folder holding one)")
    return path


def _parse_index(index: Path, text: bytes) -> dict[str, Any]:
    """The checked JSON of a checkpoint; ``CheckpointError`` for anything but a readable one."""
    try:
        meta = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{index} is not valid JSON ({type(error).__name__}: "
                              f"{str(error)[:200]}); the checkpoint is corrupt") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f'{index} is not an lstmlab checkpoint (expected "format": '
                              f'"{FORMAT}")')
    version = meta.get("version")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{index} has no valid format version (got {version!r})")
    if version > VERSION:
        raise CheckpointError(f"{index} was written by a newer lstmlab (checkpoint format "
                              f"version {version}; this lstmlab reads versions 1 to {VERSION}): "
                              "upgrade lstmlab to read it")
    tensors, size = meta.get("tensors"), meta.get("tensors_bytes")
    if not (isinstance(tensors, str) and tensors.endswith(".safetensors")
            and tensors == Path(tensors).name and not tensors.startswith(".")):
        raise CheckpointError(f'{index}: "tensors" must name a .safetensors file beside it, got '
                              f"{tensors!r}")
    if type(size) is not int or size < 0:
        raise CheckpointError(f'{index}: "tensors_bytes" must be a byte count, got {size!r}')
    if version >= 2:
        digest = meta.get("tensors_sha256")
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise CheckpointError(f'{index}: "tensors_sha256" must be 64 hex digits, got '
                                  f"{digest!r}")
    return meta


def read_meta(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A checkpoint's checked JSON without its tensors: (the JSON's path, meta)."""
    index = resolve(path)
    try:
        text = index.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{index} cannot be read: {error}") from None
    return index, _parse_index(index, text)


def _changed(index: Path, text: bytes) -> bool:
    try:
        return index.read_bytes() != text
    except OSError:
        return False


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint (any path ``resolve`` accepts): (tensors on the CPU, meta).

    The weights file must have the size and (version 2) the sha256 that the JSON recorded;
    otherwise, and for a missing file, invalid JSON, a foreign file or a newer format, a
    ``CheckpointError`` names the file and what was expected.
    """
    index = resolve(path)
    for attempt in range(3):  # a writer may commit a new checkpoint between our two reads
        try:
            text = index.read_bytes()
        except OSError as error:
            raise CheckpointError(f"{index} cannot be read: {error}") from None
        meta = _parse_index(index, text)
        weights = index.parent / meta["tensors"]
        try:
            data = weights.read_bytes()
        except FileNotFoundError:
            if attempt < 2 and _changed(index, text):
                continue  # a new checkpoint was committed meanwhile: read that one
            raise CheckpointError(f"checkpoint {index} names {weights.name}, which is missing "
                                  f"(expected {meta['tensors_bytes']:,} bytes beside it)"
                                  ) from None
        except OSError as error:
            raise CheckpointError(f"{weights} cannot be read: {error}") from None
        break
    if len(data) != meta["tensors_bytes"]:
        raise CheckpointError(f"{weights} has {len(data):,} bytes but its checkpoint {index.name} "
                              f"recorded {meta['tensors_bytes']:,}: it is incomplete or was "
                              "replaced")
    expected = meta.get("tensors_sha256")
    if expected is not None:
        found = hashlib.sha256(data).hexdigest()
        if found != expected:
            raise CheckpointError(f"{weights} does not match the sha256 that its checkpoint "
                                  f"{index.name} recorded ({expected[:16]}..., found "
                                  f"{found[:16]}...): the file is corrupt")
    try:
        tensors = load_safetensors(data)
    except Exception as error:  # any parse failure of the bytes means the same to the caller
        raise CheckpointError(f"{weights} cannot be read as safetensors ({error})") from None
    return tensors, meta


def checkpoint_files(path: str | Path) -> list[Path]:
    """The files of a checkpoint (its JSON and the weights it names), e.g. to copy it."""
    index, meta = read_meta(path)
    return [index, index.parent / meta["tensors"]]


__all__ = ["FORMAT", "VERSION", "CheckpointError", "atomic_write", "atomic_write_bytes",
           "atomic_write_text", "checkpoint_files", "read_checkpoint", "read_meta", "resolve",
           "write_checkpoint"]
