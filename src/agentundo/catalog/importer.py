"""`catalog import` without the terminal: read tools, guess contracts, merge, write."""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentundo.catalog.mcp_tools import Tool, guess_all, not_utf8, parse_tools, read_tools_file
from agentundo.catalog.skeleton import ImportReport, merge
from agentundo.errors import InputError, Position, UsageError
from agentundo.evidence.redact import redact

MAX_PREFIX = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportRequest:
    from_json: str | None = None
    url: str | None = None
    command: str | None = None  # a stdio server's command line
    output: str | None = None
    headers: tuple[str, ...] = ()  # NAME=VALUE
    env: tuple[str, ...] = ()  # NAME=VALUE, for --command
    cwd: str | None = None  # for --command
    prefix: str = ""
    timeout_s: float = 15.0


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    text: str
    report: ImportReport
    written: bool = False  # whether the output file was written (it changed)


def run_import(request: ImportRequest) -> ImportOutcome:
    """Read the tools, add their guessed contracts to the output catalog, write it."""
    sources = [request.from_json, request.url, request.command]
    if sum(source is not None for source in sources) != 1:
        raise UsageError('give exactly one of --from-json FILE, --url URL or --command "CMD ARGS"')
    if request.headers and request.url is None:
        raise UsageError("--header only applies to --url")
    if (request.env or request.cwd is not None) and request.command is None:
        raise UsageError("--env and --cwd only apply to --command")
    if request.output is not None and not request.output.strip():
        raise UsageError("--output needs a file name, not an empty string")
    if len(request.prefix) > MAX_PREFIX:
        raise UsageError(
            f"--prefix is {len(request.prefix)} characters long; at most {MAX_PREFIX}, "
            "it starts every topic name"
        )
    existing = _read_existing(request.output)
    tools, source = _tools(request)
    guesses = guess_all(tools, request.prefix)
    text, report = merge(existing, guesses, source=source, path=request.output or "<stdout>")
    written = request.output is not None and text != existing
    if written:
        assert request.output is not None
        crlf = existing is not None and _uses_crlf(Path(request.output))
        _write(Path(request.output), text, newline="\r\n" if crlf else "\n")
    return ImportOutcome(text, report, written)


def _tools(request: ImportRequest) -> tuple[list[Tool], str]:
    if request.from_json is not None:
        try:
            return read_tools_file(request.from_json), request.from_json
        except RecursionError:  # json.loads (or json.dumps of an error) on absurd nesting
            raise InputError(
                Position(request.from_json),
                "not usable JSON: arrays or objects nested too deeply to read",
            ) from None
    if request.command is not None:
        source = _shown_command(command_words(request.command), _secrets(request))
    else:
        assert request.url is not None
        source = str(redact(request.url))
    try:
        if request.command is not None:
            return _run_command(request)
        return _fetch_url(request)
    except RecursionError:  # an answer nested deeper than Python recurses
        raise InputError(
            Position(source),
            "the server's answer nests arrays or objects too deeply to read",
        ) from None


def _fetch_url(request: ImportRequest) -> tuple[list[Tool], str]:
    from agentundo.catalog.mcp_client import fetch_tools

    assert request.url is not None
    headers = dict(_pair("--header", h) for h in request.headers)
    data = fetch_tools(request.url, headers=headers, timeout_s=request.timeout_s)
    return parse_tools(data, request.url), str(redact(request.url))


def _run_command(request: ImportRequest) -> tuple[list[Tool], str]:
    """Start the stdio server, list its tools; name it by its command line (redacted)."""
    from agentundo.catalog.mcp_client import run_tools

    assert request.command is not None
    argv = command_words(request.command)
    env = dict(_pair("--env", e) for e in request.env)
    secrets = _secrets(request)
    shown = _shown_command(argv, secrets)
    data = run_tools(argv, shown=shown, env=env, cwd=request.cwd, timeout_s=request.timeout_s)
    return parse_tools(_masked_json(data, secrets), shown), shown


def _secrets(request: ImportRequest) -> list[str]:
    """The ``--env`` values to mask wherever they would be shown or written."""
    from agentundo.catalog.mcp_client import MIN_MASKED

    values = (_pair("--env", e)[1] for e in request.env)
    return [value for value in values if len(value) >= MIN_MASKED]


def _shown_command(argv: list[str], secrets: list[str]) -> str:
    """The command line as messages and the catalog's header name it (secrets masked)."""
    return _masked(str(redact(" ".join(shlex.quote(word) for word in argv))), secrets)


def _masked(text: str, secrets: list[str]) -> str:
    from agentundo.catalog.mcp_client import MASK

    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _masked_json(data: Any, secrets: list[str]) -> Any:
    """``data`` with every ``--env`` value masked in its strings: a server that echoes its
    token in a tool description does not get it written to the catalog."""
    if not secrets:
        return data
    if isinstance(data, str):
        return _masked(data, secrets)
    if isinstance(data, list):
        return [_masked_json(item, secrets) for item in data]
    if isinstance(data, dict):
        return {_masked(str(k), secrets): _masked_json(v, secrets) for k, v in data.items()}
    return data


def command_words(command: str) -> list[str]:
    """``--command`` split as a POSIX shell would (quotes, backslashes), without a shell."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--command cannot be split into words: {exc}") from None
    if not words:
        raise UsageError("--command is empty: give the command that starts the MCP server")
    return words


def _pair(option: str, raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"{option} {raw.split('=')[0]!r}...: expected NAME=VALUE")
    return name.strip(), value


def _read_existing(output: str | None) -> str | None:
    if output is None:
        return None
    path = Path(output)
    if not path.exists():
        return None
    if not path.is_file():
        raise InputError(Position(output), "not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(output, exc) from None
    except OSError as exc:
        raise InputError(Position(output), f"cannot read file: {exc.strerror or exc}") from None


def _uses_crlf(path: Path) -> bool:
    """Whether the catalog's first line ends in CR LF: the new topics are written so too."""
    with path.open("rb") as handle:
        return handle.readline().endswith(b"\r\n")


def _write(path: Path, text: str, *, newline: str = "\n") -> None:
    """Replace ``path`` atomically: a crash leaves the old catalog or the new one.

    A symbolic link is followed: the file it names is replaced and the link kept.
    """
    path = Path(os.path.realpath(path))
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
                out.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise InputError(Position(str(path)), f"cannot write file: {exc.strerror or exc}") from None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
