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
    """Click's standalone mode prints usage errors (exit 2); our errors are mapped here."""
    try:
        app(args=args, prog_name="agentundo", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 2
    except AgentundoError as error:
        return report_error(error)
    except KeyboardInterrupt:
        print("agentundo: interrupted", file=sys.stderr)
        return 130
    return 0
