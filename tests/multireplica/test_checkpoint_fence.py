"""The checkpoint fence on PostgreSQL (graphs/postgres_saver.py), in one process: a graph's checkpoint writes for a
run land while the run's row is `running` and are refused (LeaseLost, nothing written) once it is not; a reaper's
update that commits while a write waits for the row's lock makes that write refused too; the merged one-statement
write keeps what LangGraph's saver would write (state, history, state updates without a run); a statement shape the
merge does not know still goes behind the fence; writes repeating a key keep the last, as one-by-one upserts do.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langgraph.constants import ERROR
from langgraph.graph import START, StateGraph

from crongraph.graphs import postgres_saver
from crongraph.graphs.persistence import Persistence, open_postgres
from crongraph.graphs.postgres_saver import LeaseLost, PostgresSaver, _Recorder, merge
from crongraph.graphs.sqlite_saver import DEFER_COMMITS
from crongraph.storage import runs, threads
from crongraph.storage.database import Database
from tests.multireplica.rows import run_row, thread_row
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres
Setup = tuple[str, Persistence, str, Callable[[], Awaitable[str]]]


class State(TypedDict):
    items: Annotated[list[Any], operator.add]
    count: int


def _graph(persistence: Persistence) -> Any:
    builder = StateGraph(State)
    builder.add_node("step", lambda s: {"items": [{"seen": len(s["items"])}], "count": s["count"] + 1})
    builder.add_edge(START, "step")
    return builder.compile(checkpointer=persistence.checkpointer)


@pytest.fixture
async def setup(postgres: PostgresServer) -> AsyncIterator[Setup]:
    """(database url, persistence, a thread's id, a function adding a running run on it and giving its id)."""
    url = postgres.create_database("fence")
    db = Database(url)
    await db.migrate()
    thread = thread_row(datetime.now(UTC))
    async with db.write() as conn:
        await threads.insert_new(conn, thread)

    async def running_run() -> str:
        run = {**run_row(thread["thread_id"], datetime.now(UTC)), "status": "running"}
        async with db.write() as conn:
            await runs.insert_new(conn, run)
        return str(run["run_id"])

    persistence = await open_postgres(url)
    yield url, persistence, thread["thread_id"], running_run
    await persistence.close()
    await db.dispose()


def _counts(url: str, thread_id: str) -> tuple[int, int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        got = [
            conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,)).fetchone()
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        ]
    return tuple(int(row[0]) if row else 0 for row in got)  # type: ignore[return-value]


def _end_run(url: str, run_id: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE runs SET status = 'error' WHERE run_id = %s", (run_id,))


async def test_writes_land_while_running_and_are_refused_after(setup: Setup) -> None:
    url, persistence, thread_id, running_run = setup
    graph = _graph(persistence)

    def config(run_id: str) -> Any:
        return {"configurable": {"thread_id": thread_id, "run_id": run_id}}

    first = await graph.ainvoke({"items": ["a"], "count": 0}, config(await running_run()))
    assert first == {"items": ["a", {"seen": 1}], "count": 1}
    run_id = await running_run()
    assert await graph.ainvoke({"items": ["b"], "count": 5}, config(run_id)) == {
        "items": ["a", {"seen": 1}, "b", {"seen": 3}],
        "count": 6,
    }
    state = await graph.aget_state(config(run_id))
    assert state.values == {"items": ["a", {"seen": 1}, "b", {"seen": 3}], "count": 6}
    assert len([s async for s in graph.aget_state_history(config(run_id))]) == 6
    before = _counts(url, thread_id)
    assert all(before)

    late = await running_run()
    _end_run(url, late)
    with pytest.raises(LeaseLost):
        await graph.ainvoke({"items": ["late"], "count": 0}, config(late))
    assert _counts(url, thread_id) == before
    assert (await graph.aget_state(config(late))).values == state.values

    # A write without a run (a state update through the API) is not fenced.
    await graph.aupdate_state({"configurable": {"thread_id": thread_id}}, {"count": 42})
    assert (await graph.aget_state(config(late))).values["count"] == 42


async def test_a_reap_committed_while_the_write_waits_for_the_lock_refuses_it(
    setup: Setup,
) -> None:
    url, persistence, thread_id, running_run = setup
    graph = _graph(persistence)
    await graph.ainvoke(
        {"items": [], "count": 0}, {"configurable": {"thread_id": thread_id, "run_id": await running_run()}}
    )
    run_id = await running_run()
    config = {"configurable": {"thread_id": thread_id, "run_id": run_id}}
    before = _counts(url, thread_id)
    async with await psycopg.AsyncConnection.connect(url) as reaper:
        # The reaper's update holds the row until it commits; the write's share lock waits for it.
        await reaper.execute("UPDATE runs SET status = 'error' WHERE run_id = %s", (run_id,))
        write = asyncio.create_task(graph.ainvoke({"items": ["late"], "count": 0}, config))
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as watch:
            while not write.done():
                row = await (
                    await watch.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                        ("%fence%",),
                    )
                ).fetchone()
                if row and row[0]:
                    break
                await asyncio.sleep(0.01)
        assert not write.done()  # it is waiting for the lock, not done
        await reaper.commit()
    with pytest.raises(LeaseLost):
        await write
    assert _counts(url, thread_id) == before


