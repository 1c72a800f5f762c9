"""Control-plane policy checks (AU31x): what a foreign policy says that agentundo cannot map.

Policies of other agent control planes (rules with ``match:``) are converted by
:mod:`agentundo.model.foreign_policy`; every other check then sees them as first-match
policies. These checks report the parts that do not map exactly, at their position.
"""

from __future__ import annotations

from collections.abc import Iterator

from agentundo.lint.finding import Severity
from agentundo.lint.project import Problem, Project
from agentundo.lint.registry import check
from agentundo.load.foreign import KIND


def _notes(project: Project, code: str) -> Iterator[Problem]:
    for file in project.files:
        if file.kind == KIND:
            # the model is imported only when a foreign policy was loaded
            from agentundo.model.foreign_policy import convert

            for note in convert(file.model).notes:
                if note.code == code:
                    yield Problem(file.position(*note.path, key=note.key), note.message, note.hint)


@check("AU310", "foreign-decision-unknown", Severity.ERROR, "foreign")
def foreign_decision_unknown(project: Project) -> Iterator[Problem]:
    """A control-plane policy uses a decision agentundo does not know; it is checked as deny.

    Known decisions: `allow`/`permit`, `deny`/`block`, `require_approval`
    (`require-approval`, `approval_required`), and `allow_with_constraints`/`throttle`
    (checked as allow, see AU311). Case and `-`/`_` do not matter.

    Bad:
        rules:
          - match: {topics: ["payments.*"]}
            decision: escalate
    Good:
        rules:
          - match: {topics: ["payments.*"]}
            decision: require_approval
    """
    yield from _notes(project, "AU310")


@check("AU311", "foreign-constraint-not-modelled", Severity.WARNING, "foreign")
def foreign_constraint_not_modelled(project: Project) -> Iterator[Problem]:
    """A control-plane policy allows with constraints (or throttles); agentundo checks it as allow.

    The constraint (a rate limit, a spending cap, an allow-list) is enforced by the
    control plane, not modelled here: every gate check treats the action as allowed.

    Bad:
        rules:
          - match: {topics: ["infra.*"]}
            decision: allow_with_constraints
            constraints: {max_per_hour: 3}
    Good:
        rules:
          - match: {topics: ["infra.*"]}
            decision: require_approval
    """
    yield from _notes(project, "AU311")


@check("AU312", "foreign-risk-tag-unmapped", Severity.WARNING, "foreign")
def foreign_risk_tag_unmapped(project: Project) -> Iterator[Problem]:
    """A `risk_tags` entry is not a risk level, so the condition cannot be checked.

    Tags `low`, `medium`, `high` and `critical` map onto the catalog's `risk:`; other
    tags are left out of the rule (when no tag maps, the rule matches every risk).

    Bad:
        rules:
          - match: {topics: ["crm.*"], risk_tags: [pii]}
            decision: deny
    Good:
        rules:
          - match: {topics: ["crm.*"], risk_tags: [high, critical]}
            decision: deny
    """
    yield from _notes(project, "AU312")


@check("AU313", "foreign-match-key-unknown", Severity.WARNING, "foreign")
def foreign_match_key_unknown(project: Project) -> Iterator[Problem]:
    """A `match:` key has no equivalent in agentundo, so the rule is checked without it.

    agentundo maps `topics` and `risk_tags`; other conditions (tenants, labels,
    capabilities, ...) are dropped, so the rule is checked as matching more dispatches
    than it does in the control plane.

    Bad:
        rules:
          - match: {topics: ["db.*"], tenants: [acme]}
            decision: deny
    Good:
        rules:
          - match: {topics: ["db.*"]}
            decision: deny
    """
    yield from _notes(project, "AU313")
