"""Project configuration: ``agentundo.toml`` or ``[tool.agentundo]`` in ``pyproject.toml``.

Found by walking up from the working directory; the first ``agentundo.toml``, or
``pyproject.toml`` with a ``[tool.agentundo]`` table, wins. Keys (``-`` and ``_`` are
the same)::

    paths = ["policies/"]          # what `agentundo lint` checks without arguments
    envs = ["production", "staging"]
    select = ["AU1", "AU3"]        # codes or prefixes
    ignore = ["AU406"]
    fail-on = "warning"            # error (default), warning or info
    [per-file-ignores]             # in pyproject.toml: [tool.agentundo.per-file-ignores]
    "legacy/*.yaml" = ["AU2"]

Paths and per-file globs are relative to the file's directory. Problems raise
:class:`~agentundo.errors.ConfigError` naming the file (exit 2).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentundo.errors import ConfigError
from agentundo.lint.finding import Severity

CONFIG_FILE = "agentundo.toml"
PYPROJECT = "pyproject.toml"
KEYS = ("paths", "envs", "select", "ignore", "fail-on", "per-file-ignores")


@dataclass(frozen=True, slots=True)
class Config:
    """Settings from one configuration file (or none: every field empty)."""

    source: Path | None = None
    paths: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Severity | None = None
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @property
    def root(self) -> Path:
        """The directory relative paths and globs are taken from."""
        return Path.cwd() if self.source is None else self.source.parent


def find(start: Path | None = None) -> Path | None:
    """The configuration file that applies in ``start`` (default: the working directory)."""
    directory = (start or Path.cwd()).resolve()
    for candidate in (directory, *directory.parents):
        own = candidate / CONFIG_FILE
        if own.is_file():
            return own
        pyproject = candidate / PYPROJECT
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False
    if "agentundo" not in text:
        return False
    return "agentundo" in _read(path).get("tool", {})


def _read(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load(path: Path) -> Config:
    """Read and validate one configuration file."""
    data = _read(path)
    if path.name == PYPROJECT:
        table = data.get("tool", {}).get("agentundo")
        where = "[tool.agentundo]"
        if table is None:
            raise ConfigError(f"{path}: has no [tool.agentundo] table")
    else:
        table, where = data, "the file"
    return parse(table, path, where)


def discover(explicit: str | os.PathLike[str] | None = None) -> Config:
    """The configuration given by ``--config``, else the one found, else an empty one."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
        return load(path)
    found = find()
    return Config() if found is None else load(found)


def _key(raw: str) -> str:
    return raw.replace("_", "-")


def _fail(path: Path, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{path}: {message}" + (f" ({hint})" if hint else ""))


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, f"'{key}' must be a list of strings")
    return tuple(value)


def _codes(path: Path, key: str, value: Any) -> tuple[str, ...]:
    codes = _strings(path, key, value)
    for code in codes:
        if not code.upper().startswith("AU"):
            raise _fail(
                path,
                f"'{key}' has {code!r}, which is not a code or code prefix",
                "codes look like AU101 or AU3",
            )
    return tuple(c.upper() for c in codes)


def parse(table: Any, path: Path, where: str = "the file") -> Config:
    """Validate the settings ``table`` read from ``path``."""
    if not isinstance(table, dict):
        raise _fail(path, f"{where} must be a table")
    values: dict[str, Any] = {}
    for raw, value in table.items():
        key = _key(raw)
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(KEYS)}"
            raise _fail(path, f"unknown key '{raw}' in {where}", hint)
        values[key] = value
    fail_on = None
    if "fail-on" in values:
        raw_level = values["fail-on"]
        try:
            fail_on = Severity(raw_level)
        except ValueError:
            raise _fail(
                path, f"'fail-on' is {raw_level!r}", "expected one of: error, warning, info"
            ) from None
    per_file: list[tuple[str, tuple[str, ...]]] = []
    table_pfi = values.get("per-file-ignores", {})
    if not isinstance(table_pfi, dict):
        raise _fail(path, "'per-file-ignores' must be a table of glob = [codes]")
    for pattern, codes in table_pfi.items():
        per_file.append((pattern, _codes(path, f"per-file-ignores.{pattern}", codes)))
    return Config(
        source=path,
        paths=_strings(path, "paths", values.get("paths", [])),
        envs=_strings(path, "envs", values.get("envs", [])),
        select=_codes(path, "select", values.get("select", [])),
        ignore=_codes(path, "ignore", values.get("ignore", [])),
        fail_on=fail_on,
        per_file_ignores=tuple(per_file),
    )
