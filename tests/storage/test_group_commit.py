"""Group commit (queue/group_commit.py): writes submitted together share one transaction, and one that fails costs
the others nothing: it alone gets its error, the rest are committed exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.ids import new_id
from crongraph.queue.group_commit import GroupCommit
from crongraph.storage import threads
from crongraph.storage.database import Database
from tests.multireplica.rows import thread_row

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


def _insert(thread_id: str, seen: list[Any]) -> Any:
    async def body(conn: AsyncConnection) -> str:
        seen.append(conn)
        # A primary key: were a body's write committed twice, or kept from a rolled-back attempt, this would fail.
        await threads.insert_new(conn, {**thread_row(NOW), "thread_id": thread_id})
        return thread_id

    return body


async def _stored(db: Database, ids: list[str]) -> set[str]:
    async with db.read() as conn:
        return {tid for tid in ids if await threads.get(conn, tid) is not None}


async def test_writes_submitted_together_share_one_transaction(db: Database) -> None:
    committed: list[int] = []
    group = GroupCommit(db, before_commit=lambda: committed.append(1))
    seen: list[Any] = []
    ids = [new_id() for _ in range(5)]
    assert await asyncio.gather(*(group.run(_insert(tid, seen)) for tid in ids)) == ids
    assert len({id(conn) for conn in seen}) == 1, "the five writes ran in more than one transaction"
    assert committed == [1]  # the checkpointer was committed once, before them
    assert await _stored(db, ids) == set(ids)


async def test_a_failing_write_fails_alone(db: Database) -> None:
    group = GroupCommit(db)
    seen: list[Any] = []
    ids = [new_id() for _ in range(4)]

    async def failing(conn: AsyncConnection) -> None:
        seen.append(conn)
        raise LookupError("this run's write fails")

    bodies = [_insert(ids[0], seen), _insert(ids[1], seen), failing, _insert(ids[2], seen), _insert(ids[3], seen)]
    results = await asyncio.gather(*(group.run(b) for b in bodies), return_exceptions=True)
    assert isinstance(results[2], LookupError)
    assert [r for i, r in enumerate(results) if i != 2] == ids
    # Each write committed once: the shared attempt was rolled back whole, then each ran on its own.
    assert await _stored(db, ids) == set(ids)


async def test_writes_of_later_iterations_form_their_own_group(db: Database) -> None:
    group = GroupCommit(db)
    seen: list[Any] = []
    first, second = new_id(), new_id()
    assert await group.run(_insert(first, seen)) == first
    assert await group.run(_insert(second, seen)) == second
    assert await _stored(db, [first, second]) == {first, second}


async def test_a_write_alone_goes_as_its_one_statement_form_on_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the one-statement form is used on PostgreSQL only")
    flushed: list[str] = []

    async def before() -> None:  # an awaitable before_commit (the PostgreSQL checkpointer's)
        flushed.append("checkpoints")

    group = GroupCommit(db, before_commit=before)
    seen: list[Any] = []

    def alone(thread_id: str, write: bool) -> Any:
        async def statement(conn: AsyncConnection) -> str | None:
            flushed.append("alone")
            if not write:
                return None  # wrote nothing: the body then runs in a transaction
            inserted: str = await _insert(thread_id, seen)(conn)
            return inserted

        return statement

    one, two, three = new_id(), new_id(), new_id()
    assert await group.run(_insert(one, []), alone(one, True)) == one
    assert flushed == ["checkpoints", "alone"] and len(seen) == 1
    assert await group.run(_insert(two, seen), alone(two, False)) == two
    assert flushed[2:] == ["checkpoints", "alone"] and len(seen) == 2  # its body ran too, once
    # Submitted beside a write without one, it still goes as its one statement; the other in a transaction.
    flushed.clear()
    four = new_id()
    got = await asyncio.gather(group.run(_insert(three, []), alone(three, True)), group.run(_insert(four, [])))
    assert list(got) == [three, four] and flushed == ["checkpoints", "alone"]
    assert await _stored(db, [one, two, three, four]) == {one, two, three, four}


async def test_writes_submitted_together_go_as_their_one_statement_forms_on_postgresql(db: Database) -> None:
    # k outcomes ending together: k statements on one connection, not BEGIN, 2k statements and COMMIT. One whose
    # statement wrote nothing or raised is written by its body in a transaction, and costs the others nothing.
    if db.dialect != "postgresql":
        pytest.skip("the one-statement form is used on PostgreSQL only")
    group = GroupCommit(db)
    statements: list[tuple[str, Any]] = []
    bodies: list[str] = []

    def body(thread_id: str) -> Any:
        async def write(conn: AsyncConnection) -> str:
            bodies.append(thread_id)
            inserted: str = await _insert(thread_id, [])(conn)
            return inserted

        return write

    def alone(thread_id: str, outcome: str) -> Any:
        async def statement(conn: AsyncConnection) -> str | None:
            statements.append((thread_id, conn))
            if outcome == "raises":
                raise LookupError("this statement failed")
            if outcome == "nothing":
                return None
            inserted: str = await _insert(thread_id, [])(conn)
            return inserted

        return statement

    ids = [new_id() for _ in range(5)]
    outcomes = ["writes", "nothing", "writes", "raises", "writes"]
    keys = ["k4", "k0", "k3", "k1", "k2"]
    got = await asyncio.gather(
        *(group.run(body(tid), alone(tid, o), key=k) for tid, o, k in zip(ids, outcomes, keys, strict=True))
    )
    assert got == ids
    assert [tid for tid, _ in statements] == [ids[1], ids[3], ids[4], ids[2], ids[0]]  # in key order
    # One connection, then a fresh one after the statement that raised.
    assert statements[0][1] is statements[1][1] and statements[2][1] is statements[4][1]
    assert sorted(bodies) == sorted([ids[1], ids[3]])  # only those whose statement wrote nothing ran their body
    assert await _stored(db, ids) == set(ids)


async def test_a_shared_transaction_runs_keyed_writes_in_key_order(db: Database) -> None:
    # Lease renewal locks runs in run id order (storage/runs.renew_many); grouped outcomes, keyed by run id, take
    # them in the same order, so the two cannot deadlock.
    group = GroupCommit(db)
    order: list[str] = []

    def body(name: str) -> Any:
        async def write(conn: AsyncConnection) -> str:
            order.append(name)
            return name

        return write

    submitted = [("c", "k3"), ("a", "k1"), ("free", None), ("b", "k2")]
    results = await asyncio.gather(*(group.run(body(name), key=key) for name, key in submitted))
    assert results == ["c", "a", "free", "b"]  # each caller gets its own result
    assert order == ["free", "a", "b", "c"]
