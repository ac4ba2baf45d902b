"""Keystile mounted inside another FastAPI app, as a library."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient

from keystile import Keystile
from keystile.settings import Settings
from tests.servers import LOOPBACK
from tests.strategies.otp.helpers import add_user


def test_routes_mount_under_a_custom_prefix_beside_the_host_app(
    make_settings: Callable[..., Settings],
) -> None:
    """The host keeps its routes; Keystile answers under its prefix with its error shape."""
    settings = make_settings(route_prefix="/account")
    keystile = Keystile(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await keystile.prepare()
        yield
        await keystile.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    keystile.install(app)
    add_user(settings, "host@example.com")
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/hello").json() == {"hello": "world"}
        requested = client.post(
            "/account/user/otp/request", json={"user": {"email": "host@example.com"}}
        )
        assert requested.json() == {"status": "ok"}
        refused = client.post("/account/user/password/sign_in", json={"user": {}})
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_request"
        assert client.get("/auth/me").status_code == 404
        assert client.get("/account/me").json()["error"] == "unauthenticated"
