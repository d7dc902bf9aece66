"""Schedule math for the dashboard: schedules in words, and the fires of the next hours bucketed across crons.

The browser sends the crons it can see (it read them through the public API, so auth has already filtered them);
this module only computes, it reads nothing from storage. Schedules are parsed by the cron service's own parser,
so the dashboard shows exactly the occurrences the scheduler will fire.

Bounded work on the event loop: each (schedule, zone) contributes at most EXACT_CAP exactly computed occurrences
(~10 µs each); one with more in the window is "frequent" and counted per bucket with the expression's approximate
counter (DST shifts ignored, at most one hour off per transition). Fires are computed once per (schedule, zone)
and clock bucket and shared by every cron and request until the clock enters the next bucket (_WindowCache), and
the loop is yielded to every YIELD_EVERY crons, so 1,000 crons never hold it for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from crongraph.errors import InvalidInput
from crongraph.services.crons import parse_schedule

EXACT_CAP = 200
YIELD_EVERY = 50
MAX_SAMPLE = 5


class Occurrences(Protocol):
    """What the dashboard asks of a parsed schedule (a cron expression or a one-shot `@at`)."""

    def occurrences_between(self, start: datetime, end: datetime, tz: ZoneInfo, limit: int) -> list[datetime]: ...

    def approx_count_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> int: ...

    def describe(self, tz: ZoneInfo) -> str: ...


@dataclass(frozen=True)
class CronRef:
    cron_id: str
    schedule: str
    timezone: str | None
    end_time: datetime | None
    next_run_date: datetime | None


@dataclass
class Bucket:
    start: datetime
    fires: int = 0  # exact fires of the crons that are not frequent
    crons: int = 0  # how many of those crons fire in the bucket
    estimated: int = 0  # estimated fires of the frequent crons, kept apart so they do not hide the bursts
    sample: list[str] = field(default_factory=list)


def _parse(schedule: str, timezone: str | None) -> tuple[Occurrences, ZoneInfo]:
    expr, tz = parse_schedule(schedule, timezone)
    return expr, tz


def describe_all(items: Sequence[tuple[str, str | None]]) -> list[dict[str, str | None]]:
    """Per (schedule, zone): `{"description": "Every 5 minutes (UTC)", "error": None}` or the parser's error."""
    seen: dict[tuple[str, str | None], dict[str, str | None]] = {}
    out = []
    for key in items:
        if key not in seen:
            try:
                expr, tz = _parse(*key)
                seen[key] = {"description": expr.describe(tz), "error": None}
            except InvalidInput as exc:
                seen[key] = {"description": None, "error": str(exc)}
        out.append(seen[key])
    return out


@dataclass(frozen=True)
class _Fires:
    """One (schedule, zone)'s fires over a window: exact instants, or estimated counts per bucket when frequent;
    neither when the schedule does not parse."""

    times: tuple[datetime, ...] = ()
    approx: tuple[int, ...] | None = None
    invalid: bool = False


class _WindowCache:
    """Fires per (schedule, zone) over the window (origin, origin + hours + one bucket], kept until the clock
    moves to the next bucket: every request in the meantime (each open dashboard refreshes its timeline) only
    filters them. Bounded: cleared past MAX_ENTRIES schedules."""

    MAX_ENTRIES = 50_000

    def __init__(self) -> None:
        self.window: tuple[datetime, int, int] | None = None
        self.entries: dict[tuple[str, str | None], _Fires] = {}

    def get(self, window: tuple[datetime, int, int], schedule: str, timezone: str | None) -> _Fires:
        if window != self.window or len(self.entries) > self.MAX_ENTRIES:
            self.window, self.entries = window, {}
        key = (schedule, timezone)
        found = self.entries.get(key)
        if found is None:
            found = self.entries[key] = _compute(schedule, timezone, *window)
        return found


_cache = _WindowCache()


def _compute(schedule: str, timezone: str | None, origin: datetime, hours: int, bucket_minutes: int) -> _Fires:
    step = timedelta(minutes=bucket_minutes)
    span_end = origin + timedelta(hours=hours) + step
    try:
        expr, tz = _parse(schedule, timezone)
    except InvalidInput:
        return _Fires(invalid=True)
    times = expr.occurrences_between(origin, span_end, tz, EXACT_CAP)
    if len(times) < EXACT_CAP:
        return _Fires(times=tuple(times))
    n = hours * 60 // bucket_minutes + 1
    return _Fires(
        approx=tuple(expr.approx_count_between(origin + step * i, origin + step * (i + 1), tz) for i in range(n))
    )


def _counts(
    ref: CronRef, fires: _Fires, start: datetime, origin: datetime, end: datetime, step: timedelta, n: int
) -> tuple[list[int], bool]:
    """Fires of one cron in (start, min(end, its end_time)] per bucket (bucket i begins at origin + i × step),
    and whether they were estimated (a frequent cron)."""
    counts = [0] * n
    stop = min(end, ref.end_time) if ref.end_time is not None else end
    if fires.invalid:
        # A schedule this server cannot parse (written by a newer version): its stored next fire is all we know.
        if ref.next_run_date is not None and start < ref.next_run_date <= stop:
            counts[min(n - 1, int((ref.next_run_date - origin) / step))] += 1
        return counts, False
    if fires.approx is not None:
        for i in range(n):
            if origin + step * i < stop:
                counts[i] = fires.approx[i]
        return counts, True
    for t in fires.times:
        if start < t <= stop:
            # One exactly at the window's end belongs to the last bucket.
            counts[min(n - 1, int((t - origin) / step))] += 1
    return counts, False


async def timeline(refs: Sequence[CronRef], start: datetime, hours: int, bucket_minutes: int) -> dict[str, object]:
    """Fires of `refs` in (start, start + hours], in buckets of `bucket_minutes`:
    `{start, end, bucket_minutes, buckets: [{start, fires, crons, estimated, sample: [cron_id ≤ 5]}],
    frequent: [cron_id]}`. Times are UTC datetimes. `fires`, `crons` and `sample` count the crons with fewer than
    EXACT_CAP fires in the window, exactly; `estimated` is the approximate fires of the others (`frequent`)."""
    step = timedelta(minutes=bucket_minutes)
    # Buckets are aligned to the clock (09:00, 09:15, ...) so a burst at 09:00 is one bar with a readable time;
    # the first bucket starts before `start` and counts only what is still to come.
    origin = start.replace(second=0, microsecond=0) - timedelta(minutes=start.minute % bucket_minutes)
    n = hours * 60 // bucket_minutes + (1 if origin < start else 0)
    end = start + timedelta(hours=hours)
    window = (origin, hours, bucket_minutes)
    buckets = [Bucket(origin + step * i) for i in range(n)]
    frequent: list[str] = []
    for index, ref in enumerate(refs):
        if index and index % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let the scheduler and the API run between slices of this work
        counts, estimated = _counts(ref, _cache.get(window, ref.schedule, ref.timezone), start, origin, end, step, n)
        if estimated:
            frequent.append(ref.cron_id)
        for bucket, count in zip(buckets, counts, strict=True):
            if count and estimated:
                bucket.estimated += count
            elif count:
                bucket.fires += count
                bucket.crons += 1
                if len(bucket.sample) < MAX_SAMPLE:
                    bucket.sample.append(ref.cron_id)
    return {
        "start": start,
        "end": end,
        "bucket_minutes": bucket_minutes,
        "buckets": [
            {"start": b.start, "fires": b.fires, "crons": b.crons, "estimated": b.estimated, "sample": b.sample}
            for b in buckets
        ],
        "frequent": frequent,
    }
