"""Every page in Chromium: no serious accessibility violation (axe-core), and every page in
German for a browser that asks for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser

from keystile.web.pages.i18n import Languages
from tests.web.pages.browser import TOUR, Server, tour

#: axe-core impacts that fail the check.
BLOCKING = {"serious", "critical"}


def test_every_page_passes_axe_core_without_serious_violations(
    browser: Browser, server: Server, email: str, shots: Path
) -> None:
    """axe-core at each stop of the tour (forms, their error states, both verify modes)."""
    context = browser.new_context()
    page = context.new_page()
    axe = Axe()
    found: dict[str, list[str]] = {}
    visited: list[str] = []

    def check(name: str) -> None:
        visited.append(name)
        assert page.locator("h1").inner_text() == TOUR[name], name
        result = axe.run(page)
        assert result.response["passes"], "axe-core checked nothing"
        violations: list[dict[str, Any]] = result.response["violations"]
        blocking = [v["id"] for v in violations if v.get("impact") in BLOCKING]
        if blocking:
            found[name] = blocking

    tour(page, server, email, shots, check)
    context.close()
    assert visited == list(TOUR)
    assert found == {}


def test_every_page_speaks_german_to_a_german_browser(
    browser: Browser, server: Server, email: str, shots: Path
) -> None:
    """With Accept-Language de-DE every page is ``lang="de"`` and its heading is the German
    catalogue's, never the English text."""
    german = Languages().get("de")
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    headings: dict[str, str] = {}

    def check(name: str) -> None:
        assert page.locator("html").get_attribute("lang") == "de", name
        headings[name] = page.locator("h1").inner_text()

    tour(page, server, email, shots, check)
    context.close()
    expected = {name: german.gettext(english) for name, english in TOUR.items()}
    assert headings == expected
    assert all(headings[name] != TOUR[name] for name in TOUR)
