"""Project configuration: ``agentundo.toml`` or ``[tool.agentundo]`` in ``pyproject.toml``.

Found by walking up from the working directory; the first ``agentundo.toml``, or
``pyproject.toml`` with a ``[tool.agentundo]`` table, wins. A ``pyproject.toml`` on the
way that cannot be read, is not UTF-8 or is not valid TOML is an error, not skipped. Keys (``-`` and ``_`` are
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

``agentundo drill`` reads its own table, ``[drill]`` (``[tool.agentundo.drill]`` in
pyproject.toml), which lint passes over (:func:`discover_drill`)::

    [drill]
    catalog = "policies/catalog.yaml"
    policy = "policies/policy.yaml"
    scenarios = ["drills/"]        # scenario files or directories
    workflows = ["workflows/"]     # where the scenarios' workflows are found by id
    executor = "simulated"         # or http
    evidence = "agentundo-evidence"
    lock = "file"                  # file, memory or redis://HOST:PORT/DB
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
DRILL = "drill"
"""The table of ``agentundo drill``'s settings (lint passes over it)."""
DRILL_KEYS = ("catalog", "policy", "scenarios", "workflows", "executor", "evidence", "lock")
EXECUTORS = ("simulated", "http")


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
    """The configuration file that applies in ``start`` (default: the working directory).

    Every ``pyproject.toml`` passed on the way is read: one that cannot be read or is not
    valid TOML raises :class:`ConfigError` rather than being skipped, since it may be the
    one that holds the settings.
    """
    directory = (start or Path.cwd()).resolve()
    for candidate in (directory, *directory.parents):
        own = candidate / CONFIG_FILE
        if own.is_file():
            return own
        pyproject = candidate / PYPROJECT
        if pyproject.is_file() and _tool_table(_read(pyproject)) is not None:
            return pyproject
    return None


def _tool_table(data: dict[str, Any]) -> Any:
    """``[tool.agentundo]`` of a pyproject.toml, or None."""
    tool = data.get("tool")
    return tool.get("agentundo") if isinstance(tool, dict) else None


def _read(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); TOML must be UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def load(path: Path) -> Config:
    """Read and validate one configuration file."""
    data = _read(path)
    if path.name == PYPROJECT:
        table = _tool_table(data)
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
        if path.is_dir():
            raise ConfigError(
                f"{path}: is a directory; --config takes a pyproject.toml or agentundo.toml file"
            )
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
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"'{key}' must be a list of strings")
    if not all(v.strip() for v in value):
        raise _fail(path, f"'{key}' has an empty string")
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
    spelled: dict[str, str] = {}
    for raw, value in table.items():
        key = _key(raw)
        if key == DRILL:
            continue  # agentundo drill's settings (discover_drill)
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(KEYS)}"
            raise _fail(path, f"unknown key '{raw}' in {where}", hint)
        if key in values:
            raise _fail(
                path,
                f"'{spelled[key]}' and '{raw}' in {where} are the same setting",
                "keep one of them",
            )
        spelled[key] = raw
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


@dataclass(frozen=True, slots=True)
class DrillConfig:
    """``agentundo drill``'s settings from one configuration file (or none: all unset).

    Paths (catalog, policy, scenarios, workflows, evidence) are made relative to the
    file's directory; ``lock`` is not a path and is kept as written.
    """

    source: Path | None = None
    catalog: str | None = None
    policy: str | None = None
    scenarios: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    executor: str | None = None
    evidence: str | None = None
    lock: str | None = None


def discover_drill(explicit: str | os.PathLike[str] | None = None) -> DrillConfig:
    """The drill settings of ``--config``, else of the file found, else empty ones."""
    if explicit is not None:
        path = Path(explicit)
        if path.is_dir():
            raise ConfigError(
                f"{path}: is a directory; --config takes a pyproject.toml or agentundo.toml file"
            )
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
    else:
        found = find()
        if found is None:
            return DrillConfig()
        path = found
    data = _read(path)
    if path.name == PYPROJECT:
        outer = _tool_table(data)
        if outer is None:
            raise ConfigError(f"{path}: has no [tool.agentundo] table")
        where = "[tool.agentundo.drill]"
    else:
        outer, where = data, "[drill]"
    if not isinstance(outer, dict):
        return DrillConfig(source=path)
    tables = [v for k, v in outer.items() if _key(k) == DRILL]
    if not tables:
        return DrillConfig(source=path)
    return parse_drill(tables[0], path, where)


def _drill_string(path: Path, where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"'{key}' in {where} must be a non-empty string")
    return value


def _drill_strings(path: Path, where: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, f"'{key}' in {where} must be a list of non-empty strings")
    return value


def parse_drill(table: Any, path: Path, where: str = "[drill]") -> DrillConfig:
    """Validate the drill settings ``table`` read from ``path``."""
    if not isinstance(table, dict):
        raise _fail(path, f"{where} must be a table")
    values: dict[str, Any] = {}
    for raw, value in table.items():
        key = _key(raw)
        if key not in DRILL_KEYS:
            close = difflib.get_close_matches(key, DRILL_KEYS, n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(DRILL_KEYS)}"
            )
            raise _fail(path, f"unknown key '{raw}' in {where}", hint)
        if key in values:
            raise _fail(path, f"'{raw}' in {where} is given twice", "keep one of them")
        values[key] = value
    root = path.parent

    def at(value: str) -> str:
        return str(root / value)

    strings = {
        k: _drill_string(path, where, k, values[k])
        for k in ("catalog", "policy", "executor", "evidence", "lock")
        if k in values
    }
    lists = {
        k: tuple(at(v) for v in _drill_strings(path, where, k, values[k]))
        for k in ("scenarios", "workflows")
        if k in values
    }
    executor = strings.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise _fail(
            path, f"'executor' in {where} is {executor!r}", "expected one of: simulated, http"
        )
    return DrillConfig(
        source=path,
        catalog=at(strings["catalog"]) if "catalog" in strings else None,
        policy=at(strings["policy"]) if "policy" in strings else None,
        scenarios=lists.get("scenarios", ()),
        workflows=lists.get("workflows", ()),
        executor=executor,
        evidence=at(strings["evidence"]) if "evidence" in strings else None,
        lock=strings.get("lock"),
    )
