"""Users, tokens and audit events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keystile.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keystile_users",
        sa.Column("id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_keystile_users"),
        sa.UniqueConstraint("email", name="uq_keystile_users_email"),
    )
    op.create_table(
        "keystile_tokens",
        sa.Column("jti", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("jti", name="pk_keystile_tokens"),
    )
    op.create_index("ix_keystile_tokens_subject_purpose", "keystile_tokens", ["subject", "purpose"])
    op.create_index("ix_keystile_tokens_expires_at", "keystile_tokens", ["expires_at"])
    op.create_table(
        "keystile_audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("identity", sa.String(320), nullable=True),
        sa.Column("client_address", sa.String(128), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_keystile_audit_events"),
    )
    op.create_index(
        "ix_keystile_audit_events_identity_strategy_occurred_at",
        "keystile_audit_events",
        ["identity", "strategy", "occurred_at"],
    )
    op.create_index(
        "ix_keystile_audit_events_occurred_at", "keystile_audit_events", ["occurred_at"]
    )


def downgrade() -> None:
    op.drop_table("keystile_audit_events")
    op.drop_table("keystile_tokens")
    op.drop_table("keystile_users")
