"""What a token request may ask of the sign-in behind it: OpenID Connect ``acr_values``
and ``max_age`` (pure).

A resource server that refuses a token with RFC 9470's
``insufficient_user_authentication`` names the ``acr_values``/``max_age`` it
needs; the client asks ``/oauth/token`` for them, and a sign-in (or a refresh
of one) that does not meet them is refused rather than answered with a token
the resource server would refuse again. A user with a second factor is always
asked for it on a new sign-in (``mfa_required``), so a fresh sign-in meets
both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from keystile.oauth.clients import OAuthError
from keystile.oauth.grants import ACR_MFA, ACR_SINGLE_FACTOR
from keystile.tokens import AMR_MFA


@dataclass(frozen=True, slots=True)
class Requirements:
    """What the caller asked of the sign-in (OpenID Connect ``acr_values``, ``max_age``)."""

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None


def acr_of(amr: Sequence[str]) -> str:
    """The ``acr`` of a sign-in with these RFC 8176 ``amr`` values."""
    return ACR_MFA if AMR_MFA in amr else ACR_SINGLE_FACTOR


def check_requirements(
    requirements: Requirements, *, amr: Sequence[str], auth_time: datetime, now: datetime
) -> None:
    """Refuse a sign-in weaker or older than the caller asked (pure).

    Raises:
        OAuthError: ``unmet_authentication_requirements`` (OpenID Connect): the
            requested ``acr`` needs a second factor the sign-in lacks, or it is
            older than ``max_age`` seconds. A user with a second factor is always
            asked for it on a new sign-in (``mfa_required``).
    """
    if ACR_MFA in requirements.acr_values and AMR_MFA not in amr:
        raise OAuthError(
            "unmet_authentication_requirements",
            "This request needs a second factor: enrol one, then sign in again.",
        )
    if requirements.max_age is not None and (
        (now - auth_time).total_seconds() > requirements.max_age
    ):
        raise OAuthError(
            "unmet_authentication_requirements",
            "The sign-in is older than max_age: sign in again.",
        )
