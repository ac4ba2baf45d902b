"""Keystile as a polite guest: a host keeps its own answers and guards its routes with Keystile."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from keystile import Keystile, Session, SessionUser, User
from keystile.settings import Settings
from tests.servers import LOOPBACK
from tests.web.test_password_routes import PASSWORD, create_user

EMAIL = "host@example.com"


def host_app(keystile: Keystile) -> FastAPI:
    """A scratch host: its own routes, its own 422 handler, Keystile installed beside them."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await keystile.prepare()
        yield
        await keystile.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def host_validation(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"host": "validation"}, status_code=422)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418, detail={"reason": "short and stout"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the host's own bug")

    @app.get("/notes")
    async def notes(user: User = Depends(keystile.require_user)) -> dict[str, str]:
        return {"owner": user.email}

    @app.get("/session")
    async def session(current: Session = Depends(keystile.current_session)) -> dict[str, str]:
        return {"owner": current.user.email, "strategies": ",".join(current.claims.strategies)}

    @app.get("/dashboard")
    async def dashboard(request: Request) -> dict[str, object]:
        user = request.user
        if not user.is_authenticated:
            return {"user": "guest", "scopes": request.auth.scopes}
        assert isinstance(user, SessionUser)
        return {"user": user.display_name, "id": user.identity, "scopes": request.auth.scopes}

    keystile.install(app)
    app.add_middleware(
        AuthenticationMiddleware,
        backend=keystile.authentication_backend(),
        on_error=keystile.on_authentication_error,
    )
    return app


@pytest.fixture
def keystile(settings: Settings) -> Keystile:
    create_user(settings, EMAIL)
    return Keystile(settings)


@pytest.fixture
def host(keystile: Keystile) -> Iterator[TestClient]:
    with TestClient(host_app(keystile), client=LOOPBACK, raise_server_exceptions=False) as client:
        yield client


def _token(client: TestClient) -> str:
    """Sign in through Keystile's own password route, as a host's front end would."""
    response = client.post(
        "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def test_the_hosts_validation_handler_keeps_answering_its_routes(host: TestClient) -> None:
    """The host's own 422 handler answers a bad path parameter, not Keystile's 400."""
    response = host.get("/items/not-a-number")
    assert response.status_code == 422
    assert response.json() == {"host": "validation"}


def test_keystile_routes_still_answer_400_invalid_request(host: TestClient) -> None:
    """Keystile's own routes keep Keystile's validation answer inside the same host."""
    response = host.post("/auth/user/password/sign_in", json={"user": {}})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_http_exception_with_a_dict_detail_keeps_its_shape(host: TestClient) -> None:
    """``HTTPException(detail={...})`` answers FastAPI's ``{"detail": {...}}``, not a string."""
    response = host.get("/teapot")
    assert response.status_code == 418
    assert response.json() == {"detail": {"reason": "short and stout"}}


def test_the_hosts_404_and_500_are_the_hosts(host: TestClient) -> None:
    """An unknown path and a host bug answer as the host's framework does."""
    missing = host.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    broken = host.get("/boom")
    assert broken.status_code == 500
    assert broken.text == "Internal Server Error"


def test_host_routes_get_none_of_keystiles_headers(host: TestClient) -> None:
    """``no-store``, ``nosniff`` and the referrer policy are Keystile's, on Keystile's routes."""
    hello = host.get("/hello")
    assert hello.json() == {"hello": "world"}
    for name in ("cache-control", "pragma", "x-content-type-options", "referrer-policy"):
        assert name not in hello.headers, name
    assert "cache-control" not in host.get("/teapot").headers
    ours = host.get("/auth/me")
    assert ours.headers["cache-control"] == "no-store"
    assert ours.headers["x-content-type-options"] == "nosniff"


def test_require_user_refuses_a_caller_without_a_token(host: TestClient) -> None:
    """401 ``unauthenticated`` in Keystile's shape, ``WWW-Authenticate: Bearer`` (RFC 6750 §3.1)."""
    response = host.get("/notes")
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthenticated",
        "message": "A valid bearer token is required.",
    }
    assert response.headers["www-authenticate"] == "Bearer"


def test_require_user_refuses_a_forged_token(host: TestClient) -> None:
    """A token that does not verify: 401 with ``error="invalid_token"``."""
    token = _token(host)
    response = host.get("/notes", headers={"authorization": f"Bearer {token}x"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_require_user_and_current_session_admit_a_signed_in_caller(host: TestClient) -> None:
    """With the token from Keystile's sign-in, the host's guarded routes see the user."""
    headers = {"authorization": f"Bearer {_token(host)}"}
    assert host.get("/notes", headers=headers).json() == {"owner": EMAIL}
    assert host.get("/session", headers=headers).json() == {
        "owner": EMAIL,
        "strategies": "password",
    }


def test_a_signed_out_token_is_refused_by_the_hosts_guard(host: TestClient) -> None:
    """Revocation holds on host routes: after sign-out the same token gets 401."""
    headers = {"authorization": f"Bearer {_token(host)}"}
    assert host.post("/auth/sign_out", headers=headers).status_code == 204
    assert host.get("/notes", headers=headers).status_code == 401


def test_request_user_comes_from_the_authentication_backend(host: TestClient) -> None:
    """Anonymous without a token; with one, ``request.user`` and ``request.auth`` say who."""
    assert host.get("/dashboard").json() == {"user": "guest", "scopes": []}
    signed_in = host.get("/dashboard", headers={"authorization": f"Bearer {_token(host)}"})
    body = signed_in.json()
    assert body["user"] == EMAIL
    assert body["scopes"] == ["authenticated"]
    assert body["id"]


def test_the_authentication_backend_refuses_an_invalid_token_with_401(host: TestClient) -> None:
    """An invalid bearer token is Keystile's 401, not Starlette's default 400 in plain text."""
    response = host.get("/dashboard", headers={"authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_the_authentication_backend_works_in_a_plain_starlette_app(
    keystile: Keystile, host: TestClient
) -> None:
    """Any Starlette app: ``@requires("authenticated")`` passes with a Keystile token only."""

    @requires("authenticated")
    async def private(request: Request) -> Response:
        return PlainTextResponse(request.user.display_name)

    app = Starlette(
        routes=[Route("/private", private)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=keystile.authentication_backend(),
                on_error=keystile.on_authentication_error,
            )
        ],
    )
    token = _token(host)
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/private").status_code == 403
        allowed = client.get("/private", headers={"authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
        assert allowed.text == EMAIL


def test_a_guard_without_install_still_answers_401_with_the_challenge(
    make_settings: Callable[..., Settings],
) -> None:
    """A host that uses the guard but never installs Keystile still refuses with 401 + Bearer."""
    keystile = Keystile(make_settings())
    app = FastAPI()

    @app.get("/notes")
    async def notes(user: User = Depends(keystile.require_user)) -> dict[str, str]:
        return {"owner": user.email}

    try:
        with TestClient(app, client=LOOPBACK) as client:
            response = client.get("/notes")
    finally:
        keystile.runtime.close()
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
