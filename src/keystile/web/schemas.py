"""Request and response bodies of the JSON API (the shapes of ``API.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from keystile.crypto.passwords import MAX_PASSWORD_LENGTH
from keystile.flows.sessions import Authenticated, Session
from keystile.identity import MAX_EMAIL_LENGTH

# The OpenAPI document states the rule ``keystile.identity.normalize_email``
# applies, so data valid against the schema is accepted; a longer string is
# refused by pydantic here, which the error handler answers 400 invalid_request.
EmailText = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_EMAIL_LENGTH),
    Field(
        json_schema_extra={"format": "email"},
        description=(
            "Exactly one bare address (local@domain): no display name, angle brackets, "
            "comment, quoted local part or list. Compared trimmed, NFC and lower-cased; "
            "an internationalised domain in its Unicode form."
        ),
    ),
]
PasswordText = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=MAX_PASSWORD_LENGTH)
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


# TOTP enrolment (strategies/totp/enrolment_routes.py).

SetupTokenText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]


class TotpSetupBody(BaseModel):
    """``POST /user/totp/setup``: what an authenticator app enrols from, and the confirm token."""

    setup_token: str = Field(description="Pass back to confirm_setup; single use, 10 minutes.")
    totp_url: str = Field(description="The otpauth:// Key URI.")
    secret: str = Field(description="The secret in unpadded base32, for typing in by hand.")
    qr_svg: str = Field(description="The Key URI as an inline SVG QR code.")


class SetupConfirmation(_Strict):
    setup_token: SetupTokenText
    code: CodeText


class TotpConfirmSetupBody(_Strict):
    """``{"user": {"setup_token", "code"}}``: a code from the app being enrolled."""

    user: SetupConfirmation


class TotpEnabledBody(BaseModel):
    """``{"status": "enabled"}``: the authenticator is now the user's second factor."""

    status: Literal["enabled"] = "enabled"


class TotpDisabledBody(BaseModel):
    """``{"status": "disabled"}``: the user has no TOTP second factor any more."""

    status: Literal["disabled"] = "disabled"
