"""data_keys: wrapped data keys in a table of their own

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 15:00:00

The keys of orders and drafts move out of their rows so that a shredded key
can be scrubbed from the database's files at once (docs/decisions/0012).
Keys of live orders and drafts are copied over. On PostgreSQL the dropped
columns' old values stay in the table files until they are rewritten: run
``VACUUM FULL orders, drafts`` once after upgrading.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    op.execute(
        "INSERT INTO data_keys (owner_id, wrapped_key) "
        "SELECT id, wrapped_key FROM orders WHERE wrapped_key IS NOT NULL"
    )
    op.execute("INSERT INTO data_keys (owner_id, wrapped_key) SELECT id, wrapped_key FROM drafts")
    for table in ("orders", "drafts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("wrapped_key")


def downgrade() -> None:
    for table in ("orders", "drafts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE orders SET wrapped_key = "
        "(SELECT wrapped_key FROM data_keys WHERE owner_id = orders.id)"
    )
    op.execute(
        "UPDATE drafts SET wrapped_key = "
        "(SELECT wrapped_key FROM data_keys WHERE owner_id = drafts.id)"
    )
    op.execute("DELETE FROM drafts WHERE wrapped_key IS NULL")
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.alter_column("wrapped_key", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("data_keys")
