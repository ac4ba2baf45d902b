"""TOTP authenticators: sealed secrets, their key id, parameters and the last accepted step.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keystile.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keystile_totp_authenticators",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("sealed_secret", sa.String(512), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("digits", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_keystile_totp_authenticators"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["keystile_users.id"],
            name="fk_keystile_totp_authenticators_user_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_keystile_totp_authenticators_user_id", "keystile_totp_authenticators", ["user_id"]
    )


def downgrade() -> None:
    op.drop_table("keystile_totp_authenticators")
