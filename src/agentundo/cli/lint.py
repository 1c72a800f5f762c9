"""`agentundo lint`: check catalogs, policies and workflows for broken rollback contracts."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="lint")(lint)


def lint(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files or directories (searched for *.yaml, *.yml).")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Environment to evaluate the policy in (repeatable)."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Report format: text or json.")
    ] = "text",
) -> None:
    """Check compensation contracts, idempotency keys, policy gates and workflows."""
    from agentundo.errors import UsageError
    from agentundo.lint.engine import lint_paths

    if output_format not in ("text", "json"):
        raise UsageError(f"unknown format {output_format!r}; expected text or json")
    result = lint_paths(paths or ["."], envs=tuple(env or ["production"]))
    if output_format == "json":
        import sys

        from agentundo.report import json_

        json_.render(result, sys.stdout)
    else:
        from rich.console import Console

        from agentundo.report import text

        text.render(result, Console(highlight=False))
    raise typer.Exit(result.exit_code())
