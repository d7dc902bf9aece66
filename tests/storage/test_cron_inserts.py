"""Group commit of cron creates (services/cron_inserts.py) on real storage, both backends: concurrent creates are
written in a few transactions, each answered with its own row committed; a row that fails (a foreign key, the
per-owner limit) fails only its own create, and the limit stays exact under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from crongraph.errors import Conflict, NotFound
from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.runtime import Runtime
from crongraph.settings import Settings
from crongraph.storage import crons as cron_rows
from crongraph.storage.database import Database

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"


def runtime_factory(tmp_path: Path, database_urls: Callable[[], str | None]) -> Callable[..., Any]:
    started: list[Runtime] = []

    async def start(**settings: Any) -> Runtime:
        config = Settings(
            data_dir=tmp_path / f"data{len(started)}", config=CONFIG, database_url=database_urls(), **settings
        )
        runtime = Runtime(config, GraphRegistry.load(load(CONFIG)))
        await runtime.start()
        await runtime.scheduler.stop()  # nothing here is due; keep the writer to the creates
        started.append(runtime)
        return runtime

    start.started = started  # type: ignore[attr-defined]
    return start


@pytest.fixture
async def make_runtime(tmp_path: Path, database_urls: Callable[[], str | None]) -> AsyncIterator[Callable[..., Any]]:
    start = runtime_factory(tmp_path, database_urls)
    yield start
    for runtime in start.started:  # type: ignore[attr-defined]
        await runtime.stop()


def count_transactions(monkeypatch: pytest.MonkeyPatch, db: Database) -> list[int]:
    """Count the write transactions `db` opens from now on (one list item each)."""
    opened: list[int] = []
    write = db.write

    def counting() -> AbstractAsyncContextManager[Any]:
        opened.append(1)
        transaction: AbstractAsyncContextManager[Any] = write()
        return transaction

    monkeypatch.setattr(db, "write", counting)
    return opened


def body(i: int) -> dict[str, Any]:
    return {"assistant_id": "echo", "schedule": f"{i % 60} {i % 24} 1 1 *", "input": {"value": i}}


async def test_concurrent_creates_share_transactions_and_all_are_committed(
    make_runtime: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await make_runtime()
    opened = count_transactions(monkeypatch, rt.db)
    made = await asyncio.gather(*(rt.crons.create(None, body(i)) for i in range(60)))
    assert len({m["cron_id"] for m in made}) == 60
    assert 1 <= len(opened) <= 10, f"60 concurrent creates took {len(opened)} transactions"
    for made_row in made:
        async with rt.db.read() as conn:
            stored = await cron_rows.get(conn, made_row["cron_id"])
        assert stored is not None and stored["payload"]["input"] == made_row["payload"]["input"]
    assert await rt.crons.count({}) == 60
    # A lone create is written at once, in a transaction of its own.
    del opened[:]
    await rt.crons.create(None, body(99))
    assert len(opened) == 1


async def test_a_failing_row_fails_only_its_own_create(make_runtime: Callable[..., Any]) -> None:
    rt = await make_runtime()
    missing_thread = str(uuid4())
    results = await asyncio.gather(
        *(rt.crons.create(None, body(i)) for i in range(10)),
        rt.crons.create(missing_thread, body(10)),  # its thread does not exist: the foreign key refuses it
        *(rt.crons.create(None, body(i)) for i in range(11, 20)),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], NotFound) and missing_thread in str(failed[0])
    assert isinstance(results[10], NotFound)
    assert await rt.crons.count({}) == 19
    for made in results:
        if not isinstance(made, BaseException):
            async with rt.db.read() as conn:
                assert await cron_rows.get(conn, made["cron_id"]) is not None


async def test_the_owner_limit_stays_exact_under_concurrent_creates(make_runtime: Callable[..., Any]) -> None:
    rt = await make_runtime(max_crons_per_owner=5)
    results = await asyncio.gather(*(rt.crons.create(None, body(i)) for i in range(12)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 7 and all(isinstance(r, Conflict) for r in refused), refused
    async with rt.db.read() as conn:
        assert await cron_rows.active_count(conn, "") == 5
    # Paused crons are not active: they never count and are never refused.
    paused = await asyncio.gather(*(rt.crons.create(None, {**body(i), "enabled": False}) for i in range(3)))
    assert len(paused) == 3 and await rt.crons.count({}) == 8
