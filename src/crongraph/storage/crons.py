"""Crons and their fire log.

Firing an occurrence is a compare-and-set on `next_run_date` (whoever moves it from the value it read owns the
occurrence) plus an insert into cron_fires, whose primary key (cron_id, scheduled_for) makes a second fire of
the same occurrence impossible, not just unlikely. Manual fires and backfills insert into the same log, in the
transaction that creates their run, under the cron's row lock.

When a cron's run ends, its fire-log row gets the run's status and token usage (`fires_ended`, many runs at once):
the run row may go with its temporary thread, the fire log stays, so usage, failed runs and the token budget are
read from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, case, cast, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph import serde
from crongraph.storage import bulk, common
from crongraph.storage.common import Record
from crongraph.storage.filters import Match, json_contains
from crongraph.storage.tables import UTCDateTime, cron_fires, crons, runs

_INSERT = insert(crons)


async def insert_many(conn: AsyncConnection, rows: list[Record]) -> None:
    """Insert crons whose rows all have the same keys: one executemany (services/cron_inserts.py's batches).
    One prebuilt INSERT, its parameters bound at execution: building `.values(...)` per row costs more than
    SQLite takes to run it."""
    await conn.execute(_INSERT, rows if len(rows) > 1 else rows[0])


async def get(conn: AsyncConnection, cron_id: str, visible: Match | None = None) -> Record | None:
    """The cron; with `visible` (an auth filter), only when its metadata matches."""
    query = select(crons).where(crons.c.cron_id == cron_id)
    if visible is not None:
        query = query.where(visible.on(crons.c.metadata))
    return common.record((await conn.execute(query)).first())


async def get_for_update(
    conn: AsyncConnection, cron_id: str, dialect: str, visible: Match | None = None
) -> Record | None:
    """Read a cron and hold its row lock until the transaction ends (PostgreSQL; SQLite has one writer): the
    scheduler claims due crons with SKIP LOCKED, so it leaves this one alone meanwhile."""
    query = select(crons).where(crons.c.cron_id == cron_id)
    if visible is not None:
        query = query.where(visible.on(crons.c.metadata))
    if dialect == "postgresql":
        query = query.with_for_update()
    return common.record((await conn.execute(query)).first())


async def lock_owner(conn: AsyncConnection, owner: str, dialect: str) -> None:
    """Serialize the limit check and insert of one owner's crons across replicas (a transaction-scoped advisory
    lock on PostgreSQL; SQLite's single writer already serializes them)."""
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"crongraph-owner:{owner}"})


async def active_count(conn: AsyncConnection, owner: str, exclude: str | None = None) -> int:
    """How many of `owner`'s crons are active: enabled and not finished."""
    query = select(func.count()).where(
        crons.c.user_id == owner, crons.c.enabled.is_(True), crons.c.next_run_date.is_not(None)
    )
    if exclude is not None:
        query = query.where(crons.c.cron_id != exclude)
    return int((await conn.execute(query)).scalar_one())


# A buffered run (overlap_policy buffer_one on a cron without a thread) waits with this available_at until the
# cron's running run ends: the queue never claims it before, and releasing it is one idempotent update.
HELD = datetime(9999, 1, 1, tzinfo=UTC)


async def inflight_runs(conn: AsyncConnection, cron_id: str) -> list[Record]:
    """The cron's runs still pending or running, oldest slot first (run_id, status, available_at, thread_id)."""
    query = (
        select(runs.c.run_id, runs.c.thread_id, runs.c.status, runs.c.available_at)
        .where(runs.c.cron_id == cron_id, runs.c.status.in_(("pending", "running")))
        .order_by(runs.c.scheduled_for, runs.c.run_id)
    )
    result: Any = await conn.execute(query)
    return common.records(result.all())


async def set_available_at(conn: AsyncConnection, run_id: str, at: datetime) -> None:
    """When a just-created pending run may start: its jittered moment, or HELD until released (buffer_one on a
    cron without a thread)."""
    await conn.execute(update(runs).where(runs.c.run_id == run_id).values(available_at=at))


