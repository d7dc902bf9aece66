"""Which occurrences of a cron are due at `now`, and what the missed-occurrence policy does with them.

Pure: imports only the standard library and `expression`; `now` is always an argument.

Invariants:
- The stored `next_run_date` is the earliest unfired occurrence; the due occurrences are that one and every
  occurrence after it up to `now`. An occurrence is *missed* when `now - occurrence > grace`: the scheduler is
  millisecond-accurate, so anything later means the server was down or overloaded.
- Nothing at or after `end_time` is fired, and a plan never fires more than `catchup_limit` occurrences.
- Every due occurrence is either fired or counted as skipped: `len(fire) + skipped_count` is the number due.
- The returned `next_run_date` is the first occurrence strictly after `now` and before `end_time`, or None
  (finished). It never points at an occurrence from the past, so a plan is applied once and moves on.
- Bounded work whatever the outage: the latest occurrences are found by searching backwards from `now` in
  growing windows, at most `_COUNT_CAP` due occurrences are enumerated, and beyond that `skipped_count` is an
  estimate (wall-clock arithmetic that ignores DST; `skipped_count_exact` is then False) and `skipped` holds
  the earliest `SKIPPED_SAMPLE` of them. A `* * * * * *` cron after a year of downtime plans in milliseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

from crongraph.schedules.at import Schedule

DEFAULT_GRACE = timedelta(seconds=5)
DEFAULT_CATCHUP_WINDOW = timedelta(hours=24)
DEFAULT_CATCHUP_LIMIT = 100
SKIPPED_SAMPLE = 100  # how many skipped instants a plan lists; the count covers the rest
_COUNT_CAP = 1000  # due occurrences enumerated one by one before switching to an estimate
_TICK = timedelta(microseconds=1)


class MissedPolicy(StrEnum):
    """What to do with occurrences the scheduler could not fire on time (server down or overloaded).

    SKIP: fire only occurrences within the grace period. LATEST (the default; the reference behaves so): fire
    those, or when there are none, the single most recent missed one. ALL: fire every occurrence from the
    catch-up window, the newest `catchup_limit` of them.
    """

    SKIP = "skip"
    LATEST = "latest"
    ALL = "all"


class OverlapPolicy(StrEnum):
    """What an occurrence does when the cron's previous run is still pending or running (docs/crons.md).

    ALLOW (the default, the reference's behaviour): it runs anyway. SKIP: it is logged `skipped`. BUFFER_ONE: it
    waits for the running one, unless one already waits (then it is skipped). CANCEL_PREVIOUS: the cron's runs
    in flight are cancelled (interrupt) and it starts.
    """

    ALLOW = "allow"
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    CANCEL_PREVIOUS = "cancel_previous"


@dataclass(frozen=True)
class DuePlan:
    fire: list[datetime]  # scheduled instants to fire now, ascending, UTC
    skipped: list[datetime]  # the earliest SKIPPED_SAMPLE due occurrences not fired, ascending
    skipped_count: int  # all due occurrences not fired (may exceed len(skipped))
    next_run_date: datetime | None  # first occurrence after now and before end_time; None = finished
    skipped_count_exact: bool = True  # False when skipped_count was estimated (see module doc)


def first_run_date(
    expr: Schedule,
    tz: ZoneInfo,
    now: datetime,
    end_time: datetime | None,
    start_time: datetime | None = None,
) -> datetime | None:
    """For create, re-enable and schedule change: the first occurrence after `now`, at or after `start_time`
    and before `end_time`.

    Never an occurrence from before `now`: a re-enabled cron does not fire what it missed while paused.
    """
    _require_aware(now, end_time, start_time)
    after = max(now, start_time - _TICK) if start_time is not None else now
    nxt = expr.next_after(after, tz)
    return nxt if nxt is not None and (end_time is None or nxt < end_time) else None


def jitter_delay(cron_id: str, scheduled_for: datetime, jitter_seconds: float) -> timedelta:
    """How long after its scheduled instant an occurrence starts: in [0, jitter_seconds), microsecond steps,
    derived from (cron_id, scheduled instant) alone, so every replica and every restart computes the same delay
    (a SHA-256, not Python's per-process salted hash())."""
    span = int(jitter_seconds * 1_000_000)
    if span <= 0:
        return timedelta(0)
    _require_aware(scheduled_for)
    key = f"{cron_id}|{scheduled_for.astimezone(UTC).isoformat()}".encode()
    value = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    return timedelta(microseconds=value % span)


def shortest_interval(expr: Schedule, tz: ZoneInfo, after: datetime, samples: int = 1000) -> timedelta | None:
    """The shortest time between consecutive occurrences among the first `samples` after `after` (None when
    fewer than two exist). The time-of-day pattern repeats every matching day, so within-day gaps show on the
    first matching day and cross-midnight gaps within days; a sample of 1000 finds the shortest gap of every
    schedule whose matching days are not rarer than its occurrences per day allow (bounded: ~10 ms)."""
    _require_aware(after)
    times = expr.upcoming(after, tz, samples)
    gaps = [b - a for a, b in pairwise(times)]
    return min(gaps) if gaps else None


def plan_due(
    expr: Schedule,
    tz: ZoneInfo,
    next_run_date: datetime,
    now: datetime,
    *,
    policy: MissedPolicy,
    end_time: datetime | None,
    grace: timedelta = DEFAULT_GRACE,
    catchup_window: timedelta = DEFAULT_CATCHUP_WINDOW,
    catchup_limit: int = DEFAULT_CATCHUP_LIMIT,
) -> DuePlan:
    """What to fire at `now` for a cron whose earliest unfired occurrence is `next_run_date`."""
    policy = MissedPolicy(policy)
    if grace < timedelta(0) or catchup_window < timedelta(0) or catchup_limit < 0:
        raise ValueError("grace, catchup_window and catchup_limit must not be negative")
    _require_aware(next_run_date, now, end_time)
    first, now = next_run_date.astimezone(UTC), now.astimezone(UTC)
    end = end_time.astimezone(UTC) if end_time is not None else None
    if end is not None and first >= end:
        return DuePlan([], [], 0, None)
    if now < first:
        return DuePlan([], [], 0, first)
    if end is None or end > now:
        after = expr.next_after(first, tz)
        if after is None or after > now:
            # The common case (the server was up): the stored occurrence is the only one due, and the one after
            # it is the next after now. One step of the expression instead of the searches below; same answer.
            window = catchup_window if policy is MissedPolicy.ALL else grace
            fired = catchup_limit > 0 and (first >= now - window or policy is MissedPolicy.LATEST)
            nxt = after if after is not None and (end is None or after < end) else None
            return DuePlan([first], [], 0, nxt) if fired else DuePlan([], [first], 1, nxt)
    return _search_plan(expr, tz, first, now, end, policy, grace, catchup_window, catchup_limit)


def _search_plan(
    expr: Schedule,
    tz: ZoneInfo,
    first: datetime,
    now: datetime,
    end: datetime | None,
    policy: MissedPolicy,
    grace: timedelta,
    catchup_window: timedelta,
    catchup_limit: int,
) -> DuePlan:
    """plan_due for any number of due occurrences (after downtime, or a dense schedule), by bounded searches."""
    # The last instant that may fire: now, or just before end_time.
    last = now if end is None or end > now else end - _TICK
    due = _Due(expr, tz, first, last)
    if policy is MissedPolicy.ALL:
        fire = due.latest(max(first, now - catchup_window), catchup_limit)
    else:
        fire = due.latest(max(first, now - grace), catchup_limit)  # not missed: on time, give or take grace
        if policy is MissedPolicy.LATEST and not fire:
            fire = due.latest(first, min(1, catchup_limit))
    skipped, count, exact = due.skipped(set(fire))
    return DuePlan(fire, skipped, count, first_run_date(expr, tz, now, end), exact)


def _require_aware(*values: datetime | None) -> None:
    # Comparing naive with aware datetimes raises TypeError deep inside; say what is wrong instead.
    if any(v is not None and v.utcoffset() is None for v in values):
        raise ValueError("schedule planning needs timezone-aware datetimes")


class _Due:
    """The due occurrences of one plan: `first` (the stored next_run_date, fired as stored) and every
    occurrence after it up to `last` inclusive."""

    def __init__(self, expr: Schedule, tz: ZoneInfo, first: datetime, last: datetime) -> None:
        self.expr, self.tz, self.first, self.last = expr, tz, first, last

    def between(self, start: datetime, cap: int) -> tuple[list[datetime], bool]:
        """Due occurrences >= `start`, ascending; False as the second value if more than `cap` exist."""
        out: list[datetime] = []
        if start <= self.first:
            out.append(self.first)
            cursor = self.first
        else:
            cursor = start - _TICK
        nxt = self.expr.next_after(cursor, self.tz)
        while nxt is not None and nxt <= self.last:
            if len(out) >= cap:
                return out, False
            out.append(nxt)
            nxt = self.expr.next_after(nxt, self.tz)
        return out, True

    def latest(self, lower: datetime, k: int) -> list[datetime]:
        """The `k` most recent due occurrences >= `lower`, ascending.

        Searches windows ending at `last` that grow fourfold until one holds k occurrences or reaches
        `lower`. If a window overflows the enumeration cap, the previous window held fewer than k and
        occurrences are at least a second apart, so bisecting between the two ends in a few dozen steps.
        """
        if k <= 0 or lower > self.last:
            return []
        cap = 4 * k + 64
        short, span = timedelta(0), timedelta(seconds=2)
        while True:
            start = max(lower, self.last - span)
            found, complete = self.between(start, cap)
            if complete and (len(found) >= k or start == lower):
                return found[-k:]
            if not complete:
                break
            short, span = span, span * 4
        long = span
        for _ in range(64):
            mid = short + (long - short) / 2
            found, complete = self.between(max(lower, self.last - mid), cap)
            if not complete:
                long = mid
            elif len(found) >= k:
                return found[-k:]
            else:
                short = mid
        return self.between(max(lower, self.last - short), cap)[0][-k:]  # not reached: the loop converges

    def skipped(self, fired: set[datetime]) -> tuple[list[datetime], int, bool]:
        """The earliest skipped instants, how many were skipped, and whether that count is exact."""
        # The estimate is cheap (months, not occurrences); when it is clearly large, enumerate only what the
        # sample needs instead of _COUNT_CAP occurrences that would be thrown away.
        estimate = 1 + self.expr.approx_count_between(self.first, self.last, self.tz)
        cap = _COUNT_CAP if estimate <= _COUNT_CAP else SKIPPED_SAMPLE + len(fired)
        found, complete = self.between(self.first, cap)
        sample = [t for t in found if t not in fired][:SKIPPED_SAMPLE]
        if complete:
            return sample, len(found) - len(fired), True
        return sample, max(estimate, len(found) + 1) - len(fired), False
