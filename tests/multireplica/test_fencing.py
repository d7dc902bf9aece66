"""A replica that stalls past its lease (a long pause, a partition: here SIGSTOP) loses its run for good: another
replica's reaper ends it visibly within a bounded time, the thread moves on to its next run elsewhere, and when
the stalled replica wakes up, nothing it writes lands: not the run's outcome (fenced by the lease token) and not
the graph's checkpoint (fenced by the run's row, in the checkpoint's own transaction).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.multireplica.conftest import LEASE_SECONDS, Cluster, executor_of
from tests.support.server import ServerProcess

pytestmark = pytest.mark.postgres


def _signal(replica: ServerProcess, sig: signal.Signals) -> None:
    assert replica.process is not None
    replica.process.send_signal(sig)


async def test_a_stalled_replicas_late_writes_do_not_land(cluster: Callable[..., Cluster]) -> None:
    group = cluster(2)
    first = get_client(url=group.replicas[0].url)
    thread = await first.threads.create()
    tid = thread["thread_id"]
    # The node sleeps 4 s, then returns its reply: the checkpoint and the outcome are written after the stall.
    stalled_run = await first.runs.create(
        tid, "slow", input={"messages": [{"role": "user", "content": "late"}], "delay": 4}
    )
    stalled = await executor_of(group)
    live = next(r for r in group.replicas if r is not stalled)
    client: Any = get_client(url=live.url)
    _signal(stalled, signal.SIGSTOP)
    try:
        # Reaped by the live replica once the lease expires (lease, plus at most half a lease between sweeps).
        started = time.monotonic()
        ended = await client.runs.join(tid, stalled_run["run_id"])
        assert time.monotonic() - started < LEASE_SECONDS * 3 + 2
        assert ended["__error__"]["error"] == "WorkerLost"
        # The thread is free again: its next run executes on the live replica.
        after = await client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": "next"}]})
        assert [m["content"] for m in after["messages"]][-2:] == ["next", "echo: next"]
        before_wake = await client.threads.get_state(tid)
    finally:
        _signal(stalled, signal.SIGCONT)
    # The stalled replica finishes its node now (its sleep is long over): give it time to try to write.
    await asyncio.sleep(2.0)
    run = await client.runs.get(tid, stalled_run["run_id"])
    assert run["status"] == "error"
    state = await client.threads.get_state(tid)
    assert state["checkpoint"] == before_wake["checkpoint"]  # no checkpoint landed after the reap
    assert "echo: late" not in [m["content"] for m in state["values"]["messages"]]
    thread_now = await client.threads.get(tid)
    assert thread_now["values"]["messages"][-1]["content"] == "echo: next"
    # And the stalled replica, awake again, answers for the run like everyone else.
    woken: Any = get_client(url=stalled.url)
    assert (await woken.runs.get(tid, stalled_run["run_id"]))["status"] == "error"
