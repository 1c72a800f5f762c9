"""`agentundo report DIR -o report.html`: the drill history as one static HTML page."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="report")(report)


def report(
    paths: Annotated[
        list[str],
        typer.Argument(help="Evidence directories or files (.jsonl) of the drills to show."),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="The HTML file to write.")
    ],
    title: Annotated[str, typer.Option(help="The page's title.")] = "Drill history",
) -> None:
    """Write a self-contained HTML page of the drill history, per workflow.

    Every run is read and verified (with AGENTUNDO_EVIDENCE_KEY when set); verification
    problems are shown in the page. Exit 0 when written, 2 for bad input (a path that is
    missing or holds no evidence; the page is still written when some files could be read).
    """
    import os
    import sys

    from agentundo import __version__
    from agentundo.errors import InputError, Position, UsageError
    from agentundo.evidence.keys import required_key
    from agentundo.evidence.reader import expand_paths
    from agentundo.history.collect import Verification, collect
    from agentundo.history.html import Page, render_page

    if not output.strip() or output == "-":
        raise UsageError("-o needs a file name to write the page to")
    if any(not path.strip() for path in paths):
        raise UsageError("an empty path names nothing; give a directory or a file")
    if os.path.isdir(output):
        raise UsageError(f"-o {output}: is a directory, not a file")
    files = expand_paths(paths)
    if os.path.realpath(output) in {os.path.realpath(f) for f in files}:
        raise UsageError(f"-o {output}: is one of the evidence files read")
    key, required = required_key(os.environ, option=False)
    history = collect(
        paths,
        verification=Verification(key=key, require_key=required),
        stderr=sys.stderr,
        chains=False,
    )
    if not history.runs:
        raise InputError(Position(" ".join(paths)), "no run could be read: nothing to report")
    page = Page(
        title=title,
        sources=" ".join(paths),
        files=len(files),
        version=__version__,
    )
    _write(output, render_page(history, page))
    from agentundo.evidence.problems import plural

    workflows = len({r.workflow for r in history.runs})
    failing = sum(r.verified is False for r in history.runs)
    print(
        f"agentundo: wrote {output}: {plural(len(history.runs), 'run')} of "
        f"{plural(workflows, 'workflow')}, {failing} failing verification",
        file=sys.stderr,
    )
    raise typer.Exit(2 if history.unreadable else 0)


def _write(path: str, text: str) -> None:
    """Write the page whole or not at all (a temporary file renamed over it)."""
    import os
    import tempfile

    from agentundo.errors import InputError, Position

    folder = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise InputError(Position(path), f"cannot write: {error.strerror or error}") from None
