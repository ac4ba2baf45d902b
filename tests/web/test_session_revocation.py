"""Revocation over HTTP with two apps (two processes) on one database."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from fastapi.testclient import TestClient

from keystile.clock import ManualClock
from keystile.flows.session_cache import MAX_TTL
from keystile.runtime import Runtime
from keystile.settings import Settings

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


def create_user(settings: Settings) -> None:
    runtime = Runtime(settings)
    try:
        anyio.run(runtime.password.create_user, EMAIL, PASSWORD)
    finally:
        runtime.close()


def test_a_second_app_refuses_a_token_signed_out_on_the_first_within_the_bound(
    make_client: Callable[[Settings], TestClient], settings: Settings, clock: ManualClock
) -> None:
    """Sign-out on one app is 401 there at once and on the other once 1 s has passed;
    before that both answered ``/auth/me`` with the same body."""
    create_user(settings)
    first, second = make_client(settings), make_client(settings)
    token = first.post(
        "/auth/user/password/sign_in", json={"user": {"email": EMAIL, "password": PASSWORD}}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    on_first, on_second = first.get("/auth/me", headers=auth), second.get("/auth/me", headers=auth)
    assert (on_first.status_code, on_second.status_code) == (200, 200)
    assert on_first.content == on_second.content
    assert on_first.headers["content-type"] == "application/json"
    assert first.post("/auth/sign_out", headers=auth).status_code == 204
    here = first.get("/auth/me", headers=auth)
    assert here.status_code == 401
    assert here.json()["error"] == "unauthenticated"
    clock.advance(MAX_TTL)
    there = second.get("/auth/me", headers=auth)
    assert there.status_code == 401
    assert there.json()["error"] == "unauthenticated"
