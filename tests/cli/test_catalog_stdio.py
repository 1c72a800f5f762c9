"""`agentundo catalog import --command`: a stdio MCP server started, listed and stopped.

The server is tests/fixtures/mcp/servers/stdio_server.py, run by this Python: it speaks
just enough MCP (without the SDK) to answer, page, ping, misbehave or hang on purpose.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from agentundo.load.files import load_file
from tests.cli_runner import invoke

SERVER = Path(__file__).parents[1] / "fixtures" / "mcp" / "servers" / "stdio_server.py"


def _command(mode: str) -> str:
    return shlex.join([sys.executable, str(SERVER), mode])


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer exists (a zombie still does: it was not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def test_lists_every_page_and_writes_a_catalog_lint_rejects(tmp_path: Path) -> None:
    done = invoke(
        "catalog", "import", "--command", _command("ok"), "-o", "c.yaml", "--prefix", "t.",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "added 5 topic(s), kept 0 existing" in done.stderr
    assert (
        "agentundo: guessed from names and descriptions: 1 read-only, 1 compensation(s) from "
        "inverse pairs (the comments above each topic say why)\n" in done.stderr
    )
    topics = load_file(tmp_path / "c.yaml").model.topics
    assert list(topics) == [
        "t.list_things",
        "t.create_thing",
        "t.delete_thing",
        "t.where",
        "t.launch",
    ]
    create = topics["t.create_thing"]
    assert (create.rollback, create.risk, create.needs_review) == ("compensatable", "high", True)
    assert create.compensation is not None
    assert create.compensation.topic == "t.delete_thing"
    assert create.compensation.params == {
        "thing_id": "{response.thing_id}",
        "space": "{params.space}",
    }
    assert topics["t.list_things"].side_effect is False
    assert topics["t.list_things"].needs_review is True  # guessed from the name: review it
    assert topics["t.where"].needs_review is False  # the server said readOnlyHint
    lint = invoke("lint", "c.yaml", "--format", "json", cwd=tmp_path)
    assert lint.returncode == 1
    assert lint.stdout.count('"AU109"') == 4


def test_cwd_sets_the_servers_working_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "the-workdir"
    workdir.mkdir()
    done = invoke("catalog", "import", "--command", _command("ok"), "--cwd", str(workdir))
    assert done.returncode == 0, done.stderr
    assert 'description: "Runs in the-workdir."' in done.stdout


def test_a_missing_cwd_is_an_input_error() -> None:
    done = invoke("catalog", "import", "--command", _command("ok"), "--cwd", "/nonexistent/dir")
    assert done.returncode == 2
    assert done.stderr.strip().endswith("error: --cwd '/nonexistent/dir' is not a directory")


def test_env_values_reach_the_server_and_never_the_catalog_or_stderr(tmp_path: Path) -> None:
    secret = "tok-0123456789"
    done = invoke(
        "catalog", "import", "--command", _command("secret"), "--env", f"TOKEN={secret}",
        "-o", "c.yaml", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "c.yaml").read_text()
    assert 'description: "Logs in as ***."' in text  # the server echoed it: masked
    assert secret not in text + done.stderr + done.stdout
    failed = invoke("catalog", "import", "--command", _command("crash"), "-e", f"TOKEN={secret}")
    assert failed.returncode == 2
    assert secret not in failed.stderr
    assert "(and token *** was refused)" in failed.stderr


def test_a_server_that_exits_shows_its_status_and_stderr() -> None:
    done = invoke("catalog", "import", "--command", _command("crash"))
    assert done.returncode == 2
    assert done.stderr == (
        f"{_command('crash')}: error: the server exited with status 3 before answering; "
        "its stderr: boom: cannot find my configuration\n"
    )


def test_junk_on_stdout_exits_2_at_once() -> None:
    started = time.monotonic()
    done = invoke("catalog", "import", "--command", _command("junk"), "--timeout", "20")
    assert done.returncode == 2
    assert "not an MCP server: it wrote 'Server started on stdio!' on stdout" in done.stderr
    assert time.monotonic() - started < 10
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", ["hang", "grandchild"])
def test_a_silent_server_times_out_and_is_stopped_with_its_children(
    tmp_path: Path, mode: str
) -> None:
    pids = tmp_path / "pids"
    done = invoke(
        "catalog", "import", "--command", _command(mode), "--timeout", "1",
        env={"PID_FILE": str(pids)},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("error: no answer within 1s")
    for pid in (int(line) for line in pids.read_text().split()):
        assert _wait_gone(pid), f"process {pid} was left running (or unreaped)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--command", ""], "--command is empty"),
        (["--command", "'unterminated"], "--command cannot be split into words"),
        (["--command", "/nonexistent/mcp-server"], "cannot start '/nonexistent/mcp-server'"),
        (["--command", "x", "--url", "http://127.0.0.1:1/mcp"], "give exactly one of"),
        (["--url", "http://127.0.0.1:1/mcp", "--env", "A=1"], "--env and --cwd only apply"),
        (["--command", "x", "--env", "novalue"], "--env 'novalue'...: expected NAME=VALUE"),
        (["--command", "x", "-H", "A=1"], "--header only applies to --url"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(args: list[str], message: str) -> None:
    done = invoke("catalog", "import", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_not_an_executable_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\n")
    done = invoke("catalog", "import", "--command", str(script))
    assert done.returncode == 2
    assert done.stderr.strip().endswith(f"cannot start '{script}': permission denied")


def test_an_answer_nested_too_deeply_exits_2() -> None:
    done = invoke("catalog", "import", "--command", _command("deep"), "-e", "TOKEN=abcdefgh")
    assert done.returncode == 2
    assert done.stderr == (
        f"{_command('deep')}: error: the server's answer nests arrays or objects too deeply "
        "to read\n"
    )
