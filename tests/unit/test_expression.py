"""Cron expression grammar, validation messages, descriptions, and properties against a brute-force oracle.

Expected instants are literals worked out by hand from a calendar (2026-01-01 is a Thursday); the property
tests compare against a deliberately naive day-by-day scan written here, not against the code under test.
"""

from __future__ import annotations

import calendar
import itertools
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crongraph.schedules.expression import CronExpression, InvalidSchedule, InvalidTimezone, load_timezone

UTC_ZONE = ZoneInfo("UTC")
START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def upcoming(text: str, n: int = 3, after: datetime = START, tz: ZoneInfo = UTC_ZONE) -> list[datetime]:
    return CronExpression.parse(text).upcoming(after, tz, n)


# ---- acceptance: what each form means -------------------------------------------------------------------

ACCEPTED = [
    # standard fields, lists, ranges, steps
    ("* * * * *", [z(2026, 1, 1, 0, 1), z(2026, 1, 1, 0, 2), z(2026, 1, 1, 0, 3)]),
    ("*/15 * * * *", [z(2026, 1, 1, 0, 15), z(2026, 1, 1, 0, 30), z(2026, 1, 1, 0, 45)]),
    ("5/20 * * * *", [z(2026, 1, 1, 0, 5), z(2026, 1, 1, 0, 25), z(2026, 1, 1, 0, 45)]),
    ("0-59/30 * * * *", [z(2026, 1, 1, 0, 30), z(2026, 1, 1, 1, 0), z(2026, 1, 1, 1, 30)]),
    ("1,2,3 * * * *", [z(2026, 1, 1, 0, 1), z(2026, 1, 1, 0, 2), z(2026, 1, 1, 0, 3)]),
    ("01 02 * * *", [z(2026, 1, 1, 2, 1), z(2026, 1, 2, 2, 1), z(2026, 1, 3, 2, 1)]),
    ("0 9 * * 1-5", [z(2026, 1, 1, 9), z(2026, 1, 2, 9), z(2026, 1, 5, 9)]),
    ("0 0 * * MON-FRI", [z(2026, 1, 2), z(2026, 1, 5), z(2026, 1, 6)]),
    ("0 0 * * mon,wed", [z(2026, 1, 5), z(2026, 1, 7), z(2026, 1, 12)]),
    ("0 12 * * SUN", [z(2026, 1, 4, 12), z(2026, 1, 11, 12), z(2026, 1, 18, 12)]),
    ("0 12 * * 0", [z(2026, 1, 4, 12), z(2026, 1, 11, 12), z(2026, 1, 18, 12)]),
    ("0 12 * * 7", [z(2026, 1, 4, 12), z(2026, 1, 11, 12), z(2026, 1, 18, 12)]),
    ("0 0 * * 0-7", [z(2026, 1, 2), z(2026, 1, 3), z(2026, 1, 4)]),
    ("0 0 * * */2", [z(2026, 1, 3), z(2026, 1, 4), z(2026, 1, 6)]),  # Sun, Tue, Thu, Sat
    ("0 0 1 JAN-MAR *", [z(2026, 2, 1), z(2026, 3, 1), z(2027, 1, 1)]),
    ("0 0 1 jan,jul *", [z(2026, 7, 1), z(2027, 1, 1), z(2027, 7, 1)]),
    ("0 0 1 */6 *", [z(2026, 7, 1), z(2027, 1, 1), z(2027, 7, 1)]),
    (" 0  0\t* * * ", [z(2026, 1, 2), z(2026, 1, 3), z(2026, 1, 4)]),
    ("0 0 29 2 *", [z(2028, 2, 29), z(2032, 2, 29), z(2036, 2, 29)]),
    # wrap-around ranges, as the reference accepts
    ("0 22-2 * * *", [z(2026, 1, 1, 1), z(2026, 1, 1, 2), z(2026, 1, 1, 22)]),
    ("0 0 * * FRI-MON", [z(2026, 1, 2), z(2026, 1, 3), z(2026, 1, 4)]),
    ("0 0 * NOV-FEB 1", [z(2026, 1, 5), z(2026, 1, 12), z(2026, 1, 19)]),
    # '?' is '*' in the day fields
    ("0 0 ? * MON", [z(2026, 1, 5), z(2026, 1, 12), z(2026, 1, 19)]),
    ("0 0 ? * ?", [z(2026, 1, 2), z(2026, 1, 3), z(2026, 1, 4)]),
    # L, W, #
    ("0 0 L * *", [z(2026, 1, 31), z(2026, 2, 28), z(2026, 3, 31)]),
    ("0 0 L 2 *", [z(2026, 2, 28), z(2027, 2, 28), z(2028, 2, 29)]),
    ("0 0 1,L * *", [z(2026, 1, 31), z(2026, 2, 1), z(2026, 2, 28)]),
    ("0 0 25-L 2 *", [z(2026, 2, 25), z(2026, 2, 26), z(2026, 2, 27)]),
    ("0 0 LW * *", [z(2026, 1, 30), z(2026, 2, 27), z(2026, 3, 31)]),  # Jan 31 and Feb 28 are Saturdays
    ("0 0 15W * *", [z(2026, 1, 15), z(2026, 2, 16), z(2026, 3, 16)]),  # Feb 15, Mar 15: Sundays
    ("0 0 W15 * *", [z(2026, 1, 15), z(2026, 2, 16), z(2026, 3, 16)]),
    ("0 0 1W * *", [z(2026, 2, 2), z(2026, 3, 2), z(2026, 4, 1)]),  # Feb 1, Mar 1: Sundays, no jump back
    ("0 0 31W * *", [z(2026, 1, 30), z(2026, 3, 31), z(2026, 5, 29)]),  # months without a 31st: none
    ("0 0 * * 5L", [z(2026, 1, 30), z(2026, 2, 27), z(2026, 3, 27)]),
    ("0 0 * * L5", [z(2026, 1, 30), z(2026, 2, 27), z(2026, 3, 27)]),
    ("0 0 * * FRIL", [z(2026, 1, 30), z(2026, 2, 27), z(2026, 3, 27)]),
    ("0 0 * * 1#2", [z(2026, 1, 12), z(2026, 2, 9), z(2026, 3, 9)]),
    ("0 0 * * MON#2", [z(2026, 1, 12), z(2026, 2, 9), z(2026, 3, 9)]),
    ("0 0 * * MON#1,FRI#3", [z(2026, 1, 5), z(2026, 1, 16), z(2026, 2, 2)]),
    ("0 0 * * 1#5", [z(2026, 3, 30), z(2026, 6, 29), z(2026, 8, 31)]),
    # rare but possible: Feb 29 on a Monday (2100 is not a leap year)
    ("0 0 */28 2 1#5", [z(2044, 2, 29), z(2072, 2, 29), z(2112, 2, 29)]),
    # macros
    ("@hourly", [z(2026, 1, 1, 1), z(2026, 1, 1, 2), z(2026, 1, 1, 3)]),
    ("@daily", [z(2026, 1, 2), z(2026, 1, 3), z(2026, 1, 4)]),
    ("@midnight", [z(2026, 1, 2), z(2026, 1, 3), z(2026, 1, 4)]),
    ("@weekly", [z(2026, 1, 4), z(2026, 1, 11), z(2026, 1, 18)]),
    ("@monthly", [z(2026, 2, 1), z(2026, 3, 1), z(2026, 4, 1)]),
    ("@yearly", [z(2027, 1, 1), z(2028, 1, 1), z(2029, 1, 1)]),
    ("@ANNUALLY", [z(2027, 1, 1), z(2028, 1, 1), z(2029, 1, 1)]),
    # six fields: the sixth is seconds (croniter's reading, which the reference uses)
    ("*/30 * * * * *", [z(2026, 1, 1, 0, 0, 1), z(2026, 1, 1, 0, 0, 2), z(2026, 1, 1, 0, 0, 3)]),
    ("* * * * * */20", [z(2026, 1, 1, 0, 0, 20), z(2026, 1, 1, 0, 0, 40), z(2026, 1, 1, 0, 1, 0)]),
    ("0 0 * * * 30", [z(2026, 1, 1, 0, 0, 30), z(2026, 1, 2, 0, 0, 30), z(2026, 1, 3, 0, 0, 30)]),
    ("30 9 * * * 15", [z(2026, 1, 1, 9, 30, 15), z(2026, 1, 2, 9, 30, 15), z(2026, 1, 3, 9, 30, 15)]),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[t for t, _ in ACCEPTED])
