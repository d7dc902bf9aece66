"""Runs, and the durable queue they form.

A run is `pending` until a worker claims it, which sets it `running` under a lease (owner, token, expiry). Every
later write by that worker names the token, so once a run has been reaped and handed to someone else, the old
worker's writes match no row and are dropped (fencing). Per thread, runs execute one at a time, in creation order
(run ids are uuid7, so id order is creation order).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlalchemy.sql import column as sql_column
from sqlalchemy.sql import table as sql_table
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from crongraph.storage import common, events
from crongraph.storage.common import Record
from crongraph.storage.filters import Match
from crongraph.storage.tables import UTCDateTime, assistants, runs, threads

INFLIGHT = ("pending", "running")
TERMINAL = ("success", "error", "timeout", "interrupted")


_INSERT = insert(runs)


async def insert_new(conn: AsyncConnection, values: Record) -> Record:
    await conn.execute(_INSERT, values)
    return values


async def insert_many(conn: AsyncConnection, rows: list[Record]) -> None:
    if rows:
        await conn.execute(_INSERT, rows)


# The columns a claim writes (queue/handoff.py: Slot.claim), and what an unclaimed run has in them.
UNCLAIMED = {"status": "pending", "lease_owner": None, "lease_token": None, "lease_expires_at": None, "attempt": 0}


def _claimed_unless(busy: Any) -> list[Any]:
    """A run row's columns from parameters `p_<column>` (the claim's values), each claim column taking its
    unclaimed value instead when `busy` (a run of the thread is pending or running)."""
    values = []
    for column in runs.c:
        given: Any = bindparam(f"p_{column.name}", type_=column.type)
        if column.name in UNCLAIMED:
            unclaimed = UNCLAIMED[column.name]
            fallback = literal(unclaimed, type_=column.type) if unclaimed is not None else None
            given = case((busy, fallback), else_=given).label(column.name)
        values.append(given)
    return values


@functools.cache
def _insert_claimed_unless_busy() -> Any:
    """INSERT ... SELECT of one run row (parameters `p_<column>`, with the claim's values), which goes in with the
    unclaimed values instead when a run of its thread is pending or running; RETURNING its status."""
    busy = select(
        exists().where(runs.c.thread_id == bindparam("p_thread_id"), runs.c.status.in_(INFLIGHT)).label("busy")
    ).subquery("thread_runs")
    chosen = select(*_claimed_unless(busy.c.busy)).select_from(busy)
    return insert(runs).from_select([c.name for c in runs.c], chosen).returning(runs.c.status)


async def insert_claimed_unless_busy(conn: AsyncConnection, values: Record) -> bool:
    """Insert `values` (a run row made claimed, see queue/handoff.py) as they are when no other run of its thread is
    pending or running, else unclaimed (`pending`, no lease): one statement where a read and an insert were. The
    caller holds the thread's row lock, so no run can be added to the thread meanwhile (on PostgreSQL the
    statement's snapshot is taken after that lock). Whether it went in claimed; `values` is updated to match."""
    params = {f"p_{column.name}": values.get(column.name) for column in runs.c}
    status = (await conn.execute(_insert_claimed_unless_busy(), params)).scalar_one()
    if status != values["status"]:
        values.update(UNCLAIMED)
        return False
    return True


def _thread_unchanged() -> Any:
    """PostgreSQL: true when the thread row an UPDATE is about to write is the version the statement's snapshot
    sees. The subquery is computed once, from the snapshot; `threads.xmin` is read again on the newest version when
    the UPDATE had to wait for the row's lock (EvalPlanQual). Every transaction that adds a run to a thread writes
    the thread's row (marks it busy), so while this holds, what the snapshot says of the thread's runs being
    pending or running is still true when the row's lock is held: a run added meanwhile makes it false."""
    before = threads.alias("before")
    seen: Any = select(literal_column("before.xmin")).select_from(before)
    return literal_column("threads.xmin") == seen.where(before.c.thread_id == bindparam("k_key")).scalar_subquery()


def _thread_has_inflight(other_than: Any = None) -> Any:
    found = exists().where(runs.c.thread_id == bindparam("k_key"), runs.c.status.in_(INFLIGHT))
    if other_than is not None:
        found = found.where(runs.c.run_id != other_than)
    return found


def _create_on_thread_statement(require_idle: bool, visible: Match | None) -> Any:
    # The assistant's read, the thread marked busy (and its metadata naming the assistant's graph) and the run's
    # insert, in one statement. The thread is written only when the assistant exists and the row is the version
    # the snapshot saw (with `require_idle`, also only when none of its runs is pending or running); the run is
    # inserted only when the thread was written, claimed as given unless a run of the thread is pending or running.
    found = select(assistants).where(assistants.c.assistant_id == bindparam("a_id")).cte("assistant")
    named = select(func.jsonb_build_object("graph_id", found.c.graph_id, "assistant_id", found.c.assistant_id))
    conditions = [threads.c.thread_id == bindparam("k_key"), select(found.c.assistant_id).exists(), _thread_unchanged()]
    if require_idle:
        conditions.append(~_thread_has_inflight())
    if visible is not None:
        conditions.append(visible.on(threads.c.metadata))
    marked = (
        update(threads)
        .where(*conditions)
        .values(
            status="busy",
            updated_at=bindparam("p_created_at", type_=threads.c.updated_at.type),
            metadata=threads.c.metadata.op("||")(named.scalar_subquery()),
        )
        .returning(_thread_has_inflight().label("busy"))
        .cte("marked")
    )
    inserted = (
        insert(runs)
        .from_select([c.name for c in runs.c], select(*_claimed_unless(marked.c.busy)).select_from(marked))
        .returning(runs.c.status)
        .cte("inserted")
    )
    columns = [c.label(f"a_{c.name}") for c in found.c] + [inserted.c.status.label("r_status")]
    return select(*columns).select_from(found.outerjoin(inserted, true()))


_CREATE_ON_THREAD = {idle: _create_on_thread_statement(idle, None) for idle in (False, True)}


async def create_on_thread(
    conn: AsyncConnection, values: Record, *, require_idle: bool, visible: Match | None
) -> tuple[Record | None, bool]:
    """PostgreSQL only, alone on an autocommit connection: create the run `values` (possibly made claimed, see
    queue/handoff.py) on its existing thread in one statement (where BEGIN, a read, two writes and COMMIT were),
    when nothing can have changed the thread's runs unseen. `values["assistant_id"]` is read and the thread marked
    busy with its names (as threads.mark_busy_with_assistant does); the run goes in claimed as given unless a run
    of the thread is pending or running, then unclaimed (`values` is updated to match); with `require_idle` it
    goes in only when none is. (the assistant, or None when it does not exist; whether the run was inserted).
    When it was not, nothing was written: the caller creates the run the long way."""
    statement = (
        _CREATE_ON_THREAD[require_idle] if visible is None else _create_on_thread_statement(require_idle, visible)
    )
    params = {f"p_{column.name}": values.get(column.name) for column in runs.c}
    params.update(a_id=values["assistant_id"], k_key=values["thread_id"])
    row = common.record((await conn.execute(statement, params)).first())
    if row is None:
        return None, False
    assistant = {k[2:]: v for k, v in row.items() if k.startswith("a_")}
    status = row["r_status"]
    if status is None:
        return assistant, False
    if status != values["status"]:
        values.update(UNCLAIMED)
    return assistant, True


@functools.cache
def _create_with_thread_statement() -> Any:
    # The assistant's read, the new thread's insert (its metadata naming the assistant's graph between the two
    # given parts) and the run's insert, in one statement; the thread and run go in only when the assistant exists.
    found = select(assistants).where(assistants.c.assistant_id == bindparam("a_id")).cte("assistant")
    names = func.jsonb_build_object("graph_id", found.c.graph_id, "assistant_id", found.c.assistant_id)
    values = []
    for column in threads.c:
        value: Any = bindparam(f"t_{column.name}", type_=column.type)
        if column.name == "metadata":
            value = bindparam("t_first", type_=column.type).op("||")(names).op("||")(value)
        values.append(value.label(column.name))
    made = (
        insert(threads)
        .from_select([c.name for c in threads.c], select(*values).select_from(found))
        .returning(threads.c.thread_id)
        .cte("made")
    )
    row = [bindparam(f"p_{column.name}", type_=column.type) for column in runs.c]
    inserted = (
        insert(runs)
        .from_select([c.name for c in runs.c], select(*row).select_from(made))
        .returning(runs.c.status)
        .cte("inserted")
    )
    columns = [c.label(f"a_{c.name}") for c in found.c] + [inserted.c.status.label("r_status")]
    return select(*columns).select_from(found.outerjoin(inserted, true()))


async def create_with_thread(
    conn: AsyncConnection, thread: Record, first_metadata: Record, values: Record
) -> Record | None:
    """PostgreSQL only, alone on an autocommit connection: a stateless run's creation in one statement (where BEGIN,
    a read, two inserts and COMMIT were): the run `values` (as given, possibly claimed: its thread is new, so
    nothing is in flight on it) on the new thread `thread`, whose stored metadata is `first_metadata`, then the
    names of `values["assistant_id"]`'s graph (graph_id, assistant_id), then `thread["metadata"]` (later keys
    win). The assistant; None when it does not exist, and then nothing was written."""
    params = {f"p_{column.name}": values.get(column.name) for column in runs.c}
    params.update({f"t_{column.name}": thread.get(column.name) for column in threads.c})
    params.update(t_first=first_metadata, a_id=values["assistant_id"])
    row = common.record((await conn.execute(_create_with_thread_statement(), params)).first())
    if row is None or row["r_status"] is None:
        return None
    return {k[2:]: v for k, v in row.items() if k.startswith("a_")}


_GET = select(runs).where(runs.c.run_id == bindparam("run_id"))
_GET_ON_THREAD = _GET.where(runs.c.thread_id == bindparam("thread_id"))


def _thread_visible(visible: Match) -> Any:
    """Runs are seen through their thread: the thread's metadata must match the auth filter."""
    return (
        select(threads.c.thread_id)
        .where(threads.c.thread_id == runs.c.thread_id, visible.on(threads.c.metadata))
        .exists()
    )


async def get(
    conn: AsyncConnection, run_id: str, thread_id: str | None = None, visible: Match | None = None
) -> Record | None:
    """The run (on `thread_id` when given); with `visible`, only when its thread's metadata matches."""
    if visible is not None:
        params = {"run_id": run_id} if thread_id is None else {"run_id": run_id, "thread_id": thread_id}
        query = (_GET if thread_id is None else _GET_ON_THREAD).where(_thread_visible(visible))
        return common.record((await conn.execute(query, params)).first())
    if thread_id is None:
        return common.record((await conn.execute(_GET, {"run_id": run_id})).first())
    return common.record((await conn.execute(_GET_ON_THREAD, {"run_id": run_id, "thread_id": thread_id})).first())


async def list_for_thread(
    conn: AsyncConnection, thread_id: str, *, limit: int, offset: int, status: str | None
) -> list[Record]:
    query = select(runs).where(runs.c.thread_id == thread_id)
    if status:
        query = query.where(runs.c.status == status)
    query = query.order_by(runs.c.run_id.desc()).limit(limit).offset(offset)
    return common.records((await conn.execute(query)).all())


_ANY_INFLIGHT = (
    select(runs.c.run_id).where(runs.c.thread_id == bindparam("thread_id"), runs.c.status.in_(INFLIGHT)).limit(1)
)


async def has_inflight(conn: AsyncConnection, thread_id: str) -> bool:
    """Whether any run of the thread is pending or running (the cheap question the hot path asks)."""
    return (await conn.execute(_ANY_INFLIGHT, {"thread_id": thread_id})).first() is not None


_INFLIGHT_ON_THREAD = (
    select(runs).where(runs.c.thread_id == bindparam("thread_id"), runs.c.status.in_(INFLIGHT)).order_by(runs.c.run_id)
)


async def inflight_on_thread(conn: AsyncConnection, thread_id: str) -> list[Record]:
    return common.records((await conn.execute(_INFLIGHT_ON_THREAD, {"thread_id": thread_id})).all())


async def list_inflight(
    conn: AsyncConnection,
    *,
    thread_id: str | None,
    run_ids: list[str] | None,
    statuses: tuple[str, ...],
    visible: Match | None = None,
) -> list[Record]:
    query = select(runs).where(runs.c.status.in_(statuses))
    if visible is not None:
        query = query.where(_thread_visible(visible))
    if thread_id is not None:
        query = query.where(runs.c.thread_id == thread_id)
    if run_ids is not None:
        query = query.where(runs.c.run_id.in_(run_ids))
    return common.records((await conn.execute(query)).all())


def _available_at(dialect: str) -> Any:
    """available_at, for the claim's WHERE. On SQLite written `+available_at`, its documented way to keep a term
    from choosing the index: left to choose, SQLite answers the claim with ix_runs_available, reading and sorting
    every due run, where walking ix_runs_queue in order stops after `limit` runs: with a large backlog, each claim
    would cost as much as the backlog."""
    if dialect == "sqlite":
        return UnaryExpression(runs.c.available_at, operator=custom_op("+"), type_=UTCDateTime)
    return runs.c.available_at


@functools.cache
def _claim_statement(interactive: bool, dialect: str) -> Any:
    """The claim UPDATE, built once per (kind, dialect): constructing it per call cost more than running it.
    Parameters: now, limit, and the lease values."""
    earlier = aliased(runs)
    blocked = exists().where(
        earlier.c.thread_id == runs.c.thread_id,
        or_(
            earlier.c.status == "running",
            and_(earlier.c.status == "pending", earlier.c.run_id < runs.c.run_id),
        ),
    )
    candidates = (
        select(runs.c.run_id)
        .where(
            runs.c.status == "pending",
            runs.c.priority == 0 if interactive else runs.c.priority > 0,
            _available_at(dialect) <= bindparam("now", type_=UTCDateTime),
            ~blocked,
        )
        .order_by(runs.c.priority, runs.c.run_id)
        .limit(bindparam("limit", type_=Integer))
    )
    if dialect == "postgresql":
        # Not `run_id IN (subquery)`: PostgreSQL may run that subquery again for each row it updates, and with
        # SKIP LOCKED each run skips the rows this statement already locked and returns new ones, so one claim
        # took every pending run whatever the limit. A MATERIALIZED CTE is evaluated exactly once.
        chosen = candidates.with_for_update(skip_locked=True).cte("claimable").prefix_with("MATERIALIZED")
        claim = update(runs).where(runs.c.run_id == chosen.c.run_id, runs.c.status == "pending")
    else:
        # `+status`: left to choose, SQLite finds the rows to update by scanning every pending run of ix_runs_queue
        # for the chosen ids (7 ms a claim with 10,000 pending) instead of looking each up by its key.
        pending = UnaryExpression(runs.c.status, operator=custom_op("+"), type_=runs.c.status.type) == "pending"
        claim = update(runs).where(runs.c.run_id.in_(candidates), pending)
    return claim.values(
        status="running",
        lease_owner=bindparam("owner"),
        lease_token=bindparam("token"),
        lease_expires_at=bindparam("lease_until", type_=UTCDateTime),
        updated_at=bindparam("now", type_=UTCDateTime),
        attempt=runs.c.attempt + 1,
    ).returning(*runs.c)


_ASSISTANT = "assistant__"  # the prefix of the assistant's columns beside a claimed run's


@functools.cache
def _claim_with_assistant_statement(interactive: bool) -> Any:
    """PostgreSQL: the claim, each claimed run returned beside its assistant's row (its columns prefixed; NULL when
    the assistant is gone). The executor's next statement would read that row; read by the claim, as fresh, it
    costs an index lookup instead of a statement (a round trip, a plan-cache check, an executor start-up)."""
    claimed = _claim_statement(interactive, "postgresql").cte("claimed")
    return select(claimed, *(c.label(_ASSISTANT + c.name) for c in assistants.c)).select_from(
        claimed.outerjoin(assistants, assistants.c.assistant_id == claimed.c.assistant_id)
    )


def _run_and_assistant(row: Any) -> tuple[Record, Record | None]:
    run: Record = {}
    assistant: Record = {}
    for key, value in row._mapping.items():
        if key.startswith(_ASSISTANT):
            assistant[key[len(_ASSISTANT) :]] = value
        else:
            run[key] = value
    return run, assistant if assistant["assistant_id"] is not None else None


async def claim_with_assistants(
    conn: AsyncConnection,
    *,
    owner: str,
    token: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    background_limit: int,
    dialect: str,
) -> list[tuple[Record, Record | None]]:
    """`claim`, each run with its assistant's row as the claim found it (PostgreSQL, in the claim statement; None
    when it is gone), or None on SQLite, where a read costs less than widening the claim."""
    params = {"owner": owner, "token": token, "now": now, "lease_until": lease_until}
    claimed: list[tuple[Record, Record | None]] = []
    for interactive in (True, False):
        room = limit - len(claimed) if interactive else min(limit - len(claimed), background_limit)
        if room <= 0:
            continue
        if dialect == "postgresql":
            result = await conn.execute(_claim_with_assistant_statement(interactive), {**params, "limit": room})
            claimed += [_run_and_assistant(row) for row in result.all()]
        else:
            result = await conn.execute(_claim_statement(interactive, dialect), {**params, "limit": room})
            claimed += [(run, None) for run in common.records(result.all())]
    claimed.sort(key=lambda pair: (pair[0]["priority"], pair[0]["run_id"]))
    return claimed


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    token: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    background_limit: int,
    dialect: str,
) -> list[Record]:
    """Take up to `limit` runs that may start now, one per thread, oldest first: interactive runs (priority 0)
    before background ones, and at most `background_limit` background runs."""
    claimed = await claim_with_assistants(
        conn,
        owner=owner,
        token=token,
        now=now,
        lease_until=lease_until,
        limit=limit,
        background_limit=background_limit,
        dialect=dialect,
    )
    return [run for run, _assistant in claimed]


