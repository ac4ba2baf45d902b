"""The app factory and the mountable :class:`Keystile` integration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from keystile.clock import Clock
from keystile.errors import SchemaOutdatedError
from keystile.oauth.mfa_routes import mfa_router
from keystile.oauth.routes import token_router
from keystile.runtime import Extensions, Runtime
from keystile.settings import Settings
from keystile.store.users import User
from keystile.strategies.otp.routes import otp_router
from keystile.strategies.password.routes import password_router
from keystile.strategies.recovery_code.routes import recovery_code_router
from keystile.strategies.recovery_code.service import RecoveryCodeService
from keystile.strategies.totp.routes import totp_enrolment_router, totp_router
from keystile.web.assurance import (
    Endpoint,
    SessionDependency,
    recent_auth_dependency,
    recent_auth_required,
    second_factor_dependency,
    second_factor_required,
)
from keystile.web.authentication import SessionAuthenticationBackend, on_authentication_error
from keystile.web.body_limit import BodyLimitMiddleware
from keystile.web.edge import EdgeMiddleware
from keystile.web.errors import GuardError, install_error_handlers, on_guard_error
from keystile.web.guards import session_dependency, user_dependency
from keystile.web.mailbox import mailbox_router
from keystile.web.pages.guards import PageRedirect, on_page_redirect
from keystile.web.pages.options import PageOptions
from keystile.web.pages.routes import Pages
from keystile.web.recovery import (
    DEFAULT_SETUP_PATH,
    HALT,
    MissingCodesPolicy,
    recovery_codes_dependency,
)
from keystile.web.session_routes import session_router

logger = logging.getLogger("keystile")


class Keystile:
    """Keystile inside another FastAPI app, as a guest.

    ::

        keystile = Keystile(load_settings())
        keystile.install(app)          # routes under settings.route_prefix

        @app.get("/notes")
        async def notes(user: User = Depends(keystile.require_user)) -> ...: ...

    Keystile's error answers, ``no-store`` and security headers apply to its
    own routes only; the host's errors, validation answers and headers are
    its own. Call :meth:`prepare` once at start-up (migrations in development
    mode, a schema check in production) and :meth:`aclose` at shutdown; an app
    that forgets :meth:`prepare` gets it at start-up anyway (see :meth:`install`).

    Attributes:
        current_session: a FastAPI dependency giving the caller's
            :class:`~keystile.flows.sessions.Session`, or refusing with
            :class:`~keystile.web.errors.GuardError` (401 ``unauthenticated``,
            ``WWW-Authenticate: Bearer``).
        require_user: the same, giving the session's :class:`~keystile.store.users.User`.
        require_second_factor: a FastAPI dependency giving the session if it
            passed a second factor (``"mfa"`` in ``amr``); 403
            ``insufficient_authentication`` with an RFC 9470 challenge
            otherwise (see :mod:`keystile.web.assurance`).
    """

    #: ``on_error`` for Starlette's ``AuthenticationMiddleware`` with
    #: :meth:`authentication_backend`: Keystile's 401 (or 503) answer.
    on_authentication_error = staticmethod(on_authentication_error)

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        extensions: Extensions | None = None,
        pages: PageOptions | None = None,
    ) -> None:
        self.runtime = Runtime(settings, clock=clock, extensions=extensions)
        #: The hosted pages and their guards (``None`` with ``KEYSTILE_PAGES_ENABLED=false``);
        #: ``pages`` sets their paths, templates and texts.
        self.pages = Pages(self.runtime, pages) if settings.pages_enabled else None
        self.settings = settings
        self.current_session = session_dependency(self.runtime.sessions)
        self.require_user = user_dependency(self.runtime.sessions)
        self.require_second_factor = second_factor_dependency(self.current_session)
        self._prepared = False
        if settings.mode == "development" and "mode" not in settings.model_fields_set:
            logger.warning(
                "Keystile runs in DEVELOPMENT mode because KEYSTILE_MODE is not set: development "
                "keys, codes printed to the console and a /dev/mailbox for loopback callers. "
                "Set KEYSTILE_MODE=production (or Settings(mode=...)) to say which you mean."
            )

    def require_recent_auth(
        self, max_age: timedelta | int, *, second_factor: bool = False
    ) -> SessionDependency:
        """A FastAPI dependency giving the session if the user proved who they are within
        ``max_age`` (a ``timedelta`` or seconds; judged by this Keystile's clock), and
        passed a second factor too when ``second_factor`` is set.

        ::

            @app.post("/email")
            async def change_email(
                session: Session = Depends(keystile.require_recent_auth(300)),
            ) -> ...: ...

        A session too old is refused with 403 ``insufficient_authentication``
        and ``WWW-Authenticate: Bearer error="insufficient_user_authentication",
        …, max_age="<seconds>"``; no valid token is 401 ``unauthenticated``.

        Raises:
            ValueError: a negative ``max_age``.
        """
        return recent_auth_dependency(
            self.current_session, self.runtime.clock, max_age, second_factor=second_factor
        )

    #: Starlette's way: a decorator for a function endpoint behind
    #: ``AuthenticationMiddleware`` with :meth:`authentication_backend`, letting in a
    #: session with a second factor only (401 anonymous, 403 without the factor).
    requires_second_factor = staticmethod(second_factor_required)

    def requires_recent_auth(
        self, max_age: timedelta | int, *, second_factor: bool = False
    ) -> Callable[[Endpoint], Endpoint]:
        """Starlette's way of :meth:`require_recent_auth`: a decorator for a function
        endpoint behind ``AuthenticationMiddleware`` with :meth:`authentication_backend`.

        Raises:
            ValueError: a negative ``max_age``.
        """
        return recent_auth_required(self.runtime.clock, max_age, second_factor=second_factor)

    @property
    def recovery_codes(self) -> RecoveryCodeService | None:
        """The recovery-code strategy (its ``config``, ``generate``, ``status``), or
        ``None`` when recovery codes are turned off."""
        return self.runtime.recovery_codes

    async def recovery_codes_configured(self, user: User) -> bool:
        """Whether ``user`` holds at least one unused recovery code (always False when
        recovery codes are turned off: a stored batch no longer works then).

        Raises:
            UnavailableError: the database cannot be reached.
        """
        service = self.runtime.recovery_codes
        return service is not None and await service.has_unused(user)

    def require_recovery_codes(
        self, on_missing: str = HALT, setup_path: str = DEFAULT_SETUP_PATH
    ) -> Callable[..., Awaitable[User | None]]:
        """A FastAPI dependency that makes a signed-in user hold an unused recovery code
        (see :mod:`keystile.web.recovery`); it gives the user, or ``None`` to a caller
        without a valid bearer token (let through: pair it with :attr:`require_user`).

        ::

            @app.get("/billing", dependencies=[Depends(keystile.require_recovery_codes())])
            async def billing() -> ...: ...

        ``on_missing``: ``"halt"`` (403 ``recovery_codes_required``),
        ``"redirect_to_setup"`` (303 to ``setup_path``) or a path to answer 303 to;
        a JSON caller always gets the 403.

        Raises:
            ValueError: ``on_missing`` or ``setup_path`` is neither a mode nor a path.
        """
        policy = MissingCodesPolicy(on_missing=on_missing, setup_path=setup_path)
        configured = self.recovery_codes_configured if self.recovery_codes is not None else None
        return recovery_codes_dependency(self.runtime.sessions, configured, policy)

    @property
    def router(self) -> APIRouter:
        """Every Keystile route, under ``settings.route_prefix``."""
        router = APIRouter(prefix=self.settings.route_prefix, lifespan=self._ensure_prepared)
        runtime = self.runtime
        router.include_router(password_router(runtime.password, runtime.sign_in))
        if runtime.otp is not None:
            router.include_router(otp_router(runtime.otp, runtime.sign_in))
        if runtime.totp is not None:
            router.include_router(totp_router(runtime.sign_in, runtime.sessions))
        if runtime.totp_enrolment is not None and runtime.enrolment is not None:
            router.include_router(
                totp_enrolment_router(
                    runtime.totp_enrolment, runtime.enrolment, runtime.sign_in, runtime.sessions
                )
            )
        if runtime.recovery_codes is not None:
            router.include_router(
                recovery_code_router(
                    runtime.sign_in,
                    runtime.sessions,
                    runtime.recovery_codes,
                    clock=runtime.clock,
                    notices=runtime.notices,
                )
            )
        router.include_router(session_router(self.runtime.sessions))
        return router

    @property
    def development_router(self) -> APIRouter | None:
        """``/dev/mailbox`` in development mode with the console sender; otherwise ``None``."""
        if self.settings.mode != "development" or self.runtime.mailbox is None:
            return None
        return mailbox_router(self.runtime.mailbox)

    def authentication_backend(self) -> SessionAuthenticationBackend:
        """A Starlette ``AuthenticationBackend``: ``request.user`` and ``request.auth`` from
        a Keystile bearer token, in any Starlette app (see :mod:`keystile.web.authentication`).

        Pass :attr:`on_authentication_error` as the middleware's ``on_error``.
        """
        return SessionAuthenticationBackend(self.runtime.sessions)

    def install(self, app: FastAPI) -> None:
        """Mount Keystile's routes on ``app``, leaving the rest of ``app`` as it was.

        Errors raised in Keystile's routes are answered there
        (:class:`~keystile.web.responses.KeystileRoute`); the one app-wide
        handler added is for :class:`~keystile.web.errors.GuardError`, the
        exception only Keystile's guards raise, so a host route they refuse
        answers in Keystile's shape. Bodies over ``settings.max_body_bytes``
        sent to Keystile's routes are refused with 413 before they are read;
        the host's routes are left alone. At start-up, if the app's own
        lifespan did not call :meth:`prepare`, Keystile's routes do: in
        production an unmigrated database then stops the start-up with an
        error naming ``keystile db upgrade``.
        """
        app.include_router(self.router)
        development = self.development_router
        prefixes = [self.settings.route_prefix, "/dev"]
        if development is not None:
            app.include_router(development)
        if self.pages is not None:
            app.include_router(self.pages.router)
            prefixes.extend(self.pages.paths.values())
            app.add_exception_handler(PageRedirect, on_page_redirect)
        # An empty route prefix puts Keystile's routes at the root: then every path is ours.
        limited = tuple(prefixes) if self.settings.route_prefix else ()
        app.add_middleware(
            BodyLimitMiddleware, max_bytes=self.settings.max_body_bytes, prefixes=limited
        )
        app.add_exception_handler(GuardError, on_guard_error)

    async def prepare(self) -> None:
        """Get the database ready (see :meth:`Runtime.prepare_database`).

        Raises:
            SchemaOutdatedError: production mode and the database was never
                migrated or is behind: run ``keystile db upgrade``.
        """
        try:
            await anyio.to_thread.run_sync(self.runtime.prepare_database)
        except SchemaOutdatedError as error:
            logger.error("%s", error.message)
            raise
        self._prepared = True

    @asynccontextmanager
    async def _ensure_prepared(self, _app: Any) -> AsyncIterator[None]:
        """The lifespan of Keystile's router: :meth:`prepare` unless the host already did."""
        if not self._prepared:
            await self.prepare()
        yield

    async def aclose(self) -> None:
        """Finish deliveries in flight and release connections."""
        await self.runtime.aclose()


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents 422 for bodies; Keystile answers 400 ``invalid_request`` instead."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                del responses["422"]
                responses.setdefault(
                    "400",
                    {
                        "description": "`invalid_request`: malformed body.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}
                            }
                        },
                    },
                )
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    app.openapi_schema = schema
    return schema


