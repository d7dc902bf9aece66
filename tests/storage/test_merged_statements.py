"""The statements merged to cut PostgreSQL round trips per run (issue 17), in process on real storage: each keeps
what its parts guaranteed. A thread is created by one insert that is also its existence check (both backends); on
PostgreSQL the fenced finish of a run also takes its thread's lock, but only when the lease token held, and the
assistant's read at run creation marks (and locks) the thread only when the assistant exists.
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
    await runtime.start()
    yield runtime
    await runtime.stop()


def _postgres_only(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("a PostgreSQL statement (SQLite has one writer and no row locks)")


async def _thread_locked_elsewhere(rt: Runtime, thread_id: str) -> bool:
    async with rt.db.read() as other:
        try:
            await other.execute(text("SELECT 1 FROM threads WHERE thread_id = :t FOR UPDATE NOWAIT"), {"t": thread_id})
        except DBAPIError as exc:
            assert "could not obtain lock" in str(exc)
            return True
    return False


async def test_creating_a_thread_twice_inserts_once_and_keeps_the_first(rt: Runtime) -> None:
    first = await rt.threads.create({"metadata": {"n": 1}})
    kept = await rt.threads.create({"thread_id": first["thread_id"], "metadata": {"n": 2}, "if_exists": "do_nothing"})
    assert kept["metadata"] == {"n": 1}
    row = rt.threads.new_row(first["thread_id"], {"n": 3})
    async with rt.db.autocommit() as conn:
        assert not await thread_rows.insert_unless_exists(conn, row, rt.db.dialect)
        assert (await thread_rows.get(conn, first["thread_id"]) or {})["metadata"] == {"n": 1}


async def _running_run(rt: Runtime) -> dict[str, Any]:
    thread = await rt.threads.create({})
    # Delayed, so that no worker claims it; the test claims it by hand with a token of its own.
    run = await rt.runs.create(thread["thread_id"], {"assistant_id": "echo", "input": {}, "after_seconds": 3600})
    async with rt.db.write() as conn:
        await conn.execute(
            text("UPDATE runs SET status = 'running', lease_token = 'mine' WHERE run_id = :r"), {"r": run["run_id"]}
        )
    return {**run, "status": "running", "lease_token": "mine"}


async def test_a_fenced_finish_locks_the_thread_only_when_the_token_holds(rt: Runtime) -> None:
    _postgres_only(rt)
    run = await _running_run(rt)
    now = rt.clock.now()
    async with rt.db.write() as conn:
        stale = {**run, "lease_token": "not-mine"}
        assert (
            await run_rows.finish_and_lock_thread(conn, stale, status="success", output=None, error=None, now=now)
            is None
        )
        assert not await _thread_locked_elsewhere(rt, run["thread_id"])
        finished = await run_rows.finish_and_lock_thread(conn, run, status="success", output={}, error=None, now=now)
        assert finished is not None and finished["status"] == "success"
        assert await _thread_locked_elsewhere(rt, run["thread_id"])
    assert not await _thread_locked_elsewhere(rt, run["thread_id"])
    async with rt.db.read() as conn:
        assert (await run_rows.get(conn, run["run_id"]) or {})["status"] == "success"


async def test_a_missing_assistant_leaves_the_thread_untouched_and_unlocked(rt: Runtime) -> None:
    _postgres_only(rt)
    thread = await rt.threads.create({})
    now = rt.clock.now()
    async with rt.db.write() as conn:
        found = await thread_rows.mark_busy_with_assistant(conn, thread["thread_id"], "no-such-assistant", now, None)
        assert found == (None, None)
        assert not await _thread_locked_elsewhere(rt, thread["thread_id"])
        echo = rt.runs.resolve_assistant("echo")
        assistant, marked = await thread_rows.mark_busy_with_assistant(conn, thread["thread_id"], echo, now, None)
        assert assistant is not None and marked is not None
        assert marked["status"] == "busy" and marked["metadata"]["graph_id"] == assistant["graph_id"]
        assert await _thread_locked_elsewhere(rt, thread["thread_id"])


# One statement to create a run on an existing thread, and one to write a run's outcome (storage/runs.py:
# create_on_thread, finish_and_settle). Each is sent alone in autocommit, so it cannot take the thread's lock
# before asking about the thread's runs; it writes only when the thread's row is still the version its snapshot
# saw, and otherwise writes nothing and leaves the work to the transaction it replaces.


async def _blocked_on_a_lock(rt: Runtime, start: str) -> None:
    """Until a statement starting with `start` waits for a row lock (so its snapshot is taken). PostgreSQL keeps
    only the first kilobyte of a statement's text in pg_stat_activity, hence a prefix."""
    async with asyncio.timeout(60), rt.db.read() as conn:
        while not (
            await conn.execute(
                text(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :q "
                    "AND pid <> pg_backend_pid()"
                ),
                {"q": f"{start}%"},
            )
        ).first():
            await asyncio.sleep(0.01)


