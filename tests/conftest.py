"""Shared fixtures: real crongraph server processes and the official clients pointed at them.

`server` is one server for the whole session (fast); tests that restart, kill or reconfigure a server use
`server_factory`, which gives each its own data folder. The backend is SQLite unless `--backend=postgres` (then
the harness starts a PostgreSQL server for the session and gives every server its own fresh database) or
CRONGRAPH_TEST_DATABASE_URL names a PostgreSQL database (shared by every server). `make test` runs the API, e2e
and storage suites once per backend. Tests that only make sense on one backend say so with
`@pytest.mark.sqlite_only` or `@pytest.mark.postgres` (the latter start their own PostgreSQL when needed).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import PostgresServer
from tests.support.sdk import sdk_client, sync_sdk_client
from tests.support.server import ServerProcess


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the database every test server uses (postgres: a throwaway server started by the harness)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"crongraph backend: {config.getoption('--backend')}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: only meaningful on the embedded SQLite backend")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--backend") != "postgres":
        return
    skip = pytest.mark.skip(reason="SQLite only")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--backend"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (started on first use)."""
    pg = PostgresServer().start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def database_urls(backend: str, request: pytest.FixtureRequest) -> Callable[[], str | None]:
    """Gives a database URL per call: a fresh PostgreSQL database, or None for SQLite in the data folder."""
    explicit = os.environ.get("CRONGRAPH_TEST_DATABASE_URL") or None
    if explicit or backend != "postgres":
        return lambda: explicit
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.create_database


@pytest.fixture
def database_url(database_urls: Callable[[], str | None], tmp_path: Path) -> str:
    """A fresh, empty database for one test, on the chosen backend."""
    return database_urls() or f"sqlite+aiosqlite:///{tmp_path / 'crongraph.db'}"


@pytest.fixture(scope="session")
def server_factory(
    tmp_path_factory: pytest.TempPathFactory, database_urls: Callable[[], str | None]
) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**kwargs: Any) -> ServerProcess:
        data = tmp_path_factory.mktemp("server") / "data"
        if "database_url" not in kwargs:
            kwargs["database_url"] = database_urls()
        proc = ServerProcess(data_dir=data, **kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory()


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[Any]:
    async with sdk_client(server.url) as c:
        yield c


@pytest.fixture
def sync_client(server: ServerProcess) -> Iterator[Any]:
    with sync_sdk_client(server.url) as c:
        yield c


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path
