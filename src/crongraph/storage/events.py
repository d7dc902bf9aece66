"""Run events in the database (PostgreSQL): the log other replicas read a run's stream from.

Rows are (run_id, seq) with seq = the SSE event id, counted from 1 by the one process executing the run; the row
with seq 0 (END) says the stream is over, and holds the run's final record (what wait and join answer, even once
the run's row is gone with its temporary thread). Writes are idempotent (a retried batch inserts nothing twice),
and the hint that new events exist is sent in the same transaction, so whoever is woken already sees the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage.tables import run_events, runs

END = 0
_NOTIFY = text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS hint(payload)")


async def append(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Rows have run_id, seq, name, data (JSON bytes) and created_at."""
    if rows:
        await conn.execute(insert(run_events).on_conflict_do_nothing(), list(rows))


# The rows as arrays (one value per column), inserted and announced in one statement: a data-modifying CTE always
# runs, and NOTIFY is delivered when the statement's transaction commits, so no listener hears of rows it cannot read.
_UNNESTED = (
    "unnest(CAST(:e_run_ids AS text[]), CAST(:e_seqs AS integer[]), CAST(:e_names AS text[]), "
    "CAST(:e_datas AS text[]), CAST(:e_created AS timestamptz[])) AS e(r, s, n, d, c)"
)
_HINTS = "unnest(CAST(:e_payloads AS text[])) AS hint(payload)"
_APPEND_AND_NOTIFY = text(
    "WITH added AS (INSERT INTO run_events (run_id, seq, name, data, created_at) "
    f"SELECT r, s, n, decode(d, 'hex'), c FROM {_UNNESTED} ON CONFLICT DO NOTHING RETURNING 1) "
    f"SELECT pg_notify(:e_channel, payload) FROM {_HINTS}"
)


@dataclass
class Batch:
    """Run event rows (run_id, seq, name, data as JSON bytes, created_at) and the hints announcing them on
    `channel`, written by one statement: append_and_notify, or a run's outcome (storage/runs.finish_and_settle)."""

    rows: list[dict[str, Any]]
    channel: str
    payloads: list[str]

    def params(self) -> dict[str, Any]:
        """The bind parameters (`e_` prefixed) of the statements built on _UNNESTED and _HINTS."""
        rows = self.rows
        return {
            "e_run_ids": [r["run_id"] for r in rows],
            "e_seqs": [r["seq"] for r in rows],
            "e_names": [r["name"] for r in rows],
            # Hex: psycopg writes array elements as text and escapes every quote of JSON data with a regex.
            "e_datas": [bytes(r["data"]).hex() for r in rows],
            "e_created": [r["created_at"] for r in rows],
            "e_channel": self.channel,
            "e_payloads": list(self.payloads),
        }


async def append_and_notify(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], channel: str, payloads: Sequence[str]
) -> None:
    """PostgreSQL only: append() and notify() as one statement (on an autocommit connection, one round trip)."""
    await conn.execute(_APPEND_AND_NOTIFY, Batch(list(rows), channel, list(payloads)).params())


def written_when(condition: Any) -> tuple[Any, Any]:
    """PostgreSQL: for a statement that writes a Batch (its `params()` among the statement's parameters) only when
    `condition` (an SQL boolean, e.g. that the statement's outcome was written) holds: (a data-modifying CTE
    inserting the rows, a scalar subquery sending the hints). Both must be referenced by the statement (a CTE
    nobody references is not rendered); the hints are delivered only if the statement's transaction commits."""
    rows = (
        select(
            literal_column("e.r"),
            literal_column("e.s"),
            literal_column("e.n"),
            func.decode(literal_column("e.d"), "hex"),
            literal_column("e.c"),
        )
        .select_from(text(_UNNESTED))
        .where(condition)
    )
    columns = ["run_id", "seq", "name", "data", "created_at"]
    added: Any = insert(run_events).from_select(columns, rows).on_conflict_do_nothing().returning(literal_column("1"))
    hinted = (
        select(func.count(func.pg_notify(bindparam("e_channel"), literal_column("hint.payload"))))
        .select_from(text(_HINTS))
        .where(condition)
    )
    return added.cte("added"), hinted.scalar_subquery()


async def notify(conn: AsyncConnection, channel: str, payloads: Sequence[str]) -> None:
    """NOTIFY each payload; delivered when the surrounding transaction commits."""
    if payloads:
        await conn.execute(_NOTIFY, {"channel": channel, "payloads": list(payloads)})


async def read_after(conn: AsyncConnection, run_id: str, after: int, limit: int) -> tuple[list[Any], bool]:
    """Events with seq > after in order, and whether the END row exists (read in the same snapshot)."""
    query = (
        select(run_events.c.seq, run_events.c.name, run_events.c.data)
        .where(run_events.c.run_id == run_id, or_(run_events.c.seq > after, run_events.c.seq == END))
        .order_by(run_events.c.seq)
        .limit(limit + 2)
    )
    rows = list((await conn.execute(query)).all())
    if rows and rows[0].seq == END:
        events = rows[1:]
        return events[:limit], len(events) <= limit
    return rows[:limit], False


async def end_of(conn: AsyncConnection, run_id: str) -> bytes | None:
    """The END row's data (the run's final record as JSON, or empty), or None while the stream goes on."""
    query = select(run_events.c.data).where(run_events.c.run_id == run_id, run_events.c.seq == END)
    data = (await conn.execute(query)).scalar_one_or_none()
    return None if data is None else bytes(data)


async def purge(conn: AsyncConnection, cutoff: datetime) -> int:
    """Forget the events of runs that ended (or were deleted) before `cutoff`; runs in flight keep theirs."""
    still_wanted = exists().where(
        runs.c.run_id == run_events.c.run_id,
        or_(runs.c.status.in_(("pending", "running")), and_(runs.c.ended_at.is_not(None), runs.c.ended_at >= cutoff)),
    )
    result = await conn.execute(delete(run_events).where(run_events.c.created_at < cutoff, ~still_wanted))
    return int(result.rowcount)
