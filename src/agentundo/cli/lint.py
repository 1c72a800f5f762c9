"""`agentundo lint`: check catalogs, policies and workflows for broken rollback contracts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from agentundo.lint.config import Config
    from agentundo.lint.engine import LintResult

FORMATS = ("text", "json", "sarif", "github", "junit", "gitlab")
LEVELS = ("error", "warning", "info")


def register(app: typer.Typer) -> None:
    app.command(name="lint")(lint)


def _complete(options: tuple[str, ...]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [o for o in options if o.startswith(incomplete)]

    return complete


def lint(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files or directories (searched for *.yaml, *.yml). Default: 'paths' from "
            "the configuration, else '.'."
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Environment to evaluate the policy in (repeatable)."),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Report format: text, json, sarif, github, junit or gitlab. Default: text "
            "(plus GitHub annotations when GITHUB_ACTIONS is set).",
            autocompletion=_complete(FORMATS),
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the report to this file; the terminal still gets the summary.",
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Lowest severity that makes the exit code 1: error (default), warning, info.",
            autocompletion=_complete(LEVELS),
        ),
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select", help="Only these codes or code prefixes (repeatable, or comma-separated)."
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore", help="Skip these codes or code prefixes (repeatable, or comma-separated)."
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Configuration file (default: agentundo.toml or pyproject.toml [tool.agentundo], "
            "searched upwards from the working directory).",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--show-passed-over",
            "-v",
            help="Also list, on stderr, the YAML files found in directories that were passed "
            "over as not agentundo's, and why.",
        ),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Lint every file even when nothing changed since a run with the same inputs "
            "(cache: $AGENTUNDO_CACHE_DIR, else $XDG_CACHE_HOME/agentundo).",
        ),
    ] = False,
) -> None:
    """Check compensation contracts, idempotency keys, policy gates and workflows.

    Exit codes: 0 clean, 1 a finding at or above --fail-on, 2 bad input or usage.
    """
    code = execute(
        paths=tuple(paths or ()),
        envs=tuple(env or ()),
        output_format=output_format,
        output=output,
        fail_on=fail_on,
        select=_split(select),
        ignore=_split(ignore),
        config=config,
        verbose=verbose,
        cache=not no_cache,
    )
    raise typer.Exit(code)


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


class _Codes:
    """Every check's code, read (without importing the checks) the first time one is
    asked for: a run without --select, --ignore or per-file ignores never needs them."""

    def __init__(self) -> None:
        self._codes: list[str] | None = None

    def all(self) -> list[str]:
        if self._codes is None:
            from agentundo.lint.docs import static_checks

            self._codes = list(static_checks())
        return self._codes


def _codes(option: str, values: tuple[str, ...], codes_of: _Codes) -> tuple[str, ...]:
    """Upper-cased codes; a value that is no code's prefix is a usage error."""
    import difflib

    from agentundo.errors import UsageError

    codes = tuple(v.upper() for v in values)
    for code in codes:
        known = codes_of.all()
        if not any(k.startswith(code) for k in known):
            close = difflib.get_close_matches(code, known, n=1) if len(code) >= 5 else []
            prefixes = ", ".join(sorted({k[:3] for k in known}))
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else f"; codes start with {prefixes} ('agentundo rules' lists them)"
            )
            raise UsageError(f"{option} {code}: no check has this code or prefix{hint}")
    return codes


def _refuse_to_overwrite_input(output: str, result: LintResult) -> None:
    """``--output`` naming a file the lint read (by any name or link) would destroy it."""
    import os

    from agentundo.errors import UsageError

    target = os.path.realpath(output)
    read = [f.path for f in result.files] + [e.position.path for e in result.input_errors]
    if any(os.path.realpath(path) == target for path in read):
        raise UsageError(
            f"--output {output} is one of the files being linted; the report would overwrite it"
        )


