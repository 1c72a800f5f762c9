"""`agentundo catalog import` against real MCP servers, as their users install them.

The reference servers mcp-server-time and mcp-server-git from PyPI are installed into a
throwaway virtual environment of their own, kept under ``~/.cache/agentundo-tests/``
keyed by the requirements, so a warm run only starts them. They run on the ``mcp``
SDK's 2.x line (mcp-server-git needs ``mcp>=2.3``), which agentundo does not install:
it speaks the protocol itself. The same environment runs a small 2.x SDK server over
streamable HTTP and legacy SSE (test_catalog_live.py runs it on 1.x over stdio). The
memory server from npm runs when ``npx`` is present. Each test is skipped, with the
reason, only when the servers cannot be installed (no network to the registry).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentundo.load.files import load_file
from tests.cli_runner import invoke

REQUIREMENTS = ("mcp-server-time", "mcp-server-git", "mcp>=2.3,<3")
"""mcp-server-fetch is left out: its dependencies (readabilipy, markdownify, protego...)
take longer to install than the rest together, for one tool whose list is in
tests/fixtures/mcp/real/fetch.json, captured from it the same way."""
SDK_SERVER = Path(__file__).parents[1] / "fixtures" / "mcp" / "servers" / "sdk_server.py"
REAL = Path(__file__).parents[1] / "fixtures" / "mcp" / "real"
NPM_TROUBLE = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "E404",
    "npm ERR",
    "npm error",
)


def _cache() -> Path:
    root = os.environ.get("AGENTUNDO_TEST_CACHE") or Path.home() / ".cache" / "agentundo-tests"
    key = hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:12]
    return Path(root) / f"mcp-servers-{key}"


@pytest.fixture(scope="session")
def servers() -> Path:
    """The bin directory of a virtual environment holding the PyPI servers."""
    venv = _cache()
    done = venv / ".installed"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers install it once
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            # no pip of its own (seconds saved): this interpreter's pip installs into it
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            target = str(venv / "bin" / "python")
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "--python", target, "install", "-q", *REQUIREMENTS],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if pip.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                tail = " ".join(pip.stderr.strip().splitlines()[-2:])
                pytest.skip(f"cannot install {', '.join(REQUIREMENTS)} from PyPI: {tail}")
            done.write_text("\n".join(REQUIREMENTS) + "\n")
    return venv / "bin"


def _import(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    done = invoke("catalog", "import", *args, "--timeout", "60", cwd=cwd)
    return done.returncode, done.stderr


def test_the_servers_run_on_the_2x_sdk(servers: Path) -> None:
    version = subprocess.run(
        [str(servers / "python"), "-c", "import importlib.metadata as m; print(m.version('mcp'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert int(version.split(".")[0]) >= 2, version


def test_time_server_tools_are_read_only_by_their_hints(servers: Path, tmp_path: Path) -> None:
    out = tmp_path / "time.yaml"
    code, err = _import("--command", str(servers / "mcp-server-time"), "-o", str(out))
    assert code == 0, err
    assert "added 2 topic(s), kept 0 existing" in err
    topics = load_file(out).model.topics
    assert set(topics) == {"get_current_time", "convert_time"}
    assert all(not t.side_effect and not t.needs_review for t in topics.values())
    saved = json.loads((REAL / "time.json").read_text())["tools"]
    assert list(topics) == [t["name"] for t in saved]  # the fixture is what it lists
    assert out.read_text().startswith(
        f"# Imported from MCP tools/list ({servers / 'mcp-server-time'}) by"
    )


def test_git_server_in_a_repository_with_cwd_and_a_re_import(servers: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    command = shlex.join([str(servers / "mcp-server-git"), "--repository", "."])
    out = tmp_path / "git.yaml"
    code, err = _import(
        "--command", command, "--cwd", str(repo), "--prefix", "git.", "-o", str(out)
    )
    assert code == 0, err
    assert "added 12 topic(s)" in err
    topics = load_file(out).model.topics
    review = sorted(name for name, t in topics.items() if t.needs_review)
    assert review == [
        "git.git_add", "git.git_checkout", "git.git_commit", "git.git_create_branch",
        "git.git_reset",
    ]  # fmt: skip
    assert topics["git.git_reset"].rollback == "irreversible"
    assert topics["git.git_status"].side_effect is False
    before = out.read_text()
    code, err = _import(
        "--command", command, "--cwd", str(repo), "--prefix", "git.", "-o", str(out)
    )
    assert code == 0, err
    assert "added 0 topic(s), kept 12 existing" in err
    assert out.read_text() == before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _sdk_server(servers: Path, transport: str) -> Iterator[int]:
    """The 2.x SDK server of sdk_server.py on a free port; stopped afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [str(servers / "python"), str(SDK_SERVER), transport, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert process.poll() is None, "the SDK server exited"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("transport", "path"), [("streamable-http", "/mcp"), ("sse", "/sse")])
def test_an_sdk_2x_server_over_http(servers: Path, transport: str, path: str) -> None:
    with _sdk_server(servers, transport) as port:
        done = invoke("catalog", "import", "--url", f"http://127.0.0.1:{port}{path}")
    assert done.returncode == 0, done.stderr
    assert "added 3 topic(s)" in done.stderr
    assert (
        "  add_note:\n    side_effect: true\n    rollback: compensatable\n    risk: high\n"
        "    compensation:\n      topic: remove_note\n      params:\n"
        '        folder: "{params.folder}"\n        title: "{params.title}"\n' in done.stdout
    )
    assert "# guess: read-only, as its name's verb 'list' reads" in done.stdout


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_the_memory_server_from_npm(tmp_path: Path) -> None:
    out = tmp_path / "memory.yaml"
    done = invoke(
        "catalog", "import", "--command", "npx -y @modelcontextprotocol/server-memory",
        "--env", f"MEMORY_FILE_PATH={tmp_path / 'memory.jsonl'}", "-o", str(out),
        "--timeout", "180",
    )  # fmt: skip
    if done.returncode != 0 and any(word in done.stderr for word in NPM_TROUBLE):
        pytest.skip(f"npx cannot fetch @modelcontextprotocol/server-memory: {done.stderr[-200:]}")
    assert done.returncode == 0, done.stderr
    topics = load_file(out).model.topics
    assert len(topics) == 9
    create = topics["create_entities"]
    assert create.compensation is not None
    assert create.compensation.topic == "delete_entities"
    relations = topics["create_relations"].compensation
    assert relations is not None
    assert relations.params == {"relations": "{params.relations}"}
    assert topics["read_graph"].needs_review is False
