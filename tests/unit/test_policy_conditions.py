"""Conditions on the job: three-valued, undecided rules give every outcome, never broader."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agentundo.load.files import load_file
from agentundo.model.common import Decision
from agentundo.model.foreign_policy import ForeignPolicy, convert, register
from agentundo.model.policy import Policy, Rule, When
from agentundo.policy.analysis import shadowing_rule
from agentundo.policy.compiled import CompiledPolicy
from agentundo.policy.conditions import (
    UNKNOWN_JOB,
    Compare,
    Job,
    JobCondition,
    RuleConditions,
    Tri,
)
from agentundo.policy.evaluate import Context, Outcome, evaluate, outcomes

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cordum"
SAFETY = FIXTURES / "config" / "safety.yaml"
FRAGMENT = FIXTURES / "mock-bank" / "overlays" / "policy.fragment.yaml"

TAGS = JobCondition("risk_tags", Compare.ANY_OF, "risk_tags", ("review", "Blocked"))
SOURCE = JobCondition("labels", Compare.LABELS, labels=(("_source", "workflow"),))
CAPABILITY = JobCondition("capabilities", Compare.ONE_OF, "capability", ("bank.pay",))
REQUIRES = JobCondition("requires", Compare.ALL_OF, "requires", ("net", "disk"))
SCANNERS = JobCondition("scanners", Compare.NOT_MODELLED)


def _converted(path: Path) -> Policy:
    register()
    model = load_file(path).model
    assert isinstance(model, ForeignPolicy)
    return convert(model).policy


def test_three_valued_and() -> None:
    assert Tri.TRUE & Tri.UNKNOWN is Tri.UNKNOWN
    assert Tri.UNKNOWN & Tri.FALSE is Tri.FALSE
    assert Tri.TRUE & Tri.TRUE is Tri.TRUE


def test_each_condition_on_a_known_an_unknown_and_a_complete_job() -> None:
    known = Job(
        {
            "risk_tags": frozenset({"blocked"}),
            "capability": "Bank.Pay",
            "requires": frozenset({"net"}),
        },
        {"_source": "api"},
    )
    assert TAGS.holds(known) is Tri.TRUE  # any of, case-insensitive
    assert CAPABILITY.holds(known) is Tri.TRUE
    assert REQUIRES.holds(known) is Tri.FALSE  # all of
    assert SOURCE.holds(known) is Tri.FALSE
    assert SCANNERS.holds(known) is Tri.UNKNOWN  # never evaluated
    for condition in (TAGS, SOURCE, CAPABILITY, REQUIRES):
        assert condition.holds(UNKNOWN_JOB) is Tri.UNKNOWN
        assert condition.holds(Job(complete=True)) is Tri.FALSE  # a step's job: absent is absent
    assert SOURCE.holds(Job(labels={"other": "x"})) is Tri.UNKNOWN  # that label not given
    assert RuleConditions((TAGS, SOURCE)).holds(known) is Tri.FALSE
    assert RuleConditions((TAGS, SCANNERS)).holds(known) is Tri.UNKNOWN
    assert RuleConditions((TAGS, SCANNERS)).describe(known) == "scanners (not modelled)"


def _rules(*decisions: Decision) -> list[Rule]:
    return [Rule(id=f"r{i}", when=When(), decision=d) for i, d in enumerate(decisions)]


def test_first_match_outcomes() -> None:
    rules = _rules(Decision.DENY, Decision.REQUIRE_HUMAN, Decision.ALLOW, Decision.DENY)
    found = outcomes(
        rules,
        "first_match",
        Decision.DENY,
        [(0, Tri.UNKNOWN), (1, Tri.FALSE), (2, Tri.UNKNOWN), (3, Tri.TRUE)],
    )
    assert found == (
        Outcome(Decision.DENY, 0, ((0, True),)),
        Outcome(Decision.ALLOW, 2, ((0, False), (2, True))),
        Outcome(Decision.DENY, 3, ((0, False), (2, False))),
    )
    certain = outcomes(rules, "first_match", Decision.DENY, [(2, Tri.TRUE), (3, Tri.UNKNOWN)])
    assert certain == (Outcome(Decision.ALLOW, 2),)
    default = outcomes(rules, "first_match", Decision.ALLOW, [(1, Tri.UNKNOWN)])
    assert default[-1] == Outcome(Decision.ALLOW, None, ((1, False),))


def test_most_restrictive_outcomes() -> None:
    rules = _rules(Decision.ALLOW, Decision.DENY, Decision.ALLOW, Decision.REQUIRE_HUMAN)
    found = outcomes(
        rules,
        "most_restrictive",
        Decision.ALLOW,
        [(0, Tri.TRUE), (1, Tri.UNKNOWN), (2, Tri.UNKNOWN), (3, Tri.TRUE)],
    )
    # the certain winner, and the one undecided rule that would be stricter
    assert found == (
        Outcome(Decision.REQUIRE_HUMAN, 3, ((1, False),)),
        Outcome(Decision.DENY, 1, ((1, True),)),
    )


def test_the_issue_mock_bank_low_transfer_is_allowed_not_denied() -> None:
    policy = _converted(FRAGMENT)
    low = Job({"risk_tags": frozenset({"finance", "transfer", "low"})})
    ctx = Context.for_topic("job.demo-mock-bank.transfer", None, env="production", job=low)
    evaluation = evaluate(policy, ctx)
    assert (evaluation.decision, evaluation.rule_id, evaluation.decided) == (
        Decision.ALLOW,
        "bank-transfer-allow",
        True,
    )
    unknown = evaluate(policy, Context.for_topic(ctx.topic, None, env="production"))
    assert not unknown.decided
    assert [o.decision for o in unknown.outcomes] == [
        Decision.DENY,
        Decision.REQUIRE_HUMAN,
        Decision.ALLOW,
        Decision.DENY,
    ]
    assert unknown.decision is Decision.DENY  # the gate that must answer fails closed


def test_no_shadowing_from_rules_with_job_conditions() -> None:
    # the issue: bank-transfer-review and b2b-api-review were said never to decide
    for path, rule in ((FRAGMENT, "bank-transfer-review"), (SAFETY, "b2b-api-review")):
        policy = _converted(path)
        index = [r.id for r in policy.rules].index(rule)
        assert shadowing_rule(policy, index) is None, rule
    # a fully modelled rule still shadows a narrower one with job conditions
    policy = Policy(
        version="v1",
        combining="first_match",
        default_decision=Decision.DENY,
        rules=[
            Rule(id="all", when=When(topic="job.*"), decision=Decision.ALLOW),
            Rule(id="tagged", when=When(topic="job.a"), decision=Decision.DENY),
        ],
    )
    compiled = CompiledPolicy(policy, (RuleConditions(), RuleConditions((TAGS,))))
    shadow = shadowing_rule(policy, 1, compiled)
    assert shadow is not None and shadow.id == "all"
    reversed_ = CompiledPolicy(policy, (RuleConditions((TAGS,)), RuleConditions()))
    assert shadowing_rule(policy, 1, reversed_) is None


_TOPICS = [
    "job.default",
    "job.b2b.orchestrate",
    "job.bank-validators.process",
    "job.demo-mock-bank.transfer",
    "job.cordclaw.file-write",
    "job.unknown",
    "sys.reboot",
]
_JOBS = st.builds(
    Job,
    facts=st.dictionaries(
        st.sampled_from(["risk_tags", "capability", "tenant"]),
        st.sampled_from(["low", "review", "blocked", "acme"]).map(str)
        | st.frozensets(st.sampled_from(["low", "review", "blocked", "finance"])),
        max_size=3,
    ),
    labels=st.dictionaries(
        st.sampled_from(["_source", "team"]), st.sampled_from(["workflow", "pack", "api"])
    ),
    complete=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(_TOPICS),
    _JOBS,
    st.booleans(),
    st.booleans(),
    st.sampled_from([SAFETY, FRAGMENT]),
)
def test_compiled_outcomes_agree_with_evaluate(
    topic: str, job: Job, approval: bool, compensation: bool, path: Path
) -> None:
    policy = _converted(path)
    compiled = CompiledPolicy(policy)
    ctx = Context.for_topic(
        topic,
        None,
        env="production",
        job=job,
        approval_present=approval,
        is_compensation=compensation,
    )
    evaluation = evaluate(policy, ctx)
    assert compiled.outcomes(ctx) == evaluation.outcomes
    decision, index = compiled.decide(ctx)
    assert decision is evaluation.decision
    assert (None if index is None else policy.rules[index]) == evaluation.rule