async def release_held(conn: AsyncConnection, cron_id: str, now: datetime) -> str | None:
    """Let the oldest held run of the cron start now; its run_id, or None when none was held."""
    query = (
        select(runs.c.run_id)
        .where(runs.c.cron_id == cron_id, runs.c.status == "pending", runs.c.available_at >= HELD)
        .order_by(runs.c.run_id)
        .limit(1)
    )
    run_id: str | None = (await conn.execute(query)).scalar()
    if run_id is None:
        return None
    await conn.execute(update(runs).where(runs.c.run_id == run_id, runs.c.status == "pending").values(available_at=now))
    return run_id


async def fire_exists(conn: AsyncConnection, cron_id: str, scheduled_for: datetime) -> bool:
    query = select(cron_fires.c.cron_id).where(
        cron_fires.c.cron_id == cron_id, cron_fires.c.scheduled_for == scheduled_for
    )
    return (await conn.execute(query)).first() is not None


async def existing_fires(conn: AsyncConnection, cron_id: str, start: datetime, end: datetime) -> list[Record]:
    """Fire-log rows of the cron with start <= scheduled_for < end."""
    query = (
        select(cron_fires)
        .where(cron_fires.c.cron_id == cron_id, cron_fires.c.scheduled_for >= start, cron_fires.c.scheduled_for < end)
        .order_by(cron_fires.c.scheduled_for)
    )
    return common.records((await conn.execute(query)).all())


async def get_many_for_update(
    conn: AsyncConnection, cron_ids: list[str], dialect: str, columns: tuple[str, ...] | None = None
) -> dict[str, Record]:
    """get_for_update() for many crons, by id (the ones that exist): their rows are locked in id order, so two
    replicas locking overlapping sets cannot deadlock. `columns`: only these (cron_id always), not decoding the
    JSON ones a caller does not need."""
    if not cron_ids:
        return {}
    chosen = [crons.c[name] for name in dict.fromkeys(("cron_id", *columns))] if columns else [crons]
    query = select(*chosen).where(crons.c.cron_id.in_(cron_ids)).order_by(crons.c.cron_id)
    if dialect == "postgresql":
        query = query.with_for_update()
    return {r["cron_id"]: r for r in common.records((await conn.execute(query)).all())}


async def unended_fires(conn: AsyncConnection, occurrences: list[tuple[str, datetime]]) -> set[tuple[str, datetime]]:
    """Which of these (cron_id, scheduled_for) have a fire-log row whose run's end is not yet written: the ones
    fires_ended() will write. Read under the crons' row locks (or SQLite's one writer), so it stays true until
    the write."""
    if not occurrences:
        return set()
    wanted = set(occurrences)
    query = select(cron_fires.c.cron_id, cron_fires.c.scheduled_for).where(
        cron_fires.c.cron_id.in_(sorted({c for c, _ in wanted})),
        cron_fires.c.scheduled_for.in_(sorted({s for _, s in wanted})),
        cron_fires.c.run_status.is_(None),
    )
    return {(row.cron_id, row.scheduled_for) for row in (await conn.execute(query)).all()} & wanted


# Built once: one executemany for many ended runs. The error text of a run that failed, when there is one, goes
# after the detail the fire already has.
_FIRE_ENDED = (
    update(cron_fires)
    .where(
        cron_fires.c.cron_id == bindparam("b_cron_id"),
        cron_fires.c.scheduled_for == bindparam("b_scheduled_for", type_=UTCDateTime),
        cron_fires.c.run_status.is_(None),
    )
    .values(
        run_status=bindparam("b_status"),
        ended_at=bindparam("b_ended_at", type_=UTCDateTime),
        input_tokens=bindparam("b_input_tokens", type_=cron_fires.c.input_tokens.type),
        output_tokens=bindparam("b_output_tokens", type_=cron_fires.c.output_tokens.type),
        tokens=bindparam("b_tokens", type_=cron_fires.c.tokens.type),
        # CAST: PostgreSQL must know the parameter's type to compare it with NULL.
        detail=case(
            (cast(bindparam("b_error", type_=Text), Text).is_(None), cron_fires.c.detail),
            else_=func.coalesce(cron_fires.c.detail + "; ", "") + cast(bindparam("b_error", type_=Text), Text),
        ),
    )
)


