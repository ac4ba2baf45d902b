"""The hosted pages in Chromium over a real ``keystile serve``, with JavaScript on and off."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, Cookie, Page

from tests.web.pages.browser import (
    Server,
    enrol,
    moved,
    settled_content,
    shown_codes,
    sign_in,
    token_of,
)


def test_password_totp_setup_recovery_codes_sign_out_and_recovery_sign_in(
    context: BrowserContext, server: Server, email: str, shots: Path
) -> None:
    """Password sign-in → TOTP setup (QR read by zbar, code from oathtool) → the first recovery
    codes → the download holds exactly those → "I've saved them" → sign out → sign in → TOTP
    verify → "Use a recovery code instead" with the same token → signed in, 9 codes left; then
    step-up on both verify pages."""
    server.create_user(email)
    page = context.new_page()
    sign_in(page, server, email)
    assert page.url == server.url("/auth/account")

    authenticator, codes = enrol(page, server, shots)
    assert page.locator("h1").inner_text() == "Save your recovery codes"
    assert "These codes are shown only once." in page.content()
    copy = page.locator("[data-ks-copy]")
    if context_has_javascript(page):  # "Copy all" puts exactly the codes on the clipboard
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
        copy.click()
        assert page.evaluate("navigator.clipboard.readText()") == "".join(f"{c}\n" for c in codes)
    else:  # without JavaScript the buttons that need it stay hidden
        assert copy.is_hidden()
        assert page.locator("[data-ks-print]").is_hidden()
    with page.expect_download() as download:
        page.click("form[action='/auth/recovery-codes/download'] button[type=submit]")
    saved = Path(download.value.path()).read_text()
    assert saved.splitlines() == codes

    page.check("#ks-saved")
    page.click("form[action='/auth/recovery-codes/saved'] button[type=submit]")
    assert page.url == server.url("/auth/account")
    # The answer that showed the codes is not kept (no-store): Chromium will not re-show it.
    moved(page.go_back)
    assert not any(code in settled_content(page) for code in codes)

    page.goto(server.url("/auth/account"))
    page.click("form[action='/sign-out'] button[type=submit]")
    assert page.url == server.url("/sign-in?signed_out=1")
    page.goto(server.url("/auth/account"))
    assert page.url.startswith(server.url("/sign-in?next="))

    sign_in(page, server, email)
    assert page.url.startswith(server.url("/auth/totp-verify/"))
    token = token_of(page)
    page.click("text=Use a recovery code instead")
    assert page.url == server.url(f"/auth/recovery-code-verify/{token}")
    assert page.locator(".ks-alt-link a").get_attribute("href") == (f"/auth/totp-verify/{token}")
    page.fill("#ks-code", codes[0])
    page.click("main form button[type=submit]")
    assert page.url == server.url("/auth/account")
    text = page.locator("main").inner_text()
    assert "You signed in with a recovery code." in text
    assert "9 recovery codes remain." in text
    assert "Set up a new authenticator" in text

    before = session_cookie(context)
    page.goto(server.url("/auth/totp-verify?next=/auth/recovery-codes"))
    assert page.locator(".ks-alt-link a").get_attribute("href") == (
        "/auth/recovery-code-verify?next=%2Fauth%2Frecovery-codes"
    )
    page.fill("#ks-code", authenticator.code())
    page.click("main form button[type=submit]")
    assert page.url == server.url("/auth/recovery-codes")
    assert session_cookie(context)["value"] != before["value"]  # rotated at step-up
    assert (
        httpx.get(
            server.url("/auth/me"), headers={"authorization": f"Bearer {before['value']}"}
        ).status_code
        == 401
    )  # and the old one revoked, as a bearer token would be

    page.goto(server.url("/auth/recovery-code-verify?next=/auth/account"))
    page.fill("#ks-code", codes[1])
    page.click("main form button[type=submit]")
    assert page.url == server.url("/auth/account")
    assert "8 recovery codes remain." in page.locator("main").inner_text()


def session_cookie(context: BrowserContext) -> Cookie:
    """The browser's session cookie, checked for ``HttpOnly`` and ``SameSite=Lax``."""
    (cookie,) = [c for c in context.cookies() if c.get("name") == "keystile-session"]
    assert cookie.get("httpOnly") is True
    assert cookie.get("sameSite") == "Lax"
    return cookie


def context_has_javascript(page: Page) -> bool:
    """Whether scripts run on ``page`` (the conftest's contexts come with and without)."""
    return page.locator("[data-ks-copy]").is_visible()


def test_totp_second_step_signs_in(
    context: BrowserContext, server: Server, email: str, shots: Path
) -> None:
    """A user with an authenticator signs in with password and a TOTP code, landing on ``next``."""
    server.create_user(email)
    page = context.new_page()
    sign_in(page, server, email)
    authenticator, _codes = enrol(page, server, shots)
    page.goto(server.url("/auth/account"))
    page.click("form[action='/sign-out'] button[type=submit]")

    page.goto(server.url("/auth/recovery-codes"))  # needs a session: sign in and come back
    assert page.url == server.url("/sign-in?next=%2Fauth%2Frecovery-codes")
    page.fill("#ks-email", email)
    page.fill("#ks-password", "wrong password")
    page.click("form[action='/sign-in'] button[type=submit]")
    assert page.locator("#ks-password-error").inner_text() == (
        "The email address or the password is wrong."
    )
    assert page.locator("#ks-password").get_attribute("aria-describedby") == "ks-password-error"
    page.fill("#ks-password", "correct horse battery staple")
    page.click("form[action='/sign-in'] button[type=submit]")
    assert page.url.startswith(server.url("/auth/totp-verify/"))
    page.fill("#ks-code", "000000")
    page.click("main form button[type=submit]")
    assert page.locator("#ks-code-error").inner_text() == (
        "That code is wrong or has expired. Check it and try again."
    )
    page.fill("#ks-code", authenticator.code())
    page.click("main form button[type=submit]")
    assert page.url == server.url("/auth/recovery-codes")


