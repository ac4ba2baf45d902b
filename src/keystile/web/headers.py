"""The headers every Keystile answer carries, and the request id of an answer that was logged.

Keystile answers carry tokens or say something about an account, so no cache
may keep them (``no-store``), no browser may guess another content type
(``nosniff``), and no page may leak the URL it came from (``no-referrer``).
These are set on Keystile's own answers only; a host app's routes keep theirs.

An answer whose failure Keystile logged (a 500, a database without tables)
also names an ``X-Request-Id``, generated here (a client's own is never
trusted: it could forge or collide with another request's), which is the one
thing the log line names besides the error's type, so the two can be matched.
Other answers carry none: two answers that must not tell accounts apart
(a wrong password, an unknown address) stay identical header for header.
"""

from __future__ import annotations

import secrets
from typing import Final

#: No cache between the client and Keystile may keep an answer.
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

#: Issue 7 item 13: what a JSON API owes a browser that might render it.
SECURITY_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

#: Every header a Keystile answer carries.
KEYSTILE_HEADERS: Final = {**NO_STORE, **SECURITY_HEADERS}

REQUEST_ID_HEADER: Final = "X-Request-Id"


def new_request_id() -> str:
    """A fresh request id: 16 random hex digits, enough to find one line in a log."""
    return secrets.token_hex(8)
