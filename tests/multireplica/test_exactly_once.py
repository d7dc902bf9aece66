"""Exactly-once cron firing across replicas that crash: three `crongraph serve` processes on one database, a few
hundred crons firing every four seconds, and one replica after another killed with SIGKILL and restarted.
Afterwards, counted from the database itself: every occurrence in the window has exactly one run (no duplicates,
no misses), and no run is left `running` once the dead replicas' leases expired (the reaper ends them visibly,
`WorkerLost`).

The chaos is paced by events, not by a timer, so a slow machine gets a longer test rather than a weaker one:
each kill waits until crons fired since the previous kill and until at least two replicas are up; the window
closes (every cron's end_time is set) only after the last kill and the last restart.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crongraph.schedules.expression import CronExpression, load_timezone
from crongraph.schedules.policy import first_run_date
from tests.multireplica.conftest import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CRONS = 200
SCHEDULE = "* * * * * */4"  # six fields: the sixth is seconds
KILLS = 5
# After the last restart the crons go on firing this long, under normal operation, before their end_time.
SETTLE = timedelta(seconds=6)
CHAOS_TIMEOUT = 300.0
# The queue drains at the machine's pace: fail only when it stops shrinking for this long (a lease is 2 s).
STALL_TIMEOUT = 60.0


async def _create_crons(cluster: Cluster) -> list[str]:
    body = {
        "assistant_id": "echo",
        "schedule": SCHEDULE,
        "input": {"messages": [{"role": "user", "content": "tick"}]},
        "on_run_completed": "keep",
        "missed_policy": "all",
    }
    clients = [httpx.AsyncClient(base_url=r.url, timeout=30) for r in cluster.replicas]
    try:
        gate = asyncio.Semaphore(16)

        async def create(i: int) -> str:
            async with gate:
                r = await clients[i % len(clients)].post("/runs/crons", json=body)
                assert r.status_code == 200, r.text
                return str(r.json()["cron_id"])

        return list(await asyncio.gather(*(create(i) for i in range(CRONS))))
    finally:
        for c in clients:
            await c.aclose()


def _expected(created_at: datetime, end_time: datetime) -> set[datetime]:
    expr, tz = CronExpression.parse(SCHEDULE), load_timezone(None)
    slots = set()
    slot = first_run_date(expr, tz, created_at, end_time)
    while slot is not None and slot < end_time:
        slots.add(slot)
        slot = expr.next_after(slot, tz)
    return slots


def _wait_while_progressing(remaining: Callable[[], int], stall: float, what: str) -> None:
    """Wait until `remaining()` is 0, for as long as it keeps going down: a loaded machine is slower, not wrong."""
    best, progressed = remaining(), time.monotonic()
    while best > 0:
        time.sleep(0.5)
        now_left = remaining()
        if now_left < best:
            best, progressed = now_left, time.monotonic()
        elif time.monotonic() - progressed > stall:
            raise AssertionError(f"{what}: stuck at {best} for {stall}s")


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


async def _fires(group: Cluster) -> int:
    return int(await asyncio.to_thread(group.scalar, "SELECT count(*) FROM cron_fires"))


async def _until_fires_exceed(group: Cluster, seen: int, deadline: float) -> int:
    """Wait until the fire log holds more than `seen` rows (crons fired since); returns the new count."""
    while (count := await _fires(group)) <= seen:
        assert time.monotonic() < deadline, "no cron fired for the whole chaos timeout"
        await asyncio.sleep(0.2)
    return count


async def test_every_occurrence_fires_exactly_once_while_replicas_crash(cluster: Callable[..., Cluster]) -> None:
    group = cluster(3)
    cron_ids = await _create_crons(group)

    # Chaos: kill a replica (SIGKILL: no shutdown code runs) and restart it in the background, KILLS times. Each
    # kill waits for crons to have fired since the previous one and for two replicas to be up (so one always is),
    # then for a random part of a second, so that kills land at different points of a fire.
    rng = random.Random(5)
    deadline = time.monotonic() + CHAOS_TIMEOUT
    kills = 0
    fired = await _until_fires_exceed(group, 0, deadline)
    restarting: dict[int, asyncio.Task[object]] = {}
    while kills < KILLS:
        restarting = {i: t for i, t in restarting.items() if not t.done()}
        up = [i for i in range(len(group.replicas)) if i not in restarting]
        if len(up) < 2:
            await asyncio.wait(restarting.values(), return_when=asyncio.FIRST_COMPLETED)
            continue
        fired = await _until_fires_exceed(group, fired, deadline)
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        victim = rng.choice(up)
        group.replicas[victim].kill()
        kills += 1
        restarting[victim] = asyncio.create_task(asyncio.to_thread(group.replicas[victim].start))
    await asyncio.gather(*restarting.values())

    # Close the window: the scheduler reads end_time with each due cron, so occurrences from end_time on are not
    # fired (end_time is far enough ahead that no fire in flight can be for it).
    end_time = datetime.now(UTC) + SETTLE
    await asyncio.to_thread(group.sql, "UPDATE crons SET end_time = %s", end_time)

    # Every cron is finished once end_time passes: its next_run_date becomes NULL.
    _wait_for(
        lambda: group.scalar("SELECT count(*) FROM crons WHERE next_run_date IS NOT NULL") == 0,
        60,
        "every cron to pass its end_time",
    )

    created = {cron_id: created_at for cron_id, created_at in group.sql("SELECT cron_id, created_at FROM crons")}
    assert set(created) == set(cron_ids)
    runs = group.sql("SELECT cron_id, scheduled_for, created_at FROM runs WHERE cron_id IS NOT NULL")
    per_slot = Counter((cron_id, slot) for cron_id, slot, _ in runs)
    fires = {(cron_id, slot): outcome for cron_id, slot, outcome in group.sql(
        "SELECT cron_id, scheduled_for, outcome FROM cron_fires"
    )}  # fmt: skip
    expected = {(cron_id, slot) for cron_id, at in created.items() for slot in _expected(at, end_time)}

    duplicates = {key: n for key, n in per_slot.items() if n > 1}
    missing = expected - set(per_slot)
    unexpected = set(per_slot) - expected
    not_created = {key: outcome for key, outcome in fires.items() if outcome != "created"}
    lags = sorted((created_at - slot).total_seconds() for _, slot, created_at in runs)
    print(
        f"\n{len(cron_ids)} crons, {len(expected)} occurrences, {len(runs)} runs, {kills} kills; "
        f"duplicates {len(duplicates)}, missing {len(missing)}, unexpected {len(unexpected)}; "
        f"creation lag p50 {lags[len(lags) // 2]:.3f}s max {lags[-1]:.3f}s"
    )
    assert kills == KILLS
    assert duplicates == {}
    assert missing == set()
    assert unexpected == set()
    assert not_created == {}
    assert set(fires) == expected

    # No run stays `running` after the leases of the killed replicas expired: each is ended, visibly.
    _wait_while_progressing(
        lambda: int(group.scalar("SELECT count(*) FROM runs WHERE status IN ('pending', 'running')")),
        STALL_TIMEOUT,
        "the queue to drain and the dead replicas' runs to be reaped",
    )
    statuses = dict(group.sql("SELECT status, count(*) FROM runs GROUP BY status"))
    lost = group.scalar("SELECT count(*) FROM runs WHERE status = 'error' AND error->>'error' = 'WorkerLost'")
    print(f"final statuses {statuses}; ended WorkerLost {lost}")
    assert set(statuses) <= {"success", "error"}
    assert statuses.get("error", 0) == lost  # the only errors are runs whose replica was killed under them
