"""Cost guards across replicas (docs/crons.md): three `crongraph serve` processes on one PostgreSQL database fire
jittered crons and crons with max_runs, and serve triggers and backfills of the same crons sent to every replica
at once, while one replica is killed with SIGKILL. Counted from the database itself afterwards: no occurrence has
two runs, every created fire has its run, max_runs is never exceeded, and the concurrent backfills together
created each occurrence of the window once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crongraph.schedules.policy import jitter_delay
from tests.multireplica.conftest import Cluster

pytestmark = [pytest.mark.postgres]

ECHO = {"assistant_id": "echo", "input": {"messages": []}, "on_run_completed": "keep"}


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    try:
        response = await client.post(path, json=body)
    except httpx.HTTPError:
        return None  # the replica died under it
    return response.json() if response.status_code == 200 else None


async def test_guards_exactly_once_across_replicas(cluster: Any) -> None:
    group: Cluster = cluster(3)
    clients = [httpx.AsyncClient(base_url=r.url, timeout=30) for r in group.replicas]
    try:
        jittered = [
            await _post(clients[i % 3], "/runs/crons", {**ECHO, "schedule": "* * * * * *", "jitter_seconds": 3})
            for i in range(6)
        ]
        limited = [
            await _post(clients[i % 3], "/runs/crons", {**ECHO, "schedule": "* * * * * *", "max_runs": 3})
            for i in range(6)
        ]
        manual = await _post(clients[0], "/runs/crons", {**ECHO, "schedule": "0 0 1 1 *"})
        hourly = await _post(clients[0], "/runs/crons", {**ECHO, "schedule": "* * * * *"})
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        window = {"start": (minute - timedelta(minutes=60)).isoformat(), "end": minute.isoformat()}
        await asyncio.sleep(1.5)
        calls = [_post(clients[i % 3], f"/runs/crons/{manual['cron_id']}/trigger", {}) for i in range(30)]
        calls += [_post(c, f"/runs/crons/{hourly['cron_id']}/backfill", window) for c in clients for _ in range(2)]
        answers = asyncio.gather(*calls)
        await asyncio.sleep(0.1)
        group.replicas[2].kill()
        backfills = [a for a in (await answers)[30:] if a is not None]
        await asyncio.sleep(4.0)  # the limited crons finish, the jittered ones fire on the survivors
        for cron in jittered:
            await clients[0].patch(f"/runs/crons/{cron['cron_id']}", json={"enabled": False})
        again = await _post(clients[1], f"/runs/crons/{hourly['cron_id']}/backfill", window)
    finally:
        for c in clients:
            await c.aclose()

    # At most one run per occurrence, and the fire log names exactly the runs that exist.
    assert group.sql("SELECT cron_id, scheduled_for FROM runs GROUP BY 1, 2 HAVING count(*) > 1") == []
    orphans = group.sql(
        "SELECT f.cron_id, f.scheduled_for FROM cron_fires f LEFT JOIN runs r ON r.run_id = f.run_id "
        "WHERE f.outcome = 'created' AND r.run_id IS NULL"
    )
    assert orphans == []
    unlogged = group.sql(
        "SELECT r.run_id FROM runs r LEFT JOIN cron_fires f ON f.cron_id = r.cron_id "
        "AND f.scheduled_for = r.scheduled_for AND f.run_id = r.run_id WHERE r.cron_id IS NOT NULL AND f.run_id IS NULL"
    )
    assert unlogged == []
    for cron in limited:
        runs = group.scalar("SELECT count(*) FROM runs WHERE cron_id = %s", cron["cron_id"])
        fired, nxt = group.sql("SELECT runs_fired, next_run_date FROM crons WHERE cron_id = %s", cron["cron_id"])[0]
        assert runs == fired == 3 and nxt is None
    for cron in jittered:
        rows = group.sql("SELECT scheduled_for, available_at, created_at FROM runs WHERE cron_id = %s", cron["cron_id"])
        assert rows
        for slot, available, created in rows:
            assert slot.microsecond == 0
            assert available == max(created, slot + jitter_delay(cron["cron_id"], slot, 3))
    # Backfills raced on every replica: together they created each of the 60 minutes once.
    assert again is not None
    # Only the window's runs: the cron runs every minute, so a minute boundary during the test adds a scheduled one.
    assert (
        group.scalar("SELECT count(*) FROM runs WHERE cron_id = %s AND scheduled_for < %s", hourly["cron_id"], minute)
        == 60
    )
    assert again["created"] + again["existing"] == 60
    assert sum(b["created"] for b in backfills) + again["created"] == 60