_ANY_CLAIMABLE = (
    select(runs.c.run_id)
    .where(runs.c.status == "pending", runs.c.available_at <= bindparam("now", type_=UTCDateTime))
    .limit(1)
)


async def any_claimable(conn: AsyncConnection, now: datetime) -> bool:
    """Whether some pending run is due (it may still wait behind its thread's running one): a read, so that the
    queue's many wake-ups with nothing to take cost no write transaction."""
    return (await conn.execute(_ANY_CLAIMABLE, {"now": now})).first() is not None


_NEXT_AVAILABLE = select(func.min(runs.c.available_at)).where(
    runs.c.status == "pending", runs.c.available_at > bindparam("now", type_=UTCDateTime)
)


async def next_available_at(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the earliest delayed run (after_seconds) becomes claimable, if any."""
    value: datetime | None = (await conn.execute(_NEXT_AVAILABLE, {"now": now})).scalar_one()
    return value


async def count_inflight(conn: AsyncConnection) -> dict[str, int]:
    """How many runs wait and execute, across all replicas (the queue's depth, for /metrics)."""
    query = select(runs.c.status, func.count()).where(runs.c.status.in_(INFLIGHT)).group_by(runs.c.status)
    counts = dict.fromkeys(INFLIGHT, 0)
    counts.update({status: int(n) for status, n in (await conn.execute(query)).all()})
    return counts


async def renew(conn: AsyncConnection, run_id: str, token: str, lease_until: datetime) -> bool:
    result = await conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id, runs.c.lease_token == token, runs.c.status == "running")
        .values(lease_expires_at=lease_until)
    )
    return result.rowcount > 0


