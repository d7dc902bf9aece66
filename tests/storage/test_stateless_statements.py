"""Stateless runs on PostgreSQL's one-statement paths (issue 17), in process on real storage: the run and its new
thread are created by one statement, and the outcome of a run on a temporary thread deletes the thread, the run
and its checkpoints in one statement, keeping what the longer paths guaranteed: nothing is written for a missing
assistant, for a lost lease, or while another run of the thread is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.runtime import Runtime
from crongraph.settings import Settings
from crongraph.storage import runs as run_rows
from crongraph.storage import threads as thread_rows
from tests.multireplica import rows

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"


@pytest.fixture
async def rt(tmp_path: Path, database_urls: Any) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        Settings(data_dir=tmp_path / "data", config=CONFIG, database_url=database_urls()),
        GraphRegistry.load(load(CONFIG)),
    )
    if runtime.settings.database_url is None:
        pytest.skip("PostgreSQL statements")
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_a_stateless_run_and_its_thread_are_created_in_one_statement(rt: Runtime) -> None:
    echo = rt.runs.resolve_assistant("echo")
    now = rt.clock.now()
    thread = {**rows.thread_row(now), "metadata": {"b": 2, "graph_id": "mine"}}
    run = {**rows.run_row(thread["thread_id"], now, priority=0), "assistant_id": "nope"}
    async with rt.db.autocommit() as conn:
        assert await run_rows.create_with_thread(conn, thread, {"a": 1}, run) is None
        assert await thread_rows.get(conn, thread["thread_id"]) is None
        run.update(assistant_id=echo, status="running", lease_token="t", attempt=1)
        assistant = await run_rows.create_with_thread(conn, thread, {"a": 1, "assistant_id": "x"}, run)
        stored = await thread_rows.get(conn, thread["thread_id"])
        found = await run_rows.inflight_on_thread(conn, thread["thread_id"])
    assert assistant is not None and assistant["assistant_id"] == echo
    assert stored is not None and stored["status"] == "busy"
    # As the service merges it: the config's metadata, then the graph's names, then the run's own (later wins).
    assert stored["metadata"] == {"a": 1, "assistant_id": echo, "graph_id": "mine", "b": 2}
    assert [(r["run_id"], r["status"], r["lease_token"]) for r in found] == [(run["run_id"], "running", "t")]


async def _temporary_running_run(rt: Runtime) -> dict[str, Any]:
    """A stateless run (temporary thread) claimed by hand, with a checkpoint, a blob and a write on its thread."""
    # Delayed, so that no worker claims it.
    run = await rt.runs.create(None, {"assistant_id": "echo", "input": {}, "after_seconds": 3600})
    assert run["temporary"]
    async with rt.db.write() as conn:
        await conn.execute(
            text("UPDATE runs SET status = 'running', lease_token = 'mine' WHERE run_id = :r"), {"r": run["run_id"]}
        )
        t = {"t": run["thread_id"]}
        await conn.execute(
            text(
                "INSERT INTO checkpoints (thread_id, checkpoint_id, checkpoint, metadata) VALUES (:t, 'c', '{}', '{}')"
            ),
            t,
        )
        await conn.execute(
            text("INSERT INTO checkpoint_blobs (thread_id, channel, version, type) VALUES (:t, 'x', '1', 'empty')"), t
        )
        await conn.execute(
            text(
                "INSERT INTO checkpoint_writes (thread_id, checkpoint_id, task_id, idx, channel, blob) "
                "VALUES (:t, 'c', 'k', 0, 'x', '')"
            ),
            t,
        )
    return {**run, "status": "running", "lease_token": "mine"}


async def _left(rt: Runtime, run: dict[str, Any]) -> tuple[bool, bool, int]:
    """(the thread exists, the run exists, how many checkpoint rows of the thread exist)."""
    async with rt.db.read() as conn:
        thread = await thread_rows.get(conn, run["thread_id"])
        stored = await run_rows.get(conn, run["run_id"])
        counts = [
            (
                await conn.execute(text(f"SELECT count(*) FROM {table} WHERE thread_id = :t"), {"t": run["thread_id"]})
            ).scalar_one()
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        ]
    return thread is not None, stored is not None, sum(counts)


async def test_a_temporary_threads_outcome_deletes_it_with_its_run_and_checkpoints(rt: Runtime) -> None:
    run = await _temporary_running_run(rt)
    now = rt.clock.now()
    outcome: dict[str, Any] = {"status": "success", "output": {"x": 1}, "error": None, "now": now}
    async with rt.db.autocommit() as conn:
        assert await run_rows.finish_and_delete_thread(conn, {**run, "lease_token": "not-mine"}, **outcome) is None
    assert await _left(rt, run) == (True, True, 3)
    async with rt.db.autocommit() as conn:
        finished = await run_rows.finish_and_delete_thread(conn, run, **outcome)
    assert finished == run_rows.ended(run, "success", {"x": 1}, None, now)
    assert await _left(rt, run) == (False, False, 0)


async def test_a_temporary_threads_outcome_writes_nothing_while_another_of_its_runs_is_in_flight(
    rt: Runtime,
) -> None:
    run = await _temporary_running_run(rt)
    other = {**rows.run_row(run["thread_id"], rt.clock.now()), "assistant_id": run["assistant_id"]}
    async with rt.db.write() as conn:
        await run_rows.insert_new(conn, other)
    now = rt.clock.now()
    async with rt.db.autocommit() as conn:
        assert (
            await run_rows.finish_and_delete_thread(conn, run, status="success", output=None, error=None, now=now)
            is None
        )
    assert await _left(rt, run) == (True, True, 3)


async def test_a_temporary_threads_outcome_writes_nothing_when_its_run_was_ended_while_it_waited(rt: Runtime) -> None:
    run = await _temporary_running_run(rt)
    now = rt.clock.now()
    async with rt.db.write() as other:
        # The reaper of another replica ending the run.
        await other.execute(text("UPDATE runs SET status = 'error' WHERE run_id = :r"), {"r": run["run_id"]})

        async def outcome() -> Any:
            async with rt.db.autocommit() as conn:
                return await run_rows.finish_and_delete_thread(
                    conn, run, status="success", output=None, error=None, now=now
                )

        attempt = asyncio.create_task(outcome())
        async with asyncio.timeout(60), rt.db.read() as conn:
            waiting = text(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH deleted AS%' "
                "AND pid <> pg_backend_pid()"
            )
            while not (await conn.execute(waiting)).first():
                await asyncio.sleep(0.01)
    with pytest.raises(DBAPIError, match="division by zero"):
        await attempt
    assert await _left(rt, run) == (True, True, 3)
    async with rt.db.read() as conn:
        assert (await run_rows.get(conn, run["run_id"]) or {})["status"] == "error"
