"""Crons that cannot run up a bill (docs/crons.md, issue 13), each extension through a real server with the official
SDK (its `client.http` for the extension endpoints) or raw HTTP: one-shots, max_runs and start_time, overlap
policies, pause on failures, token usage and budgets, jitter, trigger, backfill, per-owner limits, and the four
faults replayed from public reports. Schedules are seconds-level (the sixth field is seconds)."""

from __future__ import annotations

import contextlib
import re
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError

from crongraph.schedules.policy import jitter_delay
from tests.support.sdk import cron_fires, cron_runs, eventually, get_cron, sdk_client

EVERY_SECOND = "* * * * * *"
MESSAGE = {"messages": [{"role": "user", "content": "What time is it?"}]}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


# One-shots, max_runs, start_time


async def test_at_fires_once_and_finishes(client: Any) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    cron = await client.crons.create("agent", schedule=f"@at {at.isoformat()}", input=MESSAGE, on_run_completed="keep")
    assert parse(cron["next_run_date"]) == at and cron["finished"] is False

    async def finished() -> dict[str, Any] | None:
        got = await get_cron(client, cron["cron_id"])
        return got if got["finished"] else None

    done = await eventually(finished)
    assert done["next_run_date"] is None and done["usage"]["runs"] == 1
    log = await cron_fires(client, cron["cron_id"])
    assert [(parse(f["scheduled_for"]), f["outcome"], f["kind"]) for f in log] == [(at, "created", "schedule")]
    await client.crons.delete(cron["cron_id"])


async def test_at_naive_is_read_in_the_cron_timezone_and_past_is_refused(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="@at 2099-03-01T09:30:00", timezone="Asia/Seoul"
    )
    assert parse(cron["next_run_date"]) == datetime(2099, 3, 1, 0, 30, tzinfo=UTC)
    nxt = await client.http.get(f"/runs/crons/{cron['cron_id']}/next")
    assert nxt["next_run_dates"] == [cron["next_run_date"]] and nxt["description"].startswith("Once, at 2099-03-01")
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        past = await raw.post("/runs/crons", json={"assistant_id": "agent", "schedule": "@at 2001-01-01T00:00:00Z"})
        assert past.status_code == 422 and "2001-01-01T00:00:00+00:00 is in the past" in past.json()["detail"]
        bad = await raw.post("/runs/crons", json={"assistant_id": "agent", "schedule": "@at tomorrow"})
        assert bad.status_code == 422 and "'tomorrow' is not an ISO-8601 date-time" in bad.json()["detail"]
    await client.crons.delete(cron["cron_id"])


async def test_max_runs_finishes_the_cron_and_start_time_delays_it(client: Any) -> None:
    thread = await client.threads.create()
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    cron = await client.http.post(
        f"/threads/{thread['thread_id']}/runs/crons",
        json={
            "assistant_id": "agent",
            "schedule": EVERY_SECOND,
            "input": MESSAGE,
            "max_runs": 2,
            "start_time": iso(start),
        },
    )
    assert parse(cron["next_run_date"]) == start  # no occurrence before start_time
    assert cron["max_runs"] == 2 and cron["remaining_runs"] == 2

    async def finished() -> dict[str, Any] | None:
        got = await get_cron(client, cron["cron_id"])
        return got if got["finished"] else None

    done = await eventually(finished)
    assert done["remaining_runs"] == 0 and done["next_run_date"] is None and done["usage"]["runs"] == 2
    created = [f for f in await cron_fires(client, cron["cron_id"]) if f["outcome"] == "created"]
    assert sorted(parse(f["scheduled_for"]) for f in created) == [start, start + timedelta(seconds=1)]
    # Raising the limit lets it fire again, from now.
    more = await client.http.patch(f"/runs/crons/{cron['cron_id']}", json={"max_runs": 3})
    assert more["remaining_runs"] == 1 and more["next_run_date"] is not None
    await client.crons.delete(cron["cron_id"])


# Overlap policies


async def slow_cron(client: Any, overlap_policy: str, delay: float, schedule: str = EVERY_SECOND) -> dict[str, Any]:
    """A stateless cron of the `slow` graph (runs kept) whose runs take `delay` seconds, under `overlap_policy`."""
    body = {"assistant_id": "slow", "schedule": schedule, "input": {**MESSAGE, "delay": delay}}
    return await client.http.post(  # type: ignore[no-any-return]
        "/runs/crons", json={**body, "overlap_policy": overlap_policy, "on_run_completed": "keep"}
    )


