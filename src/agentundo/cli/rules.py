"""`agentundo rules [CODE]`: list every check, or print one check's documentation."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="rules")(rules)


def rules(
    code: Annotated[
        str | None, typer.Argument(help="A check's code (AU101) or name (rollback-tag-missing).")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """List every lint check with code, severity and summary; with CODE, its documentation."""
    import json

    from agentundo.errors import UsageError
    from agentundo.lint.docs import static_checks

    if output_format not in ("text", "json"):
        raise UsageError(f"unknown format {output_format!r}; expected text or json")
    checks = static_checks()
    wanted = (code or "").strip()
    found = checks.get(wanted.upper()) or next(
        (c for c in checks.values() if c.name == wanted.lower()), None
    )
    listed = [c for c in checks.values() if c.code.startswith(wanted.upper())]
    if code is None or (found is None and wanted and listed):  # all, or a prefix (AU3)
        if output_format == "json":
            typer.echo(json.dumps([_as_dict(c) for c in listed], indent=2))
            return
        width = max(len(c.name) for c in listed)
        for item in listed:
            typer.echo(f"{item.code}  {item.severity:<7}  {item.name:<{width}}  {item.summary}")
        return
    if found is None:
        import difflib

        names = [*checks, *(c.name for c in checks.values())]
        close = difflib.get_close_matches(wanted, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; 'agentundo rules' lists them"
        raise UsageError(f"no check {wanted!r}{hint}")
    if output_format == "json":
        typer.echo(json.dumps(_as_dict(found), indent=2))
        return
    lines = [
        f"{found.code} {found.name}",
        f"severity: {found.severity}    family: {found.family}",
        "",
        found.summary,
    ]
    if found.description:
        lines += ["", found.description]
    for title in ("Bad", "Good"):
        block = found.section(title)
        if block:
            lines += [
                "",
                f"{title}:",
                *(f"    {line}" if line else "" for line in block.splitlines()),
            ]
    typer.echo("\n".join(lines))


def _as_dict(item: object) -> dict[str, str]:
    from agentundo.lint.registry import Check

    assert isinstance(item, Check)
    return {
        "code": item.code,
        "name": item.name,
        "severity": str(item.severity),
        "family": item.family,
        "summary": item.summary,
        "description": item.description,
        "bad": item.section("Bad"),
        "good": item.section("Good"),
    }