async def test_a_statement_the_merge_does_not_know_still_goes_behind_the_fence(
    setup: Setup,
) -> None:
    url, persistence, thread_id, running_run = setup
    run_id = await running_run()
    saver = persistence.checkpointer
    assert isinstance(saver, PostgresSaver)
    unknown = (
        "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
        "SELECT %s, %s, %s, %s, %s, %s"
    )
    assert merge([(unknown, [(thread_id, "", "c", "1", "empty", None)])], run_id) is None
    recorder = _Recorder()
    await recorder.execute(unknown, (thread_id, "", "c", "1", "empty", None))
    await saver._write(recorder, run_id)
    assert _counts(url, thread_id) == (0, 1, 0)

    _end_run(url, run_id)
    recorder = _Recorder()
    await recorder.execute(unknown, (thread_id, "", "c", "2", "empty", None))
    with pytest.raises(LeaseLost):
        await saver._write(recorder, run_id)
    assert _counts(url, thread_id) == (0, 1, 0)


async def test_writes_repeating_a_key_keep_the_last_as_one_by_one_upserts_would(setup: Setup) -> None:
    _, persistence, thread_id, running_run = setup
    graph = _graph(persistence)
    run_id = await running_run()
    config: Any = {"configurable": {"thread_id": thread_id, "run_id": run_id}}
    await graph.ainvoke({"items": [], "count": 0}, config)
    saver = persistence.checkpointer
    assert isinstance(saver, PostgresSaver)
    at = (await saver.aget_tuple({"configurable": {"thread_id": thread_id}})).config
    # Special channels (here ERROR) have a fixed index, so both writes share one key: LangGraph upserts them.
    await saver.aput_writes(
        {**at, "configurable": {**at["configurable"], "run_id": run_id}},
        [
            (ERROR, {"first": 1}),
            (ERROR, {"second": 2}),
        ],
        "task-1",
    )
    pending = (await saver.aget_tuple(at)).pending_writes or []
    assert [(task, channel, value) for task, channel, value in pending if task == "task-1"] == [
        ("task-1", ERROR, {"second": 2})
    ]


