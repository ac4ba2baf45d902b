"""The pages' rules that need no browser: catalogues, options, ``next``, cookies, forms."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jinja2 import Environment
from jinja2.ext import extract_from_ast
from starlette.requests import Request
from starlette.responses import Response

from keystile.clock import ManualClock
from keystile.settings import Settings
from keystile.web.app import Keystile, create_app
from keystile.web.pages.cookies import MFA_BINDING, CookieJar
from keystile.web.pages.guards import safe_next
from keystile.web.pages.i18n import Languages
from keystile.web.pages.options import PageOptions
from tests.servers import LOOPBACK
from tests.strategies.totp.helpers import oathtool

EMAIL = "host@example.com"
PAGES = Path(__file__).resolve().parents[3] / "src" / "keystile" / "web" / "pages"


def message_ids() -> set[str | tuple[str, str]]:
    """Every text the pages show: ``_`` and ``ngettext`` (a pair) in templates, ``N_`` in the
    modules."""
    found: set[str | tuple[str, str]] = set()
    environment = Environment(autoescape=True)
    for template in (PAGES / "templates").rglob("*.html"):
        tree = environment.parse(template.read_text())
        for _line, name, message in extract_from_ast(tree, gettext_functions=("_", "ngettext")):
            parts = [p for p in (message if isinstance(message, tuple) else (message,)) if p]
            if name == "ngettext" and len(parts) == 2:
                found.add((str(parts[0]), str(parts[1])))
            elif parts:
                found.add(str(parts[0]))
    for module in PAGES.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "N_":
                argument = node.args[0]
                assert isinstance(argument, ast.Constant)
                found.add(str(argument.value))
    return found


def test_the_german_catalogue_translates_every_text_of_the_pages() -> None:
    """No page text is left in English in German: each has its own, non-empty translation."""
    german = Languages().get("de")
    ids = message_ids()
    assert len(ids) > 60
    untranslated = []
    for message in ids:
        if isinstance(message, tuple):
            one, many = message
            if german.translations.ngettext(one, many, 1) == one or (
                german.translations.ngettext(one, many, 2) == many
            ):
                untranslated.append(one)
        elif german.translations.gettext(message) == message:
            untranslated.append(message)
    assert untranslated == []


def test_accept_language_picks_german_and_falls_back_to_english() -> None:
    """q-values are honoured; an unknown or malformed header gets English; a fixed language wins."""
    languages = Languages()
    assert languages.choose("fr-CH, de;q=0.8, en;q=0.5").language == "de"
    assert languages.choose("en;q=0.9, de;q=0.1").language == "en"
    assert languages.choose("xx-??, ;q=abc").language == "en"
    assert languages.choose(None).language == "en"
    assert Languages(fixed="de").choose("en").language == "de"
    with pytest.raises(ValueError, match="no catalogue"):
        Languages(fixed="fr")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/vault?x=1", "/vault?x=1"),
        ("/", "/"),
        ("//evil.example/", None),
        ("/\\evil.example", None),
        ("https://evil.example/", None),
        ("vault", None),
        ("/a\nb", None),
        ("", None),
        (None, None),
        ("/" + "a" * 2000, None),
    ],
)
def test_next_is_followed_only_when_it_is_a_path_on_this_site(
    value: str | None, expected: str | None
) -> None:
    """``safe_next`` keeps same-site paths only."""
    assert safe_next(value) == expected


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()
    return Request({"type": "http", "headers": [(b"cookie", header)], "method": "GET"})


def test_the_binding_cookie_holds_for_its_token_and_methods_only(settings: Settings) -> None:
    """The HMAC covers the MFA token and the methods: another token, or edited methods, fail."""
    jar = CookieJar(
        hashing_keys=settings.ring("hashing_keys"), secure=False, session_seconds=60, mfa_seconds=60
    )
    response = Response()
    jar.bind(response, "token-1", ("totp",))
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert "HttpOnly" in response.headers["set-cookie"]
    assert jar.bound_methods(_request({MFA_BINDING: value}), "token-1") == ("totp",)
    assert jar.bound_methods(_request({MFA_BINDING: value}), "token-2") is None
    edited = "totp,recovery_code" + value[len("totp") :]
    assert jar.bound_methods(_request({MFA_BINDING: edited}), "token-1") is None
    assert jar.bound_methods(_request({}), "token-1") is None


def test_secure_cookies_have_host_prefix_and_secure_flag(settings: Settings) -> None:
    """In production the cookies are ``__Host-`` named and ``Secure``."""
    jar = CookieJar(
        hashing_keys=settings.ring("hashing_keys"), secure=True, session_seconds=60, mfa_seconds=60
    )
    response = Response()
    jar.set_session(response, "a.b.c")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-keystile-session=a.b.c;")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


def _csrf(client: TestClient, path: str) -> str:
    page: str = client.get(path).text
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_a_sign_in_without_its_csrf_token_is_refused_before_the_password_is_checked(
    settings: Settings,
) -> None:
    """403 and no session cookie, with the CSRF cookie and without it."""
    with TestClient(create_app(settings), client=LOOPBACK) as app:
        app.get("/sign-in")
        refused = app.post("/sign-in", data={"email": "a@example.com", "password": "x"})
        assert refused.status_code == 403
        assert "keystile-session" not in refused.headers.get("set-cookie", "")
        app.cookies.clear()
        bare = app.post("/sign-in", data={"email": "a@example.com", "csrf_token": "0" * 64})
        assert bare.status_code == 403


def test_text_overrides_custom_templates_and_a_fixed_language(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A host's text wins over the catalogue; a page's own template replaces Keystile's; a page
    moves to its configured path (forms and redirects follow); the language setting fixes
    German whatever the browser asks."""
    (tmp_path / "my_error.html").write_text(
        "{% extends layout %}{% block content %}<h1>Oops</h1><p>{{ _(error.text) }}</p>"
        "{% endblock %}"
    )
    keystile = Keystile(
        make_settings(pages_language="de"),
        pages=PageOptions(
            template_dirs=(tmp_path,),
            templates={"error": "my_error.html"},
            texts={"de": {"Sign in": "Einloggen"}},
            paths={"sign_in": "/login"},
        ),
    )
    app = FastAPI()
    keystile.install(app)
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/sign-in").status_code == 404
        page = client.get("/login", headers={"accept-language": "en"})
        assert '<html lang="de">' in page.text
        assert "<h1>Einloggen</h1>" in page.text
        assert "E-Mail-Adresse" in page.text
        assert 'action="/login"' in page.text
        assert client.get("/sign-out", follow_redirects=False).headers["location"] == "/login"
        refused = client.post("/login", data={"email": "a@example.com"})
        assert refused.status_code == 403
        assert "<h1>Oops</h1><p>Dieses Formular ist abgelaufen" in refused.text


