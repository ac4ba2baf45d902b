"""Grant types of the token endpoint: RFC 6749 names and Auth0's extension grants (pure)."""

from __future__ import annotations

from typing import Final

PASSWORD: Final = "password"  # noqa: S105 (a grant type name)
PASSWORD_REALM: Final = "http://auth0.com/oauth/grant-type/password-realm"  # noqa: S105
PASSWORDLESS_OTP: Final = "http://auth0.com/oauth/grant-type/passwordless/otp"
MFA_OTP: Final = "http://auth0.com/oauth/grant-type/mfa-otp"
MFA_RECOVERY_CODE: Final = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
REFRESH_TOKEN: Final = "refresh_token"  # noqa: S105 (a grant type name)

#: Every grant, by the short name ``keystile client create --grant`` takes.
BY_SHORT_NAME: Final[dict[str, str]] = {
    "password": PASSWORD,
    "password-realm": PASSWORD_REALM,
    "passwordless-otp": PASSWORDLESS_OTP,
    "mfa-otp": MFA_OTP,
    "mfa-recovery-code": MFA_RECOVERY_CODE,
    "refresh_token": REFRESH_TOKEN,
}
ALL: Final[tuple[str, ...]] = tuple(BY_SHORT_NAME.values())

#: The ``acr`` (OpenID Connect Core §2) of a sign-in with a second factor: Auth0's value,
#: so resource servers written for Auth0 recognise it.
ACR_MFA: Final = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
#: The ``acr`` of a sign-in with one factor.
ACR_SINGLE_FACTOR: Final = "urn:keystile:acr:single-factor"


def parse_grant(name: str) -> str:
    """The grant type URI for a short name or a full name.

    Raises:
        ValueError: not a grant Keystile serves.
    """
    if name in ALL:
        return name
    if name in BY_SHORT_NAME:
        return BY_SHORT_NAME[name]
    raise ValueError(f"unknown grant {name!r}: use one of {', '.join(BY_SHORT_NAME)}")
