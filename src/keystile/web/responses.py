"""Response helpers shared by every router: no-store routes and documented error answers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from keystile.web.errors import NO_STORE
from keystile.web.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "`invalid_request`: malformed JSON, missing or mistyped fields (`fields` says which).",
    401: "`authentication_failed` or `unauthenticated`.",
    404: "`not_found`.",
    409: "`already_registered`.",
    429: "`too_many_attempts`: a brute-force limit holds; see `Retry-After`.",
    503: "`unavailable`: storage or limiter unreachable; nothing was accepted.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses a route can answer."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


class NoStoreRoute(APIRoute):
    """A route whose every answer carries ``Cache-Control: no-store``.

    Keystile answers carry tokens or say something about an account; no cache
    between the client and us may keep them.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def no_store_handler(request: Request) -> Response:
            response = await handler(request)
            response.headers.update(NO_STORE)
            return response

        return no_store_handler
