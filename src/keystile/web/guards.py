"""Guards: FastAPI dependencies that authenticate the caller, for Keystile's routes and a host's.

::

    keystile = Keystile(settings)

    @app.get("/notes")
    async def notes(session: Session = Depends(keystile.current_session)) -> ...: ...

    @app.get("/profile")
    async def profile(user: User = Depends(keystile.require_user)) -> ...: ...

A caller without a valid bearer token is refused with :class:`GuardError`:
401 ``unauthenticated`` and ``WWW-Authenticate: Bearer`` (RFC 6750 §3; with
``error="invalid_token"`` when a token was sent but is not valid). A store
that cannot be reached refuses with 503 ``unavailable``: never let through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from keystile.errors import KeystileError, UnauthenticatedError
from keystile.flows.sessions import Session, Sessions
from keystile.store.users import User
from keystile.web.errors import GuardError

#: What a request without any credentials is told (RFC 6750 §3.1: no error code then).
_NO_CREDENTIALS = {"WWW-Authenticate": "Bearer"}


def client_address(request: Request) -> str | None:
    """The peer address of the connection.

    Behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so this is the client's address, not the proxy's.
    """
    return request.client.host if request.client else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value; ``None`` for no header or
    another scheme."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def verify_bearer(sessions: Sessions, authorization: str | None) -> Session:
    """The session of an ``Authorization`` header value.

    Raises:
        GuardError: 401 ``unauthenticated`` (no bearer token, or one that is
            forged, expired, revoked or whose user is gone), or the status of
            the store's failure (503 ``unavailable``).
    """
    token = bearer_token(authorization)
    if token is None:
        raise GuardError(UnauthenticatedError(), headers=_NO_CREDENTIALS)
    try:
        return await sessions.verify(token)
    except KeystileError as error:
        raise GuardError(error) from None


def session_dependency(sessions: Sessions) -> Callable[[Request], Awaitable[Session]]:
    """A dependency giving the caller's :class:`Session` (see :func:`verify_bearer`)."""

    async def current_session(request: Request) -> Session:
        return await verify_bearer(sessions, request.headers.get("authorization"))

    return current_session


def user_dependency(sessions: Sessions) -> Callable[[Request], Awaitable[User]]:
    """A dependency giving the caller's :class:`User` (see :func:`verify_bearer`)."""

    async def require_user(request: Request) -> User:
        session = await verify_bearer(sessions, request.headers.get("authorization"))
        return session.user

    return require_user