def test_accepted_forms_fire_when_expected(text: str, expected: list[datetime]) -> None:
    assert upcoming(text) == expected


DAY_SEMANTICS = [
    # both day fields restricted: a day matches if EITHER matches (Vixie / Debian cron)
    ("0 0 1,15 * MON", [z(2026, 1, 5), z(2026, 1, 12), z(2026, 1, 15)]),
    ("0 0 13 * FRI", [z(2026, 1, 2), z(2026, 1, 9), z(2026, 1, 13)]),
    ("0 0 1-31/2 * MON", [z(2026, 1, 3), z(2026, 1, 5), z(2026, 1, 7)]),
    ("0 0 30 2 MON", [z(2026, 2, 2), z(2026, 2, 9), z(2026, 2, 16)]),
    # a field starting with '*' makes it AND (Debian): odd days that are also Mondays
    ("0 0 */2 * MON", [z(2026, 1, 5), z(2026, 1, 19), z(2026, 2, 9)]),
    ("0 0 1 * */7", [z(2026, 2, 1), z(2026, 3, 1), z(2026, 11, 1)]),  # '*/7' = Sunday only; 1st AND Sunday
]


@pytest.mark.parametrize(("text", "expected"), DAY_SEMANTICS, ids=[t for t, _ in DAY_SEMANTICS])
def test_day_of_month_and_day_of_week_combine_like_debian_cron(text: str, expected: list[datetime]) -> None:
    assert upcoming(text) == expected


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros_equal_their_expansion(macro: str, expanded: str) -> None:
    tz = ZoneInfo("Europe/Berlin")
    assert upcoming(macro, 20, tz=tz) == upcoming(expanded, 20, tz=tz)
    assert CronExpression.parse(macro).fixed_time == CronExpression.parse(expanded).fixed_time


