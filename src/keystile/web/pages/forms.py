"""Reading the pages' form posts: small ``application/x-www-form-urlencoded`` bodies only.

The pages post nothing else (no files), so the body is read here with a
bound, without a multipart parser: a body over :data:`MAX_FORM_BYTES`, of
another type, or with too many fields is refused before it is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

#: The largest form body read (a page's forms are far smaller).
MAX_FORM_BYTES: Final = 16 * 1024
#: The most fields a form may have.
MAX_FIELDS: Final = 200


class FormRefusedError(Exception):
    """The post is not a form the pages read: answered 400, nothing done."""


@dataclass(frozen=True, slots=True)
class Form:
    """A parsed form: every value of every field, in order."""

    fields: Mapping[str, tuple[str, ...]]

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name``, or ``default``."""
        values = self.fields.get(name, ())
        return values[0] if values else default

    def getlist(self, name: str) -> tuple[str, ...]:
        """Every value of ``name``."""
        return self.fields.get(name, ())


async def read_form(request: Request) -> Form:
    """The request's form (cached on the request, so it is read once).

    Raises:
        FormRefusedError: another content type, a body over :data:`MAX_FORM_BYTES`,
            more than :data:`MAX_FIELDS` fields, or bytes that are not UTF-8.
    """
    cached = request.scope.get("keystile.form")
    if isinstance(cached, Form):
        return cached
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormRefusedError()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise FormRefusedError()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefusedError() from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    form = Form({name: tuple(values) for name, values in fields.items()})
    request.scope["keystile.form"] = form
    return form
