"""Moved to :mod:`agentundo.model.templates`; these names are re-exported from there."""

from __future__ import annotations

from agentundo.model.templates import KNOWN_FIELDS as KNOWN_FIELDS
from agentundo.model.templates import derived_compensation_key as derived_compensation_key
from agentundo.model.templates import render_key as render_key
from agentundo.model.templates import template_fields as template_fields

__all__ = ["KNOWN_FIELDS", "derived_compensation_key", "render_key", "template_fields"]
