"""The baseline schema: every table of storage/tables.py as of the first release (generated, then reviewed).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crongraph.storage.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "assistants",
        sa.Column("assistant_id", sa.String(length=36), nullable=False),
        sa.Column("graph_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("assistant_id"),
    )
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.create_index("ix_assistants_graph", ["graph_id"], unique=False)

    op.create_table(
        "threads",
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "interrupts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "ttl",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state_updated_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("thread_id"),
    )
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index("ix_threads_created", ["created_at"], unique=False)

    op.create_table(
        "assistant_versions",
        sa.Column("assistant_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("graph_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assistant_id"], ["assistants.assistant_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("assistant_id", "version"),
    )
    op.create_table(
        "crons",
        sa.Column("cron_id", sa.String(length=36), nullable=False),
        sa.Column("assistant_id", sa.String(length=36), nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=True),
        sa.Column("end_time", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("on_run_completed", sa.String(length=8), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_date", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("missed_policy", sa.String(length=8), nullable=False),
        sa.Column("created_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assistant_id"], ["assistants.assistant_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.thread_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cron_id"),
    )
    with op.batch_alter_table("crons", schema=None) as batch_op:
        batch_op.create_index("ix_crons_assistant", ["assistant_id"], unique=False)
        batch_op.create_index("ix_crons_created", ["created_at"], unique=False)
        batch_op.create_index("ix_crons_due", ["enabled", "next_run_date"], unique=False)
        batch_op.create_index("ix_crons_thread", ["thread_id"], unique=False)

    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("assistant_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "kwargs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("multitask_strategy", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("available_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_token", sa.String(), nullable=True),
        sa.Column("lease_expires_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("cancel_action", sa.String(length=16), nullable=True),
        sa.Column("temporary", sa.Boolean(), nullable=False),
        sa.Column(
            "output",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("cron_id", sa.String(length=36), nullable=True),
        sa.Column("scheduled_for", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.thread_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_cron", ["cron_id", "scheduled_for"], unique=False)
        batch_op.create_index("ix_runs_queue", ["status", "priority", "run_id"], unique=False)
        batch_op.create_index("ix_runs_thread", ["thread_id", "status"], unique=False)

    op.create_table(
        "cron_fires",
        sa.Column("cron_id", sa.String(length=36), nullable=False),
        sa.Column("scheduled_for", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["cron_id"], ["crons.cron_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cron_id", "scheduled_for"),
    )
    with op.batch_alter_table("cron_fires", schema=None) as batch_op:
        batch_op.create_index("ix_cron_fires_fired", ["cron_id", "fired_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("cron_fires", schema=None) as batch_op:
        batch_op.drop_index("ix_cron_fires_fired")

    op.drop_table("cron_fires")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_thread")
        batch_op.drop_index("ix_runs_queue")
        batch_op.drop_index("ix_runs_cron")

    op.drop_table("runs")
    with op.batch_alter_table("crons", schema=None) as batch_op:
        batch_op.drop_index("ix_crons_thread")
        batch_op.drop_index("ix_crons_due")
        batch_op.drop_index("ix_crons_created")
        batch_op.drop_index("ix_crons_assistant")

    op.drop_table("crons")
    op.drop_table("assistant_versions")
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index("ix_threads_created")

    op.drop_table("threads")
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.drop_index("ix_assistants_graph")

    op.drop_table("assistants")
