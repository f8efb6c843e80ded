"""redo and favourites: orders.redos_left, variations.favourite and redo_seed

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-08 10:00:00

An order made before this revision has no redo left: it was sold without
one (orders.redo). Its variations are not favourites.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redos_left", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("variations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("favourite", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("redo_seed", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("variations", schema=None) as batch_op:
        batch_op.drop_column("redo_seed")
        batch_op.drop_column("favourite")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("redos_left")
