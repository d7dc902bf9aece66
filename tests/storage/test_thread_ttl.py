"""Threads with a ttl are deleted once it runs out (counted from their last update); others are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crongraph.clock import FakeClock
from crongraph.errors import NotFound
from crongraph.graphs.config import load
from crongraph.graphs.registry import GraphRegistry
from crongraph.runtime import Runtime
from crongraph.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "langgraph.json"


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
