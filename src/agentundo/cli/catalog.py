"""`agentundo catalog import`: a catalog skeleton from an MCP server's tools."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    catalog = typer.Typer(
        name="catalog",
        help="Build and maintain action catalogs.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    catalog.command(name="import")(import_)
    app.add_typer(catalog, name="catalog")


def import_(
    from_json: Annotated[
        str | None,
        typer.Option("--from-json", metavar="FILE", help="A tools/list result saved as JSON."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="A live MCP server's streamable HTTP (or legacy SSE) endpoint.",
        ),
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            metavar='"CMD ARGS"',
            help="Start a stdio MCP server with this command line (split like a shell, not run by one).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Catalog to write; an existing one is extended, never rewritten.",
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header", "-H", metavar="NAME=VALUE", help="HTTP header for --url (repeatable)."
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            metavar="NAME=VALUE",
            help="Environment variable for --command (repeatable); never written or printed.",
        ),
    ] = None,
    cwd: Annotated[
        str | None,
        typer.Option("--cwd", metavar="DIR", help="Working directory for --command."),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Prefix for topic names, e.g. 'github.'.")
    ] = "",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the MCP server.")
    ] = 15.0,
) -> None:
    """Write a catalog skeleton from MCP tools: tools the server marks read-only need
    nothing, the others get a guessed contract marked needs_review, so `agentundo lint`
    fails until a person confirms it."""
    from agentundo.catalog.importer import ImportRequest, run_import

    request = ImportRequest(
        from_json=from_json,
        url=url,
        command=command,
        output=output,
        headers=tuple(header or ()),
        env=tuple(env or ()),
        cwd=cwd,
        prefix=prefix,
        timeout_s=timeout,
    )
    outcome = run_import(request)
    if output is None:
        typer.echo(outcome.text, nl=False)
    for line in outcome.report.lines():
        typer.echo(f"agentundo: {line}", err=True)
    if output is not None:
        done = f"wrote {output}" if outcome.written else f"{output} unchanged: nothing new"
        typer.echo(f"agentundo: {done}", err=True)
