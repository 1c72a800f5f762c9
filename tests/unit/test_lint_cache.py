"""The lint cache: a hit only for exactly the same inputs, options and code.

Each test lints real files twice (or edits them in between) through
:func:`agentundo.lint.cache.lint`; a replayed result names its files as
:class:`~agentundo.lint.cache.CachedFile`, which is how a hit is told from a lint.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from agentundo.lint import cache
from agentundo.lint.engine import LintResult, PerFileIgnores
from agentundo.lint.finding import Severity
from tests.samples import FINDINGS_CATALOG, FINDINGS_POLICY, catalog

WORKFLOW = """\
version: v1
workflow: refund
env: staging
steps:
  - {id: charge, topic: payments.charge, params: {amount: 5}}
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "p" / "catalog.yaml", FINDINGS_CATALOG)
    _write(tmp_path / "p" / "policy.yaml", FINDINGS_POLICY)
    _write(tmp_path / "p" / "workflows" / "refund.yaml", WORKFLOW)
    return tmp_path


def _options(**changes: object) -> cache.Options:
    values: dict[str, object] = {
        "envs": ("production",),
        "select": (),
        "ignore": (),
        "per_file_ignores": PerFileIgnores(),
    }
    values.update(changes)
    return cache.Options(**values)  # type: ignore[arg-type]


def _lint(where: Path | None, *targets: str, **changes: object) -> LintResult:
    return cache.lint(targets or ("p",), _options(**changes), fail_on=Severity.ERROR, cache=where)


def _replayed(result: LintResult) -> bool:
    return bool(result.files) and all(isinstance(f, cache.CachedFile) for f in result.files)


def _same(a: LintResult, b: LintResult) -> None:
    assert a.findings == b.findings
    assert [(f.path, f.kind) for f in a.files] == [(f.path, f.kind) for f in b.files]
    assert [e.describe() for e in a.input_errors] == [e.describe() for e in b.input_errors]
    assert (a.checks, a.suppressed, a.passed_over) == (b.checks, b.suppressed, b.passed_over)


