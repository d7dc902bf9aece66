"""An index on pending runs by the moment they become claimable: the queue asks "is anything claimable now?" and
"when does the next delayed run become due?" on every wake-up, which without it read every pending run.

Revision ID: 0004_runs_available
Revises: 0003_run_events
"""

from alembic import op

revision = "0004_runs_available"
down_revision = "0003_run_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_available", "runs", ["status", "available_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_available", table_name="runs")
