"""`agentundo report DIR -o report.html`: what the page shows, read two ways.

The page is parsed with :mod:`html.parser` (always), and rendered by headless Chromium
(``/usr/bin/chromium``, Debian's ``chromium`` package; skipped when it is not installed):
its DOM after rendering must show the same workflows, pass rates and plot marks, and it
must ask the network for nothing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.cli_runner import Result
from tests.evidence_factory import START
from tests.history_factory import LONG_ID, drill_run, weekly_history

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install -y chromium)",
)

HOSTILE_FLOW = "<script>alert('flow')</script>"
HOSTILE_STEP = '<img src=x onerror="alert(1)">'
EXPECTED = {
    # workflow: (runs, pass rate shown, finished rollbacks)
    "deploy-hotfix": (1, "100%", 1),
    "refund-order": (5, "80%", 5),
    "restock": (3, "67%", 1),
    HOSTILE_FLOW: (1, "0%", 1),
}
NOT_ALLOWED = {"script", "link", "img", "iframe", "object", "embed", "base", "form", "video"}


@dataclass
class Seen:
    """What a page holds, as a parser sees it."""

    tags: set[str] = field(default_factory=set)
    urls: list[str] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)
    h2: list[str] = field(default_factory=list)
    pass_rates: dict[str, str] = field(default_factory=dict)
    verdict_marks: dict[str, list[str]] = field(default_factory=dict)
    duration_marks: dict[str, list[str]] = field(default_factory=dict)
    problem_codes: dict[str, list[str]] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)


class PageReader(HTMLParser):
    """Collects :class:`Seen` facts, per workflow section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen = Seen()
        self._workflow: str | None = None
        self._plot: str | None = None
        self._into: list[str] | None = None
        self._capture: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        self.seen.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href"):
                self.seen.urls.append(value or "")
            if name.startswith("on"):
                self.seen.handlers.append(name)
        if tag == "section" and "workflow" in classes:
            self._workflow = attributes.get("data-workflow") or ""
            for table in (self.seen.verdict_marks, self.seen.duration_marks):
                table[self._workflow] = []
            self.seen.problem_codes[self._workflow] = []
        elif tag == "svg":
            self._plot = "verdicts" if "verdicts" in classes else "durations"
        elif "mark" in classes and self._workflow is not None:
            marks = (
                self.seen.verdict_marks if self._plot == "verdicts" else self.seen.duration_marks
            )
            marks[self._workflow].append(attributes.get("data-run") or "")
        elif tag == "h2" or (tag == "dd" and "pass-rate" in classes) or "code" in classes:
            self._capture = "h2" if tag == "h2" else "code" if "code" in classes else "rate"
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._plot = None
        elif tag == "section":
            self._workflow = None
        if self._capture is not None and tag in ("h2", "dd", "span"):
            text = "".join(self._buffer)
            if self._capture == "h2":
                self.seen.h2.append(text)
            elif self._capture == "rate" and self._workflow is not None:
                self.seen.pass_rates[self._workflow] = text
            elif self._capture == "code" and self._workflow is not None:
                self.seen.problem_codes[self._workflow].append(text)
            self._capture = None

    def handle_data(self, data: str) -> None:
        self.seen.text.append(data)
        if self._capture is not None:
            self._buffer.append(data)


def read_page(html: str) -> Seen:
    reader = PageReader()
    reader.feed(html)
    reader.close()
    return reader.seen


def check_page(seen: Seen, ids: list[str]) -> None:
    """The facts a reader of the page must see, whoever parsed it."""
    assert not seen.tags & NOT_ALLOWED, seen.tags & NOT_ALLOWED
    assert all(url.startswith("#") for url in seen.urls), seen.urls
    assert not seen.handlers
    for workflow in EXPECTED:
        assert workflow in seen.h2
    for workflow, (runs, rate, rollbacks) in EXPECTED.items():
        assert seen.pass_rates[workflow] == rate, workflow
        assert len(seen.verdict_marks[workflow]) == runs, workflow
        assert len(seen.duration_marks[workflow]) == rollbacks, workflow
    marked = [run for marks in seen.verdict_marks.values() for run in marks]
    assert sorted(marked) == sorted(ids)
    assert seen.problem_codes["restock"] == ["EV205"]
    text = "".join(seen.text)
    assert HOSTILE_FLOW in text and HOSTILE_STEP in text  # shown as text, not markup
    assert LONG_ID in text


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("report")
    ids = weekly_history(root / "ev")
    drill_run(
        root / "ev" / "run_hostile.jsonl",
        run_id="run_hostile",
        workflow=HOSTILE_FLOW,
        start=START + timedelta(days=30),
        outcome="unplanned",
        steps=("first", HOSTILE_STEP, "last"),
    )
    return root, [*ids, "run_hostile"]


