"""The recovery-code guard in a host's app: as a FastAPI dependency and as Starlette middleware.

Alice holds unused codes, Bob none, Carol only a used one; none has TOTP, so a
password signs each of them in. Every mode is checked: ``halt`` (403
``recovery_codes_required``), ``redirect_to_setup`` (303 to the setup page),
a redirect to a given path, and the JSON caller who always gets the 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from keystile import RequireRecoveryCodesMiddleware, testing
from keystile.clock import ManualClock
from keystile.settings import Settings
from keystile.store.users import User
from keystile.web.app import Keystile
from tests.servers import LOOPBACK
from tests.strategies.recovery_code.helpers import PASSWORD, generate, store_codes

ALICE = "alice@example.com"  # unused codes
BOB = "bob@example.com"  # no codes
CAROL = "carol@example.com"  # one code, used
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


@dataclass
class People:
    """Bearer tokens of Alice, Bob and Carol."""

    keystile: Keystile
    tokens: dict[str, str]

    def headers(self, email: str, accept: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[email]}", **(accept or {})}


def people_of(keystile: Keystile) -> People:
    runtime = keystile.runtime

    async def create() -> dict[str, str]:
        tokens: dict[str, str] = {}
        for email in (ALICE, BOB, CAROL):
            await runtime.password.create_user(email, PASSWORD)
            signed_in = testing.signed_in(await runtime.sign_in.password(email, PASSWORD))
            tokens[email] = signed_in.token
        return tokens

    tokens = anyio.run(create)
    if runtime.recovery_codes is not None:
        generate(runtime, ALICE)
        store_codes(runtime, CAROL, ["CCCCDDDDEEEEFFFF"])

        async def use_carols_code() -> None:
            session = await runtime.sessions.verify(tokens[CAROL])
            stepped = await runtime.sign_in.step_up_recovery_code(session, "CCCCDDDDEEEEFFFF")
            tokens[CAROL] = stepped.token

        anyio.run(use_carols_code)
    return People(keystile=keystile, tokens=tokens)


@pytest.fixture
def make_keystile(clock: ManualClock) -> Iterator[Callable[[Settings], Keystile]]:
    built: list[Keystile] = []

    def build(settings: Settings) -> Keystile:
        keystile = Keystile(settings, clock=clock)
        built.append(keystile)
        return keystile

    yield build
    for keystile in built:
        keystile.runtime.close()


@pytest.fixture
def people(make_keystile: Callable[[Settings], Keystile], settings: Settings) -> People:
    return people_of(make_keystile(settings))


def fastapi_app(keystile: Keystile) -> FastAPI:
    """A host app with a guarded route per mode and a guarded group of routes."""
    app = FastAPI()
    keystile.install(app)

    @app.get("/halt")
    async def halt(user: User | None = Depends(keystile.require_recovery_codes())) -> Any:
        return {"user": user.email if user is not None else None}

    @app.get("/setup", dependencies=[Depends(keystile.require_recovery_codes("redirect_to_setup"))])
    async def setup() -> Any:
        return {"inside": True}

    @app.get("/custom", dependencies=[Depends(keystile.require_recovery_codes("/welcome"))])
    async def custom() -> Any:
        return {"inside": True}

    group = APIRouter(
        prefix="/group",
        dependencies=[
            Depends(keystile.require_recovery_codes("redirect_to_setup", setup_path="/codes"))
        ],
    )

    @group.get("/a")
    async def first() -> Any:
        return {"inside": "a"}

    @group.get("/b")
    async def second() -> Any:
        return {"inside": "b"}

    app.include_router(group)

    @app.get("/open")
    async def unguarded() -> Any:
        return {"inside": True}

    return app


@pytest.fixture
def host(people: People) -> Iterator[TestClient]:
    with TestClient(fastapi_app(people.keystile), client=LOOPBACK) as client:
        yield client


def assert_refused(answer: Any) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json() == {
        "error": "recovery_codes_required",
        "message": "Set up recovery codes before going on.",
    }


def test_fastapi_guard_lets_callers_without_a_user_through(host: TestClient) -> None:
    """No Authorization header, or a token that does not verify: the guard lets them through
    (authentication is another guard's job) and gives no user."""
    assert host.get("/halt").json() == {"user": None}
    assert host.get("/halt", headers={"Authorization": "Bearer forged"}).json() == {"user": None}
    assert host.get("/setup", headers=HTML).status_code == 200


def test_fastapi_guard_lets_a_user_with_an_unused_code_through(
    host: TestClient, people: People
) -> None:
    """Alice holds unused codes: every guarded route answers, whatever Accept says."""
    assert host.get("/halt", headers=people.headers(ALICE)).json() == {"user": ALICE}
    for path in ("/setup", "/custom", "/group/a", "/group/b"):
        assert host.get(path, headers=people.headers(ALICE, HTML)).status_code == 200, path


def test_halt_answers_403_even_to_a_browser(host: TestClient, people: People) -> None:
    """halt: Bob (no codes) and Carol (only a used one) get 403 recovery_codes_required."""
    for email in (BOB, CAROL):
        assert_refused(host.get("/halt", headers=people.headers(email, HTML)))
        assert_refused(host.get("/halt", headers=people.headers(email)))
    assert host.get("/open", headers=people.headers(BOB)).status_code == 200


def test_redirect_to_setup_sends_a_browser_to_the_setup_page(
    host: TestClient, people: People
) -> None:
    """redirect_to_setup: a browser gets 303 to /auth/recovery-codes (or the group's own
    setup_path); a JSON caller, a caller naming no text/html, and one naming both get 403."""
    answer = host.get("/setup", headers=people.headers(BOB, HTML), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/auth/recovery-codes"
    for path in ("/group/a", "/group/b"):
        grouped = host.get(path, headers=people.headers(CAROL, HTML), follow_redirects=False)
        assert grouped.status_code == 303
        assert grouped.headers["location"] == "/codes"
    for accept in (JSON, {}, {"Accept": "text/html, application/json"}, {"Accept": "*/*"}):
        assert_refused(host.get("/setup", headers=people.headers(BOB, accept)))


def test_a_given_path_is_where_a_browser_is_sent(host: TestClient, people: People) -> None:
    """on_missing="/welcome": 303 to /welcome for a browser, 403 for a JSON caller."""
    answer = host.get("/custom", headers=people.headers(BOB, HTML), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/welcome"
    assert_refused(host.get("/custom", headers=people.headers(BOB, JSON)))


@pytest.mark.parametrize(
    ("on_missing", "setup_path"),
    [
        ("teleport", "/auth/recovery-codes"),
        ("https://elsewhere.example/setup", "/auth/recovery-codes"),
        ("//elsewhere.example/setup", "/auth/recovery-codes"),
        ("redirect_to_setup", "recovery-codes"),
    ],
)
def test_a_mode_that_is_neither_a_mode_nor_a_local_path_is_refused(
    people: People, on_missing: str, setup_path: str
) -> None:
    """Building the guard with an unknown mode or an off-site target raises ValueError."""
    with pytest.raises(ValueError, match="must be"):
        people.keystile.require_recovery_codes(on_missing, setup_path=setup_path)
    with pytest.raises(ValueError, match="must be"):
        RequireRecoveryCodesMiddleware(
            PlainTextResponse("x"),
            keystile=people.keystile,
            on_missing=on_missing,
            setup_path=setup_path,
        )


def test_the_helpers_answer_per_user(people: People) -> None:
    """recovery_codes_configured: True for Alice only; keystile.recovery_codes is the service."""
    keystile = people.keystile
    assert keystile.recovery_codes is keystile.runtime.recovery_codes is not None

    async def configured(email: str) -> bool:
        user = await keystile.runtime.find_user(email)
        assert user is not None
        return await keystile.recovery_codes_configured(user)

    assert [anyio.run(configured, email) for email in (ALICE, BOB, CAROL)] == [
        True,
        False,
        False,
    ]


def test_with_recovery_codes_off_the_guard_lets_everyone_through(
    make_keystile: Callable[[Settings], Keystile], make_settings: Callable[..., Settings]
) -> None:
    """recovery_codes_enabled=false: nobody can hold a code, so the guard locks nobody out."""
    people = people_of(make_keystile(make_settings(recovery_codes_enabled=False)))
    assert people.keystile.recovery_codes is None
    with TestClient(fastapi_app(people.keystile), client=LOOPBACK) as host:
        assert host.get("/halt", headers=people.headers(BOB)).json() == {"user": BOB}
    app = starlette_app(people.keystile, "halt", authentication=False)
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/app/page", headers=people.headers(BOB)).text == "inside"


# Starlette: pure ASGI middleware on a Mount (a group of routes).


async def page(_request: Request) -> Response:
    return PlainTextResponse("inside")


def starlette_app(keystile: Keystile, on_missing: str, *, authentication: bool) -> Starlette:
    """``/app/*`` behind the guard, ``/open`` beside it; Keystile's authentication or not."""
    guard = Middleware(RequireRecoveryCodesMiddleware, keystile=keystile, on_missing=on_missing)
    outer = (
        [
            Middleware(
                AuthenticationMiddleware,
                backend=keystile.authentication_backend(),
                on_error=keystile.on_authentication_error,
            )
        ]
        if authentication
        else []
    )
    return Starlette(
        routes=[
            Route("/open", page),
            Mount("/app", routes=[Route("/page", page), Route("/other", page)], middleware=[guard]),
        ],
        middleware=outer,
    )


AUTHENTICATION = pytest.mark.parametrize(
    "authentication", [True, False], ids=["authentication-middleware", "bearer-header"]
)


@AUTHENTICATION
def test_middleware_halt(people: People, authentication: bool) -> None:
    """halt: anonymous and Alice pass, Bob and Carol get 403 on every route of the group; the
    route outside the group is untouched."""
    app = starlette_app(people.keystile, "halt", authentication=authentication)
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/app/page").text == "inside"
        assert client.get("/app/page", headers=people.headers(ALICE, HTML)).text == "inside"
        for email in (BOB, CAROL):
            for path in ("/app/page", "/app/other"):
                assert_refused(client.get(path, headers=people.headers(email, HTML)))
        assert client.get("/open", headers=people.headers(BOB)).text == "inside"


@AUTHENTICATION
def test_middleware_redirect_to_setup(people: People, authentication: bool) -> None:
    """redirect_to_setup: 303 to /auth/recovery-codes for a browser, 403 for a JSON caller."""
    app = starlette_app(people.keystile, "redirect_to_setup", authentication=authentication)
    with TestClient(app, client=LOOPBACK) as client:
        answer = client.get("/app/page", headers=people.headers(BOB, HTML), follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/auth/recovery-codes"
        assert_refused(client.get("/app/page", headers=people.headers(BOB, JSON)))
        assert client.get("/app/page", headers=people.headers(ALICE, HTML)).text == "inside"


@AUTHENTICATION
def test_middleware_redirects_to_a_given_path(people: People, authentication: bool) -> None:
    """on_missing="/welcome": 303 to /welcome for a browser, 403 for a JSON caller."""
    app = starlette_app(people.keystile, "/welcome", authentication=authentication)
    with TestClient(app, client=LOOPBACK) as client:
        answer = client.get(
            "/app/other", headers=people.headers(CAROL, HTML), follow_redirects=False
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/welcome"
        assert_refused(client.get("/app/other", headers=people.headers(CAROL)))


def test_middleware_leaves_a_forged_token_to_authentication(people: People) -> None:
    """Without AuthenticationMiddleware a token that does not verify passes the guard (it is
    anonymous); with it, the authentication middleware answers 401 before the guard runs."""
    forged = {"Authorization": "Bearer forged", **HTML}
    bare = starlette_app(people.keystile, "halt", authentication=False)
    with TestClient(bare, client=LOOPBACK) as client:
        assert client.get("/app/page", headers=forged).text == "inside"
    guarded = starlette_app(people.keystile, "halt", authentication=True)
    with TestClient(guarded, client=LOOPBACK) as client:
        answer = client.get("/app/page", headers=forged)
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthenticated"
