"""Helpers for the hosted pages in a real browser: Debian's Chromium through Playwright, a real
``keystile serve``, ``oathtool`` as the authenticator and ``zbarimg`` reading the QR code.

Used by the browser tests and by ``scripts/screenshots``. Pages are driven by element ids and
names (``#ks-code``), never by their texts, so the same steps work in every language.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Browser, Page, Playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
#: A TOTP period (the default of the deployment the tests start).
PERIOD = 30

#: The environment of the ``keystile serve`` the browser tests start.
SERVER_ENV = {
    "KEYSTILE_MODE": "development",
    "KEYSTILE_PASSWORD_HASH_PRESET": "test",
    "KEYSTILE_RATE_LIMIT_BACKEND": "memory",
    "KEYSTILE_SERVICE_NAME": "Keystile demo",
    # Every browser test signs in from 127.0.0.1 on this one server: the per-address
    # spraying limit (50 password sign-ins per 10 minutes) would refuse the later tests.
    "KEYSTILE_PASSWORD_SIGN_IN_ADDRESS_RATE": "100000/10m",
}


def private_environment(base: Path) -> dict[str, str]:
    """XDG folders and TMPDIR inside ``base``, so the browser writes nothing to ``$HOME``."""
    paths = {name: base / name.lower() for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TMPDIR")}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    return {name: str(path) for name, path in paths.items()}


def launch(playwright: Playwright, base: Path) -> Browser:
    """Debian's Chromium, headless, with its XDG folders and TMPDIR under ``base``.

    Raises:
        FileNotFoundError: Chromium is not installed (``scripts/bootstrap --dev`` installs it).
    """
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run scripts/bootstrap --dev")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, env={**os.environ, **private_environment(base)}
    )


@dataclass(frozen=True)
class Server:
    """A running ``keystile serve``: its base URL and the folder it runs in."""

    base: str
    cwd: Path
    env: dict[str, str]

    def url(self, path: str) -> str:
        """``path`` on this server."""
        return self.base + path

    def create_user(self, email: str, password: str = PASSWORD) -> None:
        """Create a user through the CLI (same folder: same database and keys)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTILE_")}
        created = subprocess.run(
            [sys.executable, "-m", "keystile", "user", "create", email, "--password-stdin"],
            cwd=self.cwd,
            input=password + "\n",
            capture_output=True,
            text=True,
            check=False,
            env={**environment, **self.env},
        )
        assert created.returncode == 0, created.stderr

    def mailed_code(self, email: str, *, seconds: float = 10) -> str:
        """The newest sign-in code the dev mailbox holds for ``email``."""
        deadline = time.monotonic() + seconds
        while True:
            mail = [m for m in httpx.get(self.url("/dev/mailbox.json")).json() if m["to"] == email]
            if mail:
                lines = [line.strip() for line in str(mail[0]["text"]).splitlines()]
                return next(line for line in lines if re.fullmatch(r"[A-Z0-9]{6}", line))
            assert time.monotonic() < deadline, f"no code reached the dev mailbox for {email}"
            time.sleep(0.05)