def test_email_code_sign_in_through_the_dev_mailbox(
    context: BrowserContext, server: Server, email: str
) -> None:
    """ "Email me a code": the code from /dev/mailbox.json signs the browser in."""
    server.create_user(email)
    page = context.new_page()
    page.goto(server.url("/sign-in"))
    page.fill("#ks-code-email", email)
    page.click("form[action='/sign-in/code'] button[type=submit]")
    assert page.locator("#ks-code").get_attribute("autocomplete") == "one-time-code"
    page.fill("#ks-code", server.mailed_code(email))
    page.click("form[action='/sign-in/code'] button[type=submit]")
    assert page.url == server.url("/auth/account")
    assert f"You are signed in as {email}." in page.locator("main").inner_text()


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    browser: Browser, server: Server, email: str
) -> None:
    """Sign-out and code generation posted without the token (the browser's own cookies sent)
    answer 403; the session still works and no new batch was made."""
    server.create_user(email)
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server, email)
    page.goto(server.url("/auth/recovery-codes"))
    replaces = page.locator("input[name=replaces]").get_attribute("value")
    assert replaces == ""

    refused = context.request.post(server.url("/sign-out"), form={"x": "1"})
    assert refused.status == 403
    assert "did not come from this site" in refused.text()
    generated = context.request.post(server.url("/auth/recovery-codes"), form={"replaces": ""})
    assert generated.status == 403
    forged = context.request.post(
        server.url("/auth/recovery-codes"), form={"replaces": "", "csrf_token": "0" * 64}
    )
    assert forged.status == 403

    page.goto(server.url("/auth/recovery-codes"))
    assert page.url == server.url("/auth/recovery-codes")  # still signed in
    assert "You have no recovery codes yet." in page.locator("main").inner_text()
    context.close()


def test_a_token_url_opened_in_another_browser_does_not_work(
    browser: Browser, server: Server, email: str, shots: Path
) -> None:
    """The verify page's URL in a second context (no binding cookie) is refused, page and
    post alike; the first browser still finishes the sign-in with it."""
    server.create_user(email)
    first = browser.new_context()
    page = first.new_page()
    sign_in(page, server, email)
    authenticator, codes = enrol(page, server, shots)
    page.goto(server.url("/auth/account"))
    page.click("form[action='/sign-out'] button[type=submit]")
    sign_in(page, server, email)
    url = page.url
    assert url.startswith(server.url("/auth/totp-verify/"))

    second = browser.new_context()
    other = second.new_page()
    answer = other.goto(url)
    assert answer is not None
    assert answer.status == 403
    assert "started in another browser" in other.locator("main").inner_text()
    other.goto(server.url("/sign-in"))  # the second browser's own CSRF token
    token = other.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token is not None
    code = authenticator.code()
    posted = second.request.post(url, form={"csrf_token": token, "code": code})
    assert posted.status == 403
    recovery = second.request.post(
        url.replace("totp-verify", "recovery-code-verify"),
        form={"csrf_token": token, "code": codes[0]},
    )
    assert recovery.status == 403

    page.fill("#ks-code", code)  # not used up by the refused post
    page.click("main form button[type=submit]")
    assert page.url == server.url("/auth/account")
    assert "10 unused recovery codes" in page.locator("main").inner_text()
    first.close()
    second.close()


def test_the_display_page_reloaded_shows_no_codes(
    context: BrowserContext, server: Server, email: str
) -> None:
    """A batch generated on the recovery-codes page is in that answer only: a reload (which
    re-posts the spent form) and a fresh visit show no codes, and no new batch is made."""
    server.create_user(email)
    page = context.new_page()
    sign_in(page, server, email)
    page.goto(server.url("/auth/recovery-codes"))
    page.click("form[action='/auth/recovery-codes'] button[type=submit]")
    codes = shown_codes(page)
    assert len(codes) == 10
    moved(page.reload)
    assert not any(code in settled_content(page) for code in codes)
    page.goto(server.url("/auth/recovery-codes"))
    assert not any(code in page.content() for code in codes)
    assert "You have 10 unused recovery codes." in page.locator("main").inner_text()


def test_page_headers_forbid_framing_inline_script_and_caching(server: Server) -> None:
    """Every page: CSP without 'unsafe-inline', frame-ancestors 'none', no-store, nosniff,
    no-referrer; the stylesheet and script come from Keystile's own route."""
    for path in ("/sign-in", "/sign-in/code"):
        answer = httpx.get(server.url(path))
        assert answer.status_code == 200
        policy = answer.headers["content-security-policy"]
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    css = httpx.get(server.url("/auth/pages-static/keystile.css"))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert httpx.get(server.url("/auth/pages-static/other.js")).status_code == 404


def test_sign_in_works_from_the_keyboard_alone(
    browser: Browser, server: Server, email: str
) -> None:
    """The email field has the focus; Tab reaches the password, Enter submits: signed in; Tab
    reaches the sign-out button, Enter signs out."""
    server.create_user(email)
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url("/sign-in"))
    # The field has the focus once the page is ready (autofocus); on a loaded machine the
    # keys must not be typed before that, or they go nowhere.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'email'")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url("/auth/account"))
    for _press in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Sign out":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(server.url("/sign-in?signed_out=1"))
    context.close()
