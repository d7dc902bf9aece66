"""Threads: the row that mirrors a thread's status and latest values. The graph state itself lives in the
LangGraph checkpointer; this row is what search, status and the run queue need without reading checkpoints."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage import common
from crongraph.storage.common import Record
from crongraph.storage.filters import Match, json_contains
from crongraph.storage.tables import assistants, runs, threads

# Prebuilt: a thread is read on nearly every request, and building a statement costs more than running it.
_GET = select(threads).where(threads.c.thread_id == bindparam("thread_id"))
_GET_FOR_UPDATE = _GET.with_for_update()


async def get(conn: AsyncConnection, thread_id: str, visible: Match | None = None) -> Record | None:
    """The thread; with `visible` (an auth filter), only when its metadata matches (else None, as if absent)."""
    query = _GET if visible is None else _GET.where(visible.on(threads.c.metadata))
    return common.record((await conn.execute(query, {"thread_id": thread_id})).first())


async def get_for_update(
    conn: AsyncConnection, thread_id: str, dialect: str, visible: Match | None = None
) -> Record | None:
    """Read a thread and hold its row lock until the transaction ends (PostgreSQL; SQLite has one writer)."""
    query = _GET_FOR_UPDATE if dialect == "postgresql" else _GET
    if visible is not None:
        query = query.where(visible.on(threads.c.metadata))
    return common.record((await conn.execute(query, {"thread_id": thread_id})).first())


_LOCK = select(threads.c.thread_id).where(threads.c.thread_id == bindparam("thread_id")).with_for_update()


async def lock(conn: AsyncConnection, thread_id: str, dialect: str) -> None:
    """Hold the thread's row lock until the transaction ends, reading nothing (PostgreSQL; SQLite has one writer).
    A statement after it sees every run that a transaction holding the lock before it committed: a statement that
    waits for the lock itself keeps the snapshot it started with for everything but the locked row."""
    if dialect == "postgresql":
        await conn.execute(_LOCK, {"thread_id": thread_id})


_INSERT = insert(threads)


async def insert_new(conn: AsyncConnection, values: Record) -> Record:
    await conn.execute(_INSERT, values)
    return values


@functools.cache
def _insert_unless_exists_statement(dialect: str) -> Any:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        dialect_insert(threads)
        .on_conflict_do_nothing(index_elements=[threads.c.thread_id])
        .returning(threads.c.thread_id)
    )


async def insert_unless_exists(conn: AsyncConnection, values: Record, dialect: str) -> bool:
    """Insert the thread unless one with its id exists, in one statement (alone on an autocommit connection it is
    one round trip, where a read, the insert, BEGIN and COMMIT were four); whether it was inserted."""
    return (await conn.execute(_insert_unless_exists_statement(dialect), values)).first() is not None


async def insert_many(conn: AsyncConnection, rows: list[Record]) -> None:
    if rows:
        await conn.execute(_INSERT, rows)


async def metadata_many(conn: AsyncConnection, thread_ids: list[str]) -> dict[str, Record]:
    """The id and metadata of each thread that exists (not its values: the scheduler's fires need only these, and
    decoding a hundred graph states per batch would cost more than the batch)."""
    if not thread_ids:
        return {}
    query = select(threads.c.thread_id, threads.c.metadata).where(threads.c.thread_id.in_(thread_ids))
    return {r["thread_id"]: r for r in common.records((await conn.execute(query)).all())}


async def mark_busy(conn: AsyncConnection, thread_ids: list[str], now: datetime) -> None:
    if thread_ids:
        await conn.execute(
            update(threads).where(threads.c.thread_id.in_(thread_ids)).values(status="busy", updated_at=now)
        )


async def set_metadata_many(conn: AsyncConnection, changes: dict[str, dict[str, Any]]) -> None:
    """Write many threads' metadata in one executemany (the scheduler naming the graph on first fires)."""
    if changes:
        statement = common.update_by_key(threads, "thread_id", frozenset({"metadata"}))
        await conn.execute(statement, [{"k_key": tid, "v_metadata": meta} for tid, meta in changes.items()])


