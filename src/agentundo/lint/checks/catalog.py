"""Catalog checks (AU1xx): every side-effecting topic has a usable rollback contract."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project, TopicEntry
from agentundo.lint.registry import check
from agentundo.lint.sites import compensation_dispatched
from agentundo.model.common import MAX_WAIT_S, ROLLBACK_WINDOW_S, Rollback, seconds


@check("AU101", "rollback-tag-missing", Severity.ERROR, "catalog")
def rollback_tag_missing(project: Project) -> Iterator[Problem]:
    """A side-effecting topic has no `rollback` tag.

    Every action that changes the world must say whether it can be undone:
    `reversible` (an exact inverse exists), `compensatable` (a semantic compensation
    exists) or `irreversible` (nothing can undo it, with a `no_rollback_reason`).

    Bad:
        topics:
          payments.charge:
            side_effect: true
    Good:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund}
    """
    for entry in project.side_effect_topics():
        if entry.topic.rollback is None:
            yield Problem(
                entry.position(key=True),
                f"topic '{entry.name}' has side effects but no rollback tag",
                "add 'rollback: reversible', 'compensatable' or 'irreversible'",
            )


@check("AU102", "compensation-missing", Severity.ERROR, "catalog")
def compensation_missing(project: Project) -> Iterator[Problem]:
    """A reversible or compensatable topic declares no compensation.

    Saying a topic can be rolled back is a promise; the `compensation` block is how the
    engine keeps it. Without one a rollback has nothing to dispatch.

    Bad:
        topics:
          iam.grant_role:
            side_effect: true
            rollback: reversible
    Good:
        topics:
          iam.grant_role:
            side_effect: true
            rollback: reversible
            compensation: {topic: iam.revoke_role, timeout: 10s}
    """
    for entry in project.side_effect_topics():
        topic = entry.topic
        if topic.rollback in (Rollback.REVERSIBLE, Rollback.COMPENSATABLE) and not (
            topic.compensation_declared
        ):
            yield Problem(
                entry.position("rollback"),
                f"topic '{entry.name}' is {topic.rollback} but declares no compensation",
                "add a 'compensation:' block naming the topic that undoes it",
            )


@check("AU103", "no-rollback-reason-missing", Severity.ERROR, "catalog")
def no_rollback_reason_missing(project: Project) -> Iterator[Problem]:
    """An irreversible topic gives no `no_rollback_reason`.

    When a rollback reaches an action that cannot be undone, the on-call engineer needs
    to know why, and what to do instead (`mitigation`). A reason of blanks counts as none.

    Bad:
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
    Good:
        topics:
          email.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: a sent email cannot be recalled
            mitigation: send a correction email
    """
    for entry in project.side_effect_topics():
        reason = entry.topic.no_rollback_reason
        if entry.topic.rollback is not Rollback.IRREVERSIBLE:
            continue
        if reason is None:
            yield Problem(
                entry.position("rollback"),
                f"irreversible topic '{entry.name}' has no no_rollback_reason",
                "explain why it cannot be undone in 'no_rollback_reason'",
            )
        elif not reason.strip():
            yield Problem(
                entry.position("no_rollback_reason"),
                f"irreversible topic '{entry.name}' has a blank no_rollback_reason",
                "explain why it cannot be undone in 'no_rollback_reason'",
            )


@check("AU104", "compensation-topic-unknown", Severity.ERROR, "catalog")
def compensation_topic_unknown(project: Project) -> Iterator[Problem]:
    """A compensation names a topic that is not in the catalog.

    The engine dispatches the compensating topic like any other action: it needs its
    own contract (risk, idempotency key, policy decision).

    Bad:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refnd}
    Good:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund}
          payments.refund:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: money returned to a customer is not taken back
    """
    for entry in project.topics.values():
        compensation = entry.topic.compensation
        if compensation is None or compensation.topic in project.topics:
            continue
        close = difflib.get_close_matches(compensation.topic, list(project.topics), n=1)
        yield Problem(
            entry.position("compensation", "topic"),
            f"compensation of '{entry.name}' names unknown topic '{compensation.topic}'",
            f"did you mean '{close[0]}'?" if close else "declare the compensating topic",
        )


@check("AU105", "irreversible-with-compensation", Severity.WARNING, "catalog")
def irreversible_with_compensation(project: Project) -> Iterator[Problem]:
    """An irreversible topic declares a compensation.

    The two contradict each other: the engine never dispatches the compensation of an
    irreversible topic. Either the action can be compensated (tag it `compensatable`)
    or the compensation block is dead.

    Bad:
        topics:
          payouts.send:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: funds leave the platform
            compensation: {topic: payouts.claw_back}
    Good:
        topics:
          payouts.send:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payouts.claw_back}
    """
    for entry in project.side_effect_topics():
        if entry.topic.rollback is Rollback.IRREVERSIBLE and entry.topic.compensation_declared:
            yield Problem(
                entry.position("compensation", key=True),
                f"irreversible topic '{entry.name}' declares a compensation that never runs",
                "tag it 'compensatable', or remove the compensation",
            )


@check("AU106", "duplicate-topic", Severity.ERROR, "catalog")
def duplicate_topic(project: Project) -> Iterator[Problem]:
    """The same topic is declared in two catalogs.

    Which contract applies would depend on the order files are read in.

    Bad:
        # catalog-a.yaml and catalog-b.yaml both declare payments.charge
        topics:
          payments.charge: {side_effect: true, rollback: irreversible, no_rollback_reason: x}
    Good:
        # payments.charge is declared in one catalog only
        topics:
          payments.charge: {side_effect: true, rollback: irreversible, no_rollback_reason: x}
    """
    for first, again in project.duplicate_topics:
        where = first.position(key=True)
        yield Problem(
            again.position(key=True),
            f"topic '{again.name}' is already declared at {where}",
            "keep one declaration",
        )


@check("AU109", "needs-review", Severity.ERROR, "catalog")
def needs_review(project: Project) -> Iterator[Problem]:
    """A topic is marked `needs_review` (a guessed contract nobody confirmed).

    `agentundo catalog import` guesses rollback and risk from MCP tool hints and marks
    each guess for review. The lint fails until a person confirms the contract and
    removes the mark.

    Bad:
        topics:
          tickets.close:
            side_effect: true
            rollback: compensatable
            needs_review: true
    Good:
        topics:
          tickets.close:
            side_effect: true
            rollback: compensatable
            compensation: {topic: tickets.reopen}
    """
    for entry in project.topics.values():
        if entry.topic.needs_review:
            yield Problem(
                entry.position("needs_review", key=True),
                f"topic '{entry.name}' was imported with a guessed contract that needs review",
                "confirm or complete the contract, then delete 'needs_review'",
            )


@check("AU107", "timeout-too-long", Severity.ERROR, "catalog")
def timeout_too_long(project: Project) -> Iterator[Problem]:
    """A timeout is longer than 168h (7 days), the longest a drill accepts.

    A compensation that may take a week to answer is no rollback plan, and `agentundo
    drill` refuses the catalog (exit 2) rather than wait that long; lint says so first.

    Bad:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund, timeout: 9999h}
    Good:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund, timeout: 30s}
    """
    for entry in project.topics.values():
        for path, value in entry.topic.timeouts():
            if seconds(value) > MAX_WAIT_S:
                yield Problem(
                    entry.position(*path),
                    f"{'.'.join(path)} {value} of topic '{entry.name}' is longer than 168h",
                    "a timeout should be seconds or minutes; a drill refuses more than 168h",
                )


@check("AU108", "compensation-timeout-cut", Severity.WARNING, "catalog")
def compensation_timeout_cut(project: Project) -> Iterator[Problem]:
    """A compensation timeout is longer than the rollback window (30s by default).

    A rollback has a window (the engine's default is 30s; a drill scenario may change
    it with `settings.rollback_window`) and a drill cuts every compensation attempt to
    the time left in it. A longer `timeout` (or `http.timeout`) of a compensation never
    applies: a slow undo is abandoned at the window's end and handed to a human, although
    the catalog promised it more time.

    Bad:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund, timeout: 20m}
    Good:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund, timeout: 10s}
    """
    window = f"{ROLLBACK_WINDOW_S:g}s"
    for entry in project.topics.values():
        if not compensation_dispatched(entry.topic):
            continue  # an irreversible topic's compensation never runs (AU105)
        for path, value in entry.topic.timeouts():
            if path[0] != "compensation" or not ROLLBACK_WINDOW_S < seconds(value) <= MAX_WAIT_S:
                continue  # a timeout beyond 168h is AU107's
            which = " ".join(path[:-1])
            yield Problem(
                entry.position(*path),
                f"{which} timeout {value} of topic '{entry.name}' is longer than the rollback "
                f"window ({window}): a drill cuts each attempt to the time left in the window",
                "shorten it, or raise 'settings.rollback_window' in the drill scenario",
            )


@check("AU110", "alias-clash", Severity.ERROR, "catalog")
def alias_clash(project: Project) -> Iterator[Problem]:
    """A tool-name alias is not unique: a topic's name, or listed twice.

    `aliases` maps the names an agent calls its tools by to catalog topics, so that a
    traced `charge_card` call is read as `payments.charge` (`agentundo timeline TRACE`,
    `agentundo recover --trace`). A name that is also a topic, or an alias of two topics
    (or twice of one), would map one tool call to two contracts: which one is undone
    would depend on the order topics are read in.

    Bad:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund}
            aliases: [charge_card, payments.refund]
          payments.refund:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: money returned is not taken back
            aliases: [charge_card]
    Good:
        topics:
          payments.charge:
            side_effect: true
            rollback: compensatable
            compensation: {topic: payments.refund}
            aliases: [charge_card]
          payments.refund:
            side_effect: true
            rollback: irreversible
            no_rollback_reason: money returned is not taken back
            aliases: [refund_charge]
    """
    first: dict[str, TopicEntry] = {}
    for entry in project.topics.values():
        for index, alias in enumerate(entry.topic.aliases or ()):
            where = entry.position("aliases", index)
            if alias in project.topics:
                yield Problem(
                    where,
                    f"alias '{alias}' of topic '{entry.name}' is the name of a topic",
                    "a tool named like a topic maps to that topic already; remove the alias",
                )
                continue
            earlier = first.setdefault(alias, entry)
            if earlier is not entry or alias in (entry.topic.aliases or ())[:index]:
                owner = "this topic" if earlier is entry else f"topic '{earlier.name}'"
                yield Problem(
                    where,
                    f"alias '{alias}' of topic '{entry.name}' is already an alias of {owner}",
                    "give each tool name to one topic",
                )
