"""Request and response bodies of the JSON API (the shapes of ``API.md``)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from keystile.crypto.passwords import MAX_PASSWORD_LENGTH
from keystile.flows.sessions import Authenticated, Session
from keystile.flows.sign_in import SecondFactorRequired
from keystile.identity import MAX_EMAIL_LENGTH
from keystile.strategies.password.config import MIN_PASSWORD_LENGTH
from keystile.strategies.recovery_code.core import DEFAULT_LENGTH as DEFAULT_RECOVERY_CODE_LENGTH


def _any_case(word: str) -> str:
    """``word`` as a regular expression that ignores case (JSON Schema patterns take no flags)."""
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.isalpha() else ch for ch in word)


#: The domain rules of ``normalize_email`` that ``format: email`` does not say: the
#: domain has a dot and is not special-use (``.test``, ``.local``…), whatever the case.
EMAIL_DOMAIN_PATTERN = (
    r"^(?=[^@]*@[^@]*\.)(?![^@]*@(?:[^@]*\.)?(?:"
    + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
    + r")\.?\s*$)"
)

# The OpenAPI document states the rules ``keystile.identity.normalize_email``
# applies, so data valid against the schema is accepted (Schemathesis's
# positive-data check holds us to it); the service itself enforces them with a
# reason per rule, and a longer string is refused by pydantic here. Both answer
# 400 invalid_request.
EmailText = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_EMAIL_LENGTH),
    Field(
        json_schema_extra={"format": "email", "pattern": EMAIL_DOMAIN_PATTERN},
        description=(
            "Exactly one bare address (local@domain): no display name, angle brackets, "
            "comment, quoted local part or list; the domain has a dot and is not a "
            "special-use name (.arpa, .invalid, .local, .localhost, .onion, .test). "
            "Compared trimmed, NFC and lower-cased; an internationalised domain in its "
            "Unicode form."
        ),
    ),
]
# Every Keystile password has at least MIN_PASSWORD_LENGTH characters, and the
# document says so. The service enforces it rather than pydantic: registration
# answers a shorter one 400 with its own reason, sign-in 401 like any wrong
# password (it cannot be anyone's).
PasswordText = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_PASSWORD_LENGTH),
    Field(json_schema_extra={"minLength": MIN_PASSWORD_LENGTH}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PasswordCredentials(_Strict):
    email: EmailText
    password: PasswordText


class PasswordBody(_Strict):
    """``{"user": {"email", "password"}}``."""

    user: PasswordCredentials


CodeText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


class OtpIdentity(_Strict):
    email: EmailText


class OtpRequestBody(_Strict):
    """``{"user": {"email"}}``."""

    user: OtpIdentity


class OtpCredentials(_Strict):
    email: EmailText
    otp: CodeText


class OtpSignInBody(_Strict):
    """``{"user": {"email", "otp"}}``."""

    user: OtpCredentials


class RegistrationCode(_Strict):
    email: EmailText
    code: CodeText


class ConfirmRegistrationBody(_Strict):
    """``{"user": {"email", "code"}}``: the code mailed by a password registration."""

    user: RegistrationCode


class StatusBody(BaseModel):
    """``{"status": "ok"}``: the same answer whatever the identity."""

    status: str = "ok"


class UserBody(BaseModel):
    id: str
    email: str


class AuthenticatedBody(BaseModel):
    """The answer of every call that completes a sign-in."""

    token: str
    token_type: str = "Bearer"  # noqa: S105
    expires_in: int
    user: UserBody
    authentication_strategies: list[str]

    @classmethod
    def of(cls, result: Authenticated) -> AuthenticatedBody:
        return cls(
            token=result.token,
            expires_in=result.expires_in,
            user=UserBody(id=result.user.subject, email=result.user.email),
            authentication_strategies=list(result.strategies),
        )


class MeBody(BaseModel):
    """``GET /auth/me``: who the bearer is and how they signed in."""

    user: UserBody
    authentication_strategies: list[str]
    auth_time: datetime
    amr: list[str]
    recovery_code_used_at: datetime | None = None

    @classmethod
    def of(cls, session: Session) -> MeBody:
        used = session.claims.extra.get("recovery_code_used_at")
        return cls(
            user=UserBody(id=session.user.subject, email=session.user.email),
            authentication_strategies=list(session.claims.strategies),
            auth_time=session.auth_time,
            amr=list(session.claims.amr),
            recovery_code_used_at=datetime.fromisoformat(used) if isinstance(used, str) else None,
        )


class ErrorBody(BaseModel):
    """``{"error": code, "message": text}``; ``fields`` with ``invalid_request``."""

    error: str
    message: str
    fields: dict[str, str] | None = None


class MfaRequiredBody(BaseModel):
    """API.md's "second factor needed": finish with ``/user/totp/verify`` and the token."""

    mfa_required: bool = True
    mfa_token: str
    expires_in: int
    methods: list[str]


