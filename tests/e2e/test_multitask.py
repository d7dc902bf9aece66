"""One run at a time per thread, and what a second run does to the first (multitask_strategy): reject answers
409, enqueue runs them in order, interrupt stops the first and keeps what it wrote, rollback deletes the first
run and the checkpoints it wrote. The thread's status says busy exactly while runs are in flight."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.support.runs import said, start_slow, wait_for_status


async def test_reject_answers_409_while_busy(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    first = await start_slow(client, tid, "one", 1)
    assert (await client.threads.get(tid))["status"] == "busy"
    with pytest.raises(ConflictError, match="Thread is already running a task"):
        await client.runs.create(tid, "slow", input=said("two"), multitask_strategy="reject")
    with pytest.raises(httpx.HTTPStatusError) as raised:  # the SDK's wait raises httpx's error, not ConflictError
        await client.runs.wait(tid, "slow", input=said("two"), multitask_strategy="reject")
    assert raised.value.response.status_code == 409
    result = await client.runs.join(tid, first["run_id"])
    assert result["messages"][-1]["content"] == "echo: one"
    assert [r["run_id"] for r in await client.runs.list(tid)] == [first["run_id"]]
    assert (await client.threads.get(tid))["status"] == "idle"
    # Idle again: reject lets the next run in.
    ok = await client.runs.wait(tid, "slow", input=said("three"), multitask_strategy="reject")
    assert ok["messages"][-1]["content"] == "echo: three"


async def test_enqueue_runs_one_after_another_in_order(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    # The first long enough that the others are still queued when looked at.
    inputs = [said("a", 1), said("b", 0.2), said("c", 0.2)]
    runs = [await client.runs.create(tid, "slow", input=inp) for inp in inputs]
    await wait_for_status(client, tid, runs[0]["run_id"], "running")
    assert [(await client.runs.get(tid, r["run_id"]))["status"] for r in runs[1:]] == ["pending", "pending"]
    final = await client.runs.join(tid, runs[-1]["run_id"])
    contents = [m["content"] for m in final["messages"]]
    assert contents == ["a", "echo: a", "b", "echo: b", "c", "echo: c"]
    assert final["count"] == 3
    assert {(await client.runs.get(tid, r["run_id"]))["status"] for r in runs} == {"success"}
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_interrupt_stops_the_running_run(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    first = await start_slow(client, tid, "one", 5)
    started = time.monotonic()
    result = await client.runs.wait(tid, "slow", input=said("two"), multitask_strategy="interrupt")
    assert time.monotonic() - started < 4  # did not wait for the first run's five seconds
    assert (await client.runs.get(tid, first["run_id"]))["status"] == "interrupted"
    # The interrupted run's input was checkpointed before it was stopped, and stays.
    assert [m["content"] for m in result["messages"]] == ["one", "two", "echo: two"]
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_rollback_deletes_the_running_run_and_its_checkpoints(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "slow", input=said("before"))
    first = await start_slow(client, tid, "one", 5)
    result = await client.runs.wait(tid, "slow", input=said("two"), multitask_strategy="rollback")
    assert [m["content"] for m in result["messages"]] == ["before", "echo: before", "two", "echo: two"]
    with pytest.raises(NotFoundError):
        await client.runs.get(tid, first["run_id"])
    history = await client.threads.get_history(tid, limit=50)
    assert all(state["metadata"].get("run_id") != first["run_id"] for state in history)
    assert len(await client.runs.list(tid)) == 2
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_rollback_of_a_pending_run_deletes_it(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await start_slow(client, tid, "one", 5)  # holds the thread: the next run queues behind it
    queued = await client.runs.create(tid, "slow", input=said("queued"))
    last = await client.runs.create(tid, "slow", input=said("last"), multitask_strategy="rollback")
    with pytest.raises(NotFoundError):
        await client.runs.get(tid, queued["run_id"])
    result = await client.runs.join(tid, last["run_id"])
    assert [m["content"] for m in result["messages"]] == ["last", "echo: last"]
    assert [r["run_id"] for r in await client.runs.list(tid)] == [last["run_id"]]


async def test_thread_is_busy_while_a_run_is_queued(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "slow", input=said("x", 0.3), after_seconds=0.5)
    assert (await client.threads.get(tid))["status"] == "busy"
    await client.runs.join(tid, run["run_id"])
    assert (await client.threads.get(tid))["status"] == "idle"