# ---- rejection: the message names the field and the value ----------------------------------------------

REJECTED = [
    ("61 * * * *", "minute field '61' is out of range 0-59"),
    ("* 24 * * *", "hour field '24' is out of range 0-23"),
    ("0 0 0 * *", "day-of-month field '0' is out of range 1-31"),
    ("0 0 32 * *", "day-of-month field '32' is out of range 1-31"),
    ("0 0 * 13 *", "month field '13' is out of range 1-12"),
    ("0 0 * 0 *", "month field '0' is out of range 1-12"),
    ("0 0 * * 8", "day-of-week field '8' is out of range 0-7"),
    ("* * * * * 60", "second field '60' is out of range 0-59"),
    ("1-61 * * * *", "minute field '1-61': '61' is out of range 0-59"),
    ("0,15,99 * * * *", "minute field '0,15,99': '99' is out of range 0-59"),
    ("0 0 * Foo *", "month field 'Foo' is not a number or a name"),
    ("0 0 * * FUNDAY", "day-of-week field 'FUNDAY' is not a number or a name"),
    ("x * * * *", "minute field 'x' is not a number"),
    ("H * * * *", "minute field 'H' is not a number"),
    ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
    ("*/0 * * * *", "minute field '*/0' has a step of 0"),
    ("*/x * * * *", "minute field '*/x' has a step that is not a whole number"),
    ("-1 * * * *", "minute field '-1' is not a valid range"),
    ("5- * * * *", "minute field '5-' is not a valid range"),
    ("? * * * *", "minute field '?' uses '?'"),
    ("0 0 * * 1#6", "day-of-week field '1#6' needs a week number from 1 to 5"),
    ("0 0 * * 1#0", "day-of-week field '1#0' needs a week number from 1 to 5"),
    ("0 0 * * L", "day-of-week field 'L' needs a weekday with 'L'"),
    ("0 0 L-2 * *", "day-of-month field 'L-2' is not supported"),
    ("0 0 1-5W * *", "day-of-month field '1-5W' is not supported"),
    ("\uff10 * * * *", "minute field '\uff10' contains characters"),
    ("@reboot", "'@reboot' is not a schedule"),
    ("@every 5m", "unknown macro '@every 5m'"),
    ("* * * *", "expected 5 fields"),
    ("0 0 * * * 0 2026", "got 7"),
    ("", "the schedule is empty"),
    ("   ", "the schedule is empty"),
    # never fires
    ("0 0 30 2 *", "can never fire"),
    ("0 0 31 2 *", "can never fire"),
    ("0 0 30,31 2 *", "can never fire"),
    ("0 0 31 4,6,9,11 *", "can never fire"),
    ("0 0 31W 2 *", "can never fire"),
    ("0 0 */30 2 MON#5", "can never fire"),  # AND: day 1 or 31 of February that is a fifth Monday
]


