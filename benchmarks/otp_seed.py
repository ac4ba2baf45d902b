"""Seeding for the one-time-code benchmarks: users and codes stored as the service stores them.

The benchmark process builds its own :class:`keystile.runtime.Runtime` from the very
environment the server gets (:func:`seeding_runtime`), so both use the same SQLite file
and the same development key file, and therefore the same hashing key: a code stored
here under :func:`keystile.strategies.otp.core.code_token_id` is one the server accepts.

A code is stored exactly as :meth:`OtpService.request` stores it (``tokens.replace``,
purpose ``otp``, the configured lifetime) without sending anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
from sqlalchemy import func, select

from harness import BenchmarkError
from keystile import testing
from keystile.errors import ConfigurationError
from keystile.flows.sign_in import SecondFactorRequired
from keystile.runtime import Runtime
from keystile.settings import load_settings
from keystile.store.tables import tokens
from keystile.strategies.otp.service import PURPOSE as OTP_PURPOSE
from keystile.strategies.totp.rfc6238 import totp_at_step

DOMAIN = "bench.example"
_Action = Callable[[str], Awaitable[None]]
SEED_CONCURRENCY = 8
"""Seeding tasks in flight; SQLite serialises the writes, this only keeps the pool busy."""


@dataclass(frozen=True)
class CodePair:
    """A seeded identity and its live, unused code."""

    email: str
    code: str

    def sign_in_body(self) -> str:
        """The ``POST …/otp/sign_in`` JSON body, on one line."""
        return compact_json({"user": {"email": self.email, "otp": self.code}})


def compact_json(value: object) -> str:
    """``value`` as JSON without spaces, the way a client library would send it."""
    return json.dumps(value, separators=(",", ":"))


def request_body(email: str) -> str:
    """The ``POST …/otp/request`` JSON body, on one line."""
    return compact_json({"user": {"email": email}})


def emails(tag: str, count: int, *, start: int = 0) -> list[str]:
    """``count`` distinct addresses ``<tag>-<n, 7 digits>@bench.example``.

    Same-length tags give same-length addresses, so two groups differ in nothing a
    parser or an index could tell apart but the tag.
    """
    return [f"{tag}-{n:07d}@{DOMAIN}" for n in range(start, start + count)]


@contextmanager
def keystile_environ(env: Mapping[str, str]) -> Iterator[None]:
    """For the block, ``os.environ``'s ``KEYSTILE_*`` variables are exactly those of ``env``."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("KEYSTILE_")}
    for name in saved:
        del os.environ[name]
    os.environ.update({name: value for name, value in env.items() if name.startswith("KEYSTILE_")})
    try:
        yield
    finally:
        for name in [name for name in os.environ if name.startswith("KEYSTILE_")]:
            del os.environ[name]
        os.environ.update(saved)


@contextmanager
def seeding_runtime(env: Mapping[str, str]) -> Iterator[Runtime]:
    """A :class:`Runtime` built by ``load_settings()`` under ``env``, its schema migrated.

    In development mode the first ``load_settings()`` writes the key file the server
    will read. The runtime is closed (its connections released) when the block ends.

    Raises:
        BenchmarkError: the settings are invalid or the OTP strategy is disabled.
    """
    try:
        with keystile_environ(env):
            runtime = Runtime(load_settings())
    except ConfigurationError as error:
        raise BenchmarkError(f"cannot build the Keystile runtime: {error}") from None
    try:
        if runtime.otp is None:
            raise BenchmarkError("the OTP strategy is disabled (KEYSTILE_OTP_ENABLED)")
        runtime.prepare_database()
        yield runtime
    finally:
        runtime.close()


def seed(
    runtime: Runtime,
    users: Sequence[str],
    *,
    with_codes: Sequence[str] = (),
    concurrency: int = SEED_CONCURRENCY,
) -> dict[str, str]:
    """Create ``users`` (no password), then store one fresh code for each of ``with_codes``.

    All in one ``anyio.run``, ``concurrency`` tasks at a time. Codes are stored after
    every user exists, newest last, so the configured lifetime runs from the end of the
    seeding. Returns ``{email: code}`` for ``with_codes``.
    """
    otp = runtime.otp
    if otp is None:
        raise BenchmarkError("the OTP strategy is disabled (KEYSTILE_OTP_ENABLED)")
    codes: dict[str, str] = {}
    started = time.monotonic()

    async def create_user(email: str) -> None:
        await runtime.create_user(email)

    async def store_code(email: str) -> None:
        codes[email] = await testing.issue_code(runtime, email)

    async def run_all() -> None:
        for label, items, action in (
            ("users", users, create_user),
            ("codes", with_codes, store_code),
        ):
            if items:
                await _in_parallel(label, items, action, concurrency)

    anyio.run(run_all)
    progress(
        f"seeded {len(users)} users and {len(codes)} codes in {time.monotonic() - started:.1f} s"
    )
    return codes