async def test_overlap_skip_logs_the_occurrences_it_skips(client: Any) -> None:
    cron = await slow_cron(client, "skip", delay=3.0)
    assert cron["overlap_policy"] == "skip"

    async def skipped() -> list[dict[str, Any]]:
        log = await cron_fires(client, cron["cron_id"], outcome="skipped")
        return [f for f in log if "overlap_policy skip" in f["detail"]]

    found = await eventually(skipped)
    await client.crons.update(cron["cron_id"], enabled=False)
    log = await cron_fires(client, cron["cron_id"])
    created = [f for f in log if f["outcome"] == "created"]
    first = created[-1]  # newest slot first
    assert found[0]["detail"].startswith(f"overlap_policy skip: this cron's run {first['run_id']} is still")
    # While the first run was in flight (3 s), every later occurrence was skipped, none ran beside it.
    assert len(created) <= 2, log
    await client.crons.delete(cron["cron_id"])


async def test_overlap_buffer_one_holds_one_run_and_skips_the_rest(client: Any) -> None:
    cron = await slow_cron(client, "buffer_one", delay=2.0)

    async def buffered() -> list[dict[str, Any]]:
        return [f for f in await cron_fires(client, cron["cron_id"], outcome="skipped") if "buffer_one" in f["detail"]]

    await eventually(buffered)
    await client.crons.update(cron["cron_id"], enabled=False)
    created = [f for f in await cron_fires(client, cron["cron_id"]) if f["outcome"] == "created"]
    assert len(created) >= 2
    # The buffered run waits for the running one and then runs: every created run ends, one after the other.

    async def all_ended() -> bool:
        log = [f for f in await cron_fires(client, cron["cron_id"]) if f["outcome"] == "created"]
        return all(f["run_status"] == "success" for f in log)

    await eventually(all_ended, within=30)
    runs = await cron_runs(client, cron["cron_id"])
    ends = sorted((parse(r["scheduled_for"]), r) for r in runs)
    for (_, earlier), (_, later) in pairwise(ends):
        # Each run was created or released only when the previous one ended (2 s runs, 1 s apart).
        assert parse(later["updated_at"]) >= parse(earlier["updated_at"]) + timedelta(seconds=1.5)
    await client.crons.delete(cron["cron_id"])


async def test_overlap_cancel_previous_interrupts_the_running_run(client: Any) -> None:
    cron = await slow_cron(client, "cancel_previous", delay=30.0, schedule="* * * * * */2")

    async def interrupted() -> list[dict[str, Any]]:
        return [f for f in await cron_fires(client, cron["cron_id"]) if f["run_status"] == "interrupted"]

    await eventually(interrupted)  # long before the 30 s run could have finished
    await client.crons.update(cron["cron_id"], enabled=False)
    for run in await cron_runs(client, cron["cron_id"]):
        if run["status"] in ("pending", "running"):
            await client.runs.cancel(run["thread_id"], run["run_id"])
    await client.crons.delete(cron["cron_id"])


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_thread_cron_interrupt_strategy_stops_the_executing_run(client: Any, strategy: str) -> None:
    """Fault 1: the run created in the scheduler's transaction cancelled the executing run in storage only; the
    executing run finished `success`. Now its executor hears of it at once."""
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"],
        "slow",
        schedule="* * * * * */3",
        input={**MESSAGE, "delay": 20.0},
        multitask_strategy=strategy,
    )

    async def superseded() -> list[dict[str, Any]] | None:
        runs = await client.runs.list(thread["thread_id"], limit=100)
        if strategy == "interrupt":
            return [r for r in runs if r["status"] == "interrupted"] or None
        # rollback deletes the run it stops: the first slot's run is gone and a later one exists
        created = [f for f in await cron_fires(client, cron["cron_id"]) if f["outcome"] == "created"]
        ids = {r["run_id"] for r in runs}
        return [f for f in created if f["run_id"] not in ids and len(created) >= 2] or None

    started = time.monotonic()
    await eventually(superseded, within=15)
    assert time.monotonic() - started < 15  # far less than the 20 s a run takes
    await client.crons.delete(cron["cron_id"])
    for run in await client.runs.list(thread["thread_id"], limit=100):
        if run["status"] in ("pending", "running"):
            # With rollback, a run listed here may be rolled back (deleted) by the last fire before it is cancelled.
            with contextlib.suppress(NotFoundError):
                await client.runs.cancel(thread["thread_id"], run["run_id"])


# Pause on failures, usage, token budgets


