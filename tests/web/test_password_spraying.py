"""The spraying defence: password sign-ins are limited per client address, on by default.

Spraying tries one common password against many accounts, so the per-identity
limit never trips; the per-address limit (``KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE``,
IPv6 grouped by /64) does, whatever identities are tried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keystile import checks
from keystile.clock import ManualClock
from keystile.settings import Settings
from keystile.web.app import create_app

ClientFor = Callable[[str], TestClient]


@pytest.fixture
def client_for(
    clock: ManualClock, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., ClientFor]]:
    """``client_for(**settings)(address)``: an app on the test database, seen from ``address``.

    Each address gets its own app (like separate server processes); the
    default ``database`` limiter makes them share one count.
    """
    clients: list[TestClient] = []

    def configure(**overrides: Any) -> ClientFor:
        settings = make_settings(**overrides)

        def build(address: str) -> TestClient:
            client = TestClient(create_app(settings, clock=clock), client=(address, 50000))
            client.__enter__()
            clients.append(client)
            return client

        return build

    yield configure
    for client in clients:
        client.__exit__(None, None, None)


def sign_in(client: TestClient, email: str) -> Any:
    return client.post(
        "/auth/user/password/sign_in",
        json={"user": {"email": email, "password": "Summer2026!"}},
    )


def spray(client: TestClient, count: int, tag: str) -> None:
    """``count`` sign-ins, each for a different identity: all evaluated (401)."""
    for index in range(count):
        response = sign_in(client, f"{tag}-{index}@example.com")
        assert response.status_code == 401, (index, response.json())
        assert response.json()["error"] == "authentication_failed"


def assert_refused(response: Any) -> None:
    assert response.status_code == 429
    assert response.json()["error"] == "too_many_attempts"
    assert 1 <= int(response.headers["retry-after"]) <= 600


@pytest.mark.parametrize("by_client_address", [False, True])
def test_the_51st_sign_in_from_one_address_is_refused_by_default(
    client_for: Callable[..., ClientFor], by_client_address: bool
) -> None:
    """50 identities per 10 minutes per address, whatever KEYSTILE_RATE_LIMIT_BY_CLIENT_ADDRESS is.

    With that option on, password sign-in still uses this rate, not ten times
    the identity rate; another address is unaffected.
    """
    build = client_for(rate_limit_by_client_address=by_client_address)
    sprayer = build("203.0.113.7")
    spray(sprayer, 50, "victim")
    assert_refused(sign_in(sprayer, "victim-50@example.com"))
    assert_refused(sign_in(sprayer, "someone-else@example.com"))
    other = build("198.51.100.9")
    assert sign_in(other, "victim-50@example.com").status_code == 401


def test_the_limit_lifts_when_the_window_passes(
    client_for: Callable[..., ClientFor], clock: ManualClock
) -> None:
    """The refusal is temporary: after Retry-After the address may try again."""
    sprayer = client_for(password_sign_in_address_rate="3/10m")("203.0.113.7")
    spray(sprayer, 3, "victim")
    refused = sign_in(sprayer, "victim-3@example.com")
    assert_refused(refused)
    clock.advance(timedelta(seconds=int(refused.headers["retry-after"])))
    assert sign_in(sprayer, "victim-3@example.com").status_code == 401


def test_ipv6_addresses_of_one_64_share_a_count(client_for: Callable[..., ClientFor]) -> None:
    """Hopping between the addresses of one /64 does not escape the limit; another /64 is apart."""
    build = client_for(password_sign_in_address_rate="3/10m")
    spray(build("2001:db8:1:2::1"), 2, "first")
    spray(build("2001:db8:1:2::beef"), 1, "second")
    assert_refused(sign_in(build("2001:db8:1:2:ffff::7"), "third@example.com"))
    assert sign_in(build("2001:db8:1:3::1"), "third@example.com").status_code == 401


def test_ipv4_mapped_addresses_count_as_their_ipv4_address(
    client_for: Callable[..., ClientFor],
) -> None:
    """``::ffff:203.0.113.7`` is 203.0.113.7: a dual-stack listener cannot double the limit."""
    build = client_for(password_sign_in_address_rate="2/10m")
    spray(build("203.0.113.7"), 1, "first")
    spray(build("::ffff:203.0.113.7"), 1, "second")
    assert_refused(sign_in(build("203.0.113.7"), "third@example.com"))


def test_registration_is_not_counted_against_the_sign_in_address_limit(
    client_for: Callable[..., ClientFor],
) -> None:
    """The address rate is for sign-in; registration keeps its own per-identity limit."""
    build = client_for(password_sign_in_address_rate="2/10m", password_registration_enabled=True)
    client = build("203.0.113.7")
    for index in range(3):
        response = client.post(
            "/auth/user/password/register",
            json={"user": {"email": f"new-{index}@example.com", "password": "long enough pw"}},
        )
        assert response.status_code == 200, response.json()
    spray(client, 2, "victim")
    assert_refused(sign_in(client, "victim-2@example.com"))


@pytest.mark.parametrize("rate", ["0/10m", "5/0s"])
def test_a_zero_address_rate_is_a_start_up_problem(
    make_settings: Callable[..., Settings], rate: str
) -> None:
    """A rate that cannot be enforced is refused, naming the option."""
    problems = checks.rate_problems(make_settings(password_sign_in_address_rate=rate))
    assert [problem.option for problem in problems] == ["KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE"]
