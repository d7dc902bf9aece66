"""The thread event log's rows (streams/thread_log.py owns the rules: numbering, marks, retention).

Rows are numbered by the writer inside its transaction: `next_seq` reads the thread's highest seq and the insert
takes the numbers after it. Two writers racing on one thread collide on the primary key and the loser retries, so
committed seqs have no gaps and no two events share one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from crongraph.storage import common
from crongraph.storage.common import Record
from crongraph.storage.tables import runs, thread_events

OPEN, END = "open", "end"


async def next_seq(conn: AsyncConnection, thread_id: str) -> int:
    return await last_seq(conn, thread_id) + 1


async def last_seq(conn: AsyncConnection, thread_id: str) -> int:
    query = select(func.max(thread_events.c.seq)).where(thread_events.c.thread_id == thread_id)
    return int((await conn.execute(query)).scalar_one() or 0)


async def first_seq(conn: AsyncConnection, thread_id: str) -> int | None:
    query = select(func.min(thread_events.c.seq)).where(thread_events.c.thread_id == thread_id)
    value = (await conn.execute(query)).scalar_one()
    return int(value) if value is not None else None


async def insert_many(conn: AsyncConnection, rows: list[Record]) -> None:
    await conn.execute(insert(thread_events), rows)


async def after(conn: AsyncConnection, thread_id: str, seq: int, limit: int) -> list[Record]:
    """Events with a seq above `seq`, oldest first."""
    query = (
        select(thread_events.c.seq, thread_events.c.channel, thread_events.c.namespace, thread_events.c.body)
        .where(thread_events.c.thread_id == thread_id, thread_events.c.seq > seq)
        .order_by(thread_events.c.seq)
        .limit(limit)
    )
    return common.records((await conn.execute(query)).all())


async def existing_marks(conn: AsyncConnection, run_ids: list[str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for chunk in _chunks(run_ids):
        query = select(thread_events.c.run_id, thread_events.c.mark).where(
            thread_events.c.run_id.in_(chunk), thread_events.c.mark.is_not(None)
        )
        found.update((r.run_id, r.mark) for r in (await conn.execute(query)).all())
    return found


async def runs_by_id(conn: AsyncConnection, run_ids: list[str]) -> dict[str, Record]:
    """The runs (rows of `runs`) that still exist among `run_ids`; the janitor reads them in one go."""
    found: dict[str, Record] = {}
    for chunk in _chunks(run_ids):
        rows = common.records((await conn.execute(select(runs).where(runs.c.run_id.in_(chunk)))).all())
        found.update((r["run_id"], r) for r in rows)
    return found


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def last_mark(conn: AsyncConnection, thread_id: str) -> Record | None:
    """The thread's latest root lifecycle mark: which run it names and whether it opened or ended it."""
    query = (
        select(thread_events.c.run_id, thread_events.c.mark, thread_events.c.seq)
        .where(thread_events.c.thread_id == thread_id, thread_events.c.mark.is_not(None))
        .order_by(thread_events.c.seq.desc())
        .limit(1)
    )
    return common.record((await conn.execute(query)).first())


async def open_runs(conn: AsyncConnection) -> list[Record]:
    """Runs whose root `running` is in a log without a root terminal after it (their writer stopped)."""
    ended = aliased(thread_events)
    query = select(thread_events.c.thread_id, thread_events.c.run_id).where(
        thread_events.c.mark == OPEN,
        ~exists().where(and_(ended.c.run_id == thread_events.c.run_id, ended.c.mark == END)),
    )
    return common.records((await conn.execute(query)).all())


async def bodies_of(conn: AsyncConnection, thread_id: str, channel: str, limit: int) -> list[str]:
    """The newest `limit` bodies of one channel of a thread, newest first."""
    query = (
        select(thread_events.c.body)
        .where(thread_events.c.thread_id == thread_id, thread_events.c.channel == channel)
        .order_by(thread_events.c.seq.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).scalars().all())


async def prune(conn: AsyncConnection, thread_id: str, keep_runs: int) -> int:
    """Delete the events older than the `keep_runs`-th most recent run's root `running` event."""
    query: Any = (
        select(thread_events.c.seq)
        .where(thread_events.c.thread_id == thread_id, thread_events.c.mark == OPEN)
        .order_by(thread_events.c.seq.desc())
        .offset(keep_runs - 1)
        .limit(1)
    )
    cutoff = (await conn.execute(query)).scalar_one_or_none()
    if cutoff is None:
        return 0
    result = await conn.execute(
        delete(thread_events).where(thread_events.c.thread_id == thread_id, thread_events.c.seq < cutoff)
    )
    return int(result.rowcount or 0)
