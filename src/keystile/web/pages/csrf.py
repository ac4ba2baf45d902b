"""Cross-site request forgery defence for the pages' forms: a signed double-submit token.

The browser holds a random value in an ``HttpOnly``, ``SameSite=Lax`` cookie
(``__Host-`` prefixed when ``Secure``, so a sibling subdomain cannot set it);
every form carries the HMAC of that value under the current hashing key.
A post is accepted only when both are present and the form's token is the
HMAC of the cookie's value (:func:`hmac.compare_digest`). Another site can
neither read the cookie nor compute the HMAC, so it cannot build a form
that passes. The check runs before a post is looked at for anything else.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from keystile.crypto.hashing import keyed_hash
from keystile.web.pages.cookies import CSRF, CookieJar
from keystile.web.pages.forms import Form, read_form

#: The name of the form field holding the token.
FIELD: Final = "csrf_token"

#: Bytes of randomness in the cookie's value.
SEED_BYTES: Final = 32


class CsrfRefusedError(Exception):
    """A form arrived without a valid CSRF token: answered 403, nothing done."""


class CsrfGuard:
    """Issues and checks the forms' tokens."""

    def __init__(self, cookies: CookieJar) -> None:
        self._cookies = cookies

    def _token(self, seed: str) -> str:
        return keyed_hash(self._cookies.hashing_keys.current, "keystile-page-csrf", seed)

    def seed(self, request: Request) -> tuple[str, bool]:
        """The browser's seed, or a new one; and whether it is new (then set it)."""
        seed = self._cookies.read(request, CSRF)
        if seed is not None:
            return seed, False
        return secrets.token_urlsafe(SEED_BYTES), True

    def token_for(self, seed: str) -> str:
        """The form token that goes with ``seed``."""
        return self._token(seed)

    def remember(self, response: Response, seed: str) -> None:
        """Give the browser ``seed`` (a browser-session cookie)."""
        response.set_cookie(
            self._cookies.name(CSRF),
            seed,
            path="/",
            secure=self._cookies.secure,
            httponly=True,
            samesite="lax",
        )

    async def check(self, request: Request) -> Form:
        """The posted form, once its token matches the browser's seed.

        Raises:
            FormRefusedError: the body is not a small URL-encoded form (see :func:`read_form`).
            CsrfRefusedError: no seed cookie, no token, or a token that does not match.
        """
        form = await read_form(request)
        seed = self._cookies.read(request, CSRF)
        token = form.get(FIELD)
        if seed is None or not token:
            raise CsrfRefusedError()
        if not hmac.compare_digest(token.encode(), self._token(seed).encode()):
            raise CsrfRefusedError()
        return form
