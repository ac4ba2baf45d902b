"""Password sign-in over HTTP: the answers of API.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from keystile import testing
from keystile.clock import ManualClock
from keystile.runtime import Runtime
from keystile.settings import Settings
from keystile.store.users import set_password_hash

PASSWORD = "correct horse battery"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def create_user(settings: Settings, email: str = "alice@example.com") -> None:
    runtime = Runtime(settings)
    try:
        anyio.run(runtime.password.create_user, email, PASSWORD)
    finally:
        runtime.close()


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/auth/user/password/sign_in", json={"user": {"email": email, "password": password}}
    )


def test_sign_in_answers_the_authenticated_shape(client: TestClient, settings: Settings) -> None:
    """200 with token, Bearer type, lifetime, user and strategies; never cached."""
    create_user(settings)
    response = sign_in(client, "alice@example.com")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "token_type", "expires_in", "user", "authentication_strategies"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["email"] == "alice@example.com"
    assert body["authentication_strategies"] == ["password"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "spelling", ["ALICE@EXAMPLE.COM", "  alice@example.com\t", "Alice@Example.com"]
)
def test_case_and_whitespace_variants_sign_in(
    client: TestClient, settings: Settings, spelling: str
) -> None:
    """The email is normalised before lookup."""
    create_user(settings)
    assert sign_in(client, spelling).status_code == 200


def test_wrong_password_and_unknown_email_get_identical_answers(
    client: TestClient, settings: Settings
) -> None:
    """401 authentication_failed, byte for byte the same, for both."""
    create_user(settings)
    wrong = sign_in(client, "alice@example.com", "not the password")
    unknown = sign_in(client, "nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert wrong.json() == {"error": "authentication_failed", "message": "Authentication failed."}
    assert dict(wrong.headers) == dict(unknown.headers)


MALFORMED: list[tuple[str, Any, str]] = [
    ("not json", b"{not json", "body"),
    ("not utf-8", b"\x80", "body"),
    ("array", [1, 2], "body"),
    ("no user", {}, "user"),
    ("user not object", {"user": "alice"}, "user"),
    ("missing password", {"user": {"email": "a@example.com"}}, "user.password"),
    ("email number", {"user": {"email": 5, "password": "x"}}, "user.email"),
    ("password null", {"user": {"email": "a@example.com", "password": None}}, "user.password"),
    ("empty email", {"user": {"email": "", "password": "x"}}, "user.email"),
    ("not an email", {"user": {"email": "alice", "password": "x"}}, "user.email"),
    (
        "huge password",
        {"user": {"email": "a@example.com", "password": "x" * 5000}},
        "user.password",
    ),
    (
        "unknown field",
        {"user": {"email": "a@example.com", "password": "x", "admin": True}},
        "user.admin",
    ),
]


@pytest.mark.parametrize(("name", "body", "field"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_get_400_invalid_request_naming_the_field(
    client: TestClient, name: str, body: Any, field: str
) -> None:
    """Every malformed body: 400, invalid_request, the offending field named, never a 500."""
    if isinstance(body, bytes):
        response = client.post(
            "/auth/user/password/sign_in",
            content=body,
            headers={"content-type": "application/json"},
        )
    else:
        response = client.post("/auth/user/password/sign_in", json=body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"] == "invalid_request"
    assert field in payload["fields"], payload


def test_registration_is_off_by_default(client: TestClient) -> None:
    """The register route does not exist unless enabled."""
    response = client.post(
        "/auth/user/password/register",
        json={"user": {"email": "new@example.com", "password": PASSWORD}},
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def _mailed_code(client: TestClient, to: str) -> str:
    """The confirmation code of the newest message to ``to`` on the development mailbox."""
    deadline = time.monotonic() + 5
    while not (entries := [e for e in client.get("/dev/mailbox.json").json() if e["to"] == to]):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    words: list[str] = entries[-1]["text"].split()
    return next(w for w in words if len(w) == 8 and w.isupper())


def _register(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/auth/user/password/register", json={"user": {"email": email, "password": password}}
    )


def test_registration_when_enabled(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """200 ok alike for a new and a taken address; the password works only after the mailed code."""
    settings = make_settings(password_registration_enabled=True)
    create_user(settings, "taken@example.com")
    client = make_client(settings)
    first = _register(client, "New@Example.com")
    taken = _register(client, "taken@example.com", "another password here")
    assert (first.status_code, first.json()) == (200, {"status": "ok"})
    assert (taken.status_code, taken.content) == (first.status_code, first.content)
    assert sign_in(client, "new@example.com").status_code == 401  # not proved yet
    code = _mailed_code(client, "new@example.com")
    wrong = client.post(
        "/auth/user/password/confirm", json={"user": {"email": "new@example.com", "code": "X"}}
    )
    assert wrong.status_code == 401
    confirmed = client.post(
        "/auth/user/password/confirm",
        json={"user": {"email": "new@example.com", "code": code.lower()}},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["user"]["email"] == "new@example.com"
    assert sign_in(client, "new@example.com").status_code == 200
    replay = client.post(
        "/auth/user/password/confirm", json={"user": {"email": "new@example.com", "code": code}}
    )
    assert replay.status_code == 401
    assert sign_in(client, "taken@example.com").status_code == 200  # untouched, unproved
    assert sign_in(client, "taken@example.com", "another password here").status_code == 401
    short = _register(client, "other@example.com", "short")
    assert short.status_code == 400
    assert short.json()["fields"] == {"user.password": "must be at least 8 characters"}


def test_pre_registration_cannot_take_over_an_address(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """An attacker registers the victim's address; after the victim signs in by emailed code,
    the attacker's password still does not work (it never became the account's)."""
    settings = make_settings(password_registration_enabled=True)
    client = make_client(settings)
    runtime = Runtime(settings)
    try:  # the victim's account: passwordless, signs in by emailed code
        anyio.run(lambda: runtime.create_user("victim@example.com"))
    finally:
        runtime.close()
    assert _register(client, "victim@example.com", "attacker's password").status_code == 200
    assert sign_in(client, "victim@example.com", "attacker's password").status_code == 401
    client.post("/auth/user/otp/request", json={"user": {"email": "victim@example.com"}})
    deadline = time.monotonic() + 5
    while True:
        texts = [e["text"] for e in client.get("/dev/mailbox.json").json()]
        codes = [w for t in texts if "sign-in code" in t for w in t.split() if len(w) == 6]
        if codes:
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    victim = client.post(
        "/auth/user/otp/sign_in", json={"user": {"email": "victim@example.com", "otp": codes[0]}}
    )
    assert victim.status_code == 200
    assert sign_in(client, "victim@example.com", "attacker's password").status_code == 401


def test_token_works_on_me_until_sign_out(client: TestClient, settings: Settings) -> None:
    """/auth/me answers for the token; after sign_out the same token is 401."""
    create_user(settings)
    token = sign_in(client, "alice@example.com").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    me = client.get("/auth/me", headers=auth)
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["authentication_strategies"] == ["password"]
    assert body["amr"] == ["pwd"]
    assert body["recovery_code_used_at"] is None
    assert body["auth_time"].endswith("Z")
    out = client.post("/auth/sign_out", headers=auth)
    assert out.status_code == 204
    again = client.get("/auth/me", headers=auth)
    assert again.status_code == 401
    assert again.json()["error"] == "unauthenticated"
    assert client.post("/auth/sign_out", headers=auth).status_code == 401


def test_tokens_expire_with_the_clock(
    client: TestClient, settings: Settings, clock: ManualClock
) -> None:
    """After its lifetime the token is refused."""
    create_user(settings)
    token = sign_in(client, "alice@example.com").json()["token"]
    clock.advance(timedelta(seconds=3600))
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic YWxpY2U6eA==", "Bearer not.a.token", "Bearer " + "a" * 9000],
)
def test_missing_or_bad_bearer_is_401_unauthenticated(client: TestClient, header: str) -> None:
    """No header, another scheme or a garbage token: 401 with WWW-Authenticate."""
    headers = {"Authorization": header} if header else {}
    response = client.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_database_holds_no_password_in_clear(client: TestClient, settings: Settings) -> None:
    """Only an Argon2id hash is stored; the raw bytes never contain the password."""
    create_user(settings)
    sign_in(client, "alice@example.com")
    url = settings.database_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(FULL)")
            dump = "\n".join(conn.iterdump())
        with open(path, "rb") as handle:
            raw = handle.read()
        assert PASSWORD.encode() not in raw
    else:
        runtime = Runtime(settings)
        try:
            with testing.database(runtime).read() as conn:
                rows = [
                    *conn.execute(text("SELECT * FROM keystile_users")).all(),
                    *conn.execute(text("SELECT * FROM keystile_tokens")).all(),
                ]
        finally:
            runtime.close()
        dump = repr(rows)
    assert PASSWORD not in dump
    assert "$argon2id$" in dump


def test_a_hash_from_an_older_preset_is_rehashed_on_sign_in(
    make_client: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Sign-in upgrades a hash made under other parameters to the current preset (item 16)."""
    from argon2 import extract_parameters

    from keystile.crypto.passwords import PRESETS, Argon2Parameters, PasswordHasher

    settings = make_settings()
    old = PasswordHasher(Argon2Parameters(time_cost=2, memory_cost_kib=128, parallelism=1))
    runtime = Runtime(settings)
    try:
        user = anyio.run(runtime.password.create_user, "alice@example.com", PASSWORD)
        with testing.database(runtime).write() as conn:
            set_password_hash(conn, user.id, old.hash(PASSWORD), now=user.created_at)
    finally:
        runtime.close()
    client = make_client(settings)
    assert sign_in(client, "alice@example.com").status_code == 200
    reader = Runtime(settings)
    try:
        with testing.database(reader).read() as conn:
            stored = conn.execute(text("SELECT password_hash FROM keystile_users")).scalar_one()
    finally:
        reader.close()
    parameters = extract_parameters(stored)
    current = PRESETS["test"]
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (
        current.time_cost,
        current.memory_cost_kib,
        current.parallelism,
    )
    dummy = extract_parameters(PasswordHasher(current)._dummy)
    assert dummy == parameters
