"""`agentundo explain`: why a policy allows, denies or sends one dispatch to a human."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentundo.policy.conditions import Job
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
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="A label of the job, KEY=VALUE (repeatable): decides a control plane's "
            "rules that match on labels.",
        ),
    ] = None,
    risk_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--risk-tag",
            help="A risk tag of the job (repeatable; the job has exactly these): decides a "
            "control plane's rules that match on risk_tags.",
        ),
    ] = None,
    fact: Annotated[
        list[str] | None,
        typer.Option(
            "--fact",
            help="Another fact of the job, NAME=VALUE (repeatable): tenant, capability, "
            "pack_id, actor_id, actor_type, or requires (one per --fact).",
        ),
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
    job = _job(label or (), risk_tag, fact or ())
    result = build(
        policy_path=policy,
        catalogs=tuple(catalog or ()),
        topic=topic,
        env=env,
        approval=approval,
        compensation=compensation,
        workflow=workflow,
        job=job,
    )
    if output_format == "json":
        from agentundo.report.explain import render_json

        render_json(result, sys.stdout)
    else:
        from rich.console import Console

        from agentundo.report.explain import render_text

        render_text(result, Console(highlight=False))
    if expected is not None and {p.decision for p in result.possible} != {expected}:
        decides = " or ".join(dict.fromkeys(str(p.decision) for p in result.possible))
        if not result.decided:
            decides += f", depending on the job's {', '.join(result.depends_on)}"
        print(
            f"agentundo: check failed: expected {expected}, the policy decides {decides}",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    raise typer.Exit(0)


def _job(labels: Sequence[str], risk_tags: Sequence[str] | None, facts_given: Sequence[str]) -> Job:
    """The job facts given on the command line: labels, risk tags (when any is given: the
    job has exactly those) and ``--fact`` values."""
    from agentundo.errors import UsageError
    from agentundo.policy.conditions import FACTS, SET_FACTS, Job

    known: dict[str, str] = {}
    for spec in labels:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--label expects KEY=VALUE, got {spec!r}")
        known[key.strip()] = value
    facts: dict[str, str | frozenset[str]] = {}
    if risk_tags:
        if any(not t.strip() for t in risk_tags):
            raise UsageError("--risk-tag needs a tag, not an empty string")
        facts["risk_tags"] = frozenset(t.strip() for t in risk_tags)
    for spec in facts_given:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or name not in FACTS or name == "risk_tags" or not value.strip():
            choices = ", ".join(f for f in FACTS if f != "risk_tags")
            raise UsageError(f"--fact expects NAME=VALUE with NAME one of {choices}, got {spec!r}")
        if name in SET_FACTS:
            before = facts.get(name)
            items = before if isinstance(before, frozenset) else frozenset()
            facts[name] = items | {value.strip()}
        else:
            facts[name] = value.strip()
    return Job(facts=facts, labels=known)


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
    job: Job | None = None,
) -> Explanation:
    """Load the inputs and explain; input problems raise InputError(s) (exit 2)."""
    import os

    from agentundo.errors import InputError, InputErrors, Position
    from agentundo.load.files import load_file, load_paths
    from agentundo.model.catalog import Topic
    from agentundo.model.foreign_policy import ForeignPolicy, convert, register
    from agentundo.model.policy import Policy
    from agentundo.policy.conditions import UNKNOWN_JOB
    from agentundo.policy.evaluate import Context
    from agentundo.policy.explain import explain as explain_policy

    register()
    loaded = load_file(policy_path)
    notes: list[str] = []
    paths: tuple[tuple[str | int, ...], ...] = ()
    if isinstance(loaded.model, ForeignPolicy):
        conversion = convert(loaded.model)
        model = conversion.policy
        paths = conversion.paths
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
        job=job or UNKNOWN_JOB,
    )
    where = paths or tuple(("rules", i) for i in range(len(model.rules)))
    lines = [loaded.position(*path).line for path in where]
    return explain_policy(model, ctx, lines=lines, notes=notes)