@pytest.mark.parametrize(("text", "fragment"), REJECTED, ids=[t or "<empty>" for t, _ in REJECTED])
def test_rejected_with_a_message_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        CronExpression.parse(text)
    assert str(info.value).startswith(f"Invalid cron schedule '{text}': ")
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_message_reads_as_a_sentence() -> None:
    with pytest.raises(InvalidSchedule) as info:
        CronExpression.parse("61 * * * *")
    assert str(info.value) == "Invalid cron schedule '61 * * * *': minute field '61' is out of range 0-59."


@pytest.mark.parametrize("junk", [None, 5, 1.5, ["* * * * *"], b"* * * * *"])
def test_non_strings_are_rejected(junk: object) -> None:
    with pytest.raises(InvalidSchedule, match="must be a string"):
        CronExpression.parse(junk)  # type: ignore[arg-type]


def test_equality_and_hash_use_the_text() -> None:
    a, b = CronExpression.parse("0 9 * * 1-5"), CronExpression.parse("0 9 * * 1-5")
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a.text == "0 9 * * 1-5"
    assert a is b  # parse shares instances of equal texts; they are immutable


# ---- fixed_time (selects the DST rule) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("0 2 * * *", True),
        ("30 1 * * 1-5", True),
        ("0 9,17 * * *", True),  # a list of fixed times is still fixed times
        ("0 1-3 * * *", True),
        ("@daily", True),
        ("0 2 * * * *", True),  # the seconds field does not matter
        ("*/15 * * * *", False),
        ("0 * * * *", False),
        ("@hourly", False),
        ("0 */2 * * *", False),
        ("0-59/15 1 * * *", False),  # a step is not a fixed time
        ("5/10 2 * * *", False),
    ],
)
def test_fixed_time(text: str, fixed: bool) -> None:
    assert CronExpression.parse(text).fixed_time is fixed


# ---- describe ---------------------------------------------------------------------------------------------

