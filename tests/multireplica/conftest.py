"""Several `crongraph serve` processes on one PostgreSQL database (the harness's throwaway server).

`cluster(n, **env)` starts n replicas on a fresh database, in parallel (they also race through the migrations),
each with a short lease so that a killed replica's runs are reaped within seconds. `Cluster.sql` reads the
database directly: the tests count duplicates and misses from the tables themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.postgres import PostgresServer
from tests.support.server import FIXTURE_CONFIG, ServerProcess

LEASE_SECONDS = 2.0


@dataclass
class Cluster:
    database_url: str
    replicas: list[ServerProcess] = field(default_factory=list)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def scalar(self, query: str, *params: Any) -> Any:
        return self.sql(query, *params)[0][0]

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


async def busy(replica: ServerProcess) -> int:
    """Runs executing on this replica now (its /metrics)."""
    async with httpx.AsyncClient(base_url=replica.url) as http:
        return int((await http.get("/metrics", params={"format": "json"})).json()["workers"]["busy"])


async def executor_of(group: Cluster) -> ServerProcess:
    """The replica executing the one run in flight in the cluster."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        working = [r for r in group.replicas if await busy(r)]
        if len(working) == 1:
            return working[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no single replica took the run")


@pytest.fixture
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def start(
        n: int = 3, envs: list[dict[str, str]] | None = None, config: Path = FIXTURE_CONFIG, **env: str
    ) -> Cluster:
        """n replicas of the project `config` (a langgraph.json) with `env` (CRONGRAPH_* variables), plus envs[i]
        for replica i."""
        url = postgres.create_database("replicas")
        group = Cluster(url)
        env = {"CRONGRAPH_LEASE_SECONDS": str(LEASE_SECONDS), **env}
        for i in range(n):
            data = tmp_path_factory.mktemp("replica") / "data"
            own = {**env, **(envs[i] if envs else {})}
            group.replicas.append(ServerProcess(data_dir=data, config=config, database_url=url, env=own))
        started.append(group)
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda r: r.start(), group.replicas))
        return group

    yield start
    for group in started:
        group.stop()
