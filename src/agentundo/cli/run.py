"""Run a Typer app and map every outcome onto the exit-code API."""

from __future__ import annotations

import sys
from typing import Any

from agentundo.errors import AgentundoError, InputError, InputErrors


def report_error(error: AgentundoError) -> int:
    """Print an expected error to stderr and return its exit code."""
    if isinstance(error, InputErrors):
        for item in error.errors:
            print(item.describe(), file=sys.stderr)
    elif isinstance(error, InputError):
        print(error.describe(), file=sys.stderr)
    else:
        print(f"agentundo: error: {error}", file=sys.stderr)
    return error.exit_code


def run(app: Any, args: list[str]) -> int:
    """Run ``app``; every usage error, Click's or ours, is one ``agentundo: error:`` line."""
    import os

    import typer

    try:
        os.getcwd()  # relative paths, the configuration and the evidence all start here
    except OSError as error:
        print(
            "agentundo: error: the working directory cannot be read "
            f"({error.strerror or error}): was it deleted? cd to an existing directory",
            file=sys.stderr,
        )
        return 2

    # Typer 0.29 carries its own copy of Click: reach its exception classes through the
    # public BadParameter rather than a private module.
    bases = {c.__name__: c for c in typer.BadParameter.__mro__}
    usage_error: type[Exception] = bases["UsageError"]
    click_exception: type[Exception] = bases["ClickException"]
    try:
        code = app(args=args, prog_name="agentundo", standalone_mode=False)
    except SystemExit as done:
        code = done.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 2
    except AgentundoError as error:
        return report_error(error)
    except usage_error as error:
        error_: Any = error
        if type(error).__name__ == "NoArgsIsHelpError":  # `agentundo` alone: the help
            print(error_.ctx.get_help())
            return 2
        where = error_.ctx.command_path if error_.ctx is not None else "agentundo"
        message = " ".join(error_.format_message().split())
        print(f"agentundo: error: {message} (see '{where} --help')", file=sys.stderr)
        return 2
    except click_exception as error:
        print(f"agentundo: error: {error}", file=sys.stderr)
        return int(getattr(error, "exit_code", 1))
    except (typer.Abort, KeyboardInterrupt):
        print("agentundo: interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0
