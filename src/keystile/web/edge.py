"""The standalone service's outermost layer: Keystile's headers on every answer, and a last 500.

Only :func:`keystile.web.app.create_app` uses it, because there every path is
Keystile's: ``/docs``, a 404 for an unknown path and a 413 from the body
limit carry the same headers as a route's answer. An exception
that escapes everything else (a bug in a middleware) is answered 500
``internal_error`` and logged as one line, instead of reaching the server,
which would print its traceback (and its message) to the log.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keystile.web.errors import keystile_answer
from keystile.web.headers import KEYSTILE_HEADERS


class EdgeMiddleware:
    """Stamp Keystile's headers on every HTTP answer; answer what nobody handled with a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def stamped_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).update(KEYSTILE_HEADERS)
            await send(message)

        try:
            await self.app(scope, receive, stamped_send)
        except Exception as error:  # the last place an error can be answered
            response = keystile_answer(error)
            if not started:
                await response(scope, receive, send)
