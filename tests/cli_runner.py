"""Run the agentundo CLI in this process, as ``python -m agentundo`` runs it in a subprocess.

``invoke(*args, cwd=..., env=..., stdin=...)`` (or the ``cli`` fixture of tests/conftest.py)
calls :func:`agentundo.cli.main.main` with

* stdout and stderr captured as a pipe would: bytes (UTF-8, strict on stdout, backslashes on
  stderr) decoded afterwards with universal newlines, like ``subprocess.run(text=True)``;
* stdin from ``stdin`` (empty when None), with a ``.buffer`` like the real one;
* the working directory and environment set for the call only (``pytest.MonkeyPatch``);
  ``clean_env=True`` starts from an empty environment, as ``subprocess.run(env={...})`` did;
  ``GITHUB_ACTIONS``, ``FORCE_COLOR`` and ``TTY_*`` never leak in from the outer process;
* the SIGINT/SIGTERM handlers put back afterwards, whatever the command installed;
* ``SystemExit`` turned into the return code.

The result has ``returncode``, ``stdout`` and ``stderr`` like ``subprocess.CompletedProcess``.
Keep real subprocesses for what needs a process: signals, ``--jobs`` workers, start-up
imports, the entry point itself.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

CLEAN_ENV = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"}
"""The environment most subprocess tests gave the command."""

LEAKY = ("GITHUB_ACTIONS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE")
"""Variables of the outer process that would change what the command prints."""

KEPT = ("AGENTUNDO_CACHE_DIR",)
"""Variables a clean environment keeps: the test's own lint cache (tests/conftest.py)."""


@dataclass(frozen=True)
class Result:
    """What ``subprocess.run(..., capture_output=True, text=True)`` returns, in short."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def _text(raw: bytes) -> str:
    """Bytes decoded the way ``subprocess.run(text=True)`` decodes them (universal newlines)."""
    return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def invoke(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str | None] | None = None,
    clean_env: bool = False,
    stdin: str | bytes | None = None,
    timeout: float | None = None,  # accepted for drop-in use; an in-process call cannot hang
) -> Result:
    """Run ``agentundo ARGS`` in this process and return its exit code and output."""
    del timeout
    from agentundo.cli.main import main

    argv = [os.fspath(a) for a in args]
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
    fake_stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        if clean_env:
            for name in list(os.environ):
                if name not in KEPT:
                    patch.delenv(name)
        for name in LEAKY:
            patch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(Path(cwd))
        patch.setattr(sys, "stdin", fake_stdin)
        patch.setattr(sys, "stdout", stdout)
        patch.setattr(sys, "stderr", stderr)
        try:
            code: object = main(argv)
        except SystemExit as done:  # main() returns its code; this is a safety net
            code = done.code
        finally:
            stdout.flush()
            stderr.flush()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        stderr_text = _text(err.getvalue()) + f"{code}\n"
        return Result(tuple(argv), 1, _text(out.getvalue()), stderr_text)
    return Result(tuple(argv), code, _text(out.getvalue()), _text(err.getvalue()))
