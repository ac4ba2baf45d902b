"""A failure Keystile did not expect is one log line (type and request id) and a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from keystile import Attempt, Extensions, HookProtection, Keystile
from keystile.clock import ManualClock
from keystile.settings import Settings
from keystile.web.app import create_app
from keystile.web.edge import EdgeMiddleware
from tests.servers import LOOPBACK

SECRET = "HUNTER2-CODE-HASH-5f4dcc3b5aa765d61d8327deb882cf99"


def _leaky_hook(attempt: Attempt) -> bool:
    """A custom protection with a bug whose message quotes a secret."""
    raise RuntimeError(f"lookup failed for {attempt.identity} with {SECRET}")


@pytest.fixture
def leaky(settings: Settings, clock: ManualClock) -> Iterator[TestClient]:
    """The standalone service with a hook that raises, as a server would run it."""
    extensions = Extensions(hooks=(HookProtection(_leaky_hook),))
    app = create_app(settings, clock=clock, extensions=extensions)
    # The default (raise_server_exceptions=True) re-raises whatever the app lets escape,
    # which is what a server would print as a traceback.
    with TestClient(app, client=LOOPBACK) as client:
        yield client


def _assert_nothing_leaked(caplog: pytest.LogCaptureFixture) -> None:
    assert SECRET not in caplog.text
    assert "victim@example.com" not in caplog.text
    assert "Traceback" not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_an_internal_error_is_one_line_and_a_bare_500(
    leaky: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """500 ``internal_error`` without detail; one log line naming the type and the answer's id."""
    caplog.set_level(logging.DEBUG)
    response = leaky.post(
        "/auth/user/password/sign_in",
        json={"user": {"email": "victim@example.com", "password": "guess"}},
        headers={"x-request-id": "chosen-by-the-client"},
    )
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "Internal error."}
    assert SECRET not in response.text
    request_id = response.headers["x-request-id"]
    assert request_id != "chosen-by-the-client"
    assert len(request_id) == 16
    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert lines == [f"internal error: RuntimeError; request_id={request_id}"]
    _assert_nothing_leaked(caplog)


def test_each_internal_error_gets_its_own_request_id(
    leaky: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Two failures, two ids: a log line matches one answer only."""
    caplog.set_level(logging.ERROR)
    body = {"user": {"email": "victim@example.com"}}
    first = leaky.post("/auth/user/otp/request", json=body)
    second = leaky.post("/auth/user/otp/request", json=body)
    assert first.status_code == second.status_code == 500
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    _assert_nothing_leaked(caplog)


def test_a_host_mounting_keystile_gets_the_same_single_line(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """Inside a host app too, Keystile's route stops its own failure: nothing reaches the host."""
    caplog.set_level(logging.DEBUG)
    keystile = Keystile(
        make_settings(), extensions=Extensions(hooks=(HookProtection(_leaky_hook),))
    )
    app = FastAPI()
    keystile.install(app)
    with TestClient(app, client=LOOPBACK) as client:
        response = client.post(
            "/auth/user/otp/request", json={"user": {"email": "victim@example.com"}}
        )
    keystile.runtime.close()
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert response.headers["x-content-type-options"] == "nosniff"
    _assert_nothing_leaked(caplog)


def test_an_error_outside_every_route_is_answered_by_the_edge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The standalone service's last layer turns an escaped exception into the bare 500."""
    caplog.set_level(logging.DEBUG)

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError(SECRET)

    response = TestClient(EdgeMiddleware(broken), client=LOOPBACK).get("/anything")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "Internal error."}
    assert response.headers["x-content-type-options"] == "nosniff"
    request_id = response.headers["x-request-id"]
    assert f"internal error: ValueError; request_id={request_id}" in caplog.text
    _assert_nothing_leaked(caplog)
