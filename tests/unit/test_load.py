"""The loader turns every kind of bad input into a positioned error, never a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agentundo.errors import InputError, InputErrors, Position
from agentundo.load.files import load_file, load_paths
from agentundo.load.yamlpos import decode, parse

CATALOG = "version: v1\ntopics:\n  tickets.read:\n    side_effect: false\n"


def error_of(tmp_path: Path, content: str | bytes, name: str = "f.yaml") -> InputError:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises((InputError, InputErrors)) as caught:
        load_file(path)
    error = caught.value
    if isinstance(error, InputErrors):
        return error.errors[0]
    return error


def where(error: InputError) -> tuple[int, int]:
    return error.position.line, error.position.column


def test_valid_catalog_loads_with_positions(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    loaded = load_file(path)
    assert loaded.kind == "catalog"
    assert loaded.model.topics["tickets.read"].side_effect is False
    assert str(loaded.position("topics", "tickets.read", "side_effect")) == f"{path}:4:18"
    assert str(loaded.position("topics", "tickets.read", key=True)) == f"{path}:3:3"


def test_duplicate_key(tmp_path: Path) -> None:
    error = error_of(tmp_path, CATALOG + "  tickets.read:\n    side_effect: true\n")
    assert where(error) == (5, 3)
    assert "duplicate key 'tickets.read' (first defined at line 3)" in error.message


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    error = error_of(tmp_path, CATALOG + "    rollbak: reversible\n")
    assert where(error) == (5, 5)
    assert error.message == "unknown key 'rollbak' in topics.tickets.read"
    assert error.hint == "did you mean 'rollback'?"


def test_wrong_type(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: v1\ntopics:\n  a.b:\n    side_effect: maybe\n")
    assert where(error) == (4, 18)
    assert error.message == "topics.a.b.side_effect must be boolean, not a string"


def test_yaml_11_boolean_is_rejected(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: v1\nworkflow: w\nenv: no\nsteps:\n  - {id: a, topic: t}\n")
    assert where(error) == (3, 6)
    assert "ambiguous value 'no'" in error.message
    assert error.hint is not None and '"no"' in error.hint


def test_quoted_no_is_a_string(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text('version: v1\nworkflow: w\nenv: "no"\nsteps:\n  - {id: a, topic: t}\n')
    assert load_file(path).model.env == "no"


def test_bad_enum_value_lists_choices(tmp_path: Path) -> None:
    error = error_of(
        tmp_path, "version: v1\ntopics:\n  a.b:\n    side_effect: true\n    rollback: undoable\n"
    )
    assert where(error) == (5, 15)
    assert "expected one of: reversible, compensatable, irreversible" in error.message


def test_missing_required_key(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: v1\nrules:\n  - id: r\n    when: {}\n")
    assert where(error) == (3, 5)
    assert error.message == "rules[0] is missing 'decision'"


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ["version: v1", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    started = time.perf_counter()
    error = error_of(tmp_path, "\n".join(lines) + "\n")
    assert time.perf_counter() - started < 10
    assert "aliases" in error.message


def test_binary_file(tmp_path: Path) -> None:
    error = error_of(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert error.message == "file looks binary (it contains NUL bytes)"


def test_non_utf8_file_names_the_byte_and_place(tmp_path: Path) -> None:
    error = error_of(tmp_path, b"version: v1\nworkflow: caf\xe9\n")
    assert where(error) == (2, 14)
    assert "not valid UTF-8 (byte 0xe9)" in error.message


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    assert error_of(tmp_path, content).message == "file is empty"


def test_syntax_error_has_position(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: v1\ntopics: {a: [1, 2}\n")
    assert error.position.line == 2
    assert error.message.startswith("YAML syntax error:")


def test_python_tags_are_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: !!python/object/apply:os.system ['true']\n")
    assert "unsupported YAML tag" in error.message


def test_top_level_list_is_not_a_format(tmp_path: Path) -> None:
    assert error_of(tmp_path, "- a\n- b\n").message == "expected a mapping at the top level"


def test_unrecognised_document(tmp_path: Path) -> None:
    assert (
        error_of(tmp_path, "version: v1\nhello: world\n").message == "cannot tell what this file is"
    )


def test_unknown_kind(tmp_path: Path) -> None:
    error = error_of(tmp_path, "kind: catalogue\nversion: v1\n")
    assert error.message.startswith("unknown kind 'catalogue'")


@pytest.mark.parametrize(
    ("value", "named"), [("[catalog]", "a list"), ("{a: 1}", "a mapping"), ("3", "a number")]
)
def test_a_kind_that_is_not_a_string(tmp_path: Path, value: str, named: str) -> None:
    error = error_of(tmp_path, f"version: v1\nkind: {value}\ntopics: {{}}\n")
    assert error.message == f"'kind' must be a string, not {named}"
    assert where(error) == (2, 7)


def test_multiple_documents(tmp_path: Path) -> None:
    error = error_of(tmp_path, CATALOG + "---\n" + CATALOG)
    assert "single document" in error.message


def test_deep_nesting_is_bounded(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: v1\ntopics: " + "[" * 200 + "]" * 200 + "\n")
    assert "nesting" in error.message or "deep" in error.message


def test_missing_paths_and_carrying_on(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(CATALOG)
    (tmp_path / "bad.yaml").write_text("version: v1\ntopics: [\n")
    files, errors = load_paths([str(tmp_path), str(tmp_path / "nope.yaml")])
    assert [Path(f.path).name for f in files] == ["good.yaml"]
    messages = sorted(e.message.split(":")[0] for e in errors)
    assert messages == ["YAML syntax error", "no such file or directory"]


def test_merge_keys_are_supported(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: v1\n"
        "topics:\n"
        "  a.b: &base {side_effect: true, rollback: irreversible, no_rollback_reason: x}\n"
        "  a.c:\n"
        "    <<: *base\n"
        "    risk: high\n"
    )
    topic = load_file(path).model.topics["a.c"]
    assert topic.rollback == "irreversible"
    assert topic.risk == "high"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    try:
        parse(decode(raw, "x.yaml"), "x.yaml")
    except InputError as error:
        assert error.position.path == "x.yaml"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"\n #,?%@`")), max_size=60))
def test_yaml_punctuation_never_crashes(text: str) -> None:
    try:
        parse(text, "x.yaml")
    except InputError as error:
        assert error.position.line >= 1


def test_only_safe_loading_is_used() -> None:
    source = Path(__file__).parents[2] / "src" / "agentundo"
    offenders = [
        str(p)
        for p in source.rglob("*.py")
        if "yaml.load(" in p.read_text()
        or "yaml.unsafe" in p.read_text()
        or "yaml.full_load" in p.read_text()
    ]
    assert offenders == []
    assert yaml.SafeLoader is not None


def test_other_yaml_inside_a_directory_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "ci.yml").write_text("on: [push]\njobs: {lint: {runs-on: ubuntu-latest}}\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "typo.yaml").write_text("version: v1\ntopic: {}\n")
    files, errors = load_paths([str(tmp_path)])
    assert [Path(f.path).name for f in files] == ["catalog.yaml"]
    assert [Path(e.position.path).name for e in errors] == ["typo.yaml"]


def test_other_yaml_named_explicitly_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ci.yml"
    path.write_text("jobs: {}\n")
    files, errors = load_paths([str(path)])
    assert files == []
    assert [e.message for e in errors] == ["cannot tell what this file is"]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("# a catalog\n\nversion: v1\nkind: catalog\ntopics: {}\n", (4, 1)),  # the kind: key
        ("# a catalog\n\nversion: v1\ntopics: {}\n", (1, 1)),  # no kind: the file's start
    ],
)
def test_a_file_of_the_wrong_kind_points_at_its_kind(
    tmp_path: Path, text: str, position: tuple[int, int]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_file(path, expect="workflow")
    assert caught.value.message == "expected a workflow file, found a catalog file"
    assert where(caught.value) == position
    assert load_file(path).kind_position() == Position(str(path), *position)


def test_a_directory_without_agentundo_files_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "ci"
    other.mkdir()
    (other / "workflow.yml").write_text("name: ci\non: push\n", encoding="utf-8")
    (other / "notes.txt").write_text("version: v1\n", encoding="utf-8")
    ours = tmp_path / "ours"
    (ours / "deep").mkdir(parents=True)
    (ours / "deep" / "c.yaml").write_text(CATALOG, encoding="utf-8")
    files, errors = load_paths([empty, other, ours])
    assert [f.path for f in files] == [str(ours / "deep" / "c.yaml")]
    assert [(e.position.path, e.message) for e in errors] == [
        (str(empty), f"no agentundo files found under {empty}"),
        (str(other), f"no agentundo files found under {other}"),
    ]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.yaml").write_text("version: v1\ntopics: [\n", encoding="utf-8")
    _, errors = load_paths([broken])
    assert [e.message for e in errors] != [f"no agentundo files found under {broken}"]
    assert len(errors) == 1  # the broken file is ours: its own error, not "none found"


@pytest.mark.parametrize(
    ("content", "at", "message"),
    [
        (
            "version: v1\nrules:\n  - id: a\n    when: {topic: [1, null]}\n    decision: deny\n",
            (4, 20),
            "rules[0].when.topic[0] must be string, not a number",
        ),
        (
            "version: v1\nrules:\n  - id: a\n    when: {topic: []}\n    decision: deny\n",
            (4, 19),
            "rules[0].when.topic must not be empty",
        ),
        (
            "version: v1\nrules:\n  - id: a\n    when: {rollback: [bogus]}\n    decision: deny\n",
            (4, 23),
            "rules[0].when.rollback[0] is 'bogus'; expected one of: reversible, compensatable, "
            "irreversible",
        ),
        (
            'version: v1\ntopics:\n  "\u00e9.x": {side_effect: false}\n',
            (3, 3),
            "topics: the name '\u00e9.x' is not allowed: a topic name starts with an ASCII "
            "letter, a digit or _ and holds only those and . : / -",
        ),
        (
            "version: v1\ntopics:\n  a.b: &r [*r]\n",
            (3, 8),
            "recursive alias: an anchor is used inside its own value",
        ),
        (
            "x: &x\n  a: 1\n  <<: *x\nversion: v1\n",
            (1, 4),
            "recursive alias: a mapping merges itself (<<)",
        ),
    ],
    ids=["list-item-type", "empty-list", "list-item-enum", "topic-name", "alias", "merge"],
)
def test_messages_say_what_is_wrong(
    tmp_path: Path, content: str, at: tuple[int, int], message: str
) -> None:
    error = error_of(tmp_path, content)
    assert (where(error), error.message) == (at, message)


def test_a_key_longer_than_yaml_allows_is_named(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: v1\ntopics:\n  " + "a" * 1100 + ": {side_effect: false}\n")
    assert error.hint == "a YAML mapping key may be at most 1024 characters long"


def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path) -> None:
    import os

    from agentundo.load.files import read_bytes

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for special in (fifo, Path("/dev/zero")):
        with pytest.raises(InputError, match="not a regular file"):
            load_file(special)  # returns at once: neither blocks nor fills memory
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2048)
    assert read_bytes(big, limit=2048) == b"#" * 2048
    with pytest.raises(InputError, match="file is larger than"):
        read_bytes(big, limit=2047)


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "tab\there", "bell\x07", "del\x7f"])
def test_ids_with_control_characters_are_refused(tmp_path: Path, bad: str) -> None:
    text = "version: v1\nworkflow: w\nenv: production\nsteps:\n  - {id: " + repr(bad)
    error = error_of(tmp_path, text.replace("'", '"') + ", topic: t.x}\n")
    assert where(error) == (5, 10)
    assert error.message.endswith(
        "an id must not hold a line break or control character (it goes into idempotency "
        "keys, HTTP headers and one-line reports)"
    )
    steps = "steps:\n  - {id: a, topic: t.x}\n"
    named = error_of(tmp_path, f"version: v1\nworkflow: {json.dumps(bad)}\nenv: p\n{steps}")
    assert (where(named), named.message.split(":")[0]) == ((2, 11), f"workflow is {bad!r}")


def test_the_id_pattern_is_one_pattern() -> None:
    from agentundo.load.schema import _ID_PATTERN, load_schema
    from agentundo.model.common import ID_PATTERN

    schema = load_schema("workflow")
    assert _ID_PATTERN == ID_PATTERN == schema["properties"]["workflow"]["pattern"]
    assert schema["$defs"]["step"]["properties"]["id"]["pattern"] == ID_PATTERN


FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('version: "3.8"\nservices:\n  web: {image: nginx}\n', "version '3.8' is not agentundo's"),
        ("apiVersion: v2\nname: c\nversion: 0.1.0\n", "version '0.1.0' is not agentundo's"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", "kind 'Service' is not one"),
        (
            "kind: Pack\ntopics:\n  - name: job.a\n",  # a foreign kind wins over our keys
            "kind 'Pack' is not one of agentundo's",
        ),
        ("version: v1\nkind: Policy\nrules: []\n", None),  # near miss of ours: see below
        (
            "version: v1\ndeps: [buf.build/x/y]\nlint: {use: [DEFAULT]}\n",  # buf.yaml
            "it says 'version: v1' but has none of the keys",
        ),
        ("version: v1\ndeps: [a]\n", "it says 'version: v1' but has none of the keys"),
        (  # a topics list among keys agentundo does not have: someone else's
            "version: v1\nname: x\ntopics: [a, b]\n",
            "it says 'version: v1' but has none of the keys",
        ),
        ("name: ci\non: [push]\njobs: {}\n", "it has neither 'version: v1' nor a kind:"),
        ("- a\n- b\n", "not a mapping at the top level"),
        ("", "it is empty"),
        ("kind: A\n---\nkind: B\n---\nkind: C\n", "it holds 3 YAML documents (---)"),
        (
            "{{- if .Values.on }}\napiVersion: v1\nkind: ConfigMap\n{{- end }}\n",
            "kind 'ConfigMap' is not one of agentundo's (",
        ),
        (  # a CloudFormation template: tags agentundo refuses
            "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B: {Type: x, Name: !Ref P}\n",
            "and it is not YAML agentundo reads (unsupported YAML tag",
        ),
        (b"version: v1\x00\x01\x02", "it is a binary file"),
        (b"title: caf\xe9\n", "not YAML agentundo reads (file is not valid UTF-8"),
    ],
)
def test_yaml_that_is_not_agentundos_is_passed_over_with_a_reason(
    tmp_path: Path, content: str | bytes, reason: str | None
) -> None:
    from agentundo.load.files import scan_paths

    path = tmp_path / "other.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    scan = scan_paths([tmp_path])
    if reason is None:
        assert len(scan.errors) == 1
        assert scan.errors[0].message.startswith("unknown kind 'Policy'; expected one of: ")
        return
    assert scan.errors == []
    assert [Path(f.path).name for f in scan.files] == ["catalog.yaml"]
    assert [p.path for p in scan.passed_over] == [str(path)]
    assert reason in scan.passed_over[0].reason
    files, errors = load_paths([path])  # named on the command line: checked strictly
    assert files == [] and errors


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # 'version: v1' and a kind's keys: agentundo's, so its errors are reported
        (
            "version: v1\ntopics:\n  a.b: {side_effect: maybe}\n",
            "topics.a.b.side_effect must be boolean",
        ),
        ("version: v1\nrules:\n  - id: a\n", "rules[0] is missing 'decision'"),
        ("version: v1\ntopics: [a, b]\n", "topics must be"),
        ("version: v1\nrules: {a: b}\n", "rules must be"),
        ("kind: catalog\ntopics: {}\n", "the document is missing 'version'"),
        ("version: v1\nkind: catalogue\ntopics: {}\n", "unknown kind 'catalogue'"),
        ("version: v1\ntopic:\n  a.b: {side_effect: true}\n", "unknown key 'topic'"),
        ("version: v1\nworkflow: w\nsteps: [{id: a}]\n", "the document is missing 'env'"),
        ("version: v1\nscenario: s\nfaults: 3\n", "faults must be"),
        # not YAML agentundo reads, but it says it is agentundo's
        ("version: v1\ntopics: [\n", "YAML syntax error"),
        ("kind: policy\nrules: [{id: a, when: {env: yes}}]\n", "ambiguous value 'yes'"),
        (CATALOG + "---\n" + CATALOG, "expected a single document"),
        ("apiVersion: v1\nkind: Service\n---\n" + CATALOG, "expected a single document"),
    ],
)
def test_a_file_that_looks_like_agentundos_but_is_broken_is_an_error(
    tmp_path: Path, content: str, message: str
) -> None:
    from agentundo.load.files import scan_paths

    (tmp_path / "ours.yaml").write_text(content, encoding="utf-8")
    scan = scan_paths([tmp_path])
    assert scan.files == [] and scan.passed_over == []
    assert len(scan.errors) >= 1
    assert message in scan.errors[0].message, scan.errors[0].describe()


def test_the_foreign_fixtures_are_passed_over_and_errors_when_named(tmp_path: Path) -> None:
    from agentundo.load.files import scan_paths

    found = sorted(p for p in FOREIGN.rglob("*") if p.suffix in (".yaml", ".yml"))
    assert {p.relative_to(FOREIGN).as_posix() for p in found} >= {
        "docker-compose.yml",
        "chart/Chart.yaml",
        "chart/templates/deployment.yaml",
        "k8s/ledger.yaml",
        "github-workflows/ci.yml",
        "pack/pack.yaml",
    }
    from agentundo.model.foreign_policy import register

    register()  # as lint does: control-plane policies and Cordum workflows are read
    dag = FOREIGN / "pack" / "workflows" / "charge.yaml"
    others = [p for p in found if p != dag]
    scan = scan_paths([FOREIGN, Path(__file__).parents[2] / "sample-policies"])
    assert sorted(Path(p.path) for p in scan.passed_over) == others
    assert scan.errors == []
    assert len(scan.files) == 7
    assert [f.kind for f in scan.files if Path(f.path) == dag] == ["cordum-workflow"]
    for path in others:
        files, errors = load_paths([path])
        assert files == [] and len(errors) == 1, path