async def renew_many(conn: AsyncConnection, owner: str, run_ids: list[str], lease_until: datetime) -> None:
    """Extend the leases of the runs this worker is executing: only those, so that a run whose execution ended
    without its outcome being written stops being renewed and is reaped."""
    mine = (runs.c.run_id.in_(run_ids), runs.c.lease_owner == owner, runs.c.status == "running")
    if conn.dialect.name != "postgresql":
        await conn.execute(update(runs).where(*mine).values(lease_expires_at=lease_until))
        return
    # The rows locked in run id order, as a grouped outcome transaction takes them (queue/group_commit.py's `key`):
    # two transactions taking the same rows in the same order cannot deadlock, and a plain UPDATE takes them in
    # whatever order its plan reads them (a bitmap scan: the table's).
    locked = (
        select(runs.c.run_id)
        .where(*mine)
        .order_by(runs.c.run_id)
        .with_for_update(key_share=True)
        .cte("renewed")
        .prefix_with("MATERIALIZED")
    )
    await conn.execute(
        update(runs).where(runs.c.run_id.in_(select(locked.c.run_id))).values(lease_expires_at=lease_until)
    )


# Bind names must differ from column names in an UPDATE, hence the prefix.
_FINISH = (
    update(runs)
    .where(
        runs.c.run_id == bindparam("b_run_id"),
        runs.c.lease_token == bindparam("b_token"),
        runs.c.status == "running",
    )
    .values(
        status=bindparam("b_status"),
        output=bindparam("b_output", type_=runs.c.output.type),
        error=bindparam("b_error", type_=runs.c.error.type),
        updated_at=bindparam("b_now", type_=UTCDateTime),
        ended_at=bindparam("b_now", type_=UTCDateTime),
        lease_expires_at=None,
    )
)


