"""OAuth 2.0: clients, signing keys (sealed) and refresh tokens (keyed hashes).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keystile.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keystile_oauth_clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=True),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(200), nullable=False),
        sa.Column("access_token_lifetime", sa.Integer(), nullable=False),
        sa.Column("refresh_token_lifetime", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_keystile_oauth_clients"),
    )
    op.create_table(
        "keystile_oauth_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("sealed_key", sa.String(8192), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("publish_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_keystile_oauth_signing_keys"),
    )
    op.create_table(
        "keystile_oauth_refresh_tokens",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("family_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("scope", sa.String(1000), nullable=False),
        sa.Column("sign_in", sa.JSON(), nullable=False),
        sa.Column("access_jti", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_keystile_oauth_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["keystile_users.id"],
            name="fk_keystile_oauth_refresh_tokens_user_id_keystile_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_keystile_oauth_refresh_tokens_family_id",
        "keystile_oauth_refresh_tokens",
        ["family_id"],
    )
    op.create_index(
        "ix_keystile_oauth_refresh_tokens_expires_at",
        "keystile_oauth_refresh_tokens",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_table("keystile_oauth_refresh_tokens")
    op.drop_table("keystile_oauth_signing_keys")
    op.drop_table("keystile_oauth_clients")