def _new_run(rt: Runtime, thread_id: str, assistant_id: str) -> dict[str, Any]:
    return {**rows.run_row(thread_id, rt.clock.now(), priority=0), "assistant_id": assistant_id}


async def _thread_and_runs(rt: Runtime, thread_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with rt.db.read() as conn:
        thread = await thread_rows.get(conn, thread_id)
        found = await run_rows.inflight_on_thread(conn, thread_id)
    assert thread is not None
    return thread, found


async def test_a_run_is_created_in_one_statement_on_an_idle_thread(rt: Runtime) -> None:
    _postgres_only(rt)
    thread = await rt.threads.create({})
    echo = rt.runs.resolve_assistant("echo")
    run = {**_new_run(rt, thread["thread_id"], echo), "status": "running", "lease_token": "t", "attempt": 1}
    async with rt.db.autocommit() as conn:
        assert await run_rows.create_on_thread(
            conn, {**run, "assistant_id": "nope"}, require_idle=False, visible=None
        ) == (
            None,
            False,
        )
        assistant, inserted = await run_rows.create_on_thread(conn, run, require_idle=False, visible=None)
    assert inserted and assistant is not None and assistant["assistant_id"] == echo
    marked, found = await _thread_and_runs(rt, thread["thread_id"])
    assert marked["status"] == "busy" and marked["metadata"]["graph_id"] == assistant["graph_id"]
    assert [(r["run_id"], r["status"], r["lease_token"]) for r in found] == [(run["run_id"], "running", "t")]
    # A second one goes in behind it, unclaimed; with require_idle it does not go in at all.
    second = {**_new_run(rt, thread["thread_id"], echo), "status": "running", "lease_token": "u", "attempt": 1}
    third = _new_run(rt, thread["thread_id"], echo)
    async with rt.db.autocommit() as conn:
        assert (await run_rows.create_on_thread(conn, third, require_idle=True, visible=None))[1] is False
        assert (await run_rows.create_on_thread(conn, second, require_idle=False, visible=None))[1] is True
    assert second["status"] == "pending" and second["lease_token"] is None
    _, found = await _thread_and_runs(rt, thread["thread_id"])
    assert [(r["run_id"], r["status"]) for r in found] == [(run["run_id"], "running"), (second["run_id"], "pending")]


async def test_a_one_statement_create_writes_nothing_when_a_run_was_added_while_it_waited(rt: Runtime) -> None:
    _postgres_only(rt)
    thread = await rt.threads.create({})
    echo = rt.runs.resolve_assistant("echo")
    now = rt.clock.now()
    mine = {**_new_run(rt, thread["thread_id"], echo), "status": "running", "lease_token": "mine", "attempt": 1}
    async with rt.db.write() as other:
        # Another creation, holding the thread's lock: its run is not committed when our statement starts.
        await thread_rows.mark_busy_for_run(other, thread["thread_id"], {}, now, "postgresql", None)
        theirs = _new_run(rt, thread["thread_id"], echo)
        await run_rows.insert_new(other, theirs)

        async def create() -> tuple[Any, bool]:
            async with rt.db.autocommit() as conn:
                made: tuple[Any, bool] = await run_rows.create_on_thread(conn, mine, require_idle=False, visible=None)
            return made

        attempt = asyncio.create_task(create())
        await _blocked_on_a_lock(rt, "WITH assistant AS")
    # Its snapshot saw no run on the thread; claimed, this run would have run beside (and before) the other.
    assistant, inserted = await attempt
    assert assistant is not None and not inserted
    _, found = await _thread_and_runs(rt, thread["thread_id"])
    assert [r["run_id"] for r in found] == [theirs["run_id"]]


async def test_an_outcome_is_written_in_one_statement(rt: Runtime) -> None:
    _postgres_only(rt)
    run = await _running_run(rt)
    now = rt.clock.now()
    changes = {"updated_at": now, "values": {"x": 1}, "error": None, "interrupts": {}, "state_updated_at": now}
    async with rt.db.autocommit() as conn:
        stale = {**run, "lease_token": "not-mine"}
        kwargs: dict[str, Any] = {"output": None, "error": None, "now": now, "settled": "idle", "changes": changes}
        assert await run_rows.finish_and_settle(conn, stale, status="success", **kwargs) is None
        thread, found = await _thread_and_runs(rt, run["thread_id"])
        assert thread["status"] == "busy" and thread["values"] is None and len(found) == 1
        finished = await run_rows.finish_and_settle(conn, run, status="success", **kwargs)
    assert finished is not None and finished["status"] == "success"
    thread, found = await _thread_and_runs(rt, run["thread_id"])
    assert thread["status"] == "idle" and thread["values"] == {"x": 1} and found == []


async def test_a_one_statement_outcome_leaves_no_idle_thread_with_a_run_created_while_it_waited(rt: Runtime) -> None:
    _postgres_only(rt)
    run = await _running_run(rt)
    now = rt.clock.now()
    changes = {"updated_at": now}
    async with rt.db.write() as other:
        # A run created on the thread meanwhile: its creation holds the thread's lock until it commits.
        await thread_rows.mark_busy_for_run(other, run["thread_id"], {}, now, "postgresql", None)
        created = _new_run(rt, run["thread_id"], run["assistant_id"])
        await run_rows.insert_new(other, created)

        async def outcome() -> Any:
            async with rt.db.autocommit() as conn:
                return await run_rows.finish_and_settle(
                    conn, run, status="success", output=None, error=None, now=now, settled="idle", changes=changes
                )

        attempt = asyncio.create_task(outcome())
        await _blocked_on_a_lock(rt, "WITH settled AS")
    # Nothing written: the snapshot missed the new run, and the statement saw that the thread changed.
    assert await attempt is None
    thread, found = await _thread_and_runs(rt, run["thread_id"])
    assert thread["status"] == "busy"
    assert [(r["run_id"], r["status"]) for r in found] == [(run["run_id"], "running"), (created["run_id"], "pending")]
    # The long way, as the executor then takes it, finds the new run and leaves the thread busy.
    async with rt.db.write() as conn:
        assert await run_rows.finish_and_lock_thread(conn, run, status="success", output=None, error=None, now=now)
        await thread_rows.settle_after_run(conn, run["thread_id"], "idle", updated_at=now)
    thread, found = await _thread_and_runs(rt, run["thread_id"])
    assert thread["status"] == "busy" and [r["run_id"] for r in found] == [created["run_id"]]


async def test_a_one_statement_outcome_writes_nothing_when_its_run_was_ended_while_it_waited(rt: Runtime) -> None:
    _postgres_only(rt)
    run = await _running_run(rt)
    now = rt.clock.now()
    async with rt.db.write() as other:
        # The reaper of another replica ending the run (its thread not yet written).
        await other.execute(text("UPDATE runs SET status = 'error' WHERE run_id = :r"), {"r": run["run_id"]})

        async def outcome() -> Any:
            async with rt.db.autocommit() as conn:
                return await run_rows.finish_and_settle(
                    conn,
                    run,
                    status="success",
                    output=None,
                    error=None,
                    now=now,
                    settled="idle",
                    changes={"updated_at": now},
                )

        attempt = asyncio.create_task(outcome())
        await _blocked_on_a_lock(rt, "WITH settled AS")
    with pytest.raises(DBAPIError, match="division by zero"):
        await attempt
    thread, _ = await _thread_and_runs(rt, run["thread_id"])
    assert thread["status"] == "busy"
    async with rt.db.read() as conn:
        assert (await run_rows.get(conn, run["run_id"]) or {})["status"] == "error"
