"""Reading labelled data files: plain or gzip-compressed UTF-8, with errors that name the file
and the line.

    >>> lines = read_lines("en_ewt-ud-train.conllu.gz", "train")   # gzip found by its magic bytes
    >>> raise DataError(at(path, 12, "a label without text"))
    ValueError: train.txt, line 12: a label without text

Every reader of ``lstmlab.tasks`` (sentiment, tagging, music) reports bad input as a
``DataError`` (a ValueError, which ``lstmlab``'s command line prints in one line).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

PathLike = str | os.PathLike[str]
GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """A data file that cannot be read as the format it should be in."""


def at(path: PathLike, line: int | None, message: str) -> str:
    """"FILE, line N: message" (or "FILE: message" without a line)."""
    return f"{path}, line {line}: {message}" if line is not None else f"{path}: {message}"


def read_bytes(path: PathLike, what: str = "data") -> bytes:
    """The bytes of a file, decompressed when it is gzip (by its first two bytes, whatever its
    name). ``what`` names the file's role in the messages ("train", "valid", ...)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} file {path} is a directory")
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{what} file {path} is a broken gzip file ({error})") from None
    return data


def read_lines(path: PathLike, what: str = "data") -> list[str]:
    """The lines of a UTF-8 text file (gzip or plain), without their line breaks; a leading
    byte-order mark is dropped and "\\r\\n" ends a line like "\\n".

    Raises DataError for a missing, empty or non-UTF-8 file (naming the line of the bad byte).
    """
    data = read_bytes(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(at(path, line, f"not UTF-8 text: invalid byte 0x{data[err.start]:02x} "
                                       f"at byte offset {err.start}")) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise DataError(f"{what} file {path} is empty" + " (only whitespace)" * bool(text))
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
