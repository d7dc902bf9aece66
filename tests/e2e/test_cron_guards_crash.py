"""Exactly once under kill -9 for the cost-guard paths (docs/crons.md): jittered fires, manual triggers and
backfills, with the server killed while they are in flight and restarted. Afterwards the fire log and the runs
agree one to one: no occurrence has two runs, no run lacks its fire-log row, and a repeated backfill creates
only what the killed one did not commit."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from langgraph_sdk import get_client

from crongraph.schedules.policy import jitter_delay

CRONS = 8


async def _runs_and_fires(client: Any, cron_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    runs = await client.http.get(f"/runs/crons/{cron_id}/runs", params={"limit": 1000})
    fires = await client.http.get(f"/runs/crons/{cron_id}/fires", params={"limit": 1000})
    return runs, fires


def _one_to_one(runs: list[dict[str, Any]], fires: list[dict[str, Any]]) -> None:
    slots = Counter(r["scheduled_for"] for r in runs)
    assert all(n == 1 for n in slots.values()), f"an occurrence has two runs: {slots}"
    keys = [f["scheduled_for"] for f in fires]
    assert len(keys) == len(set(keys)), "an occurrence is logged twice"
    created = {f["scheduled_for"]: f["run_id"] for f in fires if f["outcome"] == "created"}
    assert created == {r["scheduled_for"]: r["run_id"] for r in runs}


async def test_jitter_trigger_and_backfill_exactly_once_across_kill_9(server_factory: Any) -> None:
    srv = server_factory()
    client = get_client(url=srv.url)
    threads = [await client.threads.create() for _ in range(CRONS)]
    jittered = [
        await client.http.post(
            f"/threads/{t['thread_id']}/runs/crons",
            json={"assistant_id": "echo", "schedule": "* * * * * *", "input": {"messages": []}, "jitter_seconds": 2},
        )
        for t in threads
    ]
    manual_thread = await client.threads.create()
    manual = await client.crons.create_for_thread(
        manual_thread["thread_id"], "echo", schedule="0 0 1 1 *", input={"messages": []}
    )
    hourly = await client.crons.create("echo", schedule="* * * * *", input={"messages": []}, on_run_completed="keep")
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    window = {"start": (minute - timedelta(minutes=90)).isoformat(), "end": (minute - timedelta(minutes=1)).isoformat()}

    async def hammer(raw: httpx.AsyncClient) -> None:
        # Triggers and backfills in flight when the server dies; their answers may never come.
        async def call(path: str, body: dict[str, Any]) -> None:
            try:
                await raw.post(path, json=body)
            except httpx.HTTPError:
                pass

        calls = [call(f"/runs/crons/{manual['cron_id']}/trigger", {}) for _ in range(30)]
        calls += [call(f"/runs/crons/{hourly['cron_id']}/backfill", window) for _ in range(3)]
        await asyncio.gather(*calls)

    await asyncio.sleep(2.0)
    async with httpx.AsyncClient(base_url=srv.url, timeout=10) as raw:
        flight = asyncio.create_task(hammer(raw))
        await asyncio.sleep(0.15)
        srv.kill()
        await flight
    srv.start()
    client = get_client(url=srv.url)
    await asyncio.sleep(2.5)
    for cron in jittered:
        await client.crons.update(cron["cron_id"], enabled=False)
    again = await client.http.post(f"/runs/crons/{hourly['cron_id']}/backfill", json=window)
    assert again["created"] + again["existing"] == 89  # every minute of the window, once
    assert (await client.http.post(f"/runs/crons/{hourly['cron_id']}/backfill", json=window))["created"] == 0

    for cron in [*jittered, manual, hourly]:
        runs, fires = await _runs_and_fires(client, cron["cron_id"])
        _one_to_one(runs, fires)
    for cron in jittered:
        runs, fires = await _runs_and_fires(client, cron["cron_id"])
        assert len(runs) >= 3, "the jittered crons fired in both lives of the server"
        for run in runs:
            slot = datetime.fromisoformat(run["scheduled_for"])
            assert slot.microsecond == 0
            due = slot + jitter_delay(cron["cron_id"], slot, 2)
            assert datetime.fromisoformat(run["available_at"]) == max(datetime.fromisoformat(run["created_at"]), due)
    runs, fires = await _runs_and_fires(client, manual["cron_id"])
    assert {f["kind"] for f in fires} <= {"manual"} and all(f["outcome"] == "created" for f in fires)
    runs, fires = await _runs_and_fires(client, hourly["cron_id"])
    backfilled = [f for f in fires if f["kind"] == "backfill"]
    assert len(backfilled) == 89
