"""agentundo: make rollback of AI-agent actions a tested, gated, evidenced feature."""

from __future__ import annotations

__version__ = "0.1.0"
