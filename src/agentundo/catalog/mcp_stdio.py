"""MCP over stdio: the server is our child; messages are JSON lines on its stdin and stdout.

The child gets our environment plus ``--env`` and runs in its own process group, so that
stopping it also stops what it started (``npx`` runs ``node``, ``uvx`` runs ``python``).
Its stdout is read by a thread into a queue, so every read waits at most until the
deadline; its stderr is kept (the last few kilobytes) to be shown when something fails.
Whatever happens, the child is stopped and reaped before we return: no zombie.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from agentundo.catalog.mcp_client import (
    MASK,
    MAX_MESSAGE_BYTES,
    MIN_MASKED,
    Deadline,
    McpFailure,
    check_message,
    list_tools,
)

STDERR_KEPT = 4096
"""Bytes of the child's stderr kept for error messages (the last ones)."""
STDERR_SHOWN_LINES = 5
GRACE_S = 2.0
"""How long a child may take to exit once its stdin is closed, then once terminated."""
_EOF = object()
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Characters of the child's stderr not shown as they are (terminal escapes, say)."""


class _Stderr:
    """The tail of the child's stderr, read by a thread so the child never blocks on it."""

    def __init__(self, stream: IO[bytes], secrets: Sequence[str]) -> None:
        self.data = bytearray()
        self.cut = False  # whether the start was dropped (the first line kept is partial)
        self.secrets = [s for s in secrets if len(s) >= MIN_MASKED]
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
                self.data.extend(chunk)
                if len(self.data) > STDERR_KEPT:
                    del self.data[: len(self.data) - STDERR_KEPT]
                    self.cut = True

    def text(self) -> str:
        """The last lines of stderr, with the values given by ``--env`` masked."""
        self.thread.join(timeout=0.5)
        text = self.data.decode("utf-8", "replace")
        if self.cut:  # a partial first line could hold the end of a secret: not shown
            text = text.partition("\n")[2]
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _CONTROL.sub("?", text.replace("\r\n", "\n"))
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-STDERR_SHOWN_LINES:])


class StdioTransport:
    """One child process speaking MCP on its stdin and stdout."""

    def __init__(self, process: subprocess.Popen[bytes], stderr: _Stderr) -> None:
        self.process = process
        self.stderr = stderr
        self.lines: queue.Queue[object] = queue.Queue()
        assert process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            while True:
                line = stream.readline(MAX_MESSAGE_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_MESSAGE_BYTES:
                    self.lines.put(McpFailure("the server wrote a line longer than 16 MiB"))
                    break
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        self.lines.put(_EOF)

    def set_protocol_version(self, version: str) -> None:
        pass  # stdio has no headers

    def notify(self, message: dict[str, Any], deadline: Deadline) -> None:
        self._send(message)

    def request(self, message: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self._send(message)
        while True:
            answer = self._next(deadline)
            if "method" in answer:  # the server's own request or notification
                self._answer(answer)
                continue
            if answer.get("id") == message["id"]:
                return answer

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise McpFailure(self._ended("before reading our request")) from None

    def _answer(self, message: dict[str, Any]) -> None:
        """Answer the server's requests: ``ping`` with an empty result, others with an error."""
        if "id" not in message:
            return  # a notification (a log message, a list change): nothing to say
        if message["method"] == "ping":
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        else:
            self._send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": -32601, "message": "method not found"},
                }
            )

    def _next(self, deadline: Deadline) -> dict[str, Any]:
        """The next message on stdout (blank lines are skipped)."""
        item: object = b""
        while isinstance(item, bytes) and not item.strip():
            try:
                item = self.lines.get(timeout=deadline.left())
            except queue.Empty:
                raise McpFailure(
                    self._with_stderr(f"no answer within {deadline.seconds:g}s")
                ) from None
        if item is _EOF:
            raise McpFailure(self._ended("before answering"))
        if isinstance(item, McpFailure):
            raise item
        assert isinstance(item, bytes)
        try:
            data = json.loads(item)
        except (ValueError, RecursionError):
            shown = item[:60].decode("utf-8", "replace").strip()
            raise McpFailure(
                self._with_stderr(
                    f"not an MCP server: it wrote {shown!r} on stdout, which is not JSON-RPC "
                    "(a stdio server must write only MCP messages there)"
                )
            ) from None
        return check_message(data)

    def _ended(self, when: str) -> str:
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.process.wait(timeout=GRACE_S)
        how = "closed its stdout" if code is None else _exit_text(code)
        return self._with_stderr(f"the server {how} {when}")

    def _with_stderr(self, message: str) -> str:
        tail = self.stderr.text()
        return f"{message}; its stderr: {tail}" if tail else message


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@contextlib.contextmanager
def _started(
    command: Sequence[str], env: Mapping[str, str], cwd: str | None
) -> Iterator[StdioTransport]:
    if cwd is not None and not os.path.isdir(cwd):
        raise McpFailure(f"--cwd {cwd!r} is not a directory")
    try:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            cwd=cwd,
            start_new_session=True,  # its own process group: stopped with everything it starts
        )
    except FileNotFoundError:
        raise McpFailure(f"cannot start {command[0]!r}: no such command") from None
    except PermissionError:
        raise McpFailure(f"cannot start {command[0]!r}: permission denied") from None
    except OSError as exc:
        raise McpFailure(f"cannot start {command[0]!r}: {exc.strerror or exc}") from None
    assert process.stderr is not None
    stderr = _Stderr(process.stderr, list(env.values()))
    transport = StdioTransport(process, stderr)
    try:
        yield transport
    finally:
        _stop(process)
        _close(process.stdout, transport.reader)
        _close(process.stderr, stderr.thread)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Close stdin (the polite MCP shutdown), then SIGTERM, then SIGKILL; always reap."""
    if process.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            process.stdin.close()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        try:
            process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            continue
        break
    # the group may outlive its leader (npx's node): make sure nothing of it is left
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _close(stream: IO[bytes] | None, reader: threading.Thread) -> None:
    """Close a pipe once its reader has seen the end (a grandchild holding it open keeps
    it; closing a stream another thread is blocked reading could hang)."""
    reader.join(timeout=GRACE_S)
    if stream is not None and not reader.is_alive():
        with contextlib.suppress(OSError, ValueError):
            stream.close()


def stdio_tools(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    deadline: Deadline,
    max_pages: int,
) -> list[dict[str, Any]]:
    """Start ``command``, list its tools, stop it."""
    if not command:
        raise McpFailure("--command is empty")
    with _started(command, env, cwd) as transport:
        return list_tools(transport, deadline, max_pages=max_pages)
