"""Finding the files to read and reading their bytes safely: no YAML, no models.

What the lint cache needs to tell whether anything changed (:mod:`agentundo.lint.cache`)
without importing the parser; :mod:`agentundo.load.files` builds on it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentundo.errors import InputError, Position

YAML_SUFFIXES = (".yaml", ".yml")
MAX_BYTES = 64 * 1024 * 1024
"""The largest input file read."""


@dataclass(frozen=True, slots=True)
class PassedOver:
    """A YAML file found inside a directory that is not agentundo's, and why it is not."""

    path: str
    reason: str


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[InputError]]:
    """Expand directories into their YAML files (sorted); report paths that cannot be read.

    A file reached twice (named twice, by two spellings, or through a symbolic link) is
    read once, under the first name it was reached by. A name that is not valid UTF-8 and
    anything that is not a regular file (a FIFO would block the read for ever) is an error.
    """
    candidates: list[Path] = []
    errors: list[InputError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                candidates.extend(
                    Path(root) / name for name in sorted(files) if name.endswith(YAML_SUFFIXES)
                )
        elif path.exists():
            candidates.append(path)
        else:
            errors.append(InputError(Position(shown_path(path)), "no such file or directory"))
    found: list[Path] = []
    seen: set[object] = set()
    for path in candidates:
        shown = shown_path(path)
        if shown != str(path):
            errors.append(InputError(Position(shown), "the file name is not valid UTF-8"))
            continue
        try:
            info: os.stat_result | None = os.stat(path)
        except OSError:
            info = None  # a dangling link: reading it reports it
        if info is not None and not stat.S_ISREG(info.st_mode):
            errors.append(InputError(Position(shown), "not a regular file or directory"))
            continue
        # the same file by any name: one stat, not a realpath's lstat per component
        same: object = (info.st_dev, info.st_ino) if info else os.path.realpath(path)
        if same not in seen:
            seen.add(same)
            found.append(path)
    return found, errors


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text that can always be printed: bytes that are not UTF-8 as ``\\xff``."""
    text = os.fspath(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_bytes(path: str | os.PathLike[str], *, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; InputError otherwise.

    A FIFO, a device (``/dev/zero``) or a file that grows while it is read would block the
    read or fill memory, so only regular files are read, and never more than ``limit``.
    """
    name = shown_path(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(Position(name), "is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise InputError(Position(name), "not a regular file")  # opening a FIFO blocks
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(Position(name), "no such file or directory") from None
    except OSError as exc:
        raise InputError(Position(name), f"cannot read file: {exc.strerror}") from None
    if len(raw) > limit:
        raise InputError(Position(name), f"file is larger than {limit // (1024 * 1024)} MiB")
    return raw
