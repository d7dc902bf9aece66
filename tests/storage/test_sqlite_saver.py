"""The SQLite checkpointer's deferred writes (graphs/sqlite_saver.py): a run's checkpoint writes are recorded and
committed together at the end of the loop iteration, without holding checkpoints.db's write lock meanwhile; reads
see them; a flush that fails keeps them for the next one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph

from crongraph.graphs.sqlite_saver import DEFER_COMMITS, InlineSqliteSaver


class State(TypedDict, total=False):
    value: int


def _step(state: State) -> State:
    return {"value": state.get("value", 0) + 1}


def _graph(saver: InlineSqliteSaver) -> Any:
    builder = StateGraph(State)
    builder.add_node("step", _step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


@pytest.fixture
def saver(tmp_path: Path) -> Iterator[InlineSqliteSaver]:
    opened = InlineSqliteSaver.open(tmp_path / "checkpoints.db")
    yield opened
    opened.close()


def _other(tmp_path: Path) -> sqlite3.Connection:
    """Another connection to the same file, as another process would have; it never waits for a lock."""
    return sqlite3.connect(tmp_path / "checkpoints.db", timeout=0, isolation_level=None)


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def _end_of_iteration() -> None:
    """Let the loop run the callbacks scheduled with call_soon by the code before (the deferred commit)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_run_writes_commit_at_end_of_iteration_without_holding_the_lock(
    saver: InlineSqliteSaver, tmp_path: Path
) -> None:
    other = _other(tmp_path)
    token = DEFER_COMMITS.set(True)
    try:
        await saver.aput(_config("t1"), empty_checkpoint(), {"step": -1}, {})
        await saver.aput_writes(
            {"configurable": {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": "c1"}}, [("value", 1)], "task"
        )
        # Recorded, not written: another process sees nothing and can take the write lock at once.
        assert _count(other, "checkpoints") == 0
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        await _end_of_iteration()
    finally:
        DEFER_COMMITS.reset(token)
    assert _count(other, "checkpoints") == 1
    assert _count(other, "writes") == 1
    other.close()


async def test_a_read_sees_the_writes_recorded_before_it(saver: InlineSqliteSaver, tmp_path: Path) -> None:
    token = DEFER_COMMITS.set(True)
    try:
        checkpoint = empty_checkpoint()
        saved = await saver.aput(_config("t2"), checkpoint, {"step": -1}, {})
        found = await saver.aget_tuple(saved)
    finally:
        DEFER_COMMITS.reset(token)
    assert found is not None and found.checkpoint["id"] == checkpoint["id"]
    other = _other(tmp_path)
    assert _count(other, "checkpoints") == 1  # the read committed them: nothing is left pending
    other.close()


async def test_a_deferred_run_writes_what_an_immediate_one_does(saver: InlineSqliteSaver, tmp_path: Path) -> None:
    graph = _graph(saver)
    await graph.ainvoke({"value": 1}, _config("immediate"))
    token = DEFER_COMMITS.set(True)
    try:
        await graph.ainvoke({"value": 1}, _config("deferred"))
    finally:
        DEFER_COMMITS.reset(token)
    saver.commit_pending()  # as the executor does before recording the run's outcome
    other = _other(tmp_path)
    rows = {
        thread: (
            other.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread,)).fetchone()[0],
            other.execute("SELECT count(*) FROM writes WHERE thread_id = ?", (thread,)).fetchone()[0],
        )
        for thread in ("immediate", "deferred")
    }
    other.close()
    assert rows["deferred"] == rows["immediate"]
    assert rows["deferred"][0] >= 2
    state = await graph.aget_state(_config("deferred"))
    assert state.values == {"value": 2}
    history = [c async for c in graph.aget_state_history(_config("deferred"))]
    assert len(history) == rows["deferred"][0]


async def test_a_failed_flush_keeps_the_writes_and_raises(saver: InlineSqliteSaver, tmp_path: Path) -> None:
    saver.conn.execute("PRAGMA busy_timeout=0")
    other = _other(tmp_path)
    token = DEFER_COMMITS.set(True)
    try:
        await saver.aput(_config("t3"), empty_checkpoint(), {"step": -1}, {})
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            saver.commit_pending()  # the executor's call before the outcome: the run is not recorded as ended
        other.execute("ROLLBACK")
        saver.commit_pending()
    finally:
        DEFER_COMMITS.reset(token)
    assert _count(other, "checkpoints") == 1
    other.close()


async def test_writes_outside_a_run_commit_at_once(saver: InlineSqliteSaver, tmp_path: Path) -> None:
    await saver.aput(_config("t4"), empty_checkpoint(), {"step": -1}, {})
    other = _other(tmp_path)
    assert _count(other, "checkpoints") == 1
    other.close()


async def test_the_outcome_waits_for_the_lock_without_blocking_the_loop(
    saver: InlineSqliteSaver, tmp_path: Path
) -> None:
    other = _other(tmp_path)
    token = DEFER_COMMITS.set(True)
    try:
        await saver.aput(_config("t5"), empty_checkpoint(), {"step": -1}, {})
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        flushing = asyncio.create_task(saver.acommit_pending())
        ticks = 0
        while ticks < 20:  # the loop keeps serving while the flush waits for the lock
            await asyncio.sleep(0)
            ticks += 1
        assert not flushing.done()
        assert _count(other, "checkpoints") == 0
        other.execute("COMMIT")
        await asyncio.wait_for(flushing, timeout=30)
    finally:
        DEFER_COMMITS.reset(token)
    assert _count(other, "checkpoints") == 1
    other.close()


async def test_the_end_of_iteration_flush_tries_again_when_the_lock_is_taken(
    saver: InlineSqliteSaver, tmp_path: Path
) -> None:
    other = _other(tmp_path)
    token = DEFER_COMMITS.set(True)
    try:
        other.execute("BEGIN IMMEDIATE")
        await saver.aput(_config("t6"), empty_checkpoint(), {"step": -1}, {})
        await _end_of_iteration()  # the flush found the lock taken: nothing raised, nothing lost
        assert _count(other, "checkpoints") == 0
        other.execute("COMMIT")
        async with asyncio.timeout(30):
            while _count(other, "checkpoints") == 0:
                await asyncio.sleep(0.001)  # until the retry scheduled by the flush has run
    finally:
        DEFER_COMMITS.reset(token)
    other.close()
