"""processes: a heartbeat row per process that claims work, named by a random id

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_processes_seen_at"), "processes", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_processes_seen_at"), table_name="processes")
    op.drop_table("processes")
