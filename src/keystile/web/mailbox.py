"""The development mailbox pages: ``GET /dev/mailbox`` (HTML) and ``GET /dev/mailbox.json``.

They show every code sent through the :class:`~keystile.senders.ConsoleSender`
in clear, so the app mounts this router in development mode only. Answers
carry ``Cache-Control: no-store`` and a Content-Security-Policy that allows
no script: the page shows text from input (recipients, subjects), escaped by
the template, and the policy is the second line of defence.

They answer only a caller on this machine: the peer address must be loopback
and the request must carry no forwarding header (a reverse proxy on the same
host would otherwise relay strangers from loopback). Anyone else gets the
same 404 as a path that does not exist.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from keystile.senders.mailbox import DevMailbox
from keystile.web.responses import NoStoreRoute

PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


#: Headers a proxy adds when it relays a request; their presence means "not from here".
FORWARDING_HEADERS: Final = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


def is_local_request(request: Request) -> bool:
    """Whether ``request`` comes straight from this machine (loopback peer, not forwarded)."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    peer = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def _local_only(request: Request) -> None:
    if not is_local_request(request):
        raise HTTPException(status_code=404, detail="Not Found")


def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("keystile.web", "templates"),
        autoescape=True,
    )


def mailbox_router(mailbox: DevMailbox) -> APIRouter:
    """Routes that show ``mailbox``, newest message first; kept out of the OpenAPI schema."""
    router = APIRouter(
        prefix="/dev",
        route_class=NoStoreRoute,
        include_in_schema=False,
        dependencies=[Depends(_local_only)],
    )
    page = _templates().get_template("mailbox.html")

    @router.get("/mailbox", response_class=HTMLResponse)
    async def mailbox_page() -> HTMLResponse:
        html = page.render(entries=mailbox.entries(), maxlen=mailbox.maxlen)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @router.get("/mailbox.json")
    async def mailbox_json() -> list[dict[str, str]]:
        return [
            {
                "to": entry.message.to,
                "subject": entry.message.subject,
                "text": entry.message.text,
                "received_at": entry.received_at.isoformat(),
            }
            for entry in mailbox.entries()
        ]

    return router
