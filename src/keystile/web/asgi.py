"""ASGI entry point for ``keystile serve`` workers: settings from the environment."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from keystile.settings import load_settings
from keystile.web.app import create_app


def app_from_environment() -> FastAPI:
    """Build the app from ``KEYSTILE_*`` variables (and ``KEYSTILE_CONFIG_FILE``)."""
    app = create_app(load_settings())
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Take what start-up allocated out of the garbage collector's sight (``gc.freeze``).

    The app, its routes and models and the imported libraries are several
    hundred thousand objects that live as long as the process, and every full
    collection walked them all, in the middle of some request. Measured on
    ``GET /auth/me`` at 16 connections: p99 80-90 ms against a p50 of 11 ms;
    frozen, p99 29 ms. Called by the process's own entry points only (it is
    process-wide), after the app is built.
    """
    gc.collect()
    gc.freeze()
