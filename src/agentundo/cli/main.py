"""Entry point: build the Typer application, run it, return its exit code."""

from __future__ import annotations

import sys

from agentundo import __version__

COMMANDS = ("lint", "rules", "explain", "drill", "recover", "timeline", "catalog", "report_html")
"""Modules of :mod:`agentundo.cli` that each add their command(s) with ``register(app)``."""


def build_app(only: str | None = None) -> object:
    """The application with every command, or only with the command module ``only``
    (Typer builds every registered command's parameters before it runs one)."""
    import importlib

    import typer

    app = typer.Typer(
        name="agentundo",
        help="Make rollback of AI-agent actions a tested, gated, evidenced feature.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    def version(value: bool) -> None:
        if value:
            typer.echo(f"agentundo {__version__}")
            raise typer.Exit(0)

    @app.callback()
    def _root(
        show_version: bool = typer.Option(
            False, "--version", callback=version, is_eager=True, help="Show the version and exit."
        ),
    ) -> None:
        """agentundo: lint compensation contracts, drill rollbacks, verify evidence."""

    for name in COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f"agentundo.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"agentundo.cli.{name}":
                continue
            raise
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 clean, 1 findings, 2 usage or input)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"agentundo {__version__}")
        return 0
    app = build_app(only=args[0] if args and args[0] in COMMANDS else None)
    from agentundo.cli.run import run

    return run(app, args)