def test_the_same_inputs_replay_the_same_result(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    first = _lint(where)
    assert not _replayed(first)
    second = _lint(where)
    assert _replayed(second)
    _same(first, second)
    assert [f.code for f in second.findings] == ["AU101", "AU305"]
    assert (where / "CACHEDIR.TAG").is_file()


def test_editing_a_catalog_changes_the_workflow_findings(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    assert "AU401" not in [f.code for f in _lint(where).findings]
    # the workflow file is untouched; its step's topic leaves the catalog
    _write(project / "p" / "catalog.yaml", catalog().replace("payments.charge", "payments.debit"))
    edited = _lint(where)
    assert not _replayed(edited)
    unknown = [f for f in edited.findings if f.code == "AU401"]
    assert [f.path for f in unknown] == [os.path.join("p", "workflows", "refund.yaml")]
    assert _replayed(_lint(where))
    _write(project / "p" / "catalog.yaml", FINDINGS_CATALOG)  # back as it was: its entry again
    back = _lint(where)
    assert _replayed(back)
    assert "AU401" not in [f.code for f in back.findings]


def test_a_new_file_a_removed_file_and_a_missing_path_are_misses(
    project: Path, tmp_path: Path
) -> None:
    where = tmp_path / "cache"
    _lint(where)
    _write(project / "p" / "workflows" / "second.yaml", WORKFLOW.replace("refund", "second"))
    grown = _lint(where)
    assert not _replayed(grown)
    assert len(grown.files) == 4
    (project / "p" / "workflows" / "second.yaml").unlink()
    assert len(_lint(where).files) == 3
    missing = _lint(where, "p", "absent.yaml")
    assert [e.describe() for e in missing.input_errors] == [
        "absent.yaml: error: no such file or directory"
    ]
    _write(project / "absent.yaml", WORKFLOW)
    present = _lint(where, "p", "absent.yaml")
    assert not _replayed(present)
    assert not present.input_errors


@pytest.mark.parametrize(
    "changes",
    [
        {"envs": ("staging",)},
        {"select": ("AU1",)},
        {"ignore": ("AU305",)},
        {"per_file_ignores": PerFileIgnores([("p/catalog.yaml", ("AU101",))])},
    ],
)
def test_other_options_are_other_entries(
    changes: dict[str, object], project: Path, tmp_path: Path
) -> None:
    where = tmp_path / "cache"
    plain = _lint(where)
    other = _lint(where, **changes)
    assert not _replayed(other)
    assert _replayed(_lint(where, **changes))
    assert _replayed(_lint(where))
    if "envs" not in changes:
        assert other.findings != plain.findings


def test_the_same_files_named_otherwise_are_another_entry(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    _lint(where)
    named = _lint(where, "p/catalog.yaml", "p/policy.yaml", "p/workflows/refund.yaml")
    assert not _replayed(named)
    sub = project / "p"
    os.chdir(sub)
    moved = _lint(where, ".")
    assert not _replayed(moved)  # the same bytes, reported under other paths
    assert {f.path for f in moved.findings} == {"catalog.yaml", "policy.yaml"}


def test_no_cache_reads_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    first = _lint(None)
    second = _lint(None)
    assert not _replayed(first) and not _replayed(second)
    assert not (tmp_path / "cache").exists()


def test_a_damaged_entry_is_a_miss_and_is_written_again(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    expected = _lint(where)
    [entry] = where.glob("*.json")
    for damage in ("", "{", '{"format": 2}', '{"format": 99, "files": []}', "[1, 2]"):
        entry.write_text(damage, encoding="utf-8")
        again = _lint(where)
        assert not _replayed(again)
        _same(expected, again)
    assert _replayed(_lint(where))


def test_an_unreadable_input_is_never_cached(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    (project / "p" / "gone.yaml").symlink_to(project / "nowhere.yaml")  # found, unreadable
    result = _lint(where)
    assert [e.describe() for e in result.input_errors] == [
        f"{os.path.join('p', 'gone.yaml')}: error: no such file or directory"
    ]
    assert not list(where.glob("*.json"))
    assert not _replayed(_lint(where))


def test_a_cache_that_cannot_be_written_is_no_error(project: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("", encoding="utf-8")
    result = _lint(blocked / "cache")
    assert [f.code for f in result.findings] == ["AU101", "AU305"]


def test_input_errors_and_passed_over_files_are_replayed(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    _write(project / "p" / "broken.yaml", "version: v1\nversion: v1\ntopics: {}\n")
    _write(project / "p" / "compose.yaml", "services: {web: {image: nginx}}\n")
    first = _lint(where)
    second = _lint(where)
    assert _replayed(second)
    _same(first, second)
    assert second.input_errors[0].position.line == 2
    assert [p.path for p in second.passed_over] == [os.path.join("p", "compose.yaml")]
    assert second.exit_code() == 2


def test_only_the_newest_entries_are_kept(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "cache"
    monkeypatch.setattr(cache, "KEEP", 2)
    for env in ("a", "b", "c", "d"):
        _lint(where, envs=(env,))
    assert len(list(where.glob("*.json"))) == 2
    assert _replayed(_lint(where, envs=("d",)))
    assert not _replayed(_lint(where, envs=("a",)))


def test_the_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTUNDO_CACHE_DIR", "/somewhere/else")
    assert cache.directory() == Path("/somewhere/else")
    monkeypatch.delenv("AGENTUNDO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache.directory() == Path("/xdg/agentundo")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not absolute: ignored, as the spec says
    monkeypatch.setenv("HOME", "/home/someone")
    assert cache.directory() == Path("/home/someone/.cache/agentundo")


def _documents(where: Path) -> set[str]:
    return {p.name for p in (where / "documents").glob("*.marshal")}


def test_after_an_edit_only_the_edited_file_is_parsed_again(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    _lint(where)
    before = _documents(where)
    assert len(before) == 3
    flow = project / "p" / "workflows" / "refund.yaml"
    _write(flow, WORKFLOW.replace("payments.charge", "payments.nowhere"))
    edited = _lint(where)
    after = _documents(where)
    assert before < after and len(after) == 4  # one new document: the workflow's
    fresh = _lint(None)
    assert edited.findings == fresh.findings
    assert [f.code for f in edited.findings] == ["AU101", "AU305", "AU401"]
    loaded = [f for f in edited.files if not isinstance(f, cache.CachedFile)]
    assert len(loaded) == 3


def test_a_stored_document_is_the_parsed_one(tmp_path: Path) -> None:
    from agentundo.load.yamlpos import decode, parse

    raw = b"version: v1  # agentundo: ignore[AU101] why\ntopics:\n  a: {side_effect: false}\n"
    doc = parse(decode(raw, "c.yaml"), "c.yaml")
    store = cache.Documents(tmp_path)
    assert store.get("c.yaml", raw) is None
    store.put("c.yaml", raw, doc)
    again = store.get("c.yaml", raw)
    assert again is not None and again is not doc
    assert (again.path, again.data, again.values, again.keys, again.comments, again.nulls) == (
        doc.path,
        doc.data,
        doc.values,
        doc.keys,
        doc.comments,
        False,
    )
    assert store.get("other.yaml", raw) is None  # positions name their file: another entry
    assert store.get("c.yaml", raw + b"\n") is None


def test_a_damaged_document_is_parsed_again(project: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    expected = _lint(where)
    for entry in (where / "documents").glob("*.marshal"):
        entry.write_bytes(b"\x00garbage")
    for entry in where.glob("*.json"):
        entry.unlink()
    again = _lint(where)
    assert not _replayed(again)
    _same(expected, again)


def test_a_working_directory_that_is_gone_has_no_key(project: Path, tmp_path: Path) -> None:
    options = _options()
    target = str(project / "p")
    assert cache.key([target], options) is not None
    gone = tmp_path / "gone"
    gone.mkdir()
    os.chdir(gone)
    gone.rmdir()
    assert cache.key([target], options) is None
