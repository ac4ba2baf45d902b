"""A rate such as ``5/15m``: at most ``limit`` events in any moving ``window`` (pure).

A value type of the core layer rather than of ``limits/``: the strategy
configs (``strategies/*/config.py``) validate their rates at start-up, and a
core module may not import an adapter. The limiter backends count against it
(:mod:`keystile.limits.rate` re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` hits in any moving ``window``.

    Raises:
        ValueError: ``limit`` is below 1 or ``window`` is not positive.
    """

    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"rate limit must be at least 1, got {self.limit}")
        if self.window <= timedelta(0):
            raise ValueError(f"rate window must be positive, got {self.window}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str) -> Rate:
    """``"5/15m"`` → 5 per 15 minutes. Units: s, m, h, d.

    Raises:
        ValueError: not of the form ``<limit>/<number><unit>``.
    """
    limit, _, window = text.strip().partition("/")
    unit = window[-1:] if window else ""
    if not limit.isdigit() or unit not in _UNITS or not window[:-1].isdigit():
        raise ValueError(f"{text!r} is not a rate such as 5/15m (units s, m, h, d)")
    return Rate(limit=int(limit), window=timedelta(seconds=int(window[:-1]) * _UNITS[unit]))
