"""`agentundo explain`: why a policy allows, denies or sends one dispatch to a human."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from agentundo.policy.explain import Explanation


def register(app: typer.Typer) -> None:
    app.command(name="explain")(explain)


def explain(
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            "-p",
            help="Policy file (agentundo's, or a control plane's with match: rules).",
        ),
    ],
    topic: Annotated[str, typer.Option("--topic", "-t", help="The topic being dispatched.")],
    env: Annotated[str, typer.Option("--env", "-e", help="The environment.")] = "production",
    catalog: Annotated[
        list[str] | None,
        typer.Option(
            "--catalog", "-c", help="Catalog file(s) or directories that declare the topic."
        ),
    ] = None,
    approval: Annotated[
        bool, typer.Option("--approval", help="A human approval is present.")
    ] = False,
    compensation: Annotated[
        bool, typer.Option("--compensation", help="The dispatch is a compensation (rollback).")
    ] = False,
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="The workflow the dispatch belongs to.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="Exit 1 unless the decision is this one (allow, deny, require_human or an alias).",
        ),
    ] = None,
) -> None:
    """Print the decision, the rule that won, and why every other rule did not.

    Exit codes: 0 explained (whatever the decision), 1 --check did not hold, 2 bad input.
    """
    import sys

    from agentundo.errors import UsageError

    if output_format not in ("text", "json"):
        raise UsageError(f"unknown format {output_format!r}; expected text or json")
    for option, value in (("--topic", topic), ("--env", env), ("--workflow", workflow)):
        if value is not None and not value.strip():
            raise UsageError(f"{option} needs a name, not an empty string")
    expected = _decision(check) if check is not None else None
    result = build(
        policy_path=policy,
        catalogs=tuple(catalog or ()),
        topic=topic,
        env=env,
        approval=approval,
        compensation=compensation,
        workflow=workflow,
    )
    if output_format == "json":
        from agentundo.report.explain import render_json

        render_json(result, sys.stdout)
    else:
        from rich.console import Console

        from agentundo.report.explain import render_text

        render_text(result, Console(highlight=False))
    if expected is not None and result.decision != expected:
        print(
            f"agentundo: check failed: expected {expected}, the policy decides {result.decision}",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    raise typer.Exit(0)


def _decision(raw: str) -> object:
    from agentundo.errors import UsageError
    from agentundo.model.common import Decision
    from agentundo.model.foreign_policy import DECISIONS, normalise

    word = normalise(raw)
    if word in DECISIONS:
        return DECISIONS[word]
    choices = ", ".join(d.value for d in Decision)
    raise UsageError(f"--check {raw!r}: expected one of: {choices}")


def build(
    *,
    policy_path: str,
    catalogs: tuple[str, ...],
    topic: str,
    env: str,
    approval: bool,
    compensation: bool,
    workflow: str | None,
) -> Explanation:
    """Load the inputs and explain; input problems raise InputError(s) (exit 2)."""
    import os

    from agentundo.errors import InputError, InputErrors, Position
    from agentundo.load.files import load_file, load_paths
    from agentundo.model.catalog import Topic
    from agentundo.model.foreign_policy import ForeignPolicy, convert, register
    from agentundo.model.policy import Policy
    from agentundo.policy.evaluate import Context
    from agentundo.policy.explain import explain as explain_policy

    register()
    loaded = load_file(policy_path)
    notes: list[str] = []
    if isinstance(loaded.model, ForeignPolicy):
        conversion = convert(loaded.model)
        model = conversion.policy
        notes.append("a control plane's policy, read as first_match with default deny unless set")
        notes.extend(
            f"{loaded.position(*n.path, key=n.key)}: {n.code} {n.message}" for n in conversion.notes
        )
    elif isinstance(loaded.model, Policy):
        model = loaded.model
    else:
        raise InputError(
            loaded.kind_position(), f"expected a policy file, found a {loaded.kind} file"
        )
    found: Topic | None = None
    if catalogs:
        files, errors = load_paths(catalogs)
        if errors:
            raise InputErrors(errors)
        named = {os.path.realpath(c) for c in catalogs if os.path.isfile(c)}
        wrong = [f for f in files if f.kind != "catalog" and os.path.realpath(f.path) in named]
        if wrong:  # a file named as a catalog that is something else (a directory may mix)
            raise InputErrors(
                [
                    InputError(f.kind_position(), f"expected a catalog file, found a {f.kind} file")
                    for f in wrong
                ]
            )
        catalog_files = [f for f in files if f.kind == "catalog"]
        if not catalog_files:
            raise InputError(Position(catalogs[0]), "no catalog file found")
        declared = [f for f in catalog_files if topic in f.model.topics]
        if len(declared) > 1:
            first, second = declared[0], declared[1]
            raise InputError(
                second.position("topics", topic, key=True),
                f"topic '{topic}' is declared again (first at "
                f"{first.position('topics', topic, key=True)}): cannot tell which contract "
                "to explain",
                hint="declare each topic in one catalog; agentundo lint reports this as AU106",
            )
        if declared:
            found = declared[0].model.topics[topic]
        else:
            notes.append(
                f"topic '{topic}' is not in the catalog: explained as an unknown topic "
                "(side effects, high risk, no rollback)"
            )
    else:
        notes.append(
            "no --catalog: the topic is explained as unknown (side effects, high risk, no rollback)"
        )
    ctx = Context.for_topic(
        topic,
        found,
        env=env,
        approval_present=approval,
        is_compensation=compensation,
        workflow=workflow,
    )
    lines = [loaded.position("rules", i).line for i in range(len(model.rules))]
    return explain_policy(model, ctx, lines=lines, notes=notes)
