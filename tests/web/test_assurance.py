"""Assurance guards on a host's routes: a second factor, a recent sign-in (RFC 9470)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from keystile import InsufficientAuthenticationError, Keystile, ManualClock, Session
from keystile.settings import Settings
from keystile.web.assurance import ACR_MFA, as_max_age
from keystile.web.errors import step_up_challenge
from tests.servers import LOOPBACK
from tests.web.test_password_routes import PASSWORD, create_user

EMAIL = "guarded@example.com"
MAX_AGE = timedelta(minutes=5)

SECOND_FACTOR_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="This call needs a sign-in with a second factor.", '
    f'acr_values="{ACR_MFA}"'
)
RECENT_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="This call needs a more recent sign-in.", '
    'max_age="300"'
)
BOTH_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="This call needs a recent sign-in with a second factor.", '
    f'acr_values="{ACR_MFA}", max_age="300"'
)


def _answer(session: Session) -> dict[str, object]:
    return {"email": session.user.email, "amr": list(session.claims.amr)}


def host_app(keystile: Keystile) -> FastAPI:
    """A host with one route per guard, Keystile installed beside them."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await keystile.prepare()
        yield
        await keystile.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/mfa")
    async def mfa(session: Session = Depends(keystile.require_second_factor)) -> dict[str, object]:
        return _answer(session)

    @app.get("/recent")
    async def recent(
        session: Session = Depends(keystile.require_recent_auth(MAX_AGE)),
    ) -> dict[str, object]:
        return _answer(session)

    @app.get("/recent-mfa")
    async def recent_mfa(
        session: Session = Depends(keystile.require_recent_auth(300, second_factor=True)),
    ) -> dict[str, object]:
        return _answer(session)

    @app.get("/both")
    async def both(
        current: Session = Depends(keystile.current_session),
        strong: Session = Depends(keystile.require_second_factor),
    ) -> dict[str, object]:
        return {"same": current == strong}

    keystile.install(app)
    return app


@pytest.fixture
def keystile(settings: Settings, clock: ManualClock) -> Keystile:
    create_user(settings, EMAIL)
    return Keystile(settings, clock=clock)


@pytest.fixture
def host(keystile: Keystile) -> Iterator[TestClient]:
    with TestClient(host_app(keystile), client=LOOPBACK) as client:
        yield client


def _password_token(client: TestClient) -> str:
    """A one-factor session, from Keystile's own password route."""
    response = client.post(
        "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["authentication_strategies"] == ["password"]
    token: str = response.json()["token"]
    return token


def _mfa_token(keystile: Keystile) -> str:
    """A session that passed a second factor, started through the runtime's public sessions."""

    async def start() -> str:
        user = await keystile.runtime.find_user(EMAIL)
        assert user is not None
        started = await keystile.runtime.sessions.start(
            user, strategies=["password", "totp"], amr=["pwd", "otp", "mfa"]
        )
        return started.token

    return anyio.run(start)


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/mfa", "/recent", "/recent-mfa"])
def test_no_token_stays_401_unauthenticated(host: TestClient, path: str) -> None:
    """Without any token the guards answer 401 ``unauthenticated`` and the bare challenge."""
    response = host.get(path)
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthenticated",
        "message": "A valid bearer token is required.",
    }
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/mfa", "/recent", "/recent-mfa"])
def test_an_invalid_token_stays_401_invalid_token(host: TestClient, path: str) -> None:
    """A forged token is 401 ``invalid_token``, never a 403 step-up challenge."""
    response = host.get(path, headers=_bearer(_password_token(host) + "x"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_password_only_session_is_refused_with_the_rfc9470_challenge(host: TestClient) -> None:
    """One factor: 403 ``insufficient_authentication`` naming the acr value to step up to."""
    response = host.get("/mfa", headers=_bearer(_password_token(host)))
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_authentication",
        "message": "This call needs a sign-in with a second factor.",
    }
    assert response.headers["www-authenticate"] == SECOND_FACTOR_CHALLENGE


def test_a_session_with_mfa_in_amr_passes_require_second_factor(
    host: TestClient, keystile: Keystile
) -> None:
    """``amr`` holding ``mfa`` (RFC 8176) lets the caller in, with its session."""
    response = host.get("/mfa", headers=_bearer(_mfa_token(keystile)))
    assert response.status_code == 200
    assert response.json() == {"email": EMAIL, "amr": ["pwd", "otp", "mfa"]}


def test_a_guard_beside_current_session_sees_the_same_session(
    host: TestClient, keystile: Keystile
) -> None:
    """The guard builds on ``current_session``: one route may ask for both."""
    response = host.get("/both", headers=_bearer(_mfa_token(keystile)))
    assert response.status_code == 200
    assert response.json() == {"same": True}


def test_require_recent_auth_admits_up_to_max_age_then_asks_for_max_age(
    host: TestClient, clock: ManualClock
) -> None:
    """Recency by the deployment's clock: exactly max_age old passes, a second later 403."""
    token = _password_token(host)
    assert host.get("/recent", headers=_bearer(token)).status_code == 200
    clock.advance(MAX_AGE)
    assert host.get("/recent", headers=_bearer(token)).status_code == 200
    clock.advance(timedelta(seconds=1))
    response = host.get("/recent", headers=_bearer(token))
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_authentication",
        "message": "This call needs a more recent sign-in.",
    }
    assert response.headers["www-authenticate"] == RECENT_CHALLENGE


