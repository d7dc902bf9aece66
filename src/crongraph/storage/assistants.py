"""Assistants and their versions. Every change to an assistant writes a new version row; the assistant row is
the version currently in use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage import common
from crongraph.storage.common import Record
from crongraph.storage.filters import Match, json_contains
from crongraph.storage.tables import assistant_versions, assistants

_VERSIONED = ("graph_id", "name", "description", "config", "context", "metadata")


# Built once: every run reads its assistant, and building the statement cost more than running it.
_GET = select(assistants).where(assistants.c.assistant_id == bindparam("assistant_id"))


async def get(conn: AsyncConnection, assistant_id: str, visible: Match | None = None) -> Record | None:
    """The assistant; with `visible` (an auth filter), only when its metadata matches."""
    query = _GET if visible is None else _GET.where(visible.on(assistants.c.metadata))
    return common.record((await conn.execute(query, {"assistant_id": assistant_id})).first())


async def insert_new(conn: AsyncConnection, values: Record) -> Record:
    await conn.execute(insert(assistants).values(**values))
    await conn.execute(
        insert(assistant_versions).values(
            assistant_id=values["assistant_id"],
            version=values["version"],
            created_at=values["created_at"],
            **{k: values[k] for k in _VERSIONED},
        )
    )
    return values


async def insert_if_absent(conn: AsyncConnection, values: Record) -> bool:
    """Insert unless the id exists; True when inserted. Used for system assistants at every start, where
    replicas starting together race to insert the same rows: the loser's insert fails on the key, harmlessly."""
    if await get(conn, values["assistant_id"]) is not None:
        return False
    try:
        async with conn.begin_nested():
            await insert_new(conn, values)
    except IntegrityError:
        return False
    return True


async def add_version(conn: AsyncConnection, assistant_id: str, changes: Record, now: datetime) -> Record | None:
    current = await get(conn, assistant_id)
    if current is None:
        return None
    latest = (
        await conn.execute(
            select(func.max(assistant_versions.c.version)).where(assistant_versions.c.assistant_id == assistant_id)
        )
    ).scalar_one()
    version = int(latest or 0) + 1
    merged = {k: current[k] for k in _VERSIONED} | changes
    await conn.execute(
        insert(assistant_versions).values(assistant_id=assistant_id, version=version, created_at=now, **merged)
    )
    await conn.execute(
        update(assistants)
        .where(assistants.c.assistant_id == assistant_id)
        .values(version=version, updated_at=now, **merged)
    )
    return await get(conn, assistant_id)


async def set_latest(conn: AsyncConnection, assistant_id: str, version: int, now: datetime) -> Record | None:
    row = common.record(
        (
            await conn.execute(
                select(assistant_versions).where(
                    assistant_versions.c.assistant_id == assistant_id, assistant_versions.c.version == version
                )
            )
        ).first()
    )
    if row is None:
        return None
    await conn.execute(
        update(assistants)
        .where(assistants.c.assistant_id == assistant_id)
        .values(version=version, updated_at=now, **{k: row[k] for k in _VERSIONED})
    )
    return await get(conn, assistant_id)


async def delete_one(conn: AsyncConnection, assistant_id: str, visible: Match | None = None) -> bool:
    statement = delete(assistants).where(assistants.c.assistant_id == assistant_id)
    if visible is not None:
        statement = statement.where(visible.on(assistants.c.metadata))
    return (await conn.execute(statement)).rowcount > 0


def _search_query(graph_id: str | None, name: str | None, visible: Match | None = None) -> Any:
    query = select(assistants) if visible is None else select(assistants).where(visible.on(assistants.c.metadata))
    if graph_id:
        query = query.where(assistants.c.graph_id == graph_id)
    if name:
        query = query.where(assistants.c.name.contains(name, autoescape=True))
    return query


async def search(
    conn: AsyncConnection,
    *,
    dialect: str,
    metadata: dict[str, Any] | None,
    graph_id: str | None,
    name: str | None,
    limit: int,
    offset: int,
    sort_by: str,
    sort_order: str,
    visible: Match | None = None,
) -> list[Record]:
    query = common.ordered(_search_query(graph_id, name, visible), assistants, sort_by, sort_order, "assistant_id")
    meta = json_contains(assistants.c.metadata, metadata, dialect)
    return await common.page(conn, query, meta, "metadata", metadata, limit, offset)


async def count(
    conn: AsyncConnection,
    *,
    dialect: str,
    metadata: dict[str, Any] | None,
    graph_id: str | None,
    name: str | None,
    visible: Match | None = None,
) -> int:
    meta = json_contains(assistants.c.metadata, metadata, dialect)
    return await common.count(conn, _search_query(graph_id, name, visible), meta, "metadata", metadata)


async def versions(
    conn: AsyncConnection,
    assistant_id: str,
    *,
    dialect: str,
    metadata: dict[str, Any] | None,
    limit: int,
    offset: int,
) -> list[Record]:
    query = (
        select(assistant_versions)
        .where(assistant_versions.c.assistant_id == assistant_id)
        .order_by(assistant_versions.c.version.desc())
    )
    meta = json_contains(assistant_versions.c.metadata, metadata, dialect)
    return (await common.page(conn, query, meta, "metadata", metadata, limit, offset))[:limit]
