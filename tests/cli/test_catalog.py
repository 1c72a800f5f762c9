"""`agentundo catalog import --from-json`: output, re-runs, and exit 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentundo.cli.main import main
from tests.cli_runner import Result, invoke

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mcp"


def test_prints_a_skeleton_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "import", "--from-json", str(FIXTURES / "tools_list.json")])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("# Imported from MCP tools/list")
    assert "\n  create_issue:\n    side_effect: true\n    rollback: compensatable\n" in out
    assert "agentundo: added 5 topic(s), kept 0 existing" in err


def test_writes_then_extends_the_output_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalog.yaml"
    assert (
        main(
            ["catalog", "import", "--from-json", str(FIXTURES / "tools_list.json"), "-o", str(out)]
        )
        == 0
    )
    edited = out.read_text().replace("    needs_review: true\n", "", 1) + "# my note\n"
    out.write_text(edited)
    capsys.readouterr()
    assert (
        main(
            [
                "catalog",
                "import",
                "--from-json",
                str(FIXTURES / "tools_list_more.json"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "added 1 topic(s), kept 2 existing" in err
    assert "not listed by the server (kept): delete_repository, run_script, set_label" in err
    text = out.read_text()
    assert text.endswith("# my note\n")
    assert "close_issue:" in text
    assert text.count("    needs_review: true\n") == 4  # one removed by a person, one added


def test_lint_fails_until_reviewed(tmp_path: Path) -> None:
    out = tmp_path / "catalog.yaml"
    assert (
        main(
            ["catalog", "import", "--from-json", str(FIXTURES / "tools_list.json"), "-o", str(out)]
        )
        == 0
    )
    done = invoke("lint", str(out), "--format", "json")
    assert done.returncode == 1
    assert done.stdout.count('"AU109"') == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --from-json FILE, --url URL or --command"),
        (["--from-json", "a.json", "--url", "http://x/mcp"], "give exactly one of"),
        (["--from-json", "missing.json"], "missing.json: error: no such file or directory"),
        (["--from-json", str(FIXTURES / "not_json.json")], "error: not JSON"),
        (["--from-json", str(FIXTURES / "jsonrpc_error.json")], "the answer is a JSON-RPC error"),
        (
            ["--from-json", str(FIXTURES / "tools_list.json"), "-H", "X=1"],
            "--header only applies to --url",
        ),
        (["--url", "http://127.0.0.1:1/mcp", "-H", "novalue"], "expected NAME=VALUE"),
        (["--url", "not a url"], "bad URL 'not a url'"),
        (["--from-json", str(FIXTURES)], "error: is a directory, not a file"),
        (
            ["--from-json", str(FIXTURES / "tools_list.json"), "-o", ""],
            "--output needs a file name, not an empty string",
        ),
        (["--url", "http://a\nb/mcp"], "bad URL 'http://a\\nb/mcp': it holds a space or control"),
        (
            ["--from-json", str(FIXTURES / "tools_list.json"), "--prefix", "p" * 65],
            "--prefix is 65 characters long; at most 64",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["catalog", "import", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_broken_existing_catalog_is_not_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalog.yaml"
    out.write_text("version: v1\ntopics: [\n")
    code = main(
        ["catalog", "import", "--from-json", str(FIXTURES / "tools_list.json"), "-o", str(out)]
    )
    assert code == 2
    assert out.read_text() == "version: v1\ntopics: [\n"
    assert str(out) in capsys.readouterr().err


def _cli(cwd: Path, *args: str) -> Result:
    return invoke(*args, cwd=cwd)


def test_tools_that_make_the_same_topic_are_all_imported_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text(
        '{"tools": [{"name": "delete_user", "annotations": {"readOnlyHint": true}},'
        ' {"name": "delete user", "annotations": {"destructiveHint": true}}]}'
    )
    done = _cli(tmp_path, "catalog", "import", "--from-json", "tools.json", "-o", "c.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        "agentundo: warning: MCP tools 'delete user' and 'delete_user' both make topic "
        "'delete_user': 'delete user' is imported as 'delete_user_2'"
    )
    assert "added 2 topic(s)" in done.stderr
    lint = _cli(tmp_path, "lint", "c.yaml", "--format", "json")
    assert lint.returncode == 1
    flagged = [f["message"] for f in json.loads(lint.stdout) if f["code"] == "AU109"]
    assert len(flagged) == 1 and "'delete_user_2'" in flagged[0]  # the destructive one


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        (
            '{"tools": [{"name": "a", "annotations": {"readOnlyHint": false, "readOnlyHint": true}}]}',
            "tools.json: error: duplicate key 'readOnlyHint' in tools[0].annotations",
        ),
        (
            '[{"name": "a", "annotations": {"readOnlyHint": true}}, {"name": "a"}]',
            "tools.json: error: tools[0] and tools[1] are both named 'a' but give different",
        ),
    ],
)
def test_ambiguous_json_exits_2_and_writes_nothing(
    tmp_path: Path, tools: str, message: str
) -> None:
    (tmp_path / "tools.json").write_text(tools)
    done = _cli(tmp_path, "catalog", "import", "--from-json", "tools.json", "-o", "c.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_a_hint_that_is_not_a_boolean_is_a_warning_and_the_worst_case(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text(
        '[{"name": "wipe", "annotations": {"readOnlyHint": "yes", "destructiveHint": 1}}]'
    )
    done = _cli(tmp_path, "catalog", "import", "--from-json", "tools.json")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert warnings == [
        "agentundo: warning: MCP tool 'wipe': readOnlyHint is \"yes\", not true or false: "
        "treated as unknown, so the MCP default readOnlyHint=false applies",
        "agentundo: warning: MCP tool 'wipe': destructiveHint is 1, not true or false: "
        "treated as unknown, so the MCP default destructiveHint=true applies",
    ]
    assert (
        "  wipe:\n    side_effect: true\n    rollback: irreversible\n    risk: critical\n"
        "    needs_review: true\n" in done.stdout
    )


def test_a_lone_surrogate_in_a_name_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tools.json"
    source.write_text('{"tools": [{"name": "a\\ud800b"}]}', encoding="ascii")
    assert main(["catalog", "import", "--from-json", str(source)]) == 2
    assert 'tools[0]: the name "a\\ud800b" holds a lone surrogate' in capsys.readouterr().err


def test_a_lone_surrogate_in_a_description_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tools.json"
    source.write_text('{"tools": [{"name": "ab", "description": "x\\udc00y"}]}', "ascii")
    assert main(["catalog", "import", "--from-json", str(source)]) == 0
    assert "\n  ab:\n" in capsys.readouterr().out


def test_an_output_behind_a_symbolic_link_is_updated_and_the_link_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "catalogs" / "mcp.yaml"
    real.parent.mkdir()
    real.write_text("version: v1\ntopics:\n  old.one: {side_effect: false}\n", "utf-8")
    link = tmp_path / "catalog.yaml"
    link.symlink_to(real)
    args = ["catalog", "import", "--from-json", str(FIXTURES / "tools_list.json"), "-o", str(link)]
    assert main(args) == 0
    assert link.is_symlink()
    assert "create_issue:" in real.read_text("utf-8")
    assert capsys.readouterr().err.endswith(f"agentundo: wrote {link}\n")
    assert main(args) == 0
    assert capsys.readouterr().err.endswith(f"agentundo: {link} unchanged: nothing new\n")


def test_a_crlf_catalog_keeps_its_line_ends(tmp_path: Path) -> None:
    out = tmp_path / "catalog.yaml"
    out.write_bytes(b"version: v1\r\ntopics:\r\n  old.one: {side_effect: false}\r\n")
    args = ["catalog", "import", "--from-json", str(FIXTURES / "tools_list.json"), "-o", str(out)]
    assert main(args) == 0
    data = out.read_bytes()
    assert data.startswith(b"version: v1\r\ntopics:\r\n  old.one: {side_effect: false}\r\n")
    assert b"create_issue:" in data
    assert data.count(b"\n") == data.count(b"\r\n")
