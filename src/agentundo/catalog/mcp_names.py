"""Guesses from what a tool is called and how it describes itself, when hints are absent.

Many servers give no annotations, or only some of them. A tool called ``list_issues``
or described as "Run a read-only SQL query" is very likely read-only; ``star_repository``
is very likely undone by ``unstar_repository`` when the server has both. These guesses
are words, not guarantees: every one is marked for review and named in a comment.

* **Read-only**: the tool's verb (the first word of its name that is a known verb, so
  ``git_log`` and ``issue_read`` count) is a reading one, and no word of the name is a
  plainly writing one (``get_or_create_user`` is not read-only); or its description
  says "read-only", or starts with a reading verb, when the name has no known verb.
* **Additive**: when ``destructiveHint`` is absent, a creating verb (create, add, star,
  post...) makes the guess ``destructiveHint: false``.
* **Inverse pairs**: the verb swapped for its opposite (create/delete, add/remove,
  star/unstar, grant/revoke, open/close...) names another tool of the same server.
* **Parameters**: each parameter of the inverse is taken from the forward call's
  parameter of the same name (``{params.NAME}``); an id the forward call does not take
  is assumed to come back in its answer (``{response.NAME}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

READ_VERBS = frozenset(
    {
        "get", "list", "search", "read", "query", "describe", "fetch", "find", "show",
        "view", "lookup", "inspect", "count", "retrieve", "browse", "explain", "diff",
        "status", "log", "logs", "compare", "preview", "check", "validate", "whoami",
        "summarize", "analyze", "peek", "download", "export", "select",
    }
)  # fmt: skip
"""Verbs of tools that read. ``download`` and ``export`` return data to the caller."""

WRITE_VERBS = frozenset(
    {
        "create", "delete", "remove", "add", "update", "set", "put", "post", "send",
        "write", "edit", "patch", "insert", "upsert", "push", "commit", "reset",
        "checkout", "move", "rename", "upload", "publish", "deploy", "run", "execute",
        "exec", "trigger", "cancel", "close", "open", "reopen", "star", "unstar",
        "assign", "unassign", "mark", "dismiss", "resolve", "unresolve", "merge", "fork",
        "submit", "approve", "reject", "enable", "disable", "archive", "unarchive",
        "drop", "kill", "stop", "start", "restart", "scale", "apply", "install",
        "uninstall", "invite", "grant", "revoke", "lock", "unlock", "pin", "unpin",
        "follow", "unfollow", "subscribe", "unsubscribe", "block", "unblock", "mute",
        "unmute", "reply", "rerun", "retry", "transfer", "refund", "capture", "charge",
        "pay", "clear", "purge", "wipe", "truncate", "replace", "rotate", "save",
        "store", "manage", "toggle", "reprioritize", "modify", "change", "attach",
        "detach", "link", "unlink", "cordon", "uncordon", "drain", "rollout", "finalize",
        "void", "request", "react", "comment", "tag", "untag", "label", "unlabel",
        "connect", "disconnect", "join", "leave", "import", "sync", "restore", "destroy",
        "duplicate", "copy", "generate", "convert", "annotate", "expire", "schedule",
        "notify", "share", "unshare", "invoke", "call", "evaluate", "navigate", "click",
        "fill", "press", "hover", "drag", "activate", "deactivate", "pause", "suspend",
        "resume", "register", "unregister", "deregister", "watch", "unwatch", "hide",
        "unhide", "uninvite", "unpublish",
    }
)  # fmt: skip
"""Verbs of tools that change something (a few are nouns too: ``label``, ``tag``)."""

STRONG_WRITE = frozenset(
    {"create", "delete", "remove", "add", "update", "set", "write", "upsert", "insert",
     "drop", "purge", "wipe", "destroy", "truncate", "edit", "modify", "send"}
)  # fmt: skip
"""Writing verbs that are almost never nouns: anywhere in a name, they veto read-only.
(``post`` is not one: generated servers name tools after HTTP methods, ``API-post-search``.)"""

OVERWRITING = frozenset(
    {"update", "delete", "remove", "set", "write", "replace", "overwrite", "edit", "modify",
     "drop", "purge", "wipe", "destroy", "truncate", "reset", "patch", "upsert", "move"}
)  # fmt: skip
"""Words that, anywhere in a name, make a creating verb no evidence of an additive tool
(``create_or_update_file`` may overwrite)."""

ADDITIVE = frozenset(
    {
        "create", "add", "insert", "post", "upload", "fork", "star", "follow",
        "subscribe", "pin", "invite", "assign", "attach", "link", "tag", "label",
        "comment", "reply", "react", "grant", "open", "enable", "lock", "mute", "block",
        "join", "connect", "install", "publish", "share", "cordon", "archive", "hide",
    }
)  # fmt: skip
"""Verbs that add something rather than destroy it (the undo can remove it again)."""

INVERSES: Mapping[str, tuple[str, ...]] = {
    "create": ("delete", "remove", "destroy"),
    "add": ("remove", "delete"),
    "insert": ("delete", "remove"),
    "upload": ("delete", "remove"),
    "post": ("delete",),
    "remove": ("add",),
    "grant": ("revoke",),
    "revoke": ("grant",),
    "star": ("unstar",),
    "unstar": ("star",),
    "follow": ("unfollow",),
    "unfollow": ("follow",),
    "subscribe": ("unsubscribe",),
    "unsubscribe": ("subscribe",),
    "open": ("close",),
    "close": ("reopen", "open"),
    "reopen": ("close",),
    "enable": ("disable",),
    "disable": ("enable",),
    "activate": ("deactivate",),
    "deactivate": ("activate",),
    "lock": ("unlock",),
    "unlock": ("lock",),
    "pin": ("unpin",),
    "unpin": ("pin",),
    "assign": ("unassign",),
    "unassign": ("assign",),
    "attach": ("detach",),
    "detach": ("attach",),
    "link": ("unlink",),
    "unlink": ("link",),
    "block": ("unblock",),
    "unblock": ("block",),
    "mute": ("unmute",),
    "unmute": ("mute",),
    "archive": ("unarchive", "restore"),
    "unarchive": ("archive",),
    "resolve": ("unresolve",),
    "unresolve": ("resolve",),
    "start": ("stop",),
    "stop": ("start",),
    "pause": ("resume",),
    "suspend": ("resume",),
    "install": ("uninstall",),
    "uninstall": ("install",),
    "publish": ("unpublish",),
    "unpublish": ("publish",),
    "register": ("unregister", "deregister"),
    "connect": ("disconnect",),
    "disconnect": ("connect",),
    "join": ("leave",),
    "leave": ("join",),
    "tag": ("untag",),
    "untag": ("tag",),
    "label": ("unlabel",),
    "watch": ("unwatch",),
    "unwatch": ("watch",),
    "hide": ("unhide",),
    "unhide": ("hide",),
    "cordon": ("uncordon",),
    "uncordon": ("cordon",),
    "invite": ("uninvite",),
    "share": ("unshare",),
    "unshare": ("share",),
}
"""A verb and the verbs of the tools that undo it, the likeliest first. ``delete`` has
none: what a deletion destroyed is not in its parameters."""

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_READ_ONLY_TEXT = re.compile(r"\bread[- ]?only\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(not|never|no longer)\s+(a\s+)?read[- ]?only\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^(?:[^|\n]{1,40}\|)?\W*([A-Za-z]+)")
"""The first word of a description, after a short ``Product |`` label if there is one."""
_DESCRIPTION_READS = frozenset(
    {
        "get", "gets", "list", "lists", "search", "searches", "read", "reads",
        "retrieve", "retrieves", "fetch", "fetches", "show", "shows", "query",
        "queries", "describe", "describes", "find", "finds", "return", "returns",
        "view", "views", "look", "looks", "check", "checks", "inspect", "inspects",
        "count", "counts", "compare", "compares",
    }
)  # fmt: skip
_ID_NAME = re.compile(r"(^id$|_id$|Id$|ID$|_ids$|Ids$|^uid$|^uuid$)")


def words(name: str) -> list[str]:
    """The words of a tool name, lower case: ``getPullRequest`` and ``get_pull-request``
    both give ``['get', 'pull', 'request']``."""
    return [w.lower() for w in _WORD.findall(name)]


def _known(word: str) -> bool:
    return word in READ_VERBS or word in WRITE_VERBS or word in INVERSES


def verb(name: str) -> tuple[int, str] | None:
    """The verb of ``name`` and its position: its first word if that is a known verb
    (``get_pull_request``), else its last (``pull_request_read``, ``git_log``), else the
    first known verb between them (``git_create_branch``)."""
    found = words(name)
    if not found:
        return None
    for index in (0, len(found) - 1, *range(1, len(found) - 1)):
        if _known(found[index]):
            return index, found[index]
    return None


def read_only_guess(name: str, description: str | None) -> str | None:
    """Why the tool looks read-only, or None when its name or description does not say so."""
    if set(words(name)) & STRONG_WRITE:
        return None
    text = description or ""
    if _READ_ONLY_TEXT.search(text) and not _NEGATED.search(text):
        return "its description says it is read-only"
    known = verb(name)
    if known is not None:
        return f"its name's verb '{known[1]}' reads" if known[1] in READ_VERBS else None
    first = _FIRST_WORD.match(text)
    if first and first.group(1).lower() in _DESCRIPTION_READS:
        return f"its description starts with '{first.group(1)}'"
    return None


def additive_guess(name: str) -> str | None:
    """The creating verb of ``name``, when its verb is one; else None."""
    known = verb(name)
    if known is None or known[1] not in ADDITIVE or set(words(name)) & OVERWRITING:
        return None
    return known[1]


def word_index(names: Iterable[str]) -> dict[tuple[str, ...], str]:
    """Tool names by their words (the first name listed wins), for :func:`find_inverse`."""
    index: dict[tuple[str, ...], str] = {}
    for name in names:
        index.setdefault(tuple(words(name)), name)
    return index


def find_inverse(name: str, index: Mapping[tuple[str, ...], str]) -> tuple[str, str, str] | None:
    """The tool in ``index`` (:func:`word_index`) whose name is ``name`` with its verb
    swapped for an opposite one: (that tool's name, the verb, the opposite verb); None
    when there is none."""
    known = verb(name)
    if known is None:
        return None
    position, word = known
    base = words(name)
    for opposite in INVERSES.get(word, ()):
        found = index.get((*base[:position], opposite, *base[position + 1 :]))
        if found is not None and found != name:
            return found, word, opposite
    return None


@dataclass(frozen=True, slots=True)
class ParamMap:
    """The inverse call's parameters as templates, and what could not be mapped."""

    params: dict[str, str] = field(default_factory=dict)
    from_response: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # required by the inverse, found nowhere


def _properties(schema: Any) -> tuple[dict[str, Any], set[str]]:
    if not isinstance(schema, dict):
        return {}, set()
    props = schema.get("properties")
    required = schema.get("required")
    return (
        props if isinstance(props, dict) else {},
        {r for r in required if isinstance(r, str)} if isinstance(required, list) else set(),
    )


def map_params(forward_schema: Any, inverse_schema: Any, output_schema: Any = None) -> ParamMap:
    """Fill the inverse's parameters from the forward call's (see the module docstring)."""
    forward, _ = _properties(forward_schema)
    inverse, required = _properties(inverse_schema)
    output, _ = _properties(output_schema)
    params: dict[str, str] = {}
    from_response: list[str] = []
    missing: list[str] = []
    for name in inverse:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            if name in required:
                missing.append(str(name))
            continue
        if name in forward:
            params[name] = f"{{params.{name}}}"
        elif name in output or (name in required and _ID_NAME.search(name)):
            params[name] = f"{{response.{name}}}"
            from_response.append(name)
        elif name in required:
            missing.append(name)
    return ParamMap(params, tuple(from_response), tuple(missing))
