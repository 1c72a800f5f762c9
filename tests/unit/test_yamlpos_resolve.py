"""The positioned loader's cheap scalar resolution gives PyYAML's tags, scalar by scalar."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agentundo.load import files, yamlpos

SCALAR = st.text(alphabet="0123456789-+._:~eEoOnNyYtTfFxXabc ", max_size=12)


def _tags(loader: yaml.SafeLoader) -> list[str]:
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    assert isinstance(node, yaml.MappingNode)
    return [n.tag for pair in node.value for n in pair]


def _both(text: str) -> tuple[list[str] | str, list[str] | str]:
    found: list[list[str] | str] = []
    for loader in (yamlpos._Loader, yaml.SafeLoader):
        try:
            found.append(_tags(loader(text)))
        except yaml.YAMLError as exc:
            found.append(type(exc).__name__)
    return found[0], found[1]


@settings(max_examples=400, deadline=None)
@given(st.lists(SCALAR, min_size=1, max_size=6))
def test_plain_scalars_resolve_as_pyyaml_resolves_them(values: list[str]) -> None:
    text = "".join(f"k{i}: {value}\n" for i, value in enumerate(values))
    ours, theirs = _both(text)
    assert ours == theirs


@settings(max_examples=100, deadline=None)
@given(st.lists(SCALAR, min_size=1, max_size=6))
def test_quoted_and_block_scalars_stay_strings(values: list[str]) -> None:
    text = "".join(f"'{v}': \"{v}\"\n" for v in values) + "b: |\n  12\n"
    ours, theirs = _both(text)
    assert ours == theirs


def test_the_usual_suspects() -> None:
    text = "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: ''\ng: name.svc\nh: .inf\ni: 0x1F\nj: -3\n"
    ours, theirs = _both(text)
    assert ours == theirs
    assert ours[1::2] == [
        "tag:yaml.org,2002:" + t
        for t in ("int", "float", "bool", "null", "null", "str", "str", "float", "int", "int")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, y]\n",
        "a:\nb: 1\n",
        "a: {b: [1, ~]}\n",
        "a: &n null\nb: *n\n",
        "a: 'null'\nb: \"~\"\n",
        "base: &b {x: ~}\nc: {<<: *b, y: 1}\n",
        "a: [1, [2, [3, Null]]]\n",
    ],
)
def test_the_parser_says_whether_a_value_is_null(text: str) -> None:
    doc = yamlpos.parse(text, "x.yaml")
    assert doc.nulls is files._has_null(doc.data)
