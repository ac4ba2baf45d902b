"""Rate-limit hits (database limiter backend) and per-token failed attempts (short codes).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keystile.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keystile_tokens") as batch:
        batch.add_column(
            sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "keystile_rate_limit_hits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("hit_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_keystile_rate_limit_hits"),
    )
    op.create_index(
        "ix_keystile_rate_limit_hits_key_hit_at", "keystile_rate_limit_hits", ["key", "hit_at"]
    )


def downgrade() -> None:
    op.drop_table("keystile_rate_limit_hits")
    with op.batch_alter_table("keystile_tokens") as batch:
        batch.drop_column("failed_attempts")