def _finish_params(run: Record, status: str, output: Any, error: Any, now: datetime) -> dict[str, Any]:
    """The parameters of _FINISH (and of _FINISH_AND_LOCK, built on it)."""
    return {
        "b_run_id": run["run_id"],
        "b_token": run["lease_token"],
        "b_status": status,
        "b_output": output,
        "b_error": error,
        "b_now": now,
    }


def ended(run: Record, status: str, output: Any, error: Any, now: datetime) -> Record:
    """The run as a finish that held its lease leaves it (a new dict; `run` as claimed): what the outcome's
    writers return, and what a run's END event carries, built before the write."""
    changes = {"status": status, "output": output, "error": error, "updated_at": now, "ended_at": now}
    return {**run, **changes, "lease_expires_at": None}


async def finish(
    conn: AsyncConnection, run: Record, *, status: str, output: Any, error: Any, now: datetime
) -> Record | None:
    """Record the outcome of `run` (as claimed) if its lease token still holds; the run as it now stands, or None
    when the lease was lost (fenced)."""
    params = _finish_params(run, status, output, error, now)
    if (await conn.execute(_FINISH, params)).rowcount == 0:
        return None
    return ended(run, status, output, error, now)


# PostgreSQL: the fenced finish and the thread's row lock in one statement (where two were). The lock is taken only
# when the fence held; the statement's snapshot is older than the lock it may wait for, so whatever must see runs
# committed meanwhile (another run pending or running on the thread) is asked in a later statement.
_FINISHED = _FINISH.returning(runs.c.thread_id).cte("finished")
_LOCKED = (
    select(threads.c.thread_id)
    .where(threads.c.thread_id == select(_FINISHED.c.thread_id).scalar_subquery())
    .with_for_update()
    .cte("locked")
)
_FINISH_AND_LOCK = select(
    select(func.count()).select_from(_FINISHED).scalar_subquery().label("finished"),
    select(func.count()).select_from(_LOCKED).scalar_subquery().label("locked"),
)


