"""Hosted pages: sign-in, TOTP setup and verify, recovery codes and sign-out as server-rendered
HTML, mounted by :meth:`keystile.web.app.Keystile.install` (see ``README.md``, "Hosted pages")."""

from keystile.web.pages.guards import PageRedirect, safe_next
from keystile.web.pages.options import PageOptions
from keystile.web.pages.routes import Pages

__all__ = ["PageOptions", "PageRedirect", "Pages", "safe_next"]
