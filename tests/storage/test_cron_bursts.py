"""Cron bursts on real storage with an injected clock: many crons due at one instant fire exactly once each, in
batches, and the ends of many cron runs recorded in one transaction (`CronGuards.runs_ended`) give exactly what
recording each alone gives: fire-log status, error and tokens, consecutive failures, and the pause on failures
or on the token budget at the run that crossed the limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from crongraph.clock import FakeClock
from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.ids import system_assistant_id
from crongraph.observability import events
from crongraph.runtime import Runtime
from crongraph.scheduler.scheduler import BATCH, LOCKED_RETRY
from crongraph.settings import Settings
from crongraph.storage import crons as cron_rows
from crongraph.storage import runs as run_rows
from crongraph.storage import tables

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"
START = datetime(2026, 3, 7, 12, 0, 0, tzinfo=UTC)
ECHO = system_assistant_id("echo")


@pytest.fixture
async def rt(tmp_path: Path, database_urls: Callable[[], str | None]) -> AsyncIterator[Runtime]:
    """A runtime whose queue executes nothing (the runs stay pending: the tests end them by hand) and whose
    scheduler is driven by hand (`fire`)."""
    settings = Settings(data_dir=tmp_path / "data", config=CONFIG, database_url=database_urls())
    runtime = Runtime(settings, GraphRegistry.load(load(CONFIG)), clock=FakeClock(START))
    await runtime.start()
    await runtime.queue.stop()
    await runtime.scheduler.stop()
    yield runtime
    await runtime.stop()


async def fire(rt: Runtime, at: datetime) -> int:
    """Move the clock to `at` and fire everything due, as one scheduler tick does: crons seen."""
    assert isinstance(rt.clock, FakeClock)
    await rt.clock.set(at)
    seen = total = BATCH
    while seen >= BATCH:
        seen = await rt.scheduler.fire_due()
        total += seen
    return total - BATCH


async def cron_runs(rt: Runtime, cron_id: str) -> list[dict[str, Any]]:
    async with rt.db.read() as conn:
        found = await run_rows.for_cron(conn, cron_id, limit=1000, offset=0)
    return sorted(found, key=lambda r: r["scheduled_for"])


async def fire_log(rt: Runtime, cron_id: str) -> list[dict[str, Any]]:
    async with rt.db.read() as conn:
        found = await cron_rows.fires(conn, cron_id, limit=1000, offset=0, outcome=None)
    return sorted(found, key=lambda f: f["scheduled_for"])


async def cron_row(rt: Runtime, cron_id: str) -> dict[str, Any]:
    async with rt.db.read() as conn:
        found = await cron_rows.get(conn, cron_id)
    assert found is not None
    return found


async def test_a_burst_larger_than_a_batch_fires_each_cron_once(rt: Runtime) -> None:
    n = BATCH * 2 + 7
    on_threads = [await rt.threads.create({"metadata": {"mine": i}}) for i in range(3)]
    made = [
        await rt.crons.create(None, {"assistant_id": "echo", "schedule": "5 12 * * *", "on_run_completed": "keep"})
        for _ in range(n - len(on_threads))
    ]
    made += [
        await rt.crons.create(t["thread_id"], {"assistant_id": "echo", "schedule": "5 12 * * *"}) for t in on_threads
    ]
    assert await fire(rt, START + timedelta(minutes=5)) == n
    for t in on_threads:  # a thread's first cron run names its graph in its metadata and marks it busy
        thread = await rt.threads.get(t["thread_id"])
        assert thread["status"] == "busy"
        assert thread["metadata"] == {"mine": t["metadata"]["mine"], "graph_id": "echo", "assistant_id": ECHO}
    assert await fire(rt, START + timedelta(minutes=5, seconds=30)) == 0  # looking again fires nothing more
    slot = START + timedelta(minutes=5)
    for cron in made:
        runs = await cron_runs(rt, cron["cron_id"])
        assert [r["scheduled_for"] for r in runs] == [slot]
        assert [(f["outcome"], f["run_id"]) for f in await fire_log(rt, cron["cron_id"])] == [
            ("created", runs[0]["run_id"])
        ]
        assert (await cron_row(rt, cron["cron_id"]))["next_run_date"] == slot + timedelta(days=1)
    assert rt.scheduler.stats()["fired"] == n


async def test_runs_ended_together_are_recorded_as_if_one_by_one(rt: Runtime) -> None:
    keep = {"assistant_id": "echo", "schedule": "* * * * *", "on_run_completed": "keep"}
    failing = await rt.crons.create(None, {**keep, "pause_after_failures": 2})
    costly = await rt.crons.create(None, {**keep, "max_tokens_per_day": 100, "pause_after_failures": None})
    for minute in (1, 2, 3):
        await fire(rt, START + timedelta(minutes=minute))
    f0, f1, f2 = await cron_runs(rt, failing["cron_id"])
    c0, c1, c2 = await cron_runs(rt, costly["cron_id"])
    ended_at = START + timedelta(minutes=3, seconds=10)

    def ended(run: dict[str, Any], status: str, tokens: int = 0, error: str | None = None) -> dict[str, Any]:
        usage = {"input_tokens": tokens // 2, "output_tokens": tokens - tokens // 2, "total_tokens": tokens}
        fault = {"error": "ValueError", "message": error} if error else None
        return {**run, "status": status, "usage": usage, "error": fault, "ended_at": ended_at}

    results = await rt.cron_guards.runs_ended(
        [
            ended(f0, "error", error="first"),
            ended(c0, "success", 60),
            ended(f1, "error", error="second"),
            ended(c1, "success", 50),  # 110 tokens in 24 hours: over the budget of 100 with this run
            ended(f2, "success"),
            ended(f0, "error", error="reported twice"),  # counted once
            ended(c2, "success", 10),
        ]
    )
    assert results[0] == {"consecutive_failures": 1}
    assert results[1] == {}
    paused_failures = results[2]
    assert paused_failures is not None and paused_failures["enabled"] is False
    assert paused_failures["consecutive_failures"] == 2
    assert f1["run_id"] in paused_failures["paused_reason"] and "ValueError: second" in paused_failures["paused_reason"]
    paused_budget = results[3]
    assert paused_budget is not None and paused_budget["enabled"] is False
    assert paused_budget["paused_reason"].startswith("max_tokens_per_day: 110 tokens")
    assert c1["run_id"] in paused_budget["paused_reason"]
    assert results[4] == {"consecutive_failures": 0}  # a success resets the count; the cron stays paused
    assert results[5] is None
    assert results[6] == {}

    row = await cron_row(rt, failing["cron_id"])
    assert (row["enabled"], row["consecutive_failures"]) == (False, 0)
    assert row["paused_reason"] == paused_failures["paused_reason"]
    assert (await cron_row(rt, costly["cron_id"]))["paused_reason"] == paused_budget["paused_reason"]
    log = await fire_log(rt, failing["cron_id"])
    assert [(f["run_status"], f["detail"]) for f in log] == [
        ("error", "ValueError: first"),
        ("error", "ValueError: second"),
        ("success", None),
    ]
    log = await fire_log(rt, costly["cron_id"])
    assert [(f["run_status"], f["tokens"], f["input_tokens"], f["ended_at"]) for f in log] == [
        ("success", 60, 30, ended_at),
        ("success", 50, 25, ended_at),
        ("success", 10, 5, ended_at),
    ]
    # Recorded again (the executor's and the reaper's hooks both saw a run end): nothing changes.
    assert await rt.cron_guards.runs_ended([ended(f1, "error", error="again")]) == [None]
    assert (await fire_log(rt, failing["cron_id"]))[1]["detail"] == "ValueError: second"
    counters = rt.cron_guards.stats()
    assert [counters[k] for k in ("runs_ended", "tokens", "paused_failures", "paused_budget")] == [6, 120, 1, 1]


async def test_the_finished_hook_records_runs_ended_in_one_turn_together(rt: Runtime) -> None:
    crons = [
        await rt.crons.create(None, {"assistant_id": "echo", "schedule": "* * * * *", "on_run_completed": "keep"})
        for _ in range(30)
    ]
    await fire(rt, START + timedelta(minutes=1))
    runs = [(await cron_runs(rt, c["cron_id"]))[0] for c in crons]
    for run in runs:  # as the executor's hook does when 30 runs end in one turn of the event loop
        rt.cron_guards.on_run_finished({**run, "status": "success", "usage": None, "ended_at": START})
    await rt.cron_guards.stop()  # waits for what the hook queued
    for cron in crons:
        assert [f["run_status"] for f in await fire_log(rt, cron["cron_id"])] == ["success"]
    assert rt.cron_guards.stats()["runs_ended"] == 30


async def test_runs_ending_over_several_turns_are_recorded_in_one_transaction(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a burst, runs end a few per turn of the event loop: the recording waits ENDED_LINGER for more instead of
    writing a transaction per turn."""
    crons = [
        await rt.crons.create(None, {"assistant_id": "echo", "schedule": "* * * * *", "on_run_completed": "keep"})
        for _ in range(12)
    ]
    await fire(rt, START + timedelta(minutes=1))
    runs = [(await cron_runs(rt, c["cron_id"]))[0] for c in crons]
    batches: list[int] = []
    recorded = asyncio.Event()
    record = rt.cron_guards.runs_ended

    async def counted(ended: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        batches.append(len(ended))
        recorded.set()
        result: list[dict[str, Any] | None] = await record(ended)
        return result

    monkeypatch.setattr(rt.cron_guards, "runs_ended", counted)
    for run in runs:  # three runs a turn, four turns
        rt.cron_guards.on_run_finished({**run, "status": "success", "usage": None, "ended_at": START})
        if len(rt.cron_guards._ended) % 3 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(recorded.wait(), 30)
    await rt.cron_guards.stop()
    assert batches == [12]
    for cron in crons:
        assert [f["run_status"] for f in await fire_log(rt, cron["cron_id"])] == ["success"]


async def test_a_large_tick_logs_one_summary_line_at_info(rt: Runtime) -> None:
    crons = [
        await rt.crons.create(None, {"assistant_id": "echo", "schedule": "* * * * *", "on_run_completed": "keep"})
        for _ in range(events.FIRED_LOG_EACH + 5)
    ]
    with structlog.testing.capture_logs() as logged:
        await fire(rt, START + timedelta(minutes=1))
    info = [(e["event"], e.get("count")) for e in logged if e["log_level"] == "info"]
    assert info == [("cron.fired_many", len(crons))]
    assert rt.scheduler.stats()["fired"] == len(crons)


async def test_a_replica_finding_every_due_cron_locked_looks_again_shortly_instead_of_spinning(rt: Runtime) -> None:
    """PostgreSQL: the crons due are locked by another replica firing them (FOR UPDATE SKIP LOCKED skips them).
    The scheduler then sleeps LOCKED_RETRY, not zero (a spin of queries on the cores the other replica fires on),
    and fires what is left once the lock is gone."""
    if rt.db.dialect != "postgresql":
        pytest.skip("row locks between replicas are PostgreSQL's (SQLite has one writer)")
    cron = await rt.crons.create(None, {"assistant_id": "echo", "schedule": "5 12 * * *", "on_run_completed": "keep"})
    slot = START + timedelta(minutes=5)
    assert isinstance(rt.clock, FakeClock)
    async with rt.db.write() as other:  # another replica's batch, holding the cron's row lock
        await other.execute(select(tables.crons.c.cron_id).with_for_update())
        await rt.clock.set(slot)
        await rt.scheduler.start()
        async with asyncio.timeout(60):
            while rt.scheduler._sleeping_until != slot + LOCKED_RETRY:
                await asyncio.sleep(0.01)  # waiting for the scheduler's tick to end (an event), not for time to pass
        ticks = rt.scheduler.ticks
    assert await cron_runs(rt, cron["cron_id"]) == []
    assert rt.scheduler.ticks == ticks  # the lock's end woke nothing: it sleeps on the fake clock
    await rt.clock.set(slot + LOCKED_RETRY)
    async with asyncio.timeout(60):
        while not await cron_runs(rt, cron["cron_id"]):
            await asyncio.sleep(0.01)
    assert [r["scheduled_for"] for r in await cron_runs(rt, cron["cron_id"])] == [slot]