def execute(
    *,
    paths: tuple[str, ...],
    envs: tuple[str, ...],
    output_format: str | None,
    output: str | None,
    fail_on: str | None,
    select: tuple[str, ...] | None,
    ignore: tuple[str, ...] | None,
    config: str | None,
    verbose: bool = False,
    cache: bool = False,
) -> int:
    """Run a lint as the options ask, write the report(s), return the exit code."""
    import os
    import sys

    from agentundo.errors import UsageError
    from agentundo.lint import cache as lint_cache
    from agentundo.lint import config as configuration
    from agentundo.lint.engine import PerFileIgnores
    from agentundo.lint.finding import Severity
    from agentundo.report import Format, reporter
    from agentundo.report.common import summary_line

    for value in envs:
        if not value.strip():
            raise UsageError("--env needs a name, not an empty string")
    settings = configuration.discover(config)
    fmt: Format | None = None
    if output_format is not None:
        try:
            fmt = Format(output_format)
        except ValueError:
            raise UsageError(
                f"unknown format {output_format!r}; expected one of: {', '.join(Format)}"
            ) from None
    level = settings.fail_on or Severity.ERROR
    if fail_on is not None:
        try:
            level = Severity(fail_on)
        except ValueError:
            raise UsageError(
                f"--fail-on {fail_on!r}: expected one of: error, warning, info"
            ) from None
    known = _Codes()
    _check_config_codes(settings, known)
    if output is not None and not output.strip():
        raise UsageError("--output needs a file name, not an empty string")
    for option, given in (("--select", select), ("--ignore", ignore)):
        if given is not None and not given:  # '' would otherwise select every check
            raise UsageError(f"{option} needs a code or code prefix, not an empty value")
    chosen = _codes("--select", select, known) if select is not None else settings.select
    skipped = _codes("--ignore", ignore, known) if ignore is not None else settings.ignore
    if paths:
        targets = list(paths)
    elif settings.paths:
        targets = [os.path.relpath(settings.root / p) for p in settings.paths]
    else:
        targets = ["."]
    options = lint_cache.Options(
        envs=envs or settings.envs or ("production",),
        select=chosen,
        ignore=skipped,
        per_file_ignores=PerFileIgnores(settings.per_file_ignores, root=str(settings.root)),
    )
    where = lint_cache.directory() if cache else None
    result = lint_cache.lint(targets, options, fail_on=level, cache=where)
    annotate = fmt is None and os.environ.get("GITHUB_ACTIONS") == "true"
    fmt = fmt or Format.TEXT
    if verbose:
        _describe_passed_over(result)
    _describe_input_errors(result)
    if output is not None:
        _refuse_to_overwrite_input(output, result)
        try:
            with open(output, "w", encoding="utf-8", newline="\n") as handle:
                reporter(fmt)(result, handle)
        except OSError as exc:
            raise UsageError(f"--output {output}: cannot write: {exc.strerror}") from None
        print(f"{summary_line(result)} (report: {output})")
    elif fmt is Format.TEXT:
        from agentundo.report import text

        # input errors went to stderr just above: the terminal report leaves them out
        text.render_stream(result, sys.stdout, input_errors=False)
    else:
        reporter(fmt)(result, sys.stdout)
    if annotate:
        reporter(Format.GITHUB)(result, sys.stdout)
    sys.stdout.flush()
    return result.exit_code()


def _check_config_codes(settings: Config, known: _Codes) -> None:
    from agentundo.errors import ConfigError, UsageError

    groups = [("select", settings.select), ("ignore", settings.ignore)]
    groups.extend((f"per-file-ignores.{glob}", codes) for glob, codes in settings.per_file_ignores)
    for option, values in groups:
        try:
            _codes(f"'{option}'", values, known)
        except UsageError as exc:
            raise ConfigError(f"{settings.source}: {exc}") from None


def _describe_input_errors(result: LintResult) -> None:
    import sys

    for error in result.input_errors:
        print(error.describe(), file=sys.stderr)


def _describe_passed_over(result: LintResult) -> None:
    """``path: passed over: reason`` for each YAML file that is not agentundo's."""
    import sys

    for item in result.passed_over:
        print(f"{item.path}: passed over: {item.reason}", file=sys.stderr)
