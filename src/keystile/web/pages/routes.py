"""The hosted pages: sign-in, TOTP setup and verify, recovery codes, sign-out, as HTML forms.

Every page is a server-rendered form that works with JavaScript off; the
one small script only adds "copy all" and "print" buttons. The pages call
the same flows as the JSON API (so the same brute-force limits, single use
and audit records apply) and keep the browser's session in an ``HttpOnly``
cookie (:mod:`keystile.web.pages.cookies`). Every post is checked for its
CSRF token before anything else (:mod:`keystile.web.pages.csrf`); a post
without it is answered 403 and changes nothing.

A sign-in that owes a second factor continues at ``{totp_verify}/{token}``
(or the recovery-code page), ``{token}`` being the MFA token, bound to this
browser by a cookie. New recovery codes are rendered only in the answer to
the post that made them (``no-store``): a reload re-posts a form whose
``replaces`` (or setup token) is spent, and a fresh visit shows none.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from keystile.errors import (
    AlreadyEnrolledError,
    AuthenticationFailedError,
    InvalidRequestError,
    KeystileError,
    TooManyAttemptsError,
    UnauthenticatedError,
    UnavailableError,
)
from keystile.flows.sessions import Authenticated, Session
from keystile.flows.sign_in import SecondFactorRequired, SignInResult
from keystile.runtime import Runtime
from keystile.store.users import User
from keystile.strategies.totp.qr import qr_svg
from keystile.tokens import AMR_MFA
from keystile.web.guards import client_address
from keystile.web.pages.cookies import MFA_BINDING, SESSION, CookieJar
from keystile.web.pages.csrf import CsrfGuard, CsrfRefusedError
from keystile.web.pages.forms import FormRefusedError
from keystile.web.pages.guards import (
    OnMissing,
    PageRedirect,
    as_seconds,
    here,
    safe_next,
    with_next,
)
from keystile.web.pages.i18n import Languages
from keystile.web.pages.options import PageOptions
from keystile.web.pages.rendering import Renderer, stamp

logger = logging.getLogger("keystile.web.pages")

#: How recent a second factor must be to replace a batch of recovery codes
#: (the rule TOTP re-enrolment follows).
RECENT_SECOND_FACTOR: Final = timedelta(minutes=5)

#: A recovery code as displayed (groups of symbols joined by hyphens).
_DISPLAYED_CODE: Final = re.compile(r"[0-9A-Za-z]{1,64}(?:-[0-9A-Za-z]{1,64}){0,31}")
_MAX_CODES: Final = 100
_ASSETS: Final = {"keystile.css": "text/css", "keystile.js": "text/javascript"}


def N_(text: str) -> str:  # noqa: N802 (the gettext convention for a marked, untranslated text)
    """Mark ``text`` for the catalogues; it is translated where it is rendered."""
    return text


@dataclass(frozen=True, slots=True)
class Notice:
    """A text for a page (an English message id and its ``%`` values), translated there."""

    text: str
    values: dict[str, Any] = field(default_factory=dict)
    field: str | None = None


WRONG_CODE: Final = N_("That code is wrong or has expired. Check it and try again.")
WRONG_PASSWORD: Final = N_("The email address or the password is wrong.")
WRONG_BROWSER: Final = N_(
    "This sign-in was started in another browser, or it has expired. Sign in again here."
)


def _failure(error: KeystileError, *, wrong: str, field_name: str | None) -> tuple[Notice, int]:
    """What a page says (and its status) for a flow's refusal: one text for every
    wrong, expired, used or unknown code, as the API has one answer."""
    if isinstance(error, AuthenticationFailedError):
        return Notice(wrong, field=field_name), 401
    if isinstance(error, TooManyAttemptsError):
        return (
            Notice(
                N_("Too many attempts. Try again in %(seconds)s seconds."),
                {"seconds": error.retry_after},
                field=field_name,
            ),
            429,
        )
    if isinstance(error, InvalidRequestError):
        return Notice(
            N_("Check what you entered: it is not in the expected form."), field=field_name
        ), 400
    if isinstance(error, AlreadyEnrolledError):
        return Notice(N_("Two-step verification is already on.")), 409
    if isinstance(error, UnavailableError):
        return Notice(N_("The service is unavailable right now. Try again in a moment.")), 503
    return Notice(N_("Something went wrong. Try again.")), 400


def _page_route_class(pages: Pages) -> type[APIRoute]:
    """A route class answering the pages' refusals as pages, with the page headers."""

    class PageRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def page_handler(request: Request) -> Response:
                try:
                    response = await handler(request)
                except PageRedirect as redirect:
                    response = RedirectResponse(redirect.location, status_code=303)
                except CsrfRefusedError:
                    return pages.problem(
                        request,
                        N_(
                            "This form has expired or did not come from this site. Go back, "
                            "reload the page and try again."
                        ),
                        403,
                    )
                except FormRefusedError:
                    return pages.problem(request, N_("This form could not be read."), 400)
                except UnavailableError:
                    return pages.problem(
                        request,
                        N_("The service is unavailable right now. Try again in a moment."),
                        503,
                    )
                except LookupError as error:
                    if type(error) is not LookupError:  # a KeyError or IndexError is a bug
                        logger.error("page %s failed: %s", request.url.path, type(error).__name__)
                        return pages.problem(request, N_("Something went wrong. Try again."), 500)
                    # A flow's "this strategy is turned off".
                    return pages.problem(request, N_("This page is not available."), 404)
                except StarletteHTTPException as error:
                    return pages.problem(
                        request, N_("This page is not available."), error.status_code
                    )
                except Exception as error:  # a page never shows a traceback
                    logger.error("page %s failed: %s", request.url.path, type(error).__name__)
                    return pages.problem(request, N_("Something went wrong. Try again."), 500)
                return stamp(response)

            return page_handler

    return PageRoute