def sign_in_answer(result: Authenticated | SecondFactorRequired) -> SignInAnswer:
    """The body of a first factor's answer: a session, or the second factor it owes."""
    if isinstance(result, SecondFactorRequired):
        return MfaRequiredBody(
            mfa_token=result.mfa_token, expires_in=result.expires_in, methods=list(result.methods)
        )
    return AuthenticatedBody.of(result)


SignInAnswer = AuthenticatedBody | MfaRequiredBody

MfaTokenText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]


class TotpVerifyFields(_Strict):
    mfa_token: MfaTokenText | None = None
    code: CodeText


class TotpVerifyBody(_Strict):
    """``{"user": {"mfa_token", "code"}}`` (second factor) or ``{"user": {"code"}}`` with a
    bearer token (step-up)."""

    user: TotpVerifyFields


def recovery_code_text(length: int) -> Any:
    """A recovery code as typed: ``length`` Crockford base32 symbols (any case; I, L and O
    read as 1, 1 and 0; U is not a symbol), with any spaces and hyphens between.

    The OpenAPI document states the rule the service applies, so schema-valid input is
    never refused as malformed.
    """
    return Annotated[
        str,
        StringConstraints(
            strict=True,
            max_length=max(64, 4 * length),
            pattern=rf"^[ -]*(?:[0-9A-TV-Za-tv-z][ -]*){{{length}}}$",
        ),
    ]


RecoveryCodeText = Annotated[
    str,
    StringConstraints(
        strict=True,
        max_length=64,
        pattern=rf"^[ -]*(?:[0-9A-TV-Za-tv-z][ -]*){{{DEFAULT_RECOVERY_CODE_LENGTH}}}$",
    ),
]


class RecoveryVerifyFields(_Strict):
    mfa_token: MfaTokenText | None = None
    code: RecoveryCodeText


class RecoveryResetFields(_Strict):
    mfa_token: MfaTokenText
    code: RecoveryCodeText


class RecoveryResetBody(_Strict):
    """``{"user": {"mfa_token", "code"}}``: reset the second factor of a sign-in held for it."""

    user: RecoveryResetFields


class RecoveryVerifyBody(_Strict):
    """``{"user": {"mfa_token", "code"}}`` (second factor, MFA reset) or ``{"user": {"code"}}``
    with a bearer token (step-up)."""

    user: RecoveryVerifyFields


class RecoveryAuthenticatedBody(AuthenticatedBody):
    """The authenticated answer of a recovery code: what remains, and a new code when rotating."""

    recovery_code_used_at: datetime | None = None
    recovery_codes_remaining: int | None = None
    recovery_code: str | None = None

    @classmethod
    def of_recovery(cls, result: Authenticated) -> RecoveryAuthenticatedBody:
        base = AuthenticatedBody.of(result)
        details = result.details
        used = details.get("recovery_code_used_at")
        remaining = details.get("recovery_codes_remaining")
        code = details.get("recovery_code")
        return cls(
            **base.model_dump(),
            recovery_code_used_at=used if isinstance(used, datetime) else None,
            recovery_codes_remaining=remaining if isinstance(remaining, int) else None,
            recovery_code=code if isinstance(code, str) else None,
        )


