"""The output formats of ``agentundo timeline``, and the renderer of each.

Each renderer module is imported only when its format is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import IO, TYPE_CHECKING, TextIO, assert_never

if TYPE_CHECKING:
    from rich.console import Console

    from agentundo.timeline.runs import Renderer


class Format(StrEnum):
    """Output formats of ``agentundo timeline --format``."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    MERMAID = "mermaid"
    OTLP = "otlp"


def renderer(
    fmt: Format,
    *,
    text: TextIO,
    binary: IO[bytes],
    console: Callable[[], Console],
    limit: int,
    follow: bool = False,
    quiet: bool = False,
) -> Renderer:
    """The renderer of ``fmt``; ``console`` builds a rich console only if one is needed."""
    match fmt:
        case Format.TABLE:
            from agentundo.timeline.render_table import StreamRenderer, TableRenderer

            if follow:
                return StreamRenderer(console(), limit=limit, quiet=quiet)
            return TableRenderer(console(), limit=limit, quiet=quiet)
        case Format.JSON:
            from agentundo.timeline.render_json import JsonRenderer

            return JsonRenderer(binary)
        case Format.MARKDOWN:
            from agentundo.timeline.render_markdown import MarkdownRenderer

            return MarkdownRenderer(text, limit=limit)
        case Format.MERMAID:
            from agentundo.timeline.render_mermaid import MermaidRenderer

            return MermaidRenderer(text, limit=limit)
        case Format.OTLP:
            from agentundo.timeline.render_otlp import OtlpRenderer

            return OtlpRenderer(text)
        case _:
            assert_never(fmt)