async def finish_and_lock_thread(
    conn: AsyncConnection, run: Record, *, status: str, output: Any, error: Any, now: datetime
) -> Record | None:
    """PostgreSQL only: `finish`, and when the lease token held, the run's thread locked until the transaction
    ends (as threads.lock does), in one statement; the run as it now stands, or None when the lease was lost."""
    params = _finish_params(run, status, output, error, now)
    row = (await conn.execute(_FINISH_AND_LOCK, params)).one()
    if not row.finished:
        return None
    return ended(run, status, output, error, now)


def _written_with_the_finish(finished: Any, inserts: tuple[str, ...]) -> list[Any]:
    """Columns for the outcome statement's SELECT that make it run `inserts` (INSERTs ... RETURNING 1 that insert
    only when the CTE `fence` has a row; graphs/postgres_saver.outcome_inserts) as data-modifying CTEs after
    `finished`, with `fence` the run `finished` wrote: a CTE is rendered only when the statement references it,
    in the order first referenced, and a CTE may only name those before it."""
    if not inserts:
        return []
    fence = select(finished.c.run_id).cte("fence")
    columns = [select(func.count()).select_from(fence).scalar_subquery().label("fenced")]
    for i, sql in enumerate(inserts):
        written = text(sql).columns(sql_column("one")).cte(f"ck{i}")
        columns.append(select(func.count()).select_from(written).scalar_subquery().label(f"ck{i}"))
    return columns


