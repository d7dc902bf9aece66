"""Hand-off at creation (queue/handoff.py), in process on real storage (both backends): a client's run created
while the queue has a free slot and its thread has nothing in flight is inserted already claimed by this process
and executes at once; every other run is inserted `pending` and claimed as before. Each test reads the run's row
right after `create` returned, which the hand-off decides synchronously, so the checks do not depend on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from crongraph.errors import NotFound
from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.ids import new_id
from crongraph.queue.handoff import Slot
from crongraph.runtime import Runtime
from crongraph.services.runs import BACKGROUND
from crongraph.settings import Settings
from crongraph.storage import runs as run_rows
from crongraph.storage.common import Record

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"

RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_rt(tmp_path: Path, database_urls: Callable[[], str | None]) -> AsyncIterator[RuntimeFactory]:
    started: list[Runtime] = []

    async def make(**settings: Any) -> Runtime:
        options = Settings(
            data_dir=tmp_path / f"data{len(started)}", config=CONFIG, database_url=database_urls(), **settings
        )
        runtime = Runtime(options, GraphRegistry.load(load(CONFIG)))
        await runtime.start()
        started.append(runtime)
        return runtime

    yield make
    for runtime in started:
        await runtime.stop()


def said(text: str, delay: float = 0.0) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], "delay": delay}


async def row(rt: Runtime, run_id: str) -> Record:
    async with rt.db.read() as conn:
        found = await run_rows.get(conn, run_id)
    assert found is not None
    return found


async def until(condition: Callable[[], Awaitable[bool]], what: str, within: float = 20.0) -> None:
    """Poll for a state the server reaches on its own (a notification delivered, a lease expired)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


def contents(record: Record) -> list[str]:
    return [m["content"] for m in (record.get("output") or {}).get("messages", [])]


async def test_a_clients_run_is_inserted_claimed_by_this_process_and_executes(make_rt: RuntimeFactory) -> None:
    rt = await make_rt()
    thread = await rt.threads.create({})
    created = await rt.runs.create(thread["thread_id"], {"assistant_id": "echo", "input": said("hi")})
    # The creation answers what the reference answers: the run as created.
    assert created["status"] == "pending"
    stored = await row(rt, created["run_id"])
    assert stored["lease_owner"] == rt.queue.owner and stored["lease_token"] and stored["attempt"] == 1
    assert stored["status"] in ("running", "success")
    final = await rt.runs.wait_for_end(created["run_id"])
    assert final["status"] == "success" and contents(final) == ["hi", "echo: hi"]
    # A stateless run too (its temporary thread is new, so nothing is in flight on it).
    stateless = await rt.runs.create(None, {"assistant_id": "echo", "input": said("x"), "on_completion": "keep"})
    assert (await row(rt, stateless["run_id"]))["lease_owner"] == rt.queue.owner


async def test_a_second_run_on_the_thread_is_queued_behind_the_first(make_rt: RuntimeFactory) -> None:
    rt = await make_rt()
    tid = (await rt.threads.create({}))["thread_id"]
    first = await rt.runs.create(tid, {"assistant_id": "slow", "input": said("one", 0.5)})
    assert (await row(rt, first["run_id"]))["status"] == "running"
    second = await rt.runs.create(tid, {"assistant_id": "echo", "input": said("two")})
    queued = await row(rt, second["run_id"])
    assert queued["status"] == "pending" and queued["lease_owner"] is None
    final = await rt.runs.wait_for_end(second["run_id"])
    # It started after the first ended: it built on what the first wrote.
    assert final["status"] == "success" and contents(final) == ["one", "echo: one", "two", "echo: two"]


async def test_runs_created_at_once_on_one_thread_run_one_after_another(make_rt: RuntimeFactory) -> None:
    rt = await make_rt()
    tid = (await rt.threads.create({}))["thread_id"]
    created = await asyncio.gather(
        *(rt.runs.create(tid, {"assistant_id": "slow", "input": said(f"m{i}", 0.05)}) for i in range(5))
    )
    for run in created:
        assert (await rt.runs.wait_for_end(run["run_id"]))["status"] == "success"
    state = await rt.threads.get(tid)
    texts = [m["content"] for m in state["values"]["messages"]]
    # Each run read the state the previous one left: every input is followed by its own echo, none lost.
    assert len(texts) == 10
    assert all(texts[i + 1] == f"echo: {texts[i]}" for i in range(0, 10, 2))


