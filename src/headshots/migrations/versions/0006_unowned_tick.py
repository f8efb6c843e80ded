"""ticks: a row for the hourly sweep of blobs that no order or draft owns

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 04:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ticks = sa.table("ticks", sa.column("name", sa.String), sa.column("last_run", sa.DateTime))
    op.bulk_insert(ticks, [{"name": "unowned", "last_run": datetime(2000, 1, 1, tzinfo=UTC)}])


def downgrade() -> None:
    op.execute("DELETE FROM ticks WHERE name = 'unowned'")
