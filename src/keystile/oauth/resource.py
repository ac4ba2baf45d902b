"""For resource servers: verify a Keystile access token through the JWKS alone, and step up.

::

    from keystile.oauth.resource import AccessTokenVerifier, InsufficientAuthenticationError

    verifier = AccessTokenVerifier(
        "https://auth.example.com/.well-known/jwks.json",
        issuer="keystile", audience="https://api.example.com",
    )

    @app.get("/transfers")
    def transfers(authorization: str = Header()) -> ...:
        try:
            claims = verifier.verify(
                authorization.removeprefix("Bearer "), acr_values=[ACR_MFA], max_age=300
            )
        except InsufficientAuthenticationError as refused:
            raise HTTPException(401, headers={"WWW-Authenticate": refused.challenge})
        ...

A token that is valid but too weak (its ``acr`` is not among ``acr_values``)
or too old (``auth_time`` more than ``max_age`` seconds ago) is refused with
RFC 9470's ``insufficient_user_authentication`` challenge; the client then
signs in again through ``/oauth/token`` with the same ``acr_values`` and
``max_age``. The keys are fetched from the JWKS URL (PyJWT's
``PyJWKClient``, cached) and found by the token's ``kid``, so a signing-key
rotation needs nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from keystile.oauth.grants import ACR_MFA

__all__ = ["ACR_MFA", "AccessTokenVerifier", "InsufficientAuthenticationError", "step_up_challenge"]


class InsufficientAuthenticationError(Exception):
    """RFC 9470 §3: the token is valid but its authentication is too weak or too old.

    ``challenge`` is the ``WWW-Authenticate`` value to answer with (status 401).
    """

    def __init__(self, *, acr_values: Sequence[str] = (), max_age: int | None = None) -> None:
        self.acr_values = tuple(acr_values)
        self.max_age = max_age
        self.challenge = step_up_challenge(acr_values=acr_values, max_age=max_age)
        super().__init__("insufficient_user_authentication")


def step_up_challenge(*, acr_values: Sequence[str] = (), max_age: int | None = None) -> str:
    """``Bearer error="insufficient_user_authentication", …`` (RFC 9470 §3)."""
    params = [
        'error="insufficient_user_authentication"',
        'error_description="A different authentication level is required"',
    ]
    if acr_values:
        params.append(f'acr_values="{" ".join(acr_values)}"')
    if max_age is not None:
        params.append(f'max_age="{int(max_age)}"')
    return "Bearer " + ", ".join(params)


class AccessTokenVerifier:
    """Verifies Keystile access tokens with the keys published at ``jwks_url``."""

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("ES256", "EdDSA", "RS256"),
        leeway: float = 0,
    ) -> None:
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._leeway = leeway

    def verify(
        self,
        token: str,
        *,
        acr_values: Sequence[str] = (),
        max_age: int | None = None,
        now: float | None = None,
    ) -> Mapping[str, Any]:
        """The token's claims, if it is valid, ours, and strong and recent enough.

        Raises:
            jwt.InvalidTokenError: forged, expired, another issuer's or audience's.
            InsufficientAuthenticationError: valid, but ``acr`` not in ``acr_values`` or
                ``auth_time`` older than ``max_age`` seconds.
        """
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientError as error:  # an unknown kid: refused like any bad token
            raise jwt.InvalidSignatureError(str(error)) from None
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=self._algorithms,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": ["exp", "iat", "sub", "auth_time"]},
        )
        if acr_values and claims.get("acr") not in acr_values:
            raise InsufficientAuthenticationError(acr_values=acr_values, max_age=max_age)
        moment = time.time() if now is None else now
        if max_age is not None and moment - float(claims["auth_time"]) > max_age:
            raise InsufficientAuthenticationError(acr_values=acr_values, max_age=max_age)
        return claims
