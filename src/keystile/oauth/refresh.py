"""Refresh tokens: opaque, stored as keyed hashes, rotated on every use, revoked by family.

Each use of a refresh token uses it up and issues its successor in the same
family, with a new access token (a new session row) that keeps the original
sign-in's ``strategies``, ``amr`` and ``auth_time``. A refresh token used
again after its rotation is a sign it was stolen (OAuth 2.0 Security BCP,
RFC 9700 §4.14.2): the whole family is revoked, with the access tokens
issued from it.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keystile.clock import Clock
from keystile.crypto.hashing import keyed_hash, keyed_hashes
from keystile.crypto.keyring import KeyRing
from keystile.flows.sessions import Authenticated, PendingSession, Sessions
from keystile.oauth.clients import OAuthError
from keystile.oauth.requirements import Requirements, check_requirements
from keystile.store import refresh_tokens as store
from keystile.store import users
from keystile.store.clients import ClientRow
from keystile.store.database import Database
from keystile.store.prepared import Executor
from keystile.store.users import User

PURPOSE = "oauth_refresh"
MAX_TOKEN_INPUT = 128


def invalid_refresh() -> OAuthError:
    """The one answer for every refresh token that cannot be used."""
    return OAuthError("invalid_grant", "Unknown or invalid refresh token.")


@dataclass(frozen=True, slots=True)
class Rotated:
    """A refresh token used: the new session, its scope and the successor token."""

    authenticated: Authenticated
    scope: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Used:
    user: User | None = None
    scope: str = ""
    sign_in: Mapping[str, Any] = field(default_factory=dict)
    reused: bool = False


class RefreshTokens:
    """Issue and rotate refresh tokens."""

    def __init__(
        self, *, db: Database, sessions: Sessions, hashing_keys: KeyRing, clock: Clock
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._ring = hashing_keys
        self._clock = clock

    def _id(self, token: str) -> str:
        return keyed_hash(self._ring.current, PURPOSE, token)

    async def issue(
        self,
        client: ClientRow,
        user_id: uuid.UUID,
        *,
        scope: str,
        sign_in: Mapping[str, Any],
        access_jti: str,
    ) -> str:
        """A refresh token starting a new family for a completed sign-in."""
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        await self._db.transact(
            functools.partial(
                store.insert_refresh_token,
                token_id=self._id(token),
                family_id=secrets.token_urlsafe(16),
                client_id=client.client_id,
                user_id=user_id,
                scope=scope,
                sign_in=sign_in,
                access_jti=access_jti,
                now=now,
                expires_at=now + timedelta(seconds=client.refresh_token_lifetime),
            )
        )
        return token

    async def rotate(
        self,
        client: ClientRow,
        token: str,
        *,
        requested_scope: str | None,
        requirements: Requirements = Requirements(),
    ) -> Rotated:
        """Use ``token`` up and issue its successor with a new access token's session.

        Raises:
            OAuthError: ``invalid_grant`` (unknown, expired, revoked, reused,
                another client's), ``invalid_scope`` (beyond the original) or
                ``unmet_authentication_requirements`` (see
                :func:`~keystile.oauth.requirements.check_requirements`); these last
                leave the token usable.
        """
        if not token or len(token) > MAX_TOKEN_INPUT:
            raise invalid_refresh()
        successor = secrets.token_urlsafe(32)
        pending = self._sessions.prepare()
        now = self._clock.now()
        used = await self._db.transact(
            functools.partial(
                self._rotate,
                client=client,
                token=token,
                successor=successor,
                pending=pending,
                requested_scope=requested_scope,
                requirements=requirements,
                now=now,
            )
        )
        if used.reused or used.user is None:
            raise invalid_refresh()
        sign_in = used.sign_in
        authenticated = self._sessions.complete(
            used.user,
            pending,
            strategies=tuple(sign_in.get("strategies", ())),
            amr=tuple(sign_in.get("amr", ())),
            auth_time=datetime.fromtimestamp(int(sign_in.get("auth_time", 0)), UTC),
        )
        return Rotated(authenticated=authenticated, scope=used.scope, token=successor)

    def _rotate(
        self,
        conn: Executor,
        *,
        client: ClientRow,
        token: str,
        successor: str,
        pending: PendingSession,
        requested_scope: str | None,
        requirements: Requirements,
        now: datetime,
    ) -> _Used:
        """The rotation's one transaction: use, or on reuse revoke the family."""
        candidates = keyed_hashes(self._ring, PURPOSE, token)
        row = None
        for token_id in candidates:
            row = store.use_refresh_token(conn, token_id, now=now)
            if row is not None:
                break
        if row is None:
            for token_id in candidates:
                family = store.family_of(conn, token_id)
                if family is not None:
                    store.revoke_family(conn, family, now=now)  # committed: stays revoked
                    return _Used(reused=True)
            return _Used()
        if row.client_id != client.client_id:
            raise invalid_refresh()  # rolls back: the owner's token stays usable
        check_requirements(  # raises, and rolls back, when the sign-in is too weak or old
            requirements,
            amr=tuple(row.sign_in.get("amr", ())),
            auth_time=datetime.fromtimestamp(int(row.sign_in.get("auth_time", 0)), UTC),
            now=now,
        )
        scope = row.scope
        if requested_scope is not None:
            asked = requested_scope.split()
            if not set(asked) <= set(scope.split()):
                raise OAuthError("invalid_scope", "The scope exceeds the original grant.")
            scope = " ".join(asked)
        user = users.find_by_id(conn, row.user_id)
        if user is None:
            return _Used()
        self._sessions.store_in(conn, user, pending)
        store.insert_refresh_token(
            conn,
            token_id=self._id(successor),
            family_id=row.family_id,
            client_id=client.client_id,
            user_id=user.id,
            scope=row.scope,
            sign_in=row.sign_in,
            access_jti=pending.row.jti,
            now=now,
            expires_at=row.expires_at,
        )
        return _Used(user=user, scope=scope, sign_in=row.sign_in)
