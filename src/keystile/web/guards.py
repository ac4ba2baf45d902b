"""Guards: FastAPI dependencies that authenticate the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from keystile.errors import UnauthenticatedError
from keystile.flows.sessions import Session, Sessions


def client_address(request: Request) -> str | None:
    """The peer address of the connection.

    Behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so this is the client's address, not the proxy's.
    """
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer …`` header.

    Raises:
        UnauthenticatedError: no such header, or another scheme.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError()
    return token.strip()


def require_user(sessions: Sessions) -> Callable[[Request], Awaitable[Session]]:
    """A dependency giving the caller's :class:`Session`, or answering 401 ``unauthenticated``."""

    async def dependency(request: Request) -> Session:
        return await sessions.verify(bearer_token(request))

    return dependency
