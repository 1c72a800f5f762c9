"""Vocabulary shared by every format: rollback classes, risk levels, decisions, durations."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class Rollback(StrEnum):
    """How an action's effect can be taken back."""

    REVERSIBLE = "reversible"
    COMPENSATABLE = "compensatable"
    IRREVERSIBLE = "irreversible"


class Risk(StrEnum):
    """How much harm an action does when it goes wrong, lowest first."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Decision(StrEnum):
    """A policy gate's answer, least restrictive first."""

    ALLOW = "allow"
    REQUIRE_HUMAN = "require_human"
    DENY = "deny"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Decision.ALLOW: 0, Decision.REQUIRE_HUMAN: 1, Decision.DENY: 2}

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1)]
ID_PATTERN = r"^[^\u0000-\u001f\u007f]+$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""An id that goes into idempotency keys, headers and one-line output: no control
characters (a line break in a step id would split a header or a report line)."""


MAX_WAIT_S = 7 * 24 * 3600.0
"""The longest duration a drill accepts (7 days): a drill refuses longer durations when it
loads its files, lint warns of them first, and the clocks cap every wait here anyway, so
no setting can overflow the time."""


ROLLBACK_WINDOW_S = 30.0
"""The engine's default rollback window (``Settings.rollback_window_s``; a scenario's
``settings.rollback_window`` changes it): every compensation attempt of a rollback is cut
to the time left in it. Here so that lint knows it without importing the engine."""


def seconds(duration: str) -> float:
    """Turn ``10s``, ``500ms``, ``2m`` or ``1h`` into seconds."""
    match = _DURATION.match(duration)
    if match is None:
        raise ValueError(f"invalid duration {duration!r}")
    unit = match.group(2)
    return float(duration[: -len(unit)]) * _UNIT_SECONDS[unit]


class Strict(BaseModel):
    """Base of every file model: unknown keys are errors, instances never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
