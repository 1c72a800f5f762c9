"""Project configuration: discovery, validation with clear errors, per-file ignores."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentundo.errors import ConfigError
from agentundo.lint.config import Config, discover, find, load
from agentundo.lint.finding import Severity


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find() is None
    assert discover() == Config()


def test_walks_up_to_agentundo_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path / "agentundo.toml", 'select = ["AU1"]\n')
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert find() == config.resolve()
    assert discover().select == ("AU1",)


def test_pyproject_without_table_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = _write(tmp_path / "pyproject.toml", '[tool.agentundo]\nenvs = ["staging"]\n')
    _write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path / "pkg")
    assert find() == outer.resolve()
    assert discover().envs == ("staging",)


def test_agentundo_toml_wins_over_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", '[tool.agentundo]\nenvs = ["staging"]\n')
    own = _write(tmp_path / "agentundo.toml", 'envs = ["production"]\n')
    assert find(tmp_path) == own.resolve()


def test_every_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "pyproject.toml",
        """
[tool.agentundo]
paths = ["policies/"]
envs = ["production", "staging"]
select = ["au1", "AU3"]
ignore = ["AU406"]
fail_on = "warning"

[tool.agentundo.per-file-ignores]
"legacy/*.yaml" = ["AU2"]
""",
    )
    config = load(path)
    assert config.paths == ("policies/",)
    assert config.envs == ("production", "staging")
    assert config.select == ("AU1", "AU3")
    assert config.ignore == ("AU406",)
    assert config.fail_on is Severity.WARNING
    assert config.per_file_ignores == (("legacy/*.yaml", ("AU2",)),)
    assert config.root == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('selct = ["AU1"]\n', "unknown key 'selct' in the file (did you mean 'select'?)"),
        ('fail-on = "fatal"\n', "'fail-on' is 'fatal' (expected one of: error, warning, info)"),
        ("envs = 3\n", "'envs' must be a list of strings"),
        ('select = ["E501"]\n', "'select' has 'E501', which is not a code or code prefix"),
        ('per-file-ignores = ["x"]\n', "'per-file-ignores' must be a table of glob = [codes]"),
        ("select = [\n", "invalid TOML"),
        (
            'fail-on = "info"\nfail_on = "error"\n',
            "'fail-on' and 'fail_on' in the file are the same setting (keep one of them)",
        ),
    ],
)
def test_bad_configuration_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "agentundo.toml", text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_explicit_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        discover(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"is a directory; --config takes a pyproject\.toml"):
        discover(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("pyproject.toml", b"\x00\x01\xff\xfe", "not a UTF-8 text file (byte 0xff at offset 2)"),
        ("pyproject.toml", b"[project\nname = 'x'\n", "invalid TOML"),  # says nothing of us
        ("pyproject.toml", b"a = " + b"[" * 3000 + b"]" * 3000, "invalid TOML"),
        ("agentundo.toml", b"\xff\xfeenvs = []\n", "not a UTF-8 text file (byte 0xff at offset 0)"),
    ],
)
def test_a_broken_file_on_the_way_up_is_an_error_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, message: str
) -> None:
    _write(tmp_path / "pyproject.toml", '[tool.agentundo]\nenvs = ["staging"]\n')
    broken = tmp_path / "pkg" / name
    broken.parent.mkdir()
    broken.write_bytes(content)
    monkeypatch.chdir(broken.parent)
    with pytest.raises(ConfigError) as caught:
        discover()
    assert str(caught.value).startswith(f"{broken.resolve()}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize("text", ['tool = "agentundo"\n', "tool = [1]\n"])
def test_a_tool_key_that_is_not_a_table_is_not_our_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    _write(tmp_path / "pyproject.toml", text)
    monkeypatch.chdir(tmp_path)
    assert find() is None
    with pytest.raises(ConfigError, match=r"has no \[tool\.agentundo\] table"):
        load(tmp_path / "pyproject.toml")


def test_an_empty_env_in_the_configuration_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "agentundo.toml", 'envs = ["production", " "]\n')
    with pytest.raises(ConfigError, match="'envs' has an empty string"):
        load(path)


def test_lint_passes_over_the_drill_table(tmp_path: Path) -> None:
    from agentundo.lint.config import discover_drill, load

    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.agentundo]\nfail-on = "warning"\n[tool.agentundo.drill]\n'
        'catalog = "c.yaml"\nscenarios = ["drills/"]\nlock = "memory"\n',
        encoding="utf-8",
    )
    assert load(path).fail_on is not None
    drill = discover_drill(path)
    assert drill.catalog == str(tmp_path / "c.yaml")
    assert drill.scenarios == (str(tmp_path / "drills/"),)
    assert (drill.policy, drill.lock) == (None, "memory")


def test_the_drill_table_of_agentundo_toml(tmp_path: Path) -> None:
    from agentundo.errors import ConfigError
    from agentundo.lint.config import discover_drill

    path = tmp_path / "agentundo.toml"
    path.write_text('[drill]\nexecutor = "http"\nworkflows = "wf"\n', encoding="utf-8")
    drill = discover_drill(path)
    assert (drill.executor, drill.workflows) == ("http", (str(tmp_path / "wf"),))
    path.write_text('[drill]\nlocks = "memory"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key 'locks' in \[drill\].*did you mean 'lock'"):
        discover_drill(path)