def _held_lease() -> Any:
    """True while the run (`b_run_id`) holds its lease (`b_token`) as the statement's snapshot sees it."""
    return exists().where(
        runs.c.run_id == bindparam("b_run_id"), runs.c.lease_token == bindparam("b_token"), runs.c.status == "running"
    )


def _finished_after(thread_change: Any) -> tuple[Any, list[Any]]:
    """The fenced finish (_FINISH) as a CTE applied only when the CTE `thread_change` changed the run's thread, and
    the statement's first columns: `finished` (0 or 1) and `consistent`, which divides by zero, so that nothing of
    the statement is applied, when the thread changed but the finish's fence failed on the row's newest version."""
    finished = _FINISH.where(select(thread_change.c.thread_id).exists()).returning(runs.c.run_id).cte("finished")
    n_changed = select(func.count()).select_from(thread_change).scalar_subquery()
    n_finished = select(func.count()).select_from(finished).scalar_subquery()
    consistent = literal_column("1") / case((n_finished == n_changed, 1), else_=0)
    return finished, [n_finished.label("finished"), consistent.label("consistent")]


@functools.cache
def _finish_and_settle_statement(columns: frozenset[str], with_events: bool, inserts: tuple[str, ...] = ()) -> Any:
    # The thread is settled only when the run still holds its lease (as the snapshot sees it) and the thread's row
    # is the version the snapshot saw, and the run is finished only when the thread was settled; if the run's row
    # changed meanwhile so that the finish's fence no longer holds (the reaper ended it), the statement divides by
    # zero and nothing of it is applied. With events, the run's events (its END row among them) are inserted and
    # announced only when the run was finished.
    assignments: dict[str, Any] = {c: bindparam(f"v_{c}", type_=threads.c[c].type) for c in columns}
    others = _thread_has_inflight(bindparam("b_run_id"))  # the snapshot still sees this run running
    assignments["status"] = case((others, "busy"), else_=bindparam("v_status", type_=threads.c.status.type))
    settled = (
        update(threads)
        .where(threads.c.thread_id == bindparam("k_key"), _thread_unchanged(), _held_lease())
        .values(assignments)
        .returning(threads.c.thread_id)
        .cte("settled")
    )
    finished, columns_out = _finished_after(settled)
    columns_out += _written_with_the_finish(finished, inserts)
    if with_events:
        added, hinted = events.written_when(select(finished.c.run_id).exists())
        columns_out += [select(func.count()).select_from(added).scalar_subquery().label("events"), hinted]
    return select(*columns_out)


