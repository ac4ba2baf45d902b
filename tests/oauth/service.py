"""A real ``keystile serve`` with a user who has TOTP and recovery codes, and an OAuth client
made with the CLI: what the OAuth tests drive from outside."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.attacks.processes import create_user, keystile_command
from tests.servers import keystile_server
from tests.strategies.totp.helpers import oathtool

EMAIL = "alice@example.com"
PASSWORD = "a long enough password"
SERVER_ENV = {
    "KEYSTILE_MODE": "development",
    "KEYSTILE_PASSWORD_HASH_PRESET": "test",
    "KEYSTILE_PASSWORD_SIGN_IN_RATE": "100/1m",
    "KEYSTILE_RECOVERY_CODE_RATE": "100/1m",
}


@dataclass
class Deployment:
    """The running service and what the tests know of it."""

    base: str
    cwd: Path
    env: dict[str, str]
    client_id: str
    client_secret: str = field(repr=False)
    totp_secret: str = field(repr=False)
    recovery_codes: list[str] = field(repr=False)

    @property
    def token_url(self) -> str:
        return f"{self.base}/oauth/token"

    def cli(self, *args: str) -> str:
        """Run ``keystile *args`` beside the server; its standard output."""
        done = keystile_command(self.cwd, self.env, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def next_code(self, offset: int = 30) -> str:
        """A TOTP code of a later time step than any used so far (``offset`` seconds on)."""
        return oathtool(self.totp_secret, int(time.time()) + offset)


def create_client(cwd: Path, env: dict[str, str], *args: str) -> tuple[str, str]:
    """``keystile client create``: the printed client id and secret."""
    done = keystile_command(cwd, env, "client", "create", "test-app", *args)
    assert done.returncode == 0, done.stderr
    values = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    return values["client_id"], values.get("client_secret", "")


def enrol_totp(base: str) -> tuple[str, list[str]]:
    """Sign in, set up TOTP (code from oathtool) and confirm: the secret and recovery codes."""
    signed_in = httpx.post(
        f"{base}/auth/user/password/sign_in",
        json={"user": {"email": EMAIL, "password": PASSWORD}},
    )
    assert signed_in.status_code == 200, signed_in.text
    bearer = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    setup = httpx.post(f"{base}/auth/user/totp/setup", headers=bearer)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    confirmed = httpx.post(
        f"{base}/auth/user/totp/confirm_setup",
        headers=bearer,
        json={
            "user": {
                "setup_token": setup.json()["setup_token"],
                "code": oathtool(secret, int(time.time())),
            }
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, list(confirmed.json()["recovery_codes"])


def deployment(cwd: Path, extra_env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """Start the service in ``cwd``; yield it with a user enrolled and a client created."""
    env = {**SERVER_ENV, **(extra_env or {})}
    create_user(cwd, env, EMAIL, PASSWORD)
    client_id, secret = create_client(cwd, env)
    with keystile_server(cwd, env) as base:
        totp_secret, codes = enrol_totp(base)
        yield Deployment(
            base=base,
            cwd=cwd,
            env=env,
            client_id=client_id,
            client_secret=secret,
            totp_secret=totp_secret,
            recovery_codes=codes,
        )
