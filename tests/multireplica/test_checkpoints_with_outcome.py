"""A run's last checkpoint writes committed by its outcome's statement (PostgreSQL, one statement a run fewer): the
checkpointer hands over a run's queued deferred writes (graphs/postgres_saver.take_writes) only when no flush is
under way and nobody waits for a queued write; the outcome statement inserts them only when it finishes the run
under its lease; writes the outcome did not take are put back and committed as before, still fenced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypedDict

import psycopg
import pytest
from langgraph.graph import START, StateGraph

from crongraph.graphs import postgres_saver
from crongraph.graphs.persistence import Persistence, open_postgres
from crongraph.graphs.postgres_saver import PostgresSaver, outcome_inserts
from crongraph.graphs.sqlite_saver import DEFER_COMMITS
from crongraph.storage import runs, threads
from crongraph.storage.database import Database
from tests.multireplica.rows import run_row, thread_row
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


class State(TypedDict):
    count: int


def _graph(persistence: Persistence) -> Any:
    builder = StateGraph(State)
    builder.add_node("step", lambda s: {"count": s["count"] + 1})
    builder.add_edge(START, "step")
    return builder.compile(checkpointer=persistence.checkpointer)


@pytest.fixture
async def setup(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Database, Any]]:
    monkeypatch.setattr(postgres_saver, "LINGER", 60.0)  # deferred writes stay queued until someone needs them
    url = postgres.create_database("ckpt_outcome")
    db = Database(url)
    await db.migrate()
    persistence = await open_postgres(url)
    yield url, db, persistence
    await persistence.close()
    await db.dispose()


async def _running(db: Database) -> dict[str, Any]:
    now = datetime.now(UTC)
    thread = thread_row(now)
    run = {**run_row(thread["thread_id"], now), "status": "running", "lease_token": "mine"}
    async with db.write() as conn:
        await threads.insert_new(conn, thread)
        await runs.insert_new(conn, run)
    return run


async def _execute(graph: Any, run: dict[str, Any], count: int = 0) -> Any:
    """The graph run for `run` as the executor runs it: its checkpoint writes deferred."""
    deferred = DEFER_COMMITS.set(True)
    try:
        return await graph.ainvoke({"count": count}, _config(run))
    finally:
        DEFER_COMMITS.reset(deferred)


def _config(run: dict[str, Any]) -> Any:
    return {"configurable": {"thread_id": run["thread_id"], "run_id": run["run_id"]}}


def _checkpoint_rows(url: str, thread_id: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        total = 0
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,)).fetchone()
            total += int(row[0]) if row else 0
    return total


async def _outcome(db: Database, run: dict[str, Any], checkpoints: Any) -> dict[str, Any] | None:
    now = datetime.now(UTC)
    async with db.autocommit() as conn:
        return await runs.finish_and_settle(
            conn,
            run,
            status="success",
            output=None,
            error=None,
            now=now,
            settled="idle",
            changes={"updated_at": now},
            checkpoints=checkpoints,
        )


async def test_a_runs_last_checkpoints_commit_with_its_outcome_and_only_then(
    setup: tuple[str, Database, Any],
) -> None:
    url, db, persistence = setup
    saver: PostgresSaver = persistence.checkpointer
    graph = _graph(persistence)
    run = await _running(db)
    assert await _execute(graph, run) == {"count": 1}
    taken = saver.take_writes(run["run_id"])
    assert taken
    assert saver.take_writes(run["run_id"]) is None  # taken once
    inserts = outcome_inserts(taken)
    assert inserts is not None
    await saver.commit_pending()  # what the outcome's commit of checkpoints does: the taken writes are not sent
    assert _checkpoint_rows(url, run["thread_id"]) == 0

    assert await _outcome(db, {**run, "lease_token": "not-mine"}, inserts) is None
    assert _checkpoint_rows(url, run["thread_id"]) == 0  # a fenced outcome writes no checkpoint either

    assert await _outcome(db, run, inserts) is not None
    assert _checkpoint_rows(url, run["thread_id"]) > 0
    # What the run wrote, as a run whose writes went the usual way would have it.
    reference = await _running(db)
    await _execute(graph, reference)
    await saver.commit_pending()
    assert _checkpoint_rows(url, run["thread_id"]) == _checkpoint_rows(url, reference["thread_id"])
    state = await graph.aget_state(_config(run))
    assert state.values == {"count": 1} and state.next == ()
    history = [s.metadata["step"] async for s in graph.aget_state_history(_config(run))]
    assert history == [s.metadata["step"] async for s in graph.aget_state_history(_config(reference))]


async def test_writes_put_back_are_committed_fenced(setup: tuple[str, Database, Any]) -> None:
    url, db, persistence = setup
    saver: PostgresSaver = persistence.checkpointer
    graph = _graph(persistence)
    run = await _running(db)
    await _execute(graph, run)
    taken = saver.take_writes(run["run_id"])
    assert taken
    await saver.put_back(taken, run["run_id"])
    assert _checkpoint_rows(url, run["thread_id"]) > 0
    assert (await graph.aget_state(_config(run))).values == {"count": 1}

    ended = await _running(db)
    await _execute(graph, ended)
    taken = saver.take_writes(ended["run_id"])
    assert taken
    async with db.write() as conn:
        await runs.end_abandoned(conn, ended["run_id"], "mine", {"error": "WorkerLost"}, datetime.now(UTC))
    await saver.put_back(taken, ended["run_id"])  # refused by the fence: dropped, as a deferred write is
    assert _checkpoint_rows(url, ended["thread_id"]) == 0


async def test_a_runs_writes_are_taken_from_among_others_but_not_while_a_flush_is_under_way(
    setup: tuple[str, Database, Any],
) -> None:
    url, db, persistence = setup
    saver: PostgresSaver = persistence.checkpointer
    graph = _graph(persistence)
    first, second = await _running(db), await _running(db)
    await _execute(graph, first)
    # Another run's deferred write queued behind them (without a read, which would send what is queued).
    config = {"configurable": {**_config(second)["configurable"], "checkpoint_ns": "", "checkpoint_id": "c"}}
    deferred = DEFER_COMMITS.set(True)
    try:
        await saver.aput_writes(config, [("count", 7)], "task")
    finally:
        DEFER_COMMITS.reset(deferred)
    taken = saver.take_writes(first["run_id"])
    assert taken
    assert await _outcome(db, first, outcome_inserts(taken)) is not None
    assert _checkpoint_rows(url, second["thread_id"]) == 0
    await saver.commit_pending()  # the other run's write, left queued, goes as usual
    assert _checkpoint_rows(url, second["thread_id"]) == 1
    assert (await graph.aget_state(_config(first))).values == {"count": 1}
    assert saver.take_writes(second["run_id"]) is None  # nothing left to take

    third = await _running(db)
    await _execute(graph, third)
    saver._in_flight = True  # as while a flush sends writes (one of this run's may be in it)
    try:
        assert saver.take_writes(third["run_id"]) is None
    finally:
        saver._in_flight = False
    await saver.commit_pending()
    assert _checkpoint_rows(url, third["thread_id"]) > 0