async def fires_ended(conn: AsyncConnection, ended: list[Record]) -> None:
    """Write how each occurrence's run ended (status, ended_at, tokens from `usage`, and for a failed run its
    `error` text after the fire's detail), in one statement; each item: cron_id, scheduled_for, status, ended_at,
    usage (or None), error (or None). Rows that already have an outcome are left alone (a run is counted once);
    callers learn which ones will be written from unended_fires()."""
    if not ended:
        return
    params = []
    for e in ended:
        usage = e["usage"] or {}
        params.append(
            {
                "b_cron_id": e["cron_id"],
                "b_scheduled_for": e["scheduled_for"],
                "b_status": e["status"],
                "b_ended_at": e["ended_at"],
                "b_input_tokens": usage.get("input_tokens"),
                "b_output_tokens": usage.get("output_tokens"),
                "b_tokens": usage.get("total_tokens"),
                "b_error": e["error"],
            }
        )
    await conn.execute(_FIRE_ENDED, params)


async def tokens_since(conn: AsyncConnection, cron_id: str, since: datetime) -> int:
    query = select(func.coalesce(func.sum(cron_fires.c.tokens), 0)).where(
        cron_fires.c.cron_id == cron_id, cron_fires.c.ended_at >= since
    )
    return int((await conn.execute(query)).scalar_one())


async def update_fields(conn: AsyncConnection, cron_id: str, **values: Any) -> None:
    await conn.execute(update(crons).where(crons.c.cron_id == cron_id).values(**values))


async def update_many(conn: AsyncConnection, changes: dict[str, Record]) -> None:
    """update_fields() for many crons ({cron_id: {column: value}}; empty changes are skipped): one executemany per
    distinct set of columns."""
    groups: dict[frozenset[str], list[Record]] = {}
    for cron_id, values in changes.items():
        if values:
            params = {"k_key": cron_id, **{f"v_{c}": v for c, v in values.items()}}
            groups.setdefault(frozenset(values), []).append(params)
    for columns, params_list in groups.items():
        await conn.execute(common.update_by_key(crons, "cron_id", columns), params_list)


async def delete_one(conn: AsyncConnection, cron_id: str, visible: Match | None = None) -> bool:
    statement = delete(crons).where(crons.c.cron_id == cron_id)
    if visible is not None:
        statement = statement.where(visible.on(crons.c.metadata))
    return (await conn.execute(statement)).rowcount > 0


# Scheduling

# The moves as one JSON document (orjson serializes a batch in one call; psycopg's array dumpers spend Python time
# on every element).
_ADVANCE_MANY = (
    "UPDATE crons SET next_run_date = moves.new "
    "FROM jsonb_to_recordset(%s::jsonb) AS moves(cron_id varchar, expected timestamptz, new timestamptz) "
    "WHERE crons.cron_id = moves.cron_id AND crons.next_run_date = moves.expected AND crons.enabled "
    "RETURNING crons.cron_id"
)


async def due(conn: AsyncConnection, now: datetime, limit: int, dialect: str) -> list[Record]:
    """Up to `limit` enabled crons due at `now`, earliest first, every column as `get` returns it (on PostgreSQL
    locked FOR UPDATE SKIP LOCKED, so replicas split a burst instead of waiting on each other).

    A burst reads thousands of these rows: the statement goes to the driver as text and the rows are decoded here
    (JSON by the same deserializer, datetimes parsed by `datetime.fromisoformat`), which costs a fraction of
    SQLAlchemy's generic per-value result processing and gives the same values."""
    sql, bind, decoders = _due_plan(conn.sync_connection.dialect)  # type: ignore[union-attr]
    result = await conn.exec_driver_sql(sql, (bind(now), limit))
    names = _CRON_COLUMNS
    rows = []
    for raw in result.all():
        row = dict(zip(names, raw, strict=True))
        for name, decode in decoders:
            value = row[name]
            if value is not None:
                row[name] = decode(value)
        rows.append(row)
    return rows


_CRON_COLUMNS = tuple(c.name for c in crons.c)
_DUE_PLANS: dict[str, tuple[str, Any, tuple[tuple[str, Any], ...]]] = {}


