"""Recovery codes: keyed (or Argon2id) hashes, single use by ``used_at``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keystile.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keystile_recovery_codes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_keystile_recovery_codes"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["keystile_users.id"],
            name="fk_keystile_recovery_codes_user_id_keystile_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_keystile_recovery_codes_code_hash",
        "keystile_recovery_codes",
        ["code_hash"],
        unique=True,
    )
    # On user_id alone: marking a code used then rewrites no index entry, so the
    # write of a verification does not grow with the table.
    op.create_index(
        "ix_keystile_recovery_codes_user_id",
        "keystile_recovery_codes",
        ["user_id"],
    )


def downgrade() -> None:
    op.drop_table("keystile_recovery_codes")