async def test_no_hand_off_without_a_free_slot(make_rt: RuntimeFactory) -> None:
    rt = await make_rt(workers=1)
    busy = await rt.runs.create(None, {"assistant_id": "slow", "input": said("busy", 60), "on_completion": "keep"})
    assert (await row(rt, busy["run_id"]))["status"] == "running"
    other = await rt.runs.create(None, {"assistant_id": "echo", "input": said("next"), "on_completion": "keep"})
    assert (await row(rt, other["run_id"]))["status"] == "pending"
    await rt.runs.cancel(None, [busy["run_id"]], "interrupt")
    assert (await rt.runs.wait_for_end(other["run_id"]))["status"] == "success"


async def test_a_failed_creation_gives_its_slot_back(make_rt: RuntimeFactory) -> None:
    rt = await make_rt(workers=1)
    with pytest.raises(NotFound):
        await rt.runs.create(new_id(), {"assistant_id": "echo", "input": said("nowhere")})
    run = await rt.runs.create(None, {"assistant_id": "echo", "input": said("here"), "on_completion": "keep"})
    assert (await row(rt, run["run_id"]))["lease_owner"] == rt.queue.owner


async def test_delayed_and_background_runs_are_claimed_as_before(make_rt: RuntimeFactory) -> None:
    rt = await make_rt()
    tid = (await rt.threads.create({}))["thread_id"]
    delayed = await rt.runs.create(tid, {"assistant_id": "echo", "input": said("later"), "after_seconds": 0.3})
    assert (await row(rt, delayed["run_id"]))["status"] == "pending"
    assert (await rt.runs.wait_for_end(delayed["run_id"]))["status"] == "success"
    other = (await rt.threads.create({}))["thread_id"]
    background = await rt.runs.create(other, {"assistant_id": "echo", "input": said("bg")}, priority=BACKGROUND)
    assert (await row(rt, background["run_id"]))["status"] == "pending"
    assert (await rt.runs.wait_for_end(background["run_id"]))["status"] == "success"


async def test_a_cancel_between_commit_and_hand_off_stops_the_run_before_it_starts(
    make_rt: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await make_rt()
    queue = rt.queue
    held: list[tuple[Slot, Record]] = []
    original = queue.hand_off
    # The hand-off is held back: the run is committed claimed, and its task does not exist yet.
    monkeypatch.setattr(queue, "hand_off", lambda slot, run: held.append((slot, run)))
    tid = (await rt.threads.create({}))["thread_id"]
    run = await rt.runs.create(tid, {"assistant_id": "echo", "input": said("never")})
    assert held and (await row(rt, run["run_id"]))["status"] == "running"
    # Committed claimed, not yet executing: the cancel finds the run in its reserved slot and is kept for it.
    assert queue.is_executing(run["run_id"])
    await rt.runs.cancel(tid, [run["run_id"]], "interrupt")

    async def recorded() -> bool:  # the CANCEL hint: synchronous on SQLite, through LISTEN/NOTIFY on PostgreSQL
        return bool(queue.cancel_actions.get(run["run_id"]) == "interrupt")

    await until(recorded, "the cancel never reached the queue")
    original(*held[0])
    final = await rt.runs.wait_for_end(run["run_id"])
    assert final["status"] == "interrupted"
    assert (await rt.threads.get(tid))["values"] in (None, {})  # the graph never ran


async def test_a_handed_off_run_is_reaped_when_its_execution_is_gone(make_rt: RuntimeFactory) -> None:
    rt = await make_rt(lease_seconds=0.5)
    tid = (await rt.threads.create({}))["thread_id"]
    run = await rt.runs.create(tid, {"assistant_id": "slow", "input": said("lost", 60)})
    assert (await row(rt, run["run_id"]))["lease_owner"] == rt.queue.owner
    # The execution vanishes without writing anything (as when the process is stopped mid-run): the lease is no
    # longer renewed, and the reaper (every half lease) ends the run WorkerLost.
    rt.queue._tasks.pop(run["run_id"]).cancel()

    async def reaped() -> bool:
        return bool((await row(rt, run["run_id"]))["status"] != "running")

    await until(reaped, "the run was never reaped")
    stored = await row(rt, run["run_id"])
    assert stored["status"] == "error" and stored["error"]["error"] == "WorkerLost"
    assert (await rt.runs.wait_for_end(run["run_id"]))["status"] == "error"
