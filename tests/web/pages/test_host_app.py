"""The pages mounted in a host FastAPI app: its prefix, its layout, its own guarded page."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser

from keystile.testing_server import serving
from tests.web.pages.browser import (
    PASSWORD,
    SERVER_ENV,
    Authenticator,
    Server,
    read_qr,
    shown_codes,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Server]:
    """The host app of tests/web/pages/host_app.py under uvicorn, in its own process
    (started, awaited and stopped by keystile.testing_server.serving, as keystile serve is)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
    environment.update(SERVER_ENV)
    environment["PYTHONPATH"] = str(ROOT)
    with serving(
        lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.web.pages.host_app:create",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=environment,
        ready_path="/openapi-ready",
        log_path=tmp_path / "host.log",
        timeout=30,
    ) as running:
        yield Server(base=running.base_url, cwd=tmp_path, env=dict(SERVER_ENV))


def test_host_app_mounts_the_pages_under_its_prefix_in_its_layout_and_guards_its_page(
    browser: Browser, host: Server, email: str
) -> None:
    """/vault without a session → the host's /account/sign-in (the host's header around it, its
    text override); signed in without recovery codes → /account/auth/recovery-codes?next=/vault;
    codes generated and saved → back to /vault."""
    host.create_user(email)
    context = browser.new_context()
    page = context.new_page()
    page.goto(host.url("/vault"))
    assert page.url == host.url("/account/sign-in?next=%2Fvault")
    assert page.locator("header.notes-header").inner_text() == "Notes, the host app"
    assert page.locator("h1").inner_text() == "Log in to Notes"
    assert page.title() == "Log in to Notes · Notes"
    page.fill("#ks-email", email)
    page.fill("#ks-password", PASSWORD)
    page.click("form[action='/account/sign-in'] button[type=submit]")
    assert page.url == host.url("/account/auth/recovery-codes?next=%2Fvault")
    assert page.locator("header.notes-header").count() == 1
    page.click("form[action='/account/auth/recovery-codes'] button[type=submit]")
    assert len(shown_codes(page)) == 10
    page.check("#ks-saved")
    page.click("form[action='/account/auth/recovery-codes/saved'] button[type=submit]")
    assert page.url == host.url("/vault")
    assert page.locator("h1").inner_text() == f"The vault of {email}"
    assert httpx.get(host.url("/sign-in")).status_code == 404  # only under the host's prefix
    context.close()


def test_a_host_page_needing_a_recent_second_factor_sends_the_browser_through_step_up_and_back(
    browser: Browser, host: Server, email: str, shots: Path
) -> None:
    """/settings (require_recent_auth with a second factor) for a password-only session with an
    authenticator → /account/auth/totp-verify?next=/settings → the code → back on /settings."""
    host.create_user(email)
    context = browser.new_context()
    page = context.new_page()
    page.goto(host.url("/account/sign-in"))
    page.fill("#ks-email", email)
    page.fill("#ks-password", PASSWORD)
    page.click("form[action='/account/sign-in'] button[type=submit]")
    page.goto(host.url("/account/auth/totp-setup"))
    uri = read_qr(page, shots)
    authenticator = Authenticator(parse_qs(urlsplit(uri).query)["secret"][0])
    page.fill("#ks-code", authenticator.code())
    page.click("form[action='/account/auth/totp-setup'] button[type=submit]")
    assert len(shown_codes(page)) == 10

    page.goto(host.url("/settings"))
    assert page.url == host.url("/account/auth/totp-verify?next=%2Fsettings")
    page.fill("#ks-code", authenticator.code())
    page.keyboard.press("Enter")  # keyboard only: the code field has the focus
    page.wait_for_url(host.url("/settings"))
    assert page.locator("h1").inner_text() == f"Settings of {email}"
    context.close()
