"""Policy rule checks (AU3xx, rule hygiene): ids, shadowed rules, dead globs."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project
from agentundo.lint.registry import check
from agentundo.policy.analysis import shadowing_rule

_META = frozenset("*?[")


class TopicIndex:
    """Answers "does this glob match any topic?" without scanning for the common shapes."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        self.exact = frozenset(self.names)

    def matches(self, pattern: str) -> bool:
        if not _META & set(pattern):
            return pattern in self.exact
        head = pattern[:-1]
        if pattern.endswith("*") and not _META & set(head):
            at = bisect.bisect_left(self.names, head)
            return at < len(self.names) and self.names[at].startswith(head)
        return any(fnmatchcase(name, pattern) for name in self.names)


@check("AU304", "duplicate-rule-id", Severity.ERROR, "policy")
def duplicate_rule_id(project: Project) -> Iterator[Problem]:
    """Two rules of one policy share an `id`.

    Evidence records the id of the rule that decided; a repeated id makes the record
    ambiguous during an incident.

    Bad:
        rules:
          - {id: prod-writes, when: {env: production}, decision: require_human}
          - {id: prod-writes, when: {env: staging}, decision: allow}
    Good:
        rules:
          - {id: prod-writes, when: {env: production}, decision: require_human}
          - {id: staging-writes, when: {env: staging}, decision: allow}
    """
    for entry in project.policies:
        seen: dict[str, int] = {}
        for index, rule in enumerate(entry.policy.rules):
            if rule.id in seen:
                first = entry.rule_position(seen[rule.id])
                yield Problem(
                    entry.file.position("rules", index, "id"),
                    f"rule id '{rule.id}' is already used by the rule at line {first.line}",
                    "give every rule a unique id",
                )
            else:
                seen[rule.id] = index


@check("AU305", "shadowed-rule", Severity.WARNING, "policy")
def shadowed_rule(project: Project) -> Iterator[Problem]:
    """A rule can never be the decision: another rule always wins over it.

    With `most_restrictive` combining a rule is shadowed by a stricter rule, or an
    earlier rule with the same decision, that matches everything it matches; with
    `first_match` by any earlier rule that matches everything it matches. A control
    plane's rule with conditions on the job (labels, risk tags, ...) shadows nothing:
    it matches only some jobs of its topics.

    Bad:
        rules:
          - {id: deny-infra, when: {topic: "infra.*"}, decision: deny}
          - {id: human-for-dns, when: {topic: infra.dns.create}, decision: require_human}
    Good:
        rules:
          - {id: deny-infra, when: {topic: "infra.*", env: production}, decision: deny}
          - {id: human-for-dns, when: {topic: infra.dns.create}, decision: require_human}
    """
    for entry in project.policies:
        rules = entry.policy.rules
        by_id: dict[str, list[int]] = {}  # equal rules have equal ids: compare few
        for index, rule in enumerate(rules):
            by_id.setdefault(rule.id, []).append(index)
        for index, rule in enumerate(rules):
            winner = shadowing_rule(entry.policy, index, entry.compiled)
            if winner is not None:
                first = next(i for i in by_id[winner.id] if rules[i] == winner)
                line = entry.rule_position(first).line
                yield Problem(
                    entry.rule_position(index),
                    f"rule '{rule.id}' can never decide: rule '{winner.id}' (line {line}) "
                    f"matches everything it matches and wins",
                    "narrow the other rule, or delete this one",
                )


@check("AU306", "topic-glob-matches-nothing", Severity.WARNING, "policy")
def topic_glob_matches_nothing(project: Project) -> Iterator[Problem]:
    """A rule's `topic` pattern matches no topic in the catalog.

    Usually a typo or a renamed topic: the rule silently stops applying.

    Bad:
        when: {topic: "payment.*"}   # the catalog has payments.charge
    Good:
        when: {topic: "payments.*"}
    """
    if not project.has_catalog:
        return
    names = TopicIndex(project.topics)
    for entry in project.policies:
        for index, rule in enumerate(entry.policy.rules):
            patterns = rule.when.topic
            if patterns is None:
                continue
            for pattern in patterns if isinstance(patterns, list) else [patterns]:
                if not names.matches(pattern):
                    yield Problem(
                        entry.topic_position(index),
                        f"topic pattern '{pattern}' of rule '{rule.id}' matches no catalog topic",
                    )
