"""The scheduler service on real storage with an injected clock: firing, exactly-once, DST, missed occurrences,
pause and resume, end_time. Time is moved by hand; nothing sleeps for the schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crongraph.clock import FakeClock
from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.runtime import Runtime
from crongraph.settings import Settings
from crongraph.storage import crons as cron_rows
from crongraph.storage import runs as run_rows
from crongraph.storage import tables

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"
START = datetime(2026, 3, 7, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def rt(tmp_path: Path, database_urls: Callable[[], str | None]) -> AsyncIterator[Runtime]:
    settings = Settings(data_dir=tmp_path / "data", config=CONFIG, database_url=database_urls())
    runtime = Runtime(settings, GraphRegistry.load(load(CONFIG)), clock=FakeClock(START))
    await runtime.start()
    yield runtime
    await runtime.stop()


def clock(rt: Runtime) -> FakeClock:
    assert isinstance(rt.clock, FakeClock)
    return rt.clock


async def settle(rt: Runtime) -> None:
    """Let the scheduler react to the last clock move: a few loop turns (room for a wrong fire to show), then until
    no enabled cron is due at the clock's time, however slow the machine. On PostgreSQL a pass skips a cron whose row
    is locked at that moment (by the guards recording a run's end) and the scheduler looks again shortly, so a fixed
    number of turns is not enough there."""
    for _ in range(50):
        await asyncio.sleep(0.002)
    query = select(func.count()).where(tables.crons.c.enabled.is_(True), tables.crons.c.next_run_date <= rt.clock.now())
    deadline = time.monotonic() + 30
    while True:
        async with rt.db.read() as conn:
            if not (await conn.execute(query)).scalar_one():
                return
        assert time.monotonic() < deadline, "the scheduler left a due cron unfired for 30 s"
        await asyncio.sleep(0.01)


async def cron_runs(rt: Runtime, cron_id: str) -> list[dict[str, Any]]:
    async with rt.db.read() as conn:
        return await run_rows.for_cron(conn, cron_id, limit=1000, offset=0)


async def fires(rt: Runtime, cron_id: str) -> list[dict[str, Any]]:
    async with rt.db.read() as conn:
        return await cron_rows.fires(conn, cron_id, limit=1000, offset=0, outcome=None)


async def test_fires_at_the_slot_and_advances(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    cron = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "*/5 * * * *"})
    assert cron["next_run_date"] == datetime(2026, 3, 7, 12, 5, tzinfo=UTC)
    await clock(rt).set(datetime(2026, 3, 7, 12, 4, 59, tzinfo=UTC))
    await settle(rt)
    assert await cron_runs(rt, cron["cron_id"]) == []
    await clock(rt).set(datetime(2026, 3, 7, 12, 5, tzinfo=UTC))
    await settle(rt)
    runs = await cron_runs(rt, cron["cron_id"])
    assert [r["scheduled_for"] for r in runs] == [datetime(2026, 3, 7, 12, 5, tzinfo=UTC)]
    assert runs[0]["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    assert runs[0]["metadata"]["cron_id"] == cron["cron_id"]
    assert runs[0]["priority"] > 0  # background: behind interactive work
    current = await rt.crons.get(cron["cron_id"])
    assert current["next_run_date"] == datetime(2026, 3, 7, 12, 10, tzinfo=UTC)


async def test_only_a_cron_due_sooner_wakes_the_scheduler(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "*/5 * * * *"})  # 12:05
    await settle(rt)
    asleep = rt.scheduler.stats()["ticks"]
    later = [await rt.crons.create(None, {"assistant_id": "echo", "schedule": "0 3 * * *"}) for _ in range(20)]
    await rt.crons.update(later[0]["cron_id"], {"schedule": "0 4 * * *"})
    await rt.crons.delete(later[1]["cron_id"])
    await settle(rt)
    assert rt.scheduler.stats()["ticks"] == asleep  # still asleep until 12:05: nothing became due sooner
    # Second 10 of every minute (a sixth field): 12:00:10, sooner than the scheduler's 30 s safety wake-up too.
    sooner = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * * 10"})
    await settle(rt)
    assert rt.scheduler.stats()["ticks"] == asleep + 1  # woke, found nothing due yet, sleeps until 12:00:10
    await clock(rt).set(START + timedelta(seconds=10))
    await settle(rt)
    assert [r["scheduled_for"] for r in await cron_runs(rt, sooner["cron_id"])] == [START + timedelta(seconds=10)]


async def test_each_occurrence_fires_once_however_often_the_scheduler_looks(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    cron = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *"})
    for minute in range(1, 6):
        await clock(rt).set(START + timedelta(minutes=minute))
        for _ in range(3):  # extra passes at the same instant change nothing
            await rt.scheduler.fire_due()
        await settle(rt)
    slots = [r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"])]
    assert sorted(slots) == [START + timedelta(minutes=m) for m in range(1, 6)]


async def test_spring_forward_fixed_time_fires_once_after_the_gap(rt: Runtime) -> None:
    # 02:30 does not exist in New York on 2026-03-08: it fires once, at 03:00 EDT (07:00Z).
    thread = await rt.threads.create({})
    cron = await rt.crons.create(
        thread["thread_id"], {"assistant_id": "echo", "schedule": "30 2 * * *", "timezone": "America/New_York"}
    )
    assert cron["next_run_date"] == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    await clock(rt).set(datetime(2026, 3, 8, 7, 0, tzinfo=UTC))
    await settle(rt)
    await clock(rt).set(datetime(2026, 3, 9, 6, 29, tzinfo=UTC))
    await settle(rt)
    slots = [r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"])]
    assert slots == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]
    assert (await rt.crons.get(cron["cron_id"]))["next_run_date"] == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)


async def test_downtime_latest_fires_once_for_the_most_recent_and_logs_the_rest(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    cron = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *"})
    await rt.scheduler.stop()  # the server is "down"
    await clock(rt).set(START + timedelta(minutes=10, seconds=30))
    await rt.scheduler.start()
    await settle(rt)
    slots = [r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"])]
    assert slots == [START + timedelta(minutes=10)]
    log = await fires(rt, cron["cron_id"])
    skipped = sorted(f["scheduled_for"] for f in log if f["outcome"] == "skipped")
    assert skipped == [START + timedelta(minutes=m) for m in range(1, 10)]
    assert (await rt.crons.get(cron["cron_id"]))["next_run_date"] == START + timedelta(minutes=11)


@pytest.mark.parametrize(("policy", "expected"), [("skip", []), ("all", list(range(1, 11)))])
async def test_downtime_policies(rt: Runtime, policy: str, expected: list[int]) -> None:
    thread = await rt.threads.create({})
    cron = await rt.crons.create(
        thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *", "missed_policy": policy}
    )
    await rt.scheduler.stop()
    await clock(rt).set(START + timedelta(minutes=10, seconds=30))
    await rt.scheduler.start()
    await settle(rt)
    slots = sorted(r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"]))
    assert slots == [START + timedelta(minutes=m) for m in expected]


async def test_paused_cron_fires_nothing_and_resumes_from_now(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    cron = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *"})
    await rt.crons.update(cron["cron_id"], {"enabled": False})
    await clock(rt).set(START + timedelta(minutes=5, seconds=10))
    await settle(rt)
    assert await cron_runs(rt, cron["cron_id"]) == []
    resumed = await rt.crons.update(cron["cron_id"], {"enabled": True})
    # Not the stale 12:01 slot from before the pause: the next one after now.
    assert resumed["next_run_date"] == START + timedelta(minutes=6)
    await settle(rt)
    assert await cron_runs(rt, cron["cron_id"]) == []
    await clock(rt).set(START + timedelta(minutes=6))
    await settle(rt)
    assert [r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"])] == [START + timedelta(minutes=6)]


async def test_end_time_stops_the_cron_and_marks_it_finished(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    cron = await rt.crons.create(
        thread["thread_id"],
        {"assistant_id": "echo", "schedule": "* * * * *", "end_time": (START + timedelta(minutes=3)).isoformat()},
    )
    await clock(rt).set(START + timedelta(minutes=10))
    await settle(rt)
    slots = sorted(r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"]))
    assert all(s < START + timedelta(minutes=3) for s in slots) and slots
    assert (await rt.crons.get(cron["cron_id"]))["next_run_date"] is None


async def test_busy_thread_with_reject_is_logged_as_skipped(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    await rt.runs.create(thread["thread_id"], {"assistant_id": "slow", "input": {"delay": 5}})
    cron = await rt.crons.create(
        thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *", "multitask_strategy": "reject"}
    )
    await clock(rt).set(START + timedelta(minutes=1))
    await settle(rt)
    assert await cron_runs(rt, cron["cron_id"]) == []
    log = await fires(rt, cron["cron_id"])
    assert [(f["outcome"], f["scheduled_for"]) for f in log] == [("skipped", START + timedelta(minutes=1))]
    assert "already running" in log[0]["detail"]


async def test_a_broken_cron_does_not_block_the_others(rt: Runtime) -> None:
    thread = await rt.threads.create({})
    broken = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *"})
    healthy = await rt.crons.create(thread["thread_id"], {"assistant_id": "echo", "schedule": "* * * * *"})
    async with rt.db.write() as conn:  # corrupt one cron's payload behind the service's back
        await cron_rows.update_fields(conn, broken["cron_id"], payload={"assistant_id": 42})
    await clock(rt).set(START + timedelta(minutes=1))
    await settle(rt)
    assert len(await cron_runs(rt, healthy["cron_id"])) == 1
    outcomes = [f["outcome"] for f in await fires(rt, broken["cron_id"])]
    assert outcomes in (["failed"], ["skipped"])
    assert (await rt.crons.get(broken["cron_id"]))["next_run_date"] == START + timedelta(minutes=2)