class Pages:
    """The hosted pages of one deployment: the router and the page guards.

    Args:
        runtime: the deployment's services.
        options: paths, templates, texts (settings fill the language, the
            prefix and whether cookies are ``Secure``).
    """

    def __init__(self, runtime: Runtime, options: PageOptions | None = None) -> None:
        settings = runtime.settings
        options = (options or PageOptions(prefix=settings.pages_prefix)).with_defaults(
            language=settings.pages_language, secure=settings.mode == "production"
        )
        self.options = options
        self.runtime = runtime
        self.cookies = CookieJar(
            hashing_keys=settings.ring("hashing_keys"),
            secure=bool(options.secure_cookies),
            session_seconds=settings.access_token_lifetime_seconds,
            mfa_seconds=settings.mfa_token_lifetime_seconds,
        )
        self.csrf = CsrfGuard(self.cookies)
        self.languages = Languages(
            texts=options.texts, catalogues=options.catalogues, fixed=options.language
        )
        self.renderer = Renderer(options, self.languages, self.csrf)
        self.paths = options.all_paths()
        self._assets = {
            name: (resources.files("keystile.web.pages") / "static" / name).read_bytes()
            for name in _ASSETS
        }

    # Sessions in the browser.

    async def session(self, request: Request) -> Session | None:
        """The session of the browser's cookie, or ``None`` (none, or no longer valid).

        Raises:
            UnavailableError: the store cannot be reached (never let through).
        """
        token = self.cookies.session_token(request)
        if token is None:
            return None
        try:
            return await self.runtime.sessions.verify(token)
        except UnauthenticatedError:
            return None

    async def require_session(self, request: Request) -> Session:
        """A dependency giving the browser's session; no session → 303 to sign-in with ``next``."""
        session = await self.session(request)
        if session is None:
            raise PageRedirect(with_next(self.paths["sign_in"], here(request)))
        return session

    async def require_user(self, request: Request) -> User:
        """A dependency giving the signed-in user (see :meth:`require_session`)."""
        return (await self.require_session(request)).user

    def require_recent_auth(
        self, max_age: timedelta | int, *, second_factor: bool = False
    ) -> Callable[[Request], Awaitable[Session]]:
        """A dependency giving the session if the user proved who they are within ``max_age``
        (and passed a second factor, if asked); otherwise 303 to step-up and back: the TOTP
        verify page for a user with an authenticator; for one without, sign-in again (or,
        when a second factor is asked for, TOTP setup). Use it on pages (GET): the browser
        comes back to ``next`` with a GET.

        Raises:
            ValueError: a negative ``max_age``.
        """
        age = as_seconds(max_age)

        async def require_recent(request: Request) -> Session:
            session = await self.require_session(request)
            fresh = self.runtime.clock.now() - session.auth_time <= age
            factor = AMR_MFA in session.claims.amr or not second_factor
            if fresh and factor:
                return session
            if await self._totp_active(session.user):
                raise PageRedirect(with_next(self.paths["totp_verify"], here(request)))
            if second_factor:  # nothing to step up with: an authenticator first
                raise PageRedirect(self.paths["totp_setup"])
            raise PageRedirect(with_next(self.paths["sign_in"], here(request)))

        return require_recent

    def require_recovery_codes(
        self, *, on_missing: OnMissing = "redirect_to_setup"
    ) -> Callable[[Request], Awaitable[User]]:
        """A dependency giving the signed-in user if they hold unused recovery codes;
        otherwise 303 to the recovery-codes page (``redirect_to_setup``, with ``next``) or
        403 (``halt``)."""

        async def require_codes(request: Request) -> User:
            user = await self.require_user(request)
            service = self.runtime.recovery_codes
            if service is None or (await service.status(user)).remaining > 0:
                return user
            if on_missing == "halt":
                raise StarletteHTTPException(status_code=403, detail="recovery_codes_required")
            raise PageRedirect(with_next(self.paths["recovery_codes"], here(request)))

        return require_codes

    async def _totp_active(self, user: User) -> bool:
        if self.runtime.totp is None:
            return False
        _user, status = await self.runtime.mfa_status(user.email)
        return status.totp_active

    def _recent_second_factor(self, session: Session) -> bool:
        return (
            AMR_MFA in session.claims.amr
            and self.runtime.clock.now() - session.auth_time <= RECENT_SECOND_FACTOR
        )

    # Answers.

    def problem(self, request: Request, text: str, status_code: int) -> Response:
        """The error page saying ``text`` (a message id) with ``status_code``."""
        return self.renderer.render(request, "error", status_code=status_code, error=Notice(text))

    def _landing(self, next_path: str | None) -> str:
        return safe_next(next_path) or self.options.after_sign_in or self.paths["account"]

    async def _signed_in(
        self, request: Request, result: SignInResult, next_path: str | None
    ) -> Response:
        """Where a completed first factor goes: home with a session cookie, or on to the
        second factor with the MFA token bound to this browser."""
        if isinstance(result, SecondFactorRequired):
            methods = tuple(m for m in result.methods if m in ("totp", "recovery_code"))
            if not methods:  # the `required` policy's enrolment before a session
                return self.problem(
                    request,
                    N_("Your account must set up two-step verification through the app first."),
                    403,
                )
            page = "totp_verify" if "totp" in methods else "recovery_code_verify"
            location = with_next(
                f"{self.paths[page]}/{quote(result.mfa_token, safe='')}", next_path
            )
            response = RedirectResponse(location, status_code=303)
            self.cookies.bind(response, result.mfa_token, methods)
            return response
        return await self._start_session(request, result, self._landing(next_path))

    async def _start_session(
        self, request: Request, result: Authenticated, location: str
    ) -> Response:
        """303 to ``location`` with the new token in the session cookie; the browser's
        earlier session (another account's, or this one's) is ended."""
        previous = await self.session(request)
        if previous is not None and previous.claims.jti != result.claims.jti:
            with contextlib.suppress(KeystileError):  # already gone: nothing to end
                await self.runtime.sessions.end(previous)
        response = RedirectResponse(location, status_code=303)
        self.cookies.set_session(response, result.token)
        self.cookies.clear(response, MFA_BINDING)
        return response

    # The router.

    @property
    def router(self) -> APIRouter:
        """Every page, and the stylesheet and script they load (not in the OpenAPI schema)."""
        router = APIRouter(route_class=_page_route_class(self), include_in_schema=False)
        paths = self.paths
        render = self.renderer.render

        @router.get(paths["assets"] + "/{name}")
        async def asset(name: str) -> Response:
            if name not in _ASSETS:
                raise StarletteHTTPException(status_code=404)
            return Response(
                self._assets[name],
                media_type=_ASSETS[name],
                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
            )

        # Sign-in.

        def sign_in_page(
            request: Request,
            *,
            status_code: int = 200,
            error: Notice | None = None,
            notice: Notice | None = None,
            email: str = "",
            next_path: str | None = None,
        ) -> Response:
            return render(
                request,
                "sign_in",
                status_code=status_code,
                error=error,
                notice=notice,
                email=email,
                next=safe_next(next_path),
                otp_enabled=self.runtime.otp is not None,
            )

        @router.get(paths["sign_in"])
        async def sign_in_form(request: Request) -> Response:
            notice = None
            if request.query_params.get("signed_out"):
                notice = Notice(N_("You are signed out."))
            return sign_in_page(request, notice=notice, next_path=request.query_params.get("next"))

        @router.post(paths["sign_in"])
        async def sign_in_post(request: Request) -> Response:
            form = await self.csrf.check(request)
            email, next_path = form.get("email").strip(), form.get("next")
            try:
                result = await self.runtime.sign_in.password(
                    email, form.get("password"), client_address=client_address(request)
                )
            except KeystileError as error:
                notice, status = _failure(error, wrong=WRONG_PASSWORD, field_name="password")
                return sign_in_page(
                    request, status_code=status, error=notice, email=email, next_path=next_path
                )
            return await self._signed_in(request, result, next_path)

        def code_page(
            request: Request,
            *,
            step: str,
            status_code: int = 200,
            error: Notice | None = None,
            email: str = "",
            next_path: str | None = None,
        ) -> Response:
            return render(
                request,
                "sign_in_code",
                status_code=status_code,
                step=step,
                error=error,
                email=email,
                next=safe_next(next_path),
            )

        @router.get(paths["sign_in_code"])
        async def sign_in_code_form(request: Request) -> Response:
            if self.runtime.otp is None:
                raise LookupError("the otp strategy is not enabled")
            return code_page(request, step="request", next_path=request.query_params.get("next"))

        @router.post(paths["sign_in_code"])
        async def sign_in_code_post(request: Request) -> Response:
            form = await self.csrf.check(request)
            otp = self.runtime.otp
            if otp is None:
                raise LookupError("the otp strategy is not enabled")
            email, code, next_path = form.get("email").strip(), form.get("code"), form.get("next")
            address = client_address(request)
            if "code" not in form.fields:  # step one: send a code
                try:
                    await otp.request(email, client_address=address)
                except KeystileError as error:
                    notice, status = _failure(error, wrong=WRONG_CODE, field_name="email")
                    return code_page(
                        request,
                        step="request",
                        status_code=status,
                        error=notice,
                        email=email,
                        next_path=next_path,
                    )
                return code_page(request, step="enter", email=email, next_path=next_path)
            try:
                result = await self.runtime.sign_in.otp(email, code, client_address=address)
            except KeystileError as error:
                notice, status = _failure(error, wrong=WRONG_CODE, field_name="code")
                return code_page(
                    request,
                    step="enter",
                    status_code=status,
                    error=notice,
                    email=email,
                    next_path=next_path,
                )
            return await self._signed_in(request, result, next_path)

        # The second factor: after sign-in ({token}) and step-up (no token).

        def verify_page(
            request: Request,
            page: str,
            *,
            token: str | None,
            alternative: bool,
            status_code: int = 200,
            error: Notice | None = None,
            next_path: str | None = None,
        ) -> Response:
            suffix = f"/{quote(token, safe='')}" if token is not None else ""
            other = "recovery_code_verify" if page == "totp_verify" else "totp_verify"
            return render(
                request,
                page,
                status_code=status_code,
                error=error,
                step_up=token is None,
                action=with_next(paths[page] + suffix, next_path),
                alternative=with_next(paths[other] + suffix, next_path) if alternative else None,
                next=safe_next(next_path),
            )

        async def step_up_methods(session: Session) -> tuple[str, ...]:
            methods = []
            if await self._totp_active(session.user):
                methods.append("totp")
            service = self.runtime.recovery_codes
            if service is not None and (await service.status(session.user)).remaining > 0:
                methods.append("recovery_code")
            return tuple(methods)

        def register_verify(page: str, method: str) -> None:
            other = "recovery_code" if method == "totp" else "totp"
            wrong = WRONG_CODE

            @router.get(paths[page] + "/{token}", name=f"{page}_token")
            async def verify_form(request: Request, token: str) -> Response:
                next_path = request.query_params.get("next")
                methods = self.cookies.bound_methods(request, token)
                if methods is None or method not in methods:
                    return self.problem(request, WRONG_BROWSER, 403)
                return verify_page(
                    request,
                    page,
                    token=token,
                    alternative=other in methods,
                    next_path=next_path,
                )

            @router.post(paths[page] + "/{token}", name=f"{page}_token_post")
            async def verify_post(request: Request, token: str) -> Response:
                form = await self.csrf.check(request)
                next_path = form.get("next") or request.query_params.get("next")
                methods = self.cookies.bound_methods(request, token)
                if methods is None or method not in methods:
                    return self.problem(request, WRONG_BROWSER, 403)
                address = client_address(request)
                try:
                    if method == "totp":
                        result = await self.runtime.sign_in.totp(
                            token, form.get("code"), client_address=address
                        )
                    else:
                        result = await self.runtime.sign_in.recovery_code(
                            token, form.get("code"), client_address=address
                        )
                except KeystileError as error:
                    notice, status = _failure(error, wrong=wrong, field_name="code")
                    return verify_page(
                        request,
                        page,
                        token=token,
                        alternative=other in methods,
                        status_code=status,
                        error=notice,
                        next_path=next_path,
                    )
                if method == "recovery_code":
                    return await recovered(request, result, next_path)
                return await self._start_session(request, result, self._landing(next_path))

            @router.get(paths[page], name=f"{page}_step_up")
            async def step_up_form(request: Request) -> Response:
                session = await self.require_session(request)
                methods = await step_up_methods(session)
                return verify_page(
                    request,
                    page,
                    token=None,
                    alternative=other in methods,
                    next_path=request.query_params.get("next"),
                )

            @router.post(paths[page], name=f"{page}_step_up_post")
            async def step_up_post(request: Request) -> Response:
                form = await self.csrf.check(request)
                session = await self.require_session(request)
                next_path = form.get("next") or request.query_params.get("next")
                address = client_address(request)
                try:
                    if method == "totp":
                        result = await self.runtime.sign_in.step_up_totp(
                            session, form.get("code"), client_address=address
                        )
                    else:
                        result = await self.runtime.sign_in.step_up_recovery_code(
                            session, form.get("code"), client_address=address
                        )
                except KeystileError as error:
                    notice, status = _failure(error, wrong=wrong, field_name="code")
                    methods = await step_up_methods(session)
                    return verify_page(
                        request,
                        page,
                        token=None,
                        alternative=other in methods,
                        status_code=status,
                        error=notice,
                        next_path=next_path,
                    )
                if method == "recovery_code":
                    return await recovered(request, result, next_path)
                return await self._start_session(request, result, self._landing(next_path))

        async def recovered(
            request: Request, result: Authenticated, next_path: str | None
        ) -> Response:
            """After a recovery code: the account page names the codes left and suggests a new
            authenticator; a code handed out in exchange (rotation) is shown in this answer."""
            replacement = result.details.get("recovery_code")
            onward = safe_next(next_path)
            location = with_next(paths["account"], onward if onward != paths["account"] else None)
            if not isinstance(replacement, str):
                return await self._start_session(request, result, location)
            response = await account_page(
                request, result.user, result.claims.extra, next_path, replacement=replacement
            )
            response.status_code = 200
            self.cookies.set_session(response, result.token)
            self.cookies.clear(response, MFA_BINDING)
            response.headers["Cache-Control"] = "no-store"
            return response

        register_verify("totp_verify", "totp")
        register_verify("recovery_code_verify", "recovery_code")

        # TOTP setup.

        def setup_page(
            request: Request,
            *,
            setup_token: str,
            totp_url: str,
            status_code: int = 200,
            error: Notice | None = None,
        ) -> Response:
            secret = parse_qs(urlsplit(totp_url).query).get("secret", [""])[0]
            return render(
                request,
                "totp_setup",
                status_code=status_code,
                already=False,
                error=error,
                setup_token=setup_token,
                totp_url=totp_url,
                qr=Markup(qr_svg(totp_url, title=self._qr_title(request))),  # noqa: S704 (segno's SVG of our own URI)
                secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
                digits=self.runtime.settings.totp_digits,
            )

        @router.get(paths["totp_setup"])
        async def totp_setup_form(request: Request) -> Response:
            session = await self.require_session(request)
            enrolment = self.runtime.totp_enrolment
            if enrolment is None:
                raise LookupError("the totp strategy is not enabled")
            try:
                started = await enrolment.setup(
                    session.user,
                    second_factor_recent=enrolment.recent_second_factor(session.claims),
                    client_address=client_address(request),
                )
            except AlreadyEnrolledError:
                return render(
                    request,
                    "totp_setup",
                    status_code=409,
                    already=True,
                    step_up=with_next(paths["totp_verify"], paths["totp_setup"]),
                )
            return setup_page(request, setup_token=started.setup_token, totp_url=started.totp_url)

        @router.post(paths["totp_setup"])
        async def totp_setup_post(request: Request) -> Response:
            form = await self.csrf.check(request)
            session = await self.require_session(request)
            enrolment = self.runtime.enrolment
            if enrolment is None:
                raise LookupError("the totp strategy is not enabled")
            setup_token, totp_url = form.get("setup_token"), form.get("totp_url")
            try:
                enabled = await enrolment.confirm_setup(
                    session.user,
                    setup_token,
                    form.get("code"),
                    client_address=client_address(request),
                )
            except KeystileError as error:
                notice, status = _failure(error, wrong=WRONG_CODE, field_name="code")
                if not totp_url.startswith("otpauth://totp/"):
                    return self.problem(request, notice.text, status)
                return setup_page(
                    request,
                    setup_token=setup_token,
                    totp_url=totp_url,
                    status_code=status,
                    error=notice,
                )
            if enabled.recovery_codes:  # a first enrolment: on to its codes, shown here once
                return codes_shown(request, enabled.recovery_codes, first=True)
            return RedirectResponse(paths["account"], status_code=303)

        # Recovery codes: generate and show once.

        async def codes_page(
            request: Request,
            session: Session,
            *,
            status_code: int = 200,
            notice: Notice | None = None,
        ) -> Response:
            service = self.runtime.recovery_codes
            if service is None:
                raise LookupError("recovery codes are not enabled")
            status = await service.status(session.user)
            return render(
                request,
                "recovery_codes",
                status_code=status_code,
                notice=notice,
                status=status,
                replaces=status.generated_at.isoformat() if status.generated_at else "",
                next=safe_next(request.query_params.get("next")),
            )

        def codes_shown(
            request: Request, codes: tuple[str, ...], *, first: bool, next_path: str | None = None
        ) -> Response:
            return render(
                request,
                "recovery_codes_show",
                template=self.options.template("recovery_codes_show"),
                codes=codes,
                first=first,
                next=safe_next(next_path),
                download=paths["recovery_codes"] + "/download",
                saved=paths["recovery_codes"] + "/saved",
            )

        @router.get(paths["recovery_codes"])
        async def recovery_codes_form(request: Request) -> Response:
            session = await self.require_session(request)
            return await codes_page(request, session)

        @router.post(paths["recovery_codes"])
        async def recovery_codes_post(request: Request) -> Response:
            form = await self.csrf.check(request)
            session = await self.require_session(request)
            service = self.runtime.recovery_codes
            if service is None:
                raise LookupError("recovery codes are not enabled")
            status = await service.status(session.user)
            current = status.generated_at.isoformat() if status.generated_at else ""
            if form.get("replaces") != current:  # a reload, or another tab made a batch
                return await codes_page(
                    request,
                    session,
                    status_code=409,
                    notice=Notice(
                        N_(
                            "Those codes were already shown and are not shown again. "
                            "Generate a new batch if you did not save them."
                        )
                    ),
                )
            next_path = form.get("next")
            if (
                status.configured
                and not self._recent_second_factor(session)
                and await self._totp_active(session.user)
            ):
                raise PageRedirect(with_next(paths["totp_verify"], paths["recovery_codes"]))
            batch = await service.generate(session.user)
            return codes_shown(request, batch.codes, first=False, next_path=next_path)

        @router.post(paths["recovery_codes"] + "/download")
        async def recovery_codes_download(request: Request) -> Response:
            form = await self.csrf.check(request)
            await self.require_session(request)
            codes = form.getlist("code")
            if (
                not codes
                or len(codes) > _MAX_CODES
                or not all(_DISPLAYED_CODE.fullmatch(code) for code in codes)
            ):
                raise FormRefusedError()
            return Response(
                "".join(f"{code}\n" for code in codes),
                media_type="text/plain; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="recovery-codes.txt"'},
            )

        @router.post(paths["recovery_codes"] + "/saved")
        async def recovery_codes_saved(request: Request) -> Response:
            form = await self.csrf.check(request)
            await self.require_session(request)
            if form.get("saved") != "yes":
                return self.problem(
                    request, N_("Tick the box to confirm you saved your recovery codes."), 400
                )
            return RedirectResponse(self._landing(form.get("next")), status_code=303)

        # The account page, and sign-out.

        async def account_page(
            request: Request,
            user: User,
            extra: Mapping[str, Any],
            next_path: str | None,
            *,
            replacement: str | None = None,
        ) -> Response:
            service = self.runtime.recovery_codes
            status = await service.status(user) if service is not None else None
            recovered_at = extra.get("recovery_code_used_at")
            return render(
                request,
                "account",
                user=user,
                totp_active=await self._totp_active(user),
                status=status,
                recovered=recovered_at is not None,
                replacement=replacement,
                next=safe_next(next_path),
            )

        @router.get(paths["account"])
        async def account(request: Request) -> Response:
            session = await self.require_session(request)
            return await account_page(
                request, session.user, session.claims.extra, request.query_params.get("next")
            )

        @router.get(paths["sign_out"])
        async def sign_out_form(request: Request) -> Response:
            session = await self.session(request)
            if session is None:
                return RedirectResponse(paths["sign_in"], status_code=303)
            return render(request, "sign_out", user=session.user)

        @router.post(paths["sign_out"])
        async def sign_out_post(request: Request) -> Response:
            await self.csrf.check(request)
            session = await self.session(request)
            if session is not None:
                await self.runtime.sessions.end(session)
            response = RedirectResponse(
                with_next(paths["sign_in"], None, signed_out="1"), status_code=303
            )
            self.cookies.clear(response, SESSION)
            self.cookies.clear(response, MFA_BINDING)
            return response

        return router

    def _qr_title(self, request: Request) -> str:
        return self.renderer.translator(request).gettext(N_("QR code for your authenticator app"))
