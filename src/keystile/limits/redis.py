"""The Redis limiter: a sorted set of hit times per key, updated by one Lua script.

For several processes or hosts. Redis runs a script without interleaving
other commands, so trimming, counting and recording are one atomic step.
Times travel as integer milliseconds since the epoch: a sorted-set score is
a double, exact for such integers, so the window has millisecond resolution.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from keystile.errors import UnavailableError
from keystile.limits.rate import CountsOnItsOwn, Decision, Rate, allowed, check_hit, denied

# KEYS[1] the key; ARGV: now (ms), window (ms), limit, a member unique to this hit.
# Returns {1, hits counted including this one} or {0, score of the oldest hit}.
_HIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local counted = redis.call('ZCARD', KEYS[1])
if counted < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, counted + 1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2])}
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_TIMEOUT_SECONDS = 2.0


class RedisRateLimiter(CountsOnItsOwn):
    """Moving-window counts in Redis, shared by every client of the server.

    The client gives up after :data:`_TIMEOUT_SECONDS` to connect or answer
    and retries once, without back-off (enough to replace a pooled
    connection the server dropped), so an unreachable Redis is reported
    quickly as :class:`~keystile.errors.UnavailableError` rather than
    stalling sign-ins. A retry after a lost reply may count a hit twice;
    that errs towards denying.

    The key's expiry (``PEXPIRE``) only collects garbage, in the server's
    time; the decision uses the caller's ``now`` alone.
    """

    def __init__(self, url: str, *, prefix: str = "keystile:rl:") -> None:
        self.prefix = prefix
        self._client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=_TIMEOUT_SECONDS,
            socket_timeout=_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), retries=1),
        )
        self._hit = self._client.register_script(_HIT)

    async def hit(self, key: str, rate: Rate, *, now: datetime) -> Decision:
        """See :meth:`keystile.limits.RateLimiter.hit`."""
        check_hit(key, now)
        now_ms = (now - _EPOCH) // _MILLISECOND
        window_ms = max(1, -(-rate.window // _MILLISECOND))
        member = f"{now_ms}:{secrets.token_hex(8)}"
        try:
            verdict, value = await self._hit(
                keys=[self.prefix + key], args=[now_ms, window_ms, rate.limit, member]
            )
        except RedisError as error:
            raise UnavailableError() from error
        if verdict == 1:
            return allowed(rate, counted=int(value))
        oldest = _EPOCH + int(value) * _MILLISECOND
        # Measured from ``now`` as the script saw it, truncated to the millisecond.
        return denied(rate, oldest=oldest, now=_EPOCH + now_ms * _MILLISECOND)

    async def reset(self, key: str) -> None:
        """See :meth:`keystile.limits.RateLimiter.reset`."""
        try:
            await self._client.delete(self.prefix + key)
        except RedisError as error:
            raise UnavailableError() from error

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        await self._client.aclose()
