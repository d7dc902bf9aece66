"""Any replica answers for any run, and replicas wake each other through the database (LISTEN/NOTIFY), not by
polling: join, wait, stream (with resumption) and cancel work from a replica other than the one executing the
run; a run created on one replica starts at once on another; a cron created on one replica is scheduled by
another without waiting for its sleep to end.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.multireplica.conftest import Cluster, busy, executor_of
from tests.support.server import ServerProcess

pytestmark = pytest.mark.postgres

HUMAN = {"messages": [{"role": "user", "content": "hi"}]}


def _client(replica: ServerProcess) -> Any:
    return get_client(url=replica.url)


async def _collect(stream: Any) -> list[Any]:
    return [part async for part in stream]


@pytest.fixture
def three(cluster: Callable[..., Cluster]) -> Cluster:
    return cluster(3)


async def test_join_and_wait_answer_on_every_replica(three: Cluster) -> None:
    a, b, c = (_client(r) for r in three.replicas)
    thread = await a.threads.create()
    run = await a.runs.create(thread["thread_id"], "slow", input={**HUMAN, "delay": 1.0})
    results = await asyncio.gather(*(x.runs.join(thread["thread_id"], run["run_id"]) for x in (a, b, c)))
    assert all(r["messages"][-1]["content"] == "echo: hi" for r in results)
    assert all(r == results[0] for r in results)
    # The thread and its state are the same seen from anywhere.
    states = await asyncio.gather(*(x.threads.get_state(thread["thread_id"]) for x in (a, b, c)))
    assert {s["values"]["count"] for s in states} == {1}
    # A stateless wait on one replica, whoever executes it.
    done = await c.runs.wait(None, "agent", input=HUMAN)
    assert done["messages"][-1]["content"] == "echo: hi"


async def test_streams_replay_and_resume_on_any_replica(three: Cluster) -> None:
    clients = [_client(r) for r in three.replicas]
    thread = await clients[0].threads.create()
    tid = thread["thread_id"]
    run = await clients[0].runs.create(
        tid, "slow", input={**HUMAN, "delay": 1.5}, stream_mode=["values", "updates"], stream_resumable=True
    )
    rid = run["run_id"]
    # Read the first two events on each replica, then resume on the next one from the last id seen: the run
    # executes on one of the three, so at least two of these resumptions cross replicas.
    resumed = []
    for i, first in enumerate(clients):
        head = []
        stream = first.runs.join_stream(tid, rid)
        async for part in stream:
            head.append(part)
            if len(head) == 2:
                break
        await stream.aclose()
        assert [p.event for p in head] == ["metadata", "values"]
        assert [p.id for p in head] == ["1", "2"]
        tail = await _collect(clients[(i + 1) % 3].runs.join_stream(tid, rid, last_event_id=head[-1].id))
        resumed.append(tail)
    for tail in resumed:
        assert [p.event for p in tail] == ["updates", "values"]
        assert [p.id for p in tail] == ["3", "4"]
        assert tail[-1].data["messages"][-1]["content"] == "echo: hi"
    # After the end, every replica replays the whole stream with the same ids and data.
    full = [await _collect(c.runs.join_stream(tid, rid)) for c in clients]
    assert [(p.event, p.id) for p in full[0]] == [("metadata", "1"), ("values", "2"), ("updates", "3"), ("values", "4")]
    assert all([(p.event, p.id, p.data) for p in f] == [(p.event, p.id, p.data) for p in full[0]] for f in full)


async def test_a_live_stream_follows_a_run_on_another_replica(three: Cluster) -> None:
    clients = [_client(r) for r in three.replicas]
    thread = await clients[0].threads.create()
    run = await clients[0].runs.create(thread["thread_id"], "chatty", input=HUMAN, stream_mode=["values", "custom"])
    # Subscribed on all three while it runs: each sees every event, custom ones included, in the same order.
    streams = await asyncio.gather(*(_collect(c.runs.join_stream(thread["thread_id"], run["run_id"])) for c in clients))
    names = [[p.event for p in s] for s in streams]
    assert names[0][0] == "metadata" and "custom" in names[0] and names[0][-1] == "values"
    assert names[1] == names[0] and names[2] == names[0]


async def test_cancel_from_another_replica_stops_the_run(three: Cluster) -> None:
    a = _client(three.replicas[0])
    thread = await a.threads.create()
    tid = thread["thread_id"]
    run = await a.runs.create(tid, "slow", input={**HUMAN, "delay": 60})
    executor = await executor_of(three)
    others = [r for r in three.replicas if r is not executor]
    canceller, joiner = _client(others[0]), _client(others[1])
    started = time.monotonic()
    await canceller.runs.cancel(tid, run["run_id"])
    await joiner.runs.join(tid, run["run_id"])
    assert time.monotonic() - started < 5  # the executor heard it at once, not after the 60 s sleep
    got = await joiner.runs.get(tid, run["run_id"])
    assert got["status"] == "interrupted"
    assert await busy(executor) == 0


async def test_a_run_created_on_a_full_replica_starts_at_once_on_another(cluster: Callable[..., Cluster]) -> None:
    group = cluster(2, envs=[{"CRONGRAPH_WORKERS": "1"}, {"CRONGRAPH_WORKERS": "4"}])
    full, idle = group.replicas
    c_full, c_idle = _client(full), _client(idle)
    # Fill the one worker slot of `full` with a long run; one that lands on `idle` instead is cancelled.
    for _ in range(20):
        thread = await c_full.threads.create()
        blocker = await c_full.runs.create(thread["thread_id"], "slow", input={**HUMAN, "delay": 60})
        executor = await executor_of(group)
        if executor is full:
            break
        await c_idle.runs.cancel(thread["thread_id"], blocker["run_id"])
        await c_idle.runs.join(thread["thread_id"], blocker["run_id"])
    assert await busy(full) == 1 and await busy(idle) == 0
    # Runs created on the full replica can only run on the other one, whose queue sleeps up to 2 s between
    # polls: a prompt start means the RUNS notification crossed replicas.
    latencies = []
    for _ in range(8):
        thread = await c_full.threads.create()
        started = time.monotonic()
        await c_full.runs.wait(thread["thread_id"], "agent", input=HUMAN)
        latencies.append(time.monotonic() - started)
    assert statistics.median(latencies) < 0.5, latencies
    assert max(latencies) < 1.5, latencies


async def test_a_cron_created_on_one_replica_is_scheduled_by_another_at_once(cluster: Callable[..., Cluster]) -> None:
    group = cluster(2, envs=[{"CRONGRAPH_SCHEDULER": "false"}, {}])
    no_scheduler = group.replicas[0]
    # The other replica has no cron: its scheduler sleeps its longest (30 s) unless told that one was created.
    await asyncio.sleep(1.0)
    client = _client(no_scheduler)
    created = time.monotonic()
    cron = await client.crons.create("agent", schedule="* * * * * *", input=HUMAN, on_run_completed="keep")
    while not group.scalar("SELECT count(*) FROM runs WHERE cron_id = %s", cron["cron_id"]):
        assert time.monotonic() - created < 5, "the other replica did not schedule the new cron promptly"
        await asyncio.sleep(0.1)
    await client.crons.delete(cron["cron_id"])


async def test_a_cancel_whose_hint_was_lost_still_stops_the_run(cluster: Callable[..., Cluster]) -> None:
    group = cluster(1)
    client = _client(group.replicas[0])
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "slow", input={**HUMAN, "delay": 60})
    await executor_of(group)
    # What a cancel request writes, without its notification (as if the executor's listener was reconnecting).
    group.sql("UPDATE runs SET cancel_action = 'interrupt' WHERE run_id = %s", run["run_id"])
    started = time.monotonic()
    await client.runs.join(tid, run["run_id"])
    assert time.monotonic() - started < 5  # found when the leases are renewed (every lease/3), not after 60 s
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
