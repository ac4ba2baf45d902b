"""Arbitrary bodies never crash a route: each answer is a documented status and error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystile.settings import Settings

ROUTES = [
    "/auth/user/password/sign_in",
    "/auth/user/password/register",
    "/auth/user/otp/request",
    "/auth/user/otp/sign_in",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
user_like = st.fixed_dictionaries(
    {"user": st.dictionaries(st.sampled_from(["email", "password", "otp", "x"]), json_values)}
)
bodies = st.one_of(json_values, user_like).map(json.dumps).map(str.encode) | st.binary(max_size=64)


@pytest.fixture
def fuzz_client(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> TestClient:
    """Registration on (so every route exists) and generous limits (so 400s stay visible)."""
    return make_client(
        make_settings(
            password_registration_enabled=True,
            otp_request_rate="100000/1m",
            otp_sign_in_rate="100000/1m",
            password_sign_in_rate="100000/1m",
        )
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_no_body_makes_a_500(fuzz_client: TestClient, route: str, body: bytes) -> None:
    """Malformed input gets 4xx with a stable error code; well-formed input a normal answer."""
    response = fuzz_client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code in {200, 201, 400, 401, 409, 429}, (response.status_code, body)
    payload: Any = response.json()
    if response.status_code >= 400:
        assert payload["error"] in {
            "invalid_request",
            "authentication_failed",
            "already_registered",
            "too_many_attempts",
        }
        if payload["error"] == "invalid_request":
            assert payload["fields"]
