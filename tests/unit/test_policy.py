"""Missed-occurrence policies, end_time and bounded planning, with `now` injected."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crongraph.schedules.expression import CronExpression
from crongraph.schedules.policy import (
    DEFAULT_CATCHUP_LIMIT,
    DEFAULT_CATCHUP_WINDOW,
    DEFAULT_GRACE,
    SKIPPED_SAMPLE,
    DuePlan,
    MissedPolicy,
    _search_plan,
    first_run_date,
    plan_due,
)

UTC_ZONE = ZoneInfo("UTC")
HOURLY = CronExpression.parse("0 * * * *")
EVERY_SECOND = CronExpression.parse("* * * * * *")


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def plan(
    expr: CronExpression,
    next_run_date: datetime,
    now: datetime,
    policy: MissedPolicy | str = MissedPolicy.LATEST,
    end_time: datetime | None = None,
    **kwargs: timedelta | int,
) -> DuePlan:
    return plan_due(expr, UTC_ZONE, next_run_date, now, policy=policy, end_time=end_time, **kwargs)  # type: ignore[arg-type]


def hours(day: int, *hs: int) -> list[datetime]:
    return [z(2026, 1, day, h) for h in hs]


# ---- on time -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(MissedPolicy))
def test_nothing_is_due_before_next_run_date(policy: MissedPolicy) -> None:
    p = plan(HOURLY, z(2026, 1, 1, 10), z(2026, 1, 1, 10) - timedelta(microseconds=1), policy)
    assert p == DuePlan([], [], 0, z(2026, 1, 1, 10))


@pytest.mark.parametrize("policy", list(MissedPolicy))
@pytest.mark.parametrize("late", [timedelta(0), timedelta(milliseconds=3), timedelta(seconds=5)])
def test_an_occurrence_fired_on_time_or_within_grace(policy: MissedPolicy, late: timedelta) -> None:
    p = plan(HOURLY, z(2026, 1, 1, 10), z(2026, 1, 1, 10) + late, policy)
    assert p == DuePlan([z(2026, 1, 1, 10)], [], 0, z(2026, 1, 1, 11))


@pytest.mark.parametrize("policy", list(MissedPolicy))
def test_occurrences_within_grace_all_fire(policy: MissedPolicy) -> None:
    # The scheduler is 3.5 s behind a per-second cron: nothing is missed, so nothing is skipped.
    p = plan(EVERY_SECOND, z(2026, 1, 1, 10), z(2026, 1, 1, 10, 0, 3) + timedelta(milliseconds=500), policy)
    assert p.fire == [z(2026, 1, 1, 10, 0, s) for s in range(4)]
    assert (p.skipped, p.skipped_count, p.next_run_date) == ([], 0, z(2026, 1, 1, 10, 0, 4))


# ---- after downtime: hourly cron, last fired Jan 1 00:00 was pending, now Jan 3 05:30 (54 due) ---------------

DOWN_FROM, DOWN_UNTIL = z(2026, 1, 1), z(2026, 1, 3, 5, 30)
DUE = [DOWN_FROM + timedelta(hours=h) for h in range(54)]


def test_latest_fires_the_most_recent_missed_occurrence_once() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.LATEST)
    assert p.fire == [z(2026, 1, 3, 5)]
    assert p.skipped == DUE[:-1] and p.skipped_count == 53 and p.skipped_count_exact
    assert p.next_run_date == z(2026, 1, 3, 6)


def test_latest_is_the_default_policy_and_accepts_strings() -> None:
    assert plan(HOURLY, DOWN_FROM, DOWN_UNTIL, "latest") == plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.LATEST)
    assert MissedPolicy("skip") is MissedPolicy.SKIP and str(MissedPolicy.ALL) == "all"


def test_skip_fires_nothing_missed() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.SKIP)
    assert p.fire == [] and p.skipped == DUE and p.skipped_count == 54
    assert p.next_run_date == z(2026, 1, 3, 6)


def test_all_fires_everything_in_the_catch_up_window() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.ALL)  # default window: 24 hours
    assert p.fire == DUE[-24:] and p.fire[0] == z(2026, 1, 2, 6)
    assert p.skipped == DUE[:30] and p.skipped_count == 30


def test_all_keeps_the_most_recent_up_to_the_limit() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.ALL, catchup_limit=5)
    assert p.fire == hours(3, 1, 2, 3, 4, 5)
    assert p.skipped_count == 49 and p.skipped == DUE[:49]


def test_all_with_a_short_window() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.ALL, catchup_window=timedelta(hours=1))
    assert p.fire == [z(2026, 1, 3, 5)] and p.skipped_count == 53


def test_latest_with_a_grace_that_covers_several() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.LATEST, grace=timedelta(hours=3))
    assert p.fire == hours(3, 3, 4, 5) and p.skipped_count == 51


def test_the_stored_next_run_date_is_fired_as_stored() -> None:
    # A stored instant that is not an occurrence (e.g. written by an older schedule) is still the one claimed.
    p = plan(HOURLY, z(2026, 1, 1, 9, 30), z(2026, 1, 1, 9, 30, 1), MissedPolicy.SKIP)
    assert p.fire == [z(2026, 1, 1, 9, 30)] and p.next_run_date == z(2026, 1, 1, 10)


# ---- end_time -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(MissedPolicy))
def test_nothing_at_or_after_end_time_fires(policy: MissedPolicy) -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, policy, end_time=z(2026, 1, 1, 3))
    assert all(t < z(2026, 1, 1, 3) for t in p.fire) and p.next_run_date is None
    assert len(p.fire) + p.skipped_count == 3  # 00:00, 01:00, 02:00; 03:00 is at end_time


def test_latest_before_end_time() -> None:
    p = plan(HOURLY, DOWN_FROM, DOWN_UNTIL, MissedPolicy.LATEST, end_time=z(2026, 1, 1, 3))
    assert p == DuePlan([z(2026, 1, 1, 2)], hours(1, 0, 1), 2, None)


def test_a_cron_whose_next_run_is_at_end_time_is_finished() -> None:
    for now in (z(2026, 1, 1, 2), z(2026, 1, 1, 3), z(2026, 1, 1, 4)):
        assert plan(HOURLY, z(2026, 1, 1, 3), now, end_time=z(2026, 1, 1, 3)) == DuePlan([], [], 0, None)


def test_the_last_occurrence_before_end_time_fires_and_then_it_is_finished() -> None:
    p = plan(HOURLY, z(2026, 1, 1, 2), z(2026, 1, 1, 2, 0, 1), end_time=z(2026, 1, 1, 2, 30))
    assert p == DuePlan([z(2026, 1, 1, 2)], [], 0, None)
    p = plan(HOURLY, z(2026, 1, 1, 2), z(2026, 1, 1, 2, 0, 1), end_time=z(2026, 1, 1, 3, 0, 1))
    assert p.next_run_date == z(2026, 1, 1, 3)


def test_first_run_date() -> None:
    assert first_run_date(HOURLY, UTC_ZONE, z(2026, 1, 1, 9, 15), None) == z(2026, 1, 1, 10)
    assert first_run_date(HOURLY, UTC_ZONE, z(2026, 1, 1, 10), None) == z(2026, 1, 1, 11)  # strictly after
    assert first_run_date(HOURLY, UTC_ZONE, z(2026, 1, 1, 9, 15), z(2026, 1, 1, 10)) is None
    assert first_run_date(HOURLY, UTC_ZONE, z(2026, 1, 1, 9, 15), z(2026, 1, 1, 10, 0, 1)) == z(2026, 1, 1, 10)
    seoul = ZoneInfo("Asia/Seoul")
    assert first_run_date(CronExpression.parse("27 15 * * *"), seoul, z(2026, 1, 1), None) == z(2026, 1, 1, 6, 27)


# ---- bounded after a long outage ---------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(MissedPolicy))
def test_a_per_second_cron_after_a_year_down_plans_in_bounded_time(policy: MissedPolicy) -> None:
    now = z(2026, 1, 1, 0, 0, 0) + timedelta(microseconds=500000)
    began = time.perf_counter()
    p = plan(EVERY_SECOND, z(2025, 1, 1), now, policy)
    assert time.perf_counter() - began < 0.5
    due = 365 * 86400 + 1
    assert len(p.fire) + p.skipped_count == due  # exact even though estimated: UTC has no DST
    assert not p.skipped_count_exact
    assert len(p.skipped) == SKIPPED_SAMPLE and p.skipped[0] == z(2025, 1, 1)
    assert p.skipped == sorted(p.skipped) and not set(p.skipped) & set(p.fire)
    assert p.next_run_date == z(2026, 1, 1, 0, 0, 1)
    expected = {
        MissedPolicy.SKIP: [z(2025, 12, 31, 23, 59, s) for s in range(56, 60)] + [z(2026, 1, 1)],
        MissedPolicy.LATEST: [z(2025, 12, 31, 23, 59, s) for s in range(56, 60)] + [z(2026, 1, 1)],
        MissedPolicy.ALL: [z(2026, 1, 1) - timedelta(seconds=s) for s in range(DEFAULT_CATCHUP_LIMIT - 1, -1, -1)],
    }
    assert p.fire == expected[policy]


def test_estimated_counts_stay_close_across_dst() -> None:
    p = plan_due(
        EVERY_SECOND,
        ZoneInfo("America/New_York"),
        z(2025, 1, 1),
        z(2026, 1, 1),
        policy=MissedPolicy.SKIP,
        end_time=None,
    )
    due = 365 * 86400 + 1  # a wildcard cron fires once per real second, DST or not
    assert abs(len(p.fire) + p.skipped_count - due) <= 2 * 3600 and not p.skipped_count_exact


def test_a_dense_burst_long_ago_is_found_without_enumerating_it() -> None:
    # Every second of 00:00-00:59 on January 1st only: the growing search windows overshoot into the burst and
    # have to bisect back.
    burst = CronExpression.parse("* 0 1 1 * *")
    now = z(2025, 6, 1)
    latest = plan(burst, z(2025, 1, 1), now, MissedPolicy.LATEST)
    assert latest.fire == [z(2025, 1, 1, 0, 59, 59)] and latest.skipped_count == 3599
    everything = plan(burst, z(2025, 1, 1), now, MissedPolicy.ALL, catchup_window=timedelta(days=200), catchup_limit=10)
    assert everything.fire == [z(2025, 1, 1, 0, 59, s) for s in range(50, 60)]
    assert everything.skipped_count == 3590 and everything.next_run_date == z(2026, 1, 1)


# ---- arguments --------------------------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(HOURLY, datetime(2026, 1, 1), z(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(HOURLY, z(2026, 1, 1), z(2026, 1, 1), end_time=datetime(2026, 1, 2))


def test_first_run_date_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        first_run_date(HOURLY, UTC_ZONE, z(2026, 1, 1), datetime(2026, 2, 1))


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        plan(HOURLY, z(2026, 1, 1), z(2026, 1, 1), grace=timedelta(seconds=-1))
    with pytest.raises(ValueError):
        plan(HOURLY, z(2026, 1, 1), z(2026, 1, 1), catchup_limit=-1)


def test_other_time_zones_are_normalised_to_utc() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = plan(HOURLY, datetime(2026, 1, 1, 11, tzinfo=berlin), datetime(2026, 1, 1, 11, 0, 1, tzinfo=berlin))
    assert p.fire == [z(2026, 1, 1, 10)] and p.fire[0].tzinfo is UTC
    assert p.next_run_date == z(2026, 1, 1, 11) and p.next_run_date.tzinfo is UTC


# ---- invariants against brute force ------------------------------------------------------------------------

TEXTS = ["*/7 * * * *", "0 * * * *", "30 2 * * *", "*/20 * * * * *", "0,30 1-3 * * *"]
ZONES = ["UTC", "America/New_York", "Australia/Lord_Howe"]


@settings(max_examples=200, deadline=None)
@given(
    text=st.sampled_from(TEXTS),
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2026, 3, 1), max_value=datetime(2026, 11, 30), timezones=st.just(UTC)),
    down=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=12)),
    ends_after=st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=40))),
    policy=st.sampled_from(list(MissedPolicy)),
    grace=st.sampled_from([timedelta(seconds=5), timedelta(minutes=10)]),
    window=st.sampled_from([timedelta(hours=1), timedelta(hours=24)]),
    limit=st.integers(0, 12),
)
def test_every_due_occurrence_is_fired_or_counted(
    text: str,
    zone: str,
    start: datetime,
    down: timedelta,
    ends_after: timedelta | None,
    policy: MissedPolicy,
    grace: timedelta,
    window: timedelta,
    limit: int,
) -> None:
    expr, tz = CronExpression.parse(text), ZoneInfo(zone)
    stored = expr.next_after(start, tz)
    assert stored is not None
    now = stored + down
    end = None if ends_after is None else stored + ends_after
    p = plan_due(
        expr, tz, stored, now, policy=policy, end_time=end, grace=grace, catchup_window=window, catchup_limit=limit
    )
    due = [t for t in [stored, *expr.occurrences_between(stored, now, tz, 100_000)] if end is None or t < end]
    assert p.fire == sorted(p.fire) and set(p.fire) <= set(due) and len(p.fire) <= limit
    assert set(p.skipped) <= set(due) - set(p.fire)
    if p.skipped_count_exact:
        assert len(p.fire) + p.skipped_count == len(due)
    else:  # more due than the policy enumerates: estimated, off by at most the occurrences in a DST shift
        assert len(due) > 1000 and abs(len(p.fire) + p.skipped_count - len(due)) <= 180
    following = expr.next_after(now, tz)
    assert p.next_run_date == (following if following and (end is None or following < end) else None)
    fresh = [t for t in due if now - t <= grace]
    if policy is MissedPolicy.ALL:
        assert p.fire == [t for t in due if now - t <= window][-limit:] if limit else p.fire == []
    elif policy is MissedPolicy.SKIP or fresh:
        assert p.fire == fresh[-limit:] if limit else p.fire == []
    else:
        assert p.fire == due[-1:] if limit and due else p.fire == []


ONE_DUE_ZONES = [*ZONES, "Europe/London", "Asia/Kathmandu", "America/Santiago"]
ONE_DUE_SCHEDULES = [*TEXTS, "* * * * *", "15 */2 * * 1-5", "0 0 1 * *", "* * * * * 30"]


@settings(max_examples=400, deadline=None)
@given(
    schedule=st.sampled_from(ONE_DUE_SCHEDULES),
    zone=st.sampled_from(ONE_DUE_ZONES),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    late=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3)),
    policy=st.sampled_from(list(MissedPolicy)),
    end_after=st.one_of(st.none(), st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=6))),
)
def test_the_one_due_shortcut_plans_as_the_search_does(
    schedule: str, zone: str, start: datetime, late: timedelta, policy: MissedPolicy, end_after: timedelta | None
) -> None:
    """plan_due answers the common case (one occurrence due) with one step of the expression; whatever the
    schedule, zone, lateness, policy and end_time, that must be the plan the general search makes."""
    expr, tz = CronExpression.parse(schedule), ZoneInfo(zone)
    first = first_run_date(expr, tz, start, None)
    assert first is not None
    now, end = first + late, (first + end_after if end_after is not None else None)
    expected = _search_plan(expr, tz, first, now, end, policy, DEFAULT_GRACE, DEFAULT_CATCHUP_WINDOW, 100)
    if end is not None and first >= end:
        expected = DuePlan([], [], 0, None)
    assert plan_due(expr, tz, first, now, policy=policy, end_time=end, catchup_limit=100) == expected