def _sqlite_datetime(value: Any) -> datetime:
    # SQLite stores UTC naive as text ("2026-03-07 12:05:00.000000", SQLAlchemy's format)
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if isinstance(value, str) else value.replace(tzinfo=UTC)


def _aware_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _json(value: Any) -> Any:
    # psycopg hands JSONB over decoded (SQLAlchemy registered its loader); SQLite hands over the text
    return serde.loads(value) if isinstance(value, str | bytes) else value


def _due_plan(dialect: Any) -> tuple[str, Any, tuple[tuple[str, Any], ...]]:
    """(the due SELECT as driver text, the bind processor of its `now` (the column's own, as SQLAlchemy would
    apply it), (column, decoder) for the columns whose values need decoding)."""
    plan = _DUE_PLANS.get(dialect.name)
    if plan is None:
        pg = dialect.name == "postgresql"
        columns = ", ".join(_CRON_COLUMNS)
        mark = "%s" if pg else "?"
        sql = (
            f"SELECT {columns} FROM crons WHERE enabled {'IS true' if pg else 'IS 1'} AND next_run_date <= {mark} "
            f"ORDER BY next_run_date LIMIT {mark}" + (" FOR UPDATE SKIP LOCKED" if pg else "")
        )
        decoders: list[tuple[str, Any]] = []
        for column in crons.c:
            if isinstance(column.type, UTCDateTime):
                decoders.append((column.name, _aware_utc if pg else _sqlite_datetime))
            elif column.name in ("payload", "metadata"):
                decoders.append((column.name, _json))
            elif column.name == "enabled" and not pg:
                decoders.append((column.name, bool))
        bind = bulk.binder(crons.c.next_run_date.type, dialect) or (lambda value: value)
        plan = _DUE_PLANS[dialect.name] = (sql, bind, tuple(decoders))
    return plan


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


_ADVANCE_SQLITE = "UPDATE crons SET next_run_date = ? WHERE cron_id = ? AND next_run_date = ? AND enabled IS 1"


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
        # At the driver, each distinct datetime formatted once: a burst's moves share two values.
        dialect_ = conn.sync_connection.dialect  # type: ignore[union-attr]
        bind = bulk.binder(crons.c.next_run_date.type, dialect_)
        assert bind is not None
        text_of: dict[datetime | None, Any] = {None: None}
        params = []
        for cron_id, old, new in moves:
            if old not in text_of:
                text_of[old] = bind(old)
            if new not in text_of:
                text_of[new] = bind(new)
            params.append((text_of[new], cron_id, text_of[old]))
        if (await conn.exec_driver_sql(_ADVANCE_SQLITE, params)).rowcount == len(moves):
            return {cron_id for cron_id, _, _ in moves}
        raise RuntimeError("a cron moved under the scheduler's feet; the batch is retried one by one")
    for _, expected, new in moves:
        if expected.tzinfo is None or (new is not None and new.tzinfo is None):
            raise ValueError("naive datetime given to storage")  # as UTCDateTime refuses it
    document = bulk.dumps([{"cron_id": c, "expected": e, "new": n} for c, e, n in moves])
    result = await conn.exec_driver_sql(_ADVANCE_MANY, (document,))
    return {row[0] for row in result.all()}


async def record_fire(
    conn: AsyncConnection,
    cron_id: str,
    scheduled_for: datetime,
    fired_at: datetime,
    outcome: str,
    run_id: str | None = None,
    detail: str | None = None,
    kind: str = "schedule",
) -> None:
    await conn.execute(
        insert(cron_fires).values(
            cron_id=cron_id,
            scheduled_for=scheduled_for,
            fired_at=fired_at,
            outcome=outcome,
            run_id=run_id,
            detail=detail,
            kind=kind,
        )
    )