async def test_pause_after_failures_and_failed_runs_usage(client: Any) -> None:
    cron = await client.http.post(
        "/runs/crons",
        json={"assistant_id": "fails", "schedule": EVERY_SECOND, "input": MESSAGE, "pause_after_failures": 2},
    )

    async def paused() -> dict[str, Any] | None:
        got = await get_cron(client, cron["cron_id"])
        return got if not got["enabled"] else None

    got = await eventually(paused)
    reason = got["paused_reason"]
    assert reason.startswith("pause_after_failures: 2 consecutive runs ended in error (limit 2)"), reason
    assert "ValueError: kaboom" in reason
    # Fault 4: runs that ended in error are failed_runs; `failed` stays the fires that could not create a run.
    assert got["usage"]["failed_runs"] >= 2 and got["usage"]["failed"] == 0
    # The error text reaches the fire log (a stateless cron's run goes with its thread) and the run objects.
    fires = await cron_fires(client, cron["cron_id"])
    ended = [fire for fire in fires if fire.get("run_status") == "error"]
    assert ended and all("ValueError: kaboom" in (fire["detail"] or "") for fire in ended), fires
    resumed = await client.crons.update(cron["cron_id"], enabled=True)
    assert resumed["enabled"] is True
    again = await get_cron(client, cron["cron_id"])
    assert again["paused_reason"] is None and again["consecutive_failures"] == 0
    await client.crons.delete(cron["cron_id"])


async def test_token_usage_and_daily_budget(client: Any) -> None:
    """A thread cron: each run adds one 600-token reply; earlier replies on the thread are not counted again."""
    thread = await client.threads.create()
    cron = await client.http.post(
        f"/threads/{thread['thread_id']}/runs/crons",
        json={
            "assistant_id": "metered",
            "schedule": EVERY_SECOND,
            "input": {"messages": [{"role": "user", "content": "hi"}], "tokens": 600},
            "max_tokens_per_day": 1000,
        },
    )

    async def paused() -> dict[str, Any] | None:
        got = await get_cron(client, cron["cron_id"])
        return got if not got["enabled"] else None

    got = await eventually(paused)
    reason = re.fullmatch(
        r"max_tokens_per_day: (\d+) tokens in the last 24 hours exceed the budget of 1000 \(last run .+\)",
        got["paused_reason"],
    )
    assert reason is not None and int(reason[1]) >= 1200, got["paused_reason"]

    async def settled() -> list[dict[str, Any]] | None:
        log = [f for f in await cron_fires(client, cron["cron_id"]) if f["outcome"] == "created"]
        return log if all(f["run_status"] for f in log) else None

    ended = await eventually(settled)
    assert {(f["tokens"], f["input_tokens"], f["output_tokens"]) for f in ended} == {(600, 300, 300)}
    got = await get_cron(client, cron["cron_id"])
    assert got["usage"]["tokens"] == got["usage"]["tokens_last_24h"] == 600 * len(ended)
    runs = await cron_runs(client, cron["cron_id"])
    assert all(
        r["usage"] == {"input_tokens": 300, "output_tokens": 300, "total_tokens": 600}
        for r in runs
        if r["status"] == "success"
    )
    await client.crons.delete(cron["cron_id"])


# Jitter


