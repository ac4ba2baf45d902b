"""Fixtures of the browser tests: one Chromium per module and one ``keystile serve``.

Without Chromium (or Playwright) the tests fail in CI (``CI=true``) and are skipped elsewhere,
as tests/servers.py does for PostgreSQL and Redis.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.servers import unavailable
from tests.web.pages.browser import Server, keystile_serve, launch, private_environment

_emails = itertools.count()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Debian's Chromium, headless, writing only under the test's tmp folder.

    Per module, not per session: Playwright's sync API keeps an asyncio loop running in the
    main thread while it is open, and tests elsewhere that run their own loop there (anyio,
    asyncio.run) must not find one.
    """
    base = tmp_path_factory.mktemp("chromium")
    with pytest.MonkeyPatch.context() as environment:
        # Playwright's driver too writes nothing to $HOME or the system's /tmp.
        for name, value in private_environment(base).items():
            environment.setenv(name, value)
        with sync_playwright() as playwright:
            try:
                chromium = launch(playwright, base)
            except FileNotFoundError as error:
                unavailable(str(error))
                raise
            yield chromium
            chromium.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``keystile serve`` (development mode: the dev mailbox is on)."""
    with keystile_serve(tmp_path_factory.mktemp("serve")) as running:
        yield running


@pytest.fixture
def email() -> str:
    """A fresh address for each test, so tests share the server but no account."""
    return f"user{next(_emails)}@example.com"


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def context(request: pytest.FixtureRequest, browser: Browser) -> Iterator[BrowserContext]:
    """A browser context with JavaScript on, then off."""
    created = browser.new_context(java_script_enabled=request.param, accept_downloads=True)
    yield created
    created.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test keeps its screenshots (the QR code)."""
    return tmp_path / "shots"


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The pages' in-process tests run on SQLite only: what they check is above the store."""
    path = tmp_path / "keystile.db"
    shutil.copyfile(sqlite_template, path)
    path.chmod(0o600)
    return f"sqlite:///{path}"
