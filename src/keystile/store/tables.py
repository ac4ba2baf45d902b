"""The schema. Alembic migrations in ``migrations/`` create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)

from keystile.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite so it autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "keystile_users",
    metadata,
    Column("id", Uuid(as_uuid=True), primary_key=True),
    # Always the normalised form (keystile.identity.normalize_email).
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(512), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

tokens = Table(
    "keystile_tokens",
    metadata,
    # A random id for JWTs; a keyed hash for codes (the code itself is never stored).
    Column("jti", String(128), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("subject", String(320), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("extra", JSON(), nullable=True),
    # Wrong guesses against this (short-code) token; it is burned at the strategy's limit.
    Column("failed_attempts", Integer(), nullable=False, server_default="0"),
    Index(None, "subject", "purpose"),
    Index(None, "expires_at"),
)

audit_events = Table(
    "keystile_audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("strategy", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("success", Boolean(), nullable=False),
    Column("subject", String(64), nullable=True),
    Column("identity", String(320), nullable=True),
    Column("client_address", String(128), nullable=True),
    Column("extra", JSON(), nullable=True),
    Index(None, "identity", "strategy", "occurred_at"),
    Index(None, "occurred_at"),
)

rate_limit_hits = Table(
    "keystile_rate_limit_hits",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # A limiter key such as "otp:sign_in:<normalised identity>".
    Column("key", String(400), nullable=False),
    Column("hit_at", UTCDateTime(), nullable=False),
    Index(None, "key", "hit_at"),
)

totp_authenticators = Table(
    "keystile_totp_authenticators",
    metadata,
    # A random id (secrets.token_urlsafe), also what a setup token names.
    Column("id", String(64), primary_key=True),
    Column(
        "user_id",
        Uuid(as_uuid=True),
        ForeignKey(
            "keystile_users.id",
            name="fk_keystile_totp_authenticators_user_id",
            ondelete="CASCADE",
        ),
        nullable=False,
    ),
    # keystile.crypto.sealing.seal(...) of the secret, bound to the user id: never the secret.
    Column("sealed_secret", String(512), nullable=False),
    # The sealing key's kid, beside the value, so rotation finds rows under older keys.
    Column("key_id", String(64), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("digits", Integer(), nullable=False),
    Column("period", Integer(), nullable=False),
    # The last accepted RFC 6238 time step: only a later one is accepted (no replay).
    Column("last_step", BigInteger(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # NULL while the setup is pending (not yet confirmed with a code).
    Column("confirmed_at", UTCDateTime(), nullable=True),
    Index(None, "user_id"),
)

recovery_codes = Table(
    "keystile_recovery_codes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "user_id",
        Uuid(as_uuid=True),
        ForeignKey(
            "keystile_users.id",
            name="fk_keystile_recovery_codes_user_id_keystile_users",
            ondelete="CASCADE",
        ),
        nullable=False,
    ),
    # A keyed hash over (purpose, user id, normalised code), or an Argon2id hash of
    # that: never the code. The user id is inside the HMAC, so the hash alone finds
    # the row: a verification is one unique-index lookup whatever the table's size.
    Column("code_hash", String(128), nullable=False),
    # The hashing key's id (keystile.crypto.keyring.Key.kid) the hash was made with.
    Column("key_id", String(64), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Index(None, "code_hash", unique=True),
    # user_id alone: a verification's UPDATE of used_at then touches no index.
    Index(None, "user_id"),
)

oauth_clients = Table(
    "keystile_oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # A keyed hash of the secret (keystile.crypto.hashing), never the secret; NULL: public.
    Column("secret_hash", String(128), nullable=True),
    # Grant type URIs (RFC 6749 names and Auth0's extension grants) the client may use.
    Column("grant_types", JSON(), nullable=False),
    Column("audience", String(200), nullable=False),
    Column("access_token_lifetime", Integer(), nullable=False),
    Column("refresh_token_lifetime", Integer(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

oauth_signing_keys = Table(
    "keystile_oauth_signing_keys",
    metadata,
    # The JWS kid: a fingerprint of the public key.
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    # keystile.crypto.sealing.seal(...) of the PKCS#8 private key, bound to the kid.
    Column("sealed_key", String(8192), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # When a newer key took over signing (NULL: this key signs).
    Column("retired_at", UTCDateTime(), nullable=True),
    # Published in the JWKS until then: the expiry of the last token it may have signed.
    Column("publish_until", UTCDateTime(), nullable=True),
)

oauth_refresh_tokens = Table(
    "keystile_oauth_refresh_tokens",
    metadata,
    # A keyed hash of the opaque token, never the token.
    Column("id", String(128), primary_key=True),
    # Every token rotated from one sign-in shares the family: reuse revokes it whole.
    Column("family_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column(
        "user_id",
        Uuid(as_uuid=True),
        ForeignKey(
            "keystile_users.id",
            name="fk_keystile_oauth_refresh_tokens_user_id_keystile_users",
            ondelete="CASCADE",
        ),
        nullable=False,
    ),
    Column("scope", String(1000), nullable=False),
    # The original sign-in, kept across refreshes: strategies, amr, auth_time.
    Column("sign_in", JSON(), nullable=False),
    # The session row (keystile_tokens.jti) of the access token issued beside it.
    Column("access_jti", String(128), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index(None, "family_id"),
    Index(None, "expires_at"),
)
