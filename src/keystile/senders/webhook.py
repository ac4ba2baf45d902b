"""Hand messages to an HTTP endpoint, typically an SMS gateway or a small relay.

The request is ``POST <url>`` with the JSON body ``{"to", "subject", "text"}``.
With a ``secret``, the header ``X-Keystile-Signature: sha256=<hex>`` carries
the HMAC-SHA256 of the exact body bytes, so the receiver can check that the
request comes from us (comparing in constant time) before it sends anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from types import TracebackType

import httpx

from keystile.senders.base import Message, SendError

SIGNATURE_HEADER = "X-Keystile-Signature"


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``"sha256=" + hex HMAC-SHA256``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSender:
    """POSTs each :class:`Message` (without its HTML) as JSON to ``url``.

    Args:
        url: an ``http`` or ``https`` URL. It may embed a token, so it is kept
            out of ``repr`` and errors (only its host is shown).
        secret: when set, every request is signed (see the module docstring).
        timeout: seconds for connecting and for the answer (also with a shared client).
        client: a shared :class:`httpx.AsyncClient`; it stays the caller's to
            close. Without one the sender makes its own, closed by :meth:`aclose`.

    Raises:
        ValueError: ``url`` is not an absolute ``http(s)`` URL, ``secret`` is
            empty, or ``timeout`` is not positive.
    """

    __slots__ = ("_client", "_owns_client", "_secret", "_timeout", "_url")

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
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
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
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
