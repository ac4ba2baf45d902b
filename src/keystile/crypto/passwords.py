"""Argon2id password hashing with named parameter presets.

The verifier holds a dummy hash made with the same parameters, so checking a
password for an account that does not exist costs what a real check costs
(:meth:`PasswordHasher.verify_or_dummy`): timing does not tell whether an
email is registered.

Each hash holds the preset's whole memory cost (64 MiB for
``rfc9106_low_memory``, 2 GiB for ``rfc9106_high_memory``) while it runs, so
hashes run in the hasher's own executor with a bounded number of threads
(:func:`hash_concurrency`): an attacker sending many sign-ins at once makes
them queue, in order, instead of exhausting the process's memory. The async
methods (:meth:`PasswordHasher.verify_or_dummy_async`,
:meth:`PasswordHasher.hash_async`) are the ones request handlers use.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal, ParamSpec, TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

P = ParamSpec("P")
R = TypeVar("R")

PresetName = Literal["rfc9106_low_memory", "rfc9106_high_memory", "test"]


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost parameters (RFC 9106 §4 names the two recommended sets)."""

    time_cost: int
    memory_cost_kib: int
    parallelism: int


#: Named presets. ``test`` is deliberately cheap: tests only, never production.
PRESETS: Final[dict[str, Argon2Parameters]] = {
    "rfc9106_low_memory": Argon2Parameters(time_cost=3, memory_cost_kib=64 * 1024, parallelism=4),
    "rfc9106_high_memory": Argon2Parameters(
        time_cost=1, memory_cost_kib=2 * 1024 * 1024, parallelism=4
    ),
    "test": Argon2Parameters(time_cost=1, memory_cost_kib=64, parallelism=1),
}

MAX_PASSWORD_LENGTH: Final = 1024

#: ``KEYSTILE_PASSWORD_HASH_MEMORY_MB``'s default: the memory all concurrent hashes may hold.
DEFAULT_MEMORY_BUDGET_MIB: Final = 256
#: The automatic cap never exceeds this many threads (cheap presets would otherwise ask for
#: thousands; Argon2 is CPU-bound, so more threads than this only add contention).
MAX_AUTOMATIC_CONCURRENCY: Final = 64


def hash_concurrency(
    parameters: Argon2Parameters, *, concurrency: int, memory_budget_mib: int
) -> int:
    """How many hashes may run at once in one process.

    A positive ``concurrency`` is used as given. ``0`` means automatic: as many
    hashes as ``memory_budget_mib`` holds at the preset's memory cost, at least
    1 (a budget smaller than one hash still hashes, one at a time; start-up
    checks report it) and at most :data:`MAX_AUTOMATIC_CONCURRENCY`.

    Raises:
        ValueError: ``concurrency`` is negative.
    """
    if concurrency < 0:
        raise ValueError(f"concurrency must be 0 (automatic) or positive, not {concurrency}")
    if concurrency > 0:
        return concurrency
    fits = memory_budget_mib * 1024 // parameters.memory_cost_kib
    return max(1, min(MAX_AUTOMATIC_CONCURRENCY, fits))


class PasswordHasher:
    """Hashes and verifies passwords with Argon2id, at most ``concurrency`` at a time.

    ``concurrency`` 0 (the default) is automatic: see :func:`hash_concurrency`
    with ``memory_budget_mib``. The sync methods run in the caller's thread;
    the ``…_async`` ones queue on the hasher's own executor of that many
    threads (first come, first hashed; a waiting call never fails), separate
    from the default thread pool so hashing cannot starve other blocking work
    (mail sends) and vice versa.
    """

    def __init__(
        self,
        parameters: Argon2Parameters,
        *,
        concurrency: int = 0,
        memory_budget_mib: int = DEFAULT_MEMORY_BUDGET_MIB,
    ) -> None:
        self.concurrency = hash_concurrency(
            parameters, concurrency=concurrency, memory_budget_mib=memory_budget_mib
        )
        self._hasher = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
            type=argon2.Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        self._executor = self._new_executor()

    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        concurrency: int = 0,
        memory_budget_mib: int = DEFAULT_MEMORY_BUDGET_MIB,
    ) -> PasswordHasher:
        """A hasher with the parameters of preset ``name`` (see :data:`PRESETS`)."""
        return cls(PRESETS[name], concurrency=concurrency, memory_budget_mib=memory_budget_mib)

    def hash(self, password: str) -> str:
        """A self-describing Argon2id hash of ``password`` with a random salt."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; never raises for a wrong password."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_or_dummy(self, stored_hash: str | None, password: str) -> bool:
        """Verify against ``stored_hash``, or burn the same work on the dummy hash and fail."""
        if stored_hash is None:
            self.verify(self._dummy, password)
            return False
        return self.verify(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False

    async def hash_async(self, password: str) -> str:
        """:meth:`hash` in the bounded executor (waits its turn, never refused)."""
        return await self._run(self.hash, password)

    async def verify_or_dummy_async(self, stored_hash: str | None, password: str) -> bool:
        """:meth:`verify_or_dummy` in the bounded executor (waits its turn, never refused).

        A caller cancelled while still queued takes its hash out of the queue.
        """
        return await self._run(self.verify_or_dummy, stored_hash, password)

    def close(self) -> None:
        """Let running hashes finish in the background; the hasher stays usable (new threads)."""
        executor, self._executor = self._executor, self._new_executor()
        executor.shutdown(wait=False)

    async def aclose(self) -> None:
        """:meth:`close`, then wait (off the event loop) for the hashes that were running."""
        executor, self._executor = self._executor, self._new_executor()
        await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)

    async def _run(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.concurrency, thread_name_prefix="keystile-argon2")
