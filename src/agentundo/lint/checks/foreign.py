"""Control-plane policy checks (AU31x): what a foreign policy says that agentundo cannot map
or model (decisions, conditions on the job, content rules, fail modes, tenant lists).

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
    """A rule matches on `risk_tags`, which are labels of the job, not risk levels.

    In a control plane such as Cordum, `risk_tags` are free labels a job carries (set
    by the workflow step's `meta.risk_tags`, or derived from its content), not the
    catalog's `risk:`, even when a tag is called `low` or `high`. Lint cannot see which
    jobs carry them, so the rule is *undecided*: it may or may not match. It is never
    read as matching more: lint derives no shadowing (AU305) from it, gate checks report
    each possible outcome with the condition it assumes, `explain --risk-tag TAG`
    decides it, and a drill of a Cordum workflow takes the tags from each step's `meta`.

    Bad:
        rules:
          - match: {topics: ["payments.*"], risk_tags: [review]}
            decision: require_approval
    Good:
        # the same rule, with a suppression that says where the tag comes from
        rules:
          - match: {topics: ["payments.*"], risk_tags: [review]}  # agentundo: ignore[AU312] set by the workflow
            decision: require_approval
    """
    yield from _notes(project, "AU312")


@check("AU313", "foreign-match-key-unknown", Severity.WARNING, "foreign")
def foreign_match_key_unknown(project: Project) -> Iterator[Problem]:
    """A `match:` condition depends on the job, or is not modelled: the rule is undecided.

    `labels`, `tenants`, `capabilities`, `pack_ids`, `actor_ids`, `actor_types` and
    `requires` are conditions on the job that lint cannot see (`explain --label`
    decides labels; a drill of a Cordum workflow takes them from the step). Other keys
    (`scanners`, `label_threshold`, `delegation`, ...) are not modelled at all. Either
    way the rule may or may not match: lint derives no shadowing (AU305) from it and
    never reads it as matching more than it does.

    Bad:
        rules:
          - match: {topics: ["db.*"], secrets_present: true}
            decision: deny
    Good:
        rules:
          - match: {topics: ["db.*"]}
            decision: deny
    """
    yield from _notes(project, "AU313")


@check("AU314", "foreign-fail-mode-unknown", Severity.WARNING, "foreign")
def foreign_fail_mode_unknown(project: Project) -> Iterator[Problem]:
    """`input_policy.fail_mode` or `output_policy.fail_mode` is neither `open` nor `closed`.

    `input_policy.fail_mode` says what happens to a job while the policy engine is down:
    `closed` holds it, `open` lets it through. A drill that uses the policy takes it as
    its `policy_fail_mode` (unless the scenario or `--policy-fail-mode` sets one); an
    unknown value is ignored there.

    Bad:
        input_policy: {fail_mode: requeue}
    Good:
        input_policy: {fail_mode: closed}
    """
    yield from _notes(project, "AU314")


@check("AU315", "foreign-content-rules-not-modelled", Severity.INFO, "foreign")
def foreign_content_rules_not_modelled(project: Project) -> Iterator[Problem]:
    """The policy has `input_rules` or `output_rules`, which scan job content.

    They decide from what a job's input or output contains (prompt injection, PII,
    secrets, size), which no catalog states: agentundo does not evaluate them. A
    dispatch that agentundo allows may still be held for approval or denied by an input
    rule, and an output may be quarantined. Rehearse those with gate faults.

    Bad:
        input_rules:
          - match: {topics: ["job.*"], scanners: [pii]}
            decision: deny
    Good:
        # the same; the finding is a reminder, suppress it once read
        input_rules:  # agentundo: ignore[AU315] PII rehearsed with compensation_denied faults
          - match: {topics: ["job.*"], scanners: [pii]}
            decision: deny
    """
    yield from _notes(project, "AU315")


@check("AU316", "foreign-tenant-lists-unused", Severity.WARNING, "foreign")
def foreign_tenant_lists_unused(project: Project) -> Iterator[Problem]:
    """`tenants.NAME.deny_topics` or `allow_topics` is set next to `rules:`, which wins.

    Cordum consults a tenant's topic lists only when the policy has no rules; with
    rules, a `deny_topics` entry denies nothing. (In a policy without rules the lists
    are read as rules, deny first, each for its tenant.)

    Bad:
        rules:
          - match: {topics: ["job.*"]}
            decision: allow
        tenants:
          default: {deny_topics: ["sys.*"]}
    Good:
        rules:
          - match: {topics: ["sys.*"]}
            decision: deny
          - match: {topics: ["job.*"]}
            decision: allow
    """
    yield from _notes(project, "AU316")
