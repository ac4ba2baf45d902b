"""Argon2id password hashing, and the bounded executor that runs it."""

from __future__ import annotations

import threading

import anyio
import pytest

from keystile import checks
from keystile.crypto.passwords import (
    MAX_AUTOMATIC_CONCURRENCY,
    PRESETS,
    Argon2Parameters,
    PasswordHasher,
    hash_concurrency,
)
from keystile.settings import Settings
from tests.conftest import TEST_KEYS

#: Slow enough (tens of milliseconds) that unbounded callers would overlap.
SLOWISH = Argon2Parameters(time_cost=3, memory_cost_kib=8 * 1024, parallelism=1)


def test_hash_is_argon2id_and_verifies() -> None:
    """Hashes are Argon2id, salted, and verify only the right password."""
    hasher = PasswordHasher.from_preset("test")
    first, second = hasher.hash("correct horse"), hasher.hash("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second
    assert hasher.verify(first, "correct horse")
    assert not hasher.verify(first, "Correct horse")


def test_unknown_account_check_fails_after_doing_the_work() -> None:
    """``verify_or_dummy`` with no stored hash is always False."""
    hasher = PasswordHasher.from_preset("test")
    assert hasher.verify_or_dummy(None, "anything") is False


def test_garbage_hash_is_a_mismatch_not_a_crash() -> None:
    """A corrupted stored hash fails verification instead of raising."""
    hasher = PasswordHasher.from_preset("test")
    assert hasher.verify("not-a-hash", "x") is False


def test_rehash_is_needed_when_parameters_change() -> None:
    """Hashes made with the cheap preset are flagged for rehash under the default one."""
    cheap = PasswordHasher.from_preset("test").hash("pw")
    assert PasswordHasher(PRESETS["test"]).needs_rehash(cheap) is False
    assert PasswordHasher(PRESETS["rfc9106_low_memory"]).needs_rehash(cheap) is True


def test_automatic_concurrency_divides_the_memory_budget() -> None:
    """0 = the budget over one hash's memory (256 / 64 = 4), at least 1, at most the ceiling."""
    low, high = PRESETS["rfc9106_low_memory"], PRESETS["rfc9106_high_memory"]
    assert hash_concurrency(low, concurrency=0, memory_budget_mib=256) == 4
    assert hash_concurrency(low, concurrency=0, memory_budget_mib=1000) == 15
    assert hash_concurrency(high, concurrency=0, memory_budget_mib=256) == 1
    assert hash_concurrency(high, concurrency=0, memory_budget_mib=4096) == 2
    assert hash_concurrency(PRESETS["test"], concurrency=0, memory_budget_mib=256) == (
        MAX_AUTOMATIC_CONCURRENCY
    )


def test_an_explicit_concurrency_wins_over_the_budget() -> None:
    """A positive KEYSTILE_PASSWORD_HASH_CONCURRENCY is used as given."""
    high = PRESETS["rfc9106_high_memory"]
    assert hash_concurrency(high, concurrency=3, memory_budget_mib=256) == 3
    assert PasswordHasher(PRESETS["test"], concurrency=2).concurrency == 2


def test_a_negative_concurrency_is_refused() -> None:
    """The cap is a count of hashes: negative values are a programming error."""
    with pytest.raises(ValueError, match="concurrency"):
        hash_concurrency(PRESETS["test"], concurrency=-1, memory_budget_mib=256)


class CountingHasher(PasswordHasher):
    """A real hasher that counts, inside the executor's threads, how many verify at once."""

    def __init__(self, parameters: Argon2Parameters, *, concurrency: int) -> None:
        super().__init__(parameters, concurrency=concurrency)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.threads: set[str] = set()

    def verify(self, stored_hash: str, password: str) -> bool:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.started.append(password)
            self.threads.add(threading.current_thread().name)
        try:
            return super().verify(stored_hash, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.anyio
async def test_concurrent_verifications_never_exceed_the_cap() -> None:
    """N + 3 simultaneous checks: at most N run at once, the rest wait in order and all answer."""
    cap = 2
    hasher = CountingHasher(SLOWISH, concurrency=cap)
    stored = hasher.hash("right")
    passwords = ["right" if index % 2 == 0 else f"wrong-{index}" for index in range(cap + 3)]
    results: dict[int, bool] = {}

    async def check(index: int, password: str) -> None:
        results[index] = await hasher.verify_or_dummy_async(stored, password)

    try:
        async with anyio.create_task_group() as tasks:
            for index, password in enumerate(passwords):
                tasks.start_soon(check, index, password)
    finally:
        await hasher.aclose()
    assert results == {index: index % 2 == 0 for index in range(cap + 3)}
    assert hasher.peak == cap
    assert hasher.started == passwords  # first come, first hashed
    assert hasher.threads <= {f"keystile-argon2_{index}" for index in range(cap)}


@pytest.mark.anyio
async def test_unknown_accounts_burn_a_hash_in_the_bounded_executor() -> None:
    """The dummy check of a missing account runs in the same bounded executor and fails."""
    hasher = CountingHasher(PRESETS["test"], concurrency=1)
    try:
        assert await hasher.verify_or_dummy_async(None, "anything") is False
    finally:
        await hasher.aclose()
    assert hasher.started == ["anything"]
    assert hasher.threads == {"keystile-argon2_0"}


@pytest.mark.anyio
async def test_hash_async_makes_a_verifiable_hash_and_the_hasher_survives_close() -> None:
    """``hash_async`` hashes off the event loop; after ``aclose`` new work gets new threads."""
    hasher = PasswordHasher.from_preset("test", concurrency=1)
    first = await hasher.hash_async("pw")
    await hasher.aclose()
    second = await hasher.hash_async("pw")
    hasher.close()
    assert hasher.verify(first, "pw")
    assert hasher.verify(second, "pw")
    assert first != second


def budget_settings(**overrides: object) -> Settings:
    return Settings(**{**TEST_KEYS, "database_url": "sqlite://", **overrides})  # type: ignore[arg-type]


def test_a_budget_smaller_than_one_hash_is_a_start_up_problem() -> None:
    """2 GiB hashes under the default 256 MiB budget: refused in production, naming the option."""
    high = budget_settings(password_hash_preset="rfc9106_high_memory")
    problem = checks.password_hash_budget_problem(high)
    assert problem is not None
    assert str(problem) == (
        "KEYSTILE_PASSWORD_HASH_MEMORY_MB: 256 MiB cannot hold even one `rfc9106_high_memory` "
        "hash (2048 MiB): raise it to at least 2048, or set KEYSTILE_PASSWORD_HASH_CONCURRENCY"
    )
    assert problem in checks.configuration_problems(high)


@pytest.mark.parametrize(
    "overrides",
    [
        {"password_hash_preset": "rfc9106_low_memory"},
        {"password_hash_preset": "rfc9106_low_memory", "password_hash_memory_mb": 64},
        {"password_hash_preset": "rfc9106_high_memory", "password_hash_memory_mb": 2048},
        {"password_hash_preset": "rfc9106_high_memory", "password_hash_concurrency": 1},
    ],
)
def test_a_budget_holding_one_hash_or_an_explicit_cap_is_fine(overrides: dict[str, object]) -> None:
    """The check is about the automatic cap only; an explicit one is the operator's choice."""
    assert checks.password_hash_budget_problem(budget_settings(**overrides)) is None
