"""Times in evidence: RFC 3339 timestamps, ``--since``/``--until`` bounds, durations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agentundo.errors import UsageError


def parse_ts(value: object) -> datetime | None:
    """An RFC 3339 timestamp, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_OFFSET = re.compile(r"^\+(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_OFFSET_H = 876_000
"""The largest ``--since``/``--until`` offset accepted, in hours: about a hundred years."""
_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeBound:
    """``--since``/``--until``: an instant, or an offset from each run's start (``+90s``)."""

    at: datetime | None = None
    offset: timedelta | None = None

    @classmethod
    def parse(cls, text: str, option: str) -> TimeBound:
        match = _OFFSET.match(text.strip())
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
            if not seconds <= MAX_OFFSET_H * 3600:  # also catches inf from endless digits
                raise UsageError(
                    f"{option} {text.strip()[:40]!r}: offset too large; an offset from the "
                    f"run's start is at most +{MAX_OFFSET_H}h"
                )
            return cls(offset=timedelta(seconds=seconds))
        moment = parse_ts(text.strip())
        if moment is None:
            raise UsageError(
                f"{option} {text!r}: expected an RFC 3339 time with a zone "
                "(2024-05-01T10:00:00Z) or an offset from the run's start (+90s, +2m, +500ms)"
            )
        return cls(at=moment)

    def instant(self, run_start: datetime | None) -> datetime | None:
        if self.at is not None:
            return self.at
        if run_start is None or self.offset is None:
            return None
        try:
            return run_start + self.offset
        except OverflowError:  # a run started near year 9999: the bound is after every time
            return _LATEST


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return seconds_text(seconds)
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {rest:02d}s"


def seconds_text(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"
