"""LangGraph's own savers for thread state and the store, opened for the chosen backend.

SQLite: each saver gets its own file beside crongraph.db (checkpoints.db, store.db), so that graph state writes
never queue behind crongraph's single writer connection; checkpoints are written inline (graphs/sqlite_saver.py).
PostgreSQL: both live in the one database.

The store takes langgraph.json's `store` section as LangGraph's stores take it (`store_options`): `index` turns
on semantic search (SQLite through the sqlite-vec extension, PostgreSQL through pgvector), `ttl` gives items a
default time-to-live and sets the sweep that deletes expired ones. The sweep always runs, so that a `ttl` given
with one put is honoured without a `store.ttl` section; items are deleted by the sweep, not hidden before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from crongraph.graphs.embeddings import EmbeddingsError, resolve_embeddings
from crongraph.graphs.sqlite_saver import InlineSqliteSaver
from crongraph.graphs.sqlite_store import UpsertingSqliteStore

# The sweep period when langgraph.json gives none (LangGraph's stores default to 5 minutes).
DEFAULT_SWEEP_MINUTES = 5.0


@dataclass(frozen=True)
class StoreOptions:
    """langgraph.json's `store`, in the shapes LangGraph's stores take. `index`: {"dims": int, "embed": Embeddings,
    "fields": list of JSON paths} or None (no semantic search). `ttl`: {"refresh_on_read": bool, "default_ttl":
    minutes or None, "sweep_interval_minutes": minutes}."""

    index: dict[str, Any] | None = None
    ttl: dict[str, Any] | None = None


def _section(value: Any) -> dict[str, Any]:
    """A config section as a dict: a pydantic model (crongraph.config's), a mapping, or None."""
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        return dict(value.model_dump())
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"expected a mapping or a pydantic model, got {type(value).__name__}")


def store_options(store: Any, config_path: Path | None = None, *, sweep_minutes: float | None = None) -> StoreOptions:
    """Resolve langgraph.json's `store` section (`index`: embed, dims, fields; `ttl`: refresh_on_read, default_ttl,
    sweep_interval_minutes; crongraph.config's model, a mapping or None) once, at startup. `config_path` is the
    langgraph.json it came from (relative `embed` paths start in its folder); `sweep_minutes` is the sweep period
    when `ttl.sweep_interval_minutes` is not given. Raises EmbeddingsError (a ConfigError whose one-line message
    names the file and `store.index.embed` or `store.index.dims`)."""
    section = _section(store)
    index = _section(section.get("index")) or None
    resolved: dict[str, Any] | None = None
    if index is not None:
        base_dir = config_path.parent if config_path else None
        try:
            embeddings = resolve_embeddings(index.get("embed"), index.get("dims"), base_dir)  # type: ignore[arg-type]
        except EmbeddingsError as exc:
            raise EmbeddingsError(f"{config_path}: {exc}" if config_path else str(exc)) from None
        resolved = {"dims": index["dims"], "embed": embeddings, "fields": list(index.get("fields") or ["$"])}
    ttl = _section(section.get("ttl"))
    refresh = ttl.get("refresh_on_read")
    return StoreOptions(
        index=resolved,
        ttl={
            # The reference's default: reads refresh an item's ttl unless a request says otherwise.
            "refresh_on_read": True if refresh is None else bool(refresh),
            "default_ttl": ttl.get("default_ttl"),
            "sweep_interval_minutes": float(
                ttl.get("sweep_interval_minutes") or sweep_minutes or DEFAULT_SWEEP_MINUTES
            ),
        },
    )


@dataclass
class Persistence:
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    _stack: AsyncExitStack

    async def close(self) -> None:
        await self._stack.aclose()


