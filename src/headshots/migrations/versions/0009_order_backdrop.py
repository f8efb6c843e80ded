"""orders.backdrop: the backdrop colour a person chose for the whole order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A name ("navy") or "#RRGGBB"; null: each style's own (headshots.backdrops).
    op.add_column("orders", sa.Column("backdrop", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "backdrop")
