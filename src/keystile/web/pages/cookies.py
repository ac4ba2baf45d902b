"""The cookies of the hosted pages: the browser session, and the binding of a sign-in in progress.

The session cookie holds the same access token the JSON API hands out, so a
page session is revoked, expires and carries ``amr`` and ``auth_time``
exactly as a bearer token does. It is ``HttpOnly`` (no script reads it),
``SameSite=Lax`` (not sent on cross-site form posts), ``Secure`` in
production, and replaced by a new token at every sign-in and step-up.

The ``{token}`` in a verify page's path is the short-lived MFA token. The
browser that started the sign-in also holds the binding cookie: an HMAC,
under the current hashing key, of the MFA token and the second-factor
methods the sign-in offered. A verify page compares it with
:func:`hmac.compare_digest`; the URL opened in any other browser is refused.
With ``Secure`` on, every name has the ``__Host-`` prefix, so a sibling
subdomain cannot plant one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from keystile.crypto.hashing import keyed_hash
from keystile.crypto.keyring import KeyRing

SESSION: Final = "keystile-session"
MFA_BINDING: Final = "keystile-mfa"
CSRF: Final = "keystile-csrf"

#: Longest cookie value read (an access token is well under this).
MAX_VALUE: Final = 4096

#: Method names allowed in the binding cookie.
KNOWN_METHODS: Final = frozenset({"totp", "recovery_code"})


@dataclass(frozen=True, slots=True)
class CookieJar:
    """Reads and writes the pages' cookies.

    Args:
        hashing_keys: the deployment's hashing keys (the current one binds).
        secure: ``Secure`` and ``__Host-`` names (production).
        session_seconds: the session cookie's lifetime (the token's).
        mfa_seconds: the binding cookie's lifetime (the MFA token's).
    """

    hashing_keys: KeyRing
    secure: bool
    session_seconds: int
    mfa_seconds: int

    def name(self, base: str) -> str:
        """The cookie's name: ``__Host-`` in front when it is ``Secure``."""
        return f"__Host-{base}" if self.secure else base

    def read(self, request: Request, base: str) -> str | None:
        """The value of cookie ``base``, or ``None`` (absent, empty or over-long)."""
        value = request.cookies.get(self.name(base))
        if not value or len(value) > MAX_VALUE:
            return None
        return value

    def _set(self, response: Response, base: str, value: str, max_age: int) -> None:
        response.set_cookie(
            self.name(base),
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response, base: str) -> None:
        """Tell the browser to forget cookie ``base``."""
        response.delete_cookie(
            self.name(base), path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    # The session.

    def session_token(self, request: Request) -> str | None:
        """The access token the browser holds, or ``None``."""
        return self.read(request, SESSION)

    def set_session(self, response: Response, token: str) -> None:
        """Give the browser ``token`` (a new one at every sign-in and step-up)."""
        self._set(response, SESSION, token, self.session_seconds)

    # The binding of a sign-in in progress to this browser.

    def _binding(self, mfa_token: str, methods: str) -> str:
        return keyed_hash(
            self.hashing_keys.current, "keystile-page-mfa-binding", mfa_token, methods
        )

    def bind(self, response: Response, mfa_token: str, methods: tuple[str, ...]) -> None:
        """Bind ``mfa_token`` (and the ``methods`` it may be finished with) to this browser."""
        listed = ",".join(method for method in methods if method in KNOWN_METHODS)
        self._set(
            response,
            MFA_BINDING,
            f"{listed}.{self._binding(mfa_token, listed)}",
            self.mfa_seconds,
        )

    def bound_methods(self, request: Request, mfa_token: str) -> tuple[str, ...] | None:
        """The methods of ``mfa_token`` if this browser started its sign-in; else ``None``."""
        value = self.read(request, MFA_BINDING)
        if value is None or len(mfa_token) > MAX_VALUE:
            return None
        listed, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._binding(mfa_token, listed).encode()):
            return None
        return tuple(method for method in listed.split(",") if method in KNOWN_METHODS)