def test_pages_are_off_with_the_setting(make_settings: Callable[..., Settings]) -> None:
    """KEYSTILE_PAGES_ENABLED=false: no page route, no ``keystile.pages``."""
    settings = make_settings(pages_enabled=False)
    assert Keystile(settings).pages is None
    with TestClient(create_app(settings), client=LOOPBACK) as client:
        assert client.get("/sign-in").status_code == 404


def test_the_download_route_answers_only_codes(settings: Settings) -> None:
    """The download echoes a list of codes as a text attachment; anything else is 400 (the
    route is no general file reflector), and without a session it goes to sign-in."""
    with TestClient(create_app(settings), client=LOOPBACK) as client:
        token = _csrf(client, "/sign-in")
        anonymous = client.post(
            "/auth/recovery-codes/download",
            data={"csrf_token": token, "code": "ABCD-EFGH"},
            follow_redirects=False,
        )
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/sign-in?next=%2Fauth%2Frecovery-codes%2Fdownload"
        runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
        assert client.portal is not None
        client.portal.call(functools.partial(runtime.create_user, EMAIL, password="pw-123456789"))
        signed_in = client.post(
            "/sign-in",
            data={"csrf_token": token, "email": EMAIL, "password": "pw-123456789"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        good = client.post(
            "/auth/recovery-codes/download",
            data={"csrf_token": token, "code": ["ABCD-EFGH", "JKMN"]},
        )
        assert good.status_code == 200
        assert good.text == "ABCD-EFGH\nJKMN\n"
        assert good.headers["content-disposition"] == 'attachment; filename="recovery-codes.txt"'
        bad = client.post(
            "/auth/recovery-codes/download", data={"csrf_token": token, "code": "<script>"}
        )
        assert bad.status_code == 400
        assert "content-disposition" not in bad.headers


def _bound_client(settings: Settings, token: str, methods: tuple[str, ...]) -> TestClient:
    """A started client whose browser holds the binding cookie of ``token``."""
    client = TestClient(create_app(settings), client=LOOPBACK)
    client.__enter__()
    jar = CookieJar(
        hashing_keys=settings.ring("hashing_keys"), secure=False, session_seconds=60, mfa_seconds=60
    )
    response = Response()
    jar.bind(response, token, methods)
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    client.cookies.set(MFA_BINDING, value)
    return client


def test_cross_links_appear_only_for_the_methods_the_sign_in_offered(settings: Settings) -> None:
    """The TOTP page links to the recovery-code page (same token) only when the sign-in offered
    recovery codes, and the recovery-code page refuses a sign-in that did not offer them."""
    both = _bound_client(settings, "tok-1", ("totp", "recovery_code"))
    with both:
        page = both.get("/auth/totp-verify/tok-1?next=/notes").text
        assert 'href="/auth/recovery-code-verify/tok-1?next=%2Fnotes"' in page
        assert 'autocomplete="one-time-code"' in page
        assert 'inputmode="numeric"' in page
    only_totp = _bound_client(settings, "tok-2", ("totp",))
    with only_totp:
        assert "recovery-code-verify" not in only_totp.get("/auth/totp-verify/tok-2").text
        assert only_totp.get("/auth/recovery-code-verify/tok-2").status_code == 403


def test_an_unknown_token_gets_the_words_of_a_wrong_code(settings: Settings) -> None:
    """A code posted with an MFA token that does not exist (bound, so the page accepts the post)
    is answered 401 with the one text for wrong, expired and unknown codes, tied to the field."""
    client = _bound_client(settings, "no-such-token", ("totp",))
    with client:
        token = _csrf(client, "/sign-in")
        answer = client.post(
            "/auth/totp-verify/no-such-token", data={"csrf_token": token, "code": "123456"}
        )
        assert answer.status_code == 401
        assert "That code is wrong or has expired. Check it and try again." in answer.text
        assert 'aria-invalid="true" aria-describedby="ks-code-error ks-code-hint"' in answer.text
        assert 'id="ks-code-error" role="alert"' in answer.text


def test_the_api_s_brute_force_limit_holds_on_the_totp_page(
    settings: Settings, clock: ManualClock
) -> None:
    """The per-user TOTP limit of the flow (5/5m, the enrolment's confirmation counted as one):
    four wrong codes on the verify page are 401; the next attempt is 429 with Retry-After and
    the page's text, even with the right code."""
    with TestClient(create_app(settings, clock=clock), client=LOOPBACK) as client:
        runtime = client.app.state.keystile.runtime  # type: ignore[attr-defined]
        assert client.portal is not None
        call = client.portal.call
        user = call(functools.partial(runtime.create_user, EMAIL, password="pw-123456789"))
        started = call(
            functools.partial(runtime.totp_enrolment.setup, user, second_factor_recent=False)
        )
        secret = parse_qs(urlsplit(started.totp_url).query)["secret"][0]
        now = int(clock.now().timestamp())
        call(runtime.enrolment.confirm_setup, user, started.setup_token, oathtool(secret, now))
        token = _csrf(client, "/sign-in")
        signed_in = client.post(
            "/sign-in",
            data={"csrf_token": token, "email": EMAIL, "password": "pw-123456789"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        verify = signed_in.headers["location"]
        assert verify.startswith("/auth/totp-verify/")
        statuses = [
            client.post(verify, data={"csrf_token": token, "code": "000000"}).status_code
            for _attempt in range(4)
        ]
        assert statuses == [401] * 4
        limited = client.post(
            verify, data={"csrf_token": token, "code": oathtool(secret, now + 30)}
        )
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert "Too many attempts. Try again in" in limited.text
