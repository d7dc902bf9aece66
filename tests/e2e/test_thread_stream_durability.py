"""The thread event log survives restarts and is pruned by its retention rule (docs/thread-stream.md): a server
of its own, keeping the events of each thread's 2 most recent runs (and sending heartbeats every 0.2 s)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.e2e.thread_stream_support import collect_sse, command, count, root_terminal
from tests.support.server import ServerProcess

LIFECYCLE = {"channels": ["lifecycle", "values"]}


@pytest.fixture(scope="module")
def small_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    # A short lease: on PostgreSQL a killed worker's runs are reaped when their lease expires.
    env = {
        "CRONGRAPH_THREAD_EVENTS_KEEP_RUNS": "2",
        "CRONGRAPH_LEASE_SECONDS": "3",
        "CRONGRAPH_KEEPALIVE_SECONDS": "0.2",
    }
    return server_factory(env=env)


async def _run(url: str, thread_id: str) -> list[dict[str, Any]]:
    reply = await command(url, thread_id, "run.start", {"assistant_id": "agent", "input": {"messages": []}})
    since = reply["meta"]["applied_through_seq"]
    return await collect_sse(url, thread_id, {**LIFECYCLE, "since": since}, until=root_terminal)


async def test_log_is_replayed_after_a_restart(small_server: ServerProcess) -> None:
    thread_id = str(uuid.uuid4())
    before = await _run(small_server.url, thread_id)
    await asyncio.to_thread(small_server.restart)
    after = await collect_sse(small_server.url, thread_id, LIFECYCLE, until=count(len(before)))
    assert after == before  # same seqs, same event ids, same bodies
    more = await _run(small_server.url, thread_id)
    assert more[0]["seq"] == before[-1]["seq"] + 1


async def test_killed_run_is_ended_failed_after_restart(small_server: ServerProcess) -> None:
    thread_id = str(uuid.uuid4())
    params = {"assistant_id": "ticker", "input": {"steps": 100, "delay": 0.1}}
    await command(small_server.url, thread_id, "run.start", params)
    await collect_sse(small_server.url, thread_id, {"channels": ["custom"]}, until=count(1))
    await asyncio.to_thread(small_server.kill)
    await asyncio.to_thread(small_server.start)
    events = await collect_sse(small_server.url, thread_id, {"channels": ["lifecycle"]}, until=count(2), wait=30)
    assert [e["params"]["data"]["event"] for e in events] == ["running", "failed"]
    assert "stopped before it finished" in events[1]["params"]["data"]["error"]


async def test_retention_keeps_the_latest_runs_and_reports_a_gap(small_server: ServerProcess) -> None:
    thread_id = str(uuid.uuid4())
    runs = [await _run(small_server.url, thread_id) for _ in range(3)]
    kept_from = runs[1][0]["seq"]
    # Without a cursor: what is kept, from the second run's first event.
    events = await collect_sse(small_server.url, thread_id, LIFECYCLE, until=count(len(runs[1]) + len(runs[2])))
    assert events == runs[1] + runs[2]
    # With a cursor inside the pruned part: a resume_gap error first, then what is kept.
    events = await collect_sse(small_server.url, thread_id, {**LIFECYCLE, "since": 1}, until=count(2))
    gap, first = events
    assert gap["type"] == "error" and gap["id"] is None and gap["error"] == "resume_gap"
    assert (gap["since"], gap["min_available_seq"]) == (1, kept_from)
    assert first == runs[1][0]
    # On a WebSocket, subscription.reconnect refuses such a cursor.
    url = small_server.url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    async with connect(url) as ws:
        reconnect = {"id": 1, "method": "subscription.reconnect", "params": {"channels": ["lifecycle"], "since": 0}}
        await ws.send(orjson.dumps(reconnect).decode())
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
        assert (reply["type"], reply["id"], reply["error"]) == ("error", 1, "resume_gap")
        assert (reply["since"], reply["min_available_seq"]) == (0, kept_from)
        reconnect["params"]["since"] = runs[2][0]["seq"] - 1
        await ws.send(orjson.dumps(reconnect).decode())
        frames = [orjson.loads(await asyncio.wait_for(ws.recv(), 20)) for _ in range(3)]
        assert [f.get("seq") for f in frames[:2]] == [e["seq"] for e in runs[2] if e["method"] == "lifecycle"]
        assert frames[2]["result"]["replayed_events"] == 2


async def test_an_idle_stream_gets_heartbeats(small_server: ServerProcess) -> None:
    frames: list[bytes] = []
    waiting = collect_sse(
        small_server.url, str(uuid.uuid4()), {"channels": ["values"]}, until=root_terminal, frames=frames
    )
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(waiting, 1.0)
    assert frames.count(b": heartbeat") >= 3


async def test_the_log_goes_with_its_thread(small_server: ServerProcess) -> None:
    thread_id = str(uuid.uuid4())
    await _run(small_server.url, thread_id)
    async with httpx.AsyncClient(base_url=small_server.url) as http:
        assert (await http.delete(f"/threads/{thread_id}")).status_code == 204
    # A new thread with the same id starts a new log.
    events = await _run(small_server.url, thread_id)
    assert events[0]["seq"] == 1