def test_a_fresh_sign_in_after_the_refusal_passes_again(
    host: TestClient, clock: ManualClock
) -> None:
    """A new sign-in (or step-up) refreshes ``auth_time``; the old token stays refused."""
    old = _password_token(host)
    clock.advance(MAX_AGE + timedelta(seconds=1))
    assert host.get("/recent", headers=_bearer(old)).status_code == 403
    assert host.get("/recent", headers=_bearer(_password_token(host))).status_code == 200


def test_recent_second_factor_names_what_is_missing(
    host: TestClient, keystile: Keystile, clock: ManualClock
) -> None:
    """A recent second factor: acr_values for one factor, max_age for an old one, both for both."""
    password = _password_token(host)
    mfa = _mfa_token(keystile)
    assert host.get("/recent-mfa", headers=_bearer(mfa)).status_code == 200
    fresh_password = host.get("/recent-mfa", headers=_bearer(password))
    assert fresh_password.status_code == 403
    assert fresh_password.headers["www-authenticate"] == SECOND_FACTOR_CHALLENGE
    clock.advance(timedelta(seconds=301))
    old_mfa = host.get("/recent-mfa", headers=_bearer(mfa))
    assert old_mfa.status_code == 403
    assert old_mfa.headers["www-authenticate"] == RECENT_CHALLENGE
    old_password = host.get("/recent-mfa", headers=_bearer(password))
    assert old_password.status_code == 403
    assert old_password.json()["error"] == "insufficient_authentication"
    assert old_password.headers["www-authenticate"] == BOTH_CHALLENGE


def test_a_guard_without_install_still_answers_403_with_the_challenge(
    make_settings: Callable[..., Settings], clock: ManualClock
) -> None:
    """A host that never installs Keystile still gets the status and the RFC 9470 header."""
    settings = make_settings()
    create_user(settings, EMAIL)
    keystile = Keystile(settings, clock=clock)
    app = FastAPI()

    @app.get("/mfa")
    async def mfa(session: Session = Depends(keystile.require_second_factor)) -> dict[str, str]:
        return {"email": session.user.email}

    try:
        with TestClient(app, client=LOOPBACK) as client:
            token = _mfa_token(keystile)
            assert client.get("/mfa", headers=_bearer(token)).status_code == 200
            password = _password_token_of(keystile)
            response = client.get("/mfa", headers=_bearer(password))
    finally:
        keystile.runtime.close()
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == SECOND_FACTOR_CHALLENGE


def _password_token_of(keystile: Keystile) -> str:
    """A one-factor session started through the runtime's public sessions."""

    async def start() -> str:
        user = await keystile.runtime.find_user(EMAIL)
        assert user is not None
        started = await keystile.runtime.sessions.start(user, strategies=["password"], amr=["pwd"])
        return started.token

    return anyio.run(start)


def starlette_app(keystile: Keystile) -> Starlette:
    """A plain Starlette app guarding function endpoints with Keystile's decorators."""

    @keystile.requires_second_factor
    async def strong(request: Request) -> Response:
        return PlainTextResponse(request.user.display_name)

    @keystile.requires_recent_auth(MAX_AGE)
    async def recent(request: Request) -> Response:
        return PlainTextResponse(request.user.display_name)

    return Starlette(
        routes=[Route("/strong", strong), Route("/recent", recent)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=keystile.authentication_backend(),
                on_error=keystile.on_authentication_error,
            )
        ],
    )


def test_starlette_routes_use_request_user_from_the_backend(
    host: TestClient, keystile: Keystile, clock: ManualClock
) -> None:
    """Decorated Starlette endpoints: 401 anonymous, 403 with the challenge, 200 when enough."""
    password = _password_token(host)
    mfa = _mfa_token(keystile)
    with TestClient(starlette_app(keystile), client=LOOPBACK) as client:
        anonymous = client.get("/strong")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "unauthenticated"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        refused = client.get("/strong", headers=_bearer(password))
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "insufficient_authentication",
            "message": "This call needs a sign-in with a second factor.",
        }
        assert refused.headers["www-authenticate"] == SECOND_FACTOR_CHALLENGE
        allowed = client.get("/strong", headers=_bearer(mfa))
        assert allowed.status_code == 200
        assert allowed.text == EMAIL
        assert client.get("/recent", headers=_bearer(password)).status_code == 200
        clock.advance(MAX_AGE + timedelta(seconds=1))
        stale = client.get("/recent", headers=_bearer(password))
        assert stale.status_code == 403
        assert stale.headers["www-authenticate"] == RECENT_CHALLENGE


def test_a_negative_max_age_is_refused_when_the_guard_is_built() -> None:
    """``max_age`` below zero is a programming error, caught at start-up, not per request."""
    with pytest.raises(ValueError, match="max_age must not be negative"):
        as_max_age(-1)
    assert as_max_age(90) == timedelta(seconds=90)


def test_the_challenge_never_carries_a_quote_or_backslash_from_the_message() -> None:
    """``error_description`` stays a valid quoted-string (RFC 6750 §3) whatever the message."""
    error = InsufficientAuthenticationError('Say "again"\\ please', max_age=5)
    assert step_up_challenge(error) == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="Say again please", max_age="5"'
    )