def _extension_driver() -> Any:
    """A DB-API sqlite3 module that can load extensions (sqlite-vec, for the index). The standard library's can
    unless Python was built without it (pyenv's default build, for one); then pysqlite3-binary's, a dependency on
    Linux."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2
    except ImportError:
        raise RuntimeError(
            "store.index needs SQLite extensions (sqlite-vec), and this Python's sqlite3 cannot load them: "
            "pip install pysqlite3-binary, or use a Python built with --enable-loadable-sqlite-extensions"
        ) from None
    return dbapi2


async def _sqlite_connection(
    stack: AsyncExitStack, path: Path, *, autocommit: bool, extensions: bool = False
) -> aiosqlite.Connection:
    driver = _extension_driver() if extensions else sqlite3
    conn = await aiosqlite.Connection(lambda: driver.connect(str(path), isolation_level=None), iter_chunk_size=64)
    stack.push_async_callback(conn.close)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=30000")
    # The checkpointer relies on implicit transactions and commits itself; the store issues its own BEGIN/COMMIT
    # and fails ("cannot start a transaction within a transaction") unless the connection is in autocommit mode.
    if not autocommit:
        conn.isolation_level = ""  # type: ignore[assignment]  # "" is sqlite3's implicit BEGIN, not in the stub
    return conn


async def _start_sweeper(stack: AsyncExitStack, store: Any) -> None:
    await store.start_ttl_sweeper()
    # Stopped before the connections close (the stack unwinds last in, first out).
    stack.push_async_callback(store.stop_ttl_sweeper)


async def open_sqlite(data_dir: Path, options: StoreOptions | None = None) -> Persistence:
    options = options or store_options(None)
    stack = AsyncExitStack()
    try:
        saver = InlineSqliteSaver.open(data_dir / "checkpoints.db")
        stack.callback(saver.close)
        store_db = data_dir / "store.db"
        store_conn = await _sqlite_connection(stack, store_db, autocommit=True, extensions=bool(options.index))
        # An item deleted (by a client or the ttl sweep) takes its vectors with it, as on PostgreSQL.
        await store_conn.execute("PRAGMA foreign_keys=ON")
        store = UpsertingSqliteStore(
            store_conn,
            index=options.index,
            ttl=options.ttl,
        )
        await store.setup()
        await _start_sweeper(stack, store)
    except BaseException:
        await stack.aclose()
        raise
    return Persistence(saver, store, stack)


async def open_postgres(url: str, options: StoreOptions | None = None) -> Persistence:
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from crongraph.graphs.postgres_saver import PostgresSaver
    from crongraph.graphs.postgres_store import VectorSyncedPostgresStore

    options = options or store_options(None)

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    stack = AsyncExitStack()
    try:
        pool = AsyncConnectionPool(
            plain,
            min_size=1,
            # Per replica; with crongraph's own pool and the notifier, a replica holds at most ~45 connections.
            max_size=12,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await pool.open()
        stack.push_async_callback(pool.close)
        saver = PostgresSaver(pool)  # type: ignore[arg-type]
        # Before the pool closes (the stack unwinds last in, first out): the writes still lingering are sent.
        stack.push_async_callback(saver.wait_sent)
        # With an index, the store's own migrations run CREATE EXTENSION vector (pgvector must be installed).
        store = VectorSyncedPostgresStore(pool, index=options.index, ttl=options.ttl)  # type: ignore[arg-type]
        # Replicas may start together: serialize the savers' own migrations. Not by waiting in pg_advisory_lock:
        # the holder's migrations run CREATE INDEX CONCURRENTLY, which waits for every open transaction, the
        # waiting statement included, while the waiter waits for the holder (a deadlock PostgreSQL cannot see,
        # since it goes through this process). Polling with short statements never holds a transaction open.
        async with pool.connection() as conn:
            while True:
                row: Any = await (await conn.execute("SELECT pg_try_advisory_lock(774202) AS ok")).fetchone()
                if row and row["ok"]:  # a dict: the pool's row factory
                    break
                await asyncio.sleep(0.05)
            try:
                await saver.setup()
                await store.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(774202)")
        await _start_sweeper(stack, store)
    except BaseException:
        await stack.aclose()
        raise
    return Persistence(saver, store, stack)
