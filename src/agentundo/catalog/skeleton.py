"""Write guessed contracts as catalog YAML, or add them to a catalog people already edited.

Merging never rewrites what is there: the existing text is kept byte for byte (comments
included) and new topics are inserted at the end of its ``topics:`` block. Topics that
already exist are left alone, whatever the server now says about them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml

from agentundo.catalog.mcp_tools import Guess
from agentundo.errors import AgentundoError, InputError, InputErrors, Position

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
DESCRIPTION_LIMIT = 200
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
"""Control characters and everything YAML (1.1 or 1.2) may take for a line break."""

HEADER = """\
# Imported from MCP tools/list ({source}) by `agentundo catalog import`.
# Each side-effecting tool got a guessed contract marked `needs_review: true`;
# `agentundo lint` fails (AU109) until a person confirms or completes it and deletes
# the mark. The comments above each topic say what the server's hints were.
"""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did to the catalog."""

    added: tuple[str, ...]
    needs_review: tuple[str, ...]
    kept: tuple[str, ...]  # listed by the server, already in the catalog: untouched
    not_listed: tuple[str, ...]  # in the catalog, not listed by the server: untouched
    duplicates: tuple[str, ...]  # tools listed twice (the first one counts)
    warnings: tuple[str, ...] = ()  # renamed topics, hints that are not booleans
    guessed_read_only: tuple[str, ...] = ()  # added as read-only without a readOnlyHint
    paired: tuple[str, ...] = ()  # added with an inverse proposed as the compensation

    def lines(self) -> list[str]:
        out = [f"warning: {_one_line(w)}" for w in self.warnings]
        out.append(f"added {len(self.added)} topic(s), kept {len(self.kept)} existing")
        if self.needs_review:
            out.append(
                f"{len(self.needs_review)} topic(s) need review (agentundo lint fails until "
                f"a person confirms them): {', '.join(self.needs_review)}"
            )
        if self.guessed_read_only or self.paired:
            out.append(
                f"guessed from names and descriptions: {len(self.guessed_read_only)} "
                f"read-only, {len(self.paired)} compensation(s) from inverse pairs "
                "(the comments above each topic say why)"
            )
        if self.not_listed:
            out.append(f"not listed by the server (kept): {', '.join(self.not_listed)}")
        if self.duplicates:
            out.append(f"listed more than once (first one used): {', '.join(self.duplicates)}")
        return out


def merge(
    existing: str | None, guesses: Sequence[Guess], *, source: str, path: str = "<catalog>"
) -> tuple[str, ImportReport]:
    """The catalog text with ``guesses`` added (a new catalog when ``existing`` is None)."""
    unique, duplicates = _unique(guesses)
    if existing is None:
        known: dict[str, object] = {}
        text = _new_catalog(unique, source)
    else:
        known = _existing_topics(existing, path)
        new = [g for g in unique if g.topic not in known]
        text = _insert(existing, new, path) if new else existing
    fresh = [g for g in unique if g.topic not in known]
    report = ImportReport(
        added=tuple(g.topic for g in fresh),
        needs_review=tuple(g.topic for g in fresh if g.needs_review),
        kept=tuple(g.topic for g in unique if g.topic in known),
        not_listed=tuple(sorted(set(known) - {g.topic for g in unique})),
        duplicates=duplicates,
        warnings=tuple(w for g in unique for w in g.warnings),
        guessed_read_only=tuple(g.topic for g in fresh if not g.side_effect and g.needs_review),
        paired=tuple(g.topic for g in fresh if g.compensation is not None),
    )
    _check(text, path)
    return text, report


def render_topic(guess: Guess, indent: str = "  ") -> str:
    """One topic entry, with comments saying where the guess came from."""
    inner = indent + "  "
    lines = [f"{indent}# {_one_line(reason)}" for reason in guess.reasons]
    lines.append(f"{indent}{_key(guess.topic)}:")
    lines.append(f"{inner}side_effect: {'true' if guess.side_effect else 'false'}")
    if guess.rollback is not None:
        lines.append(f"{inner}rollback: {guess.rollback.value}")
    lines.append(f"{inner}risk: {guess.risk.value}")
    if guess.compensation is not None:
        lines.append(f"{inner}compensation:")
        lines.append(f"{inner}  topic: {_key(guess.compensation.topic)}")
        if guess.compensation.params:
            lines.append(f"{inner}  params:")
            lines.extend(
                f"{inner}    {_key(name)}: {_quote(value)}"
                for name, value in guess.compensation.params.items()
            )
    if guess.needs_review:
        lines.append(f"{inner}needs_review: true")
    description = _description(guess.tool.description)
    if description:
        lines.append(f"{inner}description: {_quote(description)}")
    return "\n".join(lines) + "\n"


