"""The statements merged to cut PostgreSQL round trips per run (issue 17), in process on real storage: each keeps
what its parts guaranteed. A thread is created by one insert that is also its existence check (both backends); on
PostgreSQL the fenced finish of a run also takes its thread's lock, but only when the lease token held, and the
assistant's read at run creation marks (and locks) the thread only when the assistant exists.
"""

from __future__ import annotations

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
