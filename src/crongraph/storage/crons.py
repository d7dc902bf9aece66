"""Crons and their fire log.

Firing an occurrence is a compare-and-set on `next_run_date` (whoever moves it from the value it read owns the
occurrence) plus an insert into cron_fires, whose primary key (cron_id, scheduled_for) makes a second fire of
the same occurrence impossible, not just unlikely.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage import common
from crongraph.storage.common import Record
from crongraph.storage.filters import json_contains
from crongraph.storage.tables import UTCDateTime, cron_fires, crons, runs

_INSERT = insert(crons)


async def insert_new(conn: AsyncConnection, values: Record) -> Record:
    # One prebuilt INSERT, its parameters bound at execution: building `.values(...)` per row costs more than
    # SQLite takes to run it.
    await conn.execute(_INSERT, values)
    return values


async def get(conn: AsyncConnection, cron_id: str) -> Record | None:
    return common.record((await conn.execute(select(crons).where(crons.c.cron_id == cron_id))).first())


async def update_fields(conn: AsyncConnection, cron_id: str, **values: Any) -> None:
    await conn.execute(update(crons).where(crons.c.cron_id == cron_id).values(**values))


async def delete_one(conn: AsyncConnection, cron_id: str) -> bool:
    return (await conn.execute(delete(crons).where(crons.c.cron_id == cron_id))).rowcount > 0


# Scheduling

_ADVANCE_MANY = text(
    "UPDATE crons SET next_run_date = moves.new "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:expected AS timestamptz[]), CAST(:new AS timestamptz[])) "
    "AS moves(cron_id, expected, new) "
    "WHERE crons.cron_id = moves.cron_id AND crons.next_run_date = moves.expected AND crons.enabled "
    "RETURNING crons.cron_id"
)


async def due(conn: AsyncConnection, now: datetime, limit: int, dialect: str) -> list[Record]:
    query = (
        select(crons)
        .where(crons.c.enabled.is_(True), crons.c.next_run_date <= now)
        .order_by(crons.c.next_run_date)
        .limit(limit)
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return common.records((await conn.execute(query)).all())


async def earliest_next(conn: AsyncConnection) -> datetime | None:
    query = select(func.min(crons.c.next_run_date)).where(crons.c.enabled.is_(True))
    value: datetime | None = (await conn.execute(query)).scalar_one()
    return value


# Built once (it runs for every fire); bind names must differ from column names in an UPDATE.
_ADVANCE = (
    update(crons)
    .where(
        crons.c.cron_id == bindparam("b_cron_id"),
        crons.c.next_run_date == bindparam("b_expected", type_=UTCDateTime),
        crons.c.enabled.is_(True),
    )
    .values(next_run_date=bindparam("b_new", type_=UTCDateTime))
)


async def advance(conn: AsyncConnection, cron_id: str, expected: datetime, new: datetime | None) -> bool:
    """Move next_run_date from `expected` to `new`; False when someone else already moved it (not ours)."""
    result = await conn.execute(_ADVANCE, {"b_cron_id": cron_id, "b_expected": expected, "b_new": new})
    return result.rowcount > 0


async def advance_many(
    conn: AsyncConnection, moves: list[tuple[str, datetime, datetime | None]], dialect: str
) -> set[str]:
    """advance() for many crons, given as (cron_id, expected, new): the ids that were moved (ours). One statement
    on PostgreSQL (arrays, so that it compiles once whatever the batch); on SQLite statements cost no round trip,
    so one each."""
    if not moves:
        return set()
    if dialect != "postgresql":
        # One executemany; when every row moved (the rule: the batch was read under SQLite's one writer), all are
        # ours. Otherwise ask row by row which.
        params = [{"b_cron_id": c, "b_expected": e, "b_new": n} for c, e, n in moves]
        if (await conn.execute(_ADVANCE, params)).rowcount == len(moves):
            return {cron_id for cron_id, _, _ in moves}
        raise RuntimeError("a cron moved under the scheduler's feet; the batch is retried one by one")
    ids, expected, new = (list(column) for column in zip(*moves, strict=True))
    result = await conn.execute(_ADVANCE_MANY, {"ids": ids, "expected": expected, "new": new})
    return set(result.scalars().all())


async def record_fires(conn: AsyncConnection, rows: list[Record]) -> None:
    """Many fire-log rows (cron_id, scheduled_for, fired_at, outcome, run_id, detail) in one statement."""
    if rows:
        await conn.execute(insert(cron_fires), rows)


async def record_fire(
    conn: AsyncConnection,
    cron_id: str,
    scheduled_for: datetime,
    fired_at: datetime,
    outcome: str,
    run_id: str | None = None,
    detail: str | None = None,
) -> None:
    await conn.execute(
        insert(cron_fires).values(
            cron_id=cron_id,
            scheduled_for=scheduled_for,
            fired_at=fired_at,
            outcome=outcome,
            run_id=run_id,
            detail=detail,
        )
    )


async def fires(conn: AsyncConnection, cron_id: str, *, limit: int, offset: int, outcome: str | None) -> list[Record]:
    query = select(cron_fires).where(cron_fires.c.cron_id == cron_id)
    if outcome:
        query = query.where(cron_fires.c.outcome == outcome)
    query = query.order_by(cron_fires.c.scheduled_for.desc()).limit(limit).offset(offset)
    return common.records((await conn.execute(query)).all())


async def usage(conn: AsyncConnection, cron_ids: list[str], since: datetime) -> dict[str, Record]:
    """Per cron: fires by outcome in total and since `since`, and the latest fire."""
    if not cron_ids:
        return {}
    query = (
        select(
            cron_fires.c.cron_id,
            cron_fires.c.outcome,
            func.count().label("total"),
            func.count().filter(cron_fires.c.fired_at >= since).label("recent"),
            func.max(cron_fires.c.scheduled_for).label("latest"),
        )
        .where(cron_fires.c.cron_id.in_(cron_ids))
        .group_by(cron_fires.c.cron_id, cron_fires.c.outcome)
    )
    result: dict[str, Record] = {}
    for row in (await conn.execute(query)).all():
        entry = result.setdefault(row.cron_id, {"runs": 0, "runs_recent": 0, "skipped": 0, "failed": 0, "last": None})
        if row.outcome == "created":
            entry["runs"] += row.total
            entry["runs_recent"] += row.recent
            if entry["last"] is None or row.latest > entry["last"]:
                entry["last"] = row.latest
        else:
            entry[row.outcome] = entry.get(row.outcome, 0) + row.total
    return result


async def last_runs(conn: AsyncConnection, cron_ids: list[str]) -> dict[str, Record]:
    """The newest run each cron created (for the `last_run` extension field)."""
    if not cron_ids:
        return {}
    newest = (
        select(cron_fires.c.cron_id, func.max(cron_fires.c.scheduled_for).label("slot"))
        .where(cron_fires.c.cron_id.in_(cron_ids), cron_fires.c.outcome == "created")
        .group_by(cron_fires.c.cron_id)
        .subquery()
    )
    query = select(runs).join(newest, (runs.c.cron_id == newest.c.cron_id) & (runs.c.scheduled_for == newest.c.slot))
    return {r["cron_id"]: r for r in common.records((await conn.execute(query)).all())}


# Search


def _search_query(assistant_id: str | None, thread_id: str | None, enabled: bool | None) -> Any:
    query = select(crons)
    if assistant_id:
        query = query.where(crons.c.assistant_id == assistant_id)
    if thread_id:
        query = query.where(crons.c.thread_id == thread_id)
    if enabled is not None:
        query = query.where(crons.c.enabled.is_(enabled))
    return query


async def search(
    conn: AsyncConnection,
    *,
    dialect: str,
    assistant_id: str | None,
    thread_id: str | None,
    enabled: bool | None,
    metadata: dict[str, Any] | None,
    limit: int,
    offset: int,
    sort_by: str,
    sort_order: str,
) -> list[Record]:
    query = common.ordered(_search_query(assistant_id, thread_id, enabled), crons, sort_by, sort_order, "cron_id")
    meta = json_contains(crons.c.metadata, metadata, dialect)
    return await common.page(conn, query, meta, "metadata", metadata, limit, offset)


async def count(
    conn: AsyncConnection,
    *,
    dialect: str,
    assistant_id: str | None,
    thread_id: str | None,
    metadata: dict[str, Any] | None,
) -> int:
    meta = json_contains(crons.c.metadata, metadata, dialect)
    return await common.count(conn, _search_query(assistant_id, thread_id, None), meta, "metadata", metadata)
