"""Daylight-saving rules (docs/schedules.md, scheduling spec section 2), as a fixture table of literal instants.

The rules under test:
- spring forward: a fixed-time cron whose wall time is skipped fires once, at the first instant after the gap;
- fall back: a fixed-time cron whose wall time repeats fires once, at the first occurrence;
- a cron whose minute or hour field is a wildcard or step fires at every real instant whose wall clock matches:
  in both copies of a repeated hour, never inside a gap.

Expected instants were worked out by hand from the 2026 transitions listed in TRANSITIONS (checked against
zoneinfo below), and a second, independent oracle scans every minute around every transition of every zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest

from crongraph.schedules.expression import CronExpression


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# zone -> (instant, local wall clock just before, local wall clock at) for each 2026 transition
TRANSITIONS = {
    "America/New_York": [(z(2026, 3, 8, 7), "01:59:59", "03:00:00"), (z(2026, 11, 1, 6), "01:59:59", "01:00:00")],
    "Europe/London": [(z(2026, 3, 29, 1), "00:59:59", "02:00:00"), (z(2026, 10, 25, 1), "01:59:59", "01:00:00")],
    "Europe/Berlin": [(z(2026, 3, 29, 1), "01:59:59", "03:00:00"), (z(2026, 10, 25, 1), "02:59:59", "02:00:00")],
    "Australia/Sydney": [(z(2026, 4, 4, 16), "02:59:59", "02:00:00"), (z(2026, 10, 3, 16), "01:59:59", "03:00:00")],
    "Australia/Lord_Howe": [
        (z(2026, 4, 4, 15), "01:59:59", "01:30:00"),  # a 30-minute shift
        (z(2026, 10, 3, 15, 30), "01:59:59", "02:30:00"),
    ],
    "Pacific/Chatham": [(z(2026, 4, 4, 14), "03:44:59", "02:45:00"), (z(2026, 9, 26, 14), "02:44:59", "03:45:00")],
    "America/Santiago": [(z(2026, 4, 5, 3), "23:59:59", "23:00:00"), (z(2026, 9, 6, 4), "23:59:59", "01:00:00")],
    "Asia/Kolkata": [],
}


@pytest.mark.parametrize("zone", sorted(TRANSITIONS))
def test_the_fixture_transitions_are_the_real_ones(zone: str) -> None:
    tz = ZoneInfo(zone)
    found = []
    t = z(2026, 1, 1)
    while t.year == 2026:
        if (t + timedelta(minutes=15)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
            found.append(t + timedelta(minutes=15))
        t += timedelta(minutes=15)
    assert found == [instant for instant, _, _ in TRANSITIONS[zone]]
    for instant, before, at in TRANSITIONS[zone]:
        assert (instant - timedelta(seconds=1)).astimezone(tz).strftime("%H:%M:%S") == before
        assert instant.astimezone(tz).strftime("%H:%M:%S") == at


# (zone, expression, after, the next occurrences, what it shows)
FIXTURES = [
    # --- America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z)
    ("America/New_York", "0 2 * * *", z(2026, 3, 7, 12), [z(2026, 3, 8, 7), z(2026, 3, 9, 6)], "gap: at 03:00 EDT"),
    ("America/New_York", "30 2 * * *", z(2026, 3, 7, 12), [z(2026, 3, 8, 7), z(2026, 3, 9, 6, 30)], "gap"),
    ("America/New_York", "30 2 * * SUN", z(2026, 3, 1, 12), [z(2026, 3, 8, 7), z(2026, 3, 15, 6, 30)], "weekly"),
    (
        "America/New_York",
        "0 1-3 * * *",
        z(2026, 3, 8, 5),
        [z(2026, 3, 8, 6), z(2026, 3, 8, 7), z(2026, 3, 9, 5)],
        "02:00 and 03:00 both land on 07:00Z: one fire",
    ),
    (
        "America/New_York",
        "0 2 * * * *",
        z(2026, 3, 8, 6, 59),
        [z(2026, 3, 8, 7), z(2026, 3, 9, 6), z(2026, 3, 9, 6, 0, 1)],
        "a skipped minute of seconds fires once",
    ),
    (
        "America/New_York",
        "*/15 * * * *",
        z(2026, 3, 8, 6, 30),
        [z(2026, 3, 8, 6, 45), z(2026, 3, 8, 7), z(2026, 3, 8, 7, 15)],
        "elapsed: nothing in the gap",
    ),
    (
        "America/New_York",
        "0 * * * *",
        z(2026, 3, 8, 5, 30),
        [z(2026, 3, 8, 6), z(2026, 3, 8, 7), z(2026, 3, 8, 8)],
        "hourly: 01:00 EST, 03:00 EDT",
    ),
    (
        "America/New_York",
        "*/30 2 * * *",
        z(2026, 3, 7, 12),
        [z(2026, 3, 9, 6), z(2026, 3, 9, 6, 30)],
        "elapsed crons invent nothing for a skipped hour",
    ),
    (
        "America/New_York",
        "30 1 * * *",
        z(2026, 10, 31, 12),
        [z(2026, 11, 1, 5, 30), z(2026, 11, 2, 6, 30)],
        "repeat: first copy only",
    ),
    ("America/New_York", "0 1 * * *", z(2026, 10, 31, 12), [z(2026, 11, 1, 5), z(2026, 11, 2, 6)], "repeat"),
    ("America/New_York", "30 1 * * *", z(2026, 11, 1, 5, 45), [z(2026, 11, 2, 6, 30)], "from inside the repeat"),
    ("America/New_York", "0 1 * * *", z(2026, 11, 1, 6, 10), [z(2026, 11, 2, 6)], "from the second copy"),
    (
        "America/New_York",
        "0 1-3 * * *",
        z(2026, 11, 1, 4, 30),
        [z(2026, 11, 1, 5), z(2026, 11, 1, 7), z(2026, 11, 1, 8)],
        "fixed list: 01:00 once",
    ),
    (
        "America/New_York",
        "*/15 * * * *",
        z(2026, 11, 1, 5, 40),
        [z(2026, 11, 1, 5, 45), z(2026, 11, 1, 6), z(2026, 11, 1, 6, 15)],
        "elapsed: both copies",
    ),
    (
        "America/New_York",
        "0 * * * *",
        z(2026, 11, 1, 4, 30),
        [z(2026, 11, 1, 5), z(2026, 11, 1, 6), z(2026, 11, 1, 7)],
        "01:00 EDT and 01:00 EST",
    ),
    (
        "America/New_York",
        "*/30 1 * * *",
        z(2026, 11, 1, 5, 59),
        [z(2026, 11, 1, 6), z(2026, 11, 1, 6, 30), z(2026, 11, 2, 6)],
        "from just before the clock goes back",
    ),
    # --- Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT (both 01:00Z)
    ("Europe/London", "30 1 * * *", z(2026, 3, 28, 12), [z(2026, 3, 29, 1), z(2026, 3, 30, 0, 30)], "gap"),
    (
        "Europe/London",
        "0 * * * *",
        z(2026, 3, 28, 23, 30),
        [z(2026, 3, 29, 0), z(2026, 3, 29, 1), z(2026, 3, 29, 2)],
        "no 01:00 that night",
    ),
    ("Europe/London", "30 1 * * *", z(2026, 10, 24, 12), [z(2026, 10, 25, 0, 30), z(2026, 10, 26, 1, 30)], "rep"),
    (
        "Europe/London",
        "*/15 * * * *",
        z(2026, 10, 25, 0, 40),
        [z(2026, 10, 25, 0, 45), z(2026, 10, 25, 1), z(2026, 10, 25, 1, 15)],
        "both copies",
    ),
    (
        "Europe/London",
        "0 * * * *",
        z(2026, 10, 24, 23, 30),
        [z(2026, 10, 25, 0), z(2026, 10, 25, 1), z(2026, 10, 25, 2)],
        "01:00 BST and 01:00 GMT",
    ),
    # --- Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET (both 01:00Z)
    ("Europe/Berlin", "30 2 * * *", z(2026, 3, 28, 12), [z(2026, 3, 29, 1), z(2026, 3, 30, 0, 30)], "gap"),
    (
        "Europe/Berlin",
        "0 * * * *",
        z(2026, 3, 28, 23, 30),
        [z(2026, 3, 29, 0), z(2026, 3, 29, 1), z(2026, 3, 29, 2)],
        "01:00 CET, 03:00 CEST",
    ),
    ("Europe/Berlin", "30 2 * * *", z(2026, 10, 24, 12), [z(2026, 10, 25, 0, 30), z(2026, 10, 26, 1, 30)], "rep"),
    (
        "Europe/Berlin",
        "*/30 * * * *",
        z(2026, 10, 25, 0, 15),
        [z(2026, 10, 25, 0, 30), z(2026, 10, 25, 1), z(2026, 10, 25, 1, 30), z(2026, 10, 25, 2)],
        "both copies",
    ),
    # --- Australia/Sydney (south): 2026-04-05 03:00 AEDT -> 02:00 AEST; 2026-10-04 02:00 AEST -> 03:00 AEDT
    ("Australia/Sydney", "30 2 * * *", z(2026, 4, 4), [z(2026, 4, 4, 15, 30), z(2026, 4, 5, 16, 30)], "repeat"),
    (
        "Australia/Sydney",
        "0 * * * *",
        z(2026, 4, 4, 14, 30),
        [z(2026, 4, 4, 15), z(2026, 4, 4, 16), z(2026, 4, 4, 17)],
        "02:00 AEDT and 02:00 AEST",
    ),
    ("Australia/Sydney", "30 2 * * *", z(2026, 10, 3), [z(2026, 10, 3, 16), z(2026, 10, 4, 15, 30)], "gap"),
    (
        "Australia/Sydney",
        "*/15 * * * *",
        z(2026, 10, 3, 15, 40),
        [z(2026, 10, 3, 15, 45), z(2026, 10, 3, 16), z(2026, 10, 3, 16, 15)],
        "nothing in the gap",
    ),
    # --- Australia/Lord_Howe (+10:30/+11, a 30-minute shift): 04-05 02:00 -> 01:30; 10-04 02:00 -> 02:30
    ("Australia/Lord_Howe", "45 1 * * *", z(2026, 4, 4), [z(2026, 4, 4, 14, 45), z(2026, 4, 5, 15, 15)], "repeat"),
    (
        "Australia/Lord_Howe",
        "*/15 * * * *",
        z(2026, 4, 4, 14, 20),
        [z(2026, 4, 4, 14, 30), z(2026, 4, 4, 14, 45), z(2026, 4, 4, 15), z(2026, 4, 4, 15, 15), z(2026, 4, 4, 15, 30)],
        "01:30 and 01:45 twice",
    ),
    (
        "Australia/Lord_Howe",
        "0 * * * *",
        z(2026, 4, 4, 13, 30),
        [z(2026, 4, 4, 14), z(2026, 4, 4, 15, 30), z(2026, 4, 4, 16, 30)],
        "01:00 is not repeated",
    ),
    ("Australia/Lord_Howe", "15 2 * * *", z(2026, 10, 3), [z(2026, 10, 3, 15, 30), z(2026, 10, 4, 15, 15)], "gap"),
    (
        "Australia/Lord_Howe",
        "*/15 * * * *",
        z(2026, 10, 3, 15, 10),
        [z(2026, 10, 3, 15, 15), z(2026, 10, 3, 15, 30), z(2026, 10, 3, 15, 45)],
        "no 02:00 or 02:15",
    ),
    (
        "Australia/Lord_Howe",
        "0 * * * *",
        z(2026, 10, 3, 14),
        [z(2026, 10, 3, 14, 30), z(2026, 10, 3, 16), z(2026, 10, 3, 17)],
        "no 02:00",
    ),
    # --- Pacific/Chatham (+12:45/+13:45): 04-05 03:45 -> 02:45; 09-27 02:45 -> 03:45
    ("Pacific/Chatham", "0 3 * * *", z(2026, 4, 4), [z(2026, 4, 4, 13, 15), z(2026, 4, 5, 14, 15)], "repeat"),
    (
        "Pacific/Chatham",
        "0 * * * *",
        z(2026, 4, 4, 12, 30),
        [z(2026, 4, 4, 13, 15), z(2026, 4, 4, 14, 15), z(2026, 4, 4, 15, 15)],
        "03:00 twice",
    ),
    ("Pacific/Chatham", "0 3 * * *", z(2026, 9, 26), [z(2026, 9, 26, 14), z(2026, 9, 27, 13, 15)], "gap: 03:45"),
    (
        "Pacific/Chatham",
        "30 * * * *",
        z(2026, 9, 26, 13),
        [z(2026, 9, 26, 13, 45), z(2026, 9, 26, 14, 45), z(2026, 9, 26, 15, 45)],
        "no 03:30",
    ),
    # --- America/Santiago (south, at midnight): 04-05 00:00 -> 04-04 23:00; 09-06 00:00 -> 01:00
    ("America/Santiago", "30 23 * * *", z(2026, 4, 4, 12), [z(2026, 4, 5, 2, 30), z(2026, 4, 6, 3, 30)], "repeat"),
    (
        "America/Santiago",
        "0 * * * *",
        z(2026, 4, 5, 1, 30),
        [z(2026, 4, 5, 2), z(2026, 4, 5, 3), z(2026, 4, 5, 4)],
        "23:00 twice",
    ),
    ("America/Santiago", "0 0 * * *", z(2026, 9, 5, 12), [z(2026, 9, 6, 4), z(2026, 9, 7, 3)], "midnight skipped"),
    ("America/Santiago", "30 0 * * *", z(2026, 9, 5, 12), [z(2026, 9, 6, 4), z(2026, 9, 7, 3, 30)], "gap"),
    (
        "America/Santiago",
        "*/30 * * * *",
        z(2026, 9, 6, 3),
        [z(2026, 9, 6, 3, 30), z(2026, 9, 6, 4), z(2026, 9, 6, 4, 30)],
        "no 00:00 or 00:30",
    ),
    # --- no DST, non-hour offsets
    ("Asia/Kolkata", "30 9 * * *", z(2026, 3, 8), [z(2026, 3, 8, 4), z(2026, 3, 9, 4)], "+05:30"),
    ("Asia/Kolkata", "0 2 * * *", z(2026, 11, 1), [z(2026, 11, 1, 20, 30), z(2026, 11, 2, 20, 30)], "+05:30"),
    (
        "Asia/Kolkata",
        "*/45 * * * *",
        z(2026, 3, 8),
        [z(2026, 3, 8, 0, 15), z(2026, 3, 8, 0, 30), z(2026, 3, 8, 1, 15)],
        "minutes 0 and 45 local",
    ),
    ("Asia/Kathmandu", "0 0 * * *", z(2026, 3, 8), [z(2026, 3, 8, 18, 15), z(2026, 3, 9, 18, 15)], "+05:45"),
]


@pytest.mark.parametrize(
    ("zone", "text", "after", "expected", "why"),
    FIXTURES,
    ids=[f"{zone}|{text}|{after:%m-%dT%H:%M}" for zone, text, after, _, _ in FIXTURES],
)
def test_fixture(zone: str, text: str, after: datetime, expected: list[datetime], why: str) -> None:
    assert CronExpression.parse(text).upcoming(after, ZoneInfo(zone), len(expected)) == expected, why


# ---- an independent oracle, around every transition of every zone ---------------------------------------


def _oracle(
    minutes: set[int], hours: set[int], fixed: bool, tz: ZoneInfo, lo: datetime, hi: datetime
) -> list[datetime]:
    """Fires in (lo, hi] by definition, scanning each UTC minute: a wildcard cron fires whenever the wall clock
    matches; a fixed-time one at the first copy of a matching wall time, or when the clock jumps over one."""

    def match(wall: datetime) -> bool:
        return wall.minute in minutes and wall.hour in hours

    out = []
    t = lo.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t <= hi:
        local = t.astimezone(tz)
        wall = local.replace(tzinfo=None, fold=0)
        previous = (t - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None, fold=0)
        skipped = wall - previous - timedelta(minutes=1)  # > 0 only just after a spring-forward
        jumped = any(match(previous + timedelta(minutes=k)) for k in range(1, skipped // timedelta(minutes=1) + 1))
        if (match(wall) and (not fixed or local.fold == 0)) or (fixed and jumped):
            out.append(t)
        t += timedelta(minutes=1)
    return out


def _transitions_2026(tz: ZoneInfo) -> list[datetime]:
    found, t = [], z(2026, 1, 1)
    while t.year == 2026:
        nxt = t + timedelta(days=1)
        if nxt.astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
            low, high = 0, 86400  # seconds after t: the offset changes in (low, high]
            while high - low > 1:
                mid = (low + high) // 2
                moved = (t + timedelta(seconds=mid)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset()
                low, high = (low, mid) if moved else (mid, high)
            found.append(t + timedelta(seconds=high))
        t = nxt
    return found


ORACLE_TEXTS = [
    ("*/15 * * * *", {0, 15, 30, 45}, set(range(24))),
    ("0 * * * *", {0}, set(range(24))),
    ("0,30 */2 * * *", {0, 30}, set(range(0, 24, 2))),
]


@pytest.mark.slow
@pytest.mark.parametrize("zone", sorted(available_timezones()))
def test_every_zone_follows_the_rules_around_its_2026_transitions(zone: str) -> None:
    tz = ZoneInfo(zone)
    for transition in _transitions_2026(tz):
        lo, hi = transition - timedelta(hours=3), transition + timedelta(hours=3)
        stops = (transition - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) + timedelta(seconds=1)
        resumes = transition.astimezone(tz).replace(tzinfo=None)
        # Fixed times inside the gap (which starts where the clock stops) or the repeated period (which starts
        # where it resumes), whichever this transition makes.
        first, second = (min(stops, resumes) + timedelta(minutes=m) for m in (0, 15))
        cases = [(text, m, h, False) for text, m, h in ORACLE_TEXTS]
        cases += [(f"{p.minute} {p.hour} * * *", {p.minute}, {p.hour}, True) for p in (first, second)]
        both = {first.minute, second.minute}
        cases += [(f"{','.join(map(str, sorted(both)))} {first.hour} * * *", both, {first.hour}, True)]
        for text, minutes, hours, fixed in cases:
            expr = CronExpression.parse(text)
            assert expr.fixed_time is fixed
            expected = _oracle(minutes, hours, fixed, tz, lo, hi)
            assert expr.occurrences_between(lo, hi, tz, 1000) == expected, (zone, transition, text)