async def update_fields(conn: AsyncConnection, thread_id: str, **values: Any) -> None:
    await common.update_fields(conn, threads, "thread_id", thread_id, values)


# Whether the thread has another run pending or running, asked inside the statement that settles the thread after a
# run ended: one statement where a read and a write were.
_HAS_INFLIGHT = (
    select(runs.c.run_id)
    .where(runs.c.thread_id == threads.c.thread_id, runs.c.status.in_(("pending", "running")))
    .exists()
)


@functools.cache
def _settle_statement(columns: frozenset[str]) -> Any:
    assignments: dict[str, Any] = {c: bindparam(f"v_{c}", type_=threads.c[c].type) for c in columns}
    assignments["status"] = case((_HAS_INFLIGHT, "busy"), else_=bindparam("v_status", type_=threads.c.status.type))
    return update(threads).where(threads.c.thread_id == bindparam("k_key")).values(assignments)


async def settle_after_run(conn: AsyncConnection, thread_id: str, status: str, **values: Any) -> None:
    """After one of its runs ended: set the thread's `status` (idle, error, interrupted), or `busy` when another of
    its runs is pending or running, and the other columns in `values` (updated_at, values, error, ...)."""
    statement = _settle_statement(frozenset(values))
    params = {"k_key": thread_id, "v_status": status, **{f"v_{c}": v for c, v in values.items()}}
    await conn.execute(statement, params)


_DELETE_IF_NO_INFLIGHT = delete(threads).where(threads.c.thread_id == bindparam("k_key"), ~_HAS_INFLIGHT)


async def delete_if_no_inflight(conn: AsyncConnection, thread_id: str) -> bool:
    """Delete the thread unless one of its runs is pending or running (a temporary thread after its run ended);
    whether it was deleted."""
    return (await conn.execute(_DELETE_IF_NO_INFLIGHT, {"k_key": thread_id})).rowcount > 0


async def delete_one(conn: AsyncConnection, thread_id: str, visible: Match | None = None) -> bool:
    statement = delete(threads).where(threads.c.thread_id == thread_id)
    if visible is not None:
        statement = statement.where(visible.on(threads.c.metadata))
    return (await conn.execute(statement)).rowcount > 0


def _search_query(ids: list[str] | None, status: str | None, visible: Match | None = None) -> Any:
    query = select(threads) if visible is None else select(threads).where(visible.on(threads.c.metadata))
    if ids:
        query = query.where(threads.c.thread_id.in_(ids))
    if status:
        query = query.where(threads.c.status == status)
    return query


def _filters(dialect: str, metadata: dict[str, Any] | None, values: dict[str, Any] | None) -> Any:
    # Metadata and values filters are combined into one containment check on a synthetic document.
    return json_contains(threads.c.metadata, metadata, dialect), json_contains(threads.c["values"], values, dialect)


async def search(
    conn: AsyncConnection,
    *,
    dialect: str,
    metadata: dict[str, Any] | None,
    values: dict[str, Any] | None,
    ids: list[str] | None,
    status: str | None,
    limit: int,
    offset: int,
    sort_by: str,
    sort_order: str,
    visible: Match | None = None,
) -> list[Record]:
    meta, vals = _filters(dialect, metadata, values)
    query = common.ordered(_search_query(ids, status, visible), threads, sort_by, sort_order, "thread_id")
    query = query.where(vals.clause)
    if vals.exact:
        return await common.page(conn, query, meta, "metadata", metadata, limit, offset)
    everything = await common.page(conn, query, meta, "metadata", metadata, 10**9, 0)
    matching = [r for r in everything if common.contains(r["values"], values)]
    return matching[offset : offset + limit + 1]


