"""Generate a large, realistic lint input: N topics, R policy rules, W workflows.

    python bench/gen_large.py OUT_DIR --topics 10000 --rules 1000 --workflows 1000

Topics cycle through the three rollback classes with valid contracts, rules mix exact
topics, prefix globs and generic conditions, workflows use 5-10 steps each.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

DOMAINS = ("payments", "iam", "infra", "tickets", "messaging", "crm", "billing", "storage")


def topic_name(i: int) -> str:
    return f"{DOMAINS[i % len(DOMAINS)]}.svc{i // 100}.action{i}"


def catalog(topics: int) -> str:
    out = ["version: v1", "kind: catalog", "topics:"]
    for i in range(topics):
        name = topic_name(i)
        kind = i % 4
        out.append(f"  {name}:")
        if kind == 0:
            out.append("    side_effect: false")
            continue
        out += [
            "    side_effect: true",
            f"    risk: {('low', 'medium', 'high', 'critical')[i % 4]}",
            '    idempotency_key: "{run_id}:{step_id}"',
        ]
        if kind == 3:
            out += ["    rollback: irreversible", "    no_rollback_reason: cannot be recalled"]
        else:
            out += [
                f"    rollback: {'reversible' if kind == 1 else 'compensatable'}",
                "    compensation:",
                f"      topic: {name}.undo",
                '      idempotency_key: "{run_id}:{step_id}:compensate"',
                "      timeout: 10s",
            ]
            out += [
                f"  {name}.undo:",
                "    side_effect: true",
                "    rollback: irreversible",
                "    risk: low",
                "    no_rollback_reason: an undo is not undone",
                '    idempotency_key: "{run_id}:{step_id}:undo"',
            ]
    return "\n".join(out) + "\n"


def policy(rules: int, topics: int, rng: random.Random) -> str:
    out = [
        "version: v1",
        "kind: policy",
        "rules:",
        "  - id: human-for-unrecoverable",
        "    when: {side_effect: true, rollback_supported: false, risk: [high, critical]}",
        "    decision: require_human",
        "  - id: allow-compensations",
        "    when: {is_compensation: true}",
        "    decision: allow",
    ]
    for r in range(rules - 2):
        shape = r % 3
        if shape == 0:
            when = f"{{topic: {topic_name(rng.randrange(topics))}, env: staging}}"
        elif shape == 1:
            when = f"{{topic: '{DOMAINS[r % len(DOMAINS)]}.svc{r % 97}.*', approval_present: true}}"
        else:
            when = f"{{env: [dev, test{r}], risk: low}}"
        out += [f"  - id: rule-{r}", f"    when: {when}", "    decision: allow"]
    return "\n".join(out) + "\n"


def workflow(index: int, topics: int, rng: random.Random) -> str:
    out = ["version: v1", f"workflow: wf-{index}", "env: staging", "steps:"]
    for s in range(rng.randrange(5, 11)):
        # read-only and compensatable topics only, so no pivot ordering findings
        t = rng.randrange(topics) // 4 * 4 + rng.choice((0, 1, 2))
        out.append(f"  - {{id: s{s}, topic: {topic_name(min(t, topics - 1))}, params: {{n: {s}}}}}")
    return "\n".join(out) + "\n"


def generate(out: Path, *, topics: int, rules: int, workflows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "catalog.yaml").write_text(catalog(topics))
    (out / "policy.yaml").write_text(policy(rules, topics, rng))
    flows = out / "workflows"
    flows.mkdir(exist_ok=True)
    for w in range(workflows):
        (flows / f"wf-{w:04d}.yaml").write_text(workflow(w, topics, rng))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--workflows", type=int, default=1_000)
    args = parser.parse_args()
    generate(args.out, topics=args.topics, rules=args.rules, workflows=args.workflows)


if __name__ == "__main__":
    main()
