"""The queue's statements on SQLite walk their indexes instead of reading whole backlogs: asked through SQLite's
own EXPLAIN QUERY PLAN on the migrated schema, since a plan that reads every due run per claim passes every
functional test and only shows as a drain that slows down with its length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.dialects import sqlite

from crongraph.storage import runs
from crongraph.storage.database import Database

pytestmark = pytest.mark.sqlite_only


async def _plan(db: Database, statement: object, params: dict[str, object]) -> str:
    compiled = statement.compile(dialect=sqlite.dialect())  # type: ignore[attr-defined]
    values = compiled.construct_params(params)
    ordered = tuple(values[name] for name in compiled.positiontup)
    async with db.read() as conn:
        rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), ordered)).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.fixture
async def db(database_url: str) -> Database:
    database = Database(database_url)
    await database.migrate()
    return database


@pytest.mark.parametrize("interactive", [True, False])
async def test_a_claim_walks_the_queue_in_order(db: Database, interactive: bool) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    params = {"now": now, "limit": 8, "owner": "o", "token": "t", "lease_until": now + timedelta(seconds=30)}
    plan = await _plan(db, runs._claim_statement(interactive, "sqlite"), params)
    assert "ix_runs_queue" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # a sort means every due run was read first
    # The rows chosen are then updated by key, not found by scanning the pending runs for them.
    assert plan.splitlines()[0].startswith("SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)"), plan
    await db.dispose()


async def test_the_queue_questions_use_the_availability_index(db: Database) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for statement in (runs._ANY_CLAIMABLE, runs._NEXT_AVAILABLE):
        plan = await _plan(db, statement, {"now": now})
        assert "ix_runs_available" in plan, plan
    await db.dispose()


def test_the_claim_statement_is_built_once() -> None:
    # Building it costs more than SQLite takes to run it, and the queue claims after every run.
    assert runs._claim_statement(True, "sqlite") is runs._claim_statement(True, "sqlite")
    assert runs._claim_statement(False, "postgresql") is runs._claim_statement(False, "postgresql")
