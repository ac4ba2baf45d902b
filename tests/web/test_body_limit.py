"""Bodies over the limit are refused with 413 before they are read whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keystile import Keystile
from keystile.settings import Settings
from tests.servers import LOOPBACK

LIMIT = 2048


@pytest.fixture
def limited(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    return make_client(make_settings(max_body_bytes=LIMIT))


def _json_of_size(size: int) -> bytes:
    head = b'{"user": {"email": "a@example.com", "otp": "'
    tail = b'"}}'
    return head + b"A" * (size - len(head) - len(tail)) + tail


def _chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_declared_length_over_the_limit_is_413(limited: TestClient) -> None:
    response = limited.post(
        "/auth/user/otp/sign_in",
        content=_json_of_size(LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


def test_a_chunked_body_over_the_limit_is_413(limited: TestClient) -> None:
    """No Content-Length: counted as it streams."""
    response = limited.post(
        "/auth/user/otp/sign_in",
        content=_chunks(_json_of_size(LIMIT * 4)),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


def test_a_form_body_over_the_limit_is_413(limited: TestClient) -> None:
    response = limited.post("/auth/user/password/sign_in", data={"x": "y" * (LIMIT * 2)})
    assert response.status_code == 413


def test_a_body_at_the_limit_is_read(limited: TestClient) -> None:
    """Exactly the limit is allowed: the answer is the route's own (a wrong code)."""
    response = limited.post(
        "/auth/user/otp/sign_in",
        content=_json_of_size(LIMIT),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_request", "authentication_failed")


def test_a_host_route_keeps_its_own_rules(make_settings: Callable[..., Settings]) -> None:
    """Keystile limits its own routes only; the host's upload route reads its body."""
    app = FastAPI()

    @app.post("/upload")
    async def upload(payload: dict[str, str]) -> dict[str, int]:
        return {"size": len(payload["data"])}

    Keystile(make_settings(max_body_bytes=LIMIT)).install(app)
    with TestClient(app, client=LOOPBACK) as client:
        response = client.post("/upload", json={"data": "z" * (LIMIT * 4)})
        assert response.status_code == 200
        assert response.json() == {"size": LIMIT * 4}
