"""Threads with a ttl are deleted once it runs out (counted from their last update); others are kept."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select

from crongraph.clock import FakeClock
from crongraph.errors import NotFound
from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.runtime import Runtime
from crongraph.services import thread_sweeper
from crongraph.settings import Settings
from crongraph.storage.bulk import insert_rows
from crongraph.storage.tables import threads

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"
MIGRATIONS = Path(thread_sweeper.__file__).resolve().parents[1] / "storage" / "migrations"


@pytest.fixture
async def rt(tmp_path: Path, database_urls: Callable[[], str | None]) -> AsyncIterator[Runtime]:
    settings = Settings(data_dir=tmp_path / "data", config=CONFIG, scheduler=False, database_url=database_urls())
    runtime = Runtime(settings, GraphRegistry.load(load(CONFIG)), clock=FakeClock(datetime(2026, 5, 1, tzinfo=UTC)))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_expired_threads_are_deleted_and_the_rest_kept(rt: Runtime) -> None:
    assert isinstance(rt.clock, FakeClock)
    short = await rt.threads.create({"ttl": {"ttl": 1, "strategy": "delete"}})
    long = await rt.threads.create({"ttl": {"ttl": 10, "strategy": "delete"}})
    forever = await rt.threads.create({})
    assert await rt.thread_sweeper.sweep() == 0
    await rt.clock.advance(timedelta(minutes=2))
    assert await rt.thread_sweeper.sweep() == 1
    with pytest.raises(NotFound):
        await rt.threads.get(short["thread_id"])
    assert (await rt.threads.get(long["thread_id"]))["thread_id"] == long["thread_id"]
    await rt.clock.advance(timedelta(minutes=9))
    await rt.threads.update(long["thread_id"], {"metadata": {"touched": True}})  # an update restarts the clock
    assert await rt.thread_sweeper.sweep() == 0
    await rt.clock.advance(timedelta(minutes=11))
    assert await rt.thread_sweeper.sweep() == 1
    assert (await rt.threads.get(forever["thread_id"]))["thread_id"] == forever["thread_id"]


async def test_a_sweep_reads_in_pages_and_stops_at_its_limit(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(rt.clock, FakeClock)
    monkeypatch.setattr(thread_sweeper, "PAGE", 2)  # several pages out of a handful of threads
    pruned = [await rt.threads.create({"ttl": {"ttl": 1, "strategy": "keep_latest"}}) for _ in range(3)]
    await rt.clock.advance(timedelta(seconds=1))
    deleted = [await rt.threads.create({"ttl": {"ttl": 1, "strategy": "delete"}}) for _ in range(4)]
    young = await rt.threads.create({"ttl": {"ttl": 60, "strategy": "delete"}})
    await rt.clock.advance(timedelta(minutes=2))
    rt.thread_sweeper._limit = 5
    # Oldest first: the three pruned, then two of the four deleted; the pruned ones are not pruned again.
    assert await rt.thread_sweeper.sweep() == 5
    assert await rt.thread_sweeper.sweep() == 2
    assert await rt.thread_sweeper.sweep() == 0
    for thread in deleted:
        with pytest.raises(NotFound):
            await rt.threads.get(thread["thread_id"])
    for thread in [*pruned, young]:
        assert (await rt.threads.get(thread["thread_id"]))["thread_id"] == thread["thread_id"]


async def test_threads_without_a_ttl_are_not_in_the_sweepers_index(rt: Runtime) -> None:
    await rt.threads.create({})
    with_ttl = await rt.threads.create({"ttl": {"ttl": 5, "strategy": "delete"}})
    async with rt.db.read() as conn:
        rows = (await conn.execute(select(threads.c.thread_id).where(threads.c.ttl.is_not(None)))).all()
    assert [r.thread_id for r in rows] == [with_ttl["thread_id"]]


def test_the_migration_turns_json_null_ttls_into_sql_null(tmp_path: Path) -> None:
    # A database written before 0006 stored a thread without a ttl as the JSON text `null`.
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")

    def upgrade(to: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, to)

    upgrade("0005_cron_guards")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        now = "2026-05-01 00:00:00.000000"
        for thread_id, ttl in (("a", "null"), ("b", '{"ttl": 1, "strategy": "delete"}')):
            conn.execute(
                "INSERT INTO threads (thread_id, status, metadata, config, interrupts, ttl, created_at, updated_at,"
                " state_updated_at) VALUES (?, 'idle', '{}', '{}', '{}', ?, ?, ?, ?)",
                (thread_id, ttl, now, now, now),
            )
    upgrade("head")
    engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT thread_id, ttl FROM threads ORDER BY thread_id").fetchall() == [
            ("a", None),
            ("b", '{"ttl": 1, "strategy": "delete"}'),
        ]
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT thread_id FROM threads WHERE ttl IS NOT NULL ORDER BY updated_at"
        ).fetchall()
    assert "ix_threads_ttl" in str(plan)


async def test_threads_inserted_in_bulk_store_no_ttl_as_null(rt: Runtime) -> None:
    # The scheduler inserts threads through storage/bulk.py, which has its own JSON path on PostgreSQL.
    rows = [rt.threads.new_row(f"bulk-{i}", {}, None) for i in range(3)]
    rows.append(rt.threads.new_row("bulk-ttl", {}, {"ttl": 5, "strategy": "delete"}))
    async with rt.db.write() as conn:
        await insert_rows(conn, threads, rows, rt.db.dialect)
    async with rt.db.read() as conn:
        found = (await conn.execute(select(threads.c.thread_id, threads.c.ttl).where(threads.c.ttl.is_not(None)))).all()
    assert [(r.thread_id, r.ttl) for r in found] == [("bulk-ttl", {"ttl": 5, "strategy": "delete"})]
