"""Cancelling runs through the official SDK: interrupt keeps what the run wrote, rollback deletes the run and its
checkpoints; wait=1 answers like join; cancel_many by ids or by status, 404 when nothing matched; a client that
leaves a stream or wait with on_disconnect=cancel stops its run."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.support.runs import said, start_slow, wait_for_status
from tests.support.server import ServerProcess


async def test_cancel_interrupt(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await start_slow(client, tid, "one", 5)
    started = time.monotonic()
    assert await client.runs.cancel(tid, run["run_id"]) is None  # 202, no body
    await client.runs.join(tid, run["run_id"])
    assert time.monotonic() - started < 3
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    thread = await client.threads.get(tid)
    assert thread["status"] == "idle"
    # What the run checkpointed before it was stopped (its input) stays, and the thread says so too.
    assert [m["content"] for m in (await client.threads.get_state(tid))["values"]["messages"]] == ["one"]
    assert [m["content"] for m in thread["values"]["messages"]] == ["one"]


async def test_cancel_with_wait_answers_like_join(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "slow", input=said("first"))
    run = await start_slow(client, tid, "second", 5)
    body = await client.runs.cancel(tid, run["run_id"], wait=True)
    assert [m["content"] for m in body["messages"]] == ["first", "echo: first", "second"]
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"


async def test_cancel_rollback_deletes_run_and_checkpoints(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "slow", input=said("kept"))
    run = await start_slow(client, tid, "dropped", 5)
    body = await client.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    assert [m["content"] for m in body["messages"]] == ["kept", "echo: kept"]
    with pytest.raises(NotFoundError):
        await client.runs.get(tid, run["run_id"])
    state = await client.threads.get_state(tid)
    assert [m["content"] for m in state["values"]["messages"]] == ["kept", "echo: kept"]
    history = await client.threads.get_history(tid, limit=50)
    assert all(s["metadata"].get("run_id") != run["run_id"] for s in history)
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_cancel_a_pending_run(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    running = await client.runs.create(tid, "slow", input=said("one", 1.5))
    queued = await client.runs.create(tid, "slow", input=said("two"))
    await client.runs.cancel(tid, queued["run_id"])
    assert (await client.runs.get(tid, queued["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get(tid))["status"] == "busy"  # the first still runs
    result = await client.runs.join(tid, running["run_id"])
    assert [m["content"] for m in result["messages"]] == ["one", "echo: one"]
    assert (await client.runs.get(tid, running["run_id"]))["status"] == "success"
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_cancel_finished_or_missing_run(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "agent", input=said("x"))
    await client.runs.join(tid, run["run_id"])
    await client.runs.cancel(tid, run["run_id"])  # nothing to do: accepted, the run stays as it ended
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    with pytest.raises(NotFoundError):
        await client.runs.cancel(tid, str(uuid.uuid4()))


async def test_cancel_many_by_ids(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    first = await client.runs.create(tid, "slow", input=said("one", 5))
    second = await client.runs.create(tid, "slow", input=said("two", 5))
    await wait_for_status(client, tid, first["run_id"], "running")
    await client.runs.cancel_many(thread_id=tid, run_ids=[first["run_id"], second["run_id"]])
    await client.runs.join(tid, first["run_id"])
    assert [r["status"] for r in await client.runs.list(tid)] == ["interrupted", "interrupted"]
    assert (await client.threads.get(tid))["status"] == "idle"
    with pytest.raises(NotFoundError, match="No runs found to cancel"):
        await client.runs.cancel_many(thread_id=tid, run_ids=[first["run_id"]])  # already ended
    with pytest.raises(NotFoundError, match="No runs found to cancel"):
        await client.runs.cancel_many(run_ids=[str(uuid.uuid4())])
    with pytest.raises(UnprocessableEntityError):
        await client.runs.cancel_many(status="pending", run_ids=[first["run_id"]])


async def test_cancel_many_by_status(server_factory: Any) -> None:
    # Its own server: cancelling by status reaches every thread.
    server: ServerProcess = server_factory()
    client = get_client(url=server.url)
    try:
        threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
        running = [await client.runs.create(tid, "slow", input=said("r", 5)) for tid in threads]
        pending = [await client.runs.create(tid, "slow", input=said("p", 5)) for tid in threads]
        for tid, run in zip(threads, running, strict=True):
            await wait_for_status(client, tid, run["run_id"], "running")

        await client.runs.cancel_many(status="pending")
        for tid, run in zip(threads, pending, strict=True):
            assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
        for tid, run in zip(threads, running, strict=True):
            assert (await client.runs.get(tid, run["run_id"]))["status"] == "running"
        with pytest.raises(NotFoundError):
            await client.runs.cancel_many(status="pending")

        await client.runs.cancel_many(status="all", action="interrupt")
        for tid, run in zip(threads, running, strict=True):
            await wait_for_status(client, tid, run["run_id"], "interrupted", within=5)
            assert (await client.threads.get(tid))["status"] == "idle"
        with pytest.raises(NotFoundError):
            await client.runs.cancel_many(status="running")
    finally:
        await client.http.client.aclose()
        server.stop()


async def test_leaving_a_stream_with_on_disconnect_cancel_stops_the_run(server: ServerProcess, client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    body = {"assistant_id": "slow", "input": said("bye", 5), "on_disconnect": "cancel"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("POST", f"/threads/{tid}/runs/stream", json=body) as r:
            run_id = r.headers["content-location"].rsplit("/", 1)[-1]
            async for line in r.aiter_lines():
                if line.startswith("event: metadata"):
                    break
        await wait_for_status(client, tid, run_id, "interrupted", within=5)

        # Leaving a wait does the same.
        async def leave_wait() -> None:
            async with http.stream("POST", f"/threads/{tid}/runs/wait", json=body) as r:
                await r.aread()

        waiting = asyncio.ensure_future(leave_wait())
        runs: list[Any] = []
        while not runs or runs[0]["run_id"] == run_id:
            runs = await client.runs.list(tid, status="running")
            await asyncio.sleep(0.02)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await wait_for_status(client, tid, runs[0]["run_id"], "interrupted", within=5)


async def test_leaving_a_stream_without_on_disconnect_lets_the_run_finish(server: ServerProcess, client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    async with (
        httpx.AsyncClient(base_url=server.url) as http,
        http.stream(
            "POST", f"/threads/{tid}/runs/stream", json={"assistant_id": "slow", "input": said("stay", 0.5)}
        ) as r,
    ):
        run_id = r.headers["content-location"].rsplit("/", 1)[-1]
    result = await client.runs.join(tid, run_id)
    assert result["messages"][-1]["content"] == "echo: stay"


def test_sync_client_cancel(sync_client: Any) -> None:
    thread = sync_client.threads.create()
    tid = thread["thread_id"]
    run = sync_client.runs.create(tid, "slow", input=said("sync", 5))
    deadline = time.monotonic() + 10
    while sync_client.runs.get(tid, run["run_id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    body = sync_client.runs.cancel(tid, run["run_id"], wait=True)
    assert [m["content"] for m in body["messages"]] == ["sync"]
    assert sync_client.runs.get(tid, run["run_id"])["status"] == "interrupted"
