"""Cron cost guards (docs/crons.md): run limits, start time, overlap policy, pause on failures and token budgets,
jitter and paused_reason on crons; fire kind, run outcome and token usage on the fire log; token usage on runs.

Every new column is nullable or has a server default, so existing rows keep today's behaviour (allow overlap, no
limits, no jitter; fires of kind "schedule").

Revision ID: 0005_cron_guards
Revises: 0004_runs_available
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crongraph.storage.tables

revision = "0005_cron_guards"
down_revision = "0004_runs_available"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_UTC = crongraph.storage.tables.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("crons") as batch:
        batch.add_column(sa.Column("max_runs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("runs_fired", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("start_time", _UTC, nullable=True))
        batch.add_column(sa.Column("overlap_policy", sa.String(length=16), nullable=False, server_default="allow"))
        batch.add_column(sa.Column("pause_after_failures", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("max_tokens_per_day", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("jitter_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("paused_reason", sa.Text(), nullable=True))
    op.create_index("ix_crons_owner", "crons", ["user_id", "enabled"], unique=False)
    with op.batch_alter_table("cron_fires") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=8), nullable=False, server_default="schedule"))
        batch.add_column(sa.Column("run_status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("ended_at", _UTC, nullable=True))
        batch.add_column(sa.Column("input_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("output_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("tokens", sa.BigInteger(), nullable=True))
    op.create_index("ix_cron_fires_ended", "cron_fires", ["cron_id", "ended_at"], unique=False)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("usage", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("usage")
    op.drop_index("ix_cron_fires_ended", table_name="cron_fires")
    with op.batch_alter_table("cron_fires") as batch:
        for name in ("tokens", "output_tokens", "input_tokens", "ended_at", "run_status", "kind"):
            batch.drop_column(name)
    op.drop_index("ix_crons_owner", table_name="crons")
    with op.batch_alter_table("crons") as batch:
        for name in (
            "paused_reason",
            "jitter_seconds",
            "max_tokens_per_day",
            "consecutive_failures",
            "pause_after_failures",
            "overlap_policy",
            "start_time",
            "runs_fired",
            "max_runs",
        ):
            batch.drop_column(name)
