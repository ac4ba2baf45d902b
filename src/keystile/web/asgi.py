"""ASGI entry point for ``keystile serve`` workers: settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from keystile.settings import load_settings
from keystile.web.app import create_app


def app_from_environment() -> FastAPI:
    """Build the app from ``KEYSTILE_*`` variables (and ``KEYSTILE_CONFIG_FILE``)."""
    return create_app(load_settings())