DESCRIBED = [
    ("27 15 * * *", "Asia/Seoul", "At 15:27, every day (Asia/Seoul)"),
    ("*/15 * * * *", "UTC", "Every 15 minutes (UTC)"),
    ("0 9 * * 1-5", "America/New_York", "At 09:00, Monday through Friday (America/New_York)"),
    ("0 9 * * MON-FRI", "UTC", "At 09:00, Monday through Friday (UTC)"),
    ("* * * * *", "UTC", "Every minute (UTC)"),
    ("0 * * * *", "UTC", "Every hour (UTC)"),
    ("@hourly", "UTC", "Every hour (UTC)"),
    ("30 * * * *", "UTC", "At minute 30 of every hour (UTC)"),
    ("0 */2 * * *", "UTC", "Every 2 hours (UTC)"),
    ("0 9-17 * * *", "UTC", "Every hour from 09:00 through 17:00 (UTC)"),
    ("*/5 9-17 * * 1-5", "UTC", "Every 5 minutes, between 09:00 and 17:59, Monday through Friday (UTC)"),
    ("@daily", "UTC", "At 00:00, every day (UTC)"),
    ("@weekly", "UTC", "At 00:00, on Sunday (UTC)"),
    ("@monthly", "UTC", "At 00:00, on day 1 of the month (UTC)"),
    ("@yearly", "UTC", "At 00:00, on January 1 (UTC)"),
    ("0 12 * 6 *", "UTC", "At 12:00, every day, in June (UTC)"),
    ("0 0 1 JAN-MAR *", "UTC", "At 00:00, on day 1 of the month, in January through March (UTC)"),
    ("0 9,17 * * *", "UTC", "At 09:00 and 17:00, every day (UTC)"),
    ("0 0 * * SAT,SUN", "UTC", "At 00:00, on Saturday and Sunday (UTC)"),
    ("0 0 L * *", "UTC", "At 00:00, on the last day of the month (UTC)"),
    ("0 0 LW * *", "UTC", "At 00:00, on the last weekday of the month (UTC)"),
    ("0 0 15W * *", "UTC", "At 00:00, on the weekday nearest day 15 of the month (UTC)"),
    ("0 0 * * 5L", "UTC", "At 00:00, on the last Friday of the month (UTC)"),
    ("0 0 * * 1#2", "UTC", "At 00:00, on the second Monday of the month (UTC)"),
    ("0 0 1,15 * MON", "UTC", "At 00:00, on days 1 and 15 of the month or on Monday (UTC)"),
    ("0 0 */2 * MON", "UTC", "At 00:00, on every 2nd day of the month, but only on Monday (UTC)"),
    ("* * * * * *", "UTC", "Every second (UTC)"),
    ("0 0 * * * 30", "UTC", "At 00:00:30, every day (UTC)"),
    ("*/30 * * * * *", "UTC", "Every second, during minutes 0 and 30 (UTC)"),
    ("1-10,20 * * * *", "UTC", "At minutes 1 through 10 and 20 (UTC)"),
]


@pytest.mark.parametrize(("text", "zone", "expected"), DESCRIBED, ids=[t for t, _, _ in DESCRIBED])
def test_describe(text: str, zone: str, expected: str) -> None:
    assert CronExpression.parse(text).describe(ZoneInfo(zone)) == expected


@pytest.mark.parametrize("text", [t for t, _ in ACCEPTED + DAY_SEMANTICS])
def test_every_accepted_expression_can_be_described(text: str) -> None:
    words = CronExpression.parse(text).describe(UTC_ZONE)
    assert words.endswith(" (UTC)") and words[0].isupper()


# ---- time zones --------------------------------------------------------------------------------------------


def test_load_timezone() -> None:
    assert load_timezone(None) == ZoneInfo("UTC")
    assert load_timezone("") == ZoneInfo("UTC")
    assert load_timezone("Asia/Kathmandu") == ZoneInfo("Asia/Kathmandu")


@pytest.mark.parametrize("name", ["Nowhere/X", "../etc/passwd", "/etc/localtime", "America", "UTC+5", " "])
def test_invalid_timezones(name: str) -> None:
    with pytest.raises(InvalidTimezone) as info:
        load_timezone(name)
    assert str(info.value) == (f"Invalid timezone: '{name}'. Use IANA timezone format (e.g. 'America/New_York').")


