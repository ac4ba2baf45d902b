"""An independent authenticator for tests: codes made by ``oathtool`` (OATH Toolkit)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import datetime

import pytest

from keystile.strategies.totp.rfc6238 import Algorithm

needs_oathtool = pytest.mark.skipif(
    shutil.which("oathtool") is None, reason="oathtool not installed (apt-get install oathtool)"
)


def base32(secret: bytes) -> str:
    """``secret`` as authenticator apps take it: unpadded base32."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def oathtool(
    secret: bytes | str,
    at: datetime | int,
    *,
    digits: int = 6,
    algorithm: Algorithm = "SHA1",
    period: int = 30,
) -> str:
    """The TOTP code ``oathtool`` makes for ``secret`` (bytes, or base32 text) at ``at``."""
    epoch = at if isinstance(at, int) else int(at.timestamp())
    key = secret if isinstance(secret, str) else base32(secret)
    result = subprocess.run(
        [
            "oathtool",
            f"--totp={algorithm.lower()}",
            "--base32",
            f"--digits={digits}",
            f"--time-step-size={period}s",
            f"--now=@{epoch}",
            key,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()
