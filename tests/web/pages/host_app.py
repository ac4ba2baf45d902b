"""A host FastAPI app that mounts Keystile's pages under its own prefix and layout.

``uvicorn --factory tests.web.pages.host_app:create`` (settings from ``KEYSTILE_*``). Its own
``/vault`` page is guarded: a signed-in user without recovery codes is sent to set them up; its
``/settings`` page needs a recent second factor: a password-only session goes through step-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from keystile.flows.sessions import Session
from keystile.settings import load_settings
from keystile.store.users import User
from keystile.web.app import Keystile
from keystile.web.pages.options import PageOptions

TEMPLATES = Path(__file__).parent / "host_templates"
PREFIX = "/account"


def create() -> FastAPI:
    """The host app."""
    keystile = Keystile(
        load_settings(),
        pages=PageOptions(
            prefix=PREFIX,
            template_dirs=(TEMPLATES,),
            base_template="host_layout.html",
            texts={"*": {"Sign in": "Log in to Notes"}},
        ),
    )
    pages = keystile.pages
    assert pages is not None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await keystile.prepare()
        yield
        await keystile.aclose()

    app = FastAPI(lifespan=lifespan)
    keystile.install(app)

    @app.get("/vault", response_class=HTMLResponse)
    async def vault(
        user: User = Depends(pages.require_recovery_codes(on_missing="redirect_to_setup")),
    ) -> HTMLResponse:
        return HTMLResponse(f"<h1>The vault of {escape(user.email)}</h1>")

    @app.get("/settings", response_class=HTMLResponse)
    async def settings(
        session: Session = Depends(pages.require_recent_auth(300, second_factor=True)),
    ) -> HTMLResponse:
        return HTMLResponse(f"<h1>Settings of {escape(session.user.email)}</h1>")

    @app.get("/openapi-ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app