async def _in_parallel(
    label: str,
    items: Sequence[str],
    action: _Action,
    concurrency: int,
) -> None:
    """``action(item)`` for every item, ``concurrency`` at a time, with progress lines."""
    pending = iter(items)
    done = 0
    step = max(1, len(items) // 5)

    async def worker() -> None:
        nonlocal done
        for item in pending:  # a shared iterator: each item goes to exactly one worker
            await action(item)
            done += 1
            if done % step == 0 or done == len(items):
                progress(f"seeding {label}: {done}/{len(items)}")

    async with anyio.create_task_group() as group:
        for _ in range(max(1, concurrency)):
            group.start_soon(worker)


@dataclass(frozen=True)
class Account:
    """A seeded user with a second factor: email, password, TOTP secret, (optionally) a
    batch of recovery codes as shown, and (optionally) a held sign-in's mfa_token."""

    email: str
    password: str = field(repr=False)
    secret: bytes = field(repr=False)
    mfa_token: str = field(default="", repr=False)
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)

    def sign_in_body(self) -> str:
        """The ``POST …/password/sign_in`` JSON body, on one line."""
        return compact_json({"user": {"email": self.email, "password": self.password}})

    def verify_body(self, step: int) -> str:
        """The ``POST …/totp/verify`` JSON body with this account's code of ``step``."""
        return compact_json({"user": {"mfa_token": self.mfa_token, "code": self.code(step)}})

    def recovery_body(self, index: int = 0) -> str:
        """The ``POST …/recovery_code/verify`` JSON body with the batch's code ``index``."""
        code = self.recovery_codes[index]
        return compact_json({"user": {"mfa_token": self.mfa_token, "code": code}})

    def code(self, step: int) -> str:
        """The account's TOTP code of time step ``step``."""
        return totp_at_step(self.secret, step)


def seed_accounts(
    runtime: Runtime,
    addresses: Sequence[str],
    *,
    with_tokens: bool,
    recovery_codes: bool = False,
) -> list[Account]:
    """A user with a random password and an active authenticator per address, in order.

    With ``recovery_codes``, each also gets a batch (``runtime.recovery_codes.generate``,
    stored as the generate route stores it). With ``with_tokens``, then a password
    sign-in for each (``runtime.sign_in.password``), which the second factor holds: its
    mfa_token is the account's. Passwords are hashed by ``runtime.password.create_user``
    with the configured preset, as the server would. ``SEED_CONCURRENCY`` tasks in one
    ``anyio.run``.

    Raises:
        BenchmarkError: recovery codes are off, or a sign-in was not held for the second
            factor.
    """
    service = runtime.recovery_codes
    if recovery_codes and service is None:
        raise BenchmarkError("recovery codes are turned off (KEYSTILE_RECOVERY_CODES_ENABLED)")
    accounts: dict[str, Account] = {}
    started = time.monotonic()

    async def create(email: str) -> None:
        password = secrets.token_urlsafe(12)
        user = await runtime.password.create_user(email, password)
        secret = await testing.enrol_totp(runtime, email)
        codes: tuple[str, ...] = ()
        if recovery_codes and service is not None:
            codes = (await service.generate(user)).codes
        accounts[email] = Account(email, password, secret, recovery_codes=codes)

    async def hold(email: str) -> None:
        account = accounts[email]
        result = await runtime.sign_in.password(email, account.password)
        if not isinstance(result, SecondFactorRequired):
            raise BenchmarkError(f"{email} signed in without a second factor")
        accounts[email] = dataclasses.replace(account, mfa_token=result.mfa_token)

    async def run_all() -> None:
        await _in_parallel("users", addresses, create, SEED_CONCURRENCY)
        if with_tokens:
            await _in_parallel("mfa_tokens", addresses, hold, SEED_CONCURRENCY)

    anyio.run(run_all)
    what = "users with an authenticator"
    what += " and recovery codes" if recovery_codes else ""
    what += " and an mfa_token" if with_tokens else ""
    progress(f"seeded {len(addresses)} {what} in {time.monotonic() - started:.1f} s")
    return [accounts[email] for email in addresses]


def count_used_codes(runtime: Runtime, subjects_like: str) -> tuple[int, int]:
    """``(used, live)``: codes of subjects ``LIKE subjects_like`` revoked, and still live.

    A code is revoked when it signs in (single use) or when a newer code replaces it;
    the benchmarks store one code per identity, so here revoked means used.
    """
    revoked = func.count().filter(tokens.c.revoked_at.is_not(None))
    live = func.count().filter(tokens.c.revoked_at.is_(None))
    with testing.database(runtime).read() as conn:
        used, unused = conn.execute(
            select(revoked, live).where(
                tokens.c.purpose == OTP_PURPOSE, tokens.c.subject.like(subjects_like)
            )
        ).one()
    return int(used), int(unused)


def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)
