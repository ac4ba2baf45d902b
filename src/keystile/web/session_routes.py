"""``GET {prefix}/me`` and ``POST {prefix}/sign_out``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from keystile.flows.sessions import Session, Sessions
from keystile.web.guards import session_dependency, verify_bearer
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
    async def me(request: Request) -> Response:
        # The hot path of every client: the guard is called directly (FastAPI's
        # dependency resolution costs more than the cached token check), and the
        # body is serialised here, once, where FastAPI would validate the model
        # again against response_model (which stays, for the OpenAPI schema).
        session = await verify_bearer(sessions, request.headers.get("authorization"))
        return Response(MeBody.of(session).model_dump_json(), media_type="application/json")

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