def docs_enabled(settings: Settings) -> bool:
    """Whether the standalone service serves ``/docs``, ``/redoc`` and ``/openapi.json``:
    ``KEYSTILE_DOCS_ENABLED``, or by default in development mode only."""
    if settings.docs_enabled is not None:
        return settings.docs_enabled
    return settings.mode == "development"


def create_app(
    settings: Settings, *, clock: Clock | None = None, extensions: Extensions | None = None
) -> FastAPI:
    """The standalone Keystile service as an ASGI app.

    Every path is Keystile's here, so every answer (a 404 for an unknown path,
    a 413, ``/docs``) carries Keystile's error shape and headers, and an
    exception nobody handled is one log line and a bare 500.
    """
    keystile = Keystile(settings, clock=clock, extensions=extensions)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await keystile.prepare()
        try:
            yield
        finally:
            await keystile.aclose()

    docs = docs_enabled(settings)
    app = FastAPI(
        title="Keystile",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    keystile.install(app)
    # The OAuth 2.0 endpoints and the MFA API sit at the root, where Auth0's clients look.
    app.include_router(token_router(keystile.runtime.oauth))
    app.include_router(mfa_router(keystile.runtime.mfa_api))
    install_error_handlers(app)
    app.add_middleware(EdgeMiddleware)
    app.state.keystile = keystile
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    return app