@pytest.fixture(scope="module")
def page(drilled: tuple[Path, list[str]]) -> Path:
    from tests.cli_runner import invoke

    root, _ = drilled
    done = invoke("report", "ev", "-o", "report.html", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "wrote report.html: 10 runs of 4 workflows, 1 failing verification" in done.stderr
    assert "ev/weeks-3-4.jsonl:44: EV205" in done.stderr
    return root / "report.html"


def test_the_page_parsed_shows_the_history(page: Path, drilled: tuple[Path, list[str]]) -> None:
    html = page.read_text(encoding="utf-8")
    check_page(read_page(html), drilled[1])
    assert "&lt;script&gt;alert(&#x27;flow&#x27;)&lt;/script&gt;" in html
    assert "<script" not in html
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html
    assert not list(page.parent.glob(".report-*"))  # no temporary file left


def test_the_numbers_agree_with_summary(page: Path, cli: Callable[..., Result]) -> None:
    import json

    done = cli("timeline", "--summary", "--verify", "-f", "json", "ev", cwd=page.parent)
    flows = {w["workflow"]: w for w in json.loads(done.stdout)["workflows"]}
    seen = read_page(page.read_text(encoding="utf-8"))
    for name, stats in flows.items():
        assert seen.pass_rates[name] == f"{stats['pass_rate']:.0%}"
        assert len(seen.verdict_marks[name]) == stats["runs"]
        assert len(seen.duration_marks[name]) == stats["rollbacks"]


CHROMIUMS_OWN = (".google.com", ".googleapis.com", ".gvt1.com", ".gstatic.com")
"""Where Chromium itself calls (its clock, component updates, accounts), page or not."""


@needs_chromium
def test_chromium_renders_the_page(page: Path, drilled: tuple[Path, list[str]]) -> None:
    with _proxy() as proxy:
        dom = _chromium("--dump-dom", page.as_uri(), port=proxy.port)
        assert dom.returncode == 0, dom.stderr
        check_page(read_page(dom.stdout), drilled[1])
        shot = page.parent / "shot.png"
        taken = _chromium(f"--screenshot={shot}", page.as_uri(), port=proxy.port)
        assert taken.returncode == 0, taken.stderr
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert proxy.page_hosts() == [], "the page asked the network for something"


@needs_chromium
def test_the_proxy_sees_a_page_that_fetches(tmp_path: Path) -> None:
    """The control: a page with outside resources is caught, so none above means none."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        '<!DOCTYPE html><img src="http://images.example.test/x.png">'
        '<link rel="stylesheet" href="https://fonts.example.test/a.css">'
    )
    with _proxy() as proxy:
        _chromium("--dump-dom", leaky.as_uri(), port=proxy.port)
    assert sorted(proxy.page_hosts()) == ["fonts.example.test", "images.example.test"]


@dataclass
class _Requests:
    port: int
    hosts: list[str] = field(default_factory=list)

    def page_hosts(self) -> list[str]:
        """The hosts asked for, but those Chromium calls on its own."""
        return [h for h in self.hosts if not ("." + h).endswith(CHROMIUMS_OWN)]


class _proxy:
    """An HTTP proxy on 127.0.0.1 that answers nothing and notes the host of every request
    (``GET http://host/...`` or ``CONNECT host:443``): Chromium sends all traffic to it."""

    def __enter__(self) -> _Requests:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.requests = _Requests(self._server.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self.requests

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    head = connection.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    continue
                parts = head.split()
                if len(parts) >= 2:
                    target = parts[1].split("://", 1)[-1]
                    self.requests.hosts.append(target.split("/", 1)[0].rsplit(":", 1)[0])

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


def _chromium(*args: str, port: int) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--window-size=1200,1800",
            f"--proxy-server=http://127.0.0.1:{port}",
            "--proxy-bypass-list=<-loopback>",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- bad input -----------------------------------------------------------------------------


def test_bad_input_exits_2(tmp_path: Path, cli: Callable[..., Result]) -> None:
    missing = cli("report", "nowhere", "-o", "r.html", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        2,
        "nowhere: error: no such file or directory\n",
    )
    (tmp_path / "empty").mkdir()
    empty = cli("report", "empty", "-o", "r.html", cwd=tmp_path)
    assert empty.returncode == 2
    assert "no evidence files (*.jsonl, *.ndjson, or either .gz) in this directory" in empty.stderr
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jsonl").write_bytes(b"\x00\xffbinary")
    (junk / "b.jsonl").write_text("key: [unclosed\n")
    none = cli("report", "junk", "-o", "r.html", cwd=tmp_path)
    assert none.returncode == 2
    assert "junk/a.jsonl:1:1: error: not an evidence file: binary data" in none.stderr
    assert "no run could be read: nothing to report" in none.stderr
    assert not (tmp_path / "r.html").exists()
    for args in (("-o", "empty"), ("-o", ""), ("-o", "-"), ()):
        done = cli("report", "junk", *args, cwd=tmp_path)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr
    for done in (missing, empty, none):
        assert "Traceback" not in done.stderr


def test_a_file_that_is_not_evidence_is_named_in_the_page(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    ev = tmp_path / "ev"
    drill_run(ev / "run_a.jsonl", run_id="run_a", workflow="w", start=START, outcome="clean")
    (ev / "notes.jsonl").write_text("[1, 2, 3]\n")
    done = cli("report", "ev", "-o", "out/page.html", cwd=tmp_path)
    assert done.returncode == 2  # written, but one input was bad
    html = (tmp_path / "out" / "page.html").read_text() if (tmp_path / "out").exists() else ""
    assert html == ""  # the folder of -o must exist: cannot write
    assert "cannot write" in done.stderr
    written = cli("report", "ev", "-o", "page.html", cwd=tmp_path)
    assert written.returncode == 2
    page = (tmp_path / "page.html").read_text()
    assert "Files that are not evidence" in page
    assert "ev/notes.jsonl:1:1: error: not an evidence file: expected JSON Lines" in page


def test_a_tampered_run_is_shown_not_fatal(tmp_path: Path, cli: Callable[..., Result]) -> None:
    path = drill_run(
        tmp_path / "ev" / "run_t.jsonl", run_id="run_t", workflow="w", start=START, outcome="clean"
    )
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"svc.reserve"', '"svc.elsewhere"')
    path.write_text("".join(lines))
    done = cli("report", "ev", "-o", "page.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = read_page((tmp_path / "page.html").read_text())
    assert "EV101" in seen.problem_codes["w"]
    assert seen.pass_rates["w"] == "0%"  # a good verdict in evidence that fails does not pass