async def test_writes_of_one_loop_iteration_share_a_statement_each_behind_its_own_fence(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, persistence, thread_id, running_run = setup
    saver = persistence.checkpointer
    assert isinstance(saver, PostgresSaver)
    alone: list[str | None] = []  # the writes sent on their own
    write_one = saver._write_one

    async def counted(recorder: _Recorder, run_id: str | None) -> None:
        alone.append(run_id)
        await write_one(recorder, run_id)

    monkeypatch.setattr(saver, "_write_one", counted)
    live, ended = await running_run(), await running_run()
    _end_run(url, ended)
    blob = (
        "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, checkpoint_ns, channel, version) "
        "DO UPDATE SET type = EXCLUDED.type"
    )

    def recorded(version: str) -> _Recorder:
        return _Recorder([(blob, [(thread_id, "", "c", version, "empty", None)])])

    # Three writes made in the same iteration: two for the running run (one without a fence, as an API state update
    # is), one for the ended run. Only the ended run's is refused.
    results = await asyncio.gather(
        saver._write(recorded("1"), live),
        saver._write(recorded("2"), None),
        saver._write(recorded("3"), ended),
        return_exceptions=True,
    )
    assert list(results[:2]) == [None, None] and isinstance(results[2], LeaseLost)
    assert alone == []
    with psycopg.connect(url, autocommit=True) as conn:
        versions = conn.execute("SELECT version FROM checkpoint_blobs WHERE thread_id = %s ORDER BY 1", (thread_id,))
        assert [row[0] for row in versions.fetchall()] == ["1", "2"]
    # Two upserts of the same row by one run share the statement, the last kept, as one after the other would.
    same = await asyncio.gather(saver._write(recorded("4"), live), saver._write(recorded("4"), live))
    assert list(same) == [None, None] and alone == []
    assert _counts(url, thread_id) == (0, 3, 0)
    # By a run and an unfenced write (either may be refused without the other), they cannot share an INSERT: the
    # statement fails and each goes again on its own.
    apart = await asyncio.gather(saver._write(recorded("5"), live), saver._write(recorded("5"), None))
    assert list(apart) == [None, None] and alone == [live, None]
    assert _counts(url, thread_id) == (0, 4, 0)


async def test_a_runs_deferred_writes_are_committed_by_commit_pending_and_read_back_before(setup: Setup) -> None:
    url, persistence, thread_id, running_run = setup
    saver = persistence.checkpointer
    assert isinstance(saver, PostgresSaver)
    live, ended = await running_run(), await running_run()
    _end_run(url, ended)
    blob = (
        "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
    )
    deferred = DEFER_COMMITS.set(True)
    try:
        # A run's writes return once queued; the ended run's refused write raises nothing (its outcome is refused
        # by its lease token anyway).
        await saver._write(_Recorder([(blob, [(thread_id, "", "c", "1", "empty", None)])]), live)
        await saver._write(_Recorder([(blob, [(thread_id, "", "c", "2", "empty", None)])]), ended)
        assert _counts(url, thread_id) == (0, 0, 0)
    finally:
        DEFER_COMMITS.reset(deferred)
    await saver.commit_pending()
    assert _counts(url, thread_id) == (0, 1, 0)
    # A read waits for the writes queued before it: a graph reads its own writes.
    graph = _graph(persistence)
    config = {"configurable": {"thread_id": thread_id, "run_id": live}}
    deferred = DEFER_COMMITS.set(True)
    try:
        await graph.ainvoke({"items": ["a"], "count": 0}, config)
        assert (await graph.aget_state(config)).values == {"items": ["a", {"seen": 1}], "count": 1}
    finally:
        DEFER_COMMITS.reset(deferred)
    await saver.commit_pending()
    assert _counts(url, thread_id)[0] == 3


async def test_a_runs_deferred_writes_linger_and_go_in_one_statement_when_needed(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, persistence, thread_id, running_run = setup
    saver = persistence.checkpointer
    assert isinstance(saver, PostgresSaver)
    # However slow the machine, the writes wait for someone to need them (here: commit_pending).
    monkeypatch.setattr(postgres_saver, "LINGER", 3600.0)
    sent: list[int] = []
    execute = saver._execute_merged

    async def counted(sql: str, params: list[Any]) -> set[str]:
        sent.append(len(params))
        return await execute(sql, params)

    monkeypatch.setattr(saver, "_execute_merged", counted)
    run_id = await running_run()
    config = {"configurable": {"thread_id": thread_id, "run_id": run_id}}
    deferred = DEFER_COMMITS.set(True)
    try:
        await _graph(persistence).ainvoke({"items": ["a"], "count": 0}, config)
    finally:
        DEFER_COMMITS.reset(deferred)
    assert sent == [] and _counts(url, thread_id) == (0, 0, 0)
    await saver.commit_pending()
    assert len(sent) == 1  # the checkpoints and writes of the whole run, one statement
    assert _counts(url, thread_id)[0] == 3
    # A read needs them too: it does not wait for the linger either.
    _end_run(url, run_id)
    config = {"configurable": {"thread_id": thread_id, "run_id": await running_run()}}
    deferred = DEFER_COMMITS.set(True)
    try:
        await _graph(persistence).ainvoke({"items": ["b"], "count": 5}, config)
    finally:
        DEFER_COMMITS.reset(deferred)
    assert len(sent) == 1
    state = await _graph(persistence).aget_state({"configurable": {"thread_id": thread_id}})
    assert state.values["count"] == 6 and len(sent) == 2
