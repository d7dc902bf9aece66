"""Exactly once under kill -9: a burst of every-second crons, the server killed mid-burst and restarted. Every
occurrence in the window has exactly one run or a visible log entry saying why not; none has two."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from langgraph_sdk import get_client

CRONS = 25


async def test_every_occurrence_fires_exactly_once_across_kill_9(server_factory: Any) -> None:
    # A run executing at the kill is ended by the reaper once its lease expires (on PostgreSQL, where another
    # process may own it; SQLite's embedded reaper ends it at restart): a short lease keeps that wait short.
    srv = server_factory(env={"CRONGRAPH_LEASE_SECONDS": "5"})
    client = get_client(url=srv.url)
    threads = [await client.threads.create() for _ in range(CRONS)]
    crons = [
        await client.crons.create_for_thread(t["thread_id"], "echo", schedule="* * * * * *", input={"messages": []})
        for t in threads
    ]
    await asyncio.sleep(2.5)
    srv.kill()
    await asyncio.sleep(1.5)  # down: occurrences are missed
    srv.start()
    client = get_client(url=srv.url)
    await asyncio.sleep(2.5)
    for cron in crons:
        await client.crons.update(cron["cron_id"], enabled=False)

    for cron in crons:
        runs = await client.http.get(f"/runs/crons/{cron['cron_id']}/runs", params={"limit": 1000})
        fires = await client.http.get(f"/runs/crons/{cron['cron_id']}/fires", params={"limit": 1000})
        run_slots = Counter(r["scheduled_for"] for r in runs)
        assert all(n == 1 for n in run_slots.values()), f"duplicate fires: {run_slots}"
        created = {f["scheduled_for"]: f["run_id"] for f in fires if f["outcome"] == "created"}
        assert created == {r["scheduled_for"]: r["run_id"] for r in runs}
        # No silent gap: every second from the first fire to the last is either fired or logged as skipped.
        logged = sorted(datetime.fromisoformat(f["scheduled_for"]) for f in fires)
        assert len(logged) == len(set(logged))
        span = int((logged[-1] - logged[0]).total_seconds()) + 1
        assert logged == [logged[0] + timedelta(seconds=i) for i in range(span)], logged
        assert span >= 5  # the window covered both lives of the server

    async def settled() -> bool:
        for t in threads:
            for run in await client.runs.list(t["thread_id"], limit=100):
                if run["status"] in ("pending", "running"):
                    return False
        return True

    # Settling takes the queue's drain plus, for a run cut by the kill, lease x 1.5: wait for it with a deadline
    # far beyond both, so a loaded machine only makes the test slower.
    deadline = asyncio.get_running_loop().time() + 120
    while not await settled() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert await settled(), "a run was left pending or running"
