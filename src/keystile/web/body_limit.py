"""Refuse request bodies over a size limit before they are read whole.

A pure ASGI middleware: a ``Content-Length`` over the limit is answered 413 at
once, without reading a byte of the body; a body without one (chunked) is
counted as it streams and cut off at the limit. Either way the route never
sees the body, so a 100 MB upload costs no more memory than the limit.
"""

from __future__ import annotations

import json
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keystile.web.headers import KEYSTILE_HEADERS

#: The default limit: far above any Keystile body, far below what hurts a process.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024

_BODY: Final = json.dumps(
    {"error": "request_too_large", "message": "The request body is too large."}
).encode()


class BodyTooLarge(Exception):  # noqa: N818 (a signal inside the middleware, not an error type)
    """Raised into the app when a streamed body passes the limit."""


class BodyLimitMiddleware:
    """Answer 413 ``request_too_large`` to bodies over ``max_bytes`` on paths under ``prefixes``.

    ``prefixes`` empty means every path (the standalone service); a host app
    mounting Keystile passes Keystile's prefixes, so its own routes keep their
    own rules.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefixes = prefixes

    def _applies(self, scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        path: str = scope.get("path", "")
        return not self.prefixes or any(
            path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await _refuse(send)
                    return
        seen = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn the interrupted read into its own error
            # answer (FastAPI says 400); the caller is owed the 413 instead.
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await _refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send)


async def _refuse(send: Send) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode()),
        (b"connection", b"close"),
    ]
    headers += [(name.lower().encode(), value.encode()) for name, value in KEYSTILE_HEADERS.items()]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": _BODY})
