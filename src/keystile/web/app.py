"""The app factory and the mountable :class:`Keystile` integration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from keystile.clock import Clock
from keystile.runtime import Extensions, Runtime
from keystile.settings import Settings
from keystile.strategies.otp.routes import otp_router
from keystile.strategies.password.routes import password_router
from keystile.web.body_limit import BodyLimitMiddleware
from keystile.web.errors import install_error_handlers
from keystile.web.mailbox import mailbox_router
from keystile.web.session_routes import session_router

logger = logging.getLogger("keystile")


class Keystile:
    """Keystile inside another FastAPI app.

    ::

        keystile = Keystile(load_settings())
        keystile.install(app)          # routes under settings.route_prefix + error handlers

    Call :meth:`prepare` once at start-up (migrations in development mode, a
    schema check in production) and :meth:`aclose` at shutdown.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        extensions: Extensions | None = None,
    ) -> None:
        self.runtime = Runtime(settings, clock=clock, extensions=extensions)
        self.settings = settings
        if settings.mode == "development" and "mode" not in settings.model_fields_set:
            logger.warning(
                "Keystile runs in DEVELOPMENT mode because KEYSTILE_MODE is not set: development "
                "keys, codes printed to the console and a /dev/mailbox for loopback callers. "
                "Set KEYSTILE_MODE=production (or Settings(mode=...)) to say which you mean."
            )

    @property
    def router(self) -> APIRouter:
        """Every Keystile route, under ``settings.route_prefix``."""
        router = APIRouter(prefix=self.settings.route_prefix)
        runtime = self.runtime
        router.include_router(password_router(runtime.password, runtime.sign_in))
        if runtime.otp is not None:
            router.include_router(otp_router(runtime.otp, runtime.sign_in))
        router.include_router(session_router(self.runtime.sessions))
        return router

    @property
    def development_router(self) -> APIRouter | None:
        """``/dev/mailbox`` in development mode with the console sender; otherwise ``None``."""
        if self.settings.mode != "development" or self.runtime.mailbox is None:
            return None
        return mailbox_router(self.runtime.mailbox)

    def install(self, app: FastAPI) -> None:
        """Mount the routes on ``app`` and make it answer errors in the Keystile shape.

        Bodies over ``settings.max_body_bytes`` sent to Keystile's routes are
        refused with 413 before they are read; the host's routes are left alone.
        """
        app.include_router(self.router)
        development = self.development_router
        prefixes = [self.settings.route_prefix, "/dev"]
        if development is not None:
            app.include_router(development)
        # An empty route prefix puts Keystile's routes at the root: then every path is ours.
        limited = tuple(prefixes) if self.settings.route_prefix else ()
        app.add_middleware(
            BodyLimitMiddleware, max_bytes=self.settings.max_body_bytes, prefixes=limited
        )
        install_error_handlers(app)

    async def prepare(self) -> None:
        """Get the database ready (see :meth:`Runtime.prepare_database`)."""
        await anyio.to_thread.run_sync(self.runtime.prepare_database)

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


def create_app(
    settings: Settings, *, clock: Clock | None = None, extensions: Extensions | None = None
) -> FastAPI:
    """The standalone Keystile service as an ASGI app."""
    keystile = Keystile(settings, clock=clock, extensions=extensions)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await keystile.prepare()
        try:
            yield
        finally:
            await keystile.aclose()

    app = FastAPI(title="Keystile", version="0.1.0", lifespan=lifespan)
    keystile.install(app)
    app.state.keystile = keystile
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    return app
