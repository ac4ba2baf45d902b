"""A short-lived, per-process memory of bearer tokens recently found live.

Checking a bearer token is what every authenticated call pays: a JWT
decode, a thread-pool hop and a database query (is the ``jti`` live, and the
user row). A client calls with the same token again and again, so the answer
is kept for a moment: for at most ``ttl`` (1 s at most) after the database
said the token was live, and never past the token's own expiry.

The bound this gives revocation (documented in the README):

- **the process that revokes a token refuses it at once**: :meth:`drop` is
  called as the revocation commits, and a lookup that was already in flight
  when it did stores nothing (:attr:`generation`);
- **every other process refuses it within** ``ttl``: its entry expires and
  the next call asks the database again. A user deleted from the database is
  refused within the same bound.

Entries are keyed by the SHA-256 digest of the token, so no bearer token is
kept and no token is ever compared with ``==``. Only tokens that verified and
were found live are stored; a refused token is asked about each time. At most
``max_entries`` are held; when full, the oldest entry (the one nearest its
end) makes room.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from keystile.clock import Clock

if TYPE_CHECKING:
    from keystile.flows.sessions import Session

#: The longest a remembered answer may be used: the documented revocation bound.
MAX_TTL: Final = timedelta(seconds=1)

DEFAULT_MAX_ENTRIES: Final = 10_000


def token_key(token: str) -> bytes:
    """The cache key of a bearer token: its SHA-256 digest."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    session: Session
    stored_at: datetime
    valid_until: datetime


class SessionCache:
    """Bearer tokens found live in the last ``ttl``, with their session.

    Safe to share between threads: lookups are single dictionary reads and
    changes hold a lock.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        ttl: timedelta = MAX_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        """``ttl`` zero turns the cache off.

        Raises:
            ValueError: ``ttl`` negative or above :data:`MAX_TTL`, or ``max_entries`` below 1.
        """
        if not timedelta(0) <= ttl <= MAX_TTL:
            raise ValueError(f"the session cache ttl must be between 0 and {MAX_TTL}")
        if max_entries < 1:
            raise ValueError("the session cache needs room for at least one entry")
        self._clock = clock
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[bytes, _Entry] = {}
        self._keys_by_jti: dict[str, bytes] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether anything is ever remembered (``ttl`` above zero)."""
        return self._ttl > timedelta(0)

    @property
    def generation(self) -> int:
        """Moves on every :meth:`drop`: read it before a lookup, pass it to :meth:`put`."""
        return self._generation

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Session | None:
        """The remembered session of ``key``, if it was found live less than ``ttl`` ago
        and its token has not expired; else ``None``.

        A clock that went back before the entry was stored also gives ``None``,
        so a moved wall clock cannot stretch the bound.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock.now()
        if entry.stored_at <= now < entry.valid_until:
            return entry.session
        return None

    def put(self, key: bytes, session: Session, *, checked_at: datetime, generation: int) -> None:
        """Remember that ``key``'s token was found live at ``checked_at``.

        Nothing is stored when a :meth:`drop` happened since ``generation``
        was read: the lookup may have seen the row before that revocation.
        """
        if not self.enabled:
            return
        valid_until = min(checked_at + self._ttl, session.claims.expires_at)
        entry = _Entry(session=session, stored_at=checked_at, valid_until=valid_until)
        jti = session.claims.jti
        with self._lock:
            if generation != self._generation:
                return
            self._remove(key)
            while len(self._entries) >= self._max_entries:
                self._remove(next(iter(self._entries)))
            self._entries[key] = entry
            self._keys_by_jti[jti] = key

    def drop(self, jti: str) -> None:
        """Forget the token ``jti`` at once (it was revoked here), and let no lookup
        already in flight store it again."""
        with self._lock:
            self._generation += 1
            key = self._keys_by_jti.get(jti)
            if key is not None:
                self._remove(key)

    def drop_subject(self, subject: str) -> None:
        """Forget every token of the user ``subject`` (their sessions were revoked here)."""
        with self._lock:
            self._generation += 1
            for key in [k for k, e in self._entries.items() if e.session.user.subject == subject]:
                self._remove(key)

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            jti = entry.session.claims.jti
            if self._keys_by_jti.get(jti) == key:
                del self._keys_by_jti[jti]
