"""The app every benchmark serves: the real Keystile service plus bare baseline routes.

Started by the harness as ``uvicorn --app-dir benchmarks app:create --factory``.
Settings come from the ``KEYSTILE_*`` variables the harness sets (a temporary
SQLite file, a temporary key file, development mode).

The ``/bench/*`` routes are registered on the same FastAPI app as Keystile's
routes, so a ratio "Keystile route ÷ bare route" cancels out the server, the
framework, the process and the machine, and leaves the cost of Keystile's work.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import keystile
from keystile.web.asgi import freeze_startup_heap


class EchoStats:
    """What ``POST /bench/echo`` received, in this worker process."""

    def __init__(self) -> None:
        self.requests = 0
        self.bodies: set[bytes] = set()


def add_bench_routes(app: FastAPI) -> None:
    """``GET /bench/bare``, ``POST /bench/echo`` and ``GET /bench/echo/stats`` on ``app``."""
    stats = EchoStats()

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        """The baseline: the smallest JSON answer the stack can give."""
        return {"status": "ok"}

    @app.post("/bench/echo", include_in_schema=False)
    async def echo(request: Request) -> JSONResponse:
        """A bare POST route: parses the JSON body, counts it, answers it back."""
        body = await request.body()
        try:
            value: Any = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "invalid_json"}, status_code=400)
        stats.requests += 1
        stats.bodies.add(body)
        return JSONResponse({"echo": value})

    @app.get("/bench/echo/stats", include_in_schema=False)
    async def echo_stats() -> dict[str, int]:
        """How many echo requests, and how many distinct bodies, this worker received."""
        return {"requests": stats.requests, "distinct": len(stats.bodies)}


def create() -> FastAPI:
    """The Keystile service from the environment, with the ``/bench/*`` routes added."""
    app = keystile.create_app(keystile.load_settings())
    add_bench_routes(app)
    freeze_startup_heap()  # as keystile serve does
    return app
