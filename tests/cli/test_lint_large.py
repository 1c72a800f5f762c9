"""`agentundo lint -f json` over a mid-size generated project gives exactly the findings it
gave before the checks were made faster (issue 16).

The project is bench/gen_large.py's (500 topics, 300 rules, 100 workflows), next to
tests/fixtures/lint_large/defects (contract defects, a second policy that allows by
default, a ``first_match`` policy, workflows that are denied, wait for humans or break
the pivot rule) and sample-policies; and, apart, tests/fixtures/cordum with a control
plane's policy whose rules test job facts (tests/fixtures/lint_large/control-plane), the
defects and the samples. Both are linted in production and staging. The golden file was written by the checks as they were before
the work on their speed; regenerate it only when a finding is meant to change:

    python -m tests.cli.test_lint_large
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.cli_runner import invoke

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "lint_large"
ARGS = ("lint", "-f", "json", "--no-cache", "-e", "production", "-e", "staging")
RUNS = {
    "generated": ("generated", "defects", "samples"),
    "cordum": ("cordum", "control-plane", "defects", "samples"),
}
"""Golden file name -> the directories linted together. A control plane's policies deny
most of the generated workflows, so they are linted with the small projects only."""


def build(target: Path) -> None:
    """The directories :data:`RUNS` names, under ``target``."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gen_large import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    generate(target / "generated", topics=500, rules=300, workflows=100)
    fixtures = ROOT / "tests" / "fixtures" / "lint_large"
    shutil.copytree(fixtures / "defects", target / "defects")
    shutil.copytree(fixtures / "control-plane", target / "control-plane")
    shutil.copytree(ROOT / "sample-policies", target / "samples")
    shutil.copytree(ROOT / "tests" / "fixtures" / "cordum", target / "cordum")


def lint_json(target: Path, paths: tuple[str, ...]) -> str:
    result = invoke(*ARGS, *paths, cwd=target)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_findings_of_the_large_project_are_unchanged(tmp_path: Path) -> None:
    build(tmp_path)
    for name, paths in RUNS.items():
        golden = GOLDEN / f"{name}.json"
        assert lint_json(tmp_path, paths) == golden.read_text(encoding="utf-8"), name


def test_the_golden_files_cover_the_checks_made_faster() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.json")))
    for code in ("AU201", "AU203", "AU204", "AU205", "AU206", "AU301", "AU302", "AU303"):
        assert f'"code": "{code}"' in text
    for code in ("AU305", "AU306", "AU403", "AU405", "AU406", "AU407"):
        assert f'"code": "{code}"' in text
    assert "when the job" in text  # an outcome that depends on a job's undecided facts


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        build(Path(scratch))
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, paths in RUNS.items():
            (GOLDEN / f"{name}.json").write_text(lint_json(Path(scratch), paths), "utf-8")
            print(f"wrote {(GOLDEN / name).relative_to(ROOT)}.json")
