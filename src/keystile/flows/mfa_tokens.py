"""MFA tokens: a first factor passed, a second still owed.

An MFA token is what a caller holds between the two steps of a sign-in. It is
opaque (256 random bits), stored only as a keyed hash (so a copy of the
database gives no live token back), lives at most
``KEYSTILE_MFA_TOKEN_LIFETIME_SECONDS`` (5 minutes by default), is bound to
the user and to the first factor (its row carries both), is used up by the
second factor's success, and is burned after :data:`MAX_FAILURES` wrong
second factors. It is never a session token: no route that needs a bearer
token accepts it, and it carries no claim a guard would read.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.store import tokens
from keystile.store.prepared import Executor

PURPOSE = "mfa"
#: Wrong second factors after which an MFA token is burned.
MAX_FAILURES = 5
#: Longest MFA token input looked at: a real one is 43 characters.
MAX_TOKEN_INPUT = 128


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What an MFA token stands for.

    Attributes:
        jti: the stored id of the token (a keyed hash of it).
        user_id: whom the first factor proved.
        strategies: the first factor's strategies, in order.
        amr: the first factor's RFC 8176 values.
        methods: what may finish the sign-in (``totp``, ``recovery_code``, ``totp_setup``).
        expires_at: when the token dies.
        password_hash: a new password waiting for the second factor
            (see :meth:`MfaTokens.issue_in`).
    """

    jti: str
    user_id: uuid.UUID
    strategies: tuple[str, ...]
    amr: tuple[str, ...]
    methods: tuple[str, ...]
    expires_at: datetime
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class IssuedMfaToken:
    """A new MFA token and its lifetime in seconds."""

    token: str = field(repr=False)
    expires_in: int


class MfaTokens:
    """Issue, find and use MFA tokens, inside the callers' transactions."""

    def __init__(self, *, hashing_keys: KeyRing, lifetime: timedelta) -> None:
        self._ring = hashing_keys
        self._lifetime = lifetime

    def issue_in(
        self,
        conn: Executor,
        *,
        user_id: uuid.UUID,
        strategies: tuple[str, ...],
        amr: tuple[str, ...],
        methods: tuple[str, ...],
        now: datetime,
        password_hash: str | None = None,
    ) -> IssuedMfaToken:
        """Store a new MFA token for a first factor that passed; return it (once).

        ``password_hash``: a new password the first factor proved the right to
        set (a confirmed registration), given to the account only when the
        second factor succeeds.
        """
        token = secrets.token_urlsafe(32)
        extra: dict[str, object] = {
            "strategies": list(strategies),
            "amr": list(amr),
            "methods": list(methods),
        }
        if password_hash is not None:
            extra["password_hash"] = password_hash
        tokens.insert_token(
            conn,
            jti=keyed_hash(self._ring.current, PURPOSE, token),
            purpose=PURPOSE,
            subject=str(user_id),
            now=now,
            expires_at=now + self._lifetime,
            extra=extra,
        )
        return IssuedMfaToken(token=token, expires_in=int(self._lifetime.total_seconds()))

    def find_in(self, conn: Executor, token: str, *, now: datetime) -> PendingSignIn | None:
        """The live sign-in ``token`` stands for, or ``None`` (unknown, used, burned, expired)."""
        if not token or len(token) > MAX_TOKEN_INPUT:
            return None
        for jti in keyed_hashes(self._ring, PURPOSE, token):
            found = tokens.find_live_token(
                conn, jti=jti, purpose=PURPOSE, now=now, max_failures=MAX_FAILURES
            )
            if found is not None:
                subject, extra, expires_at = found
                return PendingSignIn(
                    jti=jti,
                    user_id=uuid.UUID(subject),
                    strategies=tuple(extra.get("strategies", ())),
                    amr=tuple(extra.get("amr", ())),
                    methods=tuple(extra.get("methods", ())),
                    expires_at=expires_at.astimezone(UTC),
                    password_hash=(
                        str(extra["password_hash"]) if "password_hash" in extra else None
                    ),
                )
        return None

    def use_in(self, conn: Executor, pending: PendingSignIn, *, now: datetime) -> bool:
        """Use the token up (the sign-in is finished): true for exactly one caller."""
        return tokens.use_token(
            conn, jti=pending.jti, purpose=PURPOSE, now=now, max_failures=MAX_FAILURES
        )

    def fail_in(self, conn: Executor, pending: PendingSignIn, *, now: datetime) -> None:
        """Count a wrong second factor against the token, burning it at the limit."""
        tokens.count_token_failure(
            conn, jti=pending.jti, purpose=PURPOSE, now=now, max_failures=MAX_FAILURES
        )
