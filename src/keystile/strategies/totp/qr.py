"""QR codes of a Key URI: SVG text for pages, PNG bytes on request (through segno).

``segno.make_qr`` rather than ``segno.make``: for short text ``make`` picks a
Micro QR symbol, which authenticator apps (and zbar) cannot read. Error
correction M survives a smudged screen or a camera at an angle without
making the symbol much denser. The quiet zone is the standard four modules.
"""

from __future__ import annotations

import io

import segno

MIN_SCALE = 2
"""Pixels per module below which phone cameras (and zbar) start to miss modules."""

BORDER = 4


def _symbol(uri: str, scale: int) -> segno.QRCode:
    if scale < MIN_SCALE:
        raise ValueError(f"the scale must be at least {MIN_SCALE} pixels per module")
    return segno.make_qr(uri, error="m", boost_error=False)


def qr_svg(uri: str, *, scale: int = 4, title: str = "QR code for your authenticator app") -> str:
    """An inline ``<svg>`` element showing ``uri`` (no XML declaration), with a ``<title>``.

    Raises:
        ValueError: ``scale`` below :data:`MIN_SCALE`.
    """
    svg: str = _symbol(uri, scale).svg_inline(scale=scale, border=BORDER, title=title)
    return svg


def qr_png(uri: str, *, scale: int = 4) -> bytes:
    """A PNG image of ``uri``, black on white.

    Raises:
        ValueError: ``scale`` below :data:`MIN_SCALE`.
    """
    buffer = io.BytesIO()
    _symbol(uri, scale).save(buffer, kind="png", scale=scale, border=BORDER)
    return buffer.getvalue()