async def test_jitter_delays_each_run_deterministically_and_keeps_the_slots(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.http.post(
        f"/threads/{thread['thread_id']}/runs/crons",
        json={"assistant_id": "agent", "schedule": EVERY_SECOND, "input": MESSAGE, "jitter_seconds": 2},
    )
    assert cron["jitter_seconds"] == 2

    async def three() -> list[dict[str, Any]] | None:
        runs = await cron_runs(client, cron["cron_id"])
        return runs if len(runs) >= 3 else None

    runs = await eventually(three)
    await client.crons.update(cron["cron_id"], enabled=False)
    for run in runs:
        slot = parse(run["scheduled_for"])
        assert slot.microsecond == 0  # the fire log keys the slot, not the jittered start
        delay = jitter_delay(cron["cron_id"], slot, 2)
        assert timedelta(0) <= delay < timedelta(seconds=2)
        assert run["jitter_ms"] == round(delay.total_seconds() * 1000, 3)
        assert parse(run["available_at"]) == max(parse(run["created_at"]), slot + delay)
        assert 0 <= run["delay_ms"] < 500
    await client.crons.delete(cron["cron_id"])


# Trigger and backfill


async def test_trigger_runs_now_as_a_manual_fire(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 9 1 1 *", input=MESSAGE)
    run = await client.http.post(f"/runs/crons/{cron['cron_id']}/trigger", json={})
    assert run["cron_id"] == cron["cron_id"] and run["thread_id"] == thread["thread_id"]
    assert run["metadata"]["cron_fire_kind"] == "manual"
    assert run["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    await client.runs.join(thread["thread_id"], run["run_id"])
    second = await client.http.post(f"/runs/crons/{cron['cron_id']}/trigger", json={})
    log = await cron_fires(client, cron["cron_id"])
    assert {(f["run_id"], f["kind"], f["outcome"]) for f in log} == {
        (run["run_id"], "manual", "created"),
        (second["run_id"], "manual", "created"),
    }
    # Off whole seconds: a manual fire's key can never be a scheduled occurrence's.
    assert all(parse(f["scheduled_for"]).microsecond != 0 for f in log)
    got = await get_cron(client, cron["cron_id"])
    assert got["usage"]["runs"] == 2 and got["next_run_date"] == cron["next_run_date"]
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        missing = await raw.post("/runs/crons/00000000-0000-0000-0000-000000000000/trigger")
        assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    await client.crons.delete(cron["cron_id"])


async def test_backfill_is_exactly_once_and_bounded(client: Any) -> None:
    cron = await client.crons.create("agent", schedule="0 * * * *", input=MESSAGE, on_run_completed="keep")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = {"start": iso(hour - timedelta(hours=5)), "end": iso(hour - timedelta(hours=1))}
    first = await client.http.post(f"/runs/crons/{cron['cron_id']}/backfill", json=body)
    assert (first["created"], first["existing"]) == (4, 0)
    assert sorted(parse(r["scheduled_for"]) for r in first["runs"]) == [hour - timedelta(hours=h) for h in (5, 4, 3, 2)]
    assert all(r["metadata"]["cron_fire_kind"] == "backfill" for r in first["runs"])
    again = await client.http.post(f"/runs/crons/{cron['cron_id']}/backfill", json=body)
    assert (again["created"], again["existing"], again["runs"]) == (0, 4, [])
    wider = await client.http.post(
        f"/runs/crons/{cron['cron_id']}/backfill", json={**body, "start": iso(hour - timedelta(hours=7))}
    )
    assert (wider["created"], wider["existing"]) == (2, 4)
    log = await cron_fires(client, cron["cron_id"])
    assert len(log) == len({f["scheduled_for"] for f in log}) == 6 and {f["kind"] for f in log} == {"backfill"}
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        path = f"/runs/crons/{cron['cron_id']}/backfill"
        future = await raw.post(path, json={"start": iso(hour), "end": iso(hour + timedelta(days=1))})
        assert future.status_code == 422 and "is in the future" in future.json()["detail"]
        big = await raw.post(path, json={"start": iso(hour - timedelta(days=30)), "end": iso(hour)})
        assert big.status_code == 422 and "the limit is 100 per request" in big.json()["detail"]
        backwards = await raw.post(path, json={"start": body["end"], "end": body["start"]})
        assert backwards.status_code == 422 and "must be before end" in backwards.json()["detail"]
    assert len(await cron_fires(client, cron["cron_id"])) == 6  # the refusals changed nothing
    await client.crons.delete(cron["cron_id"])


async def test_backfill_fills_occurrences_skipped_while_down(client: Any) -> None:
    """A skipped occurrence (here: a busy thread with `reject`) has a fire-log row and no run; backfill gives it
    its run, once."""
    thread = await client.threads.create()
    busy = await client.runs.create(thread["thread_id"], "slow", input={**MESSAGE, "delay": 3.0})
    cron = await client.crons.create_for_thread(
        thread["thread_id"], "agent", schedule=EVERY_SECOND, input=MESSAGE, multitask_strategy="reject"
    )

    async def skipped() -> list[dict[str, Any]]:
        return await cron_fires(client, cron["cron_id"], outcome="skipped")

    found = await eventually(skipped)
    await client.crons.update(cron["cron_id"], enabled=False)
    await client.runs.join(thread["thread_id"], busy["run_id"])
    slot = parse(found[-1]["scheduled_for"])
    filled = await client.http.post(
        f"/runs/crons/{cron['cron_id']}/backfill", json={"start": iso(slot), "end": iso(slot + timedelta(seconds=1))}
    )
    assert (filled["created"], filled["existing"]) == (1, 0)
    row = [f for f in await cron_fires(client, cron["cron_id"]) if parse(f["scheduled_for"]) == slot]
    assert len(row) == 1 and row[0]["outcome"] == "created" and row[0]["run_id"] == filled["runs"][0]["run_id"]
    assert row[0]["detail"].startswith("backfilled; before: Thread is already running")
    await client.crons.delete(cron["cron_id"])


# Per-owner limits and the remaining faults


async def test_per_owner_limits(server_factory: Any) -> None:
    srv = server_factory(env={"CRONGRAPH_MAX_CRONS_PER_OWNER": "2", "CRONGRAPH_MIN_CRON_INTERVAL_SECONDS": "60"})
    async with sdk_client(srv.url) as client, httpx.AsyncClient(base_url=srv.url) as raw:
        fast = await raw.post("/runs/crons", json={"assistant_id": "agent", "schedule": "* * * * * */10"})
        assert fast.status_code == 422
        assert "fires every 10 seconds" in fast.json()["detail"]
        assert "CRONGRAPH_MIN_CRON_INTERVAL_SECONDS" in fast.json()["detail"]
        one = await client.crons.create("agent", schedule="0 * * * *")
        two = await client.crons.create("agent", schedule="30 * * * *")
        three = await raw.post("/runs/crons", json={"assistant_id": "agent", "schedule": "15 * * * *"})
        assert three.status_code == 409 and "CRONGRAPH_MAX_CRONS_PER_OWNER=2" in three.json()["detail"]
        paused = await raw.post(
            "/runs/crons", json={"assistant_id": "agent", "schedule": "15 * * * *", "enabled": False}
        )
        assert paused.status_code == 200  # a paused cron is not active
        resume = await raw.patch(f"/runs/crons/{paused.json()['cron_id']}", json={"enabled": True})
        assert resume.status_code == 409 and "CRONGRAPH_MAX_CRONS_PER_OWNER" in resume.json()["detail"]
        await client.crons.update(one["cron_id"], enabled=False)
        assert (await raw.patch(f"/runs/crons/{paused.json()['cron_id']}", json={"enabled": True})).status_code == 200
        faster = await raw.patch(f"/runs/crons/{two['cron_id']}", json={"schedule": "* * * * * *"})
        assert faster.status_code == 422 and (await get_cron(client, two["cron_id"]))["schedule"] == "30 * * * *"


async def test_end_time_before_the_first_occurrence_is_a_finished_cron(client: Any) -> None:
    """Fault 2: accepted, like the reference (it never fires); only an end_time in the past is refused, saying so."""
    end = datetime.now(UTC) + timedelta(hours=1)
    cron = await client.crons.create("agent", schedule="0 0 1 1 *", end_time=end)
    assert cron["next_run_date"] is None and cron["finished"] is True
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        past = await raw.post(
            "/runs/crons", json={"assistant_id": "agent", "schedule": "* * * * *", "end_time": "2001-01-01T00:00:00Z"}
        )
        assert past.status_code == 422
        assert past.json()["detail"] == "end_time 2001-01-01T00:00:00+00:00 is in the past: this cron would never fire"
    await client.crons.delete(cron["cron_id"])


async def test_a_time_zone_prefix_is_pointed_to_timezone(client: Any) -> None:
    """Fault 3: `CRON_TZ=Etc/UTC */20 * * * *` was refused for a step in the minute field."""
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        response = await raw.post(
            "/runs/crons", json={"assistant_id": "agent", "schedule": "CRON_TZ=Etc/UTC */20 * * * *"}
        )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "belongs in the cron's `timezone` field" in detail and "send timezone 'Etc/UTC'" in detail, detail


async def test_guard_fields_in_search_and_validation(client: Any) -> None:
    tag = f"guards-{time.time_ns()}"
    cron = await client.http.post(
        "/runs/crons",
        json={
            "assistant_id": "agent",
            "schedule": "0 9 * * *",
            "metadata": {"tag": tag},
            "max_runs": 5,
            "overlap_policy": "buffer_one",
            "pause_after_failures": 3,
            "max_tokens_per_day": 50_000,
            "jitter_seconds": 30,
        },
    )
    [found] = await client.crons.search(metadata={"tag": tag})
    for key, value in {
        "max_runs": 5,
        "remaining_runs": 5,
        "overlap_policy": "buffer_one",
        "pause_after_failures": 3,
        "max_tokens_per_day": 50_000,
        "jitter_seconds": 30,
        "paused_reason": None,
        "consecutive_failures": 0,
    }.items():
        assert found[key] == value, key
    assert set(found["usage"]) >= {"failed_runs", "tokens", "tokens_last_24h"}
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        for field, value in (
            ("max_runs", 0),
            ("overlap_policy", "sometimes"),
            ("pause_after_failures", 0),
            ("max_tokens_per_day", -1),
            ("jitter_seconds", 100_000),
        ):
            bad = await raw.patch(f"/runs/crons/{cron['cron_id']}", json={field: value})
            assert bad.status_code == 422 and field in bad.json()["detail"], bad.text
    await client.crons.delete(cron["cron_id"])
