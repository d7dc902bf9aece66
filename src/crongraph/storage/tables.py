"""The schema, once, for both dialects (SQLAlchemy Core). Alembic migrations create exactly these tables.

Invariants the database itself enforces:
- (cron_id, scheduled_for) is the primary key of cron_fires: one occurrence can never produce two runs.
- Deleting a thread deletes its runs and crons; deleting an assistant deletes its versions and crons; deleting a
  cron deletes its fire log but never the runs it created (runs.cron_id is not a foreign key).
- (run_id, seq) is the primary key of run_events, so a run's event log has one order and no gaps; run_events has
  no foreign key because events are written after the fact (a rolled-back run is deleted before its end is).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out. SQLite has no time zones, so UTC is stored naive there;
    its text form then sorts and compares correctly."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json: Any = JSON().with_variant(JSONB(), "postgresql")
# A JSON column whose None is SQL NULL rather than the JSON text `null`, for a column an index leaves out when empty.
NullableJson: Any = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
Id = String(36)

metadata = MetaData()

assistants = Table(
    "assistants",
    metadata,
    Column("assistant_id", Id, primary_key=True),
    Column("graph_id", String, nullable=False),
    Column("name", String, nullable=False),
    Column("description", Text),
    Column("config", Json, nullable=False),
    Column("context", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_assistants_graph", assistants.c.graph_id)

assistant_versions = Table(
    "assistant_versions",
    metadata,
    Column("assistant_id", Id, ForeignKey("assistants.assistant_id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("graph_id", String, nullable=False),
    Column("name", String, nullable=False),
    Column("description", Text),
    Column("config", Json, nullable=False),
    Column("context", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

threads = Table(
    "threads",
    metadata,
    Column("thread_id", Id, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("metadata", Json, nullable=False),
    Column("config", Json, nullable=False),
    Column("values", Json),
    Column("interrupts", Json, nullable=False),
    Column("error", Json),
    Column("ttl", NullableJson),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("state_updated_at", UTCDateTime, nullable=False),
)
Index("ix_threads_created", threads.c.created_at)
# The ttl sweeper reads only threads with a ttl, oldest update first (services/thread_sweeper.py).
Index(
    "ix_threads_ttl",
    threads.c.updated_at,
    sqlite_where=threads.c.ttl.is_not(None),
    postgresql_where=threads.c.ttl.is_not(None),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", Id, primary_key=True),
    Column("thread_id", Id, ForeignKey("threads.thread_id", ondelete="CASCADE"), nullable=False),
    Column("assistant_id", Id, nullable=False),
    Column("status", String(16), nullable=False),
    Column("metadata", Json, nullable=False),
    Column("kwargs", Json, nullable=False),
    Column("multitask_strategy", String(16)),
    # Lower runs first: interactive work (0) before background (1) before cron fires (2).
    Column("priority", Integer, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    # The lease: whoever holds lease_token may write the run's outcome; a reaped run gets a new token.
    Column("lease_owner", String),
    Column("lease_token", String),
    Column("lease_expires_at", UTCDateTime),
    Column("attempt", Integer, nullable=False),
    # A cancel asked for while the run was claimed elsewhere: "interrupt" or "rollback".
    Column("cancel_action", String(16)),
    Column("temporary", Boolean, nullable=False),
    Column("output", Json),
    Column("error", Json),
    Column("cron_id", Id),
    Column("scheduled_for", UTCDateTime),
    # Tokens of the AI messages the run produced: {input_tokens, output_tokens, total_tokens}; NULL when none.
    Column("usage", Json),
)
Index("ix_runs_queue", runs.c.status, runs.c.priority, runs.c.run_id)
Index("ix_runs_available", runs.c.status, runs.c.available_at)
Index("ix_runs_thread", runs.c.thread_id, runs.c.status)
Index("ix_runs_cron", runs.c.cron_id, runs.c.scheduled_for)

crons = Table(
    "crons",
    metadata,
    Column("cron_id", Id, primary_key=True),
    Column("assistant_id", Id, ForeignKey("assistants.assistant_id", ondelete="CASCADE"), nullable=False),
    Column("thread_id", Id, ForeignKey("threads.thread_id", ondelete="CASCADE")),
    Column("user_id", String),
    Column("schedule", String, nullable=False),
    Column("timezone", String),
    Column("end_time", UTCDateTime),
    Column("payload", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("on_run_completed", String(8)),
    Column("enabled", Boolean, nullable=False),
    # The earliest occurrence not yet fired; NULL once the cron is finished (past end_time).
    Column("next_run_date", UTCDateTime),
    Column("missed_policy", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Cost guards (docs/crons.md). runs_fired counts runs its schedule created, for max_runs; consecutive_failures
    # counts its runs that ended in error since the last success or re-enable, for pause_after_failures.
    Column("max_runs", Integer),
    Column("runs_fired", Integer, nullable=False, server_default="0"),
    Column("start_time", UTCDateTime),
    Column("overlap_policy", String(16), nullable=False, server_default="allow"),
    Column("pause_after_failures", Integer),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("max_tokens_per_day", BigInteger),
    Column("jitter_seconds", Integer, nullable=False, server_default="0"),
    # Why the server disabled it (failures, token budget); cleared when someone re-enables it.
    Column("paused_reason", Text),
)
Index("ix_crons_due", crons.c.enabled, crons.c.next_run_date)
Index("ix_crons_owner", crons.c.user_id, crons.c.enabled)
Index("ix_crons_thread", crons.c.thread_id)
Index("ix_crons_assistant", crons.c.assistant_id)
Index("ix_crons_created", crons.c.created_at)

cron_fires = Table(
    "cron_fires",
    metadata,
    Column("cron_id", Id, ForeignKey("crons.cron_id", ondelete="CASCADE"), primary_key=True),
    Column("scheduled_for", UTCDateTime, primary_key=True),
    Column("fired_at", UTCDateTime, nullable=False),
    # "created": a run was created; "skipped": deliberately not fired (policy, busy thread); "failed": see detail.
    Column("outcome", String(8), nullable=False),
    Column("run_id", Id),
    Column("detail", Text),
    # "schedule", "manual" (trigger: scheduled_for is the request's instant, never a whole second, so it cannot
    # take a scheduled occurrence's key) or "backfill".
    Column("kind", String(8), nullable=False, server_default="schedule"),
    # How the run ended and what it cost, written when it ends (the run row may go with its temporary thread).
    Column("run_status", String(16)),
    Column("ended_at", UTCDateTime),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("tokens", BigInteger),
)
Index("ix_cron_fires_fired", cron_fires.c.cron_id, cron_fires.c.fired_at)
Index("ix_cron_fires_ended", cron_fires.c.cron_id, cron_fires.c.ended_at)

# A run's stream events, for replicas other than the one executing it (PostgreSQL; see streams/pg_broker.py).
# seq counts from 1 and is the SSE event id; the row with seq 0 marks the end of the stream.
run_events = Table(
    "run_events",
    metadata,
    Column("run_id", Id, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("name", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_run_events_created", run_events.c.created_at)

# The thread-centric stream's event log (streams/thread_log.py): one order per thread, `seq` from 1, kept across
# runs and restarts. `mark` is "open" on a run's root `running` event and "end" on its root terminal event; the
# unique (run_id, mark) index lets every writer (the executor, the janitor of another replica) try to end a run
# and guarantees that only one of them does. Deleting a thread deletes its log.
thread_events = Table(
    "thread_events",
    metadata,
    Column("thread_id", Id, ForeignKey("threads.thread_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("run_id", Id, nullable=False),
    Column("channel", String, nullable=False),
    Column("namespace", Json, nullable=False),
    Column("mark", String(8)),
    # The whole event envelope as sent to clients (JSON).
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ux_thread_events_mark", thread_events.c.run_id, thread_events.c.mark, unique=True)
