"""``GET {prefix}/me`` and ``POST {prefix}/sign_out``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from keystile.flows.sessions import Session, Sessions
from keystile.web.guards import session_dependency
from keystile.web.responses import NoStoreRoute, error_responses
from keystile.web.schemas import MeBody


def session_router(sessions: Sessions) -> APIRouter:
    """Routes about the caller's own session."""
    router = APIRouter(route_class=NoStoreRoute, tags=["session"])
    current_session = session_dependency(sessions)

    @router.get(
        "/me",
        response_model=MeBody,
        responses=error_responses(401, 503),
        summary="Who the bearer token belongs to",
    )
    async def me(session: Session = Depends(current_session)) -> MeBody:
        return MeBody.of(session)

    @router.post(
        "/sign_out",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses=error_responses(401, 503),
        summary="Revoke the bearer token",
    )
    async def sign_out(session: Session = Depends(current_session)) -> Response:
        await sessions.end(session)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
