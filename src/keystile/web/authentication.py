"""Keystile sessions as Starlette authentication: ``request.user`` and ``request.auth`` in any app.

::

    from starlette.middleware.authentication import AuthenticationMiddleware

    app.add_middleware(
        AuthenticationMiddleware,
        backend=keystile.authentication_backend(),
        on_error=keystile.on_authentication_error,
    )

    @app.get("/dashboard")
    async def dashboard(request: Request) -> ...:
        if not request.user.is_authenticated:   # no Authorization header: anonymous
            ...
        request.user.session                     # the verified Session

A request without an ``Authorization: Bearer`` header is anonymous
(``UnauthenticatedUser``, no scopes); so is one with another scheme, left to
another backend. A bearer token that does not verify is refused, as RFC 6750
asks: :func:`on_authentication_error` answers 401 ``unauthenticated`` with
``WWW-Authenticate: Bearer error="invalid_token"`` (Starlette's default
``on_error`` would answer 400 in plain text), or 503 ``unavailable`` when the
store cannot be reached.
"""

from __future__ import annotations

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import Response

from keystile.errors import KeystileError, UnauthenticatedError
from keystile.flows.sessions import Session, Sessions
from keystile.store.users import User
from keystile.web.errors import error_response
from keystile.web.guards import bearer_token

#: The scope every verified session has; ``@requires("authenticated")`` checks it.
AUTHENTICATED = "authenticated"


class SessionUser(BaseUser):
    """``request.user`` for a caller with a valid Keystile bearer token."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def user(self) -> User:
        """The Keystile user."""
        return self.session.user

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.session.user.email

    @property
    def identity(self) -> str:
        """The user's id (the ``sub`` of the token)."""
        return self.session.user.subject


class SessionAuthenticationError(AuthenticationError):
    """A bearer token was sent and did not verify; ``error`` is why (never the token)."""

    def __init__(self, error: KeystileError) -> None:
        self.error = error
        super().__init__(error.message)


class SessionAuthenticationBackend(AuthenticationBackend):
    """A Starlette ``AuthenticationBackend`` over :meth:`Sessions.verify`."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Credentials and user for a valid bearer token; ``None`` for no bearer token.

        Raises:
            SessionAuthenticationError: the token is forged, expired, revoked or
                its user is gone, or the store cannot be reached.
        """
        token = bearer_token(conn.headers.get("authorization"))
        if token is None:
            return None
        try:
            session = await self._sessions.verify(token)
        except KeystileError as error:
            raise SessionAuthenticationError(error) from None
        return AuthCredentials([AUTHENTICATED]), SessionUser(session)


def on_authentication_error(_conn: HTTPConnection, error: AuthenticationError) -> Response:
    """The ``on_error`` for Starlette's ``AuthenticationMiddleware``: Keystile's error answer."""
    if isinstance(error, SessionAuthenticationError):
        return error_response(error.error)
    # Another backend's refusal: its message is its own business, not the caller's.
    return error_response(UnauthenticatedError())
