"""teams: teams, their members (one row per used seat) and the pictures members picked

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00

A pick's data key lives in data_keys like an order's (owner id = the
pick's id), so shredding it is scrubbed from the database files the same
way (docs/decisions/0012, docs/decisions/0017).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("admin_token_hash", sa.String(length=64), nullable=False),
        sa.Column("invite_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("styles", sa.JSON(), nullable=False),
        sa.Column("backdrop", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("seats_used", sa.Integer(), nullable=False),
        sa.Column("seats_revoked", sa.Integer(), nullable=False),
        sa.Column("seat_price_cents", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amount_paid_cents", sa.Integer(), nullable=True),
        sa.Column("payment_provider", sa.String(length=16), nullable=True),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invite_hash"),
    )
    op.create_index(op.f("ix_teams_expires_at"), "teams", ["expires_at"], unique=False)
    op.create_index(
        op.f("ix_teams_checkout_session_id"), "teams", ["checkout_session_id"], unique=False
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_index(op.f("ix_team_members_team_id"), "team_members", ["team_id"], unique=False)
    op.create_table(
        "team_picks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("variation_id", sa.String(length=32), nullable=False),
        sa.Column("style", sa.String(length=32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["team_members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("variation_id"),
    )
    op.create_index(op.f("ix_team_picks_team_id"), "team_picks", ["team_id"], unique=False)
    op.create_index(op.f("ix_team_picks_member_id"), "team_picks", ["member_id"], unique=False)
    op.create_index(op.f("ix_team_picks_order_id"), "team_picks", ["order_id"], unique=False)
    op.create_index(op.f("ix_team_picks_expires_at"), "team_picks", ["expires_at"], unique=False)


def downgrade() -> None:
    for index in ("expires_at", "order_id", "member_id", "team_id"):
        op.drop_index(op.f(f"ix_team_picks_{index}"), table_name="team_picks")
    op.drop_table("team_picks")
    op.drop_index(op.f("ix_team_members_team_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_index(op.f("ix_teams_checkout_session_id"), table_name="teams")
    op.drop_index(op.f("ix_teams_expires_at"), table_name="teams")
    op.drop_table("teams")