@pytest.mark.parametrize("junk", [5, ["UTC"], b"UTC"])
def test_non_string_timezones(junk: object) -> None:
    with pytest.raises(InvalidTimezone):
        load_timezone(junk)  # type: ignore[arg-type]


def test_next_after_accepts_any_aware_zone_and_returns_utc() -> None:
    expr = CronExpression.parse("30 9 * * *")
    seoul = ZoneInfo("Asia/Seoul")
    after = datetime(2026, 1, 1, 8, 0, tzinfo=ZoneInfo("America/New_York"))  # 13:00Z = 22:00 in Seoul
    nxt = expr.next_after(after, seoul)
    assert nxt == z(2026, 1, 2, 0, 30) and nxt is not None and nxt.tzinfo is UTC


def test_next_after_is_strict_and_handles_microseconds() -> None:
    expr = CronExpression.parse("* * * * * *")
    assert expr.next_after(z(2026, 1, 1, 0, 0, 5), UTC_ZONE) == z(2026, 1, 1, 0, 0, 6)
    assert expr.next_after(z(2026, 1, 1, 0, 0, 5) + timedelta(microseconds=1), UTC_ZONE) == z(2026, 1, 1, 0, 0, 6)
    assert expr.next_after(z(2026, 1, 1, 0, 0, 5) - timedelta(microseconds=1), UTC_ZONE) == z(2026, 1, 1, 0, 0, 5)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronExpression.parse("* * * * *").next_after(datetime(2026, 1, 1), UTC_ZONE)


def test_the_end_of_the_calendar_is_not_an_error() -> None:
    assert CronExpression.parse("0 0 1 1 *").next_after(z(9999, 6, 1), UTC_ZONE) is None
    assert CronExpression.parse("* * * * *").next_after(z(9999, 12, 31, 23, 59), UTC_ZONE) is None


def test_occurrences_between_is_half_open_and_limited() -> None:
    expr = CronExpression.parse("0 * * * *")
    got = expr.occurrences_between(z(2026, 1, 1, 1), z(2026, 1, 1, 4), UTC_ZONE, 10)
    assert got == [z(2026, 1, 1, 2), z(2026, 1, 1, 3), z(2026, 1, 1, 4)]
    assert expr.occurrences_between(z(2026, 1, 1, 1), z(2026, 1, 2), UTC_ZONE, 2) == got[:2]
    assert expr.upcoming(START, UTC_ZONE, 0) == []


def test_next_after_is_fast() -> None:
    # The scheduler computes next_run_date for every cron at creation; the budget is well under 1 ms.
    cases = [("0 9 * * 1-5", "America/New_York"), ("*/15 * * * *", "Europe/Berlin"), ("0 0 L * *", "UTC")]
    for text, zone in cases:
        expr, tz = CronExpression.parse(text), ZoneInfo(zone)
        expr.next_after(START, tz)
        began = time.perf_counter()
        for _ in range(1000):
            expr.next_after(START, tz)
        assert (time.perf_counter() - began) / 1000 < 0.0005


# ---- properties against a brute-force oracle ------------------------------------------------------------


def _oracle_next(spec: Spec, after: datetime) -> datetime:
    """First UTC instant > after, found by checking each day in turn (doms/dows None = '*')."""
    secs, mins, hours, doms, months, dows = spec
    day = after.date()
    while True:
        if months is None or day.month in months:
            dom_ok = doms is None or day.day in doms
            dow_ok = dows is None or (day.weekday() + 1) % 7 in dows
            both = doms is None or dows is None
            if (dom_ok and dow_ok) if both else (dom_ok or dow_ok):
                for h in sorted(hours):
                    for m in sorted(mins):
                        for s in sorted(secs):
                            t = datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC)
                            if t > after:
                                return t
        day += timedelta(days=1)


