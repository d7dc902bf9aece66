"""One-shot `@at` schedules, jitter, the shortest-interval check and the time-zone-prefix message: pure schedule
math (schedules/at.py, schedules/policy.py), with hypothesis property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crongraph.schedules.at import AtInstant, parse_schedule
from crongraph.schedules.expression import CronExpression, InvalidSchedule
from crongraph.schedules.policy import MissedPolicy, first_run_date, jitter_delay, plan_due, shortest_interval

ZONES = [ZoneInfo(z) for z in ("UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham")]
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2400, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(instants, offsets, st.sampled_from(ZONES))
def test_at_with_an_offset_is_that_instant_in_any_zone(at: datetime, offset: timezone, tz: ZoneInfo) -> None:
    text = f"@at {at.astimezone(offset).isoformat()}"
    expr = parse_schedule(text)
    assert isinstance(expr, AtInstant)
    assert expr.next_after(at - timedelta(seconds=1), tz) == at
    assert expr.next_after(at, tz) is None  # once, then finished
    assert expr.upcoming(at - timedelta(days=1), tz, 5) == [at]


@given(instants, st.sampled_from(ZONES))
def test_naive_at_is_a_wall_time_in_the_cron_zone(at: datetime, tz: ZoneInfo) -> None:
    wall = at.astimezone(tz).replace(tzinfo=None)
    expr = parse_schedule(f"@at {wall.isoformat()}")
    fires = expr.next_after(datetime(1970, 1, 1, tzinfo=UTC), tz)
    assert fires is not None
    # Same wall time; at the first of two instants when the hour repeats (so never after `at`).
    assert fires.astimezone(tz).replace(tzinfo=None) == wall
    assert fires <= at


def test_naive_at_in_a_dst_gap_fires_at_the_end_of_the_gap() -> None:
    new_york = ZoneInfo("America/New_York")
    expr = parse_schedule("@at 2026-03-08T02:30:00")
    assert expr.next_after(datetime(2026, 1, 1, tzinfo=UTC), new_york) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    repeated = parse_schedule("@at 2026-11-01T01:30:00")
    assert repeated.next_after(datetime(2026, 1, 1, tzinfo=UTC), new_york) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@at", "needs an ISO-8601 instant"),
        ("@at soon", "'soon' is not an ISO-8601 date-time"),
        ("@at 2026-05-01T09:00:00.250Z", "whole seconds"),
        ("CRON_TZ=Etc/UTC */20 * * * *", "send timezone 'Etc/UTC' and schedule '*/20 * * * *'"),
        ("TZ=Europe/Paris 0 9 * * *", "belongs in the cron's `timezone` field"),
    ],
)
def test_refusals_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        parse_schedule(text)
    assert message in str(info.value)


def test_plan_due_fires_an_at_once_and_finishes() -> None:
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    expr = parse_schedule(f"@at {at.isoformat()}")
    assert first_run_date(expr, UTC_ZONE, at - timedelta(hours=1), None) == at
    plan = plan_due(expr, UTC_ZONE, at, at + timedelta(milliseconds=3), policy=MissedPolicy.LATEST, end_time=None)
    assert plan.fire == [at] and plan.next_run_date is None
    late = plan_due(expr, UTC_ZONE, at, at + timedelta(days=2), policy=MissedPolicy.SKIP, end_time=None)
    assert late.fire == [] and late.skipped == [at] and late.next_run_date is None


UTC_ZONE = ZoneInfo("UTC")


@given(
    st.uuids().map(str),
    instants,
    st.integers(min_value=0, max_value=86_400),
)
@settings(max_examples=300)
def test_jitter_is_within_bounds_and_deterministic(cron_id: str, slot: datetime, jitter: int) -> None:
    delay = jitter_delay(cron_id, slot, jitter)
    assert timedelta(0) <= delay < timedelta(seconds=jitter) if jitter else delay == timedelta(0)
    assert delay == jitter_delay(cron_id, slot.astimezone(ZoneInfo("Asia/Kolkata")), jitter)  # same slot, any zone


def test_jitter_spreads_occurrences() -> None:
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    delays = {jitter_delay(f"cron-{i}", slot, 60) for i in range(200)}
    assert len(delays) > 190  # distinct crons at one instant start at different moments
    assert max(delays) - min(delays) > timedelta(seconds=50)


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("* * * * *", 60),
        ("* * * * * */10", 10),
        ("0 9,10 * * *", 3600),
        ("0,59 0,23 * * *", 60),  # 23:59 then 00:00 across midnight
        ("0 9 * * *", 86_400),
    ],
)
def test_shortest_interval(schedule: str, seconds: int) -> None:
    gap = shortest_interval(CronExpression.parse(schedule), UTC_ZONE, datetime(2026, 1, 1, tzinfo=UTC))
    assert gap == timedelta(seconds=seconds)


def test_shortest_interval_of_a_one_shot_is_none() -> None:
    expr = parse_schedule("@at 2030-01-01T00:00:00Z")
    assert shortest_interval(expr, UTC_ZONE, datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_start_time_bounds_the_first_occurrence() -> None:
    expr = CronExpression.parse("0 * * * *")
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert first_run_date(expr, UTC_ZONE, now, None, datetime(2026, 1, 1, 5, tzinfo=UTC)) == datetime(
        2026, 1, 1, 5, tzinfo=UTC
    )
    assert first_run_date(expr, UTC_ZONE, now, None, datetime(2025, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, 1, tzinfo=UTC
    )
