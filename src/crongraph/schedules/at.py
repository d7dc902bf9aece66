"""One-shot schedules (`@at <ISO-8601 instant>`) and the one parser for every schedule string.

Pure: only the standard library and `expression`; the clock is never read.

Invariants:
- `@at` names one instant. With an offset (`@at 2026-05-01T09:00:00+02:00`, `...Z`) it is that instant whatever
  the cron's time zone; without one (`@at 2026-05-01T09:00`) it is a wall-clock time read in the cron's
  `timezone`, with the fixed-time DST rules of docs/schedules.md (a time in a gap fires at the end of the gap, a
  repeated time at its first occurrence).
- Like every cron occurrence, the instant is a whole second (sub-second instants are refused): the fire log
  keeps fractional instants for manual fires, so that those can never collide with a scheduled occurrence.
- An `AtInstant` answers the same questions as a `CronExpression` (next_after, upcoming, occurrences_between,
  approx_count_between, describe), so policy and the scheduler treat both alike; after its instant it is
  finished (next_after returns None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from crongraph.schedules.expression import MAX_SCHEDULE_CHARS, CronExpression, InvalidSchedule, wall_to_utc

PREFIX = "@at"


@dataclass(frozen=True)
class AtInstant:
    """A validated `@at` schedule. `instant` is set (UTC) when the text had an offset, else `wall` (naive)."""

    text: str
    instant: datetime | None = field(init=False, compare=False)
    wall: datetime | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        text = self.text
        raw = text.strip()[len(PREFIX) :].strip()
        if not raw:
            raise InvalidSchedule(
                f"Invalid cron schedule '{text}': '@at' needs an ISO-8601 instant, e.g. '@at 2026-05-01T09:00:00Z'."
            )
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidSchedule(
                f"Invalid cron schedule '{text}': '{raw}' is not an ISO-8601 date-time "
                "(for example '2026-05-01T09:00:00+02:00', or without an offset to read it in the cron's timezone)."
            ) from None
        if value.microsecond:
            raise InvalidSchedule(f"Invalid cron schedule '{text}': '@at' takes whole seconds; '{raw}' has a fraction.")
        set_ = object.__setattr__  # frozen dataclass: derived fields are computed once, here
        if value.tzinfo is not None and value.utcoffset() is not None:
            try:
                set_(self, "instant", value.astimezone(UTC))
            except OverflowError:
                raise InvalidSchedule(
                    f"Invalid cron schedule '{text}': '{raw}' falls outside the years 1 to 9999."
                ) from None
            set_(self, "wall", None)
        else:
            set_(self, "instant", None)
            set_(self, "wall", value.replace(tzinfo=None))

    def at(self, tz: ZoneInfo) -> datetime | None:
        """The instant, in UTC, for a cron in `tz`; None when a naive time cannot be placed (years out of range)."""
        if self.instant is not None:
            return self.instant
        assert self.wall is not None
        try:
            return wall_to_utc(self.wall, tz)
        except OverflowError:
            return None

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("next_after needs a timezone-aware datetime")
        at = self.at(tz)
        return at if at is not None and at > after else None

    def upcoming(self, after: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
        at = self.next_after(after, tz)
        return [at] if at is not None and count > 0 else []

    def occurrences_between(self, start: datetime, end: datetime, tz: ZoneInfo, limit: int) -> list[datetime]:
        at = self.next_after(start, tz)
        return [at] if at is not None and at <= end and limit > 0 else []

    def approx_count_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> int:
        return len(self.occurrences_between(start, end, tz, 1))

    def describe(self, tz: ZoneInfo) -> str:
        at = self.at(tz)
        zone = getattr(tz, "key", None) or str(tz)
        if at is None:
            return f"Once, at {self.wall} ({zone})"
        return f"Once, at {at.astimezone(tz):%Y-%m-%d %H:%M:%S} ({zone})"


Schedule = CronExpression | AtInstant


def is_one_shot(text: str) -> bool:
    return isinstance(text, str) and text.strip()[: len(PREFIX) + 1].lower().rstrip() == PREFIX


def parse_schedule(text: str) -> Schedule:
    """Any schedule string: `@at <instant>` or a cron expression. Raises InvalidSchedule naming the problem."""
    if isinstance(text, str) and len(text) <= MAX_SCHEDULE_CHARS and is_one_shot(text):
        return _parse_at(text)
    return CronExpression.parse(text)


@lru_cache(maxsize=1024)
def _parse_at(text: str) -> AtInstant:
    return AtInstant(text)
