"""Rendering a page: the Jinja2 environment, the per-request context, and the page headers.

Templates are looked up in the host's folders first (``template_dirs``), then
Keystile's own, so a host replaces one page, or the base layout, by a file of
the same name (or names another template per page in :class:`PageOptions`).
Every page gets ``_`` and ``ngettext`` in the chosen language, the paths of
every page, the CSRF token of the browser, and the layout to extend.

Every page answer carries a Content-Security-Policy without
``'unsafe-inline'`` (the stylesheet and the one small script are files
served by :func:`keystile.web.pages.routes`), ``frame-ancestors 'none'``,
``no-store``, ``nosniff`` and ``Referrer-Policy: no-referrer`` (a verify
page's URL holds the MFA token).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from starlette.responses import Response

from keystile.web.pages.csrf import FIELD, CsrfGuard
from keystile.web.pages.i18n import Languages, Translator
from keystile.web.pages.options import PageOptions

logger = logging.getLogger("keystile.web.pages")

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


def stamp(response: Response) -> Response:
    """``response`` with the page headers (see the module docstring)."""
    response.headers.update(PAGE_HEADERS)
    return response


class Renderer:
    """Renders the pages' templates for one request's language and browser."""

    def __init__(self, options: PageOptions, languages: Languages, csrf: CsrfGuard) -> None:
        self.options = options
        self.languages = languages
        self._csrf = csrf
        self.env = Environment(
            loader=ChoiceLoader(
                [
                    FileSystemLoader([str(path) for path in options.template_dirs]),
                    PackageLoader("keystile.web.pages", "templates"),
                ]
            ),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._paths = options.all_paths()

    def translator(self, request: Request) -> Translator:
        """The language of ``request`` (the fixed one, or its ``Accept-Language``)."""
        return self.languages.choose(request.headers.get("accept-language"))

    def render(
        self,
        request: Request,
        page: str,
        *,
        status_code: int = 200,
        template: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """Page ``page`` (its configured template, or ``template``) as an HTML answer."""
        translator = self.translator(request)
        seed, new_seed = self._csrf.seed(request)
        html = self.env.get_template(template or self.options.template(page)).render(
            _=translator.gettext,
            ngettext=translator.ngettext,
            lang=translator.language,
            layout=self.options.base_template,
            page=page,
            paths=self._paths,
            csrf_field=FIELD,
            csrf_token=self._csrf.token_for(seed),
            stylesheet=f"{self._paths['assets']}/keystile.css",
            script=f"{self._paths['assets']}/keystile.js",
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        error = context.get("error")
        seconds = getattr(error, "values", {}).get("seconds") if status_code == 429 else None
        if isinstance(seconds, int):  # as the API's 429: when to try again
            response.headers["Retry-After"] = str(seconds)
        if new_seed:
            self._csrf.remember(response, seed)
        stamp(response)
        return response