async def fill_fire(
    conn: AsyncConnection, cron_id: str, scheduled_for: datetime, fired_at: datetime, run_id: str, kind: str
) -> None:
    """Give an occurrence logged without a run (skipped, failed) its run, once: the row changes only while it has
    no run, so two backfills cannot both fill it (the second one's update matches nothing and it raises)."""
    result = await conn.execute(
        update(cron_fires)
        .where(
            cron_fires.c.cron_id == cron_id,
            cron_fires.c.scheduled_for == scheduled_for,
            cron_fires.c.outcome != "created",
        )
        .values(
            outcome="created",
            run_id=run_id,
            fired_at=fired_at,
            kind=kind,
            detail=func.coalesce("backfilled; before: " + cron_fires.c.detail, "backfilled"),
        )
    )
    if result.rowcount != 1:
        raise RuntimeError(f"cron {cron_id}: occurrence {scheduled_for.isoformat()} was filled meanwhile")


async def fires(conn: AsyncConnection, cron_id: str, *, limit: int, offset: int, outcome: str | None) -> list[Record]:
    query = select(cron_fires).where(cron_fires.c.cron_id == cron_id)
    if outcome:
        query = query.where(cron_fires.c.outcome == outcome)
    query = query.order_by(cron_fires.c.scheduled_for.desc()).limit(limit).offset(offset)
    return common.records((await conn.execute(query)).all())


def empty_usage() -> Record:
    return {
        "runs": 0,
        "runs_recent": 0,
        "skipped": 0,
        "failed": 0,
        "failed_runs": 0,
        "failed_runs_recent": 0,
        "tokens": 0,
        "tokens_recent": 0,
        "last": None,
    }


# The run statuses `failed_runs` counts (docs/crons.md, Usage).
FAILED_RUN_STATUSES = ("error", "timeout")


async def usage(conn: AsyncConnection, cron_ids: list[str], since: datetime) -> dict[str, Record]:
    """Per cron: fires by outcome in total and since `since`, runs that ended in error, tokens in total and of
    runs that ended since `since`, and the latest fire."""
    if not cron_ids:
        return {}
    recent_end = and_(cron_fires.c.ended_at.is_not(None), cron_fires.c.ended_at >= since)
    query = (
        select(
            cron_fires.c.cron_id,
            cron_fires.c.outcome,
            func.count().label("total"),
            func.count().filter(cron_fires.c.fired_at >= since).label("recent"),
            func.max(cron_fires.c.scheduled_for).label("latest"),
            func.count().filter(cron_fires.c.run_status.in_(FAILED_RUN_STATUSES)).label("errors"),
            func.count().filter(cron_fires.c.run_status.in_(FAILED_RUN_STATUSES), recent_end).label("errors_recent"),
            func.coalesce(func.sum(cron_fires.c.tokens), 0).label("tokens"),
            func.coalesce(func.sum(case((recent_end, cron_fires.c.tokens), else_=0)), 0).label("tokens_recent"),
        )
        .where(cron_fires.c.cron_id.in_(cron_ids))
        .group_by(cron_fires.c.cron_id, cron_fires.c.outcome)
    )
    result: dict[str, Record] = {}
    for row in (await conn.execute(query)).all():
        entry = result.setdefault(row.cron_id, empty_usage())
        if row.outcome == "created":
            entry["runs"] += row.total
            entry["runs_recent"] += row.recent
            entry["failed_runs"] += row.errors
            entry["failed_runs_recent"] += row.errors_recent
            entry["tokens"] += int(row.tokens)
            entry["tokens_recent"] += int(row.tokens_recent)
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


def _search_query(
    assistant_id: str | None, thread_id: str | None, enabled: bool | None, visible: Match | None = None
) -> Any:
    query = select(crons) if visible is None else select(crons).where(visible.on(crons.c.metadata))
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
    visible: Match | None = None,
) -> list[Record]:
    query = _search_query(assistant_id, thread_id, enabled, visible)
    query = common.ordered(query, crons, sort_by, sort_order, "cron_id")
    meta = json_contains(crons.c.metadata, metadata, dialect)
    return await common.page(conn, query, meta, "metadata", metadata, limit, offset)


async def count(
    conn: AsyncConnection,
    *,
    dialect: str,
    assistant_id: str | None,
    thread_id: str | None,
    metadata: dict[str, Any] | None,
    visible: Match | None = None,
) -> int:
    meta = json_contains(crons.c.metadata, metadata, dialect)
    query = _search_query(assistant_id, thread_id, None, visible)
    return await common.count(conn, query, meta, "metadata", metadata)