async def finish_and_settle(
    conn: AsyncConnection,
    run: Record,
    *,
    status: str,
    output: Any,
    error: Any,
    now: datetime,
    settled: str,
    changes: Record,
    batch: events.Batch | None = None,
    checkpoints: tuple[tuple[str, ...], Record] | None = None,
) -> Record | None:
    """PostgreSQL only, alone on an autocommit connection: `finish` and threads.settle_after_run(thread, `settled`,
    **`changes`) in one statement (where BEGIN, two statements and COMMIT were), when nothing can have changed the
    thread's runs unseen since the statement's snapshot; with `batch`, its run events written and announced by the
    same statement, only if the outcome was; so are `checkpoints` (the run's last checkpoint writes:
    graphs/postgres_saver.outcome_inserts). The run as it now stands (`ended(...)`); None when nothing was written
    (the thread's row changed meanwhile, or the lease was lost): the caller then writes the outcome the long way.
    Raises psycopg's DivisionByZero (through SQLAlchemy) when the run's row changed so that its fence failed after
    the snapshot; nothing was written then either."""
    params = _finish_params(run, status, output, error, now)
    params.update({"k_key": run["thread_id"], "v_status": settled, **{f"v_{c}": v for c, v in changes.items()}})
    if batch is not None:
        params.update(batch.params())
    inserts: tuple[str, ...] = ()
    if checkpoints is not None:
        inserts = checkpoints[0]
        params.update(checkpoints[1])
    statement = _finish_and_settle_statement(frozenset(changes), batch is not None, inserts)
    row = (await conn.execute(statement, params)).one()
    if not row.finished:
        return None
    return ended(run, status, output, error, now)


# LangGraph's checkpoint tables (its Postgres saver's, in the same database), as far as deleting a thread's rows.
_CHECKPOINT_TABLES = [
    sql_table(name, sql_column("thread_id")) for name in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
]


@functools.cache
def _finish_and_delete_thread_statement(with_events: bool) -> Any:
    # As _finish_and_settle_statement, for a run on a temporary thread: the thread (with its checkpoints) is deleted
    # instead of settled, only when no other run of it is pending or running. The run's row, finished here under
    # its fence (re-checked on the newest version of the row), goes with its thread at the end of the statement.
    deleted = (
        delete(threads)
        .where(
            threads.c.thread_id == bindparam("k_key"),
            _thread_unchanged(),
            _held_lease(),
            ~_thread_has_inflight(bindparam("b_run_id")),
        )
        .returning(threads.c.thread_id)
        .cte("deleted")
    )
    finished, columns_out = _finished_after(deleted)
    done = select(finished.c.run_id).exists()
    for i, checkpoints in enumerate(_CHECKPOINT_TABLES):
        gone = (
            delete(checkpoints)
            .where(checkpoints.c.thread_id == bindparam("k_key"), done)
            .returning(literal_column("1"))
            .cte(f"gone_{i}")
        )
        columns_out.append(select(func.count()).select_from(gone).scalar_subquery().label(f"gone_{i}"))
    if with_events:
        added, hinted = events.written_when(done)
        columns_out += [select(func.count()).select_from(added).scalar_subquery().label("events"), hinted]
    return select(*columns_out)


