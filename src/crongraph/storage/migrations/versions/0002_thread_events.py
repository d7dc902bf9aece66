"""thread_events: the event log of the thread-centric stream (client.threads.stream), one order per thread.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crongraph.storage.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thread_events",
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column(
            "namespace",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("mark", sa.String(length=8), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", crongraph.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.thread_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("thread_id", "seq"),
    )
    with op.batch_alter_table("thread_events", schema=None) as batch_op:
        batch_op.create_index("ux_thread_events_mark", ["run_id", "mark"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("thread_events", schema=None) as batch_op:
        batch_op.drop_index("ux_thread_events_mark")
    op.drop_table("thread_events")
