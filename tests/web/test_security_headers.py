"""Keystile's answers carry nosniff and a referrer policy; no API map is served in production."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from keystile.settings import Settings
from keystile.web.app import docs_enabled

PRODUCTION = {"mode": "production", "sender": "smtp", "password_hash_preset": "rfc9106_low_memory"}


def _assert_keystile_headers(response: Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_successful_and_refused_answers_carry_the_security_headers(client: TestClient) -> None:
    """A 200, a 400, a 401 and an unknown path's 404 of the standalone service all carry them."""
    requested = client.post("/auth/user/otp/request", json={"user": {"email": "a@example.com"}})
    assert requested.status_code == 200
    malformed = client.post("/auth/user/otp/request", json={})
    assert malformed.status_code == 400
    unauthenticated = client.get("/auth/me")
    assert unauthenticated.status_code == 401
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = client.get("/auth/user/otp/request")
    assert wrong_method.status_code == 405
    for response in (requested, malformed, unauthenticated, missing, wrong_method):
        _assert_keystile_headers(response)


def test_a_refused_large_body_carries_the_security_headers(client: TestClient) -> None:
    """The 413 of the body limit, answered before any route, carries them too."""
    response = client.post(
        "/auth/user/otp/request",
        content=b"{" + b" " * (70 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    _assert_keystile_headers(response)


def test_docs_are_served_in_development_by_default(client: TestClient) -> None:
    """Development: /docs, /redoc and /openapi.json answer."""
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_docs_are_not_served_in_production_by_default(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Production: /docs, /redoc and /openapi.json answer 404 ``not_found``."""
    client = make_client(make_settings(**PRODUCTION))
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(("mode", "enabled"), [("development", False), ("production", True)])
def test_docs_follow_the_setting_in_either_mode(
    make_client: Callable[[Settings], TestClient],
    make_settings: Callable[..., Settings],
    mode: str,
    enabled: bool,
) -> None:
    """``KEYSTILE_DOCS_ENABLED`` overrides the mode's default."""
    overrides = PRODUCTION if mode == "production" else {}
    client = make_client(make_settings(**overrides, docs_enabled=enabled))
    expected = 200 if enabled else 404
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == expected, path


def test_docs_enabled_reads_from_the_environment(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The field is ``KEYSTILE_DOCS_ENABLED``; unset, the mode decides."""
    assert docs_enabled(make_settings()) is True
    assert docs_enabled(make_settings(mode="production")) is False
    monkeypatch.setenv("KEYSTILE_DOCS_ENABLED", "true")
    assert docs_enabled(make_settings(mode="production")) is True