Values = frozenset[int]
Spec = tuple[Values, Values, Values, Values | None, Values | None, Values | None]


def _values(low: int, high: int, most: int) -> st.SearchStrategy[Values]:
    return st.frozensets(st.integers(low, high), min_size=1, max_size=most)


specs: st.SearchStrategy[Spec] = st.tuples(
    st.one_of(st.just(frozenset({0})), _values(0, 59, 3)),
    _values(0, 59, 4),
    _values(0, 23, 4),
    st.one_of(st.none(), _values(1, 28, 3)),  # up to 28: every month has these days
    st.one_of(st.none(), _values(1, 12, 3)),
    st.one_of(st.none(), _values(0, 6, 3)),
)
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))


def _text(spec: Spec) -> str:
    def field(values: Values | None) -> str:
        return "*" if values is None else ",".join(map(str, sorted(values)))

    secs, mins, hours, doms, months, dows = spec
    five = " ".join(field(v) for v in (mins, hours, doms, months, dows))
    return five if secs == {0} else f"{five} {field(secs)}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, after=instants)
def test_next_after_matches_a_brute_force_scan(spec: Spec, after: datetime) -> None:
    expr = CronExpression.parse(_text(spec))
    got = expr.upcoming(after, UTC_ZONE, 3)
    expected, cursor = [], after
    for _ in range(3):
        cursor = _oracle_next(spec, cursor)
        expected.append(cursor)
    assert got == expected
    # In UTC there is no DST, so the cheap count is exact.
    end = got[-1] + timedelta(seconds=1)
    assert expr.approx_count_between(after, end, UTC_ZONE) == len(
        expr.occurrences_between(after, end, UTC_ZONE, 10_000)
    )


ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago"]
TEXTS = ["*/7 * * * *", "0,30 1-3 * * *", "15 2 * * *", "0 * * * 0", "45 */2 1-10 * *", "0 0 L * *"]


@settings(max_examples=150, deadline=None)
@given(text=st.sampled_from(TEXTS), zone=st.sampled_from(ZONES), after=instants)
def test_occurrences_increase_strictly_and_agree_with_repeated_next_after(
    text: str, zone: str, after: datetime
) -> None:
    expr, tz = CronExpression.parse(text), ZoneInfo(zone)
    got = expr.upcoming(after, tz, 6)
    assert len(got) == 6 and got[0] > after
    assert all(a < b for a, b in itertools.pairwise(got))
    assert all(t.tzinfo is UTC and t.microsecond == 0 for t in got)
    cursor: datetime | None = after
    for t in got:
        assert cursor is not None
        cursor = expr.next_after(cursor, tz)
        assert cursor == t
    assert expr.occurrences_between(after, got[-1], tz, 100) == got
    # Each occurrence shows a matching wall time, except a fixed-time one moved to the end of a gap.
    for t in got:
        local = t.astimezone(tz)
        if _wall_exists(local.replace(tzinfo=None) - timedelta(minutes=1), tz) or not expr.fixed_time:
            assert _matches(expr, local)


def _wall_exists(wall: datetime, tz: ZoneInfo) -> bool:
    return wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _matches(expr: CronExpression, local: datetime) -> bool:
    d = local.date()
    last = calendar.monthrange(d.year, d.month)[1]
    checks = {
        "*/7 * * * *": local.minute % 7 == 0,
        "0,30 1-3 * * *": local.minute in (0, 30) and 1 <= local.hour <= 3,
        "15 2 * * *": (local.hour, local.minute) == (2, 15),
        "0 * * * 0": local.minute == 0 and d.weekday() == 6,
        "45 */2 1-10 * *": local.minute == 45 and local.hour % 2 == 0 and d.day <= 10,
        "0 0 L * *": (local.hour, local.minute) == (0, 0) and d.day == last,
    }
    return checks[expr.text]
