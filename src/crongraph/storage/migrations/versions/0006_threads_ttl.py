"""Threads without a ttl store SQL NULL (they stored the JSON text `null`), and a partial index holds only the
threads with one: the ttl sweeper read every thread once a minute, inline on the event loop on SQLite.

Revision ID: 0006_threads_ttl
Revises: 0005_cron_guards
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_threads_ttl"
down_revision = "0005_cron_guards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE threads SET ttl = NULL WHERE ttl = 'null'::jsonb")
    else:
        op.execute("UPDATE threads SET ttl = NULL WHERE ttl = 'null'")
    op.create_index(
        "ix_threads_ttl",
        "threads",
        ["updated_at"],
        unique=False,
        sqlite_where=sa.text("ttl IS NOT NULL"),
        postgresql_where=sa.text("ttl IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_threads_ttl", table_name="threads")
