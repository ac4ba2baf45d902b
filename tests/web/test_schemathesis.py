"""Schemathesis, every check, over the whole OpenAPI document of a real ``keystile serve``.

The server runs as a deployment would (SQLite, development mode, password
registration on so that every route is mounted). Schemathesis reads
``/openapi.json`` and sends schema-valid and schema-invalid requests to every
operation, checking each answer against the document: no server error, only
documented statuses, content types and bodies, schema-valid data accepted and
invalid data refused, 405 with ``Allow`` for other methods. It runs once
without credentials and once with a valid bearer token of a session that passed
a second factor (a recovery code, after enrolling TOTP through the API); with the token,
signing out (which revokes it) has a run and a token of its own, so the other
operations really see a signed-in caller.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from keystile.identity import InvalidIdentityError, normalize_email
from keystile.web.schemas import EMAIL_DOMAIN_PATTERN
from tests.servers import keystile_server
from tests.strategies.totp.helpers import oathtool

EMAIL = "alice@example.com"
PASSWORD = "a long enough password"
#: Cases per operation and phase: enough to reach every rule, small enough for 2 cores.
MAX_EXAMPLES = "50"
SERVER_ENV = {
    "KEYSTILE_MODE": "development",
    "KEYSTILE_PASSWORD_HASH_PRESET": "test",
    "KEYSTILE_PASSWORD_REGISTRATION_ENABLED": "true",
}


def run_schemathesis(cwd: Path, base: str, *options: str) -> str:
    """``schemathesis run`` against ``base`` with every check; fails the test on any finding."""
    command = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        MAX_EXAMPLES,
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--no-color",
        *options,
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    result = subprocess.run(
        command,
        cwd=cwd,  # .hypothesis/ and any report stay in the test's folder
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    # The exit status is the verdict; the summary confirms cases ran and none failed.
    assert re.search(r"\b[1-9][0-9]* generated, [1-9][0-9]* passed", output), output[-6000:]
    assert "Failures:" not in output, output[-6000:]
    assert "Errors:" not in output, output[-6000:]
    return output


def first_factor(base: str) -> dict[str, object]:
    response = httpx.post(
        f"{base}/auth/user/password/sign_in",
        json={"user": {"email": EMAIL, "password": PASSWORD}},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def enrol(base: str) -> list[str]:
    """Give the account TOTP through the API; its first recovery codes."""
    token = first_factor(base)["token"]
    headers = {"Authorization": f"Bearer {token}"}
    started = httpx.post(f"{base}/auth/user/totp/setup", headers=headers, timeout=20).json()
    code = oathtool(str(started["secret"]), int(time.time()))
    confirm = {"user": {"setup_token": started["setup_token"], "code": code}}
    enabled = httpx.post(
        f"{base}/auth/user/totp/confirm_setup", headers=headers, json=confirm, timeout=20
    )
    assert enabled.status_code == 200, enabled.text
    codes: list[str] = enabled.json()["recovery_codes"]
    return codes


def sign_in(base: str, recovery_code: str) -> str:
    """A session that passed a second factor just now (routes guarded by a recent second
    factor, such as TOTP disable and recovery-code generate, really see a caller)."""
    held = first_factor(base)
    response = httpx.post(
        f"{base}/auth/user/recovery_code/verify",
        json={"user": {"mfa_token": held["mfa_token"], "code": recovery_code}},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


def create_user(cwd: Path) -> None:
    """``keystile user create`` in ``cwd``: the account the bearer token belongs to."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    created = subprocess.run(
        [sys.executable, "-m", "keystile", "user", "create", EMAIL, "--password-stdin"],
        cwd=cwd,
        env={**environment, **SERVER_ENV},
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr


@pytest.mark.timeout(300)  # three Schemathesis runs: about 40 s here, more on a loaded machine
def test_the_whole_document_holds_without_and_with_a_bearer_token(tmp_path: Path) -> None:
    """No failure of any check and no server error, anonymous and signed in."""
    create_user(tmp_path)
    with keystile_server(tmp_path, SERVER_ENV) as base:
        # Both tokens first: fuzzing learns the address from /auth/me and may then use up
        # its sign-in limit (429) with wrong passwords, as an attacker would.
        codes = enrol(base)
        token, sign_out_token = sign_in(base, codes[0]), sign_in(base, codes[1])

        run_schemathesis(tmp_path, base)
        signed_in = run_schemathesis(
            tmp_path,
            base,
            "--header",
            f"Authorization: Bearer {token}",
            "--exclude-path",
            "/auth/sign_out",
            # The OAuth and MFA API take other credentials (client secrets, MFA tokens,
            # OAuth access tokens); tests/oauth/test_schemathesis.py runs them with those.
            "--exclude-path-regex",
            r"^/(oauth|mfa|passwordless)/",
        )
        # Schemathesis warns when an operation only ever answered 401: the token must work.
        assert "Authentication failed" not in signed_in, signed_in[-3000:]
        me = httpx.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=20)
        assert me.json()["user"]["email"] == EMAIL

        run_schemathesis(
            tmp_path,
            base,
            "--header",
            f"Authorization: Bearer {sign_out_token}",
            "--include-path",
            "/auth/sign_out",
        )


@pytest.mark.parametrize(
    "address",
    [
        "alice@example.com",
        "Alice@Example.COM",
        "a@mylocal.com",
        "a@test.example.com",
        "a@b.TEST",
        "a@x.test",
        "a@printer.local",
        "a@localhost",
        "a@host.localhost",
        "a@hidden.onion",
        "a@1.in-addr.arpa",
        "a@nothing.invalid",
        "a@nodot",
    ],
)
def test_the_documented_domain_rule_is_the_one_applied(address: str) -> None:
    """The OpenAPI pattern accepts an address exactly when ``normalize_email`` does.

    Schemathesis holds the server to the document; this holds the document to
    the rule, for addresses that ``format: email`` alone would let through.
    """
    documented = re.search(EMAIL_DOMAIN_PATTERN, address) is not None
    try:
        normalize_email(address)
    except InvalidIdentityError:
        applied = False
    else:
        applied = True
    assert documented is applied
