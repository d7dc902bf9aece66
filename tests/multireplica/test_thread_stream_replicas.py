"""The thread stream across replicas on one PostgreSQL database: a stream served by one replica follows, live, the
runs other replicas start and execute, and the thread's seq stays one gap-free order whoever writes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.thread_stream_support import collect_sse, command, root_terminal
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess

pytestmark = pytest.mark.postgres


@pytest.fixture
def replicas(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Three replicas on one fresh database, started one after the other."""
    url = postgres.create_database("thread_stream")
    started: list[ServerProcess] = []
    try:
        for _ in range(3):
            data = tmp_path_factory.mktemp("replica") / "data"
            started.append(ServerProcess(data_dir=data, database_url=url, env={"CRONGRAPH_LEASE_SECONDS": "2"}).start())
        yield [replica.url for replica in started]
    finally:
        for replica in started:
            replica.stop()


async def test_a_stream_on_one_replica_follows_runs_of_the_others(replicas: list[str]) -> None:
    first, second, third = replicas
    thread_id = str(uuid.uuid4())
    arrivals: list[tuple[float, dict[str, Any]]] = []

    def until_last_run_ends(event: dict[str, Any]) -> bool:
        arrivals.append((time.monotonic(), event))
        return root_terminal(event) and sum(1 for _, e in arrivals if root_terminal(e)) == 3

    reader = asyncio.create_task(
        collect_sse(third, thread_id, {"channels": ["custom", "lifecycle"]}, until=until_last_run_ends, wait=60)
    )
    await asyncio.sleep(0.5)
    ticker = {"assistant_id": "ticker", "input": {"steps": 5, "delay": 0.3}}
    # Queued one behind the other; each executes on whichever replica claims it (most likely not the third).
    for replica in (first, second, first):
        await command(replica, thread_id, "run.start", ticker)
    events = await reader
    assert [e["params"]["data"]["event"] for e in events if e["method"] == "lifecycle"] == ["running", "completed"] * 3
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})
    assert [e["params"]["data"]["n"] for e in events if e["method"] == "custom"] == [1, 2, 3, 4, 5] * 3
    # Live, not in bursts: each run's ticks arrived spread over its 1.5 s (the safety poll is 5 s).
    ticks = [at for at, e in arrivals if e["method"] == "custom"]
    for run in range(3):
        assert ticks[run * 5 + 4] - ticks[run * 5] > 0.8