@contextmanager
def keystile_serve(cwd: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``keystile serve`` in ``cwd`` (tests.servers.keystile_server), as a :class:`Server`."""
    from tests.servers import keystile_server

    environment = {**SERVER_ENV, **(env or {})}
    with keystile_server(cwd, environment) as base:
        yield Server(base=base, cwd=cwd, env=environment)


def totp_code(secret: str, step: int) -> str:
    """The code of TOTP time step ``step`` for ``secret``, from ``oathtool``."""
    result = subprocess.run(
        ["oathtool", "--totp", "-b", "-N", f"@{step * PERIOD}", secret],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def current_step() -> int:
    """The TOTP time step now."""
    return int(time.time()) // PERIOD


class Authenticator:
    """The user's authenticator app: ``oathtool`` with the secret read from the QR code,
    handing out each time step once (the server refuses a replayed step)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._last = 0

    def code(self) -> str:
        """A code of a step never used before: now, or the next one (the server's window)."""
        step = max(current_step(), self._last + 1)
        if step > current_step() + 1:  # two steps ahead is outside the window: wait
            time.sleep((step - 1) * PERIOD - time.time() + 0.2)
        self._last = step
        return totp_code(self.secret, step)


def read_qr(page: Page, folder: Path) -> str:
    """The text of the QR code on ``page``, read by ``zbarimg`` from a screenshot."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"qr-{time.monotonic_ns()}.png"
    page.locator(".ks-qr svg").screenshot(path=str(image))
    assert shutil.which("zbarimg"), "zbarimg is missing: run scripts/bootstrap --dev"
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(image)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def sign_in(page: Page, server: Server, email: str, password: str = PASSWORD) -> None:
    """Sign in with a password on the sign-in page."""
    page.goto(server.url("/sign-in"))
    page.fill("#ks-email", email)
    page.fill("#ks-password", password)
    page.click("form[action='/sign-in'] button[type=submit]")


def enrol(page: Page, server: Server, folder: Path) -> tuple[Authenticator, list[str]]:
    """Set up TOTP on the setup page (signed in): the QR code read by zbar, the code typed
    from oathtool; the authenticator and the first recovery codes shown."""
    page.goto(server.url("/auth/totp-setup"))
    uri = read_qr(page, folder)
    assert uri.startswith("otpauth://totp/"), uri
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    shown = page.locator(".ks-secret code").inner_text().replace(" ", "")
    assert shown == secret
    authenticator = Authenticator(secret)
    page.fill("#ks-code", authenticator.code())
    page.click("form[action='/auth/totp-setup'] button[type=submit]")
    codes = shown_codes(page)
    assert len(codes) == 10, codes
    return authenticator, codes


def shown_codes(page: Page) -> list[str]:
    """The recovery codes on the display page."""
    return [text.strip() for text in page.locator("#ks-codes code").all_inner_texts()]


def token_of(page: Page) -> str:
    """The ``{token}`` in the path of the verify page ``page`` shows."""
    match = re.search(r"/auth/(?:totp|recovery-code)-verify/([^/?]+)", page.url)
    assert match, page.url
    return match.group(1)


def moved(navigate: Callable[[], object]) -> None:
    """Run ``navigate`` (reload, back): Chromium may refuse to re-post a form without asking
    (``ERR_CACHE_MISS``), which is as good as not showing the old answer."""
    try:
        navigate()
    except PlaywrightError as error:
        # Chromium may also drop the page it is leaving before Playwright reads its history
        # ("Not attached to an active page"); what it then shows is checked by the caller.
        if "ERR_CACHE_MISS" not in error.message and "Not attached" not in error.message:
            raise


def settled_content(page: Page) -> str:
    """The page's HTML once a navigation in progress (a reload, going back) has finished."""
    for _attempt in range(50):
        try:
            page.wait_for_load_state()
            return page.content()
        except PlaywrightError:
            time.sleep(0.1)
    raise AssertionError(f"{page.url} never settled")


#: The pages the tour stops at, in order, with their English heading.
TOUR: dict[str, str] = {
    "sign-in": "Sign in",
    "sign-in-code-request": "Sign in with a code",
    "sign-in-code-enter": "Sign in with a code",
    "wrong-browser": "Something is not right",
    "account": "Your account",
    "totp-setup": "Set up your authenticator app",
    "totp-setup-wrong-code": "Set up your authenticator app",
    "recovery-codes-show": "Save your recovery codes",
    "recovery-codes": "Recovery codes",
    "sign-out": "Sign out",
    "totp-verify": "Enter the code from your authenticator app",
    "recovery-code-verify": "Enter a recovery code",
    "account-after-recovery-code": "Your account",
    "totp-verify-step-up": "Enter the code from your authenticator app",
    "recovery-code-verify-step-up": "Enter a recovery code",
}


def tour(page: Page, server: Server, email: str, folder: Path, stop: Callable[[str], None]) -> None:
    """Visit every page (and its error and second-step states) as a new user, calling
    ``stop(name)`` at each stop of :data:`TOUR`, in order. Language-independent."""
    server.create_user(email)
    page.goto(server.url("/sign-in"))
    stop("sign-in")
    page.goto(server.url("/sign-in/code"))
    stop("sign-in-code-request")
    page.fill("#ks-email", email)
    page.click("main form button[type=submit]")
    stop("sign-in-code-enter")
    page.goto(server.url("/auth/totp-verify/not-this-browsers-token"))
    stop("wrong-browser")
    sign_in(page, server, email)
    stop("account")
    page.goto(server.url("/auth/totp-setup"))
    secret = parse_qs(urlsplit(read_qr(page, folder)).query)["secret"][0]
    stop("totp-setup")
    page.fill("#ks-code", "000000" if totp_code(secret, current_step()) != "000000" else "111111")
    page.click("main form button[type=submit]")
    stop("totp-setup-wrong-code")
    page.fill("#ks-code", Authenticator(secret).code())
    page.click("main form button[type=submit]")
    codes = shown_codes(page)
    stop("recovery-codes-show")
    page.check("#ks-saved")
    page.click("form.ks-ack button[type=submit]")
    page.goto(server.url("/auth/recovery-codes"))
    stop("recovery-codes")
    page.goto(server.url("/sign-out"))
    stop("sign-out")
    page.click("main form button[type=submit]")
    sign_in(page, server, email)
    stop("totp-verify")
    page.click(".ks-alt-link a")
    stop("recovery-code-verify")
    page.fill("#ks-code", codes[0])
    page.click("main form button[type=submit]")
    stop("account-after-recovery-code")
    page.goto(server.url("/auth/totp-verify?next=/auth/account"))
    stop("totp-verify-step-up")
    page.goto(server.url("/auth/recovery-code-verify?next=/auth/account"))
    stop("recovery-code-verify-step-up")