# TOTP enrolment (strategies/totp/routes.py).

SetupTokenText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]


class TotpSetupBody(BaseModel):
    """``POST /user/totp/setup``: what an authenticator app enrols from, and the confirm token."""

    setup_token: str = Field(description="Pass back to confirm_setup; single use, 10 minutes.")
    totp_url: str = Field(description="The otpauth:// Key URI.")
    secret: str = Field(description="The secret in unpadded base32, for typing in by hand.")
    qr_svg: str = Field(description="The Key URI as an inline SVG QR code.")


class SetupConfirmation(_Strict):
    setup_token: SetupTokenText
    mfa_token: MfaTokenText | None = None
    code: CodeText


class TotpConfirmSetupBody(_Strict):
    """``{"user": {"setup_token", "code"}}``: a code from the app being enrolled (with a
    bearer token; or, to finish a sign-in held for enrolment, with its ``mfa_token``)."""

    user: SetupConfirmation


class TotpEnabledBody(BaseModel):
    """``{"status": "enabled"}``: the authenticator is now the user's second factor."""

    status: Literal["enabled"] = "enabled"
    #: On a first enrolment, the first batch of recovery codes (shown this once).
    recovery_codes: list[str] | None = None


class TotpDisabledBody(BaseModel):
    """``{"status": "disabled"}``: the user has no TOTP second factor any more."""

    status: Literal["disabled"] = "disabled"


class EnrolmentToken(BaseModel):
    # Setup needs no body with a bearer token: anything but an mfa_token is ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    mfa_token: MfaTokenText | None = None


class TotpSetupRequest(BaseModel):
    """``{"user": {"mfa_token"}}``: set up for a sign-in held for enrolment (no bearer token)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    user: EnrolmentToken = EnrolmentToken()


class EnrolledBody(AuthenticatedBody):
    """A sign-in held for enrolment, finished by confirming the setup: the session, and on a
    first enrolment the recovery codes (shown this once)."""

    status: Literal["enabled"] = "enabled"
    recovery_codes: list[str] | None = None


# Recovery codes: generate and status (strategies/recovery_code/routes.py).


class RecoveryCodesBody(BaseModel):
    """``POST /user/recovery_code/generate``: the new codes, shown this once."""

    recovery_codes: list[str] = Field(
        description="The new codes (XXXX-XXXX-XXXX-XXXX); every earlier code stopped working."
    )
    generated_at: datetime


class RecoveryCodeStatusBody(BaseModel):
    """``GET /user/recovery_code/status``: how many of the user's codes remain."""

    configured: bool = Field(description="The user holds a batch (used up or not).")
    remaining: int = Field(description="Unused codes.")
    total: int = Field(description="Codes in the batch, used or not.")
    generated_at: datetime | None = Field(description="When the batch was generated.")
    low: bool = Field(description="Few codes remain (2 or fewer): time to generate new ones.")


@functools.cache
def recovery_bodies(length: int) -> tuple[type[RecoveryVerifyBody], type[RecoveryResetBody]]:
    """The verify and reset bodies for codes of ``length`` symbols (the configured length)."""
    if length == DEFAULT_RECOVERY_CODE_LENGTH:
        return RecoveryVerifyBody, RecoveryResetBody
    code: Any = (recovery_code_text(length), ...)
    verify_fields = create_model(
        f"RecoveryVerifyFields{length}", __base__=RecoveryVerifyFields, code=code
    )
    verify = create_model(
        f"RecoveryVerifyBody{length}", __base__=RecoveryVerifyBody, user=(verify_fields, ...)
    )
    reset_fields = create_model(
        f"RecoveryResetFields{length}", __base__=RecoveryResetFields, code=code
    )
    reset = create_model(
        f"RecoveryResetBody{length}", __base__=RecoveryResetBody, user=(reset_fields, ...)
    )
    return verify, reset
