"""A write transaction is all or nothing, savepoints included: on SQLite, Python's sqlite3 module used to open a
transaction only before its first INSERT/UPDATE/DELETE, so a transaction whose first write was inside a savepoint
had that part committed by the savepoint's RELEASE (found as a backfill's first run without its fire-log row after
a kill -9, tests/e2e/test_cron_guards_crash.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from crongraph.ids import new_id
from crongraph.storage import threads
from crongraph.storage.database import Database
from tests.multireplica.rows import thread_row

NOW = datetime(2026, 5, 1, tzinfo=UTC)


class Boom(Exception):
    pass


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


def _row(thread_id: str) -> dict[str, object]:
    return {**thread_row(NOW), "thread_id": thread_id}


async def test_a_write_first_made_in_a_savepoint_is_rolled_back_with_its_transaction(db: Database) -> None:
    first, second = new_id(), new_id()
    with pytest.raises(Boom):
        async with db.write() as conn:
            async with conn.begin_nested():
                await threads.insert_new(conn, _row(first))
            await threads.insert_new(conn, _row(second))
            raise Boom
    async with db.read() as conn:
        assert await threads.get(conn, first) is None, "the savepoint's write outlived its transaction"
        assert await threads.get(conn, second) is None


async def test_a_released_savepoint_commits_with_its_transaction(db: Database) -> None:
    thread_id = new_id()
    async with db.write() as conn, conn.begin_nested():
        await threads.insert_new(conn, _row(thread_id))
    async with db.read() as conn:
        assert await threads.get(conn, thread_id) is not None