async def count(
    conn: AsyncConnection,
    *,
    dialect: str,
    metadata: dict[str, Any] | None,
    values: dict[str, Any] | None,
    status: str | None,
    visible: Match | None = None,
) -> int:
    meta, vals = _filters(dialect, metadata, values)
    query = _search_query(None, status, visible).where(vals.clause)
    if vals.exact:
        return await common.count(conn, query, meta, "metadata", metadata)
    rows = common.records((await conn.execute(query.where(meta.clause))).all())
    return sum(1 for r in rows if common.contains(r["metadata"], metadata) and common.contains(r["values"], values))


@functools.cache
def _mark_busy_statement(dialect: str) -> Any:
    names = bindparam("v_names", type_=threads.c.metadata.type)
    # {**metadata, **names}, in SQL: the run's graph and assistant named in the thread's metadata.
    merged = (
        threads.c.metadata.op("||")(names) if dialect == "postgresql" else func.json_patch(threads.c.metadata, names)
    )
    return (
        update(threads)
        .where(threads.c.thread_id == bindparam("k_key"))
        .values(status="busy", updated_at=bindparam("v_now", type_=threads.c.updated_at.type), metadata=merged)
        .returning(*threads.c)
    )


async def mark_busy_for_run(
    conn: AsyncConnection, thread_id: str, names: dict[str, str], now: datetime, dialect: str, visible: Match | None
) -> Record | None:
    """A run is being created on the thread: mark it busy and merge `names` (graph_id, assistant_id) into its
    metadata, in one statement that also takes the row's lock until the transaction ends (where a locking read and
    an update were); the thread as it now is, or None when it does not exist (or `visible` hides it)."""
    statement = _mark_busy_statement(dialect)
    if visible is not None:
        statement = statement.where(visible.on(threads.c.metadata))
    params = {"k_key": thread_id, "v_names": names, "v_now": now}
    return common.record((await conn.execute(statement, params)).first())


def _busy_with_assistant_statement(visible: Match | None) -> Any:
    # PostgreSQL: the assistant's read and mark_busy_for_run in one statement. The thread is updated (and locked)
    # only when the assistant exists; its metadata names the assistant's graph as read in the same statement.
    found = select(assistants).where(assistants.c.assistant_id == bindparam("a_id")).cte("assistant")
    named = select(func.jsonb_build_object("graph_id", found.c.graph_id, "assistant_id", found.c.assistant_id))
    busy = (
        update(threads)
        .where(threads.c.thread_id == bindparam("k_key"), select(found.c.assistant_id).exists())
        .values(
            status="busy",
            updated_at=bindparam("v_now", type_=threads.c.updated_at.type),
            metadata=threads.c.metadata.op("||")(named.scalar_subquery()),
        )
    )
    if visible is not None:
        busy = busy.where(visible.on(threads.c.metadata))
    marked = busy.returning(*threads.c).cte("marked")
    columns = [c.label(f"a_{c.name}") for c in found.c] + [c.label(f"t_{c.name}") for c in marked.c]
    return select(*columns).select_from(found.outerjoin(marked, true()))


_BUSY_WITH_ASSISTANT = _busy_with_assistant_statement(None)


async def mark_busy_with_assistant(
    conn: AsyncConnection, thread_id: str, assistant_id: str, now: datetime, visible: Match | None
) -> tuple[Record | None, Record | None]:
    """PostgreSQL only: read the assistant and, when it exists, do what mark_busy_for_run does with its names
    (graph_id, assistant_id), in one statement where two were; (the assistant or None, the thread as it now is or
    None when it does not exist, `visible` hides it, or the assistant does not exist)."""
    statement = _BUSY_WITH_ASSISTANT if visible is None else _busy_with_assistant_statement(visible)
    row = common.record(
        (await conn.execute(statement, {"a_id": assistant_id, "k_key": thread_id, "v_now": now})).first()
    )
    if row is None:
        return None, None
    assistant = {k[2:]: v for k, v in row.items() if k.startswith("a_")}
    thread = {k[2:]: v for k, v in row.items() if k.startswith("t_")}
    return assistant, (thread if thread["thread_id"] is not None else None)
