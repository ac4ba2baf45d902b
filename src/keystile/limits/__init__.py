"""Brute-force protection: how many attempts a key (an identity, a client address) may make.

A :class:`RateLimiter` counts hits per key in a moving window and answers
each with a :class:`Decision`; the caller turns a denial into
:class:`~keystile.errors.TooManyAttemptsError`. Three backends honour one
contract, checked by one test suite:

* :class:`MemoryRateLimiter` -- one process (development, tests, a single worker);
* :class:`DatabaseRateLimiter` -- every process sharing the SQLite file or PostgreSQL database;
* :class:`RedisRateLimiter` -- several hosts, the production choice.

The window moves (a sliding log of hit times) rather than resetting on a
fixed boundary, so an attacker cannot spend ``2 * limit`` attempts across a
boundary. Denied hits are not recorded, so a locked key unlocks on time
however often it is tried. The ``limits`` library is not used (nor a
dependency): its strategies read the wall clock, while Keystile passes
``now`` in so that tests and the audit trail agree on time, and it has no
SQL storage, which the database backend needs.
"""

from keystile.limits.database import DatabaseRateLimiter
from keystile.limits.memory import MemoryRateLimiter
from keystile.limits.rate import Decision, Rate, RateLimiter
from keystile.limits.redis import RedisRateLimiter

__all__ = [
    "DatabaseRateLimiter",
    "Decision",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
]
