"""QR codes of Key URIs, read back by an independent decoder (zbarimg)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest

from keystile.strategies.totp.core import new_secret, verify_totp
from keystile.strategies.totp.qr import qr_png, qr_svg
from keystile.strategies.totp.uri import key_uri, parse_key_uri
from tests.strategies.totp.helpers import needs_oathtool, oathtool

needs_zbarimg = pytest.mark.skipif(
    shutil.which("zbarimg") is None, reason="zbarimg not installed (apt-get install zbar-tools)"
)


def zbarimg(png: bytes, folder: Path) -> str:
    """The text zbarimg reads from a PNG (its D-Bus chatter on stderr is ignored)."""
    path = folder / "qr.png"
    path.write_bytes(png)
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.removesuffix("\n")


@needs_zbarimg
@pytest.mark.parametrize(
    ("issuer", "account"),
    [
        ("Keystile", "alice@example.com"),
        ("Acme: Dév & Co", "zoë:x@exämple.com"),
        ("Straße 北京 🔐", "名前 with spaces@例え.jp"),
    ],
)
def test_the_png_decodes_to_exactly_the_uri(issuer: str, account: str, tmp_path: Path) -> None:
    """zbarimg reads back the URI byte for byte, and the names round-trip through it."""
    secret = new_secret()
    uri = key_uri(secret, issuer=issuer, account=account)
    png = qr_png(uri)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = zbarimg(png, tmp_path)
    assert decoded == uri
    parsed = parse_key_uri(decoded)
    assert (parsed.secret, parsed.issuer, parsed.account) == (secret, issuer, account)


@needs_zbarimg
def test_the_smallest_allowed_scale_still_decodes(tmp_path: Path) -> None:
    """Scale 2 with every non-default parameter (a denser URI) is still readable."""
    uri = key_uri(
        new_secret(64),
        issuer="Example Bank",
        account="someone.with.a.long.name@example.com",
        algorithm="SHA512",
        digits=8,
        period=60,
    )
    assert zbarimg(qr_png(uri, scale=2), tmp_path) == uri


@needs_zbarimg
@needs_oathtool
def test_a_secret_read_from_the_qr_gives_oathtool_codes_that_verify(tmp_path: Path) -> None:
    """The app's path: scan the PNG, take the secret, make a code, and it verifies."""
    secret = new_secret()
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    scanned = parse_key_uri(zbarimg(qr_png(key_uri(secret, issuer="K", account="a")), tmp_path))
    assert verify_totp(secret, oathtool(scanned.secret, now), now=now).accepted


def test_the_svg_is_one_titled_svg_element_of_the_right_size() -> None:
    """An inline ``<svg>`` (no XML declaration) with a title, sized modules x scale."""
    uri = key_uri(b"12345678901234567890", issuer="Keystile", account="alice@example.com")
    svg = qr_svg(uri, scale=3)
    assert svg.startswith("<svg ")
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own output)
    assert root.tag == "svg"
    assert root.findtext("title") == "QR code for your authenticator app"
    size = int(root.attrib["width"])
    assert size == int(root.attrib["height"])
    assert size % 3 == 0
    assert (size // 3 - 8 - 21) % 4 == 0  # a QR (not Micro QR) symbol: 21 + 4(v-1) modules


def test_scales_below_two_are_refused() -> None:
    """One pixel per module is too small for cameras; refused for both formats."""
    with pytest.raises(ValueError, match="at least 2"):
        qr_png("otpauth://totp/K:a?secret=AAAA&issuer=K", scale=1)
    with pytest.raises(ValueError, match="at least 2"):
        qr_svg("otpauth://totp/K:a?secret=AAAA&issuer=K", scale=1)
