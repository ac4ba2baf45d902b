"""Hand messages to an HTTP endpoint, typically an SMS gateway or a small relay.

The request is ``POST <url>`` with the JSON body ``{"to", "subject", "text"}``.
With a ``secret``, the header ``X-Keystile-Signature: t=<unix seconds>,v1=<hex>``
carries the HMAC-SHA256 of ``"<t>." + body`` (the scheme Stripe uses): the
receiver recomputes it over the exact body bytes, compares in constant time,
and refuses a timestamp older than a few minutes (:func:`verify`), so a
captured request cannot be replayed later to send the same text again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from types import TracebackType

import httpx

from keystile.senders.base import Message, SendError

SIGNATURE_HEADER = "X-Keystile-Signature"

#: How old a signed request a receiver accepts by default, in seconds.
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(body: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds).

    ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>." + body>``: the time is
    signed with the body, so a receiver can refuse an old request (a replay).
    """
    return f"t={timestamp},v1={_digest(body, secret, timestamp)}"


def verify(
    body: bytes,
    header: str,
    secret: str,
    *,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` at most ``tolerance_seconds`` ago.

    For receivers (and our tests). ``now`` is the receiver's Unix time. A
    malformed header, a timestamp outside ``now ± tolerance_seconds`` or a
    wrong digest all give ``False``; the digest is compared in constant time.
    """
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, value)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or len(stamp) > 12 or not given:
        return False
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(_digest(body, secret, timestamp), given)


class WebhookSender:
    """POSTs each :class:`Message` (without its HTML) as JSON to ``url``.

    Args:
        url: an ``http`` or ``https`` URL. It may embed a token, so it is kept
            out of ``repr`` and errors (only its host is shown).
        secret: when set, every request is signed (see the module docstring).
        timeout: seconds for connecting and for the answer (also with a shared client).
        client: a shared :class:`httpx.AsyncClient`; it stays the caller's to
            close. Without one the sender makes its own, closed by :meth:`aclose`.
        wall_clock: Unix time for the signature's timestamp (``time.time``;
            tests pass their own).

    Raises:
        ValueError: ``url`` is not an absolute ``http(s)`` URL, ``secret`` is
            empty, or ``timeout`` is not positive.
    """

    __slots__ = ("_client", "_owns_client", "_secret", "_timeout", "_url", "_wall_clock")

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the webhook URL must be an absolute http or https URL")
        if secret is not None and not secret:
            raise ValueError("the webhook secret must not be empty")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._url = parsed
        self._secret = secret
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()
        self._wall_clock = wall_clock

    @property
    def host(self) -> str:
        """The host messages go to (safe to show; the full URL may not be)."""
        return self._url.host

    def body(self, message: Message) -> bytes:
        """The exact bytes sent (and signed) for ``message``."""
        payload = {"to": message.to, "subject": message.subject, "text": message.text}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def send(self, message: Message) -> None:
        """POST ``message``; any 2xx answer means delivered.

        Redirects are not followed, even by a shared client that would: a
        redirect would carry the code to a place nobody configured.

        Raises:
            SendError: the endpoint cannot be reached, times out, or answers
                anything but 2xx.
        """
        body = self.body(message)
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._secret, int(self._wall_clock()))
        try:
            response = await self._client.post(
                self._url,
                content=body,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as error:
            raise SendError(f"the webhook at {self.host} did not answer in time") from error
        except httpx.HTTPError as error:
            raise SendError(f"could not reach the webhook at {self.host}") from error
        if not response.is_success:
            raise SendError(f"the webhook at {self.host} answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        """Close the HTTP client if this sender made it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"WebhookSender(host={self.host!r}, signed={self._secret is not None})"
