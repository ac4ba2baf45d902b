"""Assurance guards: a second factor, a recent sign-in (RFC 9470 step-up challenges).

For a host's routes and Keystile's own, on top of :mod:`keystile.web.guards`
(who is calling) and :mod:`keystile.web.authentication` (``request.user``)::

    @app.post("/transfer")
    async def transfer(session: Session = Depends(keystile.require_second_factor)) -> ...: ...

    @app.post("/email")
    async def change_email(
        session: Session = Depends(keystile.require_recent_auth(timedelta(minutes=5))),
    ) -> ...: ...

    # Starlette, behind AuthenticationMiddleware with keystile.authentication_backend():
    @keystile.requires_second_factor
    async def transfer(request: Request) -> Response: ...

A session has passed a second factor exactly when its ``amr`` claim holds
``"mfa"`` (RFC 8176 §2); it is recent enough when ``now - auth_time <=
max_age``, with ``now`` from the deployment's clock (a step-up refreshes
``auth_time``). A session that is not enough is refused with 403
``insufficient_authentication`` and ``WWW-Authenticate: Bearer
error="insufficient_user_authentication", error_description="…"`` plus
``acr_values="`` :data:`ACR_MFA` ``"`` (a second factor is missing) and/or
``max_age="<seconds>"`` (the sign-in is too old): the client steps up
rather than signing in again. A caller with no valid token at all is still
401 ``unauthenticated``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from fastapi import Depends
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from keystile.clock import Clock
from keystile.errors import InsufficientAuthenticationError, UnauthenticatedError
from keystile.flows.sessions import Session
from keystile.tokens import AMR_MFA
from keystile.web.authentication import SessionUser
from keystile.web.errors import GuardError, error_response

#: The ``acr_values`` a refused caller is asked for when a second factor is missing.
#: The OpenID PAPE multi-factor policy: the value Auth0's step-up uses, so clients
#: written for Auth0 recognise it.
ACR_MFA: Final = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

SECOND_FACTOR_MESSAGE: Final = "This call needs a sign-in with a second factor."
RECENT_AUTH_MESSAGE: Final = "This call needs a more recent sign-in."
STRONGER_AND_RECENT_MESSAGE: Final = "This call needs a recent sign-in with a second factor."

#: A FastAPI dependency giving the caller's session.
SessionDependency = Callable[..., Awaitable[Session]]
#: A Starlette function endpoint.
Endpoint = Callable[[Request], Awaitable[Response]]

#: Without credentials RFC 6750 §3.1 names no error, only the scheme.
_NO_CREDENTIALS: Final = {"WWW-Authenticate": "Bearer"}


def as_max_age(max_age: timedelta | int) -> timedelta:
    """``max_age`` (a ``timedelta``, or whole seconds) as a ``timedelta``.

    Raises:
        ValueError: a negative age (a programming error, caught when the guard is built).
    """
    age = max_age if isinstance(max_age, timedelta) else timedelta(seconds=max_age)
    if age < timedelta(0):
        raise ValueError("max_age must not be negative")
    return age


def has_second_factor(session: Session) -> bool:
    """Whether the session passed a second factor: its ``amr`` holds ``"mfa"`` (RFC 8176)."""
    return AMR_MFA in session.claims.amr


def check_assurance(
    session: Session,
    *,
    now: datetime | None = None,
    second_factor: bool = False,
    max_age: timedelta | None = None,
) -> None:
    """Refuse ``session`` unless it passed a second factor (if asked) and is recent enough.

    Pure: the time comes in as ``now``.

    Args:
        session: the verified session.
        now: the time to judge recency at (required with ``max_age``).
        second_factor: the session's ``amr`` must hold ``"mfa"``.
        max_age: at most this long since ``auth_time``.

    Raises:
        InsufficientAuthenticationError: with ``acr_values`` set to
            :data:`ACR_MFA` when the second factor is missing, ``max_age`` (whole
            seconds, rounded down so a client that complies is always let in)
            when the sign-in is too old; both when both fail.
        ValueError: ``max_age`` without ``now`` (a programming error).
    """
    missing_factor = second_factor and not has_second_factor(session)
    too_old = False
    if max_age is not None:
        if now is None:
            raise ValueError("check_assurance needs now to judge max_age")
        too_old = now - session.auth_time > max_age
    if not (missing_factor or too_old):
        return
    if missing_factor and too_old:
        message = STRONGER_AND_RECENT_MESSAGE
    else:
        message = SECOND_FACTOR_MESSAGE if missing_factor else RECENT_AUTH_MESSAGE
    raise InsufficientAuthenticationError(
        message,
        acr_values=ACR_MFA if missing_factor else None,
        max_age=int(max_age.total_seconds()) if too_old and max_age is not None else None,
    )


def second_factor_dependency(current_session: SessionDependency) -> SessionDependency:
    """A FastAPI dependency giving the caller's session if it passed a second factor.

    Built on ``current_session`` (:func:`keystile.web.guards.session_dependency`),
    so a route that also depends on that one verifies the token once.

    The dependency raises :class:`GuardError`: 401 ``unauthenticated`` without a
    valid token, 403 ``insufficient_authentication`` (``acr_values``) without
    a second factor.
    """

    async def require_second_factor(session: Session = Depends(current_session)) -> Session:
        try:
            check_assurance(session, second_factor=True)
        except InsufficientAuthenticationError as error:
            raise GuardError(error) from None
        return session

    return require_second_factor


def recent_auth_dependency(
    current_session: SessionDependency,
    clock: Clock,
    max_age: timedelta | int,
    *,
    second_factor: bool = False,
) -> SessionDependency:
    """A FastAPI dependency giving the caller's session if it signed in within ``max_age``.

    ``second_factor`` also asks for ``"mfa"`` in ``amr`` (a recent second
    factor, as TOTP re-enrolment and recovery-code generation need).

    The dependency raises :class:`GuardError`: 401 ``unauthenticated`` without a
    valid token, 403 ``insufficient_authentication`` (``max_age``, and
    ``acr_values`` when the second factor is missing) otherwise.

    Raises:
        ValueError: a negative ``max_age``, when the dependency is built.
    """
    age = as_max_age(max_age)

    async def require_recent_auth(session: Session = Depends(current_session)) -> Session:
        try:
            check_assurance(session, now=clock.now(), second_factor=second_factor, max_age=age)
        except InsufficientAuthenticationError as error:
            raise GuardError(error) from None
        return session

    return require_recent_auth


def authenticated_session(conn: HTTPConnection) -> Session:
    """The session that Keystile's authentication backend put on ``request.user``.

    Needs Starlette's ``AuthenticationMiddleware`` with
    :class:`~keystile.web.authentication.SessionAuthenticationBackend`
    (Starlette raises ``AssertionError`` without the middleware).

    Raises:
        GuardError: 401 ``unauthenticated`` with ``WWW-Authenticate: Bearer``
            for an anonymous caller (an invalid token never gets this far:
            the middleware's ``on_error`` answers it).
    """
    user = conn.user
    if not isinstance(user, SessionUser):
        raise GuardError(UnauthenticatedError(), headers=_NO_CREDENTIALS)
    return user.session


def _guarded(endpoint: Endpoint, check: Callable[[Session], None]) -> Endpoint:
    """``endpoint`` behind ``check``; a refusal is answered in Keystile's shape here,
    so the host app needs no exception handler for it."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            check(authenticated_session(request))
        except InsufficientAuthenticationError as error:
            return error_response(error)
        except GuardError as refusal:
            return error_response(refusal.error, headers=refusal.headers)
        return await endpoint(request)

    return guarded


def second_factor_required(endpoint: Endpoint) -> Endpoint:
    """A Starlette function endpoint, let in only with a second factor (see
    :func:`authenticated_session`): 401 for an anonymous caller, 403
    ``insufficient_authentication`` with ``acr_values`` for one without it."""
    return _guarded(endpoint, functools.partial(check_assurance, second_factor=True))


def recent_auth_required(
    clock: Clock, max_age: timedelta | int, *, second_factor: bool = False
) -> Callable[[Endpoint], Endpoint]:
    """A decorator for Starlette function endpoints: let in only a sign-in within
    ``max_age`` (and with a second factor, if asked); 403 with ``max_age`` otherwise.

    Raises:
        ValueError: a negative ``max_age``.
    """
    age = as_max_age(max_age)

    def check(session: Session) -> None:
        check_assurance(session, now=clock.now(), second_factor=second_factor, max_age=age)

    def decorate(endpoint: Endpoint) -> Endpoint:
        return _guarded(endpoint, check)

    return decorate