async def finish_and_delete_thread(
    conn: AsyncConnection,
    run: Record,
    *,
    status: str,
    output: Any,
    error: Any,
    now: datetime,
    batch: events.Batch | None = None,
) -> Record | None:
    """PostgreSQL only, alone on an autocommit connection: for a run on a temporary thread, `finish`, the thread
    deleted (threads.delete_if_no_inflight) with its run and LangGraph's checkpoints of it, and `batch` written,
    in one statement (where BEGIN, three statements, COMMIT and the checkpoints' deletion were; the run's last
    checkpoint writes, when the caller took them, need not be written at all), when no other run
    of the thread is pending or running and nothing can have changed that unseen since the statement's snapshot.
    The run as it last stood (`ended(...)`: its row is gone); None when nothing was written (another run of the
    thread is in flight, the thread's row changed meanwhile, or the lease was lost): the caller then writes the
    outcome the long way. Raises psycopg's DivisionByZero (through SQLAlchemy) when the run's fence failed after
    the snapshot; nothing was written then either."""
    params = _finish_params(run, status, output, error, now)
    params["k_key"] = run["thread_id"]
    if batch is not None:
        params.update(batch.params())
    row = (await conn.execute(_finish_and_delete_thread_statement(batch is not None), params)).one()
    if not row.finished:
        return None
    return ended(run, status, output, error, now)


async def set_usage(conn: AsyncConnection, run_id: str, usage: Record) -> None:
    """The run's token usage (queue/usage.py), written with its outcome."""
    await conn.execute(update(runs).where(runs.c.run_id == run_id).values(usage=usage))


async def cancel_pending(conn: AsyncConnection, run_ids: list[str], now: datetime) -> list[Record]:
    result = await conn.execute(
        update(runs)
        .where(runs.c.run_id.in_(run_ids), runs.c.status == "pending")
        .values(
            status="interrupted",
            updated_at=now,
            ended_at=now,
            error={"error": "Cancelled", "message": "cancelled before it started"},
        )
        .returning(*runs.c)
    )
    return common.records(result.all())


async def request_cancel(conn: AsyncConnection, run_ids: list[str], action: str) -> None:
    await conn.execute(
        update(runs).where(runs.c.run_id.in_(run_ids), runs.c.status == "running").values(cancel_action=action)
    )


async def cancels_requested(conn: AsyncConnection, run_ids: list[str]) -> list[tuple[str, str]]:
    """(run_id, action) for those of these running runs that someone asked to cancel (request_cancel)."""
    query = select(runs.c.run_id, runs.c.cancel_action).where(
        runs.c.run_id.in_(run_ids), runs.c.status == "running", runs.c.cancel_action.is_not(None)
    )
    return [(row.run_id, row.cancel_action) for row in (await conn.execute(query)).all()]


async def expired_leases(conn: AsyncConnection, now: datetime) -> list[Record]:
    query = select(runs).where(runs.c.status == "running", runs.c.lease_expires_at < now)
    return common.records((await conn.execute(query)).all())


async def end_abandoned(conn: AsyncConnection, run_id: str, token: str | None, error: Any, now: datetime) -> bool:
    """End a run whose worker is gone. Fenced on the token seen when it was found, so a run renewed meanwhile stays."""
    result = await conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id, runs.c.status == "running", runs.c.lease_token == token)
        .values(status="error", error=error, updated_at=now, ended_at=now, lease_token=None, lease_expires_at=None)
    )
    return result.rowcount > 0


async def delete_one(conn: AsyncConnection, run_id: str) -> bool:
    return (await conn.execute(delete(runs).where(runs.c.run_id == run_id))).rowcount > 0


async def for_cron(conn: AsyncConnection, cron_id: str, *, limit: int, offset: int) -> list[Record]:
    query = (
        select(runs)
        .where(runs.c.cron_id == cron_id)
        .order_by(runs.c.scheduled_for.desc(), runs.c.run_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return common.records((await conn.execute(query)).all())


async def thread_ids_for_assistant(conn: AsyncConnection, assistant_id: str) -> list[str]:
    query = select(runs.c.thread_id).where(runs.c.assistant_id == assistant_id).distinct()
    return list((await conn.execute(query)).scalars().all())