def _unique(guesses: Iterable[Guess]) -> tuple[list[Guess], tuple[str, ...]]:
    seen: dict[str, Guess] = {}
    duplicates: list[str] = []
    for g in guesses:
        if g.topic in seen:
            duplicates.append(g.topic)
        else:
            seen[g.topic] = g
    return list(seen.values()), tuple(dict.fromkeys(duplicates))


def _new_catalog(guesses: Sequence[Guess], source: str) -> str:
    head = HEADER.format(source=_one_line(source)) + "version: v1\nkind: catalog\n"
    if not guesses:
        return head + "topics: {}\n"
    return head + "topics:\n" + "\n".join(render_topic(g) for g in guesses)


def _existing_topics(text: str, path: str) -> dict[str, object]:
    from agentundo.load.files import build
    from agentundo.load.yamlpos import parse

    loaded = build(parse(text, path), "catalog")
    return dict(loaded.model.topics)


def _insert(text: str, guesses: Sequence[Guess], path: str) -> str:
    """Insert entries at the end of the ``topics:`` block, keeping every existing byte."""
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise InputError(Position(path), "cannot add topics: the catalog is not a block mapping")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    entry = next(
        ((k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "topics"),
        None,
    )
    if entry is None:
        return "".join(lines) + "topics:\n" + "\n".join(render_topic(g) for g in guesses)
    key, value = entry
    key_line, key_col = key.start_mark.line, key.start_mark.column
    if isinstance(value, yaml.MappingNode) and value.value and not value.flow_style:
        indent = " " * value.value[0][0].start_mark.column
        after = _block_end(lines, key_line, key_col)
    elif (isinstance(value, yaml.MappingNode) and not value.value) or (
        isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null")
    ):
        if value.start_mark.line != key_line or value.end_mark.line != key_line:
            raise InputError(
                Position(path, key_line + 1, key_col + 1), "cannot add topics to 'topics:' here"
            )
        lines[key_line] = lines[key_line][:key_col] + "topics:\n"  # drops "{}" or "null"
        indent = " " * (key_col + 2)
        after = key_line + 1
    else:
        raise InputError(
            Position(path, key_line + 1, key_col + 1),
            "cannot add topics to a 'topics:' mapping written in flow style ({...})",
            hint="write 'topics:' as a block mapping (one topic per line), then import again",
        )
    entries = "\n".join(render_topic(g, indent) for g in guesses)
    separator = "\n" if after > key_line + 1 else ""
    return "".join(lines[:after]) + separator + entries + "".join(lines[after:])


def _block_end(lines: list[str], key_line: int, key_col: int) -> int:
    """The line after the last content line of the block under the key at ``key_line``."""
    last = key_line
    for index in range(key_line + 1, len(lines)):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(lines[index]) - len(lines[index].lstrip(" ")) <= key_col:
            break
        last = index
    return last + 1


def _check(text: str, path: str) -> None:
    """The result must load as a catalog; anything else is a bug in this module."""
    from agentundo.load.files import build
    from agentundo.load.yamlpos import parse

    try:
        build(parse(text, path), "catalog")
    except (InputError, InputErrors) as exc:
        raise AgentundoError(
            f"{path}: the imported catalog would not load ({exc}); nothing written"
        ) from None


def _one_line(text: str) -> str:
    """``text`` safe inside a YAML comment: a tool name with a line break in it must not
    end the comment and write YAML of its own (a topic that would skip review)."""
    return _BREAKS.sub(lambda m: json.dumps(m.group())[1:-1], text)


def _key(name: str) -> str:
    if _PLAIN_KEY.match(name) and name.lower() not in _YAML11_WORDS:
        return name
    return _quote(name)


def _quote(text: str) -> str:
    """A double-quoted YAML scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _description(text: str | None) -> str:
    if not text:
        return ""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    return first if len(first) <= DESCRIPTION_LIMIT else first[: DESCRIPTION_LIMIT - 1] + "…"
