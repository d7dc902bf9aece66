"""The run queue survives the process: runs still pending when the server stops run after it starts again, and a
run that was executing when the process was killed (kill -9) ends `error` with WorkerLost instead of staying
`running`, leaving its thread usable. See queue/reaper.py for why such a run is not re-executed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from langgraph_sdk import get_client

from tests.support.runs import said, wait_for_status
from tests.support.server import ServerProcess

# Short leases, so that on PostgreSQL (where the reaper waits for a lease to expire rather than assuming the
# previous process is gone) a killed worker's run is found within seconds.
FAST_LEASES = {"CRONGRAPH_LEASE_SECONDS": "2"}


@asynccontextmanager
async def connected(server: ServerProcess) -> AsyncIterator[Any]:
    client = get_client(url=server.url)
    try:
        yield client
    finally:
        await client.http.client.aclose()


async def test_pending_runs_run_after_a_restart(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(env=FAST_LEASES)
    try:
        async with connected(server) as client:
            delayed_thread = (await client.threads.create())["thread_id"]
            delayed = await client.runs.create(delayed_thread, "agent", input=said("later"), after_seconds=3)
            busy_thread = (await client.threads.create())["thread_id"]
            first = await client.runs.create(busy_thread, "slow", input=said("first", 0.5))
            queued = await client.runs.create(busy_thread, "agent", input=said("queued"), after_seconds=3)
            await wait_for_status(client, busy_thread, first["run_id"], "running")
            assert (await client.runs.get(delayed_thread, delayed["run_id"]))["status"] == "pending"
            assert (await client.runs.get(busy_thread, queued["run_id"]))["status"] == "pending"
        server.stop()  # graceful: the running run may finish; the delayed ones stay pending
        server.start()
        async with connected(server) as client:
            result = await client.runs.join(delayed_thread, delayed["run_id"])
            assert result["messages"][-1]["content"] == "echo: later"
            result = await client.runs.join(busy_thread, queued["run_id"])
            assert result["messages"][-1]["content"] == "echo: queued"
            assert (await client.runs.get(busy_thread, queued["run_id"]))["status"] == "success"
            assert (await client.threads.get(busy_thread))["status"] == "idle"
    finally:
        server.stop()


async def test_run_killed_mid_execution_ends_as_worker_lost(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(env=FAST_LEASES)
    try:
        async with connected(server) as client:
            tid = (await client.threads.create())["thread_id"]
            doomed = await client.runs.create(tid, "slow", input=said("doomed", 60))
            behind = await client.runs.create(tid, "agent", input=said("behind"))
            await wait_for_status(client, tid, doomed["run_id"], "running")
            lonely_tid = (await client.threads.create())["thread_id"]
            lonely = await client.runs.create(lonely_tid, "slow", input=said("lonely", 60))
            await wait_for_status(client, lonely_tid, lonely["run_id"], "running")
        server.kill()
        server.start()
        async with connected(server) as client:
            body = await client.runs.join(tid, doomed["run_id"])
            assert body["__error__"]["error"] == "WorkerLost"
            assert (await client.runs.get(tid, doomed["run_id"]))["status"] == "error"
            # The run queued behind it was not lost with it.
            result = await client.runs.join(tid, behind["run_id"])
            assert result["messages"][-1]["content"] == "echo: behind"
            assert (await client.threads.get(tid))["status"] == "idle"

            await client.runs.join(lonely_tid, lonely["run_id"])
            thread = await client.threads.get(lonely_tid)
            assert thread["status"] == "error"
            assert thread["error"]["error"] == "WorkerLost"
            # And the thread takes new runs.
            again = await client.runs.wait(lonely_tid, "agent", input=said("again"))
            assert again["messages"][-1]["content"] == "echo: again"
            assert (await client.threads.get(lonely_tid))["status"] == "idle"
    finally:
        server.stop()


async def test_stop_is_not_held_up_by_open_streams(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        tid = (await http.post("/threads", json={})).json()["thread_id"]
        async with http.stream("GET", f"/threads/{tid}/stream"):  # never ends on its own
            started = time.monotonic()
            await asyncio.to_thread(server.stop)
            assert time.monotonic() - started < 10
    assert server.process is not None
    assert server.process.returncode in (0, -signal.SIGTERM)  # exited by itself, not killed
